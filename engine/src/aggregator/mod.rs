//! API aggregation (apiregistration.k8s.io/v1 APIServices), as upstream's
//! kube-aggregator: the APIServices kapi serves by proxying to extension API servers.
//!
//! - [`controller`]: the availability controller. It resolves each APIService's Service
//!   to an address (through its EndpointSlices or Endpoints; ExternalName Services by
//!   their name), probes `GET /apis/GROUP/VERSION` over TLS, writes the `Available`
//!   condition with upstream's reasons, and publishes the [`Table`] the request path
//!   reads. It also publishes `kube-system/extension-apiserver-authentication`.
//! - [`client`]: the outgoing HTTPS client: one dedicated thread running a tokio
//!   current-thread runtime (hyper client over tokio-rustls), so no serving core ever
//!   blocks on an extension server. Cores hand it a request and await the response head
//!   on a oneshot; the body comes back through a bounded channel, chunk by chunk.
//! - [`proxy`]: the request-path side: `/apis/GROUP/VERSION/...` of a non-local
//!   APIService is forwarded with kapi's proxy client certificate and the caller's
//!   identity in `X-Remote-*` headers (never its `Authorization`), or answered 503 when
//!   the APIService is not available.
//! - [`manager`]: the discovery manager: each APIService's entry in aggregated
//!   discovery, from its server's own aggregated document (`GET /apis`, v2 or v2beta1)
//!   or, when the server has none, its APIResourceList; refreshed when the APIService
//!   changes and every minute; `Stale` without resources when the fetch fails.
//! - [`discovery`]: aggregated discovery's types, the documents parsed and the legacy
//!   list converted, and upstream's ordering of groups and versions.
//!
//! Invariants: the table is replaced whole (inside `App::served`, with the documents
//! made from it); a request for a group/version uses the table it started with; only
//! APIServices whose `Available` condition the controller found True are proxied to.

pub mod client;
pub mod controller;
pub mod discovery;
pub mod manager;
pub mod proxy;

use serde_json::Value;
use std::sync::Arc;

/// Where and how an extension server is reached.
#[derive(Clone)]
pub struct Target {
    /// Host (an IP address, or an ExternalName Service's name) and port.
    pub host: String,
    pub port: u16,
    /// The TLS name the server's certificate must carry (upstream: `NAME.NAMESPACE.svc`).
    pub server_name: String,
    /// Trusting the APIService's `caBundle` (or anything, with `insecureSkipTLSVerify`),
    /// presenting kapi's proxy client certificate.
    pub tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// `https://HOST:PORT` (IPv6 hosts bracketed).
    pub fn base_url(&self) -> String {
        if self.host.contains(':') {
            format!("https://[{}]:{}", self.host, self.port)
        } else {
            format!("https://{}:{}", self.host, self.port)
        }
    }
}

/// One APIService as the request path sees it.
#[derive(Clone, Debug)]
pub struct Extension {
    /// The APIService's name (`v1beta1.metrics.k8s.io`).
    pub name: String,
    pub group: String,
    pub version: String,
    pub group_priority: i64,
    pub version_priority: i64,
    /// `spec.service` is null: served by kapi itself.
    pub local: bool,
    /// The `Available` condition is True.
    pub available: bool,
    /// Where the server is, once resolved.
    pub target: Option<Target>,
    /// The version's entry in aggregated discovery (`APIVersionDiscovery`, its
    /// freshness set), once the discovery manager synced it.
    pub discovery: Option<Value>,
}

/// Every APIService, in upstream's discovery order (groups by `groupPriorityMinimum`,
/// versions by `versionPriority`).
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub extensions: Vec<Extension>,
}

impl Table {
    pub fn new(mut extensions: Vec<Extension>) -> Table {
        discovery::sort(&mut extensions);
        Table { extensions }
    }

    /// The non-local APIService serving `group`/`version`.
    pub fn remote(&self, group: &str, version: &str) -> Option<&Extension> {
        self.extensions.iter().find(|e| !e.local && e.group == group && e.version == version)
    }

    /// Groups served by non-local APIServices, in order, each with its versions in order.
    pub fn remote_groups(&self) -> Vec<(&str, Vec<&Extension>)> {
        let mut out: Vec<(&str, Vec<&Extension>)> = Vec::new();
        for e in self.extensions.iter().filter(|e| !e.local && !e.group.is_empty()) {
            match out.iter_mut().find(|(g, _)| *g == e.group) {
                Some((_, v)) => v.push(e),
                None => out.push((&e.group, vec![e])),
            }
        }
        out
    }
}
