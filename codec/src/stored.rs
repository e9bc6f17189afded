//! Stored values: the bytes an object is kept as in the store.
//!
//! As upstream's storage codec: built-in types are written in the configured media type
//! (`--storage-media-type`; protobuf is the `k8s\0` + runtime.Unknown envelope upstream
//! writes to etcd), types without a protobuf message (custom resources) as JSON, and
//! reads recognize either by the `k8s\0` magic, so a store written in one format stays
//! readable after switching and data written by upstream kube-apiserver is read as is.
//! The caller has already converted the object to its storage version and removed
//! `metadata.resourceVersion` (the revision is the store's, never in the value).

pub(crate) mod splice;

use crate::error::CodecError;
use crate::{format, protobuf};
use serde_json::Value;
pub use splice::{Comma, RevisionSlot};

/// The encoding new values are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StorageMediaType {
    #[default]
    Json,
    Protobuf,
}

impl StorageMediaType {
    /// Parse upstream's `--storage-media-type` values.
    pub fn parse(s: &str) -> Result<StorageMediaType, String> {
        match s {
            "application/json" => Ok(StorageMediaType::Json),
            "application/vnd.kubernetes.protobuf" => Ok(StorageMediaType::Protobuf),
            other => Err(format!(
                "unsupported storage media type {other:?}: use application/json or application/vnd.kubernetes.protobuf"
            )),
        }
    }
}

/// The stored bytes of `obj` (in its storage version, without resourceVersion).
pub fn encode(obj: &Value, media: StorageMediaType) -> Vec<u8> {
    if media == StorageMediaType::Protobuf {
        let mut out = Vec::with_capacity(1024);
        if protobuf::encode_object(obj, &mut out).is_ok() {
            return out;
        }
    }
    format::encode_json(obj)
}

/// The stored bytes of `obj` (in its storage version) with its
/// `metadata.resourceVersion` left out, written straight from `obj` in either format (a
/// write used to copy the whole object to drop that one field).
pub fn encode_without_revision(obj: &Value, media: StorageMediaType) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    if media == StorageMediaType::Protobuf {
        if protobuf::encode_object_without_revision(obj, &mut out).is_ok() {
            return out;
        }
        out.clear();
    }
    splice::write_noting_revision(obj, false, &mut out);
    out
}

/// The JSON the cache's decode of a stored value writes, had without decoding it: the
/// object's JSON without its resourceVersion and where that goes ([`RevisionSlot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonSlot {
    /// That JSON when the stored value is not that JSON itself (a protobuf value whose
    /// object is in the round trip's normal form, `protobuf::normal`); None: the stored
    /// value is the JSON.
    pub json: Option<Vec<u8>>,
    pub slot: RevisionSlot,
}

/// [`encode_without_revision`], and where the JSON the decode of the value writes can
/// be had without decoding it (see [`splice`] and [`JsonSlot`]; `sorted_meta` for
/// objects whose decode sorts metadata keys).
fn encode_noting_revision(
    rt: &crate::ResourceType,
    obj: &Value,
    media: StorageMediaType,
) -> (Vec<u8>, Option<JsonSlot>) {
    let sorted_meta = rt.custom.is_some();
    let mut out = Vec::with_capacity(1024);
    if media == StorageMediaType::Protobuf {
        if protobuf::encode_object_without_revision(obj, &mut out).is_ok() {
            let normal = protobuf::normal::round_trips(rt, obj) && !sorted_meta;
            return (out, normal.then(|| json_slot(obj)).flatten());
        }
        out.clear();
    }
    let slot = splice::write_noting_revision(obj, sorted_meta, &mut out);
    (out, slot.map(|slot| JsonSlot { json: None, slot }))
}

/// The JSON of a protobuf-stored object in normal form, noting its revision's place.
fn json_slot(obj: &Value) -> Option<JsonSlot> {
    let mut json = Vec::with_capacity(4096);
    let slot = splice::write_noting_revision(obj, false, &mut json)?;
    Some(JsonSlot { json: Some(json), slot })
}

/// The object a stored value holds, whichever format it was written in.
pub fn decode(bytes: &[u8]) -> Result<Value, CodecError> {
    if bytes.starts_with(protobuf::MAGIC) {
        return protobuf::decode_object(bytes);
    }
    format::parse_json(bytes).map_err(|e| CodecError::Malformed(e.to_string()))
}

/// An object of `rt` from its stored bytes: decoded, converted to `rt`'s version, in
/// upstream's field order, with `metadata.resourceVersion` set from `revision`.
pub fn decode_object(
    rt: &crate::ResourceType,
    value: &[u8],
    revision: u64,
) -> Result<Value, CodecError> {
    let obj = decode(value)?;
    let stored_as = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if crate::convert::webhook(rt).is_some() && stored_as != rt.api_version() {
        // Only the engine's conversion (which calls the webhook) may change its shape.
        return Err(CodecError::Conversion(format!(
            "{} stored as {stored_as} needs its conversion webhook to be read as {}",
            rt.kind,
            rt.api_version()
        )));
    }
    let obj = crate::convert::from_storage(rt, obj);
    Ok(finish_decoded(rt, obj, value, revision))
}

