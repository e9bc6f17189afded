//! Group commit: one thread owns the WAL. It takes every waiting write request at once,
//! checks each precondition in order (against the index plus the batch's earlier
//! effects), assigns consecutive revisions, appends all records with one fsync, then
//! applies them to the index, publishes the events and answers each request. Nothing is
//! visible or acknowledged before it is durable.
//!
//! Snapshots never stall commits: when a WAL segment is full the committer takes the live
//! key-values (shared bytes, no copy of values) at the current revision, starts the next
//! segment, and a snapshot thread writes them out and then prunes what the snapshot makes
//! redundant. One snapshot at a time; until it is durable the older snapshot and every
//! segment since stay, so recovery is always complete.

use super::Shared;
use super::fs::Fs;
use super::index::Index;
use super::snapshot;
use super::wal::Record;
use super::writer::Writer;
use crate::error::StorageError;
use crate::store::{Event, EventKind, KeyValue, Precondition, Revision};
use bytes::Bytes;
use futures_channel::oneshot;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Largest number of requests committed together.
const MAX_BATCH: usize = 4096;

#[derive(Debug)]
pub enum Op {
    Create { key: String, value: Bytes },
    Update { key: String, value: Bytes, precondition: Precondition },
    Delete { key: String, precondition: Precondition },
    Compact { revision: Revision },
}

pub type Reply = oneshot::Sender<Result<KeyValue, StorageError>>;

#[derive(Debug)]
pub enum Msg {
    Write(Op, Reply),
    /// After a failed append: does the disk take writes again?
    Probe(oneshot::Sender<Result<(), StorageError>>),
    Close(oneshot::Sender<()>),
}

/// Bytes a probe writes: about what a few objects take.
const PROBE_BYTES: usize = 64 << 10;

pub struct Committer {
    pub shared: Arc<Shared>,
    pub fs: Arc<dyn Fs>,
    pub writer: Writer,
    pub dir: PathBuf,
    pub fsync: bool,
    pub snapshot_after_bytes: u64,
    /// The snapshot being written, if any.
    pub snapshotting: Option<std::thread::JoinHandle<()>>,
    /// The WAL bytes of a batch, kept between batches so the committer does not grow
    /// (and fault in) a fresh buffer for every one; see [`KEEP_WAL_BUFFER`].
    pub wal_buf: Vec<u8>,
}

/// Capacity the WAL buffer keeps between batches; a larger batch's buffer is freed.
const KEEP_WAL_BUFFER: usize = 4 << 20;

/// A request whose precondition passed, with its record.
struct Accepted {
    record: Record,
    reply: Reply,
}

