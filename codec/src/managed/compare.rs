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
use crate::fieldset::{FieldSet, OWNED_METADATA};
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
/// (`status` left out) or the status subresource (only `status`). Both are seen as
/// upstream's Go types write them back ([`View`]) without being copied.
pub fn objects(old: Option<&Value>, new: &Value, ty: Ty<'_>, status: bool) -> Comparison {
    let (old, new) = (root_view(old.unwrap_or(empty_object()), ty), root_view(new, ty));
    let meta_ty = Ty::builtin(META);
    let mut c = Comparison::default();
    for k in union_keys(old.top(), new.top()) {
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
                let (lc, rc) = (l.and_then(|m| m.get(f)), r.and_then(|m| m.get(f)));
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
    /// The key is moved into the last set that takes the child (copied only when more
    /// than one does: a create adds every node, so it is never copied there).
    fn adopt(&mut self, key: String, child: Comparison) {
        let sets = [
            (&mut self.added, child.added),
            (&mut self.modified, child.modified),
            (&mut self.removed, child.removed),
        ];
        let mut pending: Option<(&mut FieldSet, FieldSet)> = None;
        for (mine, theirs) in sets {
            if (theirs.member || !theirs.children.is_empty())
                && let Some((m, t)) = pending.replace((mine, theirs))
            {
                m.children.insert(key.clone(), t);
            }
        }
        if let Some((m, t)) = pending {
            m.children.insert(key, t);
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

fn is_obj(v: Option<View<'_>>) -> bool {
    v.is_some_and(|v| v.v.is_object())
}

fn is_arr(v: Option<View<'_>>) -> bool {
    v.is_some_and(|v| v.v.is_array())
}

/// The shape of property `k` of an object of type `ty` holding `l` / `r`.
fn field_shape<'t>(ty: Ty<'t>, k: &str, l: Option<View<'_>>, r: Option<View<'_>>) -> Shape<'t> {
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
fn item_shape<'t>(ty: Ty<'t>, l: Option<View<'_>>, r: Option<View<'_>>) -> Shape<'t> {
    if (is_obj(l) || is_obj(r)) && !ty.atomic() { Shape::Struct(ty) } else { Shape::Leaf }
}

fn union_keys<'a>(l: Option<View<'a>>, r: Option<View<'a>>) -> BTreeSet<&'a str> {
    let mut keys = BTreeSet::new();
    for v in [l, r].into_iter().flatten() {
        v.keys(&mut keys);
    }
    keys
}

/// A list's items by path element (`k:{...}` / `v:...`), first occurrence only.
fn items<'v>(list: Option<View<'v>>, kind: ListType<'_>) -> Vec<(String, View<'v>)> {
    let mut out: Vec<(String, View<'v>)> = Vec::new();
    let Some(list) = list else { return out };
    let Value::Array(all) = list.v else { return out };
    let def = if list.form == Form::Items { list.def } else { None };
    for item in all.iter().map(|i| View::whole(i, def)) {
        let key = match kind {
            ListType::Map(_) => item_key(item, kind),
            _ => Some(format!("v:{}", item.value())),
        };
        if let Some(k) = key
            && !out.iter().any(|(o, _)| *o == k)
        {
            out.push((k, item));
        }
    }
    out
}

/// `fieldset::item_key` of the item's Go view, reading only its key fields.
fn item_key(item: View<'_>, list: ListType<'_>) -> Option<String> {
    if !item.v.is_object() {
        return None;
    }
    let mut keys: Vec<&str> = list.keys().collect();
    keys.sort_unstable();
    let mut m = Map::new();
    for key in keys {
        let v = item.get(key).map(|c| c.value().into_owned()).or_else(|| list.key_default(key))?;
        m.insert(key.to_string(), v);
    }
    Some(format!("k:{}", Value::Object(m)))
}

fn empty(v: Option<View<'_>>) -> bool {
    match v {
        None => true,
        Some(v) => match v.v {
            Value::Null => true,
            Value::Object(_) => !v.has_keys(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        },
    }
}

/// The changes at one node (its own membership, its children's under their path
/// elements), relative to the node.
fn visit(l: Option<View<'_>>, r: Option<View<'_>>, shape: Shape<'_>) -> Comparison {
    let mut c = Comparison::default();
    // a container empty or null on both sides is a leaf (keeps null apart from empty)
    let shape = if empty(l) && empty(r) { Shape::Leaf } else { shape };
    match shape {
        Shape::Leaf => {
            match (l, r) {
                (None, Some(_)) => c.added.member = true,
                (Some(_), None) => c.removed.member = true,
                (Some(a), Some(b)) if a.value() != b.value() => c.modified.member = true,
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
/// every built-in kind) and the [`go_view`] of the rest. Custom resources are compared
/// as written.
struct Root<'a> {
    view: View<'a>,
    /// The root's `spec` when its Go view lacks one.
    spec: Option<View<'a>>,
}

fn root_view<'a>(v: &'a Value, ty: Ty<'a>) -> Root<'a> {
    let facts = ty.facts().filter(|f| !f.custom);
    let view = View::whole(v, ty.name().zip(facts));
    let spec = match facts {
        Some(f) if f.go_values.is_none() && v.is_object() && view.get("spec").is_none() => {
            match f.fields.get("spec").map(|s| &s.kind) {
                Some(Prop::Struct(d)) => Some(View::whole(empty_object(), typed(Some(d)))),
                _ => None,
            }
        }
        _ => None,
    };
    Root { view, spec }
}

impl<'a> Root<'a> {
    /// The root with its `spec` (for [`union_keys`]).
    fn top(&self) -> Option<View<'a>> {
        Some(View { spec: self.spec.is_some(), ..self.view })
    }

    fn get(&self, k: &str) -> Option<View<'a>> {
        self.view.get(k).or(if k == "spec" { self.spec } else { None })
    }
}

/// How a [`View`] makes a node's Go view from the value as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `go_view(v, def)`.
    Whole,
    /// A list whose items are `go_view(item, def)`.
    Items,
    /// A granular map whose values are `go_view(value, def)`.
    Values,
}

type Def<'a> = Option<(&'a str, &'a Definition)>;

/// A node of an object as upstream's Go types write it back ([`go_view`]), seen through
/// the value as written: nothing is copied but the few leaves compared by value and the
/// key fields of list-map items. Every node keeps the JSON type of the value it views.
#[derive(Debug, Clone, Copy)]
struct View<'a> {
    v: &'a Value,
    def: Def<'a>,
    form: Form,
    /// The root of a built-in object whose Go view adds `spec` ([`Root`]).
    spec: bool,
}

static NULL: Value = Value::Null;

fn empty_object() -> &'static Value {
    static EMPTY: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| Value::Object(Map::new()))
}

