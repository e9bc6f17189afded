//! Encode-once on the write path (issue #20): a writer that stores an object hands the
//! watch cache what it already made of it, so the cache's feed does not decode the
//! stored value again. The writer wrote the object's JSON noting where the
//! resourceVersion goes (`kapi_codec::stored::encode_object_noting`: the stored value
//! itself when stored as JSON; beside the stored protobuf when the object is in the
//! protobuf round trip's normal form) and read the object's labels and selectable
//! fields; when the write's event comes, the cache splices the event's revision into
//! that JSON and keeps those values ([`Cached::spliced`]). The writer splices its own
//! revision into the same JSON for its answer ([`Written::answer`]).
//!
//! Invariant: what the cache keeps from a hand-off is byte for byte what it would have
//! decoded (the splice's invariant in `kapi_codec::stored`, and selector values read
//! from the very object the stored bytes were written from), so LIST, GET and WATCH
//! send the same bytes whichever way an entry was made; and a write's answer from the
//! splice is byte for byte the object's JSON. Values that give no slot (converted,
//! float-bearing objects, protobuf values whose decode would change the object) leave
//! nothing and are decoded; so are other writers' events on a shared etcd (their bytes
//! match no hand-off here).

use super::{Cache, Cached, Selectors};
use crate::app::App;
use crate::status::ApiError;
use bytes::Bytes;
use kapi_codec::ResourceType;
use kapi_codec::stored::RevisionSlot;
use serde_json::Value;
use std::sync::Arc;

/// A hand-off left with a cache, withdrawn when the write fails.
struct Offer {
    cache: Arc<Cache>,
    value: Bytes,
}

/// What a writer stores for an object, and what it made of it on the way.
pub struct Written {
    /// The bytes to store.
    pub bytes: Bytes,
    offer: Option<Offer>,
    /// The object's JSON without its resourceVersion, and where that goes.
    json: Option<(Bytes, RevisionSlot)>,
}

impl Written {
    /// The write failed: its hand-off, if any, is not needed.
    pub fn withdraw(&self, key: &str) {
        if let Some(o) = &self.offer {
            o.cache.withdraw(key, &o.value);
        }
    }

    /// The object's compact JSON ended by `\n` with `metadata.resourceVersion` set to
    /// `revision`: byte for byte what a JSON answer writes of the object once its
    /// resourceVersion is set, spliced from what the writer made instead of written from
    /// the tree again. None when the writer made no JSON with a slot.
    pub fn answer(&self, revision: u64) -> Option<Bytes> {
        let (json, slot) = self.json.as_ref()?;
        // A pooled response buffer, as an answer written from the tree takes.
        let body = crate::buffers::encode(|out| {
            if slot.splice(json, revision, out) {
                out.push(b'\n');
            }
        });
        (!body.is_empty()).then_some(body)
    }
}

/// The bytes to store at `key` for `obj` (an object of `rt`, converted to its storage
/// version), with the hand-off left with `rt`'s cache for the write's event: call it
/// right before the write; [`Written::withdraw`] it if the write fails.
pub async fn to_stored(
    app: &App,
    rt: &Arc<ResourceType>,
    key: &str,
    obj: &Value,
) -> Result<Written, ApiError> {
    if kapi_codec::convert::webhook(rt).is_some() {
        let bytes = crate::conversion::to_stored(app, rt, obj).await?;
        return Ok(Written { bytes, offer: None, json: None });
    }
    let (bytes, noted) = kapi_codec::stored::encode_object_noting(rt, obj, app.storage_media);
    let bytes = Bytes::from(bytes);
    let json = noted.map(|n| (n.json.map_or_else(|| bytes.clone(), Bytes::from), n.slot));
    let offer = json.as_ref().and_then(|(j, slot)| offer(app, rt, key, &bytes, j, *slot, obj));
    // A custom resource's answer is written from its tree: its stored JSON has sorted
    // metadata, its tree's answer does not (regression: the spliced answer differed from
    // the tree's in the CRD e2e tests).
    let json = json.filter(|_| rt.custom.is_none());
    Ok(Written { bytes, offer, json })
}

/// Hand `rt`'s cache, when started, the object's JSON `json` with its revision's `slot`
/// for the event whose value is `value`, and the object's selector values, so the
/// write's event is spliced, not decoded.
fn offer(
    app: &App,
    rt: &Arc<ResourceType>,
    key: &str,
    value: &Bytes,
    json: &Bytes,
    slot: RevisionSlot,
    obj: &Value,
) -> Option<Offer> {
    let cache = app.caches.get_started(app, rt)?;
    let selectors = Selectors::of(rt, obj);
    let checked = verifying().then(|| Arc::downgrade(rt));
    let json = json.clone();
    let make = Box::new(move |kv: &kapi_storage::KeyValue| {
        let made = Cached::spliced(&json, slot, kv.mod_revision, selectors)?;
        if let Some(rt) = checked.and_then(|rt| rt.upgrade()) {
            check(&rt, kv, &made);
        }
        Some(made)
    });
    cache.prepare(key, value.clone(), make);
    Some(Offer { cache, value: value.clone() })
}

/// Panic (only when verifying) when a write's `answer` from its splice is not what the
/// answer written from its object `obj` is: the invariant above is broken.
pub fn check_answer(answer: &Bytes, obj: &Value) {
    if !verifying() {
        return;
    }
    let mut want = Vec::new();
    kapi_codec::format::write_json(obj, &mut want);
    want.push(b'\n');
    assert!(
        answer[..] == want[..],
        "a write's answer: spliced {} but the object writes {}",
        String::from_utf8_lossy(answer),
        String::from_utf8_lossy(&want),
    );
}

/// Whether every hand-off is checked against a decode of its value
/// (`KAPI_VERIFY_HANDOFFS=1`; the test scripts set it, so every e2e test checks the
/// invariant on both backends).
fn verifying() -> bool {
    *VERIFY.get_or_init(|| std::env::var("KAPI_VERIFY_HANDOFFS").is_ok_and(|v| v == "1"))
}

static VERIFY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Decide whether hand-offs are verified, whatever the environment says, when called
/// before the first write (the allocation tests measure without the check's decode,
/// although the test scripts set `KAPI_VERIFY_HANDOFFS=1`). False when too late.
pub fn set_verifying(on: bool) -> bool {
    VERIFY.set(on).is_ok()
}

/// Panic (the feeder's thread; only when verifying) when `made` is not what the cache
/// would have decoded from `kv`: the invariant above is broken.
fn check(rt: &ResourceType, kv: &kapi_storage::KeyValue, made: &Cached) {
    let Ok(obj) = kapi_codec::stored::decode_object(rt, &kv.value, kv.mod_revision) else {
        panic!("hand-off of {} at {}: its value does not decode", kv.key, kv.mod_revision);
    };
    let decoded = Cached::new(rt, &obj);
    assert!(
        made.json_line == decoded.json_line,
        "hand-off of {} at {}: spliced {} but decoded {}",
        kv.key,
        kv.mod_revision,
        String::from_utf8_lossy(&made.json_line),
        String::from_utf8_lossy(&decoded.json_line),
    );
    assert!(
        made.labels == decoded.labels && made.fields == decoded.fields,
        "hand-off of {} at {}: selector values {:?} {:?}, decoded {:?} {:?}",
        kv.key,
        kv.mod_revision,
        made.labels,
        made.fields,
        decoded.labels,
        decoded.fields,
    );
}
