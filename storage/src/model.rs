//! A deliberately simple MVCC model the embedded store is checked against in tests:
//! a BTreeMap from key to its full history, one global revision, and the full event list.
//! Obviously correct, slow, and never used outside tests.

use crate::error::StorageError;
use crate::store::{Event, EventKind, KeyValue, Precondition, RangeResult, Revision};
use bytes::Bytes;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Model {
    /// key -> versions (revision, create_revision, value or None for a delete).
    history: BTreeMap<String, Vec<(Revision, Revision, Option<Bytes>)>>,
    pub revision: Revision,
    pub compacted: Revision,
    pub events: Vec<Event>,
}

impl Default for Model {
    fn default() -> Self {
        Self { history: BTreeMap::new(), revision: 1, compacted: 0, events: Vec::new() }
    }
}

impl Model {
    fn at(&self, key: &str, rev: Revision) -> Option<KeyValue> {
        let (r, c, v) = self.history.get(key)?.iter().rev().find(|(r, _, _)| *r <= rev)?;
        Some(KeyValue { key: key.into(), value: v.clone()?, create_revision: *c, mod_revision: *r })
    }

    pub fn get(&self, key: &str) -> Option<KeyValue> {
        self.at(key, self.revision)
    }

    pub fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        rev: Option<Revision>,
    ) -> Result<RangeResult, StorageError> {
        let rev = rev.unwrap_or(self.revision);
        if rev < self.compacted {
            return Err(StorageError::Compacted { requested: rev, compacted: self.compacted });
        }
        if rev > self.revision {
            return Err(StorageError::FutureRevision { requested: rev, current: self.revision });
        }
        let all: Vec<KeyValue> = self
            .history
            .keys()
            .filter(|k| k.starts_with(prefix) && start_after.is_none_or(|s| k.as_str() > s))
            .filter_map(|k| self.at(k, rev))
            .collect();
        let n = if limit == 0 { all.len() } else { limit.min(all.len()) };
        let remaining = (all.len() - n) as u64;
        Ok(RangeResult { items: all[..n].to_vec(), revision: rev, more: remaining > 0, remaining })
    }

    fn check(&self, key: &str, pre: Precondition) -> Result<KeyValue, StorageError> {
        let cur = self.get(key).ok_or_else(|| StorageError::NotFound { key: key.into() })?;
        match pre {
            Precondition::ModRevision(m) if m != cur.mod_revision => Err(StorageError::Conflict {
                key: key.into(),
                expected: m,
                current: cur.mod_revision,
            }),
            _ => Ok(cur),
        }
    }

    pub fn create(&mut self, key: &str, value: Bytes) -> Result<KeyValue, StorageError> {
        if self.get(key).is_some() {
            return Err(StorageError::AlreadyExists { key: key.into() });
        }
        self.revision += 1;
        self.put(key, value, self.revision, None)
    }

    pub fn update(
        &mut self,
        key: &str,
        value: Bytes,
        pre: Precondition,
    ) -> Result<KeyValue, StorageError> {
        let cur = self.check(key, pre)?;
        self.revision += 1;
        self.put(key, value, cur.create_revision, Some(cur))
    }

    fn put(
        &mut self,
        key: &str,
        value: Bytes,
        create: Revision,
        prev: Option<KeyValue>,
    ) -> Result<KeyValue, StorageError> {
        let rev = self.revision;
        self.history.entry(key.into()).or_default().push((rev, create, Some(value.clone())));
        let kv = KeyValue { key: key.into(), value, create_revision: create, mod_revision: rev };
        self.events.push(Event { kind: EventKind::Put, kv: kv.clone(), prev });
        Ok(kv)
    }

    pub fn delete(&mut self, key: &str, pre: Precondition) -> Result<KeyValue, StorageError> {
        let cur = self.check(key, pre)?;
        self.revision += 1;
        let rev = self.revision;
        self.history.entry(key.into()).or_default().push((rev, cur.create_revision, None));
        let kv = KeyValue { mod_revision: rev, ..cur.clone() };
        self.events.push(Event { kind: EventKind::Delete, kv: kv.clone(), prev: Some(cur) });
        Ok(kv)
    }

    pub fn compact(&mut self, rev: Revision) -> Result<(), StorageError> {
        if rev > self.revision {
            return Err(StorageError::FutureRevision { requested: rev, current: self.revision });
        }
        self.compacted = self.compacted.max(rev);
        Ok(())
    }

    /// Events after `from` under `prefix`.
    pub fn events_after(&self, prefix: &str, from: Revision) -> Vec<Event> {
        self.events
            .iter()
            .filter(|e| e.revision() > from && e.kv.key.starts_with(prefix))
            .cloned()
            .collect()
    }
}
