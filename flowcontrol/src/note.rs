//! What the engine tells the dispatcher about a request that has to wait, for the
//! `dump_requests` debug dump: it is made only when a request is queued (never on the
//! path of a request that finds a free seat) and travels in the request's queue slot.
//! The dispatcher counts on it how often the request, at the head of the level, found
//! some seats free but not enough (upstream's `request_dispatch_no_accommodation_total`).

use std::cell::Cell;
use std::time::{Duration, SystemTime};

/// A queued request as upstream's request dump describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestNote {
    pub flow_schema: String,
    pub distinguisher: String,
    pub arrived: Option<SystemTime>,
    pub initial_seats: u32,
    pub final_seats: u32,
    pub additional_latency: Duration,
    /// The request details (`includeRequestDetails`).
    pub user: String,
    pub verb: String,
    pub path: String,
    pub namespace: String,
    pub name: String,
    /// `group/version`, or `version` for the core group.
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    /// Dispatch attempts that found free seats, but fewer than the request's.
    pub no_accommodation: Cell<u32>,
}
