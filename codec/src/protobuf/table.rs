//! Message tables: the build-time rows from k8s-pb (field numbers, wire kinds, message
//! references) joined at first use with the JSON schemas (JSON field names, inline
//! embedded structs) and with the Go pointer facts (`go_facts.rs`). Every message is
//! addressed by index; nothing allocates per call.

use crate::schema;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

pub(crate) struct RawMessage {
    pub name: &'static str,
    pub fields: &'static [RawField],
}

pub(crate) struct RawField {
    pub tag: u32,
    pub name: &'static str,
    pub kind: &'static str,
    pub repeated: bool,
    pub map_value: &'static str,
    pub type_ref: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/pb_tables.rs"));

/// A protobuf scalar or a reference to another message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    String,
    Bytes,
    Int32,
    Int64,
    Bool,
    Double,
    Message(usize),
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Time,
    MicroTime,
    Duration,
    IntOrString,
    Quantity,
    /// `bytes raw = 1` holding JSON (RawExtension, FieldsV1, apiextensions JSON).
    RawJson,
    /// JSONSchemaPropsOrArray: `schema = 1` or `jSONSchemas = 2`.
    PropsOrArray,
    /// JSONSchemaPropsOrBool: `allows = 1`, `schema = 2`.
    PropsOrBool,
    /// JSONSchemaPropsOrStringArray: `schema = 1`, `property = 2`.
    PropsOrStringArray,
    /// A named string slice (`ExtraValue`): `repeated string items = 1`, a JSON array.
    StringList,
}

#[derive(Debug)]
pub struct Field {
    pub tag: u32,
    /// Position in the message's declaration (upstream's Go struct field order, which
    /// `generated.proto` keeps; tags are not in that order).
    pub order: u16,
    pub json: String,
    pub ty: Ty,
    pub repeated: bool,
    /// `map<string, ty>` (key is always a string in the Kubernetes API).
    pub map: bool,
    /// A Go embedded struct: its fields appear in the parent's JSON object.
    pub inline: bool,
    /// What the Go field is (from `go_facts.rs`).
    pub go: Go,
}

/// The Go side of a singular field, which decides what upstream writes when it is zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Go {
    /// The message has no facts row: written only when present.
    Unknown,
    /// A pointer: written only when set, and then even when it points at a zero value.
    Pointer,
    /// A non-pointer field: always written; `omitempty` says whether upstream's JSON
    /// leaves out its zero value.
    Value { omitempty: bool },
}

#[derive(Debug)]
pub struct Message {
    /// OpenAPI definition name (`io.k8s.api.core.v1.Pod`).
    pub name: String,
    pub special: Option<Special>,
    /// Sorted by tag.
    pub fields: Vec<Field>,
}

impl Message {
    pub fn field(&self, tag: u32) -> Option<&Field> {
        self.fields.binary_search_by_key(&tag, |f| f.tag).ok().map(|i| &self.fields[i])
    }
}

pub struct Tables {
    pub messages: Vec<Message>,
    by_name: HashMap<String, usize>,
}

impl Tables {
    /// The message of an OpenAPI definition name.
    pub fn by_name(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }
}

/// The tables (built on first use).
pub fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(build)
}

