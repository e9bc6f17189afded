//! The etcd v3 backend: the distributed engine for HA and scale-out.
//!
//! - [`bridge`]: the tokio thread etcd-client runs on; calls cross over and back.
//! - [`read`]: get (concurrent reads of one key coalesced) and range (internally paged,
//!   pinned to one revision).
//! - [`batch`]: writes, batched per shard into multi-op Txns with one compare each,
//!   falling back to one Txn per write when a compare fails.
//! - [`watch`]: one etcd watch per `Store::watch` (the watch caches open one per
//!   resource prefix), resumed after connection loss, progress on request.
//! - [`lease`]: leases for keys that expire (Events, `--event-ttl`).
//! - [`compact`]: compaction coordinated across replicas as upstream does.
//!
//! Keys and values are the engine's: `/registry/...` keys as upstream lays them out,
//! values as the engine encodes them. Revisions are etcd's; one Txn of several writes
//! gives them one revision, so watches set `shared_revisions`.

mod batch;
mod bridge;
mod compact;
mod errors;
mod lease;
mod read;
mod watch;

use crate::error::StorageError;
use crate::store::{KeyValue, Precondition, RangeResult, Revision, Store, Watch};
use batch::{Batcher, WriteOp};
use bridge::Bridge;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Largest value written (etcd's default request limit is 1.5 MiB; kapi's objects are
/// bounded well below by the request body limit).
pub const MAX_VALUE_BYTES: usize = 16 << 20;

/// Told of every etcd request: (operation, key, latency). The engine turns it into
/// upstream's `etcd_request_duration_seconds`.
pub type RequestObserver = Arc<dyn Fn(&'static str, &str, Duration) + Send + Sync>;

/// How to reach etcd and how to batch.
#[derive(Clone)]
pub struct EtcdOptions {
    /// Client URLs (`http://127.0.0.1:2379`, `https://...` with TLS).
    pub endpoints: Vec<String>,
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// Most writes in one Txn (etcd's `--max-txn-ops`, default 128).
    pub max_txn_ops: usize,
    /// Write shards, each batching its writes into one Txn at a time.
    pub shards: usize,
    /// 1 = every write its own Txn (for comparisons).
    pub batching: bool,
    /// Bound on every request; a request that cannot be answered in time fails with
    /// `Unavailable` (503).
    pub request_timeout: Duration,
    pub dial_timeout: Duration,
    /// Keys under these prefixes are written with a lease of this TTL (Events).
    pub ttl_prefixes: Vec<(String, Duration)>,
    /// Undelivered events a watcher may have before it is closed as too slow.
    pub watch_buffer: usize,
    pub observer: Option<RequestObserver>,
}

impl std::fmt::Debug for EtcdOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdOptions").field("endpoints", &self.endpoints).finish_non_exhaustive()
    }
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            ca_file: None,
            cert_file: None,
            key_file: None,
            max_txn_ops: 128,
            shards: 8,
            batching: true,
            request_timeout: Duration::from_secs(10),
            dial_timeout: Duration::from_secs(5),
            ttl_prefixes: Vec::new(),
            watch_buffer: 100_000,
            observer: None,
        }
    }
}

/// What every task of the backend shares.
pub(crate) struct Shared {
    pub kv: etcd_client::KvClient,
    pub watch: etcd_client::WatchClient,
    pub leases: lease::Leases,
    /// Highest revision seen in any response.
    pub current: AtomicU64,
    /// Highest revision known to be compacted.
    pub compacted: AtomicU64,
    /// Writes this server had answered (read coalescing never crosses one).
    pub writes: AtomicU64,
    /// Revision reads of consistent reads, shared by concurrent callers.
    pub revision_reads: parking_lot::Mutex<read::RevisionReads>,
    /// Reads of one key in flight, for coalescing.
    pub inflight: parking_lot::Mutex<read::Inflight>,
    /// Version of the compaction coordination key this replica last saw.
    pub compact_version: AtomicI64,
    pub opts: EtcdOptions,
}

