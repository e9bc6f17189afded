//! Structural schemas of the built-in types, derived once from k8s-openapi's schemars
//! output (OpenAPI definition names, `#/definitions/NAME` references). Used to drop
//! unknown fields (fieldValidation Ignore/Warn/Strict), to type-check decoded objects,
//! to map protobuf field names onto JSON names, and to generate OpenAPI documents.
//!
//! Upstream tolerance is kept: `null` is accepted anywhere (Go decodes it as the zero
//! value); `x-kubernetes-preserve-unknown-fields` and free-form objects keep everything.

use crate::error::CodecError;
use crate::registry::Registry;
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// The `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// Every definition reachable from the registry's kinds, by OpenAPI name.
#[derive(Debug)]
pub struct Schemas {
    pub definitions: Map<String, Value>,
}

/// Extra definitions upstream documents reference (meta types the registry does not list).
fn extra_definitions(g: &mut schemars::SchemaGenerator) {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
    g.subschema_for::<meta::Status>();
    g.subschema_for::<meta::DeleteOptions>();
    g.subschema_for::<meta::APIResourceList>();
    g.subschema_for::<meta::APIGroupList>();
    g.subschema_for::<meta::APIVersions>();
    g.subschema_for::<k8s_openapi::api::autoscaling::v1::Scale>();
    g.subschema_for::<k8s_openapi::api::policy::v1::Eviction>();
    g.subschema_for::<k8s_openapi::api::authentication::v1::TokenRequest>();
}

/// The schemas of every built-in type, default or optional (built on first use).
pub fn builtin() -> &'static Schemas {
    static S: OnceLock<Schemas> = OnceLock::new();
    S.get_or_init(|| generate(Registry::known()))
}

fn generate(registry: &Registry) -> Schemas {
    let mut settings = schemars::generate::SchemaSettings::draft07();
    settings.meta_schema = None;
    let mut g = schemars::SchemaGenerator::new(settings);
    for t in registry.all() {
        if let crate::registry::SchemaSource::Builtin(f) = &t.schema {
            f(&mut g);
        }
    }
    extra_definitions(&mut g);
    let mut definitions = g.take_definitions(true);
    any_json(&mut definitions);
    required_as_upstream(&mut definitions);
    crate::patch_meta::annotate(&mut definitions);
    crate::topology::annotate(&mut definitions);
    Schemas { definitions }
}

/// apiextensions' `JSON` (a CRD schema's `default`, `enum` items, `example`) holds any
/// JSON value, as upstream's OpenAPI says; k8s-openapi's schema calls it an object,
/// which refused every CRD with a string enum or default.
fn any_json(definitions: &mut serde_json::Map<String, Value>) {
    const JSON: &str = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON";
    if let Some(Value::Object(d)) = definitions.get_mut(JSON) {
        d.remove("type");
    }
}

/// Required fields as upstream's OpenAPI lists them: no object requires `metadata` (but
/// core v1 Event, whose Go field has no `omitempty`),
/// references to a ConfigMap or Secret by name do not require the name (Go leaves it
/// empty by default), and events.k8s.io Events require `eventTime`. k8s-openapi's
/// schemas say otherwise, and kubectl's client-side validation refused what upstream
/// accepts.
fn required_as_upstream(definitions: &mut serde_json::Map<String, Value>) {
    const NAME_OPTIONAL: &[&str] = &[
        "ConfigMapKeySelector",
        "SecretKeySelector",
        "ConfigMapEnvSource",
        "SecretEnvSource",
        "LocalObjectReference",
        "ConfigMapVolumeSource",
        "ConfigMapProjection",
        "SecretProjection",
    ];
    for (name, def) in definitions.iter_mut() {
        let name_optional = name
            .strip_prefix("io.k8s.api.core.v1.")
            .is_some_and(|short| NAME_OPTIONAL.contains(&short));
        let keeps_metadata = name == "io.k8s.api.core.v1.Event";
        let Some(o) = def.as_object_mut() else { continue };
        if let Some(Value::Array(req)) = o.get_mut("required") {
            req.retain(|f| (f != "metadata" || keeps_metadata) && !(name_optional && f == "name"));
            if req.is_empty() {
                o.remove("required");
            }
        }
    }
    if let Some(Value::Object(event)) = definitions.get_mut("io.k8s.api.events.v1.Event") {
        event.insert("required".into(), serde_json::json!(["eventTime"]));
    }
}

