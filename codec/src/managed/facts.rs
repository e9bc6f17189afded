//! What the comparison of two objects needs to know of each property of each built-in
//! type, computed once from the schemas, `go_facts.rs` and the topology tables and then
//! looked up with one hash probe per object node (the schema walk, `$ref` resolution and
//! linear table scans used to run for every node of every write).
//!
//! Invariant: every answer equals what the `fieldset`/`topology` helpers it caches give
//! for the same definition and field (tested below for every property of every type).

use crate::fieldset;
use crate::protobuf::go_facts::ROWS;
use crate::schema;
use crate::topology::{self, ListType};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::OnceLock;

/// What a property holds, as far as the zero object is concerned.
#[derive(Debug, Clone, PartialEq)]
pub enum Prop {
    Struct(&'static str),
    Time,
    Scalar(Value),
    Other,
}

/// One property of a type.
#[derive(Debug)]
pub struct Field {
    pub kind: Prop,
    /// Some when a Go non-pointer field: whether its JSON tag has `omitempty`.
    pub go: Option<bool>,
    /// A granular map (`additionalProperties`, not atomic).
    pub is_map: bool,
    /// A struct or map owned as a whole.
    pub atomic_map: bool,
    pub list_type: ListType,
    /// The type the property refers to.
    pub child: Option<&'static str>,
    /// The type of its list items or map values.
    pub item: Option<&'static str>,
}

/// One type: its properties, and its Go non-pointer fields when go_facts covers it.
#[derive(Debug)]
pub struct Definition {
    /// Whether the schema lists properties (a struct, not a scalar or free-form type).
    pub has_properties: bool,
    pub fields: HashMap<&'static str, Field>,
    pub go_values: Option<Vec<(&'static str, bool)>>,
    /// Values of this type are owned as a whole.
    pub atomic: bool,
}

/// The facts of `definition` (None for a name the built-in schemas lack).
pub fn definition(definition: &str) -> Option<&'static Definition> {
    static ALL: OnceLock<HashMap<&'static str, Definition>> = OnceLock::new();
    ALL.get_or_init(build).get(definition)
}

fn build() -> HashMap<&'static str, Definition> {
    let mut values: HashMap<String, Vec<(&'static str, bool)>> = HashMap::new();
    for (package, message, fields) in ROWS {
        let v = fields
            .split_whitespace()
            .map(|w| w.strip_prefix('!').map_or((w, true), |n| (n, false)))
            .collect();
        values.insert(format!("{package}{message}"), v);
    }
    let schemas = schema::builtin();
    schemas
        .definitions
        .iter()
        .map(|(name, s)| {
            let go_values = values.remove(name.as_str());
            let props = s.get("properties").and_then(Value::as_object);
            let fields = props
                .into_iter()
                .flatten()
                .map(|(k, p)| (k.as_str(), field(name, k, p, go_values.as_deref())))
                .collect();
            let def = Definition {
                has_properties: props.is_some(),
                fields,
                go_values,
                atomic: topology::atomic_type(name),
            };
            (name.as_str(), def)
        })
        .collect()
}

fn field(
    def: &'static str,
    k: &'static str,
    p: &'static Value,
    go: Option<&[(&str, bool)]>,
) -> Field {
    let d = Some(def);
    Field {
        kind: prop_kind(p),
        go: go.into_iter().flatten().find(|(n, _)| *n == k).map(|(_, o)| *o),
        is_map: fieldset::is_map_property(d, k),
        atomic_map: fieldset::is_atomic_map(d, k),
        list_type: fieldset::list_type(d, k),
        child: static_name(fieldset::child_definition(d, k, false)),
        item: static_name(fieldset::child_definition(d, k, true)),
    }
}

/// The schemas' own copy of a definition name (they live for the whole process).
fn static_name(name: Option<String>) -> Option<&'static str> {
    let name = name?;
    schema::builtin().definitions.get_key_value(&name).map(|(k, _)| k.as_str())
}

fn prop_kind(prop: &'static Value) -> Prop {
    match prop.get("type").and_then(Value::as_str) {
        Some("string") => return Prop::Scalar(json!("")),
        Some("integer") | Some("number") => return Prop::Scalar(json!(0)),
        Some("boolean") => return Prop::Scalar(json!(false)),
        Some(_) => return Prop::Other,
        None => {}
    }
    let r = prop
        .get("$ref")
        .or_else(|| prop.get("allOf").and_then(|a| a.get(0)).and_then(|x| x.get("$ref")))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/definitions/"));
    match r {
        Some(d) if d.ends_with(".meta.v1.Time") || d.ends_with(".meta.v1.MicroTime") => Prop::Time,
        Some(d) if schema::builtin().get(d).is_some_and(|s| s.get("properties").is_some()) => {
            match static_name(Some(d.to_string())) {
                Some(s) => Prop::Struct(s),
                None => Prop::Other,
            }
        }
        _ => Prop::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_property_answers_as_the_helpers_do() {
        for (name, s) in &schema::builtin().definitions {
            let facts = definition(name).expect("every definition has facts");
            let props = s.get("properties").and_then(Value::as_object);
            for k in props.into_iter().flat_map(|p| p.keys()) {
                let f = &facts.fields[k.as_str()];
                let d = Some(name.as_str());
                assert_eq!(f.is_map, fieldset::is_map_property(d, k), "{name}.{k}");
                assert_eq!(f.atomic_map, fieldset::is_atomic_map(d, k), "{name}.{k}");
                assert_eq!(f.list_type, fieldset::list_type(d, k), "{name}.{k}");
                let child = fieldset::child_definition(d, k, false);
                assert_eq!(f.child, child.as_deref(), "{name}.{k}");
                let item = fieldset::child_definition(d, k, true);
                assert_eq!(f.item, item.as_deref(), "{name}.{k}");
            }
            assert_eq!(facts.atomic, fieldset::is_atomic_type(Some(name)), "{name}");
        }
    }

    #[test]
    fn pod_spec_facts() {
        let spec = definition("io.k8s.api.core.v1.PodSpec").unwrap();
        let containers = &spec.fields["containers"];
        assert_eq!(containers.list_type, ListType::Map("name"));
        assert_eq!(containers.item, Some("io.k8s.api.core.v1.Container"));
        assert_eq!(spec.fields["nodeName"].kind, Prop::Scalar(json!("")));
        assert!(spec.fields["nodeSelector"].is_map);
        let pod = definition("io.k8s.api.core.v1.Pod").unwrap();
        assert_eq!(pod.fields["spec"].kind, Prop::Struct("io.k8s.api.core.v1.PodSpec"));
        assert!(pod.go_values.is_some(), "go_facts has a row for Pod");
        assert!(definition("no.such.Type").is_none());
    }
}
