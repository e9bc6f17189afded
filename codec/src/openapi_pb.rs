//! The OpenAPI v2 document in protobuf (what kubectl's discovery client asks `/openapi/v2`
//! for): gnostic's `openapi.v2.Document` message written from the JSON document that
//! [`crate::openapi::v2`] builds.
//!
//! Covers what kapi's document holds: swagger, info, paths (operations, parameters,
//! responses), definitions (schemas with `$ref`, type, format, description, properties,
//! additionalProperties, items, allOf, required, enum, default, bounds), security and
//! security definitions. Vendor extensions (`x-*`) become `NamedAny` whose `Any.yaml` is
//! the value as block YAML, as gnostic writes them. Keys a v2 document cannot hold are
//! left out.

use crate::protobuf::wire::{put_bytes, put_key, put_nested, put_varint};
use serde_json::{Map, Value};
use std::convert::Infallible;

/// The media type kubectl's discovery client asks `/openapi/v2` for (`@` is not legal in a
/// media type, so it is answered with [`MEDIA_TYPE`], as upstream does).
pub const MEDIA_TYPE_ASKED: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The protobuf document's media type: what it is served with, also accepted when asked for.
pub const MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

const VARINT: u8 = 0;
const FIXED64: u8 = 1;

type Out = Vec<u8>;

/// Encode the JSON OpenAPI v2 document as gnostic's `openapi.v2.Document`.
pub fn encode_v2(doc: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(d) = doc.as_object() else { return out };
    // Document: swagger 1, info 2, host 3, basePath 4, schemes 5, consumes 6, produces 7,
    // paths 8, definitions 9, security 12, securityDefinitions 13, tags 14, x- 16.
    string(&mut out, 1, d.get("swagger"));
    if let Some(info) = d.get("info").and_then(Value::as_object) {
        nested(&mut out, 2, |o| {
            // Info: title 1, version 2, description 3, termsOfService 4, x- 7.
            string(o, 1, info.get("title"));
            string(o, 2, info.get("version"));
            string(o, 3, info.get("description"));
            string(o, 4, info.get("termsOfService"));
            extensions(o, 7, info);
        });
    }
    string(&mut out, 3, d.get("host"));
    string(&mut out, 4, d.get("basePath"));
    strings(&mut out, 5, d.get("schemes"));
    strings(&mut out, 6, d.get("consumes"));
    strings(&mut out, 7, d.get("produces"));
    if let Some(paths) = d.get("paths").and_then(Value::as_object) {
        nested(&mut out, 8, |o| {
            // Paths: x- 1, path 2 (NamedPathItem: name 1, value 2).
            extensions(o, 1, paths);
            for (name, item) in paths.iter().filter(|(k, _)| !k.starts_with("x-")) {
                nested(o, 2, |o| {
                    put_bytes(o, 1, name.as_bytes());
                    nested(o, 2, |o| path_item(o, item));
                });
            }
        });
    }
    if let Some(defs) = d.get("definitions").and_then(Value::as_object) {
        // Definitions: additionalProperties 1 (NamedSchema: name 1, value 2).
        nested(&mut out, 9, |o| named_schemas(o, defs));
    }
    if let Some(reqs) = d.get("security").and_then(Value::as_array) {
        for r in reqs {
            nested(&mut out, 12, |o| security_requirement(o, r));
        }
    }
    if let Some(defs) = d.get("securityDefinitions").and_then(Value::as_object) {
        nested(&mut out, 13, |o| {
            for (name, def) in defs {
                nested(o, 1, |o| {
                    put_bytes(o, 1, name.as_bytes());
                    nested(o, 2, |o| security_definition(o, def));
                });
            }
        });
    }
    if let Some(tags) = d.get("tags").and_then(Value::as_array) {
        for t in tags.iter().filter_map(Value::as_object) {
            // Tag: name 1, description 2, x- 4.
            nested(&mut out, 14, |o| {
                string(o, 1, t.get("name"));
                string(o, 2, t.get("description"));
                extensions(o, 4, t);
            });
        }
    }
    extensions(&mut out, 16, d);
    out
}

fn nested(out: &mut Out, tag: u32, body: impl FnOnce(&mut Out)) {
    let r: Result<(), Infallible> = put_nested(out, tag, |o| {
        body(o);
        Ok(())
    });
    let Ok(()) = r;
}

