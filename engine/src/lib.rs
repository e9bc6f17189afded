//! kapi: a Kubernetes API server (the kube-apiserver role).
//!
//! The request path, top to bottom (see docs/ARCHITECTURE.md):
//! - [`server`]: one monoio runtime per core, SO_REUSEPORT listeners, TLS (rustls, ALPN
//!   h2/http1.1), hyper connections, graceful shutdown.
//! - [`handler`]: the handler chain of one request: limits, authentication,
//!   authorization, routing to non-resource endpoints or to [`rest`].
//! - [`auth`]: authenticators (x509 client certs, front proxy, static, ServiceAccount,
//!   bootstrap, OIDC and webhook tokens, anonymous), impersonation, the authorizer seam.
//! - [`authz`]: the `--authorization-mode` chain (RBAC, Node, Webhook), the access reviews,
//!   and the RBAC bootstrap policy reconciled at start.
//! - [`request`]: `RequestInfo` (verb, group, version, namespace, resource, name) from a
//!   URL, as upstream's request info factory.
//! - [`negotiation`]: Accept/Content-Type negotiation and response encoding.
//! - [`buffers`]: pooled per-core buffers the responses not sent from cached encodings
//!   are written into.
//! - [`client`]: what outbound HTTPS calls share: the TLS client builder and the
//!   webhook kubeconfig reader.
//! - [`rest`]: the generic REST verbs over the registry, the watch caches and the store.
//! - [`cache`]: one watch cache per stored resource; GET, LIST and WATCH read from it.
//! - [`flowcontrol`]: API Priority and Fairness: classification by FlowSchemas and the
//!   seats of priority levels (`kapi-flowcontrol`).
//! - [`admission`]: the admission chain every write passes (plugins in upstream's order).
//! - [`alloc`]: ClusterIP and NodePort allocation for Services.
//! - [`discovery`]: /api, /apis, aggregated discovery, /version, /openapi.
//! - [`aggregator`]: APIServices: the availability controller, the proxy to extension
//!   API servers and their part in discovery.
//! - [`controllers`]: what the apiserver creates itself (bootstrap objects) and the
//!   in-process namespace finalizer.
//! - [`debug`]: /debug/pprof CPU profiles (behind `--profiling`).
//! - [`metrics`]: Prometheus metrics with upstream names, counted per core.
//! - [`status`]: the one place errors become Kubernetes `Status` objects.
//! - [`probe`]: upstream's HTTPS health prober (componentstatuses).
//! - [`app`]: the shared state a request sees (`App`).

pub mod admission;
pub mod aggregator;
pub mod alloc;
pub mod app;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod body;
pub mod buffers;
pub mod cache;
pub mod client;
pub mod config;
pub mod controllers;
pub mod conversion;
pub mod cores;
pub mod debug;
pub mod discovery;
pub mod flowcontrol;
pub mod handler;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod negotiation;
pub mod pki;
pub mod probe;
pub mod request;
pub mod rest;
pub mod server;
pub mod status;
pub mod time;
pub mod twin;

pub use server::run;