impl<'a> View<'a> {
    fn whole(v: &'a Value, def: Def<'a>) -> View<'a> {
        View { v, def, form: Form::Whole, spec: false }
    }

    fn plain(v: &'a Value) -> View<'a> {
        View::whole(v, None)
    }

    /// The struct whose fields this node views through its definition (None: the
    /// node's children are as written, or viewed through `def` as items or values).
    fn fields(&self) -> Option<(&'a str, &'a Definition, &'a Map<String, Value>)> {
        let (d, facts) = self.def.filter(|_| self.form == Form::Whole)?;
        let m = self.v.as_object()?;
        facts.has_properties.then_some((d, facts, m))
    }

    /// Child `k` of the node's Go view (None: absent or left out).
    fn get(&self, k: &str) -> Option<View<'a>> {
        if self.form == Form::Values {
            return self.v.get(k).map(|c| View::whole(c, self.def));
        }
        let Some((d, facts, m)) = self.fields() else { return self.v.get(k).map(View::plain) };
        match m.get_key_value(k) {
            Some((k, c)) => field_view(d, facts, k, c),
            None => added_field(d, facts, m, k),
        }
    }

    /// Add the keys of the node's Go view to `out`.
    fn keys(&self, out: &mut BTreeSet<&'a str>) {
        let Value::Object(all) = self.v else { return };
        if self.spec {
            out.insert("spec");
        }
        let Some((d, facts, m)) = self.fields() else {
            out.extend(all.keys().map(String::as_str));
            return;
        };
        let kept = m.iter().filter(|(k, c)| field_view(d, facts, k, c).is_some());
        out.extend(kept.map(|(k, _)| k.as_str()));
        out.extend(added_keys(d, facts, m));
    }

    /// Whether the node's Go view (an object) has any key.
    fn has_keys(&self) -> bool {
        let Value::Object(all) = self.v else { return false };
        match self.fields() {
            None => self.spec || !all.is_empty(),
            Some((d, facts, m)) => {
                self.spec
                    || m.iter().any(|(k, c)| field_view(d, facts, k, c).is_some())
                    || added_keys(d, facts, m).next().is_some()
            }
        }
    }

    /// The node's Go view as a value (copied only where it differs from the value).
    fn value(&self) -> std::borrow::Cow<'a, Value> {
        use std::borrow::Cow::{Borrowed, Owned};
        match (self.form, self.v) {
            (_, _) if self.def.is_none() => Borrowed(self.v),
            (Form::Whole, Value::Object(_)) => Owned(go_view(self.v, self.def)),
            (Form::Items, Value::Array(a)) => {
                Owned(Value::Array(a.iter().map(|i| go_view(i, self.def)).collect()))
            }
            (Form::Values, Value::Object(o)) => {
                let vals = o.iter().map(|(n, x)| (n.clone(), go_view(x, self.def)));
                Owned(Value::Object(vals.collect()))
            }
            _ => Borrowed(self.v),
        }
    }
}

