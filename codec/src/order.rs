//! Upstream's field order for objects of built-in types: Go's JSON encoder writes a
//! struct's fields in declaration order (`kind`, `apiVersion` first from the embedded
//! TypeMeta; embedded structs' fields where the struct is embedded) and a map's keys
//! sorted. The declaration order is the order of `generated.proto` (kept by k8s-pb and
//! the protobuf tables; the field numbers are not in that order).
//!
//! [`canonicalize`] puts an object tree into that order in place, once, when a write is
//! stored, so every later encoding (stored bytes, the write's answer, the watch cache's
//! shared encodings) is upstream's bytes without any read paying for it; objects decoded
//! from upstream's protobuf are put in order the same way. Nodes already in order are
//! only checked. Values without a message (raw JSON, custom resources) keep their order.
//! Quantities are written in their canonical text on the same walk, as upstream's
//! `Quantity` marshals itself.

use crate::protobuf::table::{Special, Ty, tables};
use crate::quantity::Quantity;
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// Rank of a key not declared by the message: after every declared one, in tree order.
const UNKNOWN: u16 = u16::MAX;

/// Where a JSON key of a message sits and how its value is shaped.
#[derive(Debug, Clone, Copy)]
struct Key {
    rank: u16,
    ty: Ty,
    repeated: bool,
    map: bool,
}

/// The JSON keys of one message (embedded structs flattened): sorted by name (lookups)
/// and in rank order (the walk of an object already in order: a forward scan that
/// compares lengths before bytes, so it rarely leaves the layout's own memory).
struct Layout {
    by_name: Vec<(String, Key)>,
    by_rank: Vec<(String, Key)>,
}

fn layouts() -> &'static [Layout] {
    static L: OnceLock<Vec<Layout>> = OnceLock::new();
    L.get_or_init(|| (0..tables().messages.len()).map(layout).collect())
}

fn layout(message: usize) -> Layout {
    let mut keys = Vec::new();
    // kind and apiVersion (TypeMeta) come first when a message does not declare them.
    let mut next = 2;
    flatten(message, &mut next, &mut keys);
    keys.sort_by(|a: &(String, Key), b| a.0.cmp(&b.0));
    keys.dedup_by(|a, b| a.0 == b.0);
    let mut by_rank = keys.clone();
    by_rank.sort_by_key(|(_, k)| k.rank);
    Layout { by_name: keys, by_rank }
}

fn flatten(message: usize, next: &mut u16, out: &mut Vec<(String, Key)>) {
    let m = &tables().messages[message];
    let mut fields: Vec<_> = m.fields.iter().collect();
    fields.sort_by_key(|f| f.order);
    for f in fields {
        match (f.inline, f.ty) {
            (true, Ty::Message(child)) => flatten(child, next, out),
            _ => {
                let key = Key { rank: *next, ty: f.ty, repeated: f.repeated, map: f.map };
                out.push((f.json.clone(), key));
                *next += 1;
            }
        }
    }
}

fn find(layout: &Layout, key: &str) -> Option<Key> {
    let names = &layout.by_name;
    names.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok().map(|i| names[i].1)
}

/// The declared key `key` at or after `cursor` in rank order, moving the cursor past it.
fn scan(layout: &Layout, cursor: &mut usize, key: &str) -> Option<Key> {
    let rest = layout.by_rank.get(*cursor..)?;
    let at = rest.iter().position(|(k, _)| k.len() == key.len() && k == key)?;
    *cursor += at + 1;
    Some(rest[at].1)
}

fn rank(layout: &Layout, key: &str) -> u16 {
    find(layout, key).map_or_else(|| undeclared_rank(key), |k| k.rank)
}

/// The rank of a key the message does not declare: TypeMeta's first, others last.
fn undeclared_rank(key: &str) -> u16 {
    match key {
        "kind" => 0,
        "apiVersion" => 1,
        _ => UNKNOWN,
    }
}

/// Put `obj`, an object of the OpenAPI definition `schema_name`
/// (`io.k8s.api.core.v1.Pod`), into upstream's field order. Unknown definitions are left
/// as they are.
/// Put `obj` (an object of `rt`) in upstream's order: Go struct order for built-in
/// kinds; for custom resources, which upstream keeps as unstructured maps that Go's
/// encoder writes with sorted keys, every object's keys sorted.
pub fn canonicalize_type(rt: &crate::ResourceType, obj: &mut Value) {
    if rt.custom.is_some() {
        sort_keys(obj);
    } else {
        canonicalize(&rt.schema_name, obj);
    }
}

