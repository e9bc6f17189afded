//! A timing histogram (upstream's `TimingHistogram`): how long a variable spent in each
//! bucket's range. Counts are nanoseconds, the sum is the integral of the variable over
//! time in value-nanoseconds, as upstream exposes them.
//!
//! kapi's variables (a level's seat demand and seat utilization, as ratios) are sampled
//! by the configuration thread ([`Timing::set`]), each sample holding until the next, so
//! the histogram is as fine as the sampling (the same samples as the demand averages).
//!
//! Invariants: bucket counts are per bucket (not cumulative) until [`Timing::snapshot`];
//! time never runs backwards (an earlier instant adds nothing).

use std::time::Instant;

/// What a scrape shows: cumulative bucket counts, total count and sum.
#[derive(Debug, Clone, PartialEq)]
pub struct TimingSnapshot {
    /// (upper bound, nanoseconds at or below it), cumulative, `+Inf` excluded.
    pub buckets: Vec<(f64, f64)>,
    /// Nanoseconds in all.
    pub count: f64,
    /// Integral of the value over time, in value-nanoseconds.
    pub sum: f64,
}

/// One variable's time in each bucket.
#[derive(Debug, Clone)]
pub struct Timing {
    bounds: &'static [f64],
    /// Nanoseconds per bucket; the last is `+Inf`.
    nanos: Vec<f64>,
    sum: f64,
    value: f64,
    since: Instant,
}

impl Timing {
    /// A variable at 0 from `now`, bucketed by `bounds` (increasing).
    pub fn new(bounds: &'static [f64], now: Instant) -> Timing {
        Timing { bounds, nanos: vec![0.0; bounds.len() + 1], sum: 0.0, value: 0.0, since: now }
    }

    /// The variable is `value` from `now` on.
    pub fn set(&mut self, now: Instant, value: f64) {
        self.advance(now);
        self.value = value;
    }

    fn advance(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.since).as_nanos() as f64;
        self.since = self.since.max(now);
        let i = self.bounds.iter().position(|b| self.value <= *b).unwrap_or(self.bounds.len());
        self.nanos[i] += dt;
        self.sum += self.value * dt;
    }

    /// The histogram up to `now` (the current value counted to `now`).
    pub fn snapshot(&self, now: Instant) -> TimingSnapshot {
        let mut upto = self.clone();
        upto.advance(now);
        let mut running = 0.0;
        let buckets = self
            .bounds
            .iter()
            .zip(&upto.nanos)
            .map(|(b, n)| {
                running += n;
                (*b, running)
            })
            .collect();
        TimingSnapshot { buckets, count: upto.nanos.iter().sum(), sum: upto.sum }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn time_is_counted_in_the_bucket_of_the_value_it_was_spent_at() {
        const B: &[f64] = &[0.5, 1.0];
        let t0 = Instant::now();
        let mut h = Timing::new(B, t0);
        h.set(t0 + Duration::from_secs(1), 0.75);
        h.set(t0 + Duration::from_secs(3), 2.0);
        let s = h.snapshot(t0 + Duration::from_secs(4));
        // 1 s at 0, 2 s at 0.75, 1 s (so far) at 2.
        assert_eq!(s.buckets, [(0.5, 1e9), (1.0, 3e9)]);
        assert_eq!(s.count, 4e9);
        assert_eq!(s.sum, 0.75 * 2e9 + 2.0 * 1e9);
        // A snapshot does not move the histogram on.
        assert_eq!(h.snapshot(t0 + Duration::from_secs(4)), s);
    }

    #[test]
    fn an_earlier_instant_adds_nothing() {
        let t0 = Instant::now();
        let mut h = Timing::new(&[1.0], t0 + Duration::from_secs(5));
        h.set(t0, 3.0);
        assert_eq!(h.snapshot(t0).count, 0.0);
    }
}
