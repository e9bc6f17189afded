//! Consistent reads across a cache's shards: every read takes one revision (the cache's
//! published one, or a past one the event windows still cover) and reads each shard as
//! of it, so GET, LIST pages and watch starts see exactly one revision of the resource.
//!
//! Shards are read-locked together for a multi-shard read; a shard whose window no
//! longer covers the revision (its worker ran far ahead, or it re-listed) makes the read
//! retry at the newer published revision, or, for a requested past revision, answer
//! `None` so the caller reads the store instead.

use super::dispatch::Sink;
use super::queue::EventQueue;
use super::shard::{Shard, ShardRange};
use super::{CacheEntry, CacheEvent, CacheWatch, Start, WatchCache, WatchFilter};
use crate::error::StorageError;
use crate::store::Revision;
use parking_lot::RwLockReadGuard;
use std::iter::Peekable;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// One page of a LIST from the cache.
#[derive(Debug)]
pub struct Listing<T> {
    pub items: Vec<Arc<CacheEntry<T>>>,
    /// Whether more matching entries follow the page.
    pub more: bool,
    /// How many matching entries follow (counted only when asked).
    pub remaining: usize,
    /// The revision the page reflects.
    pub revision: Revision,
}

/// A watch's start: initial entries, replayed events, and the revision they reach.
pub type StartPoint<T> = (Vec<Arc<CacheEntry<T>>>, Vec<Arc<CacheEvent<T>>>, Revision);

/// How often a read retries when shards moved past the revision it took.
const RETRIES: usize = 64;

impl<T> WatchCache<T> {
    /// The latest entry of `key` and the cache revision.
    pub fn get(&self, key: &str) -> (Option<Arc<CacheEntry<T>>>, Revision) {
        let shard = &self.shards[self.shard_of(key)];
        for _ in 0..RETRIES {
            let at = self.published.load(Ordering::Acquire);
            let g = shard.read();
            if g.covers(at) {
                let entry = g.get_at(key, at);
                drop(g);
                return (entry, self.effective(at));
            }
            drop(g);
            std::thread::yield_now();
        }
        // The shard keeps moving past every published revision: read its latest state.
        let g = shard.read();
        (g.get_at(key, g.applied), g.applied)
    }

    /// Every entry under `prefix` (in key order) and the revision they reflect.
    pub fn list(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<Arc<CacheEntry<T>>>, bool, Revision) {
        let l = self.list_at(prefix, after, None, limit, false, |_| true).unwrap_or(Listing {
            items: Vec::new(),
            more: false,
            remaining: 0,
            revision: 0,
        });
        (l.items, l.more, l.revision)
    }

    /// Whether any entry is under `prefix` as of the published revision: each shard is
    /// read as of that one revision, nothing listed or allocated (a plugin's "does the
    /// namespace have any", asked on every write).
    pub fn any_under(&self, prefix: &str) -> bool {
        for _ in 0..RETRIES {
            let at = self.published.load(Ordering::Acquire);
            let mut covered = true;
            for shard in self.shards.iter() {
                let g = shard.read();
                if !g.covers(at) {
                    covered = false;
                    break;
                }
                if g.any_at(prefix, at) {
                    return true;
                }
            }
            if covered {
                return false;
            }
            std::thread::yield_now();
        }
        !self.list(prefix, None, 1).0.is_empty()
    }

    /// Entries under `prefix` with keys after `after` that `keep` accepts, at most `limit`
    /// (0 = all), as of `at` (None: the published revision). `count_rest` counts the
    /// matching entries after the page. None when the cache cannot read as of `at` (older
    /// than its windows, or newer than it has published): the store must answer.
    pub fn list_at(
        &self,
        prefix: &str,
        after: Option<&str>,
        at: Option<Revision>,
        limit: usize,
        count_rest: bool,
        keep: impl Fn(&T) -> bool,
    ) -> Option<Listing<T>> {
        for _ in 0..RETRIES {
            let read_at = match at {
                None => self.published.load(Ordering::Acquire),
                Some(r) => self.settle(r)?,
            };
            let guards: Vec<_> = self.shards.iter().map(|s| s.read()).collect();
            if !guards.iter().all(|g| g.covers(read_at)) {
                if at.is_some() {
                    return None;
                }
                drop(guards);
                std::thread::yield_now();
                continue;
            }
            let mut merged = Merge::new(&guards, prefix, after, read_at);
            let mut items = Vec::new();
            let mut more = false;
            let mut remaining = 0;
            for e in merged.by_ref().filter(|e| keep(&e.data)) {
                if limit > 0 && items.len() == limit {
                    more = true;
                    remaining = 1;
                    break;
                }
                items.push(e.clone());
            }
            if more && count_rest {
                remaining += merged.filter(|e| keep(&e.data)).count();
            }
            let revision = at.unwrap_or_else(|| self.effective(read_at));
            return Some(Listing { items, more, remaining, revision });
        }
        None
    }

    /// The revision to read at to see the cache as of `want`: `want` itself once
    /// published; the published revision when the store says nothing under the prefix
    /// changed between it and `want`; None when the cache has not reached `want`.
    fn settle(&self, want: Revision) -> Option<Revision> {
        let published = self.published.load(Ordering::Acquire);
        if want <= published {
            return Some(want);
        }
        // Everything the store sent up to `caught_up` is published: nothing changed in
        // (published, caught_up] once published is read after it.
        let caught_up = self.progress.read().as_ref().and_then(|p| p.caught_up())?;
        let published = self.published.load(Ordering::Acquire);
        (caught_up >= want).then_some(published.min(want))
    }

