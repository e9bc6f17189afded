//! Encode-once on the write path (issue #20): a writer that stores an object hands the
//! watch cache what it already made of it, so the cache's feed does not decode the
//! stored value again. The writer wrote the stored JSON noting where the resourceVersion
//! goes (`kapi_codec::stored::encode_object_noting`) and read the object's labels and
//! selectable fields; when the write's event comes, the cache splices the event's
//! revision into the stored bytes and keeps those values ([`Cached::spliced`]).
//!
//! Invariant: what the cache keeps from a hand-off is byte for byte what it would have
//! decoded (the splice's invariant in `kapi_codec::stored`, and selector values read
//! from the very object the stored bytes were written from), so LIST, GET and WATCH
//! send the same bytes whichever way an entry was made. Values that give no slot
//! (protobuf, converted or float-bearing objects) leave nothing and are decoded; so are
//! other writers' events on a shared etcd (their bytes match no hand-off here).

use super::{Cache, Cached, Selectors};
use crate::app::App;
use crate::status::ApiError;
use bytes::Bytes;
use kapi_codec::ResourceType;
use kapi_codec::stored::RevisionSlot;
use serde_json::Value;
use std::sync::Arc;

/// A hand-off left with a cache; withdraw it ([`withdraw`]) when the write fails.
pub struct Offer {
    cache: Arc<Cache>,
    value: Bytes,
}

/// The write of `key` failed: its hand-off, if any, is not needed.
pub fn withdraw(offer: Option<Offer>, key: &str) {
    if let Some(o) = offer {
        o.cache.withdraw(key, &o.value);
    }
}

/// The bytes to store at `key` for `obj` (an object of `rt`, converted to its storage
/// version), and the hand-off left with `rt`'s cache for the write's event: call it
/// right before the write; [`withdraw`] the hand-off if the write fails.
pub async fn to_stored(
    app: &App,
    rt: &Arc<ResourceType>,
    key: &str,
    obj: &Value,
) -> Result<(Bytes, Option<Offer>), ApiError> {
    if kapi_codec::convert::webhook(rt).is_some() {
        return crate::conversion::to_stored(app, rt, obj).await.map(|b| (b, None));
    }
    let (bytes, slot) = kapi_codec::stored::encode_object_noting(rt, obj, app.storage_media);
    let bytes = Bytes::from(bytes);
    let offer = slot.and_then(|slot| offer(app, rt, key, &bytes, slot, obj));
    Ok((bytes, offer))
}

/// Hand `rt`'s cache, when started, the slot of `value` (written from `obj`) and the
/// object's selector values, so the write's event is spliced, not decoded.
fn offer(
    app: &App,
    rt: &Arc<ResourceType>,
    key: &str,
    value: &Bytes,
    slot: RevisionSlot,
    obj: &Value,
) -> Option<Offer> {
    let cache = app.caches.get_started(app, rt)?;
    let selectors = Selectors::of(rt, obj);
    let checked = verifying().then(|| Arc::downgrade(rt));
    let make = Box::new(move |kv: &kapi_storage::KeyValue| {
        let made = Cached::spliced(&kv.value, slot, kv.mod_revision, selectors)?;
        if let Some(rt) = checked.and_then(|rt| rt.upgrade()) {
            check(&rt, kv, &made);
        }
        Some(made)
    });
    cache.prepare(key, value.clone(), make);
    Some(Offer { cache, value: value.clone() })
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
