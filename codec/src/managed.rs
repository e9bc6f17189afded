//! managedFields: which manager owns which fields, kept on every write, and server-side
//! apply (merge the applied configuration, prune what the manager stopped applying,
//! answer conflicts with other managers).
//!
//! Semantics as upstream's field manager: an Update by a manager takes ownership of the
//! fields it added or changed (others lose them) and removed fields leave every set; an
//! Apply sets the manager's set to exactly the applied fields, fails on fields another
//! manager owns with a different value unless forced (then they lose them), and removes
//! from the object what this manager applied before, no longer applies and nobody else
//! owns.

use crate::fieldset::{self, FieldSet};
use crate::meta;
use crate::topology::ListType;
pub use facts::{CustomTypes, Ty};
use serde_json::{Map, Value, json};

/// Who writes, how.
#[derive(Debug, Clone, Copy)]
pub struct Manager<'a> {
    pub name: &'a str,
    pub apply: bool,
    pub subresource: Option<&'a str>,
    pub api_version: &'a str,
    pub time: &'a str,
}

/// One managedFields entry.
#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    set: FieldSet,
}

impl Entry {
    fn parse(v: &Value) -> Option<Entry> {
        Some(Entry {
            manager: v
                .as_object()?
                .get("manager")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            operation: v.get("operation").and_then(Value::as_str).unwrap_or("Update").to_string(),
            api_version: v.get("apiVersion").and_then(Value::as_str).unwrap_or("").to_string(),
            time: v.get("time").and_then(Value::as_str).map(String::from),
            subresource: v.get("subresource").and_then(Value::as_str).map(String::from),
            set: FieldSet::from_fields_v1(v.get("fieldsV1").unwrap_or(&Value::Null)),
        })
    }

    /// The managedFields entry, moving the entry's strings and field set into it.
    fn into_json(self) -> Value {
        let mut v = Map::new();
        v.insert("manager".into(), Value::String(self.manager));
        v.insert("operation".into(), Value::String(self.operation));
        v.insert("apiVersion".into(), Value::String(self.api_version));
        if let Some(t) = self.time {
            v.insert("time".into(), Value::String(t));
        }
        v.insert("fieldsType".into(), json!("FieldsV1"));
        v.insert("fieldsV1".into(), self.set.into_fields_v1());
        if let Some(s) = self.subresource {
            v.insert("subresource".into(), Value::String(s));
        }
        Value::Object(v)
    }

    fn is(&self, m: &Manager<'_>) -> bool {
        self.manager == m.name
            && self.operation == if m.apply { "Apply" } else { "Update" }
            && self.subresource.as_deref() == m.subresource
            && (m.apply || self.api_version == m.api_version)
    }
}

fn entries(obj: Option<&Value>) -> Vec<Entry> {
    obj.and_then(meta::metadata)
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Entry::parse).collect())
        .unwrap_or_default()
}

/// The managedFields a write asks for (a client may set them, e.g. kubectl moving its
/// client-side apply fields to server-side apply; `[{}]` clears them), as upstream: only
/// on the main resource, and only a non-empty list of entries.
fn requested(new: &Value, mgr: &Manager<'_>) -> Option<Vec<Entry>> {
    if mgr.subresource.is_some() {
        return None;
    }
    let list = meta::metadata(new)?.get("managedFields")?.as_array()?;
    if list.is_empty() {
        return None;
    }
    list.iter().map(Entry::parse).collect()
}

/// Write `entries` (sorted as upstream encodes them; empty ones dropped) into `obj`.
fn store(obj: &mut Value, mut entries: Vec<Entry>) {
    order::sort(&mut entries);
    let list: Vec<Value> =
        entries.into_iter().filter(|e| !e.set.is_empty()).map(Entry::into_json).collect();
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            m.remove("managedFields");
        } else {
            m.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Whether the member at `p` differs between `a` and `b`: leaves by value, inner
/// members (list items) by existence.
fn differs(a: &Value, b: &Value, p: &[String], leaf: bool) -> bool {
    let (x, y) = (fieldset::value_at(a, p), fieldset::value_at(b, p));
    if leaf { x != y } else { x.is_some() != y.is_some() }
}

/// Record an Update (create when `old` is None) of `new` by `mgr` in `new`'s
/// managedFields, starting from the ones `new` asks for, else `old`'s: the updater takes
/// what the update added or modified (`compare`), others lose it, removed paths leave
/// every set.
pub fn record_update(old: Option<&Value>, new: &mut Value, ty: Ty<'_>, mgr: &Manager<'_>) {
    let status = mgr.subresource == Some("status");
    let c = compare::objects(old, new, ty, status);
    let mut changed = c.added;
    changed.union(&c.modified);
    let removed = c.removed;
    let mut list = requested(new, mgr).unwrap_or_else(|| entries(old));
    for e in list.iter_mut() {
        e.set.subtract(&changed);
        e.set.subtract(&removed);
    }
    if !changed.is_empty() {
        match list.iter_mut().find(|e| e.is(mgr)) {
            Some(e) => {
                e.set.union(&changed);
                e.time = Some(mgr.time.to_string());
            }
            None => list.push(Entry {
                manager: mgr.name.to_string(),
                operation: "Update".into(),
                api_version: mgr.api_version.to_string(),
                time: Some(mgr.time.to_string()),
                subresource: mgr.subresource.map(String::from),
                set: changed,
            }),
        }
    }
    order::cap_updates(&mut list);
    store(new, list);
}

/// A field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub subresource: Option<String>,
    /// `.spec.replicas` style.
    pub field: String,
}

