//! The watch cache: per resource, the latest object of every key and a window of recent
//! events, kept current by one store watch and serving GET, LIST and WATCH without
//! touching the store.
//!
//! - [`shard`]: one shard's objects and event window, readable as of past revisions.
//! - [`feed`]: the feeder (list, then follow the store watch), the shard workers that
//!   decode and apply events in parallel, and the sequencer that publishes them in order.
//! - [`prepared`]: what writers hand the cache for the values they store, taken instead
//!   of decoding the value again when the write's event comes.
//! - [`read`]: consistent reads across shards (GET, LIST pages, watch starts).
//! - [`dispatch`]: watchers indexed by prefix and index value, bounded queues.
//! - [`queue`], [`hub`]: fan-out across cores: the publisher pushes each event once into
//!   a lock-free queue per core that has watchers of the resource; that core's hub hands
//!   it to its local watchers (indexed the same way) without crossing threads again.
//!
//! Keys are split over shards by hash. Each shard applies its events under its own lock,
//! so shards apply in parallel (decoding, the costly part, included). The cache's
//! `published` revision moves only when every event up to it is applied on every shard
//! and handed to the watchers, in revision order; readers read as of `published`, undoing
//! in each shard whatever was applied beyond it. Every read is therefore a consistent
//! snapshot of one revision, and so are LIST continuations and `Exact` reads of any
//! revision the event window still covers (upstream v1.35 serves those from cache
//! snapshots too).
//!
//! The cache is generic over `T`, what the engine decodes from a stored value once per
//! revision (the object with what selectors need); storage stays Kubernetes-agnostic. If
//! the store watch ends (too slow, compacted), the feeder re-lists and every cache watcher
//! is closed, so clients resume from their last resourceVersion or re-list (410) exactly
//! as with upstream's cacher.

pub mod dispatch;
mod feed;
pub mod hub;
mod prepared;
pub mod queue;
mod read;
pub mod shard;

#[cfg(test)]
mod tests;

use crate::signal::Signal;
use crate::store::{EventKind, KeyValue, Revision, Store, WatchProgress};
use bytes::Bytes;
use dispatch::Dispatch;
pub use dispatch::WatchFilter;
use parking_lot::{Mutex, RwLock};
pub use prepared::MakeFn;
use prepared::Prepared;
pub use read::{Listing, StartPoint};
use shard::Shard;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

/// One key's value at one revision, with what the engine decoded from it.
#[derive(Debug)]
pub struct CacheEntry<T> {
    pub kv: KeyValue,
    pub data: T,
}

/// One change as the cache applied it. For a delete, `cur` is the deleted object (with
/// the delete's revision). `seq` orders the events of one revision.
#[derive(Debug)]
pub struct CacheEvent<T> {
    pub kind: EventKind,
    pub revision: Revision,
    pub seq: u64,
    pub cur: Arc<CacheEntry<T>>,
    pub prev: Option<Arc<CacheEntry<T>>>,
}

/// Decodes a stored value; `None` skips a value that cannot be decoded.
pub type DecodeFn<T> = Arc<dyn Fn(&KeyValue) -> Option<T> + Send + Sync>;
/// A decoder's request that the cache list its prefix again: set when a value could not
/// be decoded for a reason that may pass (a conversion webhook that failed), so the
/// skipped change is picked up once it decodes, as upstream's reflector re-lists after a
/// decode error. The feeder re-lists a while after the request (1 s, doubling up to
/// 30 s while requests keep coming), and only then.
#[derive(Debug, Clone, Default)]
pub struct Relist(Arc<AtomicBool>);

