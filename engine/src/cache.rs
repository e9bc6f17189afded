//! The engine's side of the watch cache: one `kapi_storage::cache::WatchCache` per
//! stored resource, started on first use, holding each object decoded once per revision
//! (with its resourceVersion set) so GET, LIST and WATCH never re-read or re-decode the
//! store. Pods are indexed by `spec.nodeName` so a kubelet's watch is reached directly.
//!
//! Watches are served through a per-core fan-out hub ([`hub`]): each event crosses to a
//! core once, through a lock-free queue, whatever the number of watchers there.
//!
//! Reads wait (bounded) until the cache has caught up with what they must observe:
//! consistent reads the store's current revision, `resourceVersion=N` reads revision N.

use crate::app::App;
use crate::status::ApiError;
use bytes::Bytes;
use kapi_codec::ResourceType;
use kapi_codec::registry::Persistence;
use kapi_codec::stored::RevisionSlot;
use kapi_storage::Revision;
use kapi_storage::cache::hub::Hub;
use kapi_storage::cache::{CacheOptions, DecodeFn, IndexFn, Relist, WatchCache};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub mod written;

/// An object as the cache holds it: its encodings, made at most once per format and
/// shared by every GET, LIST and watch event that sends it, and what selectors read
/// (labels and the type's selectable field values). The object tree is not kept (it is
/// ~10x the size of its encoding); views that need it ([`Cached::obj`]) parse the JSON.
///
/// Each encoding is kept with what precedes it as a LIST item (a `,` for JSON, the items
/// field key and length for protobuf) in one allocation, so a LIST sends every item after
/// the first as one shared piece; the accessors return the bare document as a zero-copy
/// slice of it.
#[derive(Debug)]
pub struct Cached {
    json: Encoding,
    /// The JSON document followed by `\n` (a GET body, ended as upstream's encoder ends
    /// it), a slice of the same allocation.
    json_line: Bytes,
    proto: OnceLock<Option<Encoding>>,
    /// The object tree, parsed on first [`Cached::shared`] and kept: only for the few
    /// kinds admission plugins read on every write (namespaces, ServiceAccounts), never
    /// for objects only sent (the tree is ~10x the encoding).
    tree: OnceLock<Arc<Value>>,
    labels: Option<Map<String, Value>>,
    /// `(field, value)` of every field selector the type supports.
    /// In the order of `ResourceType::selectable_fields`.
    fields: Box<[Option<String>]>,
}

/// One encoding of an object: the LIST item (separator or prefix + document) and the
/// bare document, a slice of the same allocation.
#[derive(Debug)]
struct Encoding {
    item: Bytes,
    doc: Bytes,
}

impl Encoding {
    fn new(item: Vec<u8>, at: usize) -> Encoding {
        let item = Bytes::from(item);
        Encoding { doc: item.slice(at..), item }
    }
}

/// Encodings made by `Cached` since start (JSON and protobuf), for tests and benches.
static ENCODES: AtomicU64 = AtomicU64::new(0);

/// How many object encodings the watch cache's entries have made so far.
pub fn encode_count() -> u64 {
    ENCODES.load(Ordering::Relaxed)
}

impl Cached {
    /// Keep `obj` (an object of type `rt`) as its JSON encoding and selectable values.
    pub fn new(rt: &ResourceType, obj: &Value) -> Self {
        let mut out = Vec::with_capacity(4096);
        out.push(b',');
        kapi_codec::format::write_json(obj, &mut out);
        Self::with_json(out, Selectors::of(rt, obj))
    }

    /// An entry whose JSON is a stored JSON value with its revision spliced in where
    /// the writer noted it (`kapi_codec::stored::RevisionSlot`), and the selector values
    /// the writer read from the object: what [`Cached::new`] makes of the decoded
    /// value, without decoding it (see [`written`]). None when the slot does not fit.
    pub fn spliced(
        value: &[u8],
        slot: RevisionSlot,
        revision: Revision,
        selectors: Selectors,
    ) -> Option<Self> {
        let mut out = Vec::with_capacity(value.len() + RevisionSlot::MAX_EXTRA + 2);
        out.push(b',');
        slot.splice(value, revision, &mut out).then(|| Self::with_json(out, selectors))
    }

    /// `out` is `,` and the JSON document; the entry keeps it with a `\n` added.
    fn with_json(mut out: Vec<u8>, selectors: Selectors) -> Self {
        ENCODES.fetch_add(1, Ordering::Relaxed);
        out.push(b'\n');
        let all = Bytes::from(out);
        let end = all.len() - 1;
        Cached {
            json: Encoding { item: all.slice(..end), doc: all.slice(1..end) },
            json_line: all.slice(1..),
            proto: OnceLock::new(),
            tree: OnceLock::new(),
            labels: selectors.labels,
            fields: selectors.fields,
        }
    }

