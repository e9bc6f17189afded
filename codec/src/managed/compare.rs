//! What an Update changed, as upstream's field manager sees it: structured-merge-diff
//! compares the live object with the new one (both as upstream's Go types write them)
//! and the updater takes the added and modified paths, everyone loses the removed ones.
//!
//! Every node that is new (absent from the old object; present as `null` counts as
//! present) is added with its own path, so a struct, map, list or list item the update
//! created carries `.` next to its fields, while one that already existed does not;
//! leaves (scalars, atomic values, and containers empty or null on both sides) are
//! modified when their values differ. A create compares with the zero object of the
//! type: its non-pointer structs (`spec`, `spec.template.metadata`, `strategy`, ...) and
//! fields without `omitempty` exist before the create (`go_facts.rs` names them), so they
//! never carry `.`; a custom resource's zero object has neither `spec` nor anything else.

use super::Ty;
use super::facts::{Definition, Prop};
use crate::fieldset::{self, FieldSet, OWNED_METADATA};
use crate::topology::ListType;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// The paths an update added, modified and removed.
#[derive(Debug, Default)]
pub struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Fields whose Go JSON tag has no `omitempty` but that are slices, maps or pointers:
/// the zero object has them as `null` (only the ones that are not atomic matter).
const NULL_FIELDS: &[(&str, &str)] = &[("io.k8s.api.core.v1.PodSpec", "containers")];

/// Compare `old` (None: the zero object of a create) with `new`, for the main resource
/// (`status` left out) or the status subresource (only `status`).
pub fn objects(old: Option<&Value>, new: &Value, ty: Ty<'_>, status: bool) -> Comparison {
    let old = root_view(old.unwrap_or(&json!({})), ty);
    let new = root_view(new, ty);
    let meta_ty = Ty::builtin(META);
    let mut c = Comparison::default();
    for k in union_keys(Some(&old), Some(&new)) {
        let wanted = match k {
            "apiVersion" | "kind" => false,
            "status" => status,
            _ => !status,
        };
        if !wanted {
            continue;
        }
        let (l, r) = (old.get(k), new.get(k));
        let sub = if k == "metadata" {
            // upstream strips the server's metadata (and `metadata` itself) from every set
            let mut meta = Comparison::default();
            for f in OWNED_METADATA {
                let (lc, rc) = (l.and_then(|m| m.get(*f)), r.and_then(|m| m.get(*f)));
                if lc.is_some() || rc.is_some() {
                    meta.adopt(format!("f:{f}"), visit(lc, rc, field_shape(meta_ty, f, lc, rc)));
                }
            }
            meta
        } else {
            visit(l, r, field_shape(ty, k, l, r))
        };
        c.adopt(format!("f:{k}"), sub);
    }
    c
}

impl Comparison {
    /// Take a child's changes (relative to the child) in under `key`. Sets are built
    /// bottom up and hold only non-empty children, so a set with neither a member nor
    /// children is empty.
    fn adopt(&mut self, key: String, child: Comparison) {
        let sets = [
            (&mut self.added, child.added),
            (&mut self.modified, child.modified),
            (&mut self.removed, child.removed),
        ];
        for (mine, theirs) in sets {
            if theirs.member || !theirs.children.is_empty() {
                mine.children.insert(key.clone(), theirs);
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Shape<'t> {
    Leaf,
    /// A struct of this type (possibly unknown: free-form).
    Struct(Ty<'t>),
    /// A granular map whose values have this type.
    Map(Ty<'t>),
    List(ListType<'t>, Ty<'t>),
}

fn is_obj(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Object(_)))
}

fn is_arr(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Array(_)))
}

/// The shape of property `k` of an object of type `ty` holding `l` / `r`.
fn field_shape<'t>(ty: Ty<'t>, k: &str, l: Option<&Value>, r: Option<&Value>) -> Shape<'t> {
    let (obj, arr) = (is_obj(l) || is_obj(r), is_arr(l) || is_arr(r));
    let Some(f) = ty.field(k) else { return unknown_field_shape(obj, arr) };
    if obj && !arr {
        if f.atomic_map {
            Shape::Leaf
        } else if f.is_map {
            Shape::Map(ty.resolve(f.item.as_deref()))
        } else {
            Shape::Struct(ty.resolve(f.child.as_deref()))
        }
    } else if arr && !obj {
        match f.list_type() {
            ListType::Atomic => Shape::Leaf,
            list => Shape::List(list, ty.resolve(f.item.as_deref())),
        }
    } else {
        Shape::Leaf
    }
}

