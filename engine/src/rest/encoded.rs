//! Responses assembled from the watch cache's shared encodings (encode-once): a GET
//! sends the cached bytes of the object; a LIST is streamed as its items' cached bytes,
//! one shared piece per item and no copy (its Content-Length known upfront), so a
//! request's memory beyond the shared encodings is one `Bytes` handle per item; a watch
//! event frame is a small head, a handle on the object's one encoding and a small tail,
//! whatever the number of watchers (no copy of the object per watcher or event).
//! JSON (compact) and protobuf; every other view (Table, metadata, YAML, pretty JSON) goes
//! through the object tree.

use crate::body::{Chunk, Response, ResponseBody};
use crate::cache::Cached;
use crate::negotiation::Output;
use crate::twin;
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use kapi_codec::ResourceType;
use kapi_codec::protobuf;
use kapi_storage::cache::CacheEntry;
use serde_json::Value;
use std::sync::Arc;

fn full(content_type: &'static str, body: Bytes) -> Response {
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(ResponseBody::full(body))
        .unwrap_or_else(|_| http::Response::new(ResponseBody::empty()))
}

/// Whether `output` can be served from cached encodings.
pub fn supported(output: Output, pretty: bool) -> bool {
    matches!(output, Output::Protobuf) || (output == Output::Json && !pretty)
}

/// The GET response of a cached object.
pub fn object(rt: &ResourceType, cached: &Cached, output: Output) -> Option<Response> {
    match output {
        Output::Json => Some(full("application/json", twin::json_line(rt, cached))),
        Output::Protobuf => {
            let raw = twin::proto(rt, cached)?;
            let mut out = Vec::with_capacity(raw.len() + 64);
            protobuf::envelope(&rt.api_version(), &rt.kind, &raw, &mut out);
            Some(full(protobuf::MEDIA_TYPE, out.into()))
        }
        _ => None,
    }
}

/// The LIST response of cached entries with list `metadata`.
pub fn list(
    rt: &ResourceType,
    entries: &[Arc<CacheEntry<Cached>>],
    metadata: &Value,
    output: Output,
) -> Option<Response> {
    let (pieces, content_type) = list_pieces(rt, entries, metadata, output)?;
    let len: usize = pieces.iter().map(Bytes::len).sum();
    let body = ResponseBody::Stream(stream::iter(pieces).map(Chunk::from).boxed_local());
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, len)
        .body(body)
        .ok()
}

/// The body of a LIST of cached entries as the pieces sent one after the other, with the
/// content type: a head, each item's shared encoding (no copy), a tail. The per-item cost
/// is one `Bytes` handle. None for views that are not cached, or a kind without protobuf.
pub fn list_pieces(
    rt: &ResourceType,
    entries: &[Arc<CacheEntry<Cached>>],
    metadata: &Value,
    output: Output,
) -> Option<(Vec<Bytes>, &'static str)> {
    match output {
        Output::Json => Some((json_pieces(rt, entries, metadata), "application/json")),
        Output::Protobuf => Some((proto_pieces(rt, entries, metadata)?, protobuf::MEDIA_TYPE)),
        _ => None,
    }
}

/// The pieces of a JSON list: head, items (each after the first with its leading comma),
/// tail (ending in `\n`, as upstream's encoder ends a body).
fn json_pieces(
    rt: &ResourceType,
    entries: &[Arc<CacheEntry<Cached>>],
    metadata: &Value,
) -> Vec<Bytes> {
    let head = format!(
        "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{},\"items\":[",
        Value::from(&*rt.list_kind),
        Value::from(rt.api_version()),
        metadata
    );
    let mut pieces = Vec::with_capacity(entries.len() + 2);
    pieces.push(Bytes::from(head));
    match twin::Retarget::new(rt) {
        None => {
            for (i, e) in entries.iter().enumerate() {
                let item = if i == 0 { e.data.json() } else { e.data.json_list_item() };
                pieces.push(item.clone());
            }
        }
        Some(r) => {
            // A twin version: each item's head swapped, the rest shared (see `twin`).
            let comma = Bytes::from_static(b",");
            for (i, e) in entries.iter().enumerate() {
                if i > 0 {
                    pieces.push(comma.clone());
                }
                r.pieces(e.data.json(), &mut pieces);
            }
        }
    }
    pieces.push(Bytes::from_static(b"]}\n"));
    pieces
}

/// The pieces of a protobuf list: envelope and list head, each item with its field
/// prefix, envelope tail. None when a kind has no protobuf message.
fn proto_pieces(
    rt: &ResourceType,
    entries: &[Arc<CacheEntry<Cached>>],
    metadata: &Value,
) -> Option<Vec<Bytes>> {
    let mut pieces = Vec::with_capacity(entries.len() + 2);
    pieces.push(Bytes::new());
    for e in entries {
        pieces.push(twin::proto_list_item(rt, &e.data)?);
    }
    let items_len = pieces.iter().map(Bytes::len).sum();
    let (head, tail) =
        protobuf::list_envelope(&rt.api_version(), &rt.list_kind, metadata, items_len).ok()?;
    pieces[0] = Bytes::from(head);
    pieces.push(Bytes::from(tail));
    Some(pieces)
}

