//! Kubernetes protobuf (`application/vnd.kubernetes.protobuf`): the `k8s\0` magic and the
//! `runtime.Unknown` envelope around a message, decoded to and encoded from the same JSON
//! object trees every other format uses.
//!
//! - [`wire`]: varints, keys, length-delimited fields.
//! - [`table`]: message tables (field numbers from k8s-pb, JSON names from the schemas,
//!   Go pointer facts from `go_facts.rs`).
//! - [`decode`] / [`encode`]: one message <-> one JSON value.
//! - [`normal`]: whether an object comes back from its encoding as itself.

pub mod decode;
pub mod encode;
pub(crate) mod go_facts;
pub mod normal;
pub mod table;
pub mod wire;

use crate::error::CodecError;
use crate::registry::Registry;
use serde_json::{Map, Value};
use wire::{Reader, put_bytes, put_nested};

/// The prefix of every Kubernetes protobuf document.
pub const MAGIC: &[u8; 4] = b"k8s\0";

pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

fn malformed(what: impl std::fmt::Display) -> CodecError {
    CodecError::Malformed(format!("the object provided is unrecognized: {what}"))
}

/// The OpenAPI definition that carries `kind` of `api_version`.
pub fn definition_for(api_version: &str, kind: &str) -> Option<String> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if let Some(rt) = Registry::known().by_kind(group, version, kind) {
        return Some(rt.schema_name.to_string());
    }
    let t = table::tables();
    let package = match group {
        "" => "io.k8s.api.core".to_string(),
        "apiextensions.k8s.io" => "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions".into(),
        "apiregistration.k8s.io" => "io.k8s.kube-aggregator.pkg.apis.apiregistration".into(),
        "meta.k8s.io" => "io.k8s.apimachinery.pkg.apis.meta".into(),
        g => format!("io.k8s.api.{}", g.split('.').next().unwrap_or(g)),
    };
    [format!("{package}.{version}.{kind}"), format!("io.k8s.apimachinery.pkg.apis.meta.v1.{kind}")]
        .into_iter()
        .find(|name| t.by_name(name).is_some())
}

/// Decode a `k8s\0` document into a JSON object with `apiVersion` and `kind` first.
pub fn decode_object(body: &[u8]) -> Result<Value, CodecError> {
    let rest = body.strip_prefix(MAGIC.as_slice()).ok_or_else(|| malformed("missing k8s magic"))?;
    let (api_version, kind, raw) = unknown(rest)?;
    let name = definition_for(&api_version, &kind).ok_or_else(|| {
        malformed(format!("no kind \"{kind}\" is registered for version \"{api_version}\""))
    })?;
    let decoded = decode::decode_message(&name, raw)?;
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), Value::String(api_version));
    obj.insert("kind".into(), Value::String(kind));
    if let Value::Object(fields) = decoded {
        obj.extend(fields);
    }
    Ok(Value::Object(obj))
}

/// The TypeMeta and raw bytes of a runtime.Unknown.
fn unknown(bytes: &[u8]) -> Result<(String, String, &[u8]), CodecError> {
    let mut r = Reader::new(bytes);
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    while !r.done() {
        match r.key()? {
            (1, wire::LEN) => {
                let mut tm = Reader::new(r.bytes()?);
                while !tm.done() {
                    match tm.key()? {
                        (1, wire::LEN) => api_version = String::from_utf8_lossy(tm.bytes()?).into(),
                        (2, wire::LEN) => kind = String::from_utf8_lossy(tm.bytes()?).into(),
                        (_, wt) => tm.skip(wt)?,
                    }
                }
            }
            (2, wire::LEN) => raw = r.bytes()?,
            (3, wire::LEN) => {
                if !r.bytes()?.is_empty() {
                    return Err(malformed("content encodings are not supported"));
                }
            }
            (_, wt) => r.skip(wt)?,
        }
    }
    if kind.is_empty() {
        return Err(malformed("the envelope has no kind"));
    }
    Ok((api_version, kind, raw))
}

/// Encode a JSON object (with `apiVersion` and `kind`) as a `k8s\0` document.
pub fn encode_object(value: &Value, out: &mut Vec<u8>) -> Result<(), CodecError> {
    encode_object_as(value, out, encode::encode_message)
}

/// [`encode_object`] as if `metadata.resourceVersion` were absent (a stored value),
/// without copying the object.
pub fn encode_object_without_revision(value: &Value, out: &mut Vec<u8>) -> Result<(), CodecError> {
    encode_object_as(value, out, encode::encode_message_without_revision)
}

fn encode_object_as(
    value: &Value,
    out: &mut Vec<u8>,
    message: fn(&str, &Value, &mut Vec<u8>) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    let str_of = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind) = (str_of("apiVersion"), str_of("kind"));
    let name = definition_for(api_version, kind).ok_or_else(|| {
        CodecError::Malformed(format!("no protobuf message for {api_version}, Kind={kind}"))
    })?;
    out.extend_from_slice(MAGIC);
    type_meta(out, api_version, kind);
    put_nested(out, 2, |o| message(&name, value, o))?;
    put_bytes(out, 3, b"");
    put_bytes(out, 4, b"");
    Ok(())
}

/// The envelope's `typeMeta` field (apiVersion, kind).
fn type_meta(out: &mut Vec<u8>, api_version: &str, kind: &str) {
    let mut tm = Vec::with_capacity(api_version.len() + kind.len() + 4);
    put_bytes(&mut tm, 1, api_version.as_bytes());
    put_bytes(&mut tm, 2, kind.as_bytes());
    put_bytes(out, 1, &tm);
}

