//! An apply configuration merged into an object without ownership (upstream's
//! `ApplyStructuredMergeDiff` of mutating admission policies): structs and granular
//! maps merged field by field, list-maps item by key, sets by value, as server-side
//! apply merges, but no managedFields are read or written.
//!
//! As upstream, a configuration that sets anything atomic (an atomic list, map or
//! struct) is refused rather than replacing it: `may not mutate atomic arrays, maps or
//! structs: .spec.x`; fields the type does not know are set as written.
//!
//! Invariants: pure (the object is copied, never changed in place); the configuration's
//! `apiVersion` and `kind` are the object's (upstream sets the patch's kind to the
//! object's); recursion is bounded by the configuration's depth, which the CEL
//! evaluator already bounds.

use super::{Ty, merge_applied};
use crate::topology::ListType;
use serde_json::Value;

/// `obj` with `applied` merged in, or upstream's error text.
pub fn merge_apply_configuration(
    obj: &Value,
    applied: &Value,
    ty: Ty<'_>,
) -> Result<Value, String> {
    let Some(fields) = applied.as_object() else {
        return Err(format!("invalid return type: {}", json_type(applied)));
    };
    let mut atomics = Vec::new();
    find_atomics(applied, ty, "", &mut atomics);
    if !atomics.is_empty() {
        return Err(format!(
            "error applying patch: invalid ApplyConfiguration: may not mutate atomic arrays, maps or structs: {}",
            atomics.join(", ")
        ));
    }
    let mut config = fields.clone();
    config.remove("apiVersion");
    config.remove("kind");
    let mut out = obj.clone();
    merge_applied(&mut out, &Value::Object(config), ty);
    Ok(out)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// The paths of the atomic lists, maps and structs `v` (typed `ty`) sets.
fn find_atomics(v: &Value, ty: Ty<'_>, path: &str, out: &mut Vec<String>) {
    let Some(o) = v.as_object() else { return };
    for (k, x) in o {
        if ty.field(k).is_none() {
            continue;
        }
        let here = format!("{path}.{k}");
        match x {
            Value::Object(_) if ty.atomic_map(k) || ty.child(k).atomic() => out.push(here),
            Value::Object(m) if ty.is_map(k) => {
                for (mk, mv) in m {
                    find_atomics_in(mv, ty.item(k), &format!("{here}.{mk}"), out);
                }
            }
            Value::Object(_) => find_atomics(x, ty.child_or_item(k), &here, out),
            Value::Array(items) => match ty.list_type(k) {
                ListType::Atomic => out.push(here),
                _ => {
                    for (i, item) in items.iter().enumerate() {
                        find_atomics_in(item, ty.item(k), &format!("{here}[{i}]"), out);
                    }
                }
            },
            _ => {}
        }
    }
}

/// A list item or map value: atomic as a whole, or its fields looked at.
fn find_atomics_in(v: &Value, ty: Ty<'_>, path: &str, out: &mut Vec<String>) {
    if v.is_object() && ty.atomic() {
        out.push(path.to_string());
    } else {
        find_atomics(v, ty, path, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Ty<'static> {
        Ty::builtin("io.k8s.api.apps.v1.Deployment")
    }

    fn live() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"app": "web"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "a", "image": "nginx", "env": [{"name": "X", "value": "1"}]},
                    {"name": "b", "image": "busybox"}]}}}})
    }

    #[test]
    fn maps_merge_and_keyed_lists_merge_by_key() {
        let applied = json!({"metadata": {"labels": {"team": "x"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [
                {"name": "b", "env": [{"name": "Y", "value": "2"}]},
                {"name": "c", "image": "redis"}]}}}});
        let out = merge_apply_configuration(&live(), &applied, deployment()).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"app": "web", "team": "x"}));
        assert_eq!(out["spec"]["replicas"], 3);
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers.as_array().unwrap().len(), 3);
        assert_eq!(containers[0]["env"], json!([{"name": "X", "value": "1"}]));
        assert_eq!(
            containers[1],
            json!({"name": "b", "image": "busybox",
            "env": [{"name": "Y", "value": "2"}]})
        );
        assert_eq!(containers[2], json!({"name": "c", "image": "redis"}));
    }

    #[test]
    fn atomic_parts_are_refused_as_upstream() {
        let applied = json!({"spec": {"selector": {"matchLabels": {"x": "y"}},
            "template": {"spec": {"containers": [{"name": "a", "args": ["-v"]}]}}}});
        let err = merge_apply_configuration(&live(), &applied, deployment()).unwrap_err();
        assert_eq!(
            err,
            "error applying patch: invalid ApplyConfiguration: may not mutate atomic arrays, maps or structs: .spec.selector, .spec.template.spec.containers[0].args"
        );
    }

    #[test]
    fn the_kind_stays_and_a_non_object_is_refused() {
        let applied = json!({"apiVersion": "v1", "kind": "Pod", "spec": {"paused": true}});
        let out = merge_apply_configuration(&live(), &applied, deployment()).unwrap();
        assert_eq!(
            (out["apiVersion"].as_str(), out["kind"].as_str()),
            (Some("apps/v1"), Some("Deployment"))
        );
        assert_eq!(out["spec"]["paused"], true);
        let err = merge_apply_configuration(&live(), &json!([1]), deployment()).unwrap_err();
        assert_eq!(err, "invalid return type: list");
    }
}