    /// The object tree, parsed from its JSON (for the views that are not sent as a
    /// cached encoding: Table, metadata, YAML, pretty JSON, and writes' base objects).
    pub fn obj(&self) -> Value {
        kapi_codec::format::parse_json(&self.json.doc).unwrap_or(Value::Null)
    }

    /// The object tree, parsed once and shared by every later caller (see `tree`).
    pub fn shared(&self) -> Arc<Value> {
        self.tree.get_or_init(|| Arc::new(self.obj())).clone()
    }

    /// The object's labels.
    pub fn labels(&self) -> Option<&Map<String, Value>> {
        self.labels.as_ref()
    }

    /// The value of a selectable field (`metadata.name`, `spec.nodeName`, ...); None when
    /// the type does not support it or the object lacks it.
    pub fn field(&self, rt: &ResourceType, field: &str) -> Option<String> {
        let at = rt.selectable_fields().position(|f| f == field)?;
        self.fields.get(at)?.clone()
    }

    /// The compact JSON document of the object.
    pub fn json(&self) -> &Bytes {
        &self.json.doc
    }

    /// The JSON document followed by `\n`: the body of a GET.
    pub fn json_line(&self) -> &Bytes {
        &self.json_line
    }

    /// The JSON document preceded by `,`: a LIST item after the first.
    pub fn json_list_item(&self) -> &Bytes {
        &self.json.item
    }

    fn proto_encoding(&self, rt: &ResourceType) -> Option<&Encoding> {
        self.proto.get_or_init(|| proto_encoding(rt, &self.obj())).as_ref()
    }

    /// The object's protobuf message (no `k8s\0` envelope), if its type has one.
    pub fn proto(&self, rt: &ResourceType) -> Option<&Bytes> {
        self.proto_encoding(rt).map(|e| &e.doc)
    }

    /// The protobuf message preceded by its List items key and length.
    pub fn proto_list_item(&self, rt: &ResourceType) -> Option<&Bytes> {
        self.proto_encoding(rt).map(|e| &e.item)
    }
}

/// What selectors read of an object: its labels and the values of its type's selectable
/// fields (in the order of `ResourceType::selectable_fields`).
#[derive(Debug)]
pub struct Selectors {
    labels: Option<Map<String, Value>>,
    fields: Box<[Option<String>]>,
}

impl Selectors {
    /// Read from `obj`, an object of `rt`.
    pub fn of(rt: &ResourceType, obj: &Value) -> Selectors {
        Selectors {
            labels: kapi_codec::meta::labels(obj).cloned(),
            fields: rt.selectable_fields().map(|f| rt.field_value(obj, f)).collect(),
        }
    }
}

/// Encode `obj`'s message once, prefixed for a List.
fn proto_encoding(rt: &ResourceType, obj: &Value) -> Option<Encoding> {
    ENCODES.fetch_add(1, Ordering::Relaxed);
    let mut msg = Vec::with_capacity(4096);
    kapi_codec::protobuf::encode::encode_message(&rt.schema_name, obj, &mut msg).ok()?;
    let mut out = Vec::with_capacity(msg.len() + 10);
    kapi_codec::protobuf::list_item_prefix(msg.len(), &mut out);
    let at = out.len();
    out.extend_from_slice(&msg);
    Some(Encoding::new(out, at))
}

pub type Cache = WatchCache<Cached>;

/// Events a core's hub queues for its watchers of one resource before it counts as
/// fallen behind (its watchers are closed then and resume or re-list).
const HUB_QUEUE: usize = 16 * 1024;

thread_local! {
    /// This core's fan-out hubs, one per cache with watchers here.
    static HUBS: RefCell<HashMap<usize, Rc<Hub<Cached>>>> = RefCell::new(HashMap::new());
}

/// This core's hub for `cache`, subscribed and running (a new one when the last ended).
pub fn hub(cache: &Arc<Cache>) -> Rc<Hub<Cached>> {
    let key = Arc::as_ptr(cache) as usize;
    HUBS.with(|hubs| {
        let mut hubs = hubs.borrow_mut();
        if let Some(h) = hubs.get(&key).filter(|h| !h.is_closed()) {
            return h.clone();
        }
        let h = Hub::new(cache.clone(), HUB_QUEUE);
        monoio::spawn(h.clone().run());
        hubs.insert(key, h.clone());
        h
    })
}

/// How long a read waits for the cache to reach the revision it needs (upstream: 3 s).
const WAIT_FOR_REVISION: Duration = Duration::from_secs(3);
/// How long a resourceVersion "0" read waits for the cache to catch up (see [`settle`]).
const SETTLE_BOUND: Duration = Duration::from_millis(250);

