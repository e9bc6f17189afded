//! Strategic merge patch (`application/strategic-merge-patch+json`) as upstream applies
//! it: a JSON merge patch whose lists merge element-wise where the schema says so
//! (`patch_meta`), with the directives `$patch` (replace/delete/merge), `$retainKeys`,
//! `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>`.
//!
//! The walk follows the schemas (`schema::builtin`) from the patched kind's definition so
//! each field's strategy is known; fields without a schema merge as plain maps.

use crate::error::CodecError;
use crate::fieldset;
use crate::patch_meta::{self, FieldStrategy};
use serde_json::{Map, Value};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";
const SET_ORDER: &str = "$setElementOrder/";

fn bad(msg: impl Into<String>) -> CodecError {
    CodecError::Malformed(msg.into())
}

/// Apply `patch` to `original`, an object of the type named `definition`.
pub fn apply(original: &Value, patch: &Value, definition: &str) -> Result<Value, CodecError> {
    let Value::Object(p) = patch else {
        return Err(bad("strategic merge patch must be a JSON object"));
    };
    let mut out = match original {
        Value::Object(o) => o.clone(),
        _ => Map::new(),
    };
    if merge_map(&mut out, p, Some(definition), 0)? == Outcome::Delete {
        return Ok(Value::Object(Map::new()));
    }
    Ok(Value::Object(out))
}

/// The Go type name upstream's `ErrBadArgType` gives a JSON value.
fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Keep,
    Delete,
}

const MAX_DEPTH: usize = 64;

fn merge_map(
    orig: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    definition: Option<&str>,
    depth: usize,
) -> Result<Outcome, CodecError> {
    if depth > MAX_DEPTH {
        return Err(bad("strategic merge patch nests too deeply"));
    }
    match patch.get(PATCH).and_then(Value::as_str) {
        Some("replace") => {
            *orig = strip_directives(patch);
            return Ok(Outcome::Keep);
        }
        Some("delete") => return Ok(Outcome::Delete),
        Some("merge") | None => {}
        Some(other) => return Err(bad(format!("Unknown patch type: {other}"))),
    }
    if let Some(keep) = patch.get(RETAIN_KEYS) {
        let keep = keep.as_array().ok_or_else(|| bad("invalid patch format of retainKeys"))?;
        orig.retain(|k, _| keep.iter().any(|x| x.as_str() == Some(k)) || patch.contains_key(k));
    }
    let mut orders = Vec::new();
    for (key, value) in patch {
        if key == PATCH || key == RETAIN_KEYS {
            continue;
        }
        if let Some(field) = key.strip_prefix(DELETE_PRIMITIVE) {
            let drop =
                value.as_array().ok_or_else(|| bad("invalid patch format of primitive list"))?;
            if let Some(Value::Array(items)) = orig.get_mut(field) {
                items.retain(|i| !drop.contains(i));
            }
            continue;
        }
        if let Some(field) = key.strip_prefix(SET_ORDER) {
            if !value.is_array() {
                return Err(CodecError::Unclassified(format!(
                    "expected a []interface {{}}, but received a {}",
                    go_kind(value)
                )));
            }
            orders.push((field.to_string(), value));
            continue;
        }
        if value.is_null() {
            orig.remove(key);
            continue;
        }
        let strategy = definition.map(|d| patch_meta::lookup(d, key)).unwrap_or_default();
        merge_field(orig, key, value, strategy, definition, depth)?;
    }
    for (field, order) in orders {
        let strategy = definition.map(|d| patch_meta::lookup(d, &field)).unwrap_or_default();
        if let (Some(Value::Array(items)), Value::Array(order)) = (orig.get_mut(&field), order) {
            reorder(items, order, strategy.merge_key);
        }
    }
    Ok(Outcome::Keep)
}

fn merge_field(
    orig: &mut Map<String, Value>,
    key: &str,
    value: &Value,
    strategy: FieldStrategy,
    definition: Option<&str>,
    depth: usize,
) -> Result<(), CodecError> {
    match value {
        Value::Object(p) if !strategy.replace => {
            let child_def = fieldset::child_definition(definition, key, false);
            let mut child = match orig.remove(key) {
                Some(Value::Object(o)) => o,
                _ => Map::new(),
            };
            if merge_map(&mut child, p, child_def.as_deref(), depth + 1)? == Outcome::Keep {
                orig.insert(key.to_string(), Value::Object(child));
            }
        }
        Value::Array(p) if strategy.merge => {
            let item_def = fieldset::child_definition(definition, key, true);
            let mut items = match orig.remove(key) {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            };
            merge_list(&mut items, p, strategy.merge_key, item_def.as_deref(), depth)?;
            orig.insert(key.to_string(), Value::Array(items));
        }
        Value::Array(p) => {
            let cleaned = p.iter().map(|v| match v {
                Value::Object(m) => Value::Object(strip_directives(m)),
                other => other.clone(),
            });
            orig.insert(key.to_string(), Value::Array(cleaned.collect()));
        }
        Value::Object(p) => {
            orig.insert(key.to_string(), Value::Object(strip_directives(p)));
        }
        other => {
            orig.insert(key.to_string(), other.clone());
        }
    }
    Ok(())
}