fn string(out: &mut Out, tag: u32, v: Option<&Value>) {
    if let Some(s) = v.and_then(Value::as_str).filter(|s| !s.is_empty()) {
        put_bytes(out, tag, s.as_bytes());
    }
}

fn strings(out: &mut Out, tag: u32, v: Option<&Value>) {
    for s in v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        put_bytes(out, tag, s.as_bytes());
    }
}

fn boolean(out: &mut Out, tag: u32, v: Option<&Value>) {
    if v.and_then(Value::as_bool) == Some(true) {
        put_key(out, tag, VARINT);
        put_varint(out, 1);
    }
}

fn int64(out: &mut Out, tag: u32, v: Option<&Value>) {
    if let Some(n) = v.and_then(Value::as_i64).filter(|n| *n != 0) {
        put_key(out, tag, VARINT);
        put_varint(out, n as u64);
    }
}

fn double(out: &mut Out, tag: u32, v: Option<&Value>) {
    if let Some(n) = v.and_then(Value::as_f64).filter(|n| *n != 0.0) {
        put_key(out, tag, FIXED64);
        out.extend_from_slice(&n.to_bits().to_le_bytes());
    }
}

/// `Any { yaml = 2 }` for one JSON value.
fn any(out: &mut Out, tag: u32, v: &Value) {
    nested(out, tag, |o| put_bytes(o, 2, yaml(v).as_bytes()));
}

/// Every `x-` key of `m` as `NamedAny { name 1, value 2 }` under `tag`.
fn extensions(out: &mut Out, tag: u32, m: &Map<String, Value>) {
    for (k, v) in m.iter().filter(|(k, _)| k.starts_with("x-")) {
        nested(out, tag, |o| {
            put_bytes(o, 1, k.as_bytes());
            any(o, 2, v);
        });
    }
}

fn path_item(out: &mut Out, item: &Value) {
    let Some(m) = item.as_object() else { return };
    // PathItem: $ref 1, get 2, put 3, post 4, delete 5, options 6, head 7, patch 8,
    // parameters 9, x- 10.
    string(out, 1, m.get("$ref"));
    for (tag, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = m.get(method).and_then(Value::as_object) {
            nested(out, tag, |o| operation(o, op));
        }
    }
    for p in m.get("parameters").and_then(Value::as_array).into_iter().flatten() {
        nested(out, 9, |o| parameters_item(o, p));
    }
    extensions(out, 10, m);
}

fn operation(out: &mut Out, op: &Map<String, Value>) {
    // Operation: tags 1, summary 2, description 3, operationId 5, produces 6, consumes 7,
    // parameters 8, responses 9, schemes 10, deprecated 11, security 12, x- 13.
    strings(out, 1, op.get("tags"));
    string(out, 2, op.get("summary"));
    string(out, 3, op.get("description"));
    string(out, 5, op.get("operationId"));
    strings(out, 6, op.get("produces"));
    strings(out, 7, op.get("consumes"));
    for p in op.get("parameters").and_then(Value::as_array).into_iter().flatten() {
        nested(out, 8, |o| parameters_item(o, p));
    }
    if let Some(rs) = op.get("responses").and_then(Value::as_object) {
        // Responses: responseCode 1 (NamedResponseValue: name 1, value 2), x- 2.
        nested(out, 9, |o| {
            for (code, r) in rs.iter().filter(|(k, _)| !k.starts_with("x-")) {
                nested(o, 1, |o| {
                    put_bytes(o, 1, code.as_bytes());
                    nested(o, 2, |o| response_value(o, r));
                });
            }
            extensions(o, 2, rs);
        });
    }
    strings(out, 10, op.get("schemes"));
    boolean(out, 11, op.get("deprecated"));
    if let Some(reqs) = op.get("security").and_then(Value::as_array) {
        for r in reqs {
            nested(out, 12, |o| security_requirement(o, r));
        }
    }
    extensions(out, 13, op);
}

fn response_value(out: &mut Out, r: &Value) {
    let Some(m) = r.as_object() else { return };
    if m.contains_key("$ref") {
        // ResponseValue.jsonReference 2: JsonReference { $ref 1, description 2 }.
        nested(out, 2, |o| json_reference(o, m));
        return;
    }
    // ResponseValue.response 1: Response { description 1, schema 2 (SchemaItem.schema 1), x- 5 }.
    nested(out, 1, |o| {
        string(o, 1, m.get("description"));
        if let Some(s) = m.get("schema") {
            nested(o, 2, |o| nested(o, 1, |o| schema(o, s)));
        }
        extensions(o, 5, m);
    });
}