fn normalize(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn special(name: &str) -> Option<Special> {
    let short = name.rsplit('.').next().unwrap_or(name);
    Some(match (name, short) {
        (_, "Time") if name.contains(".meta.") => Special::Time,
        (_, "MicroTime") => Special::MicroTime,
        (_, "Duration") if name.contains(".meta.") => Special::Duration,
        (_, "IntOrString") => Special::IntOrString,
        (_, "Quantity") => Special::Quantity,
        (_, "RawExtension" | "FieldsV1") => Special::RawJson,
        (_, "JSON") if name.contains("apiextensions") => Special::RawJson,
        (_, "JSONSchemaPropsOrArray") => Special::PropsOrArray,
        (_, "JSONSchemaPropsOrBool") => Special::PropsOrBool,
        (_, "JSONSchemaPropsOrStringArray") => Special::PropsOrStringArray,
        (_, "ExtraValue") => Special::StringList,
        _ => return None,
    })
}

fn scalar(kind: &str) -> Option<Ty> {
    Some(match kind {
        "string" => Ty::String,
        "bytes" => Ty::Bytes,
        "int32" => Ty::Int32,
        "int64" => Ty::Int64,
        "bool" => Ty::Bool,
        "double" => Ty::Double,
        _ => return None,
    })
}

fn build() -> Tables {
    let defs = &schema::builtin().definitions;
    let def_names: HashMap<String, &String> = defs.keys().map(|k| (k.to_lowercase(), k)).collect();
    let index: HashMap<String, usize> =
        MESSAGES.iter().enumerate().map(|(i, m)| (m.name.to_lowercase(), i)).collect();
    let mut props: Vec<Vec<String>> = Vec::with_capacity(MESSAGES.len());
    let mut messages: Vec<Message> = Vec::with_capacity(MESSAGES.len());
    for raw in MESSAGES {
        let name =
            def_names.get(&raw.name.to_lowercase()).map_or(raw.name.to_string(), |s| (*s).clone());
        let keys: Vec<String> = defs
            .get(&name)
            .and_then(|d| d.get("properties"))
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let mut fields: Vec<Field> = raw
            .fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| field(f, &keys, &index).map(|f| Field { order: i as u16, ..f }))
            .collect();
        fields.sort_by_key(|f| f.tag);
        messages.push(Message { special: special(&name), name, fields });
        props.push(keys);
    }
    confirm_inline(&mut messages, &props);
    let by_name: HashMap<String, usize> =
        messages.iter().enumerate().map(|(i, m)| (m.name.clone(), i)).collect();
    // Unmatched rows are reported by a test; the fields they name stay unknown.
    let _ = apply_go_facts(&mut messages, &by_name);
    Tables { messages, by_name }
}

fn field(f: &RawField, props: &[String], index: &HashMap<String, usize>) -> Option<Field> {
    let value_kind = if f.kind == "map" { f.map_value } else { f.kind };
    let ty = match value_kind {
        "message" => Ty::Message(*index.get(&f.type_ref.to_lowercase())?),
        k => scalar(k)?,
    };
    let norm = normalize(f.name);
    let named = props.iter().find(|p| normalize(p) == norm);
    Some(Field {
        tag: f.tag,
        order: 0,
        json: named.cloned().unwrap_or_else(|| lower_camel(f.name)),
        ty,
        repeated: f.repeated,
        map: f.kind == "map",
        inline: !props.is_empty() && named.is_none(),
        go: Go::Unknown,
    })
}

/// Mark the singular fields of every message with a facts row: the named ones are Go
/// values, the rest pointers. Returns what did not match (rows or names unknown to the
/// tables, names of repeated or map fields), for the test that keeps the rows true.
fn apply_go_facts(messages: &mut [Message], by_name: &HashMap<String, usize>) -> Vec<String> {
    let mut problems = Vec::new();
    for (package, message, fields) in super::go_facts::ROWS {
        let name = format!("{package}{message}");
        let Some(&idx) = by_name.get(&name) else {
            problems.push(format!("no message {name}"));
            continue;
        };
        let m = &mut messages[idx];
        for f in m.fields.iter_mut().filter(|f| !f.repeated && !f.map && !f.inline) {
            f.go = Go::Pointer;
        }
        for word in fields.split_whitespace() {
            let (json, omitempty) = word.strip_prefix('!').map_or((word, true), |w| (w, false));
            match m.fields.iter_mut().find(|f| f.json == json) {
                Some(f) if !f.repeated && !f.map && !f.inline => {
                    f.go = Go::Value { omitempty };
                }
                _ => problems.push(format!("{name}: no singular field {json}")),
            }
        }
    }
    problems
}

