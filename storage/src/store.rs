//! The storage seam: everything the engine needs from a backend.
//!
//! Semantics follow etcd v3, because that is what Kubernetes is built on:
//! - one global revision, bumped by every successful write; the first write of an empty
//!   store gets revision 2 (revision 1 is the empty store), so no object ever has
//!   resourceVersion "0" or "1";
//! - `create_revision`/`mod_revision` per key; a deleted-and-recreated key starts anew;
//! - `watch(prefix, from)` delivers every event with revision > `from` under `prefix`, in
//!   revision order, exactly once, then live events; if `from` is older than the
//!   compacted revision the watch fails with `StorageError::Compacted`.

use crate::error::StorageError;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::task::AtomicWaker;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A store revision (Kubernetes resourceVersion).
pub type Revision = u64;

/// One key at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Bytes,
    pub create_revision: Revision,
    pub mod_revision: Revision,
}

/// Put or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change. For `Put`, `kv` is the new value and `prev` the value it replaced (None on
/// create). For `Delete`, `kv.value` is the deleted value, `kv.mod_revision` the revision
/// of the delete, and `prev` the deleted key-value as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    pub prev: Option<KeyValue>,
}

impl Event {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A page of a range read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeResult {
    /// Keys in ascending order.
    pub items: Vec<KeyValue>,
    /// The revision the read was served at.
    pub revision: Revision,
    /// Whether keys beyond this page exist under the prefix at that revision.
    pub more: bool,
    /// Keys under the prefix after this page (for `remainingItemCount`).
    pub remaining: u64,
}

/// Condition of a write on the key's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// No condition beyond the operation's own (update/delete need the key to exist).
    None,
    /// The key's current `mod_revision` must equal this.
    ModRevision(Revision),
}

/// A live watch. Dropping it cancels the watch.
#[derive(Debug)]
pub struct Watch {
    /// Events in revision order. A final `Err` says why the watch ended
    /// (`WatcherTooSlow`, `Compacted`, `Closed`); a closed channel means the store
    /// closed it.
    pub events: flume::Receiver<Result<Event, StorageError>>,
    /// How far the store has brought this watch (etcd's progress notifications).
    pub progress: Arc<WatchProgress>,
}

/// Progress of one watch. The store counts in `sent` every event it puts in the channel
/// and then raises `revision`: every event under the prefix with a revision at or below
/// it has been sent. The consumer counts in `applied` what it has processed, so
/// `caught_up` tells a consumer with an empty backlog that it has seen the store up to
/// `revision` even when nothing under its prefix changed.
///
/// A backend whose one revision can carry several events (etcd: a multi-op Txn) sets
/// `shared_revisions`: a consumer that applied one event of revision R only knows it has
/// seen everything up to R - 1 until the store's progress says more. A consumer that
/// needs the store to report progress now (a consistent read waiting on a quiet prefix)
/// calls [`WatchProgress::request`]; backends that report progress continuously ignore it.
#[derive(Debug, Default)]
pub struct WatchProgress {
    pub revision: AtomicU64,
    pub sent: AtomicU64,
    pub applied: AtomicU64,
    pub shared_revisions: bool,
    wanted: AtomicBool,
    waker: AtomicWaker,
    /// Told when `revision` rises (the consumer's waits for a revision wake on it).
    listener: std::sync::OnceLock<Arc<crate::signal::Signal>>,
}

impl WatchProgress {
    pub fn new(revision: Revision) -> Self {
        WatchProgress { revision: AtomicU64::new(revision), ..Default::default() }
    }

    /// Progress of a backend whose revisions can carry several events.
    pub fn with_shared_revisions(revision: Revision) -> Self {
        WatchProgress { shared_revisions: true, ..Self::new(revision) }
    }

    /// The store saw everything under the watched prefix up to `revision`.
    pub fn advance(&self, revision: Revision) {
        if self.revision.fetch_max(revision, Ordering::AcqRel) < revision
            && let Some(l) = self.listener.get()
        {
            l.notify();
        }
    }

    /// Tell `signal` whenever the revision rises (set once, by the consumer).
    pub fn listen(&self, signal: Arc<crate::signal::Signal>) {
        let _ = self.listener.set(signal);
    }

