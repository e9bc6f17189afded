//! Responses assembled from the watch cache's shared encodings (encode-once): a GET
//! sends the cached bytes of the object; a LIST is streamed as its items' cached bytes,
//! one shared piece per item and no copy (its Content-Length known upfront), so a
//! request's memory beyond the shared encodings is one `Bytes` handle per item; a watch
//! event frame is built around the object's one encoding, whatever the number of watchers.
//! JSON (compact) and protobuf; every other view (Table, metadata, YAML, pretty JSON) goes
//! through the object tree.

use crate::body::{Response, ResponseBody};
use crate::cache::Cached;
use crate::negotiation::Output;
use crate::twin;
use bytes::Bytes;
use futures_util::StreamExt;
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
    let body = ResponseBody::Stream(futures_util::stream::iter(pieces).boxed_local());
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

/// A watch event frame of a cached object from its shared encoding: a JSON line or a
/// length-prefixed protobuf WatchEvent. None for the views that are not cached (the
/// caller frames the object tree then) or a kind without a protobuf message.
pub fn watch_frame(
    rt: &ResourceType,
    api_version: &str,
    kind: &str,
    cached: &Cached,
    output: Output,
) -> Option<Vec<u8>> {
    match output {
        Output::Json => {
            let obj = twin::json(rt, cached);
            let mut f = Vec::with_capacity(kind.len() + obj.len() + 24);
            f.extend_from_slice(b"{\"type\":\"");
            f.extend_from_slice(kind.as_bytes());
            f.extend_from_slice(b"\",\"object\":");
            f.extend_from_slice(&obj);
            f.extend_from_slice(b"}\n");
            Some(f)
        }
        Output::Protobuf => {
            let raw = twin::proto(rt, cached)?;
            let mut f = Vec::with_capacity(raw.len() + 96);
            protobuf::watch_event_from_raw(kind, api_version, &rt.kind, &raw, &mut f).ok()?;
            Some(f)
        }
        _ => None,
    }
}
