//! Field sets in upstream's FieldsV1 form, and the set of fields an object sets.
//!
//! A node is one path element (`f:name` field, `k:{"name":"c"}` list-map item,
//! `v:"x"` set member); `member` marks the path itself as owned (`{}` leaves, or `"."`
//! in a node that also has children). List and map semantics come from the schema's
//! topology (`topology`): list-maps by their (possibly composite) keys, sets by value,
//! atomic lists and atomic structs or maps owned as a whole.

use crate::managed::Ty;
use crate::schema;
use crate::topology::{self, ListType};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    pub member: bool,
    pub children: BTreeMap<String, FieldSet>,
}

/// Metadata fields a manager can own (upstream strips the rest from every set: name,
/// namespace, uid, resourceVersion, generation, creationTimestamp, managedFields, ...).
pub(crate) const OWNED_METADATA: &[&str] =
    &["generateName", "labels", "annotations", "finalizers", "ownerReferences"];

impl FieldSet {
    pub fn leaf() -> Self {
        FieldSet { member: true, children: BTreeMap::new() }
    }

    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// Parse FieldsV1 JSON.
    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let Value::Object(m) = v else { return FieldSet::default() };
        let mut set =
            FieldSet { member: m.is_empty() || m.contains_key("."), ..Default::default() };
        for (k, child) in m.iter().filter(|(k, _)| *k != ".") {
            set.children.insert(k.clone(), FieldSet::from_fields_v1(child));
        }
        set
    }

    /// FieldsV1 JSON.
    pub fn to_fields_v1(&self) -> Value {
        self.clone().into_fields_v1()
    }

    /// FieldsV1 JSON, moving the set's path elements into it (no copies).
    pub fn into_fields_v1(self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, c) in self.children {
            if !c.is_empty() {
                m.insert(k, c.into_fields_v1());
            }
        }
        Value::Object(m)
    }

    pub fn union(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (k, c) in &other.children {
            match self.children.get_mut(k) {
                Some(mine) => mine.union(c),
                None => {
                    self.children.insert(k.clone(), c.clone());
                }
            }
        }
    }

    /// Remove every member of `other` from `self`.
    pub fn subtract(&mut self, other: &FieldSet) {
        if other.member {
            self.member = false;
        }
        for (k, c) in &other.children {
            if let Some(mine) = self.children.get_mut(k) {
                mine.subtract(c);
                if mine.is_empty() {
                    self.children.remove(k);
                }
            }
        }
    }

    /// Members in both.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet { member: self.member && other.member, ..Default::default() };
        for (k, c) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = c.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    /// Every member path with whether it is a leaf (a member without member children,
    /// whose value is compared; other members only assert existence).
    pub fn members(&self) -> Vec<(Vec<String>, bool)> {
        let mut out = Vec::new();
        self.collect_members(&mut Vec::new(), &mut out);
        out
    }

    fn collect_members(&self, prefix: &mut Vec<String>, out: &mut Vec<(Vec<String>, bool)>) {
        if self.member {
            out.push((prefix.clone(), self.children.values().all(FieldSet::is_empty)));
        }
        for (k, c) in &self.children {
            prefix.push(k.clone());
            c.collect_members(prefix, out);
            prefix.pop();
        }
    }

    /// Whether the node at `path` has no member children (false when absent).
    pub fn is_leaf_at(&self, path: &[String]) -> bool {
        let mut cur = self;
        for el in path {
            match cur.children.get(el) {
                Some(c) => cur = c,
                None => return false,
            }
        }
        cur.children.values().all(FieldSet::is_empty)
    }

    /// Whether `path` is a member.
    pub fn contains(&self, path: &[String]) -> bool {
        let mut cur = self;
        for el in path {
            match cur.children.get(el) {
                Some(c) => cur = c,
                None => return false,
            }
        }
        cur.member
    }

    /// Every member path.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (k, c) in &self.children {
            prefix.push(k.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }

    /// Add a child node unless it owns nothing.
    fn insert_child(&mut self, key: String, child: FieldSet) {
        if !child.is_empty() {
            self.children.insert(key, child);
        }
    }

    /// Insert a member path.
    pub fn insert(&mut self, path: &[String]) {
        match path.split_first() {
            None => self.member = true,
            Some((head, rest)) => match self.children.get_mut(head) {
                Some(child) => child.insert(rest),
                None => self.children.entry(head.clone()).or_default().insert(rest),
            },
        }
    }
}