const REF_PREFIX: &str = "#/definitions/";

impl Schemas {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.definitions.get(name)
    }

    /// Follow `$ref` (also inside a single-element `allOf`).
    pub fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        let mut cur = schema;
        for _ in 0..8 {
            let next = cur
                .get("$ref")
                .or_else(|| cur.get("allOf").and_then(|a| a.get(0)).and_then(|s| s.get("$ref")))
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(REF_PREFIX))
                .and_then(|n| self.definitions.get(n));
            match next {
                Some(n) => cur = n,
                None => break,
            }
        }
        cur
    }
}

/// The JSON type of a value, as error messages name it.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

struct Walk<'s> {
    schemas: &'s Schemas,
    unknown: Vec<String>,
}

/// Where the walk is, rendered (`spec.containers[0].image`) only for an error or an
/// unknown field: most objects have neither, and a string per node was most of the walk.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(parent, key) => match parent.render() {
                p if p.is_empty() => key.to_string(),
                p => format!("{p}.{key}"),
            },
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

impl Walk<'_> {
    fn type_error(&self, path: Path<'_>, got: &Value, want: &str) -> CodecError {
        CodecError::Malformed(format!(
            "json: cannot unmarshal {} into Go struct field {} of type {want}",
            type_name(got),
            path.render()
        ))
    }

    /// Go's error for a number its integer field cannot hold (a fraction, an exponent,
    /// out of range), then the field's Go type. Go quotes the literal as written; here
    /// it is the parsed number re-rendered (`8.9e+58` for `8.9e58`).
    fn number_error(&self, path: Path<'_>, n: &serde_json::Number, go: &str) -> CodecError {
        CodecError::Malformed(format!(
            "json: cannot unmarshal number {n} into Go struct field {} of type {go}",
            path.render()
        ))
    }

    fn walk(
        &mut self,
        schema: &Value,
        value: &mut Value,
        path: Path<'_>,
    ) -> Result<(), CodecError> {
        let schemas = self.schemas;
        let declared = schema;
        let schema = schemas.resolve(schema);
        if value.is_null()
            || schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
        {
            return Ok(());
        }
        if is_quantity(declared) {
            return match crate::quantity::Quantity::from_json(value) {
                Some(_) => Ok(()),
                None => Err(CodecError::Malformed(QUANTITY_SYNTAX.into())),
            };
        }
        if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            return match value {
                Value::Number(_) | Value::String(_) => Ok(()),
                other => Err(self.type_error(path, other, "intstr.IntOrString")),
            };
        }
        let ty = schema
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(if schema.get("properties").is_some() { "object" } else { "" });
        match (ty, &mut *value) {
            ("object", Value::Object(map)) => self.object(schema, map, path),
            ("array", Value::Array(items)) => {
                let Some(item_schema) = schema.get("items") else { return Ok(()) };
                for (i, item) in items.iter_mut().enumerate() {
                    self.walk(item_schema, item, Path::Index(&path, i))?;
                }
                Ok(())
            }
            ("string", Value::String(s))
                if schema.get("format").and_then(Value::as_str) == Some("byte") =>
            {
                match go_base64_error(s.as_bytes()) {
                    Some(at) => Err(CodecError::Malformed(format!(
                        "illegal base64 data at input byte {at}"
                    ))),
                    None => Ok(()),
                }
            }
            ("string", Value::String(_))
            | ("boolean", Value::Bool(_))
            | ("number", Value::Number(_))
            | ("", _) => Ok(()),
            ("integer", Value::Number(n)) => match fits_go_int(n, go_int(schema)) {
                true => Ok(()),
                false => Err(self.number_error(path, n, go_int(schema))),
            },
            ("integer", other) => Err(self.type_error(path, other, go_int(schema))),
            (want, other) => Err(self.type_error(path, other, want)),
        }
    }

    fn object(
        &mut self,
        schema: &Value,
        map: &mut Map<String, Value>,
        path: Path<'_>,
    ) -> Result<(), CodecError> {
        let props = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties").filter(|a| a.is_object());
        if props.is_none() && additional.is_none() {
            return Ok(());
        }
        let mut unknown = Vec::new();
        for (key, v) in map.iter_mut() {
            let sub = props.and_then(|p| p.get(key)).or(additional);
            match sub {
                Some(s) => self.walk(s, v, Path::Key(&path, key))?,
                None => unknown.push(key.clone()),
            }
        }
        for key in unknown {
            map.remove(&key);
            self.unknown.push(Path::Key(&path, &key).render());
        }
        Ok(())
    }
}