/// The shape of a property the schemas do not list (one of a free-form object): a struct
/// of unknown type, or a leaf (lists of unknown type are atomic).
fn unknown_field_shape<'t>(obj: bool, arr: bool) -> Shape<'t> {
    if obj && !arr { Shape::Struct(Ty::unknown()) } else { Shape::Leaf }
}

/// The shape of a list item or map value of type `ty`.
fn item_shape<'t>(ty: Ty<'t>, l: Option<&Value>, r: Option<&Value>) -> Shape<'t> {
    if (is_obj(l) || is_obj(r)) && !ty.atomic() { Shape::Struct(ty) } else { Shape::Leaf }
}

fn union_keys<'a>(l: Option<&'a Value>, r: Option<&'a Value>) -> BTreeSet<&'a str> {
    let mut keys = BTreeSet::new();
    for v in [l, r] {
        if let Some(Value::Object(m)) = v {
            keys.extend(m.keys().map(String::as_str));
        }
    }
    keys
}

/// A list's items by path element (`k:{...}` / `v:...`), first occurrence only.
fn items<'v>(list: Option<&'v Value>, kind: ListType<'_>) -> Vec<(String, &'v Value)> {
    let mut out: Vec<(String, &Value)> = Vec::new();
    for item in list.and_then(Value::as_array).into_iter().flatten() {
        let key = match kind {
            ListType::Map(_) => fieldset::item_key(item, kind),
            _ => Some(format!("v:{item}")),
        };
        if let Some(k) = key
            && !out.iter().any(|(o, _)| *o == k)
        {
            out.push((k, item));
        }
    }
    out
}

fn empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

/// The changes at one node (its own membership, its children's under their path
/// elements), relative to the node.
fn visit(l: Option<&Value>, r: Option<&Value>, shape: Shape<'_>) -> Comparison {
    let mut c = Comparison::default();
    // a container empty or null on both sides is a leaf (keeps null apart from empty)
    let shape = if empty(l) && empty(r) { Shape::Leaf } else { shape };
    match shape {
        Shape::Leaf => {
            match (l, r) {
                (None, Some(_)) => c.added.member = true,
                (Some(_), None) => c.removed.member = true,
                (Some(a), Some(b)) if a != b => c.modified.member = true,
                _ => {}
            }
            return c;
        }
        Shape::Struct(ty) => {
            for k in union_keys(l, r) {
                let (lc, rc) = (l.and_then(|v| v.get(k)), r.and_then(|v| v.get(k)));
                c.adopt(format!("f:{k}"), visit(lc, rc, field_shape(ty, k, lc, rc)));
            }
        }
        Shape::Map(def) => {
            for k in union_keys(l, r) {
                let (lc, rc) = (l.and_then(|v| v.get(k)), r.and_then(|v| v.get(k)));
                c.adopt(format!("f:{k}"), visit(lc, rc, item_shape(def, lc, rc)));
            }
        }
        Shape::List(kind, def) => {
            let (li, ri) = (items(l, kind), items(r, kind));
            let mut keys: Vec<&String> = ri.iter().map(|(k, _)| k).collect();
            keys.extend(li.iter().map(|(k, _)| k).filter(|k| !ri.iter().any(|(r, _)| r == *k)));
            for k in keys {
                let lc = li.iter().find(|(x, _)| x == k).map(|(_, v)| *v);
                let rc = ri.iter().find(|(x, _)| x == k).map(|(_, v)| *v);
                c.adopt(k.clone(), visit(lc, rc, item_shape(def, lc, rc)));
            }
        }
    }
    if l.is_none() {
        c.added.member = true;
    } else if r.is_none() {
        c.removed.member = true;
    }
    c
}

