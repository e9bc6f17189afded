//! A level's seat pool: how many seats its executing requests hold, and its current
//! limit. Taking and giving back are single atomic operations, so a request that finds a
//! free seat never takes a lock. The updates and their failed attempts are sequentially
//! consistent: the dispatcher relies on a release and a queued request's attempt being
//! ordered with the heads cores publish (`dispatch.rs`).

use std::sync::atomic::{AtomicU32, Ordering};

/// Seats in use against a limit that the configuration may change at any time.
#[derive(Debug, Default)]
pub struct Pool {
    in_use: AtomicU32,
    limit: AtomicU32,
}

impl Pool {
    pub fn new(limit: u32) -> Pool {
        Pool { in_use: AtomicU32::new(0), limit: AtomicU32::new(limit) }
    }

    /// Take `width` seats if they fit under the limit. A request wider than the whole
    /// limit may run alone (when nothing else holds a seat), as upstream lets it.
    pub fn try_take(&self, width: u32) -> bool {
        let limit = self.limit.load(Ordering::Acquire);
        self.in_use
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
                let fits = used.saturating_add(width) <= limit || (used == 0 && limit > 0);
                fits.then(|| used.saturating_add(width))
            })
            .is_ok()
    }

    /// Take `width` seats whatever the limit (exempt levels count what they use).
    pub fn take_unlimited(&self, width: u32) {
        self.in_use.fetch_add(width, Ordering::AcqRel);
    }

    /// Give `width` seats back.
    pub fn give(&self, width: u32) {
        let _ = self.in_use.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
            Some(used.saturating_sub(width))
        });
    }

    pub fn in_use(&self) -> u32 {
        self.in_use.load(Ordering::Acquire)
    }

    pub fn limit(&self) -> u32 {
        self.limit.load(Ordering::Acquire)
    }

    pub fn set_limit(&self, limit: u32) {
        self.limit.store(limit, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_are_taken_up_to_the_limit_and_given_back() {
        let p = Pool::new(3);
        assert!(p.try_take(2));
        assert!(!p.try_take(2));
        assert!(p.try_take(1));
        assert!(!p.try_take(1));
        p.give(2);
        assert!(p.try_take(2));
        assert_eq!(p.in_use(), 3);
    }

    #[test]
    fn a_request_wider_than_the_limit_runs_alone() {
        let p = Pool::new(2);
        assert!(p.try_take(5));
        assert!(!p.try_take(1));
        p.give(5);
        assert_eq!(p.in_use(), 0);
        assert!(!Pool::new(0).try_take(1), "a level without seats seats nobody");
    }

    #[test]
    fn a_lowered_limit_holds_new_requests_until_enough_seats_come_back() {
        let p = Pool::new(4);
        assert!(p.try_take(3));
        p.set_limit(2);
        assert!(!p.try_take(1));
        p.give(2);
        assert!(p.try_take(1));
    }
}
