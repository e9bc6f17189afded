//! Upstream's `apiserver_flowcontrol_read_vs_write_current_requests`: how long the
//! server's read-only and mutating requests, waiting and executing under priority and
//! fairness, spent at each fraction of upstream's limits (waiting: every queuing level's
//! queues times their length limit; executing: every level's nominal seats). Upstream
//! updates its timing ratio histograms on every change; kapi's requests only count
//! themselves (a per-core atomic, `metrics::apf_requests`) and the `kapi-apf` thread
//! samples the sums every tick ([`ReadWrite::sample`]), so the histograms are as fine as
//! that sampling, like the levels' demand and utilization ones.
//!
//! Invariants: only the `kapi-apf` thread samples; a scrape reads a snapshot up to now
//! (the last sample held since), never moving the histograms on.

use crate::metrics::flowcontrol::READ_WRITE_BUCKETS;
use kapi_flowcontrol::Dispatcher;
use kapi_flowcontrol::timing::{Timing, TimingSnapshot};
use parking_lot::Mutex;
use std::time::Instant;

/// The four series' time at each ratio (by `metrics::flowcontrol::read_write_index`).
#[derive(Debug)]
pub struct ReadWrite {
    timings: Mutex<[Timing; 4]>,
}

impl ReadWrite {
    pub fn new(now: Instant) -> ReadWrite {
        ReadWrite {
            timings: Mutex::new(std::array::from_fn(|_| Timing::new(READ_WRITE_BUCKETS, now))),
        }
    }

    /// From `now` on: `counts` requests per series, over the limits of `dispatcher`.
    pub fn sample(&self, now: Instant, counts: [i64; 4], dispatcher: &Dispatcher) {
        let (waiting, executing) = limits(dispatcher);
        let mut timings = self.timings.lock();
        for (i, (t, n)) in timings.iter_mut().zip(counts).enumerate() {
            let of = if i < 2 { waiting } else { executing };
            let ratio = if of == 0 { 0.0 } else { n.max(0) as f64 / of as f64 };
            t.set(now, ratio);
        }
    }

    /// The four histograms up to `now`.
    pub fn snapshot(&self, now: Instant) -> [TimingSnapshot; 4] {
        let timings = self.timings.lock();
        std::array::from_fn(|i| timings[i].snapshot(now))
    }
}

/// Upstream's denominators: the most requests that may wait (every queuing level's
/// queues times their length limit) and the nominal seats of every level.
pub fn limits(dispatcher: &Dispatcher) -> (u64, u64) {
    let (mut waiting, mut executing) = (0u64, 0u64);
    for level in dispatcher.levels() {
        executing += u64::from(level.limits().nominal);
        if let Some(q) = level.queuing() {
            waiting += u64::from(q.queues) * u64::from(q.queue_length_limit);
        }
    }
    (waiting, executing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kapi_flowcontrol::{LevelConfig, Queuing};
    use std::time::Duration;

    /// One level of 10 seats and 4 queues of 5: 5 executing mutating requests are half
    /// the executing limit, 2 waiting read-only ones a tenth of the waiting limit.
    #[test]
    fn requests_are_timed_at_their_fraction_of_upstreams_limits() {
        let d = Dispatcher::new(10, 1);
        d.configure(&[LevelConfig {
            name: "pl".into(),
            uid: "u".into(),
            exempt: false,
            nominal_concurrency_shares: 1,
            lendable_percent: 0,
            borrowing_limit_percent: None,
            queuing: Some(Queuing { queues: 4, hand_size: 1, queue_length_limit: 5 }),
        }]);
        assert_eq!(limits(&d), (20, 10));
        let t0 = Instant::now();
        let rw = ReadWrite::new(t0);
        rw.sample(t0, [2, 0, 0, 5], &d);
        let s = rw.snapshot(t0 + Duration::from_secs(1));
        let at = |s: &TimingSnapshot, le: f64| s.buckets.iter().find(|(b, _)| *b == le).unwrap().1;
        // Waiting read-only: 0.1, in the 0.1 bucket, not below.
        assert_eq!((at(&s[0], 0.01), at(&s[0], 0.1)), (0.0, 1e9));
        // Executing mutating: 0.5.
        assert_eq!((at(&s[3], 0.4), at(&s[3], 0.5)), (0.0, 1e9));
        assert_eq!(s[3].sum, 0.5e9);
        // Nothing waiting mutating: all at 0.
        assert_eq!(at(&s[1], 0.0), 1e9);
    }
}
