//! One mutation's result applied to the object (upstream's patchers): an apply
//! configuration merged in without ownership (`managed::mutation`), or a list of JSON
//! patch operations applied in order (the write path's RFC 6902 code). A failed `test`
//! operation leaves the object as it was, as upstream: the patch is not applied, and
//! that is not an error.
//!
//! Invariants: pure; errors are upstream's texts (`type mismatch: ...`, `JSON Patch:
//! ...`, `error applying patch: ...`), which the dispatcher reports under the policy's
//! failure policy.

use super::compile::PatchType;
use crate::rest::patch::{self, PatchType as RestPatch};
use crate::status::ApiError;
use kapi_codec::managed::Ty;
use kapi_codec::managed::mutation::merge_apply_configuration;
use serde_json::{Map, Value};

/// `object` changed by a mutation's `result`.
pub fn apply(kind: PatchType, object: &Value, result: &Value, ty: Ty<'_>) -> Result<Value, String> {
    match kind {
        PatchType::ApplyConfiguration => match result {
            Value::Object(_) => merge_apply_configuration(object, result, ty),
            other => Err(format!(
                "unsupported return type from ApplyConfiguration expression: {}",
                type_name(other)
            )),
        },
        PatchType::JsonPatch => json_patch(object, result),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null_type",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "double",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

/// The operations of a JSONPatch result, each checked to be a `JSONPatch{op, path}`.
fn operations(result: &Value) -> Result<Vec<Value>, String> {
    let Value::Array(items) = result else {
        return Err("type mismatch: JSONPatchType.expression should evaluate to array".into());
    };
    items
        .iter()
        .map(|op| {
            let fields = op.as_object().filter(|o| {
                o.get("op").is_some_and(Value::is_string)
                    && o.get("path").is_some_and(Value::is_string)
            });
            let Some(fields) = fields else {
                return Err(format!(
                    "type mismatch: JSONPatchType.expression should evaluate to array of JSONPatch, got element of {}",
                    type_name(op)
                ));
            };
            // Upstream leaves out an unset `from` and a null `value`.
            let mut clean = Map::with_capacity(4);
            for (k, v) in fields {
                let unset = v.is_null() || (k == "from" && v.as_str() == Some(""));
                if !unset {
                    clean.insert(k.clone(), v.clone());
                }
            }
            Ok(Value::Object(clean))
        })
        .collect()
}

fn json_patch(object: &Value, result: &Value) -> Result<Value, String> {
    let mut out = object.clone();
    for op in operations(result)? {
        let doc = serde_json::to_vec(&[&op]).map_err(|e| e.to_string())?;
        match patch::apply(RestPatch::Json, &out, &doc, "") {
            Ok(next) => out = next,
            Err(_) if op["op"] == "test" => return Ok(object.clone()),
            Err(e) => return Err(format!("JSON Patch: {}", error_text(&e))),
        }
    }
    Ok(out)
}

/// The text of a patch error (its cause's message, as the JSON patch library says it).
fn error_text(e: &ApiError) -> String {
    let status = e.to_status();
    let cause = status.pointer("/details/causes/0/message").and_then(Value::as_str);
    cause.or_else(|| status["message"].as_str()).unwrap_or("patch failed").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    }

    fn jp(ops: Value) -> Result<Value, String> {
        apply(PatchType::JsonPatch, &pod(), &ops, Ty::builtin("io.k8s.api.core.v1.Pod"))
    }

    #[test]
    fn json_patch_operations_apply_in_order() {
        let out = jp(json!([
            {"op": "add", "path": "/metadata/annotations", "value": {"x~y/z": "1"}},
            {"op": "add", "path": "/spec/containers/0/env", "value": [{"name": "E", "value": "v"}]},
            {"op": "replace", "path": "/metadata/labels/a", "value": "2"},
            {"op": "copy", "from": "/metadata/labels/a", "path": "/metadata/labels/b"},
            {"op": "move", "from": "/metadata/labels/b", "path": "/metadata/labels/c"},
            {"op": "remove", "path": "/metadata/annotations/x~0y~1z"},
            {"op": "test", "path": "/metadata/labels/a", "value": "2", "from": ""},
        ]))
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"a": "2", "c": "2"}));
        assert_eq!(out["metadata"]["annotations"], json!({}));
        assert_eq!(out["spec"]["containers"][0]["env"], json!([{"name": "E", "value": "v"}]));
    }

    #[test]
    fn a_failed_test_leaves_the_object_unpatched() {
        let out = jp(json!([
            {"op": "add", "path": "/metadata/labels/b", "value": "2"},
            {"op": "test", "path": "/metadata/labels/a", "value": "nope"},
        ]));
        assert_eq!(out, Ok(pod()));
    }

    #[test]
    fn bad_patches_and_results_are_errors() {
        let err = jp(json!([{"op": "remove", "path": "/spec/nope"}])).unwrap_err();
        assert!(err.starts_with("JSON Patch: remove operation does not apply"), "{err}");
        let err = jp(json!({"op": "add"})).unwrap_err();
        assert_eq!(err, "type mismatch: JSONPatchType.expression should evaluate to array");
        let err = jp(json!([1])).unwrap_err();
        assert!(err.contains("should evaluate to array of JSONPatch, got element of int"), "{err}");
        let ty = Ty::builtin("io.k8s.api.core.v1.Pod");
        let err = apply(PatchType::ApplyConfiguration, &pod(), &json!("x"), ty).unwrap_err();
        assert_eq!(err, "unsupported return type from ApplyConfiguration expression: string");
    }

    #[test]
    fn apply_configurations_merge() {
        let ty = Ty::builtin("io.k8s.api.core.v1.Pod");
        let cfg = json!({"metadata": {"labels": {"b": "2"}}});
        let out = apply(PatchType::ApplyConfiguration, &pod(), &cfg, ty).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    }
}