/// A decoded stored object of `rt` once in `rt`'s version (by [`decode_object`], or by
/// the engine's conversion webhook call): in upstream's field order, with
/// `metadata.resourceVersion` set from `revision`.
pub fn finish_decoded(
    rt: &crate::ResourceType,
    mut obj: Value,
    value: &[u8],
    revision: u64,
) -> Value {
    if value.starts_with(b"k8s\0") {
        // Upstream's protobuf decodes in tag order; its JSON is in Go struct order.
        crate::order::canonicalize_type(rt, &mut obj);
    }
    let rv = Value::String(revision.to_string());
    crate::order::set_meta(&mut obj, "resourceVersion", rv);
    if rt.custom.is_some()
        && let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        // Unstructured objects are written with sorted keys, as Go's encoder does.
        m.sort_keys();
    }
    obj
}

/// The bytes to store for `obj` (an object of `rt`), in `media`: converted to the
/// storage version, without `metadata.resourceVersion`.
pub fn encode_object(rt: &crate::ResourceType, obj: &Value, media: StorageMediaType) -> Vec<u8> {
    if crate::convert::is_identity(rt) {
        // Stored as served: no copy of the object.
        return encode_without_revision(obj, media);
    }
    let mut copy = crate::convert::to_storage(rt, obj.clone());
    if let Some(m) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    encode(&copy, media)
}

/// [`encode_object`], and the JSON `rt`'s cache would decode from the value, had
/// without decoding it, when that is the object itself (stored as served, no float, a
/// JSON value or a protobuf one in the round trip's normal form): the cache then
/// splices the revision into that JSON ([`RevisionSlot::splice`]) instead of decoding.
pub fn encode_object_noting(
    rt: &crate::ResourceType,
    obj: &Value,
    media: StorageMediaType,
) -> (Vec<u8>, Option<JsonSlot>) {
    if !crate::convert::is_identity(rt) || crate::convert::webhook(rt).is_some() {
        return (encode_object(rt, obj, media), None);
    }
    let (bytes, slot) = encode_noting_revision(rt, obj, media);
    // A custom resource's decode sets its apiVersion: only an object that has it already
    // decodes to itself.
    let decodes_as_is = rt.custom.is_none() || has_api_version(rt, obj);
    (bytes, slot.filter(|_| decodes_as_is))
}

/// Whether `obj`'s apiVersion is `rt`'s.
fn has_api_version(rt: &crate::ResourceType, obj: &Value) -> bool {
    let Some(av) = obj.get("apiVersion").and_then(Value::as_str) else { return false };
    match av.split_once('/') {
        Some((g, v)) => *g == *rt.group && *v == *rt.version,
        None => rt.group.is_empty() && *av == *rt.version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_without_revision_equals_the_copy_without_it() {
        let obj = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": "7", "labels": {"resourceVersion": "x"}},
            "data": {"resourceVersion": "kept"},
        });
        let mut copy = obj.clone();
        copy["metadata"].as_object_mut().unwrap().remove("resourceVersion");
        for media in [StorageMediaType::Json, StorageMediaType::Protobuf] {
            assert_eq!(encode_without_revision(&obj, media), encode(&copy, media), "{media:?}");
        }
        let bare = serde_json::json!({"metadata": {"resourceVersion": "1"}});
        assert_eq!(encode_without_revision(&bare, StorageMediaType::Json), br#"{"metadata":{}}"#);
    }
    use serde_json::json;

    fn config_map() -> Value {
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "default", "uid": "u-1",
                         "creationTimestamp": "2026-01-02T03:04:05Z", "labels": {"a": "b"}},
            "data": {"k": "v"},
        })
    }

    #[test]
    fn both_formats_round_trip_and_are_told_apart_on_read() {
        let obj = config_map();
        for media in [StorageMediaType::Json, StorageMediaType::Protobuf] {
            let bytes = encode(&obj, media);
            assert_eq!(bytes.starts_with(protobuf::MAGIC), media == StorageMediaType::Protobuf);
            assert_eq!(decode(&bytes).unwrap(), obj, "{media:?}");
        }
    }

    #[test]
    fn kinds_without_a_protobuf_message_are_stored_as_json() {
        let cr =
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
        let bytes = encode(&cr, StorageMediaType::Protobuf);
        assert_eq!(bytes.first(), Some(&b'{'));
        assert_eq!(decode(&bytes).unwrap(), cr);
    }

    /// Objects of a version a conversion webhook converts to are never read by changing
    /// their apiVersion only (the engine converts them through the webhook).
    #[test]
    fn a_webhook_converted_version_is_not_decoded_by_its_api_version_alone() {
        let crd = json!({"metadata": {"name": "widgets.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "conversion": {"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
                "clientConfig": {"url": "https://127.0.0.1:1/convert"}}},
            "versions": [{"name": "v1", "served": true, "storage": true},
                         {"name": "v2", "served": true, "storage": false}]}});
        let types = crate::custom::types_from_crd(&crd);
        // Served in version priority order: v2 first.
        let (v2, v1) = (&types[0], &types[1]);
        assert_eq!((&*v2.version, &*v1.version), ("v2", "v1"));
        let stored = br#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":"3"}}"#;
        assert!(decode_object(v1, stored, 5).is_ok(), "the storage version reads as is");
        let e = decode_object(v2, stored, 5).unwrap_err();
        assert!(matches!(e, CodecError::Conversion(_)), "{e}");
    }

    #[test]
    fn media_types_parse_as_upstreams_flag_values() {
        assert_eq!(StorageMediaType::parse("application/json"), Ok(StorageMediaType::Json));
        assert_eq!(
            StorageMediaType::parse("application/vnd.kubernetes.protobuf"),
            Ok(StorageMediaType::Protobuf)
        );
        assert!(StorageMediaType::parse("application/yaml").is_err());
    }
}
