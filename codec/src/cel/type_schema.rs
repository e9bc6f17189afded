//! The whole schema of a served kind, as a type checker needs it: a built-in type's
//! definition (or a custom resource's `openAPIV3Schema` with `apiVersion`, `kind` and
//! the full `ObjectMeta`, as the published OpenAPI has it) with every `$ref` inlined, so
//! that a [`super::Var`] can be typed by it (upstream's schema resolver does the same
//! from the OpenAPI documents).
//!
//! Invariants: the result is finite and bounded: a reference to a definition already
//! being inlined on the current path (a recursive type, such as `JSONSchemaProps`) and
//! everything past [`MAX_NODES`] inlined nodes become `{}` (a `dyn` value for CEL).

use serde_json::{Map, Value};

use crate::registry::ResourceType;

/// The most schema nodes one inlined schema holds.
pub const MAX_NODES: usize = 200_000;

const REF_PREFIX: &str = "#/definitions/";

/// The inlined schema of `rt`'s kind (None: a built-in type without a definition).
pub fn of(rt: &ResourceType) -> Option<Value> {
    let root = match crate::openapi::custom_definition(rt) {
        Some(def) => def,
        None => crate::schema::builtin().get(&rt.schema_name)?.clone(),
    };
    let mut budget = MAX_NODES;
    Some(inline(&root, &mut Vec::new(), &mut budget))
}

/// The definition a node names by `$ref` (also as a single-element `allOf`).
fn reference(node: &Map<String, Value>) -> Option<&str> {
    let direct = node.get("$ref");
    let all_of = node.get("allOf").and_then(Value::as_array).filter(|a| a.len() == 1);
    direct
        .or_else(|| all_of.and_then(|a| a[0].get("$ref")))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(REF_PREFIX))
}

fn inline(v: &Value, path: &mut Vec<String>, budget: &mut usize) -> Value {
    if *budget == 0 {
        return Value::Object(Map::new());
    }
    *budget -= 1;
    match v {
        Value::Object(m) => {
            if let Some(name) = reference(m) {
                let Some(def) = crate::schema::builtin().get(name) else {
                    return Value::Object(Map::new());
                };
                if path.iter().any(|p| p == name) {
                    return Value::Object(Map::new());
                }
                path.push(name.to_string());
                let out = inline(def, path, budget);
                path.pop();
                return out;
            }
            Value::Object(m.iter().map(|(k, x)| (k.clone(), inline(x, path, budget))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| inline(x, path, budget)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn builtin_kinds_are_inlined_down_to_their_leaves() {
        let reg = Registry::known();
        let deploy = reg.get("apps", "v1", "deployments").unwrap();
        let s = of(deploy).unwrap();
        let replicas = s.pointer("/properties/spec/properties/replicas/type");
        assert_eq!(replicas, Some(&Value::from("integer")));
        let image = s.pointer(
            "/properties/spec/properties/template/properties/spec/properties/containers/items/properties/image/type",
        );
        assert_eq!(image, Some(&Value::from("string")));
        let labels = s.pointer("/properties/metadata/properties/labels/additionalProperties/type");
        assert_eq!(labels, Some(&Value::from("string")));
        assert!(!s.to_string().contains("$ref"));
    }

    #[test]
    fn recursive_types_are_cut_where_they_recur() {
        let reg = Registry::known();
        let crd = reg.get("apiextensions.k8s.io", "v1", "customresourcedefinitions").unwrap();
        let s = of(crd).unwrap();
        let props = s.pointer(
            "/properties/spec/properties/versions/items/properties/schema/properties/openAPIV3Schema/properties/properties",
        );
        // JSONSchemaProps.properties holds JSONSchemaProps again: cut to `{}`.
        assert_eq!(props.and_then(|p| p.get("additionalProperties")), Some(&serde_json::json!({})));
    }
}
