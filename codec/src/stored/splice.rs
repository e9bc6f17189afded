//! The stored JSON of an object and the place its resourceVersion goes: a writer that
//! stores JSON notes, while it writes the value, where `"resourceVersion":"N"` sits in
//! the object's encoding with its revision, so the watch cache can make that encoding
//! by splicing the revision into the stored bytes instead of decoding them again
//! (issue #20, encode-once: the writer's work is handed on, not redone).
//!
//! Invariant: for a value `v` written here with a slot `s`,
//! `s.splice(v, n)` is byte for byte what the cache's decode gives, `write_json` of
//! [`super::decode_object`]`(rt, v, n)`. It holds because a float-free `Value` written by
//! serde_json parses back to the same tree and writes out to the same bytes, and the
//! slot is computed the way the decode inserts the revision ([`crate::order::set_meta`],
//! then sorted metadata keys for custom resources). A value for which that cannot be
//! shown (floats: serde_json's default float parse is not exact; a custom resource's
//! metadata not in key order; no metadata object) gets no slot, and the cache decodes it.

use serde_json::{Map, Value};
use std::io::Write;

/// What separates the spliced `"resourceVersion":"N"` from its neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comma {
    /// Other metadata entries come before it: `,"resourceVersion":"N"`.
    Before,
    /// It is the first metadata entry and others follow: `"resourceVersion":"N",`.
    After,
    /// Metadata holds nothing else.
    Neither,
}

/// Where `metadata.resourceVersion` goes in a stored JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevisionSlot {
    /// Byte offset in the stored value.
    pub at: usize,
    pub comma: Comma,
}

/// The longest `"resourceVersion":"N"` with its comma.
const MAX_ENTRY: usize = r#","resourceVersion":"""#.len() + 20;

impl RevisionSlot {
    /// Bytes the splice adds to the value, at most.
    pub const MAX_EXTRA: usize = MAX_ENTRY;

    /// Append to `out` the value's JSON with `metadata.resourceVersion` set to
    /// `revision`; false (nothing appended) when the slot lies outside `value`.
    pub fn splice(&self, value: &[u8], revision: u64, out: &mut Vec<u8>) -> bool {
        if self.at > value.len() {
            return false;
        }
        let (head, tail) = value.split_at(self.at);
        out.reserve(value.len() + MAX_ENTRY);
        out.extend_from_slice(head);
        if self.comma == Comma::Before {
            out.push(b',');
        }
        out.extend_from_slice(br#""resourceVersion":""#);
        // Writing an integer into a Vec does not allocate and cannot fail.
        let _ = write!(out, "{revision}");
        out.push(b'"');
        if self.comma == Comma::After {
            out.push(b',');
        }
        out.extend_from_slice(tail);
        true
    }
}

/// Append `obj`'s compact JSON without `metadata.resourceVersion` (serde_json's bytes,
/// as [`crate::format::write_json`] writes) and return where the revision goes (see
/// the module's invariant; `sorted_meta`: the decode sorts metadata keys, as for custom
/// resources).
pub fn write_noting_revision(
    obj: &Value,
    sorted_meta: bool,
    out: &mut Vec<u8>,
) -> Option<RevisionSlot> {
    let Value::Object(top) = obj else {
        let _ = serde_json::to_writer(&mut *out, obj);
        return None;
    };
    let mut slot = None;
    out.push(b'{');
    for (i, (k, v)) in top.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, k);
        out.push(b':');
        match v {
            Value::Object(meta) if k == "metadata" => slot = write_meta(meta, sorted_meta, out),
            _ => {
                let _ = serde_json::to_writer(&mut *out, v);
            }
        }
    }
    out.push(b'}');
    slot.filter(|_| !has_float(obj))
}

/// Write the metadata map without its resourceVersion; where the revision goes.
fn write_meta(meta: &Map<String, Value>, sorted: bool, out: &mut Vec<u8>) -> Option<RevisionSlot> {
    let keys = || meta.keys().map(String::as_str).filter(|k| *k != "resourceVersion");
    let position = if sorted {
        let in_order = keys().zip(keys().skip(1)).all(|(a, b)| a < b);
        in_order.then(|| keys().filter(|k| *k < "resourceVersion").count())
    } else {
        Some(crate::order::meta_position(keys(), "resourceVersion"))
    };
    let count = keys().count();
    let mut slot = None;
    let mut note = |at: usize, n: usize| {
        let comma = match (n, count) {
            (0, 0) => Comma::Neither,
            (0, _) => Comma::After,
            _ => Comma::Before,
        };
        slot = Some(RevisionSlot { at, comma });
    };
    out.push(b'{');
    for (n, (k, v)) in meta.iter().filter(|(k, _)| *k != "resourceVersion").enumerate() {
        if position == Some(n) {
            note(out.len(), n);
        }
        if n > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, k);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, v);
    }
    if position == Some(count) {
        note(out.len(), count);
    }
    out.push(b'}');
    slot
}

