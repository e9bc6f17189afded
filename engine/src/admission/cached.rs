//! Plugins' reads: objects from the watch caches (upstream's plugins read listers),
//! never a store read per request. A miss waits, briefly, for the cache to apply what
//! the store already sent it (so a client that just wrote the object through this
//! server finds it), as upstream's plugins fall back to a live lookup.
//!
//! Invariants: every wait is bounded, and only a request's core waits (the server's
//! own writes, from its controller threads or at start, take what the cache holds
//! now, or the store's answer through [`get_or_store`]); a resource without a cache
//! (not served, or not stored) reads as absent; a read builds no key string (the key
//! is written into a per-thread buffer).

use crate::app::App;
use kapi_codec::ResourceType;
use kapi_storage::cache::CacheEntry;
use serde_json::Value;
use std::cell::RefCell;
use std::sync::Arc;
use std::time::Duration;

type Entry = Arc<CacheEntry<crate::cache::Cached>>;

/// A resource the plugins read: group, version, plural.
#[derive(Debug, Clone, Copy)]
pub struct Resource(pub &'static str, pub &'static str, pub &'static str);

pub const SERVICE_ACCOUNTS: Resource = Resource("", "v1", "serviceaccounts");
pub const PRIORITY_CLASSES: Resource = Resource("scheduling.k8s.io", "v1", "priorityclasses");
pub const NODES: Resource = Resource("", "v1", "nodes");
pub const PODS: Resource = Resource("", "v1", "pods");
pub const NAMESPACES: Resource = Resource("", "v1", "namespaces");
pub const STORAGE_CLASSES: Resource = Resource("storage.k8s.io", "v1", "storageclasses");
pub const INGRESS_CLASSES: Resource = Resource("networking.k8s.io", "v1", "ingressclasses");
pub const RUNTIME_CLASSES: Resource = Resource("node.k8s.io", "v1", "runtimeclasses");

/// Whether this is a request's core, where a bounded wait on a cache is allowed (the
/// cache's signals and timers are the core's runtime).
fn may_wait() -> bool {
    crate::server::current::closer().is_some()
}

/// The cache of `r` (started if needed) and its type, once the cache has loaded.
async fn cache_of(app: &App, r: Resource) -> Option<(Arc<crate::cache::Cache>, Arc<ResourceType>)> {
    let rt = app.registry().get(r.0, r.1, r.2)?.clone();
    let cache = app.caches.get(app, &rt)?;
    if !(cache.is_loaded() || may_wait() && crate::cache::wait_for(&cache, 0).await) {
        return None;
    }
    Some((cache, rt))
}

thread_local! {
    /// The storage key of the object being read, built in place (no allocation per read).
    static KEY: RefCell<String> = const { RefCell::new(String::new()) };
}

/// `f` of the key prefix of `rt`'s objects in `ns` (all of them: None), built in the
/// per-thread buffer.
pub fn with_prefix<R>(
    app: &App,
    rt: &ResourceType,
    ns: Option<&str>,
    f: impl FnOnce(&str) -> R,
) -> R {
    KEY.with_borrow_mut(|key| {
        key.clear();
        rt.push_storage_prefix(key, app.prefix(), ns);
        f(key)
    })
}

/// `f` of the storage key of `ns`/`name` of `rt`, built in the per-thread buffer.
pub fn with_key<R>(
    app: &App,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
    f: impl FnOnce(&str) -> R,
) -> R {
    KEY.with_borrow_mut(|key| {
        key.clear();
        rt.push_storage_key(key, app.prefix(), ns, name);
        f(key)
    })
}

/// The cache's entry for `ns`/`name` of `rt` now.
fn entry(
    app: &App,
    cache: &crate::cache::Cache,
    rt: &ResourceType,
    ns: Option<&str>,
    name: &str,
) -> Option<Entry> {
    with_key(app, rt, ns, name, |key| cache.get(key).0)
}

/// The object `ns`/`name` of `r`, if the cache has it (after letting the cache catch up
/// with what the store already sent on a miss), parsed for this caller alone.
pub async fn get(app: &App, r: Resource, ns: Option<&str>, name: &str) -> Option<Value> {
    find(app, r, ns, name, obj).await
}

/// [`get`] for the kinds read on every write (namespaces, ServiceAccounts): the tree is
/// parsed once per revision of the object and kept with its cache entry, so a create
/// costs no parse.
pub async fn get_shared(
    app: &App,
    r: Resource,
    ns: Option<&str>,
    name: &str,
) -> Option<Arc<Value>> {
    find(app, r, ns, name, shared).await
}

async fn find<T>(
    app: &App,
    r: Resource,
    ns: Option<&str>,
    name: &str,
    view: fn(&Entry) -> T,
) -> Option<T> {
    let (cache, rt) = cache_of(app, r).await?;
    if let Some(e) = entry(app, &cache, &rt, ns, name) {
        return Some(view(&e));
    }
    if !may_wait() {
        return None;
    }
    crate::cache::settle(app, &cache).await;
    entry(app, &cache, &rt, ns, name).map(|e| view(&e))
}

/// [`get_shared`], and on a miss the store's answer (upstream's live lookup: an object
/// made through another server sharing the store, or a cache not loaded yet at start).
pub async fn get_or_store(
    app: &App,
    r: Resource,
    ns: Option<&str>,
    name: &str,
) -> Result<Option<Arc<Value>>, kapi_storage::StorageError> {
    if let Some(found) = get_shared(app, r, ns, name).await {
        return Ok(Some(found));
    }
    let Some(rt) = app.registry().get(r.0, r.1, r.2).cloned() else { return Ok(None) };
    let kv = app.store.get(&rt.storage_key(app.prefix(), ns, name)).await?;
    Ok(kv.map(|kv| Arc::new(kapi_codec::stored::decode(&kv.value).unwrap_or(Value::Null))))
}

/// [`get_shared`], waiting up to `bound` for the object to appear (an object a
/// controller is about to create, such as a namespace's `default` ServiceAccount).
pub async fn wait_for(
    app: &App,
    r: Resource,
    ns: Option<&str>,
    name: &str,
    bound: Duration,
) -> Option<Arc<Value>> {
    if let Some(found) = get_shared(app, r, ns, name).await {
        return Some(found);
    }
    let (cache, rt) = cache_of(app, r).await?;
    if !may_wait() {
        return None;
    }
    let present = || entry(app, &cache, &rt, ns, name).is_some();
    let _ = monoio::time::timeout(bound, cache.changed().wait_until(present)).await;
    entry(app, &cache, &rt, ns, name).map(|e| shared(&e))
}

/// The revision `r`'s cache reflects, once loaded (None: not served, or not loaded): a
/// value worked out from the cache's objects holds while this stays the same (the
/// objects read after it are as of it or later, never earlier).
pub async fn revision(app: &App, r: Resource) -> Option<u64> {
    cache_of(app, r).await.map(|(cache, _)| cache.revision())
}

/// The objects of `r` (a cluster-scoped resource with few objects, such as
/// PriorityClasses) whose JSON holds `needle`: only those are parsed.
pub async fn list_holding(app: &App, r: Resource, needle: &[u8]) -> Vec<Value> {
    let Some((cache, rt)) = cache_of(app, r).await else { return Vec::new() };
    let (items, _, _) = with_prefix(app, &rt, None, |p| cache.list(p, None, 0));
    items.iter().filter(|e| holds(e.data.json(), needle)).map(obj).collect()
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn obj(e: &Entry) -> Value {
    e.data.obj()
}

fn shared(e: &Entry) -> Arc<Value> {
    e.data.shared()
}
