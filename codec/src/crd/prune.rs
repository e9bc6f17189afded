//! Pruning of unknown fields of a custom object, as upstream's structural pruning.
//!
//! Fields no schema node specifies are removed, except below
//! `x-kubernetes-preserve-unknown-fields` (where only fields a schema does specify are
//! walked) and `apiVersion`, `kind`, `metadata` at the root and in
//! `x-kubernetes-embedded-resource` nodes (the root's metadata is handled elsewhere).
//! The removed fields are returned as upstream reports them (`spec.foo`,
//! `spec.items[0].bar`), sorted, for fieldValidation Warn/Strict
//! (`unknown field "spec.foo"`). The walk follows the schema; values with no schema at
//! all are cleared iteratively, so no input makes it recurse deeper than the schema.

use super::structural::Structural;
use serde_json::Value;

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Remove unknown fields of the whole object `obj` in place; returns their paths.
pub fn prune(schema: &Structural, obj: &mut Value) -> Vec<String> {
    prune_value(schema, obj, true)
}

/// Prune a value of `schema`; `root` says whether it is a resource root (keeps
/// `apiVersion`, `kind`, `metadata`). Used for default values.
pub fn prune_value(schema: &Structural, obj: &mut Value, root: bool) -> Vec<String> {
    let mut out = Vec::new();
    walk(obj, Some(schema), root, "", &mut out);
    out.sort();
    out
}

fn key_path(parent: &str, k: &str) -> String {
    if parent.is_empty() { k.to_string() } else { format!("{parent}.{k}") }
}

/// `embedded` is true for the resource root and embedded resources.
fn walk(x: &mut Value, s: Option<&Structural>, root: bool, path: &str, out: &mut Vec<String>) {
    let Some(s) = s else {
        clear(x, path, out);
        return;
    };
    let embedded = root || s.embedded_resource;
    if s.preserve_unknown_fields {
        skip(x, s, embedded, path, out);
        return;
    }
    match x {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                let sub = s.child(&k);
                if sub.is_some() || s.additional_properties.is_some() {
                    if let Some(v) = m.get_mut(&k) {
                        walk(v, sub, false, &key_path(path, &k), out);
                    }
                } else {
                    out.push(key_path(path, &k));
                    m.shift_remove(&k);
                }
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter_mut().enumerate() {
                walk(v, s.items.as_deref(), false, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Below preserve-unknown-fields: keep unknown fields, prune inside specified ones.
fn skip(x: &mut Value, s: &Structural, embedded: bool, path: &str, out: &mut Vec<String>) {
    match x {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(sub) = s.child(k) {
                    walk(v, Some(sub), false, &key_path(path, k), out);
                }
            }
        }
        Value::Array(a) => {
            let Some(items) = s.items.as_deref() else { return };
            for (i, v) in a.iter_mut().enumerate() {
                skip(v, items, items.embedded_resource, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// A value with no schema: every field of every object in it is unknown. Iterative.
fn clear(x: &mut Value, path: &str, out: &mut Vec<String>) {
    let mut stack: Vec<(&mut Value, String)> = vec![(x, path.to_string())];
    while let Some((v, p)) = stack.pop() {
        match v {
            Value::Object(m) => {
                out.extend(m.keys().map(|k| key_path(&p, k)));
                m.clear();
            }
            Value::Array(a) => {
                for (i, item) in a.iter_mut().enumerate() {
                    stack.push((item, format!("{p}[{i}]")));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Structural {
        Structural::parse(&json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "a": {"type": "string"},
                "list": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                         "properties": {"strict": {"type": "object", "properties": {"k": {"type": "string"}}}}},
                "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {"v": {"type": "string"}}}},
                "emb": {"type": "object", "x-kubernetes-embedded-resource": true,
                        "properties": {"spec": {"type": "string"}}}
            }}}}))
        .unwrap()
    }

    #[test]
    fn removes_unknown_fields_and_reports_paths() {
        let mut obj = json!({"apiVersion": "v1", "kind": "K", "metadata": {"name": "n", "junk": 1},
            "junk": 1,
            "spec": {"a": "x", "b": 1,
                "list": [{"x": 1, "y": 2}],
                "free": {"anything": {"goes": 1}, "strict": {"k": "v", "no": 1}},
                "map": {"m1": {"v": "a", "w": "b"}},
                "emb": {"apiVersion": "a/v1", "kind": "E", "metadata": {}, "spec": "s", "extra": 1}}});
        let pruned = prune(&schema(), &mut obj);
        assert_eq!(
            pruned,
            [
                "junk",
                "spec.b",
                "spec.emb.extra",
                "spec.free.strict.no",
                "spec.list[0].y",
                "spec.map.m1.w"
            ]
        );
        assert_eq!(obj["metadata"], json!({"name": "n", "junk": 1}));
        assert_eq!(obj["spec"]["free"]["anything"], json!({"goes": 1}));
        assert_eq!(
            obj["spec"]["emb"],
            json!({"apiVersion": "a/v1", "kind": "E", "metadata": {}, "spec": "s"})
        );
        assert_eq!(obj["spec"]["list"], json!([{"x": 1}]));
    }

    #[test]
    fn values_without_schema_are_cleared_iteratively() {
        let s = Structural::parse(&json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"arr": {"type": "array"}}}}}))
        .unwrap();
        let mut deep = json!({"k": 1});
        for _ in 0..50 {
            deep = json!([deep]);
        }
        let mut obj = json!({"spec": {"arr": [deep]}});
        let pruned = prune(&s, &mut obj);
        assert_eq!(pruned.len(), 1);
        assert!(pruned[0].ends_with("[0].k"));
    }
}