    /// Start watching. A revision older than the window is `Compacted` (410).
    pub fn watch(
        self: &Arc<Self>,
        start: Start,
        filter: WatchFilter,
    ) -> Result<CacheWatch<T>, StorageError> {
        let (tx, rx) = flume::bounded(self.dispatch.lock().channel_bound());
        loop {
            let mut d = self.dispatch.lock();
            let Some(point) = self.start_locked(start, &filter) else {
                drop(d);
                std::thread::yield_now();
                continue;
            };
            let (initial, replay, revision) = point?;
            let id = d.add(filter, Sink::Channel(tx));
            drop(d);
            let cache = Arc::downgrade(self);
            return Ok(CacheWatch { initial, replay, revision, events: rx, id, cache });
        }
    }

    /// Send every later event of the resource to `queue` (a core's fan-out hub); returns
    /// the subscription's id for [`WatchCache::unsubscribe`].
    pub fn subscribe(&self, queue: Arc<EventQueue<T>>) -> u64 {
        let filter = WatchFilter { prefix: self.prefix.clone(), exact: false, index: None };
        self.dispatch.lock().add(filter, Sink::Queue(queue))
    }

    /// End a subscription (its queue closes).
    pub fn unsubscribe(&self, id: u64) {
        self.dispatch.lock().remove(id);
    }

    /// Where a watch served by a subscribed hub starts: the initial entries (`Now`) or
    /// the replayed events (`After`), and the revision they bring it to. Every later
    /// event reaches the hub's queue after this returns; the hub passes on only those
    /// newer than the revision.
    pub fn start_point(
        &self,
        start: Start,
        filter: &WatchFilter,
    ) -> Result<StartPoint<T>, StorageError> {
        loop {
            let d = self.dispatch.lock();
            if let Some(point) = self.start_locked(start, filter) {
                return point;
            }
            drop(d);
            std::thread::yield_now();
        }
    }

    /// The start of a watch, under the dispatch lock (the sequencer publishes under it,
    /// so the published revision stands still). None when a shard ran past the published
    /// revision beyond its window: retry once the lock is released and the sequencer
    /// caught up.
    fn start_locked(
        &self,
        start: Start,
        filter: &WatchFilter,
    ) -> Option<Result<StartPoint<T>, StorageError>> {
        let at = self.published.load(Ordering::Acquire);
        let guards: Vec<_> = self.shards.iter().map(|s| s.read()).collect();
        if !guards.iter().all(|g| g.covers(at)) {
            return None;
        }
        Some(match start {
            Start::Now => {
                let all = Merge::new(&guards, &filter.prefix, None, at);
                let initial = all.filter(|e| filter.wants_key(&e.kv.key)).cloned().collect();
                Ok((initial, Vec::new(), self.effective(at)))
            }
            Start::After(from) => {
                self.replay(&guards, from, at, filter).map(|replay| (Vec::new(), replay, at))
            }
        })
    }

    /// The window's events after `from` up to `at` that `filter` wants, in order.
    fn replay(
        &self,
        shards: &[RwLockReadGuard<'_, Shard<T>>],
        from: Revision,
        at: Revision,
        filter: &WatchFilter,
    ) -> Result<Vec<Arc<CacheEvent<T>>>, StorageError> {
        let oldest = shards.iter().map(|g| g.window_start).max().unwrap_or(0);
        if from < oldest {
            return Err(StorageError::Compacted { requested: from, compacted: oldest });
        }
        let mut events: Vec<Arc<CacheEvent<T>>> = shards
            .iter()
            .flat_map(|g| g.events_between(from, at, &filter.prefix))
            .filter(|e| filter.wants_key(&e.cur.kv.key))
            .cloned()
            .collect();
        events.sort_by_key(|e| (e.revision, e.seq));
        if let (Some(want), Some(index)) = (&filter.index, &self.index) {
            events.retain(|e| {
                [Some(&e.cur), e.prev.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|x| index(&x.data).as_ref() == Some(want))
            });
        }
        Ok(events)
    }
}

/// The shards' ranges as of one revision, merged in key order.
struct Merge<'a, T> {
    ranges: Vec<Peekable<ShardRange<'a, T>>>,
}

impl<'a, T> Merge<'a, T> {
    fn new(
        shards: &'a [RwLockReadGuard<'_, Shard<T>>],
        prefix: &'a str,
        after: Option<&str>,
        at: Revision,
    ) -> Self {
        let ranges = shards.iter().map(|g| g.range_at(prefix, after, at).peekable()).collect();
        Merge { ranges }
    }
}

impl<'a, T> Iterator for Merge<'a, T> {
    type Item = &'a Arc<CacheEntry<T>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let [only] = self.ranges.as_mut_slice() {
            return only.next();
        }
        let mut best: Option<(usize, &'a str)> = None;
        for (i, r) in self.ranges.iter_mut().enumerate() {
            if let Some(&e) = r.peek() {
                let key: &'a str = e.kv.key.as_str();
                if best.is_none_or(|(_, b)| key < b) {
                    best = Some((i, key));
                }
            }
        }
        let (i, _) = best?;
        self.ranges[i].next()
    }
}