/// Whether a number anywhere in `v` is a float.
pub(crate) fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(m) => m.values().any(has_float),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{StorageMediaType, decode_object, encode_object_noting};
    use super::*;
    use crate::ResourceType;
    use crate::registry::Registry;
    use serde_json::json;
    use std::sync::Arc;

    fn builtin(kind: &str) -> &'static Arc<ResourceType> {
        Registry::builtin().by_kind("", "v1", kind).unwrap()
    }

    fn widget() -> ResourceType {
        let crd = json!({"metadata": {"name": "widgets.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true}]}});
        crate::custom::types_from_crd(&crd).remove(0)
    }

    /// The splice of a stored value, or None when the writer gave no slot; asserted
    /// equal to what the cache's decode writes whenever there is one.
    fn spliced(rt: &ResourceType, obj: &Value) -> Option<Vec<u8>> {
        let (stored, slot) = encode_object_noting(rt, obj, StorageMediaType::Json);
        let slot = slot.map(|s| {
            assert_eq!(s.json, None, "a JSON value is its own JSON");
            s.slot
        });
        let decoded = decode_object(rt, &stored, 4711).unwrap();
        let mut want = Vec::new();
        crate::format::write_json(&decoded, &mut want);
        let slot = slot?;
        let mut got = Vec::new();
        assert!(slot.splice(&stored, 4711, &mut got));
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want));
        Some(got)
    }

    #[test]
    fn a_spliced_value_is_byte_for_byte_the_decoded_objects_encoding() {
        let pod = builtin("Pod");
        let objects = [
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}),
            json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "a", "namespace": "n",
                "uid": "u", "resourceVersion": "3", "generation": 1,
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"resourceVersion": "", "a": "b\"\\\u{1}<>&é"},
                "annotations": {"x": "{\"resourceVersion\":\"\"}"}},
                "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}]},
                "status": {}}),
            // Only keys upstream declares after resourceVersion: it goes first.
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"a": "b"},
                "finalizers": ["f"]}}),
            // An undeclared key: last, after resourceVersion.
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "zzz": 1}}),
        ];
        for obj in &objects {
            assert!(spliced(pod, obj).is_some(), "{obj}");
        }
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "default"}, "data": {"k": "v"}});
        assert!(spliced(builtin("ConfigMap"), &cm).is_some());
    }

    #[test]
    fn custom_resources_splice_into_sorted_metadata_only() {
        let w = widget();
        let sorted = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"generation": 1, "name": "w", "namespace": "n", "uid": "u"},
            "spec": {"size": "3", "count": 2}});
        assert!(spliced(&w, &sorted).is_some());
        let unsorted = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "generation": 1}, "spec": {}});
        assert_eq!(spliced(&w, &unsorted), None, "the decode would reorder the metadata");
        let mut other = sorted.clone();
        other["apiVersion"] = json!("example.com/v2");
        assert_eq!(spliced(&w, &other), None, "the decode would set its apiVersion");
    }

    /// serde_json's default float parse is not exact: a value with a float is decoded.
    #[test]
    fn values_with_floats_or_without_metadata_get_no_slot() {
        let w = widget();
        let float = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w"}, "spec": {"ratio": 0.1}});
        assert_eq!(spliced(&w, &float), None);
        let bare = json!({"apiVersion": "example.com/v1", "kind": "Widget"});
        let (_, slot) = encode_object_noting(&w, &bare, StorageMediaType::Json);
        assert_eq!(slot, None);
    }

    #[test]
    fn a_slot_outside_the_value_splices_nothing() {
        let slot = RevisionSlot { at: 10, comma: Comma::Neither };
        let mut out = Vec::new();
        assert!(!slot.splice(b"{}", 1, &mut out));
        assert!(out.is_empty());
    }
}
