//! `App`: the state every request on every core shares — immutable after start except
//! through the store and the allocators' own synchronisation.

use crate::alloc::{ClusterIpAllocator, NodePortAllocator};
use crate::auth::Authenticator;
use crate::cache::Caches;
use crate::config::Options;
use arc_swap::ArcSwap;
use kapi_codec::Registry;
use kapi_codec::stored::StorageMediaType;
use kapi_storage::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One registry snapshot, the APIServices served with it, and the documents made from
/// them (on first use, then shared).
pub struct Served {
    pub registry: Arc<Registry>,
    pub aggregated: Arc<crate::aggregator::Table>,
    pub docs: crate::discovery::Docs,
}

impl Served {
    fn new(registry: Arc<Registry>, aggregated: Arc<crate::aggregator::Table>) -> Served {
        Served { registry, aggregated, docs: Default::default() }
    }
}

pub struct App {
    pub options: Options,
    /// The built-in resources served (`--runtime-config`); custom resources are added to
    /// it in `served`.
    base: Arc<Registry>,
    /// The served resource types and APIServices and the documents made from them: one
    /// snapshot, swapped whole when CRDs or APIServices change.
    served: ArcSwap<Served>,
    /// The client that reaches aggregated API servers (set once at start).
    aggregator: std::sync::OnceLock<Arc<crate::aggregator::client::Client>>,
    pub store: Arc<dyn Store>,
    pub authenticator: Authenticator,
    pub authorizer: Arc<crate::authz::Chain>,
    pub cluster_ips: ClusterIpAllocator,
    pub node_ports: NodePortAllocator,
    /// The watch caches reads are served from (one per stored resource, lazily started).
    pub caches: Caches,
    /// Set once shutdown begins: /readyz fails, new watches are refused.
    shutting_down: AtomicBool,
    /// The encoding new values are stored in (`--storage-media-type`).
    pub storage_media: StorageMediaType,
    /// Whether the store answered its last health probe (`/readyz/etcd`).
    pub storage_healthy: AtomicBool,
    /// Whether the store takes writes (`/readyz/etcd-writable`; false while the disk is full).
    pub storage_writable: AtomicBool,
    /// Closed (all senders dropped) when shutdown begins; watches select on it.
    pub shutdown: flume::Receiver<()>,
    /// The audit policy and backends (`--audit-*`).
    pub audit: Arc<crate::audit::Auditor>,
    /// The admission plugins every write passes (`--enable/disable-admission-plugins`).
    pub admission: crate::admission::Chain,
    /// API Priority and Fairness: classification and the priority levels' seats.
    pub flowcontrol: crate::flowcontrol::FlowControl,
    /// The serving cores' mailboxes (views of per-core state: flow control's queues).
    pub cores: crate::cores::Cores,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

impl App {
    pub fn new(
        options: Options,
        store: Arc<dyn Store>,
        authenticator: Authenticator,
        authorizer: Arc<crate::authz::Chain>,
        shutdown: flume::Receiver<()>,
    ) -> Result<App, String> {
        let cluster_ips = ClusterIpAllocator::new(&options.service_cluster_ip_range)?;
        let node_ports = NodePortAllocator::new(&options.service_node_port_range)?;
        let storage_media = options.storage_media_type()?;
        let base = options.base_registry()?;
        let audit = Arc::new(crate::audit::Auditor::start(&options.audit)?);
        let admission = crate::admission::Chain::configured(
            &options.enable_admission_plugins,
            &options.disable_admission_plugins,
            &crate::admission::Config {
                not_ready_toleration_seconds: options.default_not_ready_toleration_seconds,
                unreachable_toleration_seconds: options.default_unreachable_toleration_seconds,
            },
        )?;
        let flowcontrol = crate::flowcontrol::FlowControl::new(
            options.enable_priority_and_fairness,
            options.max_requests_inflight.saturating_add(options.max_mutating_requests_inflight),
            options.worker_count(),
        );
        Ok(App {
            options,
            served: ArcSwap::from_pointee(Served::new(base.clone(), Default::default())),
            base,
            aggregator: std::sync::OnceLock::new(),
            store,
            authenticator,
            authorizer,
            cluster_ips,
            node_ports,
            caches: Caches,
            shutting_down: AtomicBool::new(false),
            storage_healthy: AtomicBool::new(true),
            storage_writable: AtomicBool::new(true),
            storage_media,
            shutdown,
            audit,
            admission,
            flowcontrol,
            cores: Default::default(),
        })
    }

    /// The current registry snapshot (a request keeps the one it started with).
    pub fn registry(&self) -> Arc<Registry> {
        self.served.load().registry.clone()
    }

    /// The built-in resources served (the defaults with `--runtime-config`'s changes): the
    /// base every registry snapshot starts from.
    pub fn base_registry(&self) -> &Arc<Registry> {
        &self.base
    }

    /// The current snapshot with its discovery and OpenAPI documents.
    pub fn served(&self) -> Arc<Served> {
        self.served.load_full()
    }

    /// Serve `next` from now on (CRDs or APIServices changed); documents are made anew
    /// on first use.
    pub fn set_registry(&self, next: Arc<Registry>) {
        self.served.rcu(|cur| Served::new(next.clone(), cur.aggregated.clone()));
    }

    /// Serve `next` APIServices from now on (the registry kept).
    pub fn set_aggregated(&self, next: Arc<crate::aggregator::Table>) {
        self.served.rcu(|cur| Served::new(cur.registry.clone(), next.clone()));
    }

    /// The client to aggregated API servers, once started.
    pub fn aggregator(&self) -> Option<&Arc<crate::aggregator::client::Client>> {
        self.aggregator.get()
    }

    /// Set the client to aggregated API servers (once).
    pub fn set_aggregator(&self, client: Arc<crate::aggregator::client::Client>) {
        let _ = self.aggregator.set(client);
    }

    pub fn prefix(&self) -> &str {
        &self.options.etcd_prefix
    }

    /// Whether other API servers may share the store (the etcd backend).
    pub fn shared_store(&self) -> bool {
        !self.options.etcd_servers.is_empty()
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Release);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}