fn json_reference(out: &mut Out, m: &Map<String, Value>) {
    string(out, 1, m.get("$ref"));
    string(out, 2, m.get("description"));
}

fn parameters_item(out: &mut Out, p: &Value) {
    let Some(m) = p.as_object() else { return };
    if m.contains_key("$ref") {
        // ParametersItem.jsonReference 2.
        nested(out, 2, |o| json_reference(o, m));
        return;
    }
    // ParametersItem.parameter 1 -> Parameter.
    nested(out, 1, |o| {
        if m.get("in").and_then(Value::as_str) == Some("body") {
            // Parameter.bodyParameter 1: description 1, name 2, in 3, required 4, schema 5, x- 6.
            nested(o, 1, |o| {
                string(o, 1, m.get("description"));
                string(o, 2, m.get("name"));
                string(o, 3, m.get("in"));
                boolean(o, 4, m.get("required"));
                if let Some(s) = m.get("schema") {
                    nested(o, 5, |o| schema(o, s));
                }
                extensions(o, 6, m);
            });
        } else {
            // Parameter.nonBodyParameter 2 -> NonBodyParameter: header 1, formData 2, query 3,
            // path 4. Form and query have allowEmptyValue at 5, which shifts every later field.
            let (which, shift) = match m.get("in").and_then(Value::as_str) {
                Some("header") => (1, 0),
                Some("formData") => (2, 1),
                Some("path") => (4, 0),
                _ => (3, 1),
            };
            nested(o, 2, |o| nested(o, which, |o| non_body(o, m, shift)))
        }
    });
}

/// The sub-schemas of a non-body parameter: required 1, in 2, description 3, name 4,
/// [allowEmptyValue 5], then type, format, items, collectionFormat, default, maximum,
/// exclusiveMaximum, minimum, exclusiveMinimum, maxLength, minLength, pattern, maxItems,
/// minItems, uniqueItems, enum, multipleOf, x- from 5 (or 6 with allowEmptyValue).
fn non_body(out: &mut Out, m: &Map<String, Value>, shift: u32) {
    boolean(out, 1, m.get("required"));
    string(out, 2, m.get("in"));
    string(out, 3, m.get("description"));
    string(out, 4, m.get("name"));
    if shift == 1 {
        boolean(out, 5, m.get("allowEmptyValue"));
    }
    let f = |n: u32| n + shift;
    string(out, f(5), m.get("type"));
    string(out, f(6), m.get("format"));
    if let Some(items) = m.get("items") {
        nested(out, f(7), |o| primitives_items(o, items));
    }
    string(out, f(8), m.get("collectionFormat"));
    if let Some(d) = m.get("default") {
        any(out, f(9), d);
    }
    bounds(out, m, f(10));
    for e in m.get("enum").and_then(Value::as_array).into_iter().flatten() {
        any(out, f(20), e);
    }
    double(out, f(21), m.get("multipleOf"));
    extensions(out, f(22), m);
}

/// maximum, exclusiveMaximum, minimum, exclusiveMinimum, maxLength, minLength, pattern,
/// maxItems, minItems, uniqueItems at `first`..`first + 9`, as every parameter-like message
/// numbers them.
fn bounds(out: &mut Out, m: &Map<String, Value>, first: u32) {
    double(out, first, m.get("maximum"));
    boolean(out, first + 1, m.get("exclusiveMaximum"));
    double(out, first + 2, m.get("minimum"));
    boolean(out, first + 3, m.get("exclusiveMinimum"));
    int64(out, first + 4, m.get("maxLength"));
    int64(out, first + 5, m.get("minLength"));
    string(out, first + 6, m.get("pattern"));
    int64(out, first + 7, m.get("maxItems"));
    int64(out, first + 8, m.get("minItems"));
    boolean(out, first + 9, m.get("uniqueItems"));
}

