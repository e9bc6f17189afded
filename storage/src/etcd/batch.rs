//! Writes, batched per shard.
//!
//! Each key hashes to one shard; a shard runs one Txn at a time, and the writes that
//! queue while it runs go into the next one: up to `max_txn_ops` writes of distinct keys
//! as one multi-op Txn with a compare per write. When the Txn's compares fail, each
//! write is retried as its own Txn so every request gets its own answer (created,
//! `AlreadyExists`, `NotFound`, `Conflict`). Under light load a batch is one write, so
//! batching adds no latency; under load it turns many round trips and fsyncs into one.
//!
//! Invariants: a write is answered only after etcd answered; writes of one key keep
//! their submission order (same shard, FIFO, never two of one key in one Txn).

use super::Shared;
use super::bridge::Bridge;
use super::read::key_value;
use crate::error::StorageError;
use crate::store::{KeyValue, Precondition, Revision};
use bytes::Bytes;
use etcd_client::proto::PbTxnOpResponse as OpResponse;
use etcd_client::{Compare, CompareOp, DeleteOptions, PutOptions, Txn, TxnOp};
use futures_channel::oneshot;
use futures_util::future::BoxFuture;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::mpsc;

/// One write as the Store trait describes it.
#[derive(Debug, Clone)]
pub enum WriteOp {
    Create { key: String, value: Bytes },
    Update { key: String, value: Bytes, precondition: Precondition },
    Delete { key: String, precondition: Precondition },
}

impl WriteOp {
    pub fn key(&self) -> &str {
        match self {
            WriteOp::Create { key, .. }
            | WriteOp::Update { key, .. }
            | WriteOp::Delete { key, .. } => key,
        }
    }

    /// Upstream's `operation` label.
    pub fn name(&self) -> &'static str {
        match self {
            WriteOp::Create { .. } => "create",
            WriteOp::Update { .. } => "update",
            WriteOp::Delete { .. } => "delete",
        }
    }

    /// Input the backend refuses before sending anything.
    pub fn invalid(&self) -> Option<StorageError> {
        let size = match self {
            WriteOp::Create { value, .. } | WriteOp::Update { value, .. } => value.len(),
            WriteOp::Delete { .. } => 0,
        };
        (size > super::MAX_VALUE_BYTES)
            .then(|| StorageError::Io(format!("value of {size} bytes is too large")))
    }

    /// The condition etcd checks for this write.
    fn compare(&self) -> Compare {
        match self {
            WriteOp::Create { key, .. } => Compare::mod_revision(key.as_str(), CompareOp::Equal, 0),
            WriteOp::Update { key, precondition, .. } | WriteOp::Delete { key, precondition } => {
                match precondition {
                    Precondition::ModRevision(rev) => {
                        Compare::mod_revision(key.as_str(), CompareOp::Equal, *rev as i64)
                    }
                    Precondition::None => Compare::version(key.as_str(), CompareOp::Greater, 0),
                }
            }
        }
    }

    fn txn_op(&self, lease: Option<i64>) -> TxnOp {
        let mut put = PutOptions::new();
        if let Some(id) = lease {
            put = put.with_lease(id);
        }
        match self {
            WriteOp::Create { key, value } => TxnOp::put(key.as_str(), value.to_vec(), Some(put)),
            WriteOp::Update { key, value, .. } => {
                TxnOp::put(key.as_str(), value.to_vec(), Some(put.with_prev_key()))
            }
            WriteOp::Delete { key, .. } => {
                TxnOp::delete(key.as_str(), Some(DeleteOptions::new().with_prev_key()))
            }
        }
    }
}

struct Pending {
    op: WriteOp,
    reply: oneshot::Sender<Result<KeyValue, StorageError>>,
}

/// What a shard's queue carries: writes, then one `Close`.
enum Msg {
    Write(Pending),
    Close(oneshot::Sender<()>),
}

/// The shards' queues.
pub struct Batcher {
    shards: Vec<mpsc::UnboundedSender<Msg>>,
}