/// `.spec.containers[name="c"].image` style rendering of a path, as upstream's conflict
/// messages show it.
pub fn path_string(path: &[String]) -> String {
    let mut out = String::new();
    for el in path {
        if let Some(f) = el.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = el.strip_prefix("k:") {
            let keys: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
            let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = el.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        }
    }
    out
}

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// The built-in definition a property refers to (through arrays and maps when `items`),
/// read from the schemas (the compiled form is `managed::Ty`).
pub fn child_definition(definition: Option<&str>, field: &str, items: bool) -> Option<String> {
    let prop = schema::builtin().get(definition?)?.get("properties")?.get(field)?;
    let s =
        if items { prop.get("items").or_else(|| prop.get("additionalProperties"))? } else { prop };
    let r = s
        .get("$ref")
        .or_else(|| s.get("allOf").and_then(|a| a.get(0)).and_then(|x| x.get("$ref")))?
        .as_str()?;
    r.strip_prefix("#/definitions/").map(String::from)
}

/// The list-map key of an item (`k:{"containerPort":80,"protocol":"TCP"}`): its key
/// fields sorted by name, an omitted one by its default; None when an item lacks a key
/// without a default or is not an object.
pub fn item_key(item: &Value, list: ListType<'_>) -> Option<String> {
    let ListType::Map(_) = list else { return None };
    let o = item.as_object()?;
    let mut keys: Vec<&str> = list.keys().collect();
    keys.sort_unstable();
    let mut m = Map::new();
    for key in keys {
        let v = o.get(key).cloned().or_else(|| list.key_default(key))?;
        m.insert(key.to_string(), v);
    }
    Some(format!("k:{}", Value::Object(m)))
}

/// Whether a list-map item has the key values `keys` (omitted key fields take their
/// defaults).
pub fn item_has_key(item: &Value, keys: &Map<String, Value>) -> bool {
    let Some(o) = item.as_object() else { return false };
    keys.iter().all(|(k, want)| {
        o.get(k).cloned().or_else(|| topology::key_default(k)).as_ref() == Some(want)
    })
}

/// The fields `obj` (of type `ty`) sets, for the main resource (`status` is left out) or
/// for its status subresource (only `status`).
pub fn object_fields(obj: &Value, ty: Ty<'_>, status: bool) -> FieldSet {
    let mut set = FieldSet::default();
    let Value::Object(m) = obj else { return set };
    for (k, v) in m {
        let wanted = match k.as_str() {
            "apiVersion" | "kind" => false,
            "status" => status,
            "metadata" => !status,
            _ => !status,
        };
        if !wanted {
            continue;
        }
        let child = if k == "metadata" { metadata_fields(v) } else { value_fields(v, ty, k) };
        if !child.is_empty() {
            set.children.insert(format!("f:{k}"), child);
        }
    }
    set
}

fn metadata_fields(meta: &Value) -> FieldSet {
    let mut set = FieldSet::default();
    let Value::Object(m) = meta else { return set };
    let ty = Ty::builtin(OBJECT_META);
    for k in OWNED_METADATA {
        if let Some(v) = m.get(*k) {
            set.children.insert(format!("f:{k}"), value_fields(v, ty, k));
        }
    }
    set
}

/// The fields of `v`, the value of `field` in an object of type `ty`, as upstream's
/// `ToFieldSet` (the applied configuration's set): scalars and atomic values are
/// members; structs and granular maps are not (an empty or null one owns nothing), their
/// entries are; list-map items and set members are, and so is every entry of a granular
/// map (`.` when it has fields of its own).
fn value_fields(v: &Value, ty: Ty<'_>, field: &str) -> FieldSet {
    match v {
        Value::Object(m) if !ty.atomic_map(field) => map_fields(m, ty, field),
        Value::Array(items) => list_fields(items, ty, field).unwrap_or_else(FieldSet::leaf),
        Value::Null if ty.granular(field) => FieldSet::default(),
        _ => FieldSet::leaf(),
    }
}

/// A struct member by member, a granular map entry by entry (each entry a member).
fn map_fields(m: &Map<String, Value>, ty: Ty<'_>, field: &str) -> FieldSet {
    let mut set = FieldSet::default();
    if ty.is_map(field) {
        let item = ty.item(field);
        for (k, c) in m {
            let mut child = match c {
                Value::Object(_) if !item.atomic() => value_fields_of(c, item),
                _ => FieldSet::default(),
            };
            child.member = true;
            set.children.insert(format!("f:{k}"), child);
        }
        return set;
    }
    let child = ty.child(field);
    for (k, c) in m {
        set.insert_child(format!("f:{k}"), value_fields(c, child, k));
    }
    set
}