/// Upstream's error for a quantity that does not parse (Go's `ErrFormatWrong`).
const QUANTITY_SYNTAX: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// Whether a (not yet resolved) schema is a reference to `resource.Quantity`.
fn is_quantity(schema: &Value) -> bool {
    schema.get("$ref").and_then(Value::as_str)
        == Some("#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity")
}

/// The Go type of an integer schema: its `format` (`int32`, `int64`), `int64` without one.
fn go_int(schema: &Value) -> &str {
    match schema.get("format").and_then(Value::as_str) {
        Some("int32") => "int32",
        _ => "int64",
    }
}

/// Whether Go's `encoding/json` stores `n` in an integer of type `go`: an integer literal
/// (no fraction, no exponent: those parse as floats here) within the type's range.
fn fits_go_int(n: &serde_json::Number, go: &str) -> bool {
    match (n.as_i64(), go) {
        (Some(i), "int32") => i32::try_from(i).is_ok(),
        (Some(_), _) => true,
        (None, _) => false,
    }
}

/// Where Go's `base64.StdEncoding` (what `encoding/json` decodes a `[]byte` field with)
/// finds `s` corrupt: the input byte offset its `CorruptInputError` names. Line breaks
/// are skipped, padding is required, trailing bits are not checked.
pub fn go_base64_error(s: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        let mut j = 0;
        while j < 4 {
            let Some(&c) = s.get(i) else {
                return (j != 0).then_some(i - j);
            };
            i += 1;
            match c {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => j += 1,
                b'\n' | b'\r' => {}
                b'=' => return padding_error(s, i, j),
                _ => return Some(i - 1),
            }
        }
    }
}

/// Go's rules once a quantum of `j` symbols meets `=` (at `i - 1`): `xx==` or `xxx=`,
/// then nothing but line breaks.
fn padding_error(s: &[u8], mut i: usize, j: usize) -> Option<usize> {
    let skip_breaks = |mut i: usize| {
        while s.get(i).is_some_and(|c| matches!(c, b'\n' | b'\r')) {
            i += 1;
        }
        i
    };
    match j {
        0 | 1 => return Some(i - 1),
        2 => {
            i = skip_breaks(i);
            match s.get(i) {
                None => return Some(s.len()),
                Some(b'=') => i += 1,
                Some(_) => return Some(i - 1),
            }
        }
        _ => {}
    }
    let i = skip_breaks(i);
    (i < s.len()).then_some(i)
}