/// The watch caches: each registry entry holds its own in its cache slot, started on
/// first use (so a custom resource's cache lives and dies with its entry), but for a
/// twin version, which is served from its storage version's cache ([`crate::twin`]):
/// one cache per storage prefix.
pub struct Caches;

impl Caches {
    /// The cache of `rt`, started if needed; None for virtual resources or when the
    /// feeder thread cannot start. A twin version gets its storage version's cache,
    /// whose entries are in that version's encoding (see [`crate::twin`]).
    pub fn get(&self, app: &App, rt: &Arc<ResourceType>) -> Option<Arc<Cache>> {
        if rt.persistence != Persistence::Stored {
            return None;
        }
        if rt.storage_version.is_some()
            && let Some(owner) = crate::twin::cache_owner(app, rt)
        {
            return self.get(app, &owner);
        }
        let slot = rt
            .cache
            .get_or_init(|| start(app, rt).map(|c| c as Arc<dyn std::any::Any + Send + Sync>));
        slot.clone()?.downcast::<Cache>().ok()
    }

    /// The cache of `rt` if it is started (never starts one).
    pub fn get_started(&self, app: &App, rt: &Arc<ResourceType>) -> Option<Arc<Cache>> {
        if rt.storage_version.is_some()
            && let Some(owner) = crate::twin::cache_owner(app, rt)
        {
            return self.get_started(app, &owner);
        }
        rt.cache.get()?.clone()?.downcast::<Cache>().ok()
    }

    /// The caches started so far, with their resource types.
    pub fn started(&self, app: &App) -> Vec<(Arc<ResourceType>, Arc<Cache>)> {
        let reg = app.registry();
        reg.all()
            .iter()
            .filter_map(|t| {
                let c = t.cache.get()?.clone()?.downcast::<Cache>().ok()?;
                Some((t.clone(), c))
            })
            .collect()
    }
}

/// How a cache of `rt` makes its entries from stored key-values (the decode its feeder
/// runs once per revision).
///
/// It holds the type weakly: the entry holds the cache, and a custom type's entry must
/// be able to go (with its cache and feeder) when its CRD does.
///
/// A version a conversion webhook converts to is converted here, on the feeder's (or
/// shard worker's) own thread, which waits for the webhook's answer (30 s at most), as
/// upstream's cacher converts what it decodes. An object that does not convert is
/// logged and skipped, and the cache re-lists a while later (upstream's reflector
/// re-lists after a decode error), so the change is picked up once it converts.
pub fn decode_fn(rt: &Arc<ResourceType>) -> DecodeFn<Cached> {
    converting_decode_fn(rt, None, Relist::default())
}

/// [`decode_fn`] with the transport conversion webhooks are reached through (without
/// one, objects a webhook must convert are skipped) and the cache's [`Relist`].
pub fn converting_decode_fn(
    rt: &Arc<ResourceType>,
    transport: Option<crate::conversion::Transport>,
    relist: Relist,
) -> DecodeFn<Cached> {
    let rt = Arc::downgrade(rt);
    Arc::new(move |kv| {
        let rt = rt.upgrade()?;
        let obj = match kapi_codec::convert::webhook(&rt) {
            None => kapi_codec::stored::decode_object(&rt, &kv.value, kv.mod_revision).ok()?,
            Some(_) => match futures_executor::block_on(decode_converted(&transport, &rt, kv)) {
                Ok(obj) => obj,
                Err(e) => {
                    relist.request();
                    tracing::warn!(
                        "watch cache of {}/{}: {}: {e}",
                        rt.api_version(),
                        rt.plural,
                        kv.key
                    );
                    return None;
                }
            },
        };
        Some(Cached::new(&rt, &obj))
    })
}

async fn decode_converted(
    transport: &Option<crate::conversion::Transport>,
    rt: &ResourceType,
    kv: &kapi_storage::KeyValue,
) -> Result<Value, kapi_codec::CodecError> {
    match transport {
        Some(t) => t.decode(rt, kv).await,
        None => Err(kapi_codec::CodecError::Conversion("no conversion transport".into())),
    }
}

