//! A store that only feeds a watch cache: empty at revision 1, and its one watch carries
//! whatever events the bench pushes. It takes the store's own write path out of cache
//! benchmarks, so they measure the cache (decode, apply, publish, fan-out) alone.

use bytes::Bytes;
use futures_util::future::BoxFuture;
use kapi_storage::{
    Event, EventKind, KeyValue, Precondition, RangeResult, Revision, StorageError, Store, Watch,
    WatchProgress,
};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct FeedStore {
    tx: Mutex<Option<flume::Sender<Result<Event, StorageError>>>>,
    revision: AtomicU64,
}

impl FeedStore {
    pub fn new() -> Arc<FeedStore> {
        Arc::new(FeedStore { tx: Mutex::new(None), revision: AtomicU64::new(1) })
    }

    /// Push a put of `key` at the next revision to the cache's watch; returns the
    /// revision (0 when no cache watches yet).
    pub fn put(&self, key: &str, value: Bytes) -> Revision {
        let revision = self.revision.fetch_add(1, Ordering::AcqRel) + 1;
        let kv = KeyValue {
            key: key.to_string(),
            value,
            create_revision: revision,
            mod_revision: revision,
        };
        let event = Event { kind: EventKind::Put, kv, prev: None };
        match &*self.tx.lock() {
            Some(tx) if tx.send(Ok(event)).is_ok() => revision,
            _ => 0,
        }
    }

    /// Whether a cache has started watching.
    pub fn watched(&self) -> bool {
        self.tx.lock().is_some()
    }
}

fn unsupported<T: Send + 'static>() -> BoxFuture<'static, Result<T, StorageError>> {
    Box::pin(async { Err(StorageError::Closed) })
}

impl Store for FeedStore {
    fn get(&self, _: &str) -> BoxFuture<'static, Result<Option<KeyValue>, StorageError>> {
        Box::pin(async { Ok(None) })
    }

    fn range(
        &self,
        _: &str,
        _: Option<&str>,
        _: usize,
        _: Option<Revision>,
    ) -> BoxFuture<'static, Result<RangeResult, StorageError>> {
        let revision = self.revision.load(Ordering::Acquire);
        Box::pin(async move {
            Ok(RangeResult { items: Vec::new(), revision, more: false, remaining: 0 })
        })
    }

    fn create(&self, _: &str, _: Bytes) -> BoxFuture<'static, Result<KeyValue, StorageError>> {
        unsupported()
    }

    fn update(
        &self,
        _: &str,
        _: Bytes,
        _: Precondition,
    ) -> BoxFuture<'static, Result<KeyValue, StorageError>> {
        unsupported()
    }

    fn delete(
        &self,
        _: &str,
        _: Precondition,
    ) -> BoxFuture<'static, Result<KeyValue, StorageError>> {
        unsupported()
    }

    fn watch(&self, _: &str, from: Revision) -> Result<Watch, StorageError> {
        let (tx, rx) = flume::unbounded();
        *self.tx.lock() = Some(tx);
        Ok(Watch { events: rx, progress: Arc::new(WatchProgress::new(from)) })
    }

    fn current_revision(&self) -> Revision {
        self.revision.load(Ordering::Acquire)
    }

    fn compacted_revision(&self) -> Revision {
        0
    }

    fn compact(&self, _: Revision) -> BoxFuture<'static, Result<(), StorageError>> {
        unsupported()
    }

    fn close(&self) -> BoxFuture<'static, Result<(), StorageError>> {
        *self.tx.lock() = None;
        Box::pin(async { Ok(()) })
    }
}