/// A watch event frame of a cached object around its shared encoding, as the pieces
/// sent: a JSON line (`{"type":KIND,"object":`, the document, `}\n`) or a
/// length-prefixed protobuf WatchEvent (its head up to the message's length, the message,
/// the envelope's tail). The object's bytes are shared with the cache, never copied per
/// watcher. None for the views that are not cached (the caller frames the object tree
/// then) or a kind without a protobuf message.
pub fn watch_frame(
    rt: &ResourceType,
    api_version: &str,
    kind: &str,
    cached: &Cached,
    output: Output,
) -> Option<Chunk> {
    match output {
        Output::Json => {
            let mut f = Chunk::default();
            f.push(json_frame_head(kind));
            match twin::Retarget::new(rt) {
                None => f.push(cached.json().clone()),
                Some(r) => {
                    let mut doc = Vec::with_capacity(2);
                    r.pieces(cached.json(), &mut doc);
                    doc.into_iter().for_each(|p| f.push(p));
                }
            }
            f.push(Bytes::from_static(b"}\n"));
            Some(f)
        }
        Output::Protobuf => {
            let raw = twin::proto(rt, cached)?;
            let head = protobuf::watch_event_head(kind, api_version, &rt.kind, raw.len()).ok()?;
            let tail = Bytes::from_static(protobuf::WATCH_EVENT_TAIL);
            Some(Chunk::of([Bytes::from(head), raw, tail]))
        }
        _ => None,
    }
}

/// `{"type":KIND,"object":`: static for the event types of objects.
fn json_frame_head(kind: &str) -> Bytes {
    match kind {
        "ADDED" => Bytes::from_static(b"{\"type\":\"ADDED\",\"object\":"),
        "MODIFIED" => Bytes::from_static(b"{\"type\":\"MODIFIED\",\"object\":"),
        "DELETED" => Bytes::from_static(b"{\"type\":\"DELETED\",\"object\":"),
        other => Bytes::from(format!("{{\"type\":{},\"object\":", Value::from(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kapi_codec::Registry;
    use serde_json::json;

    fn rt(group: &str, version: &str, plural: &str) -> Arc<ResourceType> {
        Registry::known().get(group, version, plural).expect("a known type").clone()
    }

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "resourceVersion": "7",
                "annotations": {"pad": "x".repeat(20_000)}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}})
    }

    /// The frame as before it was sent in pieces: the object's document copied between
    /// `{"type":KIND,"object":` and `}\n`.
    fn json_frame_copied(kind: &str, doc: &[u8]) -> Vec<u8> {
        let mut f = format!("{{\"type\":\"{kind}\",\"object\":").into_bytes();
        f.extend_from_slice(doc);
        f.extend_from_slice(b"}\n");
        f
    }

    /// A JSON frame in pieces is the line sent before, and its object piece is the
    /// cache's encoding itself (shared, not copied).
    #[test]
    fn json_frames_share_the_cached_document_and_keep_their_bytes() {
        let pods = rt("", "v1", "pods");
        let cached = Cached::new(&pods, &pod());
        for kind in ["ADDED", "MODIFIED", "DELETED", "ERROR"] {
            let f = watch_frame(&pods, "v1", kind, &cached, Output::Json).unwrap();
            assert_eq!(f.to_bytes(), json_frame_copied(kind, cached.json()));
            let line: Value = serde_json::from_slice(&f.to_bytes()).unwrap();
            assert_eq!(line, json!({"type": kind, "object": pod()}));
            assert!(f.pieces().iter().any(|p| p.as_ptr() == cached.json().as_ptr()));
            assert!(
                f.pieces().iter().all(|p| p.len() < 100 || p.as_ptr() == cached.json().as_ptr())
            );
        }
    }

    /// A protobuf frame in pieces is the frame the object tree encodes to, and its
    /// message piece is the cache's encoding itself.
    #[test]
    fn protobuf_frames_share_the_cached_message_and_keep_their_bytes() {
        let pods = rt("", "v1", "pods");
        let cached = Cached::new(&pods, &pod());
        let msg = cached.proto(&pods).unwrap().clone();
        for kind in ["ADDED", "MODIFIED", "DELETED"] {
            let f = watch_frame(&pods, "v1", kind, &cached, Output::Protobuf).unwrap();
            let mut whole = Vec::new();
            protobuf::encode_watch_event(kind, &pod(), &mut whole).unwrap();
            assert!(f.to_bytes() == whole, "{kind}: the pieces differ from the whole frame");
            assert_eq!(f.pieces()[1].as_ptr(), msg.as_ptr(), "the cached message, shared");
        }
    }

    /// A twin version's JSON frame: the storage version's document with its head
    /// swapped, the rest shared; the same bytes as the twin's document copied.
    #[test]
    fn twin_frames_swap_the_head_and_share_the_rest() {
        let (ga, twin) = (
            rt("resource.k8s.io", "v1", "deviceclasses"),
            rt("resource.k8s.io", "v1beta2", "deviceclasses"),
        );
        let obj = json!({"kind": "DeviceClass", "apiVersion": "resource.k8s.io/v1",
            "metadata": {"name": "a", "resourceVersion": "3"}, "spec": {}});
        let cached = Cached::new(&ga, &obj);
        let f =
            watch_frame(&twin, "resource.k8s.io/v1beta2", "ADDED", &cached, Output::Json).unwrap();
        assert_eq!(f.to_bytes(), json_frame_copied("ADDED", &twin::json(&twin, &cached)));
        let doc = cached.json();
        assert!(f.pieces().iter().any(|p| doc.as_ptr_range().contains(&p.as_ptr())));
        let line: Value = serde_json::from_slice(&f.to_bytes()).unwrap();
        assert_eq!(line["object"]["apiVersion"], "resource.k8s.io/v1beta2");
    }
}