fn merge_list(
    items: &mut Vec<Value>,
    patch: &[Value],
    merge_key: Option<&str>,
    item_def: Option<&str>,
    depth: usize,
) -> Result<(), CodecError> {
    let directive = |v: &Value| v.get(PATCH).and_then(Value::as_str).map(String::from);
    if patch.iter().any(|v| directive(v).as_deref() == Some("replace")) {
        *items = patch.iter().filter(|v| directive(v).is_none()).cloned().collect();
        return Ok(());
    }
    let Some(key) = merge_key else {
        // A merging list of primitives: union, keeping the original order.
        for v in patch {
            if !items.contains(v) {
                items.push(v.clone());
            }
        }
        return Ok(());
    };
    for p in patch {
        let Value::Object(pm) = p else {
            return Err(bad(format!("expected a map in a list merged by {key}")));
        };
        let id = pm.get(key).ok_or_else(|| {
            bad(format!("map: {pm:?} does not contain declared merge key: {key}"))
        })?;
        let found = items.iter().position(|i| i.get(key) == Some(id));
        if directive(p).as_deref() == Some("delete") {
            items.retain(|i| i.get(key) != Some(id));
            continue;
        }
        match found {
            Some(idx) => {
                let Value::Object(existing) = &mut items[idx] else { continue };
                if merge_map(existing, pm, item_def, depth + 1)? == Outcome::Delete {
                    items.remove(idx);
                }
            }
            None => {
                let mut fresh = Map::new();
                if merge_map(&mut fresh, pm, item_def, depth + 1)? == Outcome::Keep {
                    items.push(Value::Object(fresh));
                }
            }
        }
    }
    Ok(())
}

/// `$setElementOrder`: the listed elements first, in that order; others keep theirs.
fn reorder(items: &mut Vec<Value>, order: &[Value], merge_key: Option<&str>) {
    let matches = |item: &Value, o: &Value| match merge_key {
        Some(k) => item.get(k).is_some() && item.get(k) == o.get(k),
        None => item == o,
    };
    let mut rest = std::mem::take(items);
    for o in order {
        if let Some(i) = rest.iter().position(|it| matches(it, o)) {
            items.push(rest.remove(i));
        }
    }
    items.append(&mut rest);
}