/// Sort the keys of every object in `v` (iteratively: no recursion on hostile depth).
pub fn sort_keys(v: &mut Value) {
    let mut stack: Vec<&mut Value> = vec![v];
    while let Some(cur) = stack.pop() {
        match cur {
            Value::Object(m) => {
                m.sort_keys();
                stack.extend(m.values_mut());
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
}

pub fn canonicalize(schema_name: &str, obj: &mut Value) {
    if let Some(m) = tables().by_name(schema_name) {
        message(obj, m);
    }
}

fn message(v: &mut Value, m: usize) {
    let Value::Object(map) = v else { return };
    let layout = &layouts()[m];
    let (mut last, mut cursor) = (0, 0);
    let mut in_order = true;
    for (k, child) in map.iter_mut() {
        let scanned = if in_order { scan(layout, &mut cursor, k) } else { None };
        let key = scanned.or_else(|| find(layout, k));
        let r = key.map_or_else(|| undeclared_rank(k), |key| key.rank);
        in_order &= r >= last;
        last = r;
        if let Some(key) = key {
            field(child, key);
        }
    }
    if !in_order {
        reorder(map, layout);
    }
}

/// Rebuild `map` in rank order (stable: unknown keys keep their order, last).
fn reorder(map: &mut Map<String, Value>, layout: &Layout) {
    let mut entries: Vec<(u16, String, Value)> =
        std::mem::take(map).into_iter().map(|(k, v)| (rank(layout, &k), k, v)).collect();
    entries.sort_by_key(|e| e.0);
    map.extend(entries.into_iter().map(|(_, k, v)| (k, v)));
}

fn field(v: &mut Value, key: Key) {
    if key.map {
        if let Value::Object(map) = v {
            // Go writes a map's keys sorted.
            if !map.keys().is_sorted() {
                map.sort_keys();
            }
            if is_quantity(key.ty) {
                map.values_mut().for_each(resource_list_value);
            } else {
                map.values_mut().for_each(|item| value(item, key.ty));
            }
        }
    } else if key.repeated {
        if let Value::Array(items) = v {
            items.iter_mut().for_each(|item| value(item, key.ty));
        }
    } else {
        value(v, key.ty);
    }
}

fn value(v: &mut Value, ty: Ty) {
    let Ty::Message(m) = ty else { return };
    match tables().messages[m].special {
        None => message(v, m),
        Some(Special::PropsOrArray | Special::PropsOrBool | Special::PropsOrStringArray) => {
            schema_props(v, m);
        }
        Some(Special::Quantity) => canonical_quantity(v),
        // Scalars in JSON, or raw JSON written as it came.
        Some(_) => {}
    }
}

fn is_quantity(ty: Ty) -> bool {
    matches!(ty, Ty::Message(m) if tables().messages[m].special == Some(Special::Quantity))
}

/// A value of a map of quantities (a `ResourceList`: limits, requests, capacity, hard,
/// overhead): rounded up to thousandths, as upstream's `SetDefaults_ResourceList` does
/// (`100u` is stored as `1m`), then written canonically.
fn resource_list_value(v: &mut Value) {
    let Some(mut q) = Quantity::from_json(v) else { return };
    q.round_up_milli();
    if q.as_given().is_none_or(|given| v.as_str() != Some(given)) {
        *v = Value::String(q.to_string());
    }
}

/// A quantity as upstream's JSON writes it: its canonical text (`1000m` is `1`, `0.5`
/// is `500m`, `2048Ki` is `2Mi`; a bare number becomes a string). A value that is not a
/// quantity is left alone (the decoder refuses one in a request body).
fn canonical_quantity(v: &mut Value) {
    let Some(q) = Quantity::from_json(v) else { return };
    if q.as_given().is_none_or(|given| v.as_str() != Some(given)) {
        *v = Value::String(q.to_string());
    }
}

/// A `JSONSchemaPropsOr*` value: a schema object (or, for OrArray, a list of them).
fn schema_props(v: &mut Value, wrapper: usize) {
    let props = tables().messages[wrapper].fields.iter().find_map(|f| match f.ty {
        Ty::Message(c) if tables().messages[c].special.is_none() => Some(c),
        _ => None,
    });
    let Some(props) = props else { return };
    match v {
        Value::Object(_) => message(v, props),
        Value::Array(items) => items.iter_mut().for_each(|item| message(item, props)),
        _ => {}
    }
}

/// Whether the keys of `map`, an object of message `m`, are in upstream's order at this
/// level (what [`canonicalize`] would leave as it is; nested values not looked at).
pub(crate) fn keys_in_order(m: usize, map: &Map<String, Value>) -> bool {
    let layout = &layouts()[m];
    let (mut last, mut cursor) = (0, 0);
    for k in map.keys() {
        let key = scan(layout, &mut cursor, k).or_else(|| find(layout, k));
        let r = key.map_or_else(|| undeclared_rank(k), |key| key.rank);
        if r < last {
            return false;
        }
        last = r;
    }
    true
}

/// Whether [`canonicalize`] leaves the quantity `v` as it is, or as equal text (its
/// canonical text, or not a quantity at all).
pub(crate) fn quantity_is_canonical(v: &Value) -> bool {
    let Some(q) = Quantity::from_json(v) else { return true };
    match (q.as_given(), v.as_str()) {
        (Some(given), Some(s)) => given == s,
        (None, Some(s)) => q.to_string() == s,
        _ => false,
    }
}

/// Set `metadata.<key>` of an object in canonical order: replaced where it is, or
/// inserted where upstream's ObjectMeta declares it (the rest of the metadata is taken
/// to be in order already).
pub fn set_meta(obj: &mut Value, key: &str, value: Value) {
    let Some(o) = obj.as_object_mut() else { return };
    let Some(meta) =
        o.entry("metadata").or_insert_with(|| Value::Object(Map::new())).as_object_mut()
    else {
        return;
    };
    if let Some(slot) = meta.get_mut(key) {
        *slot = value;
        return;
    }
    let at = meta_position(meta.keys().map(String::as_str), key);
    meta.shift_insert(at, key.into(), value);
}

/// Where [`set_meta`] inserts `key` among metadata keys `keys` (in order, `key` not among
/// them): before the first that upstream's ObjectMeta declares after it, else last. The
/// stored-JSON writer uses it to note where a value's resourceVersion goes.
pub fn meta_position<'k>(keys: impl Iterator<Item = &'k str>, key: &str) -> usize {
    const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
    let Some(layout) = tables().by_name(OBJECT_META).map(|m| &layouts()[m]) else {
        return keys.count();
    };
    let r = rank(layout, key);
    let mut n = 0;
    for k in keys {
        if rank(layout, k) > r {
            return n;
        }
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    /// Custom objects are written as upstream writes unstructured maps: sorted keys.
    #[test]
    fn custom_objects_get_sorted_keys_at_every_level() {
        let mut v = serde_json::json!({"spec": {"z": 1, "a": [{"y": 1, "b": 2}]}, "kind": "W", "apiVersion": "x/v1"});
        sort_keys(&mut v);
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"apiVersion":"x/v1","kind":"W","spec":{"a":[{"b":2,"y":1}],"z":1}}"#
        );
    }

    use super::*;
    use serde_json::json;

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().unwrap().keys().map(String::as_str).collect()
    }

    /// Regression: quantities were stored as the client wrote them (`1000m`, `2048Ki`,
    /// bare numbers); upstream writes each in its canonical text.
    #[test]
    fn quantities_take_their_canonical_text() {
        let mut pod = json!({"spec": {"containers": [{"name": "c", "resources": {
            "limits": {"cpu": "1000m", "memory": "2048Ki", "nvidia.com/gpu": 2},
            "requests": {"cpu": "0.5", "memory": "1Gi", "ephemeral-storage": "1e3"}}}]}});
        canonicalize("io.k8s.api.core.v1.Pod", &mut pod);
        let r = &pod["spec"]["containers"][0]["resources"];
        assert_eq!(r["limits"], json!({"cpu": "1", "memory": "2Mi", "nvidia.com/gpu": "2"}));
        assert_eq!(
            r["requests"],
            json!({"cpu": "500m", "ephemeral-storage": "1e3", "memory": "1Gi"})
        );
    }

    /// Regression: resource lists kept values finer than a thousandth (`100u`, `1n`),
    /// which upstream's `SetDefaults_ResourceList` rounds up (`1m`); a lone quantity
    /// (an emptyDir's sizeLimit) is not a resource list and keeps its value.
    #[test]
    fn resource_lists_are_rounded_up_to_thousandths() {
        let mut pod = json!({"spec": {"containers": [{"name": "c", "resources": {
            "limits": {"cpu": "100u", "memory": "1.5", "example.com/x": "1.0001"},
            "requests": {"cpu": "1n", "memory": "-1n"}}}],
            "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1n"}}]}});
        canonicalize("io.k8s.api.core.v1.Pod", &mut pod);
        let r = &pod["spec"]["containers"][0]["resources"];
        assert_eq!(r["limits"], json!({"cpu": "1m", "example.com/x": "1001m", "memory": "1500m"}));
        assert_eq!(r["requests"], json!({"cpu": "1m", "memory": "-1m"}));
        assert_eq!(pod["spec"]["volumes"][0]["emptyDir"]["sizeLimit"], "1n");
    }

    /// Regression: objects kept the client's field order (kubectl sends keys sorted),
    /// so kapi's bytes differed from upstream's.
    #[test]
    fn pods_take_go_struct_order() {
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"resourceVersion": "5", "name": "p", "labels": {"z": "1", "a": "2"},
                "creationTimestamp": "2026-01-01T00:00:00Z", "namespace": "d", "uid": "u"},
            "spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "i",
                "ports": [{"protocol": "TCP", "containerPort": 80}]}],
                "initContainers": [], "volumes": [{"name": "v", "emptyDir": {}}]},
            "status": {"phase": "Pending"}
        });
        canonicalize("io.k8s.api.core.v1.Pod", &mut pod);
        assert_eq!(keys(&pod), ["kind", "apiVersion", "metadata", "spec", "status"]);
        assert_eq!(
            keys(&pod["metadata"]),
            ["name", "namespace", "uid", "resourceVersion", "creationTimestamp", "labels"]
        );
        assert_eq!(keys(&pod["metadata"]["labels"]), ["a", "z"]);
        // Go order, not tag order: initContainers (tag 20) right after volumes (tag 1).
        assert_eq!(
            keys(&pod["spec"]),
            ["volumes", "initContainers", "containers", "restartPolicy"]
        );
        assert_eq!(keys(&pod["spec"]["containers"][0]["ports"][0]), ["containerPort", "protocol"]);
        // VolumeSource is embedded: its fields sit where it is declared, after name.
        assert_eq!(keys(&pod["spec"]["volumes"][0]), ["name", "emptyDir"]);
    }

    #[test]
    fn unknown_keys_and_raw_json_keep_their_order() {
        let mut cr = json!({"b": 1, "a": {"z": 1, "y": 2}});
        canonicalize("com.example.v1.Unknown", &mut cr);
        assert_eq!(keys(&cr), ["b", "a"]);
        let mut rev = json!({"revision": 1, "data": {"z": 1, "a": 2}, "metadata": {"name": "r"},
            "apiVersion": "apps/v1", "kind": "ControllerRevision"});
        canonicalize("io.k8s.api.apps.v1.ControllerRevision", &mut rev);
        assert_eq!(keys(&rev), ["kind", "apiVersion", "metadata", "data", "revision"]);
        assert_eq!(keys(&rev["data"]), ["z", "a"]);
    }

    #[test]
    fn metadata_fields_are_set_in_place() {
        let mut obj = json!({"kind": "ConfigMap", "metadata": {"name": "c", "uid": "u",
            "creationTimestamp": "t", "labels": {}}});
        set_meta(&mut obj, "resourceVersion", json!("7"));
        set_meta(&mut obj, "deletionTimestamp", json!("t2"));
        set_meta(&mut obj, "name", json!("c2"));
        assert_eq!(
            keys(&obj["metadata"]),
            ["name", "uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "labels"]
        );
        assert_eq!(obj["metadata"]["name"], "c2");
    }
}
