//! The watch hub: the log of events since the compacted revision and the live watchers,
//! in the shared watcher [`Index`] (a watcher of a prefix ending in `/` is found through
//! the `/`-prefixes of an event's key; any other prefix is checked against every event).
//!
//! Invariants: the log is in revision order; registering a watcher replays the log after
//! its start revision and adds it under the same lock the committer publishes under, so a
//! watcher sees every event exactly once, in order. A watcher is closed by the shared
//! [`SlowPolicy`] (more than `limit` undelivered events for longer than the grace period,
//! or twice `limit`): it gets `WatcherTooSlow` as its last message. A watcher whose
//! receiver is gone is dropped.

use crate::error::StorageError;
use crate::store::{Event, Revision, Watch, WatchProgress};
use crate::watchers::{self, CloseReason, Fullness, Index, Offer, SlowPolicy, WatchFilter};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

type Sender = flume::Sender<Result<Event, StorageError>>;

struct Watcher {
    id: u64,
    filter: WatchFilter,
    tx: Sender,
    progress: Arc<WatchProgress>,
    full: Fullness,
}

impl watchers::Watcher for Watcher {
    fn id(&self) -> u64 {
        self.id
    }
    fn filter(&self) -> &WatchFilter {
        &self.filter
    }
}

impl Watcher {
    fn offer(&self, ev: &Event, policy: &SlowPolicy) -> Offer {
        if self.tx.is_disconnected() {
            return Err(CloseReason::Gone);
        }
        policy.admit(self.tx.len(), &self.full)?;
        self.progress.sent.fetch_add(1, Ordering::AcqRel);
        self.tx.send(Ok(ev.clone())).map_err(|_| CloseReason::Gone)
    }

    fn closed(self, reason: CloseReason) {
        if reason == CloseReason::TooSlow {
            let _ = self.tx.send(Err(StorageError::WatcherTooSlow));
        }
    }
}

pub struct Hub {
    log: VecDeque<Event>,
    watchers: Index<Watcher>,
    next_id: u64,
    policy: SlowPolicy,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("log", &self.log.len())
            .field("watchers", &self.watchers.len())
            .finish()
    }
}

impl Hub {
    pub fn new(limit: usize) -> Self {
        Self {
            log: VecDeque::new(),
            watchers: Index::default(),
            next_id: 0,
            policy: SlowPolicy::new(limit),
        }
    }

    /// Register a watcher of `prefix` from `from` (exclusive). `current` is the store's
    /// revision; every event up to it is published (the caller holds the index lock).
    pub fn register(
        &mut self,
        prefix: &str,
        from: Revision,
        compacted: Revision,
        current: Revision,
    ) -> Result<Watch, StorageError> {
        if from < compacted {
            return Err(StorageError::Compacted { requested: from, compacted });
        }
        let (tx, rx) = flume::unbounded();
        let progress = Arc::new(WatchProgress::new(current.max(from)));
        let start = self.log.partition_point(|e| e.revision() <= from);
        for ev in self.log.range(start..).filter(|e| e.kv.key.starts_with(prefix)) {
            progress.sent.fetch_add(1, Ordering::AcqRel);
            let _ = tx.send(Ok(ev.clone()));
        }
        self.next_id += 1;
        let filter = WatchFilter { prefix: prefix.to_string(), exact: false, index: None };
        let full = Fullness::default();
        let w = Watcher { id: self.next_id, filter, tx, progress: progress.clone(), full };
        self.watchers.add(w);
        Ok(Watch { events: rx, progress })
    }

    /// Append events to the log (recovery: no watchers yet).
    pub fn record(&mut self, events: impl IntoIterator<Item = Event>) {
        self.log.extend(events);
    }

    /// Append committed events and deliver them.
    pub fn publish(&mut self, events: Vec<Event>) {
        let policy = self.policy;
        for ev in &events {
            let key = ev.kv.key.as_str();
            let routes = watchers::slash_routes(key);
            self.watchers.deliver(key, &routes, &[], |w| w.offer(ev, &policy), Watcher::closed);
        }
        if let Some(last) = events.last() {
            let rev = last.revision();
            // Watchers whose receiver went away are dropped even without events of theirs.
            self.watchers.sweep(
                |w| {
                    if w.tx.is_disconnected() {
                        return Err(CloseReason::Gone);
                    }
                    w.progress.advance(rev);
                    Ok(())
                },
                Watcher::closed,
            );
        }
        self.log.extend(events);
    }

    /// Forget events at or below `revision`.
    pub fn compact(&mut self, revision: Revision) {
        let n = self.log.partition_point(|e| e.revision() <= revision);
        self.log.drain(..n);
    }

    /// End every watch (their channels close).
    pub fn close(&mut self) {
        drop(self.watchers.drain());
    }

    #[cfg(test)]
    pub fn watcher_count(&self) -> usize {
        self.watchers.len()
    }
}