    /// Ask the store to report this watch's progress soon.
    pub fn request(&self) {
        self.wanted.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Resolves once [`WatchProgress::request`] was called (and clears the request).
    pub fn requested(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.wanted.swap(false, Ordering::AcqRel) {
                return std::task::Poll::Ready(());
            }
            self.waker.register(cx.waker());
            if self.wanted.swap(false, Ordering::AcqRel) {
                return std::task::Poll::Ready(());
            }
            std::task::Poll::Pending
        })
    }

    /// The revision a consumer that just applied an event of `revision` has fully seen.
    pub fn settled(&self, revision: Revision) -> Revision {
        if self.shared_revisions { revision.saturating_sub(1) } else { revision }
    }

    /// The revision the consumer has fully observed, when it processed all it was sent.
    pub fn caught_up(&self) -> Option<Revision> {
        let revision = self.revision.load(Ordering::Acquire);
        let sent = self.sent.load(Ordering::Acquire);
        (self.applied.load(Ordering::Acquire) >= sent).then_some(revision)
    }
}

/// A storage backend. Cheap to share (`Arc<dyn Store>`); every method may be called
/// from any thread and returned futures run on any executor.
pub trait Store: Send + Sync + 'static {
    /// The latest value of `key`.
    fn get(&self, key: &str) -> BoxFuture<'static, Result<Option<KeyValue>, StorageError>>;

    /// Keys under `prefix` in ascending order, strictly after `start_after` when given, at
    /// most `limit` (0 = no limit), as of `revision` (None = current). A compacted
    /// revision is `Compacted`; a future one `FutureRevision`.
    fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> BoxFuture<'static, Result<RangeResult, StorageError>>;

    /// Create `key`; `AlreadyExists` when it exists. Resolves once durable.
    fn create(&self, key: &str, value: Bytes)
    -> BoxFuture<'static, Result<KeyValue, StorageError>>;

    /// Replace the value of an existing key; `NotFound` or `Conflict`. Resolves once durable.
    fn update(
        &self,
        key: &str,
        value: Bytes,
        precondition: Precondition,
    ) -> BoxFuture<'static, Result<KeyValue, StorageError>>;

    /// Delete an existing key, returning what was deleted (with the delete's revision as
    /// `mod_revision`); `NotFound` or `Conflict`. Resolves once durable.
    fn delete(
        &self,
        key: &str,
        precondition: Precondition,
    ) -> BoxFuture<'static, Result<KeyValue, StorageError>>;

    /// Watch `prefix` from revision `from` (exclusive). `from` = 0 means "from now".
    fn watch(&self, prefix: &str, from: Revision) -> Result<Watch, StorageError>;

    /// The current (latest committed) revision.
    fn current_revision(&self) -> Revision;

    /// The oldest revision still readable (everything at or below is compacted).
    fn compacted_revision(&self) -> Revision;

    /// Discard history older than `revision`; keeps the latest value of every live key.
    fn compact(&self, revision: Revision) -> BoxFuture<'static, Result<(), StorageError>>;

    /// The revision a consistent read must observe: the latest revision of the whole
    /// store, asked of the backend (etcd: a quorum read), so that writes made through
    /// other API servers on the same store count.
    fn consistent_revision(&self) -> BoxFuture<'static, Result<Revision, StorageError>> {
        let revision = self.current_revision();
        Box::pin(async move { Ok(revision) })
    }

    /// Whether the backend answers (`/readyz/etcd`); the embedded store always does.
    fn check_health(&self) -> BoxFuture<'static, Result<(), StorageError>> {
        Box::pin(async { Ok(()) })
    }

    /// Whether writes can succeed (`/readyz`): the embedded store fails this after a
    /// failed append (disk full, EIO) until the disk takes writes again.
    fn check_writable(&self) -> BoxFuture<'static, Result<(), StorageError>> {
        Box::pin(async { Ok(()) })
    }

    /// Flush and stop: pending writes complete, watches end, later calls get `Closed`.
    fn close(&self) -> BoxFuture<'static, Result<(), StorageError>>;
}