impl Relist {
    /// Ask for a re-list.
    pub fn request(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether a re-list was asked for since the last call.
    fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// The index value of an object (pods: `spec.nodeName`).
pub type IndexFn<T> = Arc<dyn Fn(&T) -> Option<String> + Send + Sync>;

/// Sizes of one cache.
#[derive(Debug, Clone, Copy)]
pub struct CacheOptions {
    /// Events kept (per shard) for watches that resume from a revision and for reads of
    /// past revisions.
    pub capacity: usize,
    /// Events queued per watcher before it is dropped as too slow.
    pub watcher_buffer: usize,
    /// Shards applying events in parallel (1: the feeder applies them itself).
    pub shards: usize,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions { capacity: 1000, watcher_buffer: 1000, shards: 1 }
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
            c.dispatch.lock().remove(self.id);
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
    /// Events applied from a writer's hand-off, without a decode.
    pub handed: AtomicU64,
}

pub struct WatchCache<T> {
    prefix: String,
    shards: Box<[RwLock<Shard<T>>]>,
    /// Every event up to this revision is applied on every shard and dispatched.
    published: AtomicU64,
    /// Watchers; the sequencer publishes under this lock, so a watch that registers under
    /// it sees `published` stand still.
    dispatch: Mutex<Dispatch<T>>,
    /// Progress of the store watch feeding the cache.
    progress: RwLock<Option<Arc<WatchProgress>>>,
    /// Watchers served by the cores' hubs.
    hub_watchers: AtomicUsize,
    /// Counters for /metrics.
    stats: CacheStats,
    loaded: AtomicBool,
    /// Told whenever the revision the cache reflects may have risen (a revision
    /// published, a listing loaded, the store's progress moved), so waits wake then.
    changed: Arc<Signal>,
    index: Option<IndexFn<T>>,
    opts: CacheOptions,
    /// Writers' hand-offs waiting for their events.
    prepared: Prepared<T>,
}

impl<T: Send + Sync + 'static> WatchCache<T> {
    /// Start a cache of `prefix` fed from `store` by its own thread (and, with several
    /// shards, one worker thread per shard and a sequencer).
    pub fn start(
        store: Arc<dyn Store>,
        prefix: &str,
        decode: DecodeFn<T>,
        index: Option<IndexFn<T>>,
        opts: CacheOptions,
    ) -> std::io::Result<Arc<Self>> {
        Self::start_with(store, prefix, decode, index, opts, None)
    }

    /// [`WatchCache::start`] with a [`Relist`] its decoder may set.
    pub fn start_relisting(
        store: Arc<dyn Store>,
        prefix: &str,
        decode: DecodeFn<T>,
        index: Option<IndexFn<T>>,
        opts: CacheOptions,
        relist: Relist,
    ) -> std::io::Result<Arc<Self>> {
        Self::start_with(store, prefix, decode, index, opts, Some(relist))
    }

    fn start_with(
        store: Arc<dyn Store>,
        prefix: &str,
        decode: DecodeFn<T>,
        index: Option<IndexFn<T>>,
        opts: CacheOptions,
        relist: Option<Relist>,
    ) -> std::io::Result<Arc<Self>> {
        let shards = opts.shards.clamp(1, 64);
        let cache = Arc::new(WatchCache {
            prefix: prefix.to_string(),
            shards: (0..shards).map(|_| RwLock::new(Shard::new(opts.capacity))).collect(),
            published: AtomicU64::new(0),
            dispatch: Mutex::new(Dispatch::new(opts.watcher_buffer)),
            progress: RwLock::new(None),
            hub_watchers: AtomicUsize::new(0),
            stats: CacheStats::default(),
            loaded: AtomicBool::new(false),
            changed: Arc::default(),
            index,
            opts,
            prepared: Prepared::new(),
        });
        feed::start(&cache, store, decode, relist)?;
        Ok(cache)
    }
}

impl<T> WatchCache<T> {
    /// The revision the cache reflects (0 before the first listing): every change up to
    /// it is applied, or the store said nothing under the prefix changed since.
    pub fn revision(&self) -> Revision {
        self.effective(self.published.load(Ordering::Acquire))
    }

    /// `at` (a published revision), or further when the store says nothing under the
    /// prefix changed since and nothing it sent is left to apply.
    fn effective(&self, at: Revision) -> Revision {
        let caught_up = self.progress.read().as_ref().and_then(|p| p.caught_up()).unwrap_or(0);
        at.max(caught_up)
    }

    /// Ask the store to report how far the feeding watch has come (a consistent read is
    /// waiting; on a quiet prefix only the store's progress moves the revision).
    pub fn request_progress(&self) {
        if let Some(p) = &*self.progress.read() {
            p.request();
        }
    }

    /// How many events the store has sent the cache so far (a mark for
    /// [`WatchCache::applied_up_to`]; counts restart when the cache re-lists).
    pub fn sent_mark(&self) -> u64 {
        self.progress.read().as_ref().map_or(0, |p| p.sent.load(Ordering::Acquire))
    }

    /// Whether every event sent up to `mark` is applied and published.
    pub fn applied_up_to(&self, mark: u64) -> bool {
        self.progress.read().as_ref().is_none_or(|p| p.applied.load(Ordering::Acquire) >= mark)
    }

    /// Store events sent to the cache and not applied yet (the feed's queue depth).
    pub fn backlog(&self) -> u64 {
        self.progress.read().as_ref().map_or(0, |p| {
            p.sent.load(Ordering::Acquire).saturating_sub(p.applied.load(Ordering::Acquire))
        })
    }

    /// The signal told whenever [`WatchCache::revision`], [`WatchCache::is_loaded`] or
    /// [`WatchCache::applied_up_to`] may have changed: wait on it instead of polling.
    pub fn changed(&self) -> &Signal {
        &self.changed
    }

    /// Whether the cache holds a complete listing: the initial one is in, and no change
    /// was skipped since (a value that did not decode, for now) without a re-list.
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Shards applying events in parallel.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Clients watching: those with their own channel and those served by hubs.
    pub fn watcher_count(&self) -> usize {
        self.dispatch.lock().channels() + self.hub_watchers.load(Ordering::Relaxed)
    }

