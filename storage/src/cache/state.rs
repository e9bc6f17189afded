//! The cache's data: the latest entry of every key and a bounded window of recent events.
//!
//! Invariants: `revision` is the revision of the last applied event (or of the initial
//! load); every event in `window` has a revision <= `revision`, in increasing order; the
//! window holds at most `capacity` events, and `window_start` is the revision from which
//! a watch can resume (a watch from `r` needs every event with revision > `r`).

use super::{CacheEntry, CacheEvent};
use crate::store::{EventKind, KeyValue, Revision};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

pub struct State<T> {
    pub objects: BTreeMap<String, Arc<CacheEntry<T>>>,
    pub window: VecDeque<Arc<CacheEvent<T>>>,
    pub capacity: usize,
    pub revision: Revision,
    /// A watch from any revision >= this can be served from the window.
    pub window_start: Revision,
}

impl<T> State<T> {
    pub fn new(capacity: usize) -> Self {
        State {
            objects: BTreeMap::new(),
            window: VecDeque::new(),
            capacity: capacity.max(1),
            revision: 0,
            window_start: 0,
        }
    }

    /// Replace everything with a fresh listing at `revision`; history restarts there.
    pub fn reset(&mut self, items: Vec<Arc<CacheEntry<T>>>, revision: Revision) {
        self.objects = items.into_iter().map(|e| (e.kv.key.clone(), e)).collect();
        self.window.clear();
        self.revision = revision;
        self.window_start = revision;
    }

    /// Apply one store event (already decoded into `entry`) and return the cache event.
    pub fn apply(
        &mut self,
        kind: EventKind,
        kv: &KeyValue,
        entry: Arc<CacheEntry<T>>,
    ) -> Arc<CacheEvent<T>> {
        let prev = match kind {
            EventKind::Put => self.objects.insert(kv.key.clone(), entry.clone()),
            EventKind::Delete => self.objects.remove(&kv.key),
        };
        let event = Arc::new(CacheEvent { kind, revision: kv.mod_revision, cur: entry, prev });
        self.revision = kv.mod_revision;
        if self.window.len() == self.capacity
            && let Some(old) = self.window.pop_front()
        {
            self.window_start = old.revision;
        }
        self.window.push_back(event.clone());
        event
    }

    /// Events with revision > `from` under `prefix`, or None when `from` is older than
    /// the window.
    pub fn since(&self, from: Revision, prefix: &str) -> Option<Vec<Arc<CacheEvent<T>>>> {
        if from < self.window_start {
            return None;
        }
        let first = self.window.partition_point(|e| e.revision <= from);
        let events = self.window.range(first..).filter(|e| e.cur.kv.key.starts_with(prefix));
        Some(events.cloned().collect())
    }

    /// Every entry under `prefix` with key > `after`, in key order, at most `limit`
    /// (0 = all). The bool says whether more follow.
    pub fn range(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> (Vec<Arc<CacheEntry<T>>>, bool) {
        use std::ops::Bound;
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        let mut out = Vec::new();
        let mut iter = self
            .objects
            .range((start, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix));
        for (_, e) in iter.by_ref() {
            if limit > 0 && out.len() == limit {
                return (out, true);
            }
            out.push(e.clone());
        }
        (out, false)
    }
}
