//! The watch cache: per resource, the latest object of every key and a window of recent
//! events, kept current by one store watch and serving GET, LIST and WATCH without
//! touching the store.
//!
//! - [`state`]: objects and the event window.
//! - [`dispatch`]: watchers indexed by prefix and index value, bounded queues.
//!
//! The cache is generic over `T`, what the engine decodes from a stored value once per
//! revision (the object with what selectors need); storage stays Kubernetes-agnostic.
//! A feeder thread lists the prefix, then applies the store's events in revision order;
//! if the store watch ends (too slow, compacted), it re-lists and every cache watcher is
//! closed, so clients resume from their last resourceVersion or re-list (410) exactly as
//! with upstream's cacher.

pub mod dispatch;
pub mod state;

#[cfg(test)]
mod tests;

use crate::error::StorageError;
use crate::store::{Event, EventKind, KeyValue, Revision, Store, Watch, WatchProgress};
use dispatch::Dispatch;
pub use dispatch::WatchFilter;
use parking_lot::RwLock;
use state::State;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// One key's value at one revision, with what the engine decoded from it.
#[derive(Debug)]
pub struct CacheEntry<T> {
    pub kv: KeyValue,
    pub data: T,
}

/// One change as the cache applied it. For a delete, `cur` is the deleted object (with
/// the delete's revision).
#[derive(Debug)]
pub struct CacheEvent<T> {
    pub kind: EventKind,
    pub revision: Revision,
    pub cur: Arc<CacheEntry<T>>,
    pub prev: Option<Arc<CacheEntry<T>>>,
}

/// Decodes a stored value; `None` skips a value that cannot be decoded.
pub type DecodeFn<T> = Arc<dyn Fn(&KeyValue) -> Option<T> + Send + Sync>;
/// The index value of an object (pods: `spec.nodeName`).
pub type IndexFn<T> = Arc<dyn Fn(&T) -> Option<String> + Send + Sync>;

/// Sizes of one cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheOptions {
    /// Events kept for watches that resume from a revision.
    pub capacity: usize,
    /// Events queued per watcher before it is dropped as too slow.
    pub watcher_buffer: usize,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions { capacity: 1000, watcher_buffer: 1000 }
    }
}

struct Inner<T> {
    state: State<T>,
    dispatch: Dispatch<T>,
    /// Progress of the store watch feeding the cache.
    progress: Option<Arc<WatchProgress>>,
}

impl<T> Inner<T> {
    /// The revision the cache reflects: its last event, or further when the store says
    /// nothing under the prefix changed since and the backlog is applied.
    fn effective_revision(&self) -> Revision {
        let caught_up = self.progress.as_ref().and_then(|p| p.caught_up()).unwrap_or(0);
        self.state.revision.max(caught_up)
    }
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The current contents as initial entries, then every later event.
    Now,
    /// Every event after this revision.
    After(Revision),
}

/// A watch on the cache. Dropping it deregisters the watcher.
pub struct CacheWatch<T> {
    /// The cache contents at `revision` (for `Start::Now`).
    pub initial: Vec<Arc<CacheEntry<T>>>,
    /// Events from the window after the requested revision (for `Start::After`).
    pub replay: Vec<Arc<CacheEvent<T>>>,
    /// The revision `initial`/`replay` bring the watcher to.
    pub revision: Revision,
    /// Live events; the channel closes when the watcher is dropped as too slow or the
    /// cache re-lists.
    pub events: flume::Receiver<Arc<CacheEvent<T>>>,
    id: u64,
    cache: Weak<WatchCache<T>>,
}

impl<T> Drop for CacheWatch<T> {
    fn drop(&mut self) {
        if let Some(c) = self.cache.upgrade() {
            c.inner.write().dispatch.remove(self.id);
        }
    }
}

/// What a cache has done since start (upstream's watch cache metrics).
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Store events applied (`apiserver_watch_cache_events_received_total`).
    pub received: AtomicU64,
    /// Events handed to at least one watcher (`..._events_dispatched_total`).
    pub dispatched: AtomicU64,
    /// Listings that (re)initialized the cache (`..._initializations_total`).
    pub initializations: AtomicU64,
}

pub struct WatchCache<T> {
    prefix: String,
    inner: RwLock<Inner<T>>,
    revision: AtomicU64,
    /// Counters for /metrics, written by the feeder thread only.
    stats: CacheStats,
    loaded: AtomicBool,
    index: Option<IndexFn<T>>,
    opts: CacheOptions,
}

