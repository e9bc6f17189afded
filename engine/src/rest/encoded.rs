//! Responses assembled from the watch cache's shared encodings (encode-once): a GET
//! sends the cached bytes of the object; a LIST is streamed from its items' cached bytes
//! in chunks of bounded size (with its Content-Length known upfront), so a request's
//! memory does not grow with the list beyond the pieces' shared pointers. JSON (compact) and protobuf; every other view (Table,
//! metadata, YAML, pretty JSON) goes through the object tree.

use crate::body::{Response, ResponseBody};
use crate::cache::Cached;
use crate::negotiation::Output;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use kapi_codec::ResourceType;
use kapi_codec::protobuf;
use kapi_storage::cache::CacheEntry;
use serde_json::Value;
use std::sync::Arc;

/// Chunks of a streamed list are at least this large (except the last).
const CHUNK: usize = 64 * 1024;

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
        Output::Json => Some(full("application/json", cached.json().clone())),
        Output::Protobuf => {
            let raw = cached.proto(rt)?;
            let mut out = Vec::with_capacity(raw.len() + 64);
            protobuf::envelope(&rt.api_version(), rt.kind, raw, &mut out);
            Some(full(protobuf::MEDIA_TYPE, out.into()))
        }
        _ => None,
    }
}

/// The LIST response of cached entries with list `metadata`.
pub fn list(
    rt: &'static ResourceType,
    entries: &[Arc<CacheEntry<Cached>>],
    metadata: &Value,
    output: Output,
) -> Option<Response> {
    let (pieces, content_type) = match output {
        Output::Json => (json_pieces(rt, entries, metadata), "application/json"),
        Output::Protobuf => (proto_pieces(rt, entries, metadata)?, protobuf::MEDIA_TYPE),
        _ => return None,
    };
    let len: usize = pieces.iter().map(Bytes::len).sum();
    let body = ResponseBody::Stream(chunked(pieces.into_iter()).boxed_local());
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, len)
        .body(body)
        .ok()
}

/// The pieces of a JSON list: head, items separated by commas, tail.
fn json_pieces(
    rt: &ResourceType,
    entries: &[Arc<CacheEntry<Cached>>],
    metadata: &Value,
) -> Vec<Bytes> {
    let head = format!(
        "{{\"kind\":{},\"apiVersion\":{},\"metadata\":{},\"items\":[",
        Value::from(rt.list_kind),
        Value::from(rt.api_version()),
        metadata
    );
    let items = entries.iter().enumerate().flat_map(|(i, e)| {
        let sep = (i > 0).then(|| Bytes::from_static(b","));
        sep.into_iter().chain(std::iter::once(e.data.json().clone()))
    });
    std::iter::once(Bytes::from(head))
        .chain(items)
        .chain(std::iter::once(Bytes::from_static(b"]}")))
        .collect()
}

/// The pieces of a protobuf list: envelope and list head, each item's field prefix and
/// message, envelope tail. None when a kind has no protobuf message.
fn proto_pieces(
    rt: &ResourceType,
    entries: &[Arc<CacheEntry<Cached>>],
    metadata: &Value,
) -> Option<Vec<Bytes>> {
    let raws: Vec<Bytes> =
        entries.iter().map(|e| e.data.proto(rt).cloned()).collect::<Option<_>>()?;
    let refs: Vec<&[u8]> = raws.iter().map(|b| b.as_ref()).collect();
    let (head, prefixes, tail) =
        protobuf::list_parts(&rt.api_version(), rt.list_kind, metadata, &refs).ok()?;
    let items = prefixes.into_iter().zip(raws).flat_map(|(p, r)| [Bytes::from(p), r]);
    let pieces = std::iter::once(Bytes::from(head)).chain(items);
    Some(pieces.chain(std::iter::once(Bytes::from(tail))).collect())
}

/// Group pieces into chunks of about `CHUNK` bytes (large pieces pass through whole).
fn chunked(
    pieces: impl Iterator<Item = Bytes> + 'static,
) -> impl futures_util::Stream<Item = Bytes> {
    futures_util::stream::unfold(pieces, |mut pieces| async move {
        let mut buf = BytesMut::new();
        for p in pieces.by_ref() {
            if buf.is_empty() && p.len() >= CHUNK {
                return Some((p, pieces));
            }
            buf.extend_from_slice(&p);
            if buf.len() >= CHUNK {
                return Some((buf.freeze(), pieces));
            }
        }
        (!buf.is_empty()).then(|| (buf.freeze(), pieces))
    })
}