impl Batcher {
    pub fn start(bridge: &Bridge, shared: Arc<Shared>) -> Batcher {
        let shards = (0..shared.opts.shards.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::unbounded_channel();
                bridge.spawn(run_shard(shared.clone(), rx));
                tx
            })
            .collect();
        Batcher { shards }
    }

    pub fn submit(&self, op: WriteOp) -> BoxFuture<'static, Result<KeyValue, StorageError>> {
        let (reply, rx) = oneshot::channel();
        let shard = &self.shards[shard_of(op.key(), self.shards.len())];
        if shard.send(Msg::Write(Pending { op, reply })).is_err() {
            return Box::pin(async { Err(StorageError::Closed) });
        }
        Box::pin(async move { rx.await.unwrap_or(Err(StorageError::Closed)) })
    }

    /// Stop taking writes; resolves once every write queued before was answered.
    pub fn close(&self) -> BoxFuture<'static, ()> {
        let waits: Vec<_> = self
            .shards
            .iter()
            .filter_map(|s| {
                let (tx, rx) = oneshot::channel();
                s.send(Msg::Close(tx)).ok().map(|_| rx)
            })
            .collect();
        Box::pin(async move {
            for w in waits {
                let _ = w.await;
            }
        })
    }
}

fn shard_of(key: &str, n: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % n as u64) as usize
}

async fn run_shard(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut carry: Option<Msg> = None;
    loop {
        let first = match carry.take() {
            Some(m) => m,
            None => match rx.recv().await {
                Some(m) => m,
                None => return,
            },
        };
        let first = match first {
            Msg::Write(p) => p,
            Msg::Close(done) => {
                rx.close();
                let _ = done.send(());
                return;
            }
        };
        let (batch, next) = gather(first, &mut rx, &shared);
        carry = next;
        execute(&shared, batch).await;
    }
}

/// The first write and whatever else is queued, up to the Txn limit, stopping before a
/// second write of a key already in the batch or a `Close` (returned to go first next).
fn gather(
    first: Pending,
    rx: &mut mpsc::UnboundedReceiver<Msg>,
    shared: &Shared,
) -> (Vec<Pending>, Option<Msg>) {
    let max = if shared.opts.batching { shared.opts.max_txn_ops.max(1) } else { 1 };
    let mut keys = HashSet::new();
    keys.insert(first.op.key().to_string());
    let mut batch = vec![first];
    while batch.len() < max {
        let Ok(m) = rx.try_recv() else { break };
        match m {
            Msg::Write(p) if keys.insert(p.op.key().to_string()) => batch.push(p),
            other => return (batch, Some(other)),
        }
    }
    (batch, None)
}

async fn execute(shared: &Shared, batch: Vec<Pending>) {
    // Before any answer: a read issued after an acknowledged write never joins an
    // older read of the key.
    shared.writes.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    answer(shared, batch).await;
}

async fn answer(shared: &Shared, batch: Vec<Pending>) {
    if batch.len() == 1 {
        for p in batch {
            let out = single(shared, &p.op).await;
            let _ = p.reply.send(out);
        }
        return;
    }
    match multi(shared, &batch).await {
        Ok(Some(results)) => {
            for (p, out) in batch.into_iter().zip(results) {
                let _ = p.reply.send(Ok(out));
            }
        }
        // A compare failed: each write on its own.
        Ok(None) => {
            for p in batch {
                let out = single(shared, &p.op).await;
                let _ = p.reply.send(out);
            }
        }
        Err(e) => {
            for p in batch {
                let _ = p.reply.send(Err(e.clone()));
            }
        }
    }
}

/// All writes as one Txn: `Some(results)` when every compare held, `None` otherwise.
async fn multi(shared: &Shared, batch: &[Pending]) -> Result<Option<Vec<KeyValue>>, StorageError> {
    let mut leases = Vec::with_capacity(batch.len());
    for p in batch {
        leases.push(lease_for(shared, &p.op).await?);
    }
    // Built per attempt: the values are copied into the request once per send.
    let build = || {
        let compares: Vec<Compare> = batch.iter().map(|p| p.op.compare()).collect();
        let ops: Vec<TxnOp> = batch.iter().zip(&leases).map(|(p, l)| p.op.txn_op(*l)).collect();
        Txn::new().when(compares).and_then(ops)
    };
    let started = std::time::Instant::now();
    let resp = shared.kv_call(|kv| txn_call(kv, build())).await;
    for p in batch {
        shared.observe(p.op.name(), p.op.key(), started);
    }
    let mut resp = resp.map_err(|e| shared.error(e, None))?;
    let rev = shared.saw(resp.header());
    if !resp.succeeded() {
        return Ok(None);
    }
    let responses = std::mem::take(&mut resp.0.responses);
    let results =
        batch.iter().zip(responses).map(|(p, r)| written(&p.op, rev, r.response)).collect();
    Ok(Some(results))
}

