//! Reads: one key, a range of keys, the current revision, a health probe.
//!
//! An unlimited range is read in pages pinned to the revision of the first page, so one
//! huge prefix never needs one huge gRPC message and the result is one consistent
//! snapshot, as a single read would be.

use super::Shared;
use crate::error::StorageError;
use crate::store::{KeyValue, RangeResult, Revision};
use etcd_client::GetOptions;
use etcd_client::proto::PbKeyValue;
use futures_channel::oneshot;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Keys per internal page of an unlimited range.
const PAGE: usize = 2000;

pub struct RangeRequest {
    pub prefix: String,
    pub start_after: Option<String>,
    pub limit: usize,
    pub revision: Option<Revision>,
}

/// The end of the range of keys starting with `prefix` (etcd's `GetPrefixRangeEnd`).
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// One etcd key-value as the store's (moved, not copied: the value becomes `Bytes`).
pub fn key_value(kv: PbKeyValue) -> KeyValue {
    let key = String::from_utf8(kv.key)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    KeyValue {
        key,
        value: kv.value.into(),
        create_revision: kv.create_revision.max(0) as Revision,
        mod_revision: kv.mod_revision.max(0) as Revision,
    }
}

/// One key, with concurrent reads of the key coalesced into one etcd request. A read
/// joins one in flight only if this server acknowledged no write since that one was
/// sent, so a client never reads older than its own acknowledged write.
pub async fn get(shared: Arc<Shared>, key: String) -> Result<Option<KeyValue>, StorageError> {
    let generation = shared.writes.load(Ordering::Acquire);
    let role = {
        let mut inflight = shared.inflight.lock();
        match inflight.get_mut(&key) {
            Some((g, waiters)) if *g == generation => {
                let (tx, rx) = oneshot::channel();
                waiters.push(tx);
                Role::Follower(rx)
            }
            Some(_) => Role::Alone,
            None => {
                inflight.insert(key.clone(), (generation, Vec::new()));
                Role::Leader
            }
        }
    };
    match role {
        Role::Follower(rx) => rx.await.unwrap_or(Err(StorageError::Closed)),
        Role::Alone => get_one(&shared, key).await,
        Role::Leader => {
            let out = get_one(&shared, key.clone()).await;
            let waiters = shared.inflight.lock().remove(&key).map(|(_, w)| w).unwrap_or_default();
            for w in waiters {
                let _ = w.send(out.clone());
            }
            out
        }
    }
}

enum Role {
    Leader,
    Follower(oneshot::Receiver<Result<Option<KeyValue>, StorageError>>),
    Alone,
}

/// Readers of one key waiting on the read in flight, with the write generation it saw.
pub type Inflight =
    HashMap<String, (u64, Vec<oneshot::Sender<Result<Option<KeyValue>, StorageError>>>)>;

async fn get_one(shared: &Shared, key: String) -> Result<Option<KeyValue>, StorageError> {
    let started = Instant::now();
    let resp = shared.kv_call(|kv| kv_get(kv, key.clone(), None)).await;
    shared.observe("get", &key, started);
    let mut resp = resp.map_err(|e| shared.error(e, None))?;
    shared.saw(resp.header());
    Ok(std::mem::take(&mut resp.0.kvs).into_iter().next().map(key_value))
}

pub async fn range(shared: Arc<Shared>, req: RangeRequest) -> Result<RangeResult, StorageError> {
    // Keys after `start_after`, but never before the prefix.
    let mut start = match &req.start_after {
        Some(after) if after.as_str() >= req.prefix.as_str() => format!("{after}\0"),
        _ => req.prefix.clone(),
    };
    let want = if req.limit == 0 { usize::MAX } else { req.limit };
    let mut revision = req.revision;
    let mut items = Vec::new();
    loop {
        let page_limit = (want - items.len()).min(PAGE);
        let page = page(&shared, &req.prefix, &start, page_limit, revision).await?;
        revision = Some(page.revision);
        let last = page.items.last().map(|kv| kv.key.clone());
        let more = page.more;
        let remaining = page.remaining;
        items.extend(page.items);
        match last {
            Some(last) if more && items.len() < want => start = format!("{last}\0"),
            _ => {
                let revision = revision.unwrap_or(0);
                return Ok(RangeResult { items, revision, more, remaining });
            }
        }
    }
}

