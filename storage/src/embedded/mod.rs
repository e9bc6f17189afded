//! The embedded MVCC store: the default backend, zero configuration.
//!
//! - [`index`]: in-memory MVCC index (every key's versions since compaction);
//! - [`wal`]: checksummed write-ahead log segments;
//! - [`committer`]: the group-commit thread (many writes, one fsync; acknowledged only
//!   once durable, visible only once acknowledged-able);
//! - [`snapshot`]: atomic snapshots that bound recovery time and WAL size;
//! - [`watch`]: the event log and the watchers;
//! - [`writer`]: the WAL segment being appended to, and the repair of a failed append;
//! - [`fs`]: the file-operation seam ([`fault`]: the fault-injecting one for tests).
//!
//! Reads are served from the index under a read lock and never wait for the disk. A
//! failed append (disk full, EIO) is cut off the WAL before anything else is written
//! ([`writer`]); writes fail with its error (`NoSpace` when the disk is full) and
//! [`Store::check_writable`] fails until an append or a disk probe succeeds again. All
//! file operations go through [`fs::Fs`] so tests can inject faults ([`fault`]).
//! Recovery = newest complete snapshot + replay of later WAL records (a torn tail of the
//! newest segment is cut). Each open starts a fresh WAL segment.

mod committer;
pub mod fault;
pub mod fs;
mod index;
mod snapshot;
pub mod wal;
mod watch;
mod writer;

use crate::error::StorageError;
use crate::store::{KeyValue, Precondition, RangeResult, Revision, Store, Watch};
use bytes::Bytes;
use committer::{Committer, Msg, Op};
use futures_channel::oneshot;
use futures_util::future::BoxFuture;
use parking_lot::{Mutex, RwLock};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Largest key and value the store accepts.
pub const MAX_KEY_BYTES: usize = 8 << 10;
pub const MAX_VALUE_BYTES: usize = 16 << 20;

/// Tuning of the embedded store.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// fsync the WAL before acknowledging (turn off only for tests and benchmarks).
    pub fsync: bool,
    /// Take a snapshot (and start a new WAL segment) when the segment exceeds this.
    pub snapshot_after_bytes: u64,
    /// Undelivered events a watcher may have before it is closed as too slow.
    pub watch_buffer: usize,
    /// The files underneath (the real ones; tests inject faults).
    pub fs: Arc<dyn fs::Fs>,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            fsync: true,
            snapshot_after_bytes: 64 << 20,
            watch_buffer: 10_000,
            fs: Arc::new(fs::RealFs),
        }
    }
}

/// State shared by readers and the committer.
#[derive(Debug)]
pub(crate) struct Shared {
    index: RwLock<index::Index>,
    hub: Mutex<watch::Hub>,
    /// Committed batches (each one fsync), for tests and metrics.
    batches: AtomicU64,
    /// Why the last append failed, until an append or a disk probe succeeds.
    fault: Mutex<Option<StorageError>>,
}

pub struct EmbeddedStore {
    shared: Arc<Shared>,
    tx: flume::Sender<Msg>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore").finish_non_exhaustive()
    }
}

fn ready<T: Send + 'static>(v: T) -> BoxFuture<'static, T> {
    Box::pin(futures_util::future::ready(v))
}

impl EmbeddedStore {
    /// Open (or create) the store in `dir`, recovering its state.
    pub fn open(dir: &Path, opts: EmbeddedOptions) -> Result<Arc<EmbeddedStore>, StorageError> {
        let fs = opts.fs.clone();
        fs.create_dir_all(dir)?;
        let mut idx = index::Index::default();
        let mut hub = watch::Hub::new(opts.watch_buffer);
        recover(fs.as_ref(), dir, &mut idx, &mut hub)?;
        let next_seq = wal::segments(fs.as_ref(), dir)?.last().map_or(1, |s| s + 1);
        let writer = writer::Writer::open(&fs, dir, next_seq, opts.fsync)?;
        let shared = Arc::new(Shared {
            index: RwLock::new(idx),
            hub: Mutex::new(hub),
            batches: AtomicU64::new(0),
            fault: Mutex::new(None),
        });
        let (tx, rx) = flume::unbounded();
        let committer = Committer {
            shared: shared.clone(),
            fs,
            writer,
            dir: dir.to_path_buf(),
            fsync: opts.fsync,
            snapshot_after_bytes: opts.snapshot_after_bytes,
            snapshotting: None,
            wal_buf: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("kapi-store-commit".into())
            .spawn(move || committer.run(rx))?;
        Ok(Arc::new(EmbeddedStore {
            shared,
            tx,
            thread: Mutex::new(Some(thread)),
            closed: AtomicBool::new(false),
        }))
    }

    /// Batches committed so far (each is one WAL append and one fsync).
    pub fn committed_batches(&self) -> u64 {
        self.shared.batches.load(Ordering::Relaxed)
    }

    fn submit(&self, op: Op) -> BoxFuture<'static, Result<KeyValue, StorageError>> {
        if self.closed.load(Ordering::Acquire) {
            return ready(Err(StorageError::Closed));
        }
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Msg::Write(op, reply)).is_err() {
            return ready(Err(StorageError::Closed));
        }
        Box::pin(async move { rx.await.unwrap_or(Err(StorageError::Closed)) })
    }

    fn shutdown(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Close(done)).is_ok() {
            let _ = futures_executor::block_on(wait);
        }
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