impl Shared {
    /// One KV call, sent again (after a short pause) while it could not reach a member,
    /// within the request timeout: a killed member's connections fail until the client
    /// moves on to the others.
    pub async fn kv_call<T, F, Fut>(&self, call: F) -> Result<T, etcd_client::Error>
    where
        F: Fn(etcd_client::KvClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let deadline = std::time::Instant::now() + self.opts.request_timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            match call(self.kv.clone()).await {
                Err(e)
                    if errors::never_sent(&e) && std::time::Instant::now() + pause < deadline =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                out => return out,
            }
        }
    }

    /// Report one request that started at `started`.
    pub fn observe(&self, op: &'static str, key: &str, started: std::time::Instant) {
        if let Some(o) = &self.opts.observer {
            o(op, key, started.elapsed());
        }
    }

    /// Record a response header's revision.
    pub fn saw(&self, header: Option<&etcd_client::ResponseHeader>) -> Revision {
        let rev = header.map(|h| h.revision().max(0) as Revision).unwrap_or(0);
        self.current.fetch_max(rev, Ordering::AcqRel);
        rev
    }

    /// An error with the revisions filled in from what the backend knows.
    pub fn error(&self, e: etcd_client::Error, requested: Option<Revision>) -> StorageError {
        match errors::from_etcd(e, requested) {
            StorageError::Compacted { requested, .. } => StorageError::Compacted {
                requested,
                compacted: self.compacted.load(Ordering::Acquire).max(requested),
            },
            StorageError::FutureRevision { requested, .. } => StorageError::FutureRevision {
                requested,
                current: self.current.load(Ordering::Acquire),
            },
            other => other,
        }
    }
}

/// The etcd v3 `Store`.
pub struct EtcdStore {
    shared: Arc<Shared>,
    batcher: Batcher,
    bridge: Arc<Bridge>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore").field("endpoints", &self.shared.opts.endpoints).finish()
    }
}

impl EtcdStore {
    /// Connect (blocking the calling thread until etcd answers or the dial times out).
    pub fn connect(opts: EtcdOptions) -> Result<Arc<EtcdStore>, StorageError> {
        let bridge = Arc::new(Bridge::start(opts.request_timeout.max(opts.dial_timeout))?);
        let connect_opts = connect_options(&opts)?;
        let endpoints = opts.endpoints.clone();
        let client = futures_executor::block_on(bridge.call(async move {
            etcd_client::Client::connect(endpoints, Some(connect_opts))
                .await
                .map_err(|e| StorageError::Unavailable(format!("connecting to etcd: {e}")))
        }))?;
        let shared = Arc::new(Shared {
            kv: client.kv_client().max_decoding_message_size(1 << 30),
            watch: client.watch_client().max_decoding_message_size(256 << 20),
            leases: lease::Leases::new(client.lease_client()),
            current: AtomicU64::new(0),
            compacted: AtomicU64::new(0),
            compact_version: AtomicI64::new(0),
            writes: AtomicU64::new(0),
            inflight: Default::default(),
            revision_reads: Default::default(),
            opts,
        });
        let batcher = Batcher::start(&bridge, shared.clone());
        let store = Arc::new(EtcdStore { shared, batcher, bridge });
        store.wait_until_served()?;
        Ok(store)
    }