/// A `k8s\0` document around an already encoded message `raw` of `kind`.
pub fn envelope(api_version: &str, kind: &str, raw: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(MAGIC);
    type_meta(out, api_version, kind);
    put_bytes(out, 2, raw);
    put_bytes(out, 3, b"");
    put_bytes(out, 4, b"");
}

/// The `k8s\0` envelope and list message of a list whose items are already encoded
/// messages, without the items: returns (head, per-item field prefixes, tail) so the
/// caller can send `head`, then each prefix followed by its item, then `tail`.
pub fn list_parts(
    api_version: &str,
    list_kind: &str,
    list_meta: &Value,
    items: &[&[u8]],
) -> Result<(Vec<u8>, Vec<Vec<u8>>, Vec<u8>), CodecError> {
    let prefixes: Vec<Vec<u8>> = items
        .iter()
        .map(|item| {
            let mut p = Vec::with_capacity(6);
            list_item_prefix(item.len(), &mut p);
            p
        })
        .collect();
    let items_len = prefixes.iter().zip(items).map(|(p, i)| p.len() + i.len()).sum();
    let (head, tail) = list_envelope(api_version, list_kind, list_meta, items_len)?;
    Ok((head, prefixes, tail))
}

/// The key and length that precede an item message of `len` bytes in a List.
pub fn list_item_prefix(len: usize, out: &mut Vec<u8>) {
    wire::put_key(out, 2, wire::LEN);
    wire::put_varint(out, len as u64);
}

/// The head (envelope, list message key and length, ListMeta) and tail of a List whose
/// items, each with its `list_item_prefix`, take `items_len` bytes.
pub fn list_envelope(
    api_version: &str,
    list_kind: &str,
    list_meta: &Value,
    items_len: usize,
) -> Result<(Vec<u8>, Vec<u8>), CodecError> {
    let mut meta = Vec::new();
    encode::encode_message("io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta", list_meta, &mut meta)?;
    let mut list_head = Vec::new();
    put_bytes(&mut list_head, 1, &meta);
    let mut head = MAGIC.to_vec();
    type_meta(&mut head, api_version, list_kind);
    wire::put_key(&mut head, 2, wire::LEN);
    wire::put_varint(&mut head, (list_head.len() + items_len) as u64);
    head.extend_from_slice(&list_head);
    let mut tail = Vec::new();
    put_bytes(&mut tail, 3, b"");
    put_bytes(&mut tail, 4, b"");
    Ok((head, tail))
}

/// A watch frame (see `encode_watch_event`) around an object's already encoded message:
/// [`watch_event_head`], `raw`, [`WATCH_EVENT_TAIL`].
pub fn watch_event_from_raw(
    event_type: &str,
    api_version: &str,
    kind: &str,
    raw: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    out.extend_from_slice(&watch_event_head(event_type, api_version, kind, raw.len())?);
    out.extend_from_slice(raw);
    out.extend_from_slice(WATCH_EVENT_TAIL);
    Ok(())
}

/// What follows the object's message in a watch frame: the envelope's empty
/// `contentEncoding` and `contentType` (fields 3 and 4).
pub const WATCH_EVENT_TAIL: &[u8] = &[3 << 3 | wire::LEN, 0, 4 << 3 | wire::LEN, 0];

/// The bytes of a watch frame (see `encode_watch_event`) before an object's already
/// encoded message of `raw_len` bytes, so the frame can be sent as this head, the shared
/// message and [`WATCH_EVENT_TAIL`] without copying the message: the frame's length, the
/// event's `type`, the keys and lengths of `object` (a RawExtension) and of its `raw`
/// (the `k8s\0` document), the envelope's magic and typeMeta, and the key and length of
/// its `raw`, the message.
pub fn watch_event_head(
    event_type: &str,
    api_version: &str,
    kind: &str,
    raw_len: usize,
) -> Result<Vec<u8>, CodecError> {
    let field = |len: usize| 1 + wire::varint_len(len as u64) + len;
    let mut type_meta_field = Vec::with_capacity(api_version.len() + kind.len() + 8);
    type_meta(&mut type_meta_field, api_version, kind);
    let doc_len = MAGIC.len() + type_meta_field.len() + field(raw_len) + WATCH_EVENT_TAIL.len();
    let raw_ext_len = field(doc_len);
    let event_len = field(event_type.len()) + field(raw_ext_len);
    let event_len = u32::try_from(event_len).map_err(|_| malformed("frame too large"))?;
    let mut head = Vec::with_capacity(32 + type_meta_field.len() + event_type.len());
    head.extend_from_slice(&event_len.to_be_bytes());
    put_bytes(&mut head, 1, event_type.as_bytes());
    for (tag, len) in [(2, raw_ext_len), (1, doc_len)] {
        wire::put_key(&mut head, tag, wire::LEN);
        wire::put_varint(&mut head, len as u64);
    }
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&type_meta_field);
    wire::put_key(&mut head, 2, wire::LEN);
    wire::put_varint(&mut head, raw_len as u64);
    Ok(head)
}

/// One frame of a protobuf watch stream as upstream writes it: a 4-byte big-endian
/// length, then the `meta.v1.WatchEvent` message itself (no `k8s\0` envelope: upstream's
/// stream serializer is the raw one), whose `object.raw` is the object's own `k8s\0`
/// document.
pub fn encode_watch_event(
    event_type: &str,
    object: &Value,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    watch_frame(event_type, out, |doc| encode_object(object, doc))
}

fn watch_frame(
    event_type: &str,
    out: &mut Vec<u8>,
    object_doc: impl FnOnce(&mut Vec<u8>) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    put_bytes(out, 1, event_type.as_bytes());
    put_nested(out, 2, |raw_ext| put_nested(raw_ext, 1, object_doc))?;
    let len = u32::try_from(out.len() - start - 4).map_err(|_| malformed("frame too large"))?;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod upstream_bytes;