impl<T: Send + Sync + 'static> WatchCache<T> {
    /// Start a cache of `prefix` fed from `store` by its own thread.
    pub fn start(
        store: Arc<dyn Store>,
        prefix: &str,
        decode: DecodeFn<T>,
        index: Option<IndexFn<T>>,
        opts: CacheOptions,
    ) -> std::io::Result<Arc<Self>> {
        let cache = Arc::new(WatchCache {
            prefix: prefix.to_string(),
            inner: RwLock::new(Inner {
                state: State::new(opts.capacity),
                dispatch: Dispatch::default(),
                progress: None,
            }),
            revision: AtomicU64::new(0),
            stats: CacheStats::default(),
            loaded: AtomicBool::new(false),
            index,
            opts,
        });
        let weak = Arc::downgrade(&cache);
        let name = format!("kapi-cache{}", prefix.trim_end_matches('/').replace('/', "-"));
        std::thread::Builder::new().name(name).spawn(move || feed(weak, store, decode))?;
        Ok(cache)
    }

    /// The revision the cache reflects (0 before the first listing): every change up to
    /// it is applied.
    pub fn revision(&self) -> Revision {
        let applied = self.revision.load(Ordering::Acquire);
        let g = self.inner.read();
        applied.max(g.effective_revision())
    }

    /// Ask the store to report how far the feeding watch has come (a consistent read is
    /// waiting; on a quiet prefix only the store's progress moves the revision).
    pub fn request_progress(&self) {
        if let Some(p) = &self.inner.read().progress {
            p.request();
        }
    }

    /// Store events sent to the cache and not applied yet (the feed's queue depth).
    pub fn backlog(&self) -> u64 {
        let g = self.inner.read();
        g.progress.as_ref().map_or(0, |p| {
            p.sent.load(Ordering::Acquire).saturating_sub(p.applied.load(Ordering::Acquire))
        })
    }

    /// Whether the initial listing is in.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        self.inner.read().state.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn watcher_count(&self) -> usize {
        self.inner.read().dispatch.len()
    }

    /// The latest entry of `key` and the cache revision.
    pub fn get(&self, key: &str) -> (Option<Arc<CacheEntry<T>>>, Revision) {
        let g = self.inner.read();
        (g.state.objects.get(key).cloned(), g.effective_revision())
    }

    /// Entries under `prefix` after `after`, at most `limit` (0 = all): (items, more,
    /// revision).
    pub fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<Arc<CacheEntry<T>>>, bool, Revision) {
        let g = self.inner.read();
        let (items, more) = g.state.range(prefix, after, limit);
        (items, more, g.effective_revision())
    }

    /// Start watching. A revision older than the window is `Compacted` (410).
    pub fn watch(
        self: &Arc<Self>,
        start: Start,
        filter: WatchFilter,
    ) -> Result<CacheWatch<T>, StorageError> {
        let (tx, rx) = flume::bounded(self.opts.watcher_buffer);
        let mut g = self.inner.write();
        let revision = g.effective_revision();
        let (initial, replay) = match start {
            Start::Now => (g.state.range(&filter.prefix, None, 0).0, Vec::new()),
            Start::After(from) => {
                let mut replay =
                    g.state.since(from, &filter.prefix).ok_or(StorageError::Compacted {
                        requested: from,
                        compacted: g.state.window_start,
                    })?;
                if let (Some(want), Some(index)) = (&filter.index, &self.index) {
                    replay.retain(|e| {
                        [Some(&e.cur), e.prev.as_ref()]
                            .into_iter()
                            .flatten()
                            .any(|x| index(&x.data).as_ref() == Some(want))
                    });
                }
                (Vec::new(), replay)
            }
        };
        let id = g.dispatch.add(filter, tx);
        drop(g);
        Ok(CacheWatch { initial, replay, revision, events: rx, id, cache: Arc::downgrade(self) })
    }

    /// What the cache has done since start.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    fn reset(&self, items: Vec<Arc<CacheEntry<T>>>, revision: Revision) {
        self.stats.initializations.fetch_add(1, Ordering::Relaxed);
        let mut g = self.inner.write();
        g.dispatch.clear();
        g.progress = None;
        g.state.reset(items, revision);
        self.revision.store(revision, Ordering::Release);
        self.loaded.store(true, Ordering::Release);
    }

    fn follow(&self, progress: Arc<WatchProgress>) {
        self.inner.write().progress = Some(progress);
    }

    /// Apply the events of one revision under one lock, so no reader sees part of it.
    fn apply(&self, group: Vec<(Event, Option<T>)>) {
        let mut g = self.inner.write();
        for (ev, data) in group {
            if let Some(p) = &g.progress {
                p.applied.fetch_add(1, Ordering::AcqRel);
            }
            self.apply_one(&mut g, ev.kind, &ev.kv, data);
        }
    }

    fn apply_one(&self, g: &mut Inner<T>, kind: EventKind, kv: &KeyValue, data: Option<T>) {
        let Some(data) = data else {
            // Undecodable value: the revision still advances.
            g.state.revision = kv.mod_revision;
            self.revision.store(kv.mod_revision, Ordering::Release);
            return;
        };
        let entry = Arc::new(CacheEntry { kv: kv.clone(), data });
        let event = g.state.apply(kind, kv, entry);
        let ns_prefix = namespace_prefix(&self.prefix, &kv.key);
        let prefixes: Vec<&str> =
            [Some(self.prefix.as_str()), ns_prefix].into_iter().flatten().collect();
        let indexes: Vec<String> = match &self.index {
            Some(f) => [Some(&event.cur), event.prev.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|e| f(&e.data))
                .collect(),
            None => Vec::new(),
        };
        let indexes: Vec<&str> = indexes.iter().map(String::as_str).collect();
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        if !g.dispatch.is_empty() {
            self.stats.dispatched.fetch_add(1, Ordering::Relaxed);
        }
        g.dispatch.deliver(&event, &prefixes, &indexes);
        self.revision.store(kv.mod_revision, Ordering::Release);
    }
}