/// Field `k` (holding `c`) of a struct of type `d` in its Go view, as [`go_view`] writes
/// it (None: left out).
fn field_view<'a>(d: &str, facts: &'a Definition, k: &str, c: &'a Value) -> Option<View<'a>> {
    let Some(f) = facts.fields.get(k) else { return Some(View::plain(c)) };
    let keeps_null = NULL_FIELDS.contains(&(d, k));
    match (c, f.go, &f.kind) {
        (Value::Null, Some(_), Prop::Struct(s)) => {
            Some(View::whole(empty_object(), typed(Some(s))))
        }
        (Value::Null, Some(_), Prop::Time) => Some(View::plain(&NULL)),
        (Value::Null, Some(false), Prop::Scalar(z)) => Some(View::plain(z)),
        (Value::Null, _, _) if keeps_null => Some(View::plain(&NULL)),
        (Value::Null, _, _) => None,
        (_, Some(true), Prop::Scalar(z)) if c == z => None,
        (Value::Array(a), _, _) if a.is_empty() && !keeps_null => None,
        (Value::Object(o), _, _) if o.is_empty() && f.is_map => None,
        (_, _, Prop::Struct(s)) => Some(View::whole(c, typed(Some(s)))),
        (Value::Array(_), _, _) => {
            Some(View { form: Form::Items, ..View::whole(c, typed(f.item.as_deref())) })
        }
        (Value::Object(_), _, _) if f.is_map => {
            Some(View { form: Form::Values, ..View::whole(c, typed(f.item.as_deref())) })
        }
        _ => Some(View::plain(c)),
    }
}

/// The fields [`go_view`] adds to `m` (a struct of type `d`).
fn added_keys<'a>(
    d: &'a str,
    facts: &'a Definition,
    m: &'a Map<String, Value>,
) -> impl Iterator<Item = &'a str> {
    let values = facts.go_values.as_deref();
    let go = values.into_iter().flatten().map(|(n, _)| *n);
    let null =
        NULL_FIELDS.iter().filter(move |(x, _)| values.is_some() && *x == d).map(|(_, f)| *f);
    go.chain(null).filter(move |n| added_field(d, facts, m, n).is_some())
}

/// Field `k`, absent from `m` (a struct of type `d`), as [`go_view`] adds it (None: not
/// added).
fn added_field<'a>(
    d: &str,
    facts: &'a Definition,
    m: &Map<String, Value>,
    k: &str,
) -> Option<View<'a>> {
    let values = facts.go_values.as_deref()?;
    if m.contains_key(k) {
        return None;
    }
    if NULL_FIELDS.iter().any(|(x, f)| *x == d && *f == k) {
        return Some(View::plain(&NULL));
    }
    let mut added = None;
    for (_, omitempty) in values.iter().filter(|(n, _)| *n == k) {
        let Some(f) = facts.fields.get(k) else { continue };
        added = match &f.kind {
            Prop::Struct(s) => Some(View::whole(empty_object(), typed(Some(s)))),
            Prop::Time => Some(View::plain(&NULL)),
            Prop::Scalar(z) if !omitempty => Some(View::plain(z)),
            _ => added,
        };
    }
    added
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
