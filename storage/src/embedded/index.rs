//! The in-memory MVCC index: every key's versions since the compacted revision.
//!
//! Invariants: versions of a key are in ascending revision order; a `None` value is a
//! tombstone (the key was deleted at that revision); `current` is the newest revision
//! applied; nothing at or below `compacted` is readable except the newest version of each
//! key at that point (which stays, as etcd keeps it).

use crate::error::StorageError;
use crate::store::{KeyValue, RangeResult, Revision};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::ops::Bound;

/// One version of a key.
#[derive(Debug, Clone)]
pub struct Version {
    pub revision: Revision,
    pub create_revision: Revision,
    /// None: deleted at `revision`.
    pub value: Option<Bytes>,
}

#[derive(Debug)]
pub struct Index {
    keys: BTreeMap<String, Vec<Version>>,
    pub current: Revision,
    pub compacted: Revision,
}

impl Default for Index {
    fn default() -> Self {
        Self { keys: BTreeMap::new(), current: 1, compacted: 0 }
    }
}

fn to_kv(key: &str, v: &Version) -> Option<KeyValue> {
    Some(KeyValue {
        key: key.to_string(),
        value: v.value.clone()?,
        create_revision: v.create_revision,
        mod_revision: v.revision,
    })
}

/// The version visible at `at` in a key's history.
fn visible(history: &[Version], at: Revision) -> Option<&Version> {
    let idx = history.partition_point(|v| v.revision <= at);
    history[..idx].last()
}

impl Index {
    /// The latest live value of `key`.
    pub fn latest(&self, key: &str) -> Option<KeyValue> {
        self.keys.get(key).and_then(|h| h.last()).and_then(|v| to_kv(key, v))
    }

    /// Check that `at` is readable.
    pub fn check_revision(&self, at: Revision) -> Result<(), StorageError> {
        if at < self.compacted {
            return Err(StorageError::Compacted { requested: at, compacted: self.compacted });
        }
        if at > self.current {
            return Err(StorageError::FutureRevision { requested: at, current: self.current });
        }
        Ok(())
    }

    pub fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        at: Option<Revision>,
    ) -> Result<RangeResult, StorageError> {
        let at = at.unwrap_or(self.current);
        self.check_revision(at)?;
        let lower = match start_after {
            Some(s) if s >= prefix => Bound::Excluded(s.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        let mut items = Vec::new();
        let mut remaining = 0u64;
        for (k, history) in self.keys.range((lower, Bound::Unbounded)) {
            if !k.starts_with(prefix) {
                break;
            }
            let Some(kv) = visible(history, at).and_then(|v| to_kv(k, v)) else { continue };
            if limit == 0 || items.len() < limit {
                items.push(kv);
            } else {
                remaining += 1;
            }
        }
        Ok(RangeResult { items, revision: at, more: remaining > 0, remaining })
    }

    /// Record a put at `revision`; returns the previous live value.
    pub fn put(
        &mut self,
        key: &str,
        value: Bytes,
        revision: Revision,
        create_revision: Revision,
    ) -> Option<KeyValue> {
        let history = self.keys.entry(key.to_string()).or_default();
        let prev = history.last().and_then(|v| to_kv(key, v));
        history.push(Version { revision, create_revision, value: Some(value) });
        self.current = self.current.max(revision);
        prev
    }

    /// Record a delete at `revision`; returns the deleted value.
    pub fn delete(&mut self, key: &str, revision: Revision) -> Option<KeyValue> {
        let history = self.keys.get_mut(key)?;
        let prev = history.last().and_then(|v| to_kv(key, v));
        let create_revision = history.last().map_or(0, |v| v.create_revision);
        history.push(Version { revision, create_revision, value: None });
        self.current = self.current.max(revision);
        prev
    }

    /// Drop history older than `revision`: each key keeps its newest version at or before
    /// `revision` (unless that is a tombstone) and everything after.
    pub fn compact(&mut self, revision: Revision) {
        let revision = revision.min(self.current);
        if revision <= self.compacted {
            return;
        }
        self.keys.retain(|_, history| {
            let idx = history.partition_point(|v| v.revision <= revision);
            let keep_from = idx.saturating_sub(1);
            history.drain(..keep_from);
            if history.first().is_some_and(|v| v.value.is_none() && v.revision <= revision) {
                history.remove(0);
            }
            !history.is_empty()
        });
        self.compacted = revision;
    }

    /// Every live key-value at the current revision (snapshots).
    pub fn live(&self) -> impl Iterator<Item = KeyValue> + '_ {
        self.keys.iter().filter_map(|(k, h)| h.last().and_then(|v| to_kv(k, v)))
    }
}
