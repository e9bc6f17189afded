//! The watch hub: the log of events since the compacted revision and the live watchers.
//!
//! Invariants: the log is in revision order; registering a watcher replays the log after
//! its start revision and adds it under the same lock the committer publishes under, so a
//! watcher sees every event exactly once, in order. A watcher with more than `limit`
//! undelivered events gets `WatcherTooSlow` as its last message and is dropped; a watcher
//! whose receiver is gone is dropped.

use crate::error::StorageError;
use crate::store::{Event, Revision, Watch, WatchProgress};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

type Sender = flume::Sender<Result<Event, StorageError>>;

#[derive(Debug)]
pub struct Hub {
    log: VecDeque<Event>,
    watchers: Vec<(String, Sender, Arc<WatchProgress>)>,
    limit: usize,
}

impl Hub {
    pub fn new(limit: usize) -> Self {
        Self { log: VecDeque::new(), watchers: Vec::new(), limit: limit.max(1) }
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
        self.watchers.push((prefix.to_string(), tx, progress.clone()));
        Ok(Watch { events: rx, progress })
    }

    /// Append events to the log (recovery: no watchers yet).
    pub fn record(&mut self, events: impl IntoIterator<Item = Event>) {
        self.log.extend(events);
    }

    /// Append committed events and deliver them.
    pub fn publish(&mut self, events: Vec<Event>) {
        let limit = self.limit;
        for ev in &events {
            self.watchers.retain(|(prefix, tx, progress)| {
                if !ev.kv.key.starts_with(prefix.as_str()) {
                    return !tx.is_disconnected();
                }
                if tx.len() >= limit {
                    let _ = tx.send(Err(StorageError::WatcherTooSlow));
                    return false;
                }
                progress.sent.fetch_add(1, Ordering::AcqRel);
                tx.send(Ok(ev.clone())).is_ok()
            });
        }
        if let Some(last) = events.last() {
            for (_, _, progress) in &self.watchers {
                progress.advance(last.revision());
            }
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
        self.watchers.clear();
    }

    #[cfg(test)]
    pub fn watcher_count(&self) -> usize {
        self.watchers.len()
    }
}
