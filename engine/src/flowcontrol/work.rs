//! Upstream's work estimator: how many seats a request takes, and how long a write keeps
//! them after it finished (the cost of sending its change to the watchers).
//!
//! - A LIST (or a watch that starts with the current state): one seat per hundred
//!   objects the resource holds (its watch cache's count).
//! - A create, update, patch or delete: one seat, and with ten watchers of the resource
//!   or more, one seat per ten watchers (their count read from the watch cache's hubs, one
//!   atomic, no lock) kept for the work of 5 ms per such seat, spread over the seats
//!   granted (a request capped to fewer seats keeps them longer). A service account
//!   token request sends no event (one seat).
//! - Anything else: one seat.
//!
//! Every width is at least 1 and at most the level's max seats (upstream's tracker: 15%
//! of its nominal limit or nominal / hand size), never above 10.

use super::Classified;
use crate::app::App;
use crate::request::RequestInfo;
use std::time::Duration;

/// Objects one seat stands for in a LIST (upstream's `objectsPerSeat`).
const OBJECTS_PER_SEAT: u64 = 100;
/// Watchers one seat stands for when a change is sent (upstream's `watchesPerSeat`).
const WATCHES_PER_SEAT: u64 = 10;
/// The work of sending one change to one seat's watchers (`eventAdditionalDuration`).
const EVENT_WORK: Duration = Duration::from_millis(5);
/// The most seats one request takes (upstream's `maximumSeats`).
pub const MAX_SEATS: u32 = 10;

/// What a request costs (upstream's `WorkEstimate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    /// Seats while it executes.
    pub initial_seats: u32,
    /// Seats after it finished, for `additional_latency` (0: none).
    pub final_seats: u32,
    pub additional_latency: Duration,
    /// The watchers a write was estimated from (None for other requests).
    pub watch_count: Option<u64>,
}

impl Work {
    const ONE: Work = Work {
        initial_seats: 1,
        final_seats: 0,
        additional_latency: Duration::ZERO,
        watch_count: None,
    };

    /// The seats the request waits for and holds throughout (the larger of the two).
    pub fn seats(&self) -> u32 {
        self.initial_seats.max(self.final_seats).max(1)
    }
}

/// The estimate for a request classified into `c`.
pub fn estimate(app: &App, info: &RequestInfo, c: &Classified) -> Work {
    if !info.is_resource {
        return Work::ONE;
    }
    let max = max_seats(c.level.max_seats());
    let initial_events = info.verb == "watch"
        && (info.param("sendInitialEvents") == Some("true")
            || info.param("resourceVersion").is_none_or(str::is_empty));
    match info.verb.as_str() {
        "list" => list(object_count(app, info), max),
        "watch" if initial_events => list(object_count(app, info), max),
        "create" | "update" | "patch" | "delete" => {
            if info.resource == "serviceaccounts" && info.subresource.as_deref() == Some("token") {
                return Work::ONE;
            }
            mutating(watch_count(app, info), max)
        }
        _ => Work::ONE,
    }
}

/// The level's maximum, within upstream's 1..=10.
fn max_seats(level: Option<u32>) -> u32 {
    level.filter(|m| *m > 0).map_or(MAX_SEATS, |m| m.min(MAX_SEATS))
}

/// A LIST of a resource holding `objects`.
pub fn list(objects: u64, max: u32) -> Work {
    let seats = objects.div_ceil(OBJECTS_PER_SEAT).clamp(1, u64::from(max.max(1)));
    Work { initial_seats: seats as u32, ..Work::ONE }
}

/// A write to a resource with `watchers`.
pub fn mutating(watchers: u64, max: u32) -> Work {
    if watchers < WATCHES_PER_SEAT {
        return Work { watch_count: Some(watchers), ..Work::ONE };
    }
    let wanted = watchers.div_ceil(WATCHES_PER_SEAT);
    let seats = wanted.min(u64::from(max.max(1)));
    // The work (seats x 5 ms) stays the same: fewer seats keep it longer.
    let work = EVENT_WORK.saturating_mul(u32::try_from(wanted).unwrap_or(u32::MAX));
    Work {
        initial_seats: 1,
        final_seats: seats as u32,
        additional_latency: work / seats as u32,
        watch_count: Some(watchers),
    }
}

/// How many objects of the resource the server holds (its watch cache's count).
fn object_count(app: &App, info: &RequestInfo) -> u64 {
    let reg = app.registry();
    let Some(rt) = reg.get(&info.group, &info.version, &info.resource) else { return 0 };
    app.caches.get(app, rt).map_or(0, |c| c.len() as u64)
}

/// How many clients watch the resource (its watch cache's hub watchers; none when its
/// cache is not started, as nobody watches it then).
fn watch_count(app: &App, info: &RequestInfo) -> u64 {
    let reg = app.registry();
    let Some(rt) = reg.get(&info.group, &info.version, &info.resource) else { return 0 };
    app.caches.get_started(app, rt).map_or(0, |c| c.hub_watcher_count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_takes_a_seat_per_hundred_objects_up_to_the_maximum() {
        assert_eq!(list(0, 10), Work::ONE);
        assert_eq!(list(101, 10).seats(), 2);
        assert_eq!(list(5000, 10).seats(), 10);
        assert_eq!((list(5000, 3).initial_seats, list(5000, 3).final_seats), (3, 0));
    }

    /// Upstream's mutating estimator: below ten watchers one seat and no extra latency;
    /// from ten, a seat per ten watchers and 5 ms of work per seat, spread over the seats
    /// granted when capped.
    #[test]
    fn a_write_pays_for_its_watchers() {
        assert_eq!(mutating(9, 10), Work { watch_count: Some(9), ..Work::ONE });
        let w = |watchers, final_seats, ms| Work {
            initial_seats: 1,
            final_seats,
            additional_latency: Duration::from_millis(ms),
            watch_count: Some(watchers),
        };
        assert_eq!(mutating(10, 10), w(10, 1, 5));
        assert_eq!(mutating(35, 10), w(35, 4, 5));
        assert_eq!(mutating(200, 10), w(200, 10, 10));
        assert_eq!(mutating(200, 4), w(200, 4, 25));
        assert_eq!(mutating(200, 4).seats(), 4);
    }

    #[test]
    fn the_level_maximum_stays_within_upstreams_bounds() {
        assert_eq!(max_seats(None), 10);
        assert_eq!(max_seats(Some(0)), 10);
        assert_eq!(max_seats(Some(37)), 10);
        assert_eq!(max_seats(Some(2)), 2);
    }
}