/// A list-map item by key, a set member by value; None for atomic lists (and items
/// without a key), which are owned as a whole.
fn list_fields(items: &[Value], ty: Ty<'_>, field: &str) -> Option<FieldSet> {
    let list = ty.list_type(field);
    let item_ty = ty.item(field);
    let mut set = FieldSet::default();
    for item in items {
        let key = match list {
            ListType::Map(_) => item_key(item, list)?,
            ListType::Set => format!("v:{item}"),
            ListType::Atomic => return None,
        };
        let mut node = match item {
            Value::Object(_) if !item_ty.atomic() => value_fields_of(item, item_ty),
            _ => FieldSet::default(),
        };
        node.member = true;
        set.children.insert(key, node);
    }
    Some(set)
}

/// The fields of an object value of type `ty` (struct members).
fn value_fields_of(v: &Value, ty: Ty<'_>) -> FieldSet {
    let mut set = FieldSet::default();
    if let Value::Object(m) = v {
        for (k, c) in m {
            set.insert_child(format!("f:{k}"), value_fields(c, ty, k));
        }
    }
    set
}

/// The value at `path` in `obj`, if present.
pub fn value_at<'v>(obj: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut cur = obj;
    for el in path {
        cur = step(cur, el)?;
    }
    Some(cur)
}

fn step<'v>(cur: &'v Value, el: &str) -> Option<&'v Value> {
    if let Some(f) = el.strip_prefix("f:") {
        return cur.get(f);
    }
    let items = cur.as_array()?;
    if let Some(k) = el.strip_prefix("k:") {
        let keys: Map<String, Value> = serde_json::from_str(k).ok()?;
        return items.iter().find(|i| item_has_key(i, &keys));
    }
    if let Some(v) = el.strip_prefix("v:") {
        let want: Value = serde_json::from_str(v).ok()?;
        return items.iter().find(|i| **i == want);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEPLOYMENT: &str = "io.k8s.api.apps.v1.Deployment";

    /// An applied configuration's set (upstream's `ToFieldSet`): list items carry `.`,
    /// structs do not, an empty struct (`securityContext: {}`) owns nothing.
    #[test]
    fn fields_of_a_deployment_as_upstream_writes_them() {
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "uid": "u", "labels": {"app": "x"}, "finalizers": ["f"]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}},
                "template": {"metadata": {"labels": {"app": "x"}},
                    "spec": {"containers": [{"name": "c", "image": "i", "args": ["a"]}], "securityContext": {}}}},
            "status": {"replicas": 2}
        });
        let set = object_fields(&d, Ty::builtin(DEPLOYMENT), false);
        let want = json!({
            "f:metadata": {"f:finalizers": {"v:\"f\"": {}}, "f:labels": {"f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:selector": {},
                "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:args": {}, "f:image": {}, "f:name": {}}}}}}
        });
        assert_eq!(set.to_fields_v1(), want);
        assert_eq!(FieldSet::from_fields_v1(&want), set);
        let status = object_fields(&d, Ty::builtin(DEPLOYMENT), true);
        assert_eq!(status.to_fields_v1(), json!({"f:status": {"f:replicas": {}}}));
    }

    #[test]
    fn set_algebra_and_paths() {
        let mut a = FieldSet::default();
        a.insert(&["f:spec".into(), "f:replicas".into()]);
        a.insert(&["f:spec".into(), "f:paused".into()]);
        let mut b = FieldSet::default();
        b.insert(&["f:spec".into(), "f:replicas".into()]);
        assert_eq!(a.intersection(&b), b);
        a.subtract(&b);
        assert_eq!(a.paths(), vec![vec!["f:spec".to_string(), "f:paused".to_string()]]);
        let p = vec![
            "f:spec".into(),
            "f:containers".into(),
            "k:{\"name\":\"c\"}".into(),
            "f:image".into(),
        ];
        assert_eq!(path_string(&p), ".spec.containers[name=\"c\"].image");
        let obj = json!({"spec": {"containers": [{"name": "c", "image": "i"}]}});
        assert_eq!(value_at(&obj, &p), Some(&json!("i")));
    }
}