/// A field not named in its parent's schema is inline only when it is a single message
/// whose own fields are all properties of the parent (Go embedding); otherwise it keeps
/// its camel-case name (a field the schema lacks). An embedded struct without a schema of
/// its own (`VolumeSource`) takes its field names from the parent's properties.
fn confirm_inline(messages: &mut [Message], props: &[Vec<String>]) {
    let mut verdicts = Vec::new();
    let mut renames: Vec<(usize, usize, String)> = Vec::new();
    for (mi, m) in messages.iter().enumerate() {
        for (fi, f) in m.fields.iter().enumerate().filter(|(_, f)| f.inline) {
            let mut ok = false;
            if let (Ty::Message(c), false, false) = (f.ty, f.repeated, f.map) {
                let child = &messages[c];
                let matched: Vec<Option<&String>> = child
                    .fields
                    .iter()
                    .map(|cf| props[mi].iter().find(|p| normalize(p) == normalize(&cf.json)))
                    .collect();
                // A child field the parent does not name may itself be embedded
                // (NamedRuleWithOperations embeds RuleWithOperations, which embeds Rule).
                let embedded = |ci: usize| {
                    let cf = &child.fields[ci];
                    cf.inline && inline_in(messages, cf, &props[mi], 3)
                };
                ok = child.special.is_none()
                    && matched.iter().enumerate().all(|(ci, m)| m.is_some() || embedded(ci));
                if ok && props[c].is_empty() {
                    for (ci, name) in matched.into_iter().enumerate() {
                        if let Some(name) = name {
                            renames.push((c, ci, name.clone()));
                        }
                    }
                }
            }
            verdicts.push((mi, fi, ok));
        }
    }
    for (mi, fi, ok) in verdicts {
        messages[mi].fields[fi].inline = ok;
    }
    for (c, ci, name) in renames {
        messages[c].fields[ci].json = name;
    }
}