/// One write as its own Txn; on a failed compare, the key's current state says why.
async fn single(shared: &Shared, op: &WriteOp) -> Result<KeyValue, StorageError> {
    let lease = lease_for(shared, op).await?;
    let build = || {
        Txn::new()
            .when([op.compare()])
            .and_then([op.txn_op(lease)])
            .or_else([TxnOp::get(op.key(), None)])
    };
    let started = std::time::Instant::now();
    let resp = shared.kv_call(|kv| txn_call(kv, build())).await;
    shared.observe(op.name(), op.key(), started);
    let mut resp = resp.map_err(|e| shared.error(e, None))?;
    let rev = shared.saw(resp.header());
    let first = std::mem::take(&mut resp.0.responses).into_iter().next();
    let first = first.and_then(|r| r.response);
    if resp.succeeded() {
        return Ok(written(op, rev, first));
    }
    let current = match first {
        Some(OpResponse::ResponseRange(g)) => g.kvs.into_iter().next().map(key_value),
        _ => None,
    };
    Err(refusal(op, current))
}

async fn txn_call(
    mut kv: etcd_client::KvClient,
    txn: Txn,
) -> Result<etcd_client::TxnResponse, etcd_client::Error> {
    kv.txn(txn).await
}

/// What a successful write returns (`rev` is the Txn's revision).
fn written(op: &WriteOp, rev: Revision, resp: Option<OpResponse>) -> KeyValue {
    match (op, resp) {
        (WriteOp::Create { key, value }, _) => KeyValue {
            key: key.clone(),
            value: value.clone(),
            create_revision: rev,
            mod_revision: rev,
        },
        (WriteOp::Update { key, value, .. }, resp) => {
            let prev = match resp {
                Some(OpResponse::ResponsePut(p)) => p.prev_kv.map(key_value),
                _ => None,
            };
            let create_revision = prev.map(|p| p.create_revision).unwrap_or(rev);
            KeyValue { key: key.clone(), value: value.clone(), create_revision, mod_revision: rev }
        }
        (WriteOp::Delete { key, .. }, resp) => {
            let prev = match resp {
                Some(OpResponse::ResponseDeleteRange(d)) => d.prev_kvs.into_iter().next(),
                _ => None,
            };
            let prev = prev.map(key_value);
            KeyValue {
                key: key.clone(),
                value: prev.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
                create_revision: prev.map(|p| p.create_revision).unwrap_or(0),
                mod_revision: rev,
            }
        }
    }
}

/// Why a write's compare failed, given the key's current state.
fn refusal(op: &WriteOp, current: Option<KeyValue>) -> StorageError {
    let key = op.key().to_string();
    match (op, current) {
        (WriteOp::Create { .. }, _) => StorageError::AlreadyExists { key },
        (_, None) => StorageError::NotFound { key },
        (WriteOp::Update { precondition, .. } | WriteOp::Delete { precondition, .. }, Some(kv)) => {
            let expected = match precondition {
                Precondition::ModRevision(r) => *r,
                Precondition::None => 0,
            };
            StorageError::Conflict { key, expected, current: kv.mod_revision }
        }
    }
}

async fn lease_for(shared: &Shared, op: &WriteOp) -> Result<Option<i64>, StorageError> {
    if matches!(op, WriteOp::Delete { .. }) {
        return Ok(None);
    }
    let ttl = shared.opts.ttl_prefixes.iter().find(|(p, _)| op.key().starts_with(p.as_str()));
    match ttl {
        Some((_, ttl)) => {
            shared.leases.lease(*ttl).await.map(Some).map_err(|e| shared.error(e, None))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_why_a_compare_failed() {
        let current =
            KeyValue { key: "/k".into(), value: Bytes::new(), create_revision: 2, mod_revision: 5 };
        let create = WriteOp::Create { key: "/k".into(), value: Bytes::new() };
        assert!(matches!(
            refusal(&create, Some(current.clone())),
            StorageError::AlreadyExists { .. }
        ));
        let update = WriteOp::Update {
            key: "/k".into(),
            value: Bytes::new(),
            precondition: Precondition::ModRevision(4),
        };
        assert_eq!(
            refusal(&update, Some(current)),
            StorageError::Conflict { key: "/k".into(), expected: 4, current: 5 }
        );
        let delete = WriteOp::Delete { key: "/k".into(), precondition: Precondition::None };
        assert!(matches!(refusal(&delete, None), StorageError::NotFound { .. }));
    }

    #[test]
    fn one_key_always_lands_on_one_shard() {
        for n in [1, 3, 8] {
            let s = shard_of("/registry/pods/default/a", n);
            assert!(s < n);
            assert_eq!(s, shard_of("/registry/pods/default/a", n));
        }
    }
}