/// The object as upstream compares it: the root's `spec` exists (a non-pointer struct in
/// every built-in kind) and `go_view` below. Custom resources are compared as written.
fn root_view(v: &Value, ty: Ty<'_>) -> Value {
    let facts = ty.facts().filter(|f| !f.custom);
    let mut out = go_view(v, ty.name().zip(facts));
    if let Some(f) = facts
        && f.go_values.is_none()
        && let Some(o) = out.as_object_mut()
        && !o.contains_key("spec")
        && let Some(Prop::Struct(d)) = f.fields.get("spec").map(|s| &s.kind)
    {
        o.insert("spec".into(), go_view(&json!({}), typed(Some(d))));
    }
    out
}

/// A built-in definition name with its facts (None: unknown).
fn typed(def: Option<&str>) -> Option<(&str, &'static Definition)> {
    def.and_then(|d| Some((d, super::facts::definition(d)?)))
}

/// `v` (of type `def`) as upstream's Go types write it back: nulls and empty slices or
/// maps left out (`omitempty`), zero `omitempty` non-pointer scalars left out, missing
/// non-pointer structs present (empty), missing non-pointer times `null`, missing
/// non-pointer scalars without `omitempty` at their zero value. Values of unknown types
/// (custom resources) stay as they are.
fn go_view(v: &Value, def: Option<(&str, &Definition)>) -> Value {
    let Some((d, facts)) = def else { return v.clone() };
    let Value::Object(m) = v else { return v.clone() };
    if !facts.has_properties {
        return v.clone();
    }
    let values = facts.go_values.as_deref();
    let keeps_null = |k: &str| NULL_FIELDS.contains(&(d, k));
    let mut out = Map::new();
    for (k, c) in m {
        let Some(f) = facts.fields.get(k.as_str()) else {
            out.insert(k.clone(), c.clone());
            continue;
        };
        let view = match (c, f.go, &f.kind) {
            (Value::Null, Some(_), Prop::Struct(s)) => Some(go_view(&json!({}), typed(Some(s)))),
            (Value::Null, Some(_), Prop::Time) => Some(Value::Null),
            (Value::Null, Some(false), Prop::Scalar(z)) => Some(z.clone()),
            (Value::Null, _, _) if keeps_null(k) => Some(Value::Null),
            (Value::Null, _, _) => None,
            (_, Some(true), Prop::Scalar(z)) if c == z => None,
            (Value::Array(a), _, _) if a.is_empty() && !keeps_null(k) => None,
            (Value::Object(o), _, _) if o.is_empty() && f.is_map => None,
            (_, _, Prop::Struct(s)) => Some(go_view(c, typed(Some(s)))),
            (Value::Array(a), _, _) => {
                let item = typed(f.item.as_deref());
                Some(Value::Array(a.iter().map(|i| go_view(i, item)).collect()))
            }
            (Value::Object(o), _, _) if f.is_map => {
                let item = typed(f.item.as_deref());
                let vals = o.iter().map(|(n, x)| (n.clone(), go_view(x, item)));
                Some(Value::Object(vals.collect()))
            }
            _ => Some(c.clone()),
        };
        if let Some(x) = view {
            out.insert(k.clone(), x);
        }
    }
    for (n, omitempty) in values.into_iter().flatten() {
        if m.contains_key(*n) {
            continue;
        }
        let Some(f) = facts.fields.get(*n) else { continue };
        match &f.kind {
            Prop::Struct(s) => {
                out.insert(n.to_string(), go_view(&json!({}), typed(Some(s))));
            }
            Prop::Time => {
                out.insert(n.to_string(), Value::Null);
            }
            Prop::Scalar(z) if !omitempty => {
                out.insert(n.to_string(), z.clone());
            }
            _ => {}
        }
    }
    if values.is_some() {
        for (_, f) in NULL_FIELDS.iter().filter(|(x, f)| *x == d && !m.contains_key(*f)) {
            out.insert(f.to_string(), Value::Null);
        }
    }
    Value::Object(out)
}