impl Conflict {
    /// The manager as upstream's conflict messages name it: `"hpa" using apps/v1` for
    /// an updater, `"alice"` for an applier, with ` with subresource "status"`.
    pub fn manager_shown(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if let Some(s) = &self.subresource {
            out.push_str(&format!(" with subresource {s:?}"));
        }
        if self.operation != "Apply" {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    /// The order upstream lists conflicts in: by manager (name, operation, apiVersion,
    /// subresource), then field.
    fn key(&self) -> (&str, &str, &str, Option<&str>, &str) {
        let sub = self.subresource.as_deref();
        (&self.manager, &self.operation, &self.api_version, sub, &self.field)
    }
}

/// `Apply failed with ...`: upstream's message for a set of conflicts (grouped by
/// manager when there are several).
pub fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager_shown(),
            c.field
        );
    }
    let mut lines: Vec<String> = Vec::new();
    let mut last: Option<String> = None;
    for c in conflicts {
        let shown = c.manager_shown();
        if last.as_ref() != Some(&shown) {
            lines.push(format!("conflicts with {shown}:"));
            last = Some(shown);
        }
        lines.push(format!("- {}", c.field));
    }
    format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
}

/// Server-side apply of `applied` onto `live` (None: the object does not exist yet).
/// Returns the new object with its managedFields, or the conflicts. An apply by
/// `kubectl` takes over conflicts only on fields the last client-side apply set to their
/// live values and keeps the last-applied annotation current (`last_applied`).
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    ty: Ty<'_>,
    mgr: &Manager<'_>,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let status = mgr.subresource == Some("status");
    let applied_set = fieldset::object_fields(applied, ty, status);
    let empty = json!({});
    let base = live.unwrap_or(&empty);
    let mut list = entries(live);
    let found = conflicts(&list, mgr, base, applied, &applied_set);
    if !found.is_empty() && !force {
        let taken = last_applied::not_taken_over;
        let remaining = taken(base, found.clone(), ty, status, mgr.name);
        if !remaining.is_empty() {
            return Err(remaining.into_iter().map(|(_, c)| c).collect());
        }
    }
    let mut conflicting = FieldSet::default();
    found.iter().for_each(|(p, _)| conflicting.insert(p));
    let mut others = FieldSet::default();
    for e in list.iter_mut().filter(|e| !e.is(mgr)) {
        e.set.subtract(&conflicting);
        others.union(&e.set);
    }
    let mut out = base.clone();
    if let Some(prev) = list.iter().find(|e| e.is(mgr)) {
        let mut stale = prev.set.clone();
        stale.subtract(&applied_set);
        stale.subtract(&others);
        prune(&mut out, &stale, &prev.set);
    }
    merge_top(&mut out, applied, ty, status);
    last_applied::update(&mut out, applied, mgr.name);
    list.retain(|e| !e.is(mgr));
    list.push(Entry {
        manager: mgr.name.to_string(),
        operation: "Apply".into(),
        api_version: mgr.api_version.to_string(),
        time: Some(mgr.time.to_string()),
        subresource: mgr.subresource.map(String::from),
        set: applied_set,
    });
    store(&mut out, list);
    Ok(out)
}

/// The fields other managers own that `applied` would change, with their paths.
fn conflicts(
    list: &[Entry],
    mgr: &Manager<'_>,
    base: &Value,
    applied: &Value,
    applied_set: &FieldSet,
) -> Vec<(Vec<String>, Conflict)> {
    let mut out = Vec::new();
    for e in list.iter().filter(|e| !e.is(mgr)) {
        for (p, _) in e.set.intersection(applied_set).members() {
            if differs(base, applied, &p, applied_set.is_leaf_at(&p)) {
                let c = Conflict {
                    manager: e.manager.clone(),
                    operation: e.operation.clone(),
                    api_version: e.api_version.clone(),
                    subresource: e.subresource.clone(),
                    field: fieldset::path_string(&p),
                };
                out.push((p, c));
            }
        }
    }
    out.sort_by(|(_, a), (_, b)| a.key().cmp(&b.key()));
    out
}

