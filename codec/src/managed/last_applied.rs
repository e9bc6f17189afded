//! The transitions between client-side and server-side apply that kubectl relies on, as
//! upstream's field manager makes them:
//!
//! - an apply by the `kubectl` manager (`kubectl apply --server-side` after client-side
//!   applies) whose conflicts are all on fields the last client-side apply set, still
//!   holding the values it set (the `kubectl.kubernetes.io/last-applied-configuration`
//!   annotation), takes them over without a conflict (upstream's lastAppliedManager);
//!   any other manager gets the conflicts (upstream's opt-out: another field manager);
//! - an apply by the `kubectl` manager on an object that has the annotation rewrites it
//!   from the applied configuration (upstream's lastAppliedUpdater), so a later
//!   client-side `kubectl apply` computes its patch from what was applied last.

use super::{Conflict, Ty};
use crate::fieldset::{self, FieldSet};
use crate::format::{self, Format};
use serde_json::{Value, json};

/// The annotation client-side `kubectl apply` keeps its last configuration in.
pub const ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The field manager whose applies keep the annotation current (kubectl's default).
const KUBECTL: &str = "kubectl";

/// Upstream's limit on the total size of an object's annotations.
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

fn annotation(obj: &Value) -> Option<&str> {
    let a = obj.get("metadata")?.get("annotations")?.get(ANNOTATION)?.as_str()?;
    (!a.is_empty()).then_some(a)
}

/// The conflicts an apply by `manager` cannot take over: for `kubectl`, when every
/// conflicting field is one the last client-side apply set to its live value, none,
/// otherwise those that are not; for any other manager, all of them.
pub(super) fn not_taken_over(
    live: &Value,
    conflicts: Vec<(Vec<String>, Conflict)>,
    ty: Ty<'_>,
    status: bool,
    manager: &str,
) -> Vec<(Vec<String>, Conflict)> {
    if manager != KUBECTL {
        return conflicts;
    }
    let Some(allowed) = last_applied_fields(live, ty, status) else { return conflicts };
    conflicts.into_iter().filter(|(p, _)| !allowed.contains(p)).collect()
}

/// The fields the last-applied annotation of `live` sets whose values `live` still has.
fn last_applied_fields(live: &Value, ty: Ty<'_>, status: bool) -> Option<FieldSet> {
    let last = format::decode(annotation(live)?.as_bytes(), Format::Yaml).ok()?;
    let set = fieldset::object_fields(&last, ty, status);
    let mut same = FieldSet::default();
    for (p, leaf) in set.members() {
        let (a, b) = (fieldset::value_at(&last, &p), fieldset::value_at(live, &p));
        let kept = if leaf { a.is_some() && a == b } else { b.is_some() };
        if kept {
            same.insert(&p);
        }
    }
    Some(same)
}

/// After an apply by `manager` of `applied` that produced `out`: when it is kubectl's and
/// `out` has the annotation, set it to the applied configuration (without the
/// annotation); dropped when the annotations would grow past upstream's limit.
pub(super) fn update(out: &mut Value, applied: &Value, manager: &str) {
    if manager != KUBECTL || annotation(out).is_none() {
        return;
    }
    let mut config = applied.clone();
    if let Some(a) = config.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
        a.remove(ANNOTATION);
    }
    let text = go_json(&config);
    let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    let Some(a) = annotations.as_object_mut() else { return };
    a.insert(ANNOTATION.into(), Value::String(text));
    let size: usize = a.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum();
    if size > MAX_ANNOTATIONS_BYTES {
        a.remove(ANNOTATION);
    }
}

/// JSON as Go's encoder writes an unstructured object: keys sorted, HTML characters
/// escaped, a trailing newline.
fn go_json(v: &Value) -> String {
    let mut sorted = v.clone();
    sorted.sort_all_objects();
    let mut s = serde_json::to_string(&sorted).unwrap_or_default();
    for (from, to) in [
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u{2028}", "\\u2028"),
        ("\u{2029}", "\\u2029"),
    ] {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_json_sorts_keys_and_escapes_html() {
        let v = json!({"b": 1, "a": {"d": "<x&y>", "c": [true]}});
        assert_eq!(
            go_json(&v),
            "{\"a\":{\"c\":[true],\"d\":\"\\u003cx\\u0026y\\u003e\"},\"b\":1}\n"
        );
    }
}