fn start(app: &App, rt: &Arc<ResourceType>) -> Option<Arc<Cache>> {
    let relist = Relist::default();
    let transport = Some(crate::conversion::Transport::of(app));
    let decode = converting_decode_fn(rt, transport, relist.clone());
    let index: Option<IndexFn<Cached>> = is_pods(rt).then(|| {
        let rt = Arc::downgrade(rt);
        let f: IndexFn<Cached> = Arc::new(move |c: &Cached| {
            // Upstream's field value: "" for a pod not scheduled yet, so the scheduler's
            // `spec.nodeName=` watch is reached through the index as a kubelet's is.
            c.field(&*rt.upgrade()?, "spec.nodeName")
        });
        f
    });
    let prefix = rt.storage_prefix(app.prefix(), None);
    let opts = CacheOptions {
        capacity: app.options.watch_cache_size(&rt.plural),
        shards: app.options.watch_cache_shards(&rt.plural),
        ..Default::default()
    };
    let store = app.store.clone();
    let started = match kapi_codec::convert::webhook(rt) {
        // Only a webhook's failures pass; other caches never ask for a re-list.
        Some(_) => WatchCache::start_relisting(store, &prefix, decode, index, opts, relist),
        None => WatchCache::start(store, &prefix, decode, index, opts),
    };
    match started {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("watch cache for {}: {e}; serving from the store", rt.plural);
            None
        }
    }
}

pub fn is_pods(rt: &ResourceType) -> bool {
    rt.role == kapi_codec::registry::Role::Pods
}

/// Wait until `cache` has applied revision `rev`. False on timeout. Wakes when the cache
/// publishes a revision or the store reports progress (no polling); on a quiet prefix
/// only the store's progress report moves the cache, so it is asked for now and then
/// (etcd sends one on request) in case the watch stream was replaced.
pub async fn wait_for(cache: &Cache, rev: Revision) -> bool {
    let deadline = Instant::now() + WAIT_FOR_REVISION;
    let reached = || cache.revision() >= rev && cache.is_loaded();
    while !reached() {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        cache.request_progress();
        let slice = (deadline - now).min(PROGRESS_REQUEST_EVERY);
        let _ = monoio::time::timeout(slice, cache.changed().wait_until(reached)).await;
    }
    true
}

/// How often a waiting read asks the store again for its watch's progress.
const PROGRESS_REQUEST_EVERY: Duration = Duration::from_millis(250);

/// For a read with resourceVersion "0" (any state will do): let the cache catch up, for
/// a short while at most, with what this server already knows the store holds, so a
/// client that just wrote through this server reads its write. The embedded store sends
/// a write's event before it answers the write, so there it is enough to apply what was
/// sent; etcd answers a write before its watch event arrives, so the cache must also
/// reach the newest revision this server has seen (its own writes' included; on a quiet
/// prefix the watch's progress is asked for, a local read pair on etcd). Whatever the
/// cache holds when the bound runs out is served, as upstream would. Wakes when the
/// cache publishes or progresses (no polling).
pub async fn settle(app: &App, cache: &Cache) {
    let mark = cache.sent_mark();
    let known = app.store.current_revision();
    let caught_up = || cache.applied_up_to(mark) && cache.revision() >= known;
    if !caught_up() {
        if cache.revision() < known {
            cache.request_progress();
        }
        let _ = monoio::time::timeout(SETTLE_BOUND, cache.changed().wait_until(caught_up)).await;
    }
}

/// What revision a read with `resourceVersion` `rv` must observe: the store's current
/// one for a consistent read (unset; asked of the store, so writes through other API
/// servers on a shared etcd count), nothing for "0", N for N.
pub async fn required_revision(app: &App, rv: Option<&str>) -> Result<Revision, ApiError> {
    match rv {
        None | Some("") => app
            .store
            .consistent_revision()
            .await
            .map_err(|e| ApiError::from_storage(e, &Default::default())),
        Some("0") => Ok(0),
        Some(v) => parse_revision(v)
            .ok_or_else(|| ApiError::BadRequest(format!("invalid resource version: {v}"))),
    }
}

/// A resourceVersion as upstream's `strconv.ParseUint(rv, 10, 64)` reads it: decimal
/// digits only (leading zeros allowed, no sign: Rust's `u64::from_str` takes `+5`).
pub fn parse_revision(rv: &str) -> Option<Revision> {
    if rv.is_empty() || !rv.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rv.parse().ok()
}

/// Upstream's 504 for a resourceVersion the cache did not reach in time.
pub fn too_large(cache: &Cache, rev: Revision) -> ApiError {
    ApiError::Timeout(format!("Too large resource version: {rev}, current: {}", cache.revision()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (found by the `resource_version` fuzz target): `resourceVersion=+14`
    /// was read as revision 14 (`u64::from_str` takes a sign); upstream's ParseUint
    /// refuses it with 400 "invalid resource version".
    #[test]
    fn resource_versions_are_unsigned_decimal_as_upstream() {
        assert_eq!(parse_revision("14"), Some(14));
        assert_eq!(parse_revision("014"), Some(14));
        for bad in ["+14", "-1", "", " 1", "1 ", "0x10", "18446744073709551616"] {
            assert_eq!(parse_revision(bad), None, "{bad:?}");
        }
    }
}