/// PrimitivesItems: type 1, format 2, items 3, collectionFormat 4, default 5, bounds 6..15,
/// enum 16, multipleOf 17, x- 18.
fn primitives_items(out: &mut Out, v: &Value) {
    let Some(m) = v.as_object() else { return };
    string(out, 1, m.get("type"));
    string(out, 2, m.get("format"));
    if let Some(items) = m.get("items") {
        nested(out, 3, |o| primitives_items(o, items));
    }
    string(out, 4, m.get("collectionFormat"));
    if let Some(d) = m.get("default") {
        any(out, 5, d);
    }
    bounds(out, m, 6);
    for e in m.get("enum").and_then(Value::as_array).into_iter().flatten() {
        any(out, 16, e);
    }
    double(out, 17, m.get("multipleOf"));
    extensions(out, 18, m);
}

fn named_schemas(out: &mut Out, m: &Map<String, Value>) {
    for (name, s) in m {
        nested(out, 1, |o| {
            put_bytes(o, 1, name.as_bytes());
            nested(o, 2, |o| schema(o, s));
        });
    }
}

/// Schema: $ref 1, format 2, title 3, description 4, default 5, multipleOf 6, maximum 7,
/// exclusiveMaximum 8, minimum 9, exclusiveMinimum 10, maxLength 11, minLength 12,
/// pattern 13, maxItems 14, minItems 15, uniqueItems 16, maxProperties 17,
/// minProperties 18, required 19, enum 20, additionalProperties 21, type 22, items 23,
/// allOf 24, properties 25, discriminator 26, readOnly 27, example 30, x- 31.
fn schema(out: &mut Out, v: &Value) {
    let Some(m) = v.as_object() else { return };
    // A lone `allOf: [{$ref}]` (how a described reference is written in v3) is written as
    // the `$ref` it wraps, as upstream's v2 document has it: kubectl's v2 reader follows
    // `$ref` and reads a schema with `allOf` only as an arbitrary value.
    let wrapped = match m.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
        Some([only]) if !m.contains_key("$ref") => {
            only.as_object().filter(|o| o.len() == 1).and_then(|o| o.get("$ref"))
        }
        _ => None,
    };
    string(out, 1, m.get("$ref").or(wrapped));
    string(out, 2, m.get("format"));
    string(out, 3, m.get("title"));
    string(out, 4, m.get("description"));
    if let Some(d) = m.get("default") {
        any(out, 5, d);
    }
    double(out, 6, m.get("multipleOf"));
    double(out, 7, m.get("maximum"));
    boolean(out, 8, m.get("exclusiveMaximum"));
    double(out, 9, m.get("minimum"));
    boolean(out, 10, m.get("exclusiveMinimum"));
    int64(out, 11, m.get("maxLength"));
    int64(out, 12, m.get("minLength"));
    string(out, 13, m.get("pattern"));
    int64(out, 14, m.get("maxItems"));
    int64(out, 15, m.get("minItems"));
    boolean(out, 16, m.get("uniqueItems"));
    int64(out, 17, m.get("maxProperties"));
    int64(out, 18, m.get("minProperties"));
    strings(out, 19, m.get("required"));
    for e in m.get("enum").and_then(Value::as_array).into_iter().flatten() {
        any(out, 20, e);
    }
    match m.get("additionalProperties") {
        // AdditionalPropertiesItem: schema 1, boolean 2.
        Some(Value::Bool(b)) => nested(out, 21, |o| {
            put_key(o, 2, VARINT);
            put_varint(o, u64::from(*b));
        }),
        Some(s @ Value::Object(_)) => nested(out, 21, |o| nested(o, 1, |o| schema(o, s))),
        _ => {}
    }
    match m.get("type") {
        // TypeItem: value 1 (repeated).
        Some(t @ Value::String(_)) => nested(out, 22, |o| string(o, 1, Some(t))),
        Some(t @ Value::Array(_)) => nested(out, 22, |o| strings(o, 1, Some(t))),
        _ => {}
    }
    match m.get("items") {
        // ItemsItem: schema 1 (repeated).
        Some(s @ Value::Object(_)) => nested(out, 23, |o| nested(o, 1, |o| schema(o, s))),
        Some(Value::Array(list)) => nested(out, 23, |o| {
            for s in list {
                nested(o, 1, |o| schema(o, s));
            }
        }),
        _ => {}
    }
    let all_of = m.get("allOf").and_then(Value::as_array).filter(|_| wrapped.is_none());
    for s in all_of.into_iter().flatten() {
        nested(out, 24, |o| schema(o, s));
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        // Properties: additionalProperties 1 (NamedSchema).
        nested(out, 25, |o| named_schemas(o, props));
    }
    string(out, 26, m.get("discriminator"));
    boolean(out, 27, m.get("readOnly"));
    if let Some(e) = m.get("example") {
        any(out, 30, e);
    }
    extensions(out, 31, m);
}

