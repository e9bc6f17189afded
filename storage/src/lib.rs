//! kapi-storage: where objects live.
//!
//! One [`Store`] trait, two backends: the embedded MVCC store (default; this crate's
//! [`embedded`] module) and etcd v3 ([`etcd`]). Values are opaque bytes to the store;
//! keys are `/registry/...` strings. Every revision is global and strictly increasing;
//! a write is acknowledged only once it is durable.
//!
//! Table of contents:
//! - [`store`]: the `Store` trait and its value types (`KeyValue`, `Event`, `Watch`).
//! - [`error`]: `StorageError` (the engine maps it onto Kubernetes `Status`; compaction
//!   becomes 410 Gone).
//! - [`embedded`]: the embedded MVCC store (index, write-ahead log, snapshots, compaction).
//! - [`etcd`]: the etcd v3 backend (tokio bridge, per-shard write batching, resumable
//!   watches, leases, coordinated compaction).
//! - [`cache`]: the watch cache (per resource: shards of latest objects and event windows
//!   applied in parallel, reads as of one revision, indexed watchers, per-core fan-out
//!   hubs) that serves reads without touching the store.
//! - [`model`]: a simple BTreeMap MVCC the embedded store is checked against in tests.
//! - [`signal`]: a wake-all signal, so waits for a revision wake when it is published.
//! - [`watchers`]: the one watcher index (prefix, namespace, index value) and slow-watcher
//!   close policy behind the embedded store's watches, the cache's dispatch and its hubs.

pub mod cache;
pub mod embedded;
pub mod error;
pub mod etcd;
pub mod model;
pub mod signal;
pub mod store;
pub mod watchers;

pub use error::StorageError;
pub use store::{
    Event, EventKind, KeyValue, Precondition, RangeResult, Revision, Store, Watch, WatchProgress,
};