    /// Clients watching through the cores' hubs (every HTTP watch): one atomic read, no
    /// lock, for the request path (flow control's work estimate of a write).
    pub fn hub_watcher_count(&self) -> usize {
        self.hub_watchers.load(Ordering::Relaxed)
    }

    /// What the cache has done since start.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }

    fn shard_of(&self, key: &str) -> usize {
        shard_index(key, self.shards.len())
    }

    /// Replace everything with a fresh listing at `revision` (the pipeline is drained).
    /// Replace the contents with a listing at `revision`; `complete` when every value
    /// of it decoded (else reads go to the store until a complete re-list).
    fn reset(&self, items: Vec<Arc<CacheEntry<T>>>, revision: Revision, complete: bool) {
        self.stats.initializations.fetch_add(1, Ordering::Relaxed);
        let mut per_shard: Vec<Vec<_>> = (0..self.shards.len()).map(|_| Vec::new()).collect();
        for e in items {
            per_shard[self.shard_of(&e.kv.key)].push(e);
        }
        let mut d = self.dispatch.lock();
        let mut guards: Vec<_> = self.shards.iter().map(|s| s.write()).collect();
        d.clear();
        *self.progress.write() = None;
        for (g, items) in guards.iter_mut().zip(per_shard) {
            g.reset(items, revision);
        }
        self.published.store(revision, Ordering::Release);
        self.loaded.store(complete, Ordering::Release);
        drop(guards);
        drop(d);
        self.changed.notify();
    }

    /// A change could not be applied (its value did not decode, for now): reads go to
    /// the store until the re-list the decoder asked for.
    fn mark_incomplete(&self) {
        self.loaded.store(false, Ordering::Release);
        self.changed.notify();
    }

    fn follow(&self, progress: Arc<WatchProgress>) {
        progress.listen(self.changed.clone());
        *self.progress.write() = Some(progress);
        self.changed.notify();
    }

    /// Hand applied events to their watchers in order and publish `revision`; then count
    /// `consumed` store events as applied (so progress reports never run ahead).
    fn publish(&self, events: &[Arc<CacheEvent<T>>], revision: Revision, consumed: u64) {
        let mut d = self.dispatch.lock();
        for event in events {
            self.deliver(&mut d, event);
        }
        self.published.fetch_max(revision, Ordering::AcqRel);
        drop(d);
        if let Some(p) = &*self.progress.read() {
            p.applied.fetch_add(consumed, Ordering::AcqRel);
        }
        self.changed.notify();
    }

    fn deliver(&self, d: &mut Dispatch<T>, event: &Arc<CacheEvent<T>>) {
        let (prefixes, indexes) = self.routes(event);
        let indexes: Vec<&str> = indexes.iter().map(String::as_str).collect();
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        if !d.is_empty() {
            self.stats.dispatched.fetch_add(1, Ordering::Relaxed);
        }
        d.deliver(event, &prefixes, &indexes);
    }

    /// Where watchers of `event` may be: the key prefixes containing its key (resource,
    /// namespace, the key itself for watches of one name) and its object's index values
    /// now and before.
    pub fn routes<'a>(&'a self, event: &'a CacheEvent<T>) -> (Vec<&'a str>, Vec<String>) {
        let key = event.cur.kv.key.as_str();
        let ns_prefix = namespace_prefix(&self.prefix, key);
        let prefixes =
            [Some(self.prefix.as_str()), ns_prefix, Some(key)].into_iter().flatten().collect();
        let indexes = match &self.index {
            Some(f) => [Some(&event.cur), event.prev.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(|e| f(&e.data))
                .collect(),
            None => Vec::new(),
        };
        (prefixes, indexes)
    }

    /// Events queued per watcher before it is dropped as too slow.
    pub fn watcher_buffer(&self) -> usize {
        self.opts.watcher_buffer
    }

    /// A writer about to store `value` at `key` hands over what it made of the object:
    /// `make` must give, for a key-value with these bytes, what the decoder would give
    /// (see [`prepared`]); the write's event then takes it instead of a decode. Call it
    /// before the write, so the event cannot come first.
    pub fn prepare(&self, key: &str, value: Bytes, make: MakeFn<T>) {
        self.prepared.offer(key, value, make);
    }

    /// Take back what [`WatchCache::prepare`] left for `key` and `value` (the write
    /// failed).
    pub fn withdraw(&self, key: &str, value: &Bytes) {
        self.prepared.withdraw(key, value);
    }
}

/// The shard of `key` among `n`.
pub fn shard_index(key: &str, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    // FNV-1a: stable, cheap, good enough to spread keys.
    let h = key
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    (h % n as u64) as usize
}

/// `/registry/pods/ns/` for `/registry/pods/ns/name` under `/registry/pods/`.
fn namespace_prefix<'k>(prefix: &str, key: &'k str) -> Option<&'k str> {
    let rest = key.strip_prefix(prefix)?;
    let slash = rest.find('/')?;
    Some(&key[..prefix.len() + slash + 1])
}