impl Committer {
    pub fn run(mut self, rx: flume::Receiver<Msg>) {
        while let Ok(first) = rx.recv() {
            let mut batch = Vec::new();
            let (mut close, mut probes) = (None, Vec::new());
            let mut push = |m: Msg, batch: &mut Vec<(Op, Reply)>| match m {
                Msg::Write(op, reply) => batch.push((op, reply)),
                Msg::Probe(reply) => probes.push(reply),
                Msg::Close(done) => close = Some(done),
            };
            push(first, &mut batch);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => push(m, &mut batch),
                    Err(_) => break,
                }
            }
            self.commit(batch);
            for reply in probes {
                let _ = reply.send(self.probe());
            }
            if let Some(done) = close {
                self.finish_snapshot();
                self.shared.hub.lock().close();
                let _ = done.send(());
                return;
            }
        }
        self.finish_snapshot();
        self.shared.hub.lock().close();
    }

    fn commit(&mut self, batch: Vec<(Op, Reply)>) {
        if batch.is_empty() {
            return;
        }
        let accepted = self.check(batch);
        if accepted.is_empty() {
            return;
        }
        let mut buf = std::mem::take(&mut self.wal_buf);
        buf.clear();
        for a in &accepted {
            a.record.encode_into(&mut buf);
        }
        let appended = self.writer.append(&buf);
        if buf.capacity() <= KEEP_WAL_BUFFER {
            self.wal_buf = buf;
        }
        if let Err(e) = appended {
            tracing::warn!("write batch of {} failed: {e}", accepted.len());
            *self.shared.fault.lock() = Some(e.clone());
            for a in accepted {
                let _ = a.reply.send(Err(e.clone()));
            }
            return;
        }
        if self.shared.fault.lock().take().is_some() {
            tracing::info!("writes succeed again");
        }
        self.shared.batches.fetch_add(1, Ordering::Relaxed);
        self.apply(accepted);
        if self.writer.bytes >= self.snapshot_after_bytes
            && let Err(e) = self.snapshot()
        {
            tracing::error!("snapshot failed: {e}");
        }
    }

    /// Check preconditions in order; answer the failures; return what will be written.
    fn check(&self, batch: Vec<(Op, Reply)>) -> Vec<Accepted> {
        let index = self.shared.index.read();
        let mut next = index.current;
        // key -> (create_revision, mod_revision) or None (deleted in this batch).
        let mut overlay: HashMap<String, Option<(Revision, Revision)>> = HashMap::new();
        let mut accepted = Vec::with_capacity(batch.len());
        for (op, reply) in batch {
            match evaluate(&index, &overlay, op, next + 1) {
                Ok(record) => {
                    match &record {
                        Record::Put { key, revision, create_revision, .. } => {
                            overlay.insert(key.clone(), Some((*create_revision, *revision)));
                            next += 1;
                        }
                        Record::Delete { key, .. } => {
                            overlay.insert(key.clone(), None);
                            next += 1;
                        }
                        Record::Compact { .. } => {}
                    }
                    accepted.push(Accepted { record, reply });
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
        accepted
    }

    fn apply(&self, accepted: Vec<Accepted>) {
        let mut events = Vec::with_capacity(accepted.len());
        let mut replies = Vec::with_capacity(accepted.len());
        let mut compact_to = None;
        {
            let mut index = self.shared.index.write();
            for a in accepted {
                if let Record::Compact { revision } = a.record {
                    index.compact(revision);
                    compact_to = Some(index.compacted);
                    let kv = KeyValue {
                        key: String::new(),
                        value: Bytes::new(),
                        create_revision: 0,
                        mod_revision: revision,
                    };
                    replies.push((a.reply, kv));
                    continue;
                }
                let ev = apply_record(&mut index, a.record);
                replies.push((a.reply, ev.kv.clone()));
                events.push(ev);
            }
            let mut hub = self.shared.hub.lock();
            hub.publish(events);
            if let Some(rev) = compact_to {
                hub.compact(rev);
            }
        }
        for (reply, kv) in replies {
            let _ = reply.send(Ok(kv));
        }
    }

    /// Start a snapshot of the current revision on its own thread (unless one is being
    /// written: the segment then grows until it is done).
    fn snapshot(&mut self) -> Result<(), StorageError> {
        if self.snapshotting.as_ref().is_some_and(|h| !h.is_finished()) {
            return Ok(());
        }
        self.finish_snapshot();
        let (rev, live) = {
            let index = self.shared.index.read();
            (index.current, index.live().collect::<Vec<_>>())
        };
        let next = self.writer.seq + 1;
        self.writer = self.writer.next()?;
        self.shared.index.write().compact(rev);
        self.shared.hub.lock().compact(rev);
        let (fs, dir, fsync) = (self.fs.clone(), self.dir.clone(), self.fsync);
        let handle =
            std::thread::Builder::new().name("kapi-store-snap".into()).spawn(move || {
                let written = snapshot::write(fs.as_ref(), &dir, rev, live, fsync);
                let pruned = written.and_then(|()| snapshot::prune(fs.as_ref(), &dir, rev, next));
                if let Err(e) = pruned {
                    tracing::error!("snapshot at revision {rev} failed: {e}");
                }
            })?;
        self.snapshotting = Some(handle);
        Ok(())
    }

    /// After a failed append: repair the WAL if needed and check that the disk takes
    /// writes; clears the fault when it does.
    fn probe(&mut self) -> Result<(), StorageError> {
        if self.shared.fault.lock().is_none() {
            return Ok(());
        }
        let probed = self.writer.probe(PROBE_BYTES);
        let mut fault = self.shared.fault.lock();
        match &probed {
            Ok(()) => {
                tracing::info!("the disk takes writes again");
                *fault = None;
            }
            Err(e) => *fault = Some(e.clone()),
        }
        probed
    }

    /// Wait for the snapshot being written, if any.
    fn finish_snapshot(&mut self) {
        if let Some(h) = self.snapshotting.take() {
            let _ = h.join();
        }
    }
}

/// Apply one logged record to the index, returning its event.
pub fn apply_record(index: &mut Index, record: Record) -> Event {
    match record {
        Record::Put { key, value, revision, create_revision } => {
            let prev = index.put(&key, value.clone(), revision, create_revision);
            let kv = KeyValue { key, value, create_revision, mod_revision: revision };
            Event { kind: EventKind::Put, kv, prev }
        }
        Record::Delete { key, revision } => {
            let prev = index.delete(&key, revision);
            let (value, create_revision) =
                prev.as_ref().map_or((Bytes::new(), 0), |p| (p.value.clone(), p.create_revision));
            let kv = KeyValue { key, value, create_revision, mod_revision: revision };
            Event { kind: EventKind::Delete, kv, prev }
        }
        Record::Compact { revision } => {
            index.compact(revision);
            let kv = KeyValue {
                key: String::new(),
                value: Bytes::new(),
                create_revision: 0,
                mod_revision: revision,
            };
            Event { kind: EventKind::Put, kv, prev: None }
        }
    }
}

fn evaluate(
    index: &Index,
    overlay: &HashMap<String, Option<(Revision, Revision)>>,
    op: Op,
    revision: Revision,
) -> Result<Record, StorageError> {
    let state = |key: &str| match overlay.get(key) {
        Some(s) => *s,
        None => index.latest(key).map(|kv| (kv.create_revision, kv.mod_revision)),
    };
    let check = |key: &str, pre: Precondition| -> Result<(Revision, Revision), StorageError> {
        let (create, modr) =
            state(key).ok_or_else(|| StorageError::NotFound { key: key.to_string() })?;
        match pre {
            Precondition::ModRevision(m) if m != modr => {
                Err(StorageError::Conflict { key: key.to_string(), expected: m, current: modr })
            }
            _ => Ok((create, modr)),
        }
    };
    match op {
        Op::Create { key, value } => match state(&key) {
            Some(_) => Err(StorageError::AlreadyExists { key }),
            None => Ok(Record::Put { key, value, revision, create_revision: revision }),
        },
        Op::Update { key, value, precondition } => {
            let (create, _) = check(&key, precondition)?;
            Ok(Record::Put { key, value, revision, create_revision: create })
        }
        Op::Delete { key, precondition } => {
            check(&key, precondition)?;
            Ok(Record::Delete { key, revision })
        }
        Op::Compact { revision: r } => {
            if r > index.current {
                return Err(StorageError::FutureRevision { requested: r, current: index.current });
            }
            Ok(Record::Compact { revision: r })
        }
    }
}