/// `/registry/pods/ns/` for `/registry/pods/ns/name` under `/registry/pods/`.
fn namespace_prefix<'k>(prefix: &str, key: &'k str) -> Option<&'k str> {
    let rest = key.strip_prefix(prefix)?;
    let slash = rest.find('/')?;
    Some(&key[..prefix.len() + slash + 1])
}

/// The feeder: list, then apply the watch; re-list whenever the watch ends; stop when
/// the store is closed or the cache is gone.
fn feed<T: Send + Sync + 'static>(
    cache: Weak<WatchCache<T>>,
    store: Arc<dyn Store>,
    decode: DecodeFn<T>,
) {
    loop {
        let Some(prefix) = cache.upgrade().map(|c| c.prefix.clone()) else { return };
        let page = match futures_executor::block_on(store.range(&prefix, None, 0, None)) {
            Ok(p) => p,
            Err(StorageError::Closed) => return,
            Err(e) => {
                tracing::warn!("watch cache {prefix}: listing failed: {e}");
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        let items = page
            .items
            .iter()
            .filter_map(|kv| decode(kv).map(|data| Arc::new(CacheEntry { kv: kv.clone(), data })))
            .collect();
        let Some(c) = cache.upgrade() else { return };
        c.reset(items, page.revision);
        drop(c);
        let watch = match store.watch(&prefix, page.revision) {
            Ok(w) => w,
            Err(StorageError::Closed) => return,
            Err(e) => {
                tracing::warn!("watch cache {prefix}: watch failed: {e}");
                continue;
            }
        };
        match cache.upgrade() {
            Some(c) => c.follow(watch.progress.clone()),
            None => return,
        }
        let mut reader = GroupReader { watch: &watch, pending: None, ended: false };
        while let Some(group) = reader.next_group() {
            let decoded = group.into_iter().map(|ev| {
                let data = decode(&ev.kv);
                (ev, data)
            });
            let Some(c) = cache.upgrade() else { return };
            c.apply(decoded.collect());
        }
        tracing::debug!("watch cache {prefix}: store watch ended; re-listing");
    }
}

/// Reads a store watch one revision at a time. Where one revision can carry several
/// events, the store counts all of them in `sent` before sending the first, so while
/// fewer than `sent` are taken, the rest of the revision is on its way and waiting for
/// it is safe.
struct GroupReader<'w> {
    watch: &'w Watch,
    pending: Option<Event>,
    ended: bool,
}

impl GroupReader<'_> {
    fn next_group(&mut self) -> Option<Vec<Event>> {
        let first = match self.pending.take() {
            Some(ev) => ev,
            None => self.recv()?,
        };
        let mut group = vec![first];
        let progress = &self.watch.progress;
        while progress.shared_revisions && self.more_announced(group.len()) {
            let Some(next) = self.recv() else { break };
            if next.revision() != group[0].revision() {
                self.pending = Some(next);
                break;
            }
            group.push(next);
        }
        Some(group)
    }

    /// Whether the store announced more events than applied plus `taken`.
    fn more_announced(&self, taken: usize) -> bool {
        let p = &self.watch.progress;
        let applied = p.applied.load(Ordering::Acquire) + taken as u64;
        applied < p.sent.load(Ordering::Acquire)
    }

    fn recv(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        match self.watch.events.recv() {
            Ok(Ok(ev)) => Some(ev),
            _ => {
                self.ended = true;
                None
            }
        }
    }
}
