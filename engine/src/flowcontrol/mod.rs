//! API Priority and Fairness (flowcontrol.apiserver.k8s.io): every request is classified
//! by the FlowSchemas into a priority level and a flow, then waits for seats of its
//! level (`kapi-flowcontrol`: seat pools, shuffle sharding, fair queuing across cores).
//!
//! - [`FlowControl`]: what the server holds: the dispatcher (levels and their seats) and
//!   the current classifier snapshot, swapped whole when FlowSchemas or
//!   PriorityLevelConfigurations change.
//! - [`FlowControl::classify`]: the request path's classification (a read of the
//!   snapshot, no lock, no store read).
//! - [`filter`]: the request path: seats, 429s, response headers, max-in-flight.
//! - [`work`]: the work estimator (a request's seats and a write's extra latency).
//! - [`dump`]: the `/debug/api_priority_and_fairness/` dumps.
//! - [`read_write`]: `read_vs_write_current_requests`, sampled by the `kapi-apf` thread.
//!
//! - Configuration: `bootstrap` (upstream's mandatory and suggested objects), `ensure`
//!   (keeping them as upstream's ensurer does), `digest` (objects to level settings,
//!   compiled FlowSchemas and `Dangling` conditions), `schema` (matching),
//!   `classifier` (matching order and flows) and `controller` (the `kapi-apf` thread
//!   that follows the watch caches and applies changes live).
//! - [`borrowing`]: the periodic borrowing step the `kapi-apf` thread runs (current
//!   limits from each level's seat demand, every 10 s).
//!
//! Invariants: until the configuration is first loaded, requests are not classified
//! (they pass unlimited, as upstream serves before its config controller syncs only the
//! exempt ones; kapi's bootstrap objects exist before serving starts, and the first load
//! happens before serving); a FlowSchema naming a missing level is ignored by matching
//! (upstream's dangling case: its requests fall through to later schemas, at worst
//! `catch-all`).

pub mod bootstrap;
pub mod borrowing;
mod classifier;
pub mod controller;
pub mod digest;
pub mod ensure;
pub mod schema;

pub mod dump;
pub mod filter;
pub mod read_write;
pub mod work;

use crate::auth::UserInfo;
use crate::request::RequestInfo;
use arc_swap::ArcSwap;
pub use classifier::Classifier;
use kapi_flowcontrol::{Dispatcher, Level};
use std::sync::Arc;

/// Where a request belongs.
#[derive(Clone, Debug)]
pub struct Classified {
    /// The matching FlowSchema's name and uid (the `X-Kubernetes-PF-FlowSchema-UID` header).
    pub schema_name: Arc<str>,
    pub schema_uid: Arc<str>,
    /// Its priority level (name and uid come from the level).
    pub level: Arc<Level>,
    /// The flow: a hash of the FlowSchema name and the distinguisher (user or namespace).
    pub flow: u64,
    /// How the flow was told apart (`None` for a level without flows).
    pub distinguisher: schema::Distinguisher,
}

/// The server's flow control.
#[derive(Debug)]
pub struct FlowControl {
    /// `--enable-priority-and-fairness`.
    pub enabled: bool,
    pub dispatcher: Dispatcher,
    /// `read_vs_write_current_requests`.
    pub read_write: read_write::ReadWrite,
    classifier: ArcSwap<Classifier>,
}

impl FlowControl {
    /// Flow control sharing `seats` (`--max-requests-inflight` +
    /// `--max-mutating-requests-inflight`) among the levels, over `cores` serving threads.
    pub fn new(enabled: bool, seats: u32, cores: usize) -> FlowControl {
        FlowControl {
            enabled,
            dispatcher: Dispatcher::new(seats, cores),
            read_write: read_write::ReadWrite::new(std::time::Instant::now()),
            classifier: ArcSwap::from_pointee(Classifier::default()),
        }
    }

    /// Classify a request (None before the configuration is loaded, or when disabled).
    pub fn classify(&self, user: &UserInfo, info: &RequestInfo) -> Option<Classified> {
        if !self.enabled {
            return None;
        }
        self.classifier.load().classify(user, info)
    }

    /// Serve `next` from now on.
    pub fn set_classifier(&self, next: Classifier) {
        self.classifier.store(Arc::new(next));
    }
}
