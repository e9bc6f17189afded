//! Compaction, coordinated across API servers as upstream does: every replica calls
//! `compact` on its own timer, but only the one whose compare on the shared
//! `compact_rev_key` holds (it saw the key's latest version) compacts; the others learn
//! the key's version and try again next interval. So one compaction happens per interval
//! however many replicas share the etcd cluster.

use super::Shared;
use crate::error::StorageError;
use crate::store::Revision;
use etcd_client::proto::PbTxnOpResponse as OpResponse;
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The coordination key (upstream's name, outside the resource prefix).
pub const COMPACT_REV_KEY: &str = "compact_rev_key";

pub async fn compact(shared: Arc<Shared>, revision: Revision) -> Result<(), StorageError> {
    if revision <= shared.compacted.load(Ordering::Acquire) {
        return Ok(());
    }
    let seen = shared.compact_version.load(Ordering::Acquire);
    let txn = Txn::new()
        .when([Compare::version(COMPACT_REV_KEY, CompareOp::Equal, seen)])
        .and_then([TxnOp::put(COMPACT_REV_KEY, revision.to_string(), None)])
        .or_else([TxnOp::get(COMPACT_REV_KEY, None)]);
    let mut kv = shared.kv.clone();
    let mut resp = kv.txn(txn).await.map_err(|e| shared.error(e, None))?;
    shared.saw(resp.header());
    if !resp.succeeded() {
        // Another replica compacted this interval; follow its version.
        let version = std::mem::take(&mut resp.0.responses)
            .into_iter()
            .filter_map(|r| r.response)
            .find_map(|r| match r {
                OpResponse::ResponseRange(g) => g.kvs.first().map(|kv| kv.version),
                _ => None,
            })
            .unwrap_or(0);
        shared.compact_version.store(version, Ordering::Release);
        return Ok(());
    }
    shared.compact_version.store(seen + 1, Ordering::Release);
    match kv.compact(revision as i64, None).await {
        Ok(_) => {}
        Err(e) => match shared.error(e, Some(revision)) {
            StorageError::Compacted { .. } => {}
            other => return Err(other),
        },
    }
    shared.compacted.fetch_max(revision, Ordering::AcqRel);
    Ok(())
}