/// Walk `obj` against the schema named `schema_name` (e.g. `io.k8s.api.core.v1.Pod`),
/// remove fields the schema does not know and return their paths (`spec.foo`,
/// `spec.containers[0].bar`). A value of the wrong JSON type is `CodecError::Malformed`.
/// An unknown schema name prunes nothing.
pub fn prune_unknown(schema_name: &str, obj: &mut Value) -> Result<Vec<String>, CodecError> {
    let schemas = builtin();
    let Some(schema) = schemas.get(schema_name) else { return Ok(Vec::new()) };
    let mut w = Walk { schemas, unknown: Vec::new() };
    w.walk(schema, obj, Path::Root)?;
    Ok(w.unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_registry_kind_has_a_definition() {
        for t in Registry::builtin().all() {
            assert!(builtin().get(&t.schema_name).is_some(), "{}", t.schema_name);
        }
    }

    #[test]
    fn unknown_fields_are_pruned_and_reported() {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "bogus": 1, "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "x", "extra": true, "resources": {"limits": {"cpu": "1"}},
                "ports": [{"containerPort": 80}]}], "nope": {}},
        });
        let unknown = prune_unknown("io.k8s.api.core.v1.Pod", &mut pod).unwrap();
        assert_eq!(unknown, vec!["metadata.bogus", "spec.containers[0].extra", "spec.nope"]);
        assert!(pod["spec"].get("nope").is_none());
        assert_eq!(pod["spec"]["containers"][0]["resources"]["limits"]["cpu"], "1");
    }

    #[test]
    fn int_or_string_and_free_form_values_are_kept() {
        let mut svc = json!({"spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}]}});
        assert!(prune_unknown("io.k8s.api.core.v1.Service", &mut svc).unwrap().is_empty());
        let mut crd = json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": "object",
            "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}});
        let unknown = prune_unknown(
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition",
            &mut crd,
        )
        .unwrap();
        assert!(unknown.is_empty(), "{unknown:?}");
        let mut rev = json!({"data": {"anything": {"goes": 1}}, "revision": 1});
        assert!(
            prune_unknown("io.k8s.api.apps.v1.ControllerRevision", &mut rev).unwrap().is_empty()
        );
    }

    /// Regression: a quantity that does not parse (`cpu: lots`) was stored, and broke
    /// every reader that parses it; upstream's decoder refuses it with its regex.
    #[test]
    fn quantities_must_parse_as_upstreams() {
        let pod = |cpu: Value| {
            json!({"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": cpu}}}],
                   "overhead": {"memory": "1Gi"}}})
        };
        for ok in [json!("500m"), json!(2), json!("1.5"), json!(" 1Gi ")] {
            assert!(prune_unknown("io.k8s.api.core.v1.Pod", &mut pod(ok.clone())).is_ok(), "{ok}");
        }
        for bad in [json!("lots"), json!(true), json!("1Gix")] {
            let e = prune_unknown("io.k8s.api.core.v1.Pod", &mut pod(bad.clone())).unwrap_err();
            assert_eq!(e.to_string(), QUANTITY_SYNTAX, "{bad}");
        }
    }

    /// Regression (issue #14): Secret data that is not base64 was stored, and then broke
    /// `kubectl describe` and protobuf reads; upstream's decoder refuses it.
    #[test]
    fn byte_fields_must_be_base64_as_go_decodes_it() {
        for (s, want) in [
            ("eA==", None),
            ("eHk=", None),
            ("eHl6", None),
            ("", None),
            ("eA\r\n==\n", None),
            ("not base64!", Some(3)),
            ("eA", Some(0)),
            ("eHl", Some(0)),
            ("eA=", Some(3)),
            ("eA=x", Some(2)),
            ("e===", Some(1)),
            ("eHk=eA==", Some(4)),
            ("=", Some(0)),
        ] {
            assert_eq!(go_base64_error(s.as_bytes()), want, "{s:?}");
        }
        let mut secret = json!({"kind": "Secret", "data": {"a": "eA==", "b": "not base64!"}});
        let e = prune_unknown("io.k8s.api.core.v1.Secret", &mut secret).unwrap_err();
        assert_eq!(e.to_string(), "illegal base64 data at input byte 3");
        let mut cm = json!({"binaryData": {"k": "eA="}});
        assert!(prune_unknown("io.k8s.api.core.v1.ConfigMap", &mut cm).is_err());
    }

    /// Regression (issue #14, found by the `decode` and `patch` fuzz targets): an integer
    /// field given a number with a fraction or out of its range (`spec.replicas: 8.9e58`,
    /// an EndpointSlice port of 1.1e73) was accepted, stored as a float, and its JSON did
    /// not read back as written. Upstream refuses the body with Go's unmarshal error.
    #[test]
    fn integer_fields_refuse_fractions_exponents_and_overflow() {
        let deployment = "io.k8s.api.apps.v1.Deployment";
        for (replicas, literal) in [
            (json!(8.9e58), "8.9e+58"),
            (json!(2.5), "2.5"),
            (json!(3.0), "3.0"),
            (json!(2147483648_i64), "2147483648"),
            (json!(u64::MAX), "18446744073709551615"),
        ] {
            let mut d = json!({"spec": {"replicas": replicas}});
            let e = prune_unknown(deployment, &mut d).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "json: cannot unmarshal number {literal} into Go struct field spec.replicas of type int32"
                )
            );
        }
        for ok in [json!(0), json!(-2147483648_i64), json!(2147483647)] {
            let mut d = json!({"spec": {"replicas": ok}});
            assert!(prune_unknown(deployment, &mut d).is_ok(), "{ok}");
        }
        let mut pod = json!({"spec": {"activeDeadlineSeconds": 4294967296_i64}});
        assert!(prune_unknown("io.k8s.api.core.v1.Pod", &mut pod).is_ok(), "int64 holds it");
        let mut pod = json!({"spec": {"activeDeadlineSeconds": 1.5}});
        let e = prune_unknown("io.k8s.api.core.v1.Pod", &mut pod).unwrap_err();
        assert!(e.to_string().ends_with("spec.activeDeadlineSeconds of type int64"), "{e}");
        let mut slice = json!({"endpoints": [], "addressType": "IPv4",
            "ports": [{"port": 1.1111111111111112e73}]});
        let e = prune_unknown("io.k8s.api.discovery.v1.EndpointSlice", &mut slice).unwrap_err();
        assert!(e.to_string().contains("field ports[0].port of type int32"), "{e}");
    }

    #[test]
    fn wrong_types_are_rejected() {
        let mut d = json!({"spec": {"replicas": "three"}});
        let e = prune_unknown("io.k8s.api.apps.v1.Deployment", &mut d).unwrap_err();
        assert!(e.to_string().contains("cannot unmarshal string"), "{e}");
        assert!(e.to_string().contains("Go struct field spec.replicas of type int32"), "{e}");
        let mut deep = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x"}, {"name": "b", "ports": [{"containerPort": "80"}]}
        ]}}}});
        let e = prune_unknown("io.k8s.api.apps.v1.Deployment", &mut deep).unwrap_err();
        let field = "spec.template.spec.containers[1].ports[0].containerPort";
        assert!(e.to_string().contains(&format!("field {field} of type int32")), "{e}");
        let mut nulls = json!({"spec": {"replicas": null}, "metadata": null});
        assert!(prune_unknown("io.k8s.api.apps.v1.Deployment", &mut nulls).is_ok());
    }

    /// Regression (issue #16): a CRD whose schema has `enum: [red, blue]` or a string
    /// `default` was refused with 400 "cannot unmarshal string into ... of type object".
    #[test]
    fn crd_schemas_take_any_json_in_enum_default_and_example() {
        let mut crd = json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {"color": {
                "type": "string", "enum": ["red", "blue", 3, null, {"a": 1}], "default": "red",
                "example": ["x"]}}}}}]}});
        let name =
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition";
        assert_eq!(prune_unknown(name, &mut crd).unwrap(), Vec::<String>::new());
        let color = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["color"];
        assert_eq!(color["enum"][0], "red");
        assert_eq!(color["default"], "red");
    }
}

#[cfg(test)]
mod required_tests {
    /// Regression: kubectl's client-side validation refused a SubjectAccessReview sent
    /// without `metadata` ("missing required field \"metadata\""), because the served
    /// OpenAPI required it (and `name` of object references) where upstream's does not.
    #[test]
    fn required_fields_are_upstreams() {
        let Some(swagger) = crate::spec_files::swagger() else { return };
        let upstream = swagger["definitions"].as_object().unwrap();
        let list = |v: Option<&serde_json::Value>| {
            let mut l: Vec<String> =
                v.cloned().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
            l.sort();
            l
        };
        let mut diffs = Vec::new();
        for (name, def) in &super::builtin().definitions {
            let Some(u) = upstream.get(name) else { continue };
            let (ours, theirs) = (list(def.get("required")), list(u.get("required")));
            if ours != theirs {
                diffs.push(format!("{name}: ours {ours:?} upstream {theirs:?}"));
            }
        }
        assert!(diffs.is_empty(), "{diffs:#?}");
    }
}
