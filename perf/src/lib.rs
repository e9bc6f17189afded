//! kapi-perf: the load and research toolkit that measures any Kubernetes API server given
//! a kubeconfig (kapi or upstream kube-apiserver). It is an ordinary HTTP client: it
//! speaks to the server over the wire only, like any other client would.
//!
//! - [`kubeconfig`]: the server, CA and credentials of a kubeconfig context.
//! - [`tls`], [`client`]: HTTPS over rustls, HTTP/1.1 or HTTP/2, a pool of connections.
//! - [`rate`]: open-loop (intended start times) and closed-loop request driving.
//! - [`histogram`], [`stats`]: latency recording, errors, throughput.
//! - [`report`]: summary table, JSON results, upstream SLO checks.
//! - [`compare`]: one workload against servers A and B in alternating rounds, B/A ratios.
//! - [`svg`], [`html`]: the HTML report with hand-drawn SVG plots (`--html`).
//! - [`sampler`]: CPU and RSS of the server process from /proc (`--server-pid`).
//! - [`watch`]: watch stream framing and delivery stamps.
//! - [`workloads`]: create, get, list, watch-fanout, startup, memory, cluster-sim, mixed.

pub mod client;
pub mod compare;
pub mod histogram;
pub mod html;
pub mod kubeconfig;
pub mod options;
pub mod rate;
pub mod report;
pub mod sampler;
pub mod stats;
pub mod svg;
pub mod tls;
pub mod watch;
pub mod workloads;