/// Remove what the applier stopped applying and nobody else owns (`stale`, cut from
/// the applier's previous set `prev`), as upstream prunes: only what upstream's
/// `ToFieldSet` has as members goes (leaves, list items with everything in them), so a
/// struct or map whose own path (`.`, recorded by an update) is stale stays, with
/// whatever in it is still owned or never was.
fn prune(out: &mut Value, stale: &FieldSet, prev: &FieldSet) {
    for p in stale.paths() {
        let container = !prev.is_leaf_at(&p);
        if container && p.last().is_some_and(|el| el.starts_with("f:")) {
            continue;
        }
        remove_path(out, &p);
    }
}

/// Remove the value at `path` (a field, a list-map item or a set member).
fn remove_path(obj: &mut Value, path: &[String]) {
    let Some((last, parent)) = path.split_last() else { return };
    let mut cur = obj;
    for el in parent {
        let next = match el.strip_prefix("f:") {
            Some(f) => cur.get_mut(f),
            None => {
                let probe = fieldset::value_at(cur, std::slice::from_ref(el)).cloned();
                cur.as_array_mut().and_then(|a| a.iter_mut().find(|i| Some(&**i) == probe.as_ref()))
            }
        };
        let Some(n) = next else { return };
        cur = n;
    }
    match last.strip_prefix("f:") {
        Some(f) => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(f);
            }
        }
        None => {
            let probe = fieldset::value_at(cur, std::slice::from_ref(last)).cloned();
            if let (Some(a), Some(p)) = (cur.as_array_mut(), probe) {
                a.retain(|i| *i != p);
            }
        }
    }
}

/// Merge the applied configuration into the object: the main resource's fields (or
/// only `status` for the status subresource) and the manager-owned metadata.
fn merge_top(out: &mut Value, applied: &Value, ty: Ty<'_>, status: bool) {
    if !out.is_object() {
        *out = json!({});
    }
    let (Some(o), Some(a)) = (out.as_object_mut(), applied.as_object()) else { return };
    for (k, v) in a {
        match k.as_str() {
            "apiVersion" | "kind" => {
                o.entry(k.clone()).or_insert_with(|| v.clone());
            }
            "metadata" => merge_metadata(o, v),
            "status" if !status => {}
            _ if status && k != "status" => {}
            _ => merge_field(o, k, v, ty),
        }
    }
}

/// Structs and maps field by field, list-maps item by key, sets by value, everything
/// else replaced.
fn merge_applied(out: &mut Value, applied: &Value, ty: Ty<'_>) {
    let (Some(o), Some(a)) = (out.as_object_mut(), applied.as_object()) else {
        *out = applied.clone();
        return;
    };
    for (k, v) in a {
        merge_field(o, k, v, ty);
    }
}

fn merge_metadata(o: &mut Map<String, Value>, applied_meta: &Value) {
    let meta = Ty::builtin("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
    let target = o.entry("metadata").or_insert_with(|| json!({}));
    let Some(t) = target.as_object_mut() else { return };
    for (k, v) in applied_meta.as_object().into_iter().flatten() {
        match k.as_str() {
            "labels" | "annotations" | "finalizers" | "ownerReferences" => {
                merge_field(t, k, v, meta)
            }
            "name" | "namespace" | "generateName" if !t.contains_key(k) => {
                t.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
}

fn merge_field(o: &mut Map<String, Value>, k: &str, v: &Value, ty: Ty<'_>) {
    match (o.get_mut(k), v) {
        (Some(cur @ Value::Object(_)), Value::Object(_)) if !ty.atomic_map(k) => {
            merge_applied(cur, v, ty.child_or_item(k));
        }
        (Some(Value::Array(cur)), Value::Array(items)) => match ty.list_type(k) {
            ListType::Atomic => *cur = items.clone(),
            list => merge_list(cur, items, list, ty.item(k)),
        },
        _ => {
            o.insert(k.to_string(), v.clone());
        }
    }
}

/// Merge applied items into a list-map (by key, item fields merged) or a set (by value).
fn merge_list(cur: &mut Vec<Value>, items: &[Value], list: ListType<'_>, item: Ty<'_>) {
    for applied in items {
        let key = fieldset::item_key(applied, list);
        let found = match &key {
            Some(k) => cur.iter_mut().find(|c| fieldset::item_key(c, list).as_ref() == Some(k)),
            None => cur.iter_mut().find(|c| *c == applied),
        };
        match found {
            Some(existing) if item.atomic() => *existing = applied.clone(),
            Some(existing) if key.is_some() => merge_applied(existing, applied, item),
            Some(_) => {}
            None => cur.push(applied.clone()),
        }
    }
}

mod compare;
pub mod facts;
mod last_applied;
pub mod mutation;
mod order;
pub mod typed;

#[cfg(test)]
mod tests;