/// SecurityRequirement: additionalProperties 1 (NamedStringArray: name 1, value 2
/// (StringArray: value 1)).
fn security_requirement(out: &mut Out, r: &Value) {
    for (name, scopes) in r.as_object().into_iter().flatten() {
        nested(out, 1, |o| {
            put_bytes(o, 1, name.as_bytes());
            nested(o, 2, |o| strings(o, 1, Some(scopes)));
        });
    }
}

/// SecurityDefinitionsItem: basic 1 (type 1, description 2, x- 3), apiKey 2 (type 1,
/// name 2, in 3, description 4, x- 5). OAuth2 flows are not in kapi's document.
fn security_definition(out: &mut Out, def: &Value) {
    let Some(m) = def.as_object() else { return };
    match m.get("type").and_then(Value::as_str) {
        Some("apiKey") => nested(out, 2, |o| {
            string(o, 1, m.get("type"));
            string(o, 2, m.get("name"));
            string(o, 3, m.get("in"));
            string(o, 4, m.get("description"));
            extensions(o, 5, m);
        }),
        Some("basic") => nested(out, 1, |o| {
            string(o, 1, m.get("type"));
            string(o, 2, m.get("description"));
            extensions(o, 3, m);
        }),
        _ => {}
    }
}

/// A JSON value as block YAML text, the way gnostic stores an `Any`
/// (`- group: apps\n  kind: Deployment\n  version: v1\n`).
pub fn yaml(v: &Value) -> String {
    let mut out = String::new();
    yaml_block(v, 0, &mut out);
    out
}

fn yaml_block(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, val) in m {
                out.push_str(&pad);
                out.push_str(&yaml_scalar_str(k));
                out.push(':');
                if is_container(val) {
                    out.push('\n');
                    yaml_block(val, indent + 2, out);
                } else {
                    out.push(' ');
                    out.push_str(&yaml_inline(val));
                    out.push('\n');
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                if is_container(item) {
                    // The item's block one level in, its first line's indent replaced by "- ".
                    let mut inner = String::new();
                    yaml_block(item, indent + 2, &mut inner);
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(inner.get(indent + 2..).unwrap_or_default());
                } else {
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&yaml_inline(item));
                    out.push('\n');
                }
            }
        }
        _ => {
            out.push_str(&pad);
            out.push_str(&yaml_inline(v));
            out.push('\n');
        }
    }
}

fn is_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn yaml_inline(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        Value::String(s) => yaml_scalar_str(s),
        other => other.to_string(),
    }
}