/// Whether candidate field `f` is a Go embedded struct all of whose fields (through
/// further embedded structs, at most `depth` deep) are properties `props` of the parent.
fn inline_in(messages: &[Message], f: &Field, props: &[String], depth: usize) -> bool {
    let Ty::Message(c) = f.ty else { return false };
    let child = &messages[c];
    depth > 0
        && !f.repeated
        && !f.map
        && child.special.is_none()
        && child.fields.iter().all(|cf| {
            props.iter().any(|p| normalize(p) == normalize(&cf.json))
                || (cf.inline && inline_in(messages, cf, props, depth - 1))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(name: &str) -> &'static Message {
        let t = tables();
        &t.messages[t.by_name(name).unwrap_or_else(|| panic!("no message {name}"))]
    }

    #[test]
    fn json_names_come_from_the_schema() {
        let status = msg("io.k8s.api.core.v1.PodStatus");
        assert!(status.fields.iter().any(|f| f.json == "podIPs"));
        assert!(status.fields.iter().any(|f| f.json == "hostIP"));
        let vol = msg("io.k8s.api.core.v1.AWSElasticBlockStoreVolumeSource");
        assert_eq!(vol.field(1).unwrap().json, "volumeID");
    }

    #[test]
    fn embedded_structs_are_inline() {
        let v = msg("io.k8s.api.core.v1.Volume");
        let source = v.fields.iter().find(|f| f.tag == 2).unwrap();
        assert!(source.inline, "{source:?}");
        let env = msg("io.k8s.api.core.v1.SecretEnvSource");
        assert!(env.field(1).unwrap().inline);
        assert!(!msg("io.k8s.api.core.v1.Pod").field(1).unwrap().inline);
        // Embedded twice: NamedRuleWithOperations > RuleWithOperations > Rule.
        let named = msg("io.k8s.api.admissionregistration.v1.NamedRuleWithOperations");
        assert!(named.fields.iter().all(|f| f.json == "resourceNames" || f.inline), "{named:?}");
    }

    #[test]
    fn every_go_facts_row_names_singular_fields_of_a_known_message() {
        let mut messages = build().messages;
        let by_name = messages.iter().enumerate().map(|(i, m)| (m.name.clone(), i)).collect();
        assert_eq!(apply_go_facts(&mut messages, &by_name), Vec::<String>::new());
        let meta = msg("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
        let go = |json: &str| meta.fields.iter().find(|f| f.json == json).map(|f| f.go);
        assert_eq!(go("generateName"), Some(Go::Value { omitempty: true }));
        assert_eq!(go("deletionTimestamp"), Some(Go::Pointer));
        assert_eq!(go("labels"), Some(Go::Unknown), "maps are never zero-filled");
        let owner = msg("io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference");
        assert_eq!(owner.field(1).map(|f| f.go), Some(Go::Value { omitempty: false }));
        let uncovered = msg("io.k8s.api.storage.v1beta1.VolumeAttributesClass");
        assert!(uncovered.fields.iter().all(|f| f.go == Go::Unknown));
    }

    /// Every message a served kind (or a subresource kind) reaches has a facts row, so
    /// every object the server holds is written as upstream writes it.
    #[test]
    fn every_message_a_served_kind_reaches_has_go_facts() {
        let t = tables();
        let rows: std::collections::HashSet<String> =
            super::super::go_facts::ROWS.iter().map(|(p, m, _)| format!("{p}{m}")).collect();
        let mut todo: Vec<usize> = crate::Registry::builtin()
            .all()
            .iter()
            .filter_map(|rt| t.by_name(&rt.schema_name))
            .collect();
        todo.extend(
            [
                "io.k8s.api.autoscaling.v1.Scale",
                "io.k8s.api.policy.v1.Eviction",
                "io.k8s.api.authentication.v1.TokenRequest",
                "io.k8s.api.core.v1.Binding",
                "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
            ]
            .iter()
            .filter_map(|n| t.by_name(n)),
        );
        let mut seen = std::collections::HashSet::new();
        let mut missing = std::collections::BTreeSet::new();
        while let Some(i) = todo.pop() {
            if !seen.insert(i) {
                continue;
            }
            let m = &t.messages[i];
            if m.special.is_some() {
                continue;
            }
            if !rows.contains(&m.name) {
                missing.insert(m.name.clone());
            }
            todo.extend(m.fields.iter().filter_map(|f| match f.ty {
                Ty::Message(c) => Some(c),
                _ => None,
            }));
        }
        assert_eq!(missing, std::collections::BTreeSet::new());
    }

    #[test]
    fn every_served_kind_has_a_message() {
        for rt in crate::Registry::builtin().all() {
            assert!(tables().by_name(&rt.schema_name).is_some(), "{}", rt.schema_name);
        }
        assert_eq!(msg("io.k8s.apimachinery.pkg.apis.meta.v1.Time").special, Some(Special::Time));
        assert_eq!(
            msg("io.k8s.apimachinery.pkg.util.intstr.IntOrString").special,
            Some(Special::IntOrString)
        );
    }
}

#[cfg(test)]
mod upstream_protos {
    //! Field numbers and names cross-checked against upstream's `generated.proto` files
    //! (`../shared/spec/protos`) when they are present.
    use super::*;
    use std::path::{Path, PathBuf};

    fn protos(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                protos(&p, out);
            } else if p.extension().is_some_and(|x| x == "proto") {
                out.push(p);
            }
        }
    }

    /// (definition name, field number, proto field name) of every message field.
    fn fields(text: &str) -> Vec<(String, u32, String)> {
        let mut package = String::new();
        let mut message = String::new();
        let mut out = Vec::new();
        for line in text.lines().map(str::trim) {
            if let Some(p) = line.strip_prefix("package ") {
                package = p.trim_end_matches(';').replacen("k8s.io.", "io.k8s.", 1);
            } else if let Some(m) = line.strip_prefix("message ") {
                message = m.trim_end_matches('{').trim().to_string();
            } else if let Some((decl, num)) = line.split_once(" = ") {
                let Ok(n) = num.trim_end_matches(';').trim().parse::<u32>() else { continue };
                let name = decl.rsplit(' ').next().unwrap_or_default().to_string();
                out.push((format!("{package}.{message}"), n, name));
            }
        }
        out
    }

    #[test]
    fn field_numbers_match_upstream_protos() {
        let Some(dir) = crate::spec_files::path("protos") else { return };
        let mut files = Vec::new();
        protos(&dir, &mut files);
        let t = tables();
        let mut checked = 0;
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (message, number, name) in fields(&text) {
                let Some(idx) = t.by_name(&message) else { continue };
                let m = &t.messages[idx];
                if m.special.is_some() {
                    continue;
                }
                let field = m.field(number);
                let field =
                    field.unwrap_or_else(|| panic!("{message}: no field {number} ({name})"));
                if !field.inline {
                    assert_eq!(
                        field.json.to_lowercase(),
                        name.to_lowercase(),
                        "{message} field {number}"
                    );
                }
                checked += 1;
            }
        }
        assert!(checked > 3000, "only {checked} fields compared");
    }
}