/// A patch value inserted where nothing was merges onto nothing: directives vanish.
fn strip_directives(m: &Map<String, Value>) -> Map<String, Value> {
    m.iter()
        .filter(|(k, _)| !k.starts_with('$'))
        .map(|(k, v)| {
            let v = match v {
                Value::Object(o) => Value::Object(strip_directives(o)),
                Value::Array(a) => Value::Array(
                    a.iter()
                        .filter(|x| {
                            x.get(PATCH).is_none() || x.as_object().is_some_and(|o| o.len() > 1)
                        })
                        .map(|x| match x {
                            Value::Object(o) => Value::Object(strip_directives(o)),
                            other => other.clone(),
                        })
                        .collect(),
                ),
                other => other.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POD: &str = "io.k8s.api.core.v1.Pod";
    const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x"]},
               "spec": {"containers": [
                   {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}],
                    "ports": [{"containerPort": 80}]},
                   {"name": "side", "image": "side:1"}],
                "volumes": [{"name": "data", "emptyDir": {}}]}})
    }

    /// Regression (issue #14): directives of the wrong type got kapi's own wording (and a
    /// non-list `$setElementOrder` was accepted); upstream's mergepatch errors instead.
    #[test]
    fn directive_type_errors_read_as_upstream() {
        let err = |p: Value| apply(&pod(), &p, POD).unwrap_err();
        let e = err(json!({"$retainKeys": "x"}));
        assert!(
            matches!(&e, CodecError::Malformed(m) if m == "invalid patch format of retainKeys")
        );
        let e = err(json!({"$deleteFromPrimitiveList/finalizers": "x"}));
        assert_eq!(e.to_string(), "invalid patch format of primitive list");
        let e = err(json!({"spec": {"$setElementOrder/containers": "x"}}));
        assert!(matches!(&e, CodecError::Unclassified(m)
            if m == "expected a []interface {}, but received a string"));
    }

    /// (name, original, patch, definition, expected)
    fn cases() -> Vec<(&'static str, Value, Value, &'static str, Value)> {
        let mut out = Vec::new();
        let mut set_image = pod();
        set_image["spec"]["containers"][1]["image"] = json!("side:2");
        out.push((
            "containers merge by name",
            pod(),
            json!({"spec": {"containers": [{"name": "side", "image": "side:2"}]}}),
            POD,
            set_image,
        ));
        let mut added = pod();
        added["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "new", "image": "n"}));
        out.push((
            "a new key is appended",
            pod(),
            json!({"spec": {"containers": [{"name": "new", "image": "n"}]}}),
            POD,
            added,
        ));
        let mut deleted = pod();
        deleted["spec"]["containers"].as_array_mut().unwrap().remove(0);
        out.push((
            "$patch delete removes one element",
            pod(),
            json!({"spec": {"containers": [{"name": "app", "$patch": "delete"}]}}),
            POD,
            deleted,
        ));
        let mut replaced = pod();
        replaced["spec"]["containers"] = json!([{"name": "only", "image": "o"}]);
        out.push(("$patch replace in a list replaces it", pod(),
            json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "o"}]}}), POD, replaced));
        let mut env = pod();
        env["spec"]["containers"][0]["env"] =
            json!([{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]);
        out.push(("nested lists merge by their own key", pod(),
            json!({"spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}]}]}}), POD, env));
        let mut fins = pod();
        fins["metadata"]["finalizers"] = json!(["x", "y"]);
        out.push((
            "primitive merge lists union",
            pod(),
            json!({"metadata": {"finalizers": ["y", "x"]}}),
            POD,
            fins,
        ));
        let mut dropped = pod();
        dropped["metadata"]["finalizers"] = json!([]);
        out.push((
            "$deleteFromPrimitiveList",
            pod(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
            POD,
            dropped,
        ));
        let mut unlabeled = pod();
        unlabeled["metadata"]["labels"] = json!({"b": "2"});
        out.push((
            "null deletes, maps merge",
            pod(),
            json!({"metadata": {"labels": {"a": null, "b": "2"}}}),
            POD,
            unlabeled,
        ));
        let mut reordered = pod();
        reordered["spec"]["containers"] =
            json!([pod()["spec"]["containers"][1], pod()["spec"]["containers"][0]]);
        out.push((
            "$setElementOrder reorders",
            pod(),
            json!({"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "app"}]}}),
            POD,
            reordered,
        ));
        let mut volume = pod();
        volume["spec"]["volumes"][0] = json!({"name": "data", "configMap": {"name": "cm"}});
        out.push(("$retainKeys drops the old volume source", pod(),
            json!({"spec": {"volumes": [{"name": "data", "configMap": {"name": "cm"}, "$retainKeys": ["configMap", "name"]}]}}), POD, volume));
        let dep = json!({"spec": {"replicas": 1, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
        out.push((
            "$retainKeys on a map field",
            dep.clone(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            DEPLOYMENT,
            json!({"spec": {"replicas": 1, "strategy": {"type": "Recreate"}}}),
        ));
        out.push(("a list without a strategy is replaced", json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "args": ["a", "b"]}]}}}}),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "args": ["z"]}]}}}}), DEPLOYMENT,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "args": ["z"]}]}}}})));
        let mut map_replace = pod();
        map_replace["metadata"]["labels"] = json!({"only": "this"});
        out.push((
            "$patch replace on a map",
            pod(),
            json!({"metadata": {"labels": {"$patch": "replace", "only": "this"}}}),
            POD,
            map_replace,
        ));
        let mut udp = pod();
        udp["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80, "protocol": "UDP"}]);
        out.push((
            "container ports merge by containerPort alone, as upstream's patch strategy says",
            pod(),
            json!({"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80, "protocol": "UDP"}]}]}}),
            POD,
            udp,
        ));
        out.push((
            "$patch delete on a map removes the field",
            dep.clone(),
            json!({"spec": {"strategy": {"$patch": "delete"}}}),
            DEPLOYMENT,
            json!({"spec": {"replicas": 1}}),
        ));
        let mut swapped = pod();
        swapped["metadata"]["finalizers"] = json!(["z"]);
        out.push((
            "$deleteFromPrimitiveList with an addition in the same patch",
            pod(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x", "absent"], "finalizers": ["z"]}}),
            POD,
            swapped,
        ));
        let mut ordered = pod();
        ordered["metadata"]["finalizers"] = json!(["y", "x"]);
        out.push((
            "$setElementOrder on a primitive list",
            pod(),
            json!({"metadata": {"$setElementOrder/finalizers": ["y", "x"], "finalizers": ["y"]}}),
            POD,
            ordered,
        ));
        out
    }

    #[test]
    fn strategic_merge_cases() {
        for (name, original, patch, def, want) in cases() {
            let got = apply(&original, &patch, def).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn malformed_patches_are_errors() {
        assert!(apply(&pod(), &json!([1]), POD).is_err());
        let missing_key = json!({"spec": {"containers": [{"image": "x"}]}});
        assert!(apply(&pod(), &missing_key, POD).is_err());
        assert!(apply(&pod(), &json!({"$patch": "explode"}), POD).is_err());
    }
}