/// A string plain when YAML would read it back as the same string, else double-quoted
/// (a JSON string literal is a valid YAML double-quoted scalar).
fn yaml_scalar_str(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/'))
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain { s.to_string() } else { Value::String(s.to_string()).to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protobuf::wire::{LEN, Reader};
    use serde_json::json;

    /// The length-delimited fields `tag` of a message, in order.
    fn fields(msg: &[u8], tag: u32) -> Vec<&[u8]> {
        let mut r = Reader::new(msg);
        let mut found = Vec::new();
        while !r.done() {
            let (t, w) = r.key().unwrap();
            if w == LEN {
                let b = r.bytes().unwrap();
                if t == tag {
                    found.push(b);
                }
            } else {
                r.skip(w).unwrap();
            }
        }
        found
    }

    fn text(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn the_whole_document_decodes_back_to_its_paths_and_definitions() {
        let registry = crate::registry::Registry::builtin();
        let doc = crate::openapi::v2(registry);
        let bytes = encode_v2(&doc);
        assert_eq!(text(fields(&bytes, 1)[0]), "2.0");
        let paths = fields(&bytes, 8);
        assert_eq!(paths.len(), 1);
        let named: Vec<_> = fields(paths[0], 2);
        assert_eq!(named.len(), doc["paths"].as_object().unwrap().len());
        let names: Vec<_> = named.iter().map(|n| text(fields(n, 1)[0])).collect();
        let want: Vec<_> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(names, want);
        let defs = fields(&bytes, 9);
        assert_eq!(defs.len(), 1);
        let named = fields(defs[0], 1);
        assert_eq!(named.len(), doc["definitions"].as_object().unwrap().len());

        // The Deployment definition: its GVK extension as YAML, its spec property's $ref.
        let dep = named
            .iter()
            .find(|n| text(fields(n, 1)[0]) == "io.k8s.api.apps.v1.Deployment")
            .map(|n| fields(n, 2)[0])
            .unwrap();
        let ext: Vec<_> = fields(dep, 31)
            .into_iter()
            .filter(|e| text(fields(e, 1)[0]) == "x-kubernetes-group-version-kind")
            .collect();
        let any = fields(ext[0], 2)[0];
        assert!(text(fields(any, 2)[0]).contains("- group: apps\n  kind: Deployment\n"));
        let props = fields(fields(dep, 25)[0], 1);
        let spec = props.iter().find(|p| text(fields(p, 1)[0]) == "spec").unwrap();
        let spec_ref = fields(fields(spec, 2)[0], 1);
        assert_eq!(text(spec_ref[0]), "#/definitions/io.k8s.api.apps.v1.DeploymentSpec");
    }

    #[test]
    fn operations_parameters_and_schemas_land_on_their_fields() {
        let doc = json!({
            "swagger": "2.0",
            "paths": {"/x": {
                "parameters": [{"name": "pretty", "in": "query", "type": "string", "uniqueItems": true}],
                "get": {"operationId": "readX", "x-kubernetes-action": "get",
                        "parameters": [{"name": "n", "in": "path", "required": true, "type": "string"},
                                       {"name": "body", "in": "body", "required": true, "schema": {"$ref": "#/definitions/X"}}],
                        "responses": {"200": {"description": "OK", "schema": {"type": "string"}}}}
            }},
            "definitions": {"X": {"type": "object", "required": ["a"], "enum": ["b"],
                "additionalProperties": true, "items": {"type": "integer", "format": "int32"}}},
        });
        let bytes = encode_v2(&doc);
        let item = fields(fields(fields(&bytes, 8)[0], 2)[0], 2)[0];
        // Path-level query parameter: ParametersItem.parameter -> nonBody -> query(3), type 6.
        let p = fields(item, 9)[0];
        let query = fields(fields(fields(p, 1)[0], 2)[0], 3)[0];
        assert_eq!(text(fields(query, 4)[0]), "pretty");
        assert_eq!(text(fields(query, 6)[0]), "string");
        let get = fields(item, 2)[0];
        assert_eq!(text(fields(get, 5)[0]), "readX");
        let params = fields(get, 8);
        let path = fields(fields(fields(params[0], 1)[0], 2)[0], 4)[0];
        assert_eq!(text(fields(path, 5)[0]), "string");
        let body = fields(fields(params[1], 1)[0], 1)[0];
        assert_eq!(text(fields(fields(body, 5)[0], 1)[0]), "#/definitions/X");
        let ok = fields(fields(fields(get, 9)[0], 1)[0], 2)[0];
        let resp = fields(ok, 1)[0];
        assert_eq!(text(fields(resp, 1)[0]), "OK");
        let ext = fields(get, 13)[0];
        assert_eq!(text(fields(fields(ext, 2)[0], 2)[0]), "get\n");

        let x = fields(fields(fields(&bytes, 9)[0], 1)[0], 2)[0];
        assert_eq!(text(fields(fields(x, 22)[0], 1)[0]), "object");
        assert_eq!(text(fields(x, 19)[0]), "a");
        assert_eq!(text(fields(fields(x, 20)[0], 2)[0]), "b\n");
        assert_eq!(fields(x, 21)[0], &[0x10, 1][..]);
        let items = fields(fields(x, 23)[0], 1)[0];
        assert_eq!(text(fields(items, 2)[0]), "int32");
    }

    #[test]
    fn yaml_text_reads_as_gnostic_writes_it() {
        assert_eq!(yaml(&json!("map")), "map\n");
        assert_eq!(yaml(&json!(true)), "true\n");
        assert_eq!(yaml(&json!(["containerPort", "protocol"])), "- containerPort\n- protocol\n");
        assert_eq!(
            yaml(&json!([{"group": "", "kind": "Pod", "version": "v1"}])),
            "- group: \"\"\n  kind: Pod\n  version: v1\n"
        );
        assert_eq!(
            yaml(&json!({"a": {"b": ["1", "x y"]}})),
            "a:\n  b:\n    - \"1\"\n    - \"x y\"\n"
        );
    }
}
