//! The watch hub: the log of events since the compacted revision and the live watchers.
//!
//! Invariants: the log is in revision order; registering a watcher replays the log after
//! its start revision and adds it under the same lock the committer publishes under, so a
//! watcher sees every event exactly once, in order. A watcher with more than `limit`
//! undelivered events gets `WatcherTooSlow` as its last message and is dropped; a watcher
//! whose receiver is gone is dropped.

use crate::error::StorageError;
use crate::store::{Event, Revision, Watch};
use std::collections::VecDeque;

type Sender = flume::Sender<Result<Event, StorageError>>;

#[derive(Debug)]
pub struct Hub {
    log: VecDeque<Event>,
    watchers: Vec<(String, Sender)>,
    limit: usize,
}

impl Hub {
    pub fn new(limit: usize) -> Self {
        Self { log: VecDeque::new(), watchers: Vec::new(), limit: limit.max(1) }
    }

    /// Register a watcher of `prefix` from `from` (exclusive).
    pub fn register(
        &mut self,
        prefix: &str,
        from: Revision,
        compacted: Revision,
    ) -> Result<Watch, StorageError> {
        if from < compacted {
            return Err(StorageError::Compacted { requested: from, compacted });
        }
        let (tx, rx) = flume::unbounded();
        let start = self.log.partition_point(|e| e.revision() <= from);
        for ev in self.log.range(start..).filter(|e| e.kv.key.starts_with(prefix)) {
            let _ = tx.send(Ok(ev.clone()));
        }
        self.watchers.push((prefix.to_string(), tx));
        Ok(Watch { events: rx })
    }

    /// Append events to the log (recovery: no watchers yet).
    pub fn record(&mut self, events: impl IntoIterator<Item = Event>) {
        self.log.extend(events);
    }

    /// Append committed events and deliver them.
    pub fn publish(&mut self, events: Vec<Event>) {
        let limit = self.limit;
        for ev in &events {
            self.watchers.retain(|(prefix, tx)| {
                if !ev.kv.key.starts_with(prefix.as_str()) {
                    return !tx.is_disconnected();
                }
                if tx.len() >= limit {
                    let _ = tx.send(Err(StorageError::WatcherTooSlow));
                    return false;
                }
                tx.send(Ok(ev.clone())).is_ok()
            });
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