/// One etcd range call of at most `limit` keys.
async fn page(
    shared: &Shared,
    prefix: &str,
    start: &str,
    limit: usize,
    revision: Option<Revision>,
) -> Result<RangeResult, StorageError> {
    let mut opts = GetOptions::new().with_range(prefix_end(prefix)).with_limit(limit as i64);
    if let Some(rev) = revision {
        opts = opts.with_revision(rev as i64);
    }
    let started = Instant::now();
    let resp = shared.kv_call(|kv| kv_get(kv, start.to_string(), Some(opts.clone()))).await;
    shared.observe("listWithCount", prefix, started);
    let mut resp = resp.map_err(|e| shared.error(e, revision))?;
    let current = shared.saw(resp.header());
    let count = resp.count().max(0) as u64;
    let more = resp.more();
    let items: Vec<KeyValue> = std::mem::take(&mut resp.0.kvs).into_iter().map(key_value).collect();
    let remaining = count.saturating_sub(items.len() as u64);
    Ok(RangeResult { items, revision: revision.unwrap_or(current), more, remaining })
}

/// Callers waiting for the next revision read, and whether one is in flight.
#[derive(Default)]
pub struct RevisionReads {
    in_flight: bool,
    next: Vec<oneshot::Sender<Result<Revision, StorageError>>>,
}

/// The store's latest revision, by a linearizable (quorum) read. Concurrent callers
/// share reads: a caller joins the next read to be sent (never one already in flight,
/// which may predate its call), so one round trip answers everyone who asked meanwhile.
pub async fn current_revision(shared: Arc<Shared>) -> Result<Revision, StorageError> {
    let (tx, rx) = oneshot::channel();
    let fetcher = {
        let mut reads = shared.revision_reads.lock();
        reads.next.push(tx);
        !std::mem::replace(&mut reads.in_flight, true)
    };
    if fetcher {
        // A task of its own: a caller that gives up (timeout) must not strand the others.
        tokio::spawn(serve_revision_reads(shared));
    }
    rx.await.unwrap_or(Err(StorageError::Closed))
}

/// Send revision reads until no caller is waiting.
async fn serve_revision_reads(shared: Arc<Shared>) {
    loop {
        let batch = std::mem::take(&mut shared.revision_reads.lock().next);
        let out = read_revision(&shared).await;
        for w in batch {
            let _ = w.send(out.clone());
        }
        let mut reads = shared.revision_reads.lock();
        if reads.next.is_empty() {
            reads.in_flight = false;
            return;
        }
    }
}

async fn read_revision(shared: &Shared) -> Result<Revision, StorageError> {
    let opts = GetOptions::new().with_count_only();
    let probe = || "/kapi-revision-probe".to_string();
    let resp = shared.kv_call(|kv| kv_get(kv, probe(), Some(opts.clone()))).await;
    let resp = resp.map_err(|e| shared.error(e, None))?;
    Ok(shared.saw(resp.header()))
}

/// Upstream's etcd health check: a read of the `health` key answers.
pub async fn health(shared: Arc<Shared>) -> Result<(), StorageError> {
    let mut kv = shared.kv.clone();
    kv.get("health", Some(GetOptions::new().with_count_only()))
        .await
        .map(drop)
        .map_err(|e| shared.error(e, None))
}

/// One range call on an owned key (the retry loop sends it again).
async fn kv_get(
    mut kv: etcd_client::KvClient,
    key: String,
    opts: Option<GetOptions>,
) -> Result<etcd_client::GetResponse, etcd_client::Error> {
    kv.get(key, opts).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_key_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end("/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
        assert_eq!(prefix_end(""), vec![0]);
    }
}