    /// Block until etcd answers a quorum read (a fresh cluster elects its leader first),
    /// at most the dial timeout.
    fn wait_until_served(&self) -> Result<(), StorageError> {
        let deadline = std::time::Instant::now() + self.shared.opts.dial_timeout;
        loop {
            match futures_executor::block_on(self.consistent_revision()) {
                Ok(_) => return Ok(()),
                Err(e) if std::time::Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn write(&self, op: WriteOp) -> BoxFuture<'static, Result<KeyValue, StorageError>> {
        if let Some(e) = op.invalid() {
            return Box::pin(async move { Err(e) });
        }
        self.batcher.submit(op)
    }
}

fn connect_options(opts: &EtcdOptions) -> Result<etcd_client::ConnectOptions, StorageError> {
    let mut o = etcd_client::ConnectOptions::new()
        .with_connect_timeout(opts.dial_timeout)
        .with_timeout(opts.request_timeout)
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
        .with_keep_alive_while_idle(true);
    if opts.ca_file.is_some() || opts.cert_file.is_some() {
        o = o.with_tls(tls_options(opts)?);
    }
    Ok(o)
}

fn tls_options(opts: &EtcdOptions) -> Result<etcd_client::TlsOptions, StorageError> {
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| StorageError::Io(format!("reading {}: {e}", p.display())))
    };
    let mut tls = etcd_client::TlsOptions::new();
    if let Some(ca) = &opts.ca_file {
        tls = tls.ca_certificate(etcd_client::Certificate::from_pem(read(ca)?));
    }
    match (&opts.cert_file, &opts.key_file) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(etcd_client::Identity::from_pem(read(cert)?, read(key)?));
        }
        (None, None) => {}
        _ => return Err(StorageError::Io("--etcd-certfile and --etcd-keyfile go together".into())),
    }
    Ok(tls)
}

impl Store for EtcdStore {
    fn get(&self, key: &str) -> BoxFuture<'static, Result<Option<KeyValue>, StorageError>> {
        self.bridge.call(read::get(self.shared.clone(), key.to_string()))
    }

    fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> BoxFuture<'static, Result<RangeResult, StorageError>> {
        let req = read::RangeRequest {
            prefix: prefix.to_string(),
            start_after: start_after.map(str::to_string),
            limit,
            revision,
        };
        self.bridge.call(read::range(self.shared.clone(), req))
    }

    fn create(
        &self,
        key: &str,
        value: Bytes,
    ) -> BoxFuture<'static, Result<KeyValue, StorageError>> {
        self.write(WriteOp::Create { key: key.to_string(), value })
    }

    fn update(
        &self,
        key: &str,
        value: Bytes,
        precondition: Precondition,
    ) -> BoxFuture<'static, Result<KeyValue, StorageError>> {
        self.write(WriteOp::Update { key: key.to_string(), value, precondition })
    }

    fn delete(
        &self,
        key: &str,
        precondition: Precondition,
    ) -> BoxFuture<'static, Result<KeyValue, StorageError>> {
        self.write(WriteOp::Delete { key: key.to_string(), precondition })
    }

    fn watch(&self, prefix: &str, from: Revision) -> Result<Watch, StorageError> {
        let compacted = self.shared.compacted.load(Ordering::Acquire);
        if from != 0 && from < compacted {
            return Err(StorageError::Compacted { requested: from, compacted });
        }
        Ok(watch::start(&self.bridge, self.shared.clone(), prefix, from))
    }

    fn current_revision(&self) -> Revision {
        self.shared.current.load(Ordering::Acquire)
    }

    fn compacted_revision(&self) -> Revision {
        self.shared.compacted.load(Ordering::Acquire)
    }

    fn compact(&self, revision: Revision) -> BoxFuture<'static, Result<(), StorageError>> {
        self.bridge.call(compact::compact(self.shared.clone(), revision))
    }

    fn consistent_revision(&self) -> BoxFuture<'static, Result<Revision, StorageError>> {
        self.bridge.call(read::current_revision(self.shared.clone()))
    }

    fn check_health(&self) -> BoxFuture<'static, Result<(), StorageError>> {
        self.bridge.call(read::health(self.shared.clone()))
    }

    fn close(&self) -> BoxFuture<'static, Result<(), StorageError>> {
        let bridge = self.bridge.clone();
        let drained = self.batcher.close();
        Box::pin(async move {
            drained.await;
            // The bridge thread is joined off the caller's executor.
            let _ = std::thread::spawn(move || bridge.stop()).join();
            Ok(())
        })
    }
}
