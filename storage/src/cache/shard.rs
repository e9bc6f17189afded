//! One shard of a watch cache: the latest entry of each of its keys and a window of its
//! recent events, readable as of any revision the window still covers.
//!
//! Invariants: `applied` is the revision of the last event applied to the shard (or of
//! its initial load); the events in `window` are in increasing revision order (sequence
//! order within one revision), none newer than `applied`; the window holds at most
//! `capacity` events and every event of the shard newer than `window_start` is in it.
//! So the shard reads as of any revision `at` with `window_start <= at <= applied`: the
//! first event after `at` on a key holds (as `prev`) what the key was at `at`. Reading
//! the past costs O(events since `at`) on top of the read itself and needs no copies of
//! the map.

use super::{CacheEntry, CacheEvent};
use crate::store::{EventKind, Revision};
use std::collections::{BTreeMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

pub struct Shard<T> {
    objects: BTreeMap<String, Arc<CacheEntry<T>>>,
    window: VecDeque<Arc<CacheEvent<T>>>,
    capacity: usize,
    /// The revision of the last event applied here (or of the initial load).
    pub applied: Revision,
    /// The shard reads as of, and replays events after, any revision >= this.
    pub window_start: Revision,
}

impl<T> Shard<T> {
    pub fn new(capacity: usize) -> Self {
        Shard {
            objects: BTreeMap::new(),
            window: VecDeque::new(),
            capacity: capacity.max(1),
            applied: 0,
            window_start: 0,
        }
    }

    /// Replace everything with a fresh listing at `revision`; history restarts there.
    pub fn reset(&mut self, items: Vec<Arc<CacheEntry<T>>>, revision: Revision) {
        self.objects = items.into_iter().map(|e| (e.kv.key.clone(), e)).collect();
        self.window.clear();
        self.applied = revision;
        self.window_start = revision;
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Whether the shard can be read as of `at` (a revision the whole cache has applied:
    /// a quiet shard's `applied` may be older, as nothing of it changed since).
    pub fn covers(&self, at: Revision) -> bool {
        at >= self.window_start
    }

    /// Apply one change (already decoded into `entry`) and return its cache event.
    pub fn apply(
        &mut self,
        kind: EventKind,
        entry: Arc<CacheEntry<T>>,
        seq: u64,
    ) -> Arc<CacheEvent<T>> {
        let key = entry.kv.key.clone();
        let revision = entry.kv.mod_revision;
        let prev = match kind {
            EventKind::Put => self.objects.insert(key, entry.clone()),
            EventKind::Delete => self.objects.remove(&key),
        };
        let event = Arc::new(CacheEvent { kind, revision, seq, cur: entry, prev });
        self.applied = revision;
        if self.window.len() == self.capacity
            && let Some(old) = self.window.pop_front()
        {
            self.window_start = old.revision;
        }
        self.window.push_back(event.clone());
        event
    }

    /// Index of the first window event newer than `at`.
    fn first_after(&self, at: Revision) -> usize {
        self.window.partition_point(|e| e.revision <= at)
    }

    /// What `key` held as of `at` (the caller checked `covers(at)`).
    pub fn get_at(&self, key: &str, at: Revision) -> Option<Arc<CacheEntry<T>>> {
        let first = self.first_after(at);
        match self.window.range(first..).find(|e| e.cur.kv.key == key) {
            Some(e) => e.prev.clone(),
            None => self.objects.get(key).cloned(),
        }
    }

    /// Events under `prefix` with `from < revision <= upto`, in order.
    pub fn events_between(
        &self,
        from: Revision,
        upto: Revision,
        prefix: &str,
    ) -> impl Iterator<Item = &Arc<CacheEvent<T>>> + '_ {
        let first = self.first_after(from);
        let end = self.first_after(upto);
        let prefix = prefix.to_string();
        self.window.range(first..end.max(first)).filter(move |e| e.cur.kv.key.starts_with(&prefix))
    }

    /// Whether any entry is under `prefix` as of `at` (the caller checked `covers(at)`).
    pub fn any_at(&self, prefix: &str, at: Revision) -> bool {
        self.range_at(prefix, None, at).next().is_some()
    }

    /// The entries under `prefix` with keys after `after`, in key order, as of `at` (the
    /// caller checked `covers(at)`). Nothing is allocated unless a change after `at`
    /// falls in the range (then its undo map).
    pub fn range_at<'a>(
        &'a self,
        prefix: &'a str,
        after: Option<&str>,
        at: Revision,
    ) -> ShardRange<'a, T> {
        let lower = match after {
            Some(a) if a >= prefix => Bound::Excluded(a),
            _ => Bound::Included(prefix),
        };
        // What changed after `at`: each such key's value as of `at` (None: absent then).
        let mut undo: BTreeMap<&'a str, Option<&'a Arc<CacheEntry<T>>>> = BTreeMap::new();
        for e in self.window.range(self.first_after(at)..) {
            let key = e.cur.kv.key.as_str();
            if key.starts_with(prefix) && in_lower(&lower, key) {
                undo.entry(key).or_insert(e.prev.as_ref());
            }
        }
        let current = self.objects.range::<str, _>((lower, Bound::Unbounded));
        ShardRange { prefix, current: current.peekable(), undo: undo.into_iter().peekable() }
    }
}

fn in_lower(lower: &Bound<&str>, key: &str) -> bool {
    match lower {
        Bound::Included(l) => key >= *l,
        Bound::Excluded(l) => key > *l,
        Bound::Unbounded => true,
    }
}

type Current<'a, T> =
    std::iter::Peekable<std::collections::btree_map::Range<'a, String, Arc<CacheEntry<T>>>>;
type Undo<'a, T> = std::iter::Peekable<
    std::collections::btree_map::IntoIter<&'a str, Option<&'a Arc<CacheEntry<T>>>>,
>;

/// A shard's entries as of a past revision: the current map with the later changes
/// undone, merged in key order.
pub struct ShardRange<'a, T> {
    prefix: &'a str,
    current: Current<'a, T>,
    undo: Undo<'a, T>,
}

impl<'a, T> ShardRange<'a, T> {
    /// The next current key under the prefix.
    fn next_current_key(&mut self) -> Option<&'a str> {
        let (k, _) = self.current.peek()?;
        let k: &'a str = k.as_str();
        k.starts_with(self.prefix).then_some(k)
    }
}

impl<'a, T> Iterator for ShardRange<'a, T> {
    type Item = &'a Arc<CacheEntry<T>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.undo.peek().is_none() {
            // Nothing to undo (the usual case): the current map as it is.
            let (k, e) = self.current.next()?;
            return k.starts_with(self.prefix).then_some(e);
        }
        loop {
            let cur = self.next_current_key();
            let undo_first = match (cur, self.undo.peek().map(|(k, _)| *k)) {
                (None, None) => return None,
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(c), Some(u)) => u <= c,
            };
            if !undo_first {
                return self.current.next().map(|(_, e)| e);
            }
            let (key, was) = self.undo.next()?;
            if cur == Some(key) {
                self.current.next();
            }
            if let Some(e) = was {
                return Some(e);
            }
        }
    }
}