fn check_sizes(key: &str, value: Option<&Bytes>) -> Result<(), StorageError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StorageError::Io(format!("key too large: {} bytes", key.len())));
    }
    if let Some(v) = value.filter(|v| v.len() > MAX_VALUE_BYTES) {
        return Err(StorageError::Io(format!("value too large: {} bytes", v.len())));
    }
    Ok(())
}

/// Load the newest snapshot and replay the WAL after it into `idx` and `hub`.
fn recover(
    fs: &dyn fs::Fs,
    dir: &Path,
    idx: &mut index::Index,
    hub: &mut watch::Hub,
) -> Result<(), StorageError> {
    let mut base = 0;
    if let Some((records, rev)) = snapshot::load_latest(fs, dir)? {
        for r in records {
            committer::apply_record(idx, r);
        }
        idx.current = idx.current.max(rev);
        idx.compact(rev);
        base = rev;
    }
    let segments = wal::segments(fs, dir)?;
    let last = segments.last().copied();
    for seq in segments {
        for record in wal::read_segment(fs, &wal::segment_path(dir, seq), Some(seq) == last)? {
            if record.revision() <= base && !matches!(record, wal::Record::Compact { .. }) {
                continue;
            }
            let is_compact = matches!(record, wal::Record::Compact { .. });
            let ev = committer::apply_record(idx, record);
            if is_compact {
                hub.compact(idx.compacted);
            } else {
                hub.record([ev]);
            }
        }
    }
    Ok(())
}

impl Store for EmbeddedStore {
    fn get(&self, key: &str) -> BoxFuture<'static, Result<Option<KeyValue>, StorageError>> {
        if self.closed.load(Ordering::Acquire) {
            return ready(Err(StorageError::Closed));
        }
        ready(Ok(self.shared.index.read().latest(key)))
    }

    fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> BoxFuture<'static, Result<RangeResult, StorageError>> {
        if self.closed.load(Ordering::Acquire) {
            return ready(Err(StorageError::Closed));
        }
        ready(self.shared.index.read().range(prefix, start_after, limit, revision))
    }

    fn create(
        &self,
        key: &str,
        value: Bytes,
    ) -> BoxFuture<'static, Result<KeyValue, StorageError>> {
        if let Err(e) = check_sizes(key, Some(&value)) {
            return ready(Err(e));
        }
        self.submit(Op::Create { key: key.to_string(), value })
    }

    fn update(
        &self,
        key: &str,
        value: Bytes,
        precondition: Precondition,
    ) -> BoxFuture<'static, Result<KeyValue, StorageError>> {
        if let Err(e) = check_sizes(key, Some(&value)) {
            return ready(Err(e));
        }
        self.submit(Op::Update { key: key.to_string(), value, precondition })
    }

    fn delete(
        &self,
        key: &str,
        precondition: Precondition,
    ) -> BoxFuture<'static, Result<KeyValue, StorageError>> {
        if let Err(e) = check_sizes(key, None) {
            return ready(Err(e));
        }
        self.submit(Op::Delete { key: key.to_string(), precondition })
    }

    fn watch(&self, prefix: &str, from: Revision) -> Result<Watch, StorageError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        let index = self.shared.index.read();
        let from = if from == 0 { index.current } else { from };
        if from > index.current {
            return Err(StorageError::FutureRevision { requested: from, current: index.current });
        }
        let (compacted, current) = (index.compacted, index.current);
        let mut hub = self.shared.hub.lock();
        drop(index);
        hub.register(prefix, from, compacted, current)
    }

    fn current_revision(&self) -> Revision {
        self.shared.index.read().current
    }

    fn compacted_revision(&self) -> Revision {
        self.shared.index.read().compacted
    }

    fn compact(&self, revision: Revision) -> BoxFuture<'static, Result<(), StorageError>> {
        let fut = self.submit(Op::Compact { revision });
        Box::pin(async move { fut.await.map(drop) })
    }

    fn check_writable(&self) -> BoxFuture<'static, Result<(), StorageError>> {
        if self.closed.load(Ordering::Acquire) {
            return ready(Err(StorageError::Closed));
        }
        if self.shared.fault.lock().is_none() {
            return ready(Ok(()));
        }
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Msg::Probe(reply)).is_err() {
            return ready(Err(StorageError::Closed));
        }
        Box::pin(async move { rx.await.unwrap_or(Err(StorageError::Closed)) })
    }

    fn close(&self) -> BoxFuture<'static, Result<(), StorageError>> {
        self.shutdown();
        ready(Ok(()))
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fault_tests;
