//! A priority level's seat demand (seats its executing requests hold plus seats its
//! waiting requests ask for) over one adjustment period, and upstream's statistics of it.
//!
//! The request path only raises the level's peak (one atomic `fetch_max`, in the
//! dispatcher); the configuration thread samples the demand ([`Integrator::observe`])
//! and, once a period, takes the period's time-weighted average, standard deviation and
//! high watermark ([`Integrator::reset`]) into [`DemandStats`], whose `smoothed` figure
//! is the borrowing allocation's target.
//!
//! Invariants: a sample holds from its instant to the next one (the integral of a step
//! function); time never runs backwards in the integral (an earlier instant adds zero);
//! after a reset the new period's high watermark starts at the current demand.

use std::time::Instant;

/// How fast the smoothed demand forgets (upstream's `seatDemandSmoothingCoefficient`: a
/// half-life of five minutes at one adjustment per ten seconds).
pub const SMOOTHING: f64 = 0.977;

/// What one period's integration found.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Period {
    /// Seconds integrated.
    pub seconds: f64,
    /// Time-weighted average.
    pub average: f64,
    /// Time-weighted standard deviation.
    pub deviation: f64,
    /// The highest demand seen.
    pub max: f64,
}

/// The time integrals of the demand over the current period.
#[derive(Clone, Debug)]
pub struct Integrator {
    last: Instant,
    x: f64,
    seconds: f64,
    sum_x: f64,
    sum_xx: f64,
    max: f64,
}

impl Integrator {
    pub fn new(now: Instant) -> Integrator {
        Integrator { last: now, x: 0.0, seconds: 0.0, sum_x: 0.0, sum_xx: 0.0, max: 0.0 }
    }

    /// The demand is `x` from `now` on.
    pub fn observe(&mut self, now: Instant, x: f64) {
        self.advance(now);
        self.x = x;
        self.max = self.max.max(x);
    }

    fn advance(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.seconds += dt;
        self.sum_x += self.x * dt;
        self.sum_xx += self.x * self.x * dt;
    }

    /// End the period at `now` (`peak`: the highest demand the request path saw), and
    /// start the next one.
    pub fn reset(&mut self, now: Instant, peak: f64) -> Period {
        self.advance(now);
        let mut period =
            Period { seconds: self.seconds, max: self.max.max(peak), ..Period::default() };
        if self.seconds > 0.0 {
            period.average = self.sum_x / self.seconds;
            let variance = self.sum_xx / self.seconds - period.average * period.average;
            period.deviation = if variance > 0.0 { variance.sqrt() } else { 0.0 };
        }
        (self.seconds, self.sum_x, self.sum_xx, self.max) = (0.0, 0.0, 0.0, self.x);
        period
    }
}

/// A level's demand statistics as the last adjustment left them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct DemandStats {
    pub average: f64,
    pub deviation: f64,
    pub high_watermark: f64,
    /// `max(envelope, A * smoothed + (1 - A) * envelope)`, envelope = average + deviation.
    pub smoothed: f64,
}

impl DemandStats {
    /// Take in one period (upstream's `seatDemandStats.update`).
    pub fn update(&mut self, p: Period) {
        self.high_watermark = p.max;
        if p.seconds <= 0.0 {
            return;
        }
        self.average = p.average;
        self.deviation = p.deviation;
        let envelope = p.average + p.deviation;
        self.smoothed = envelope.max(SMOOTHING * self.smoothed + (1.0 - SMOOTHING) * envelope);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(t0: Instant, secs: f64) -> Instant {
        t0 + Duration::from_secs_f64(secs)
    }

    #[test]
    fn a_step_function_is_integrated_by_time() {
        let t0 = Instant::now();
        let mut i = Integrator::new(t0);
        i.observe(t0, 2.0);
        i.observe(at(t0, 5.0), 6.0);
        let p = i.reset(at(t0, 10.0), 0.0);
        assert_eq!((p.seconds, p.average, p.max), (10.0, 4.0, 6.0));
        assert!((p.deviation - 2.0).abs() < 1e-9, "{p:?}");
        // The next period starts from the current demand.
        let p = i.reset(at(t0, 20.0), 0.0);
        assert_eq!((p.average, p.deviation, p.max), (6.0, 0.0, 6.0));
    }

    #[test]
    fn a_peak_between_samples_is_the_high_watermark() {
        let t0 = Instant::now();
        let mut i = Integrator::new(t0);
        i.observe(t0, 1.0);
        let p = i.reset(at(t0, 10.0), 9.0);
        assert_eq!((p.average, p.max), (1.0, 9.0));
    }

    #[test]
    fn smoothing_follows_rises_at_once_and_falls_slowly() {
        let mut s = DemandStats::default();
        s.update(Period { seconds: 10.0, average: 100.0, deviation: 0.0, max: 100.0 });
        assert_eq!(s.smoothed, 100.0);
        s.update(Period { seconds: 10.0, average: 0.0, deviation: 0.0, max: 0.0 });
        assert!((s.smoothed - 97.7).abs() < 1e-9, "{s:?}");
        assert_eq!(s.high_watermark, 0.0);
    }

    #[test]
    fn an_empty_period_keeps_the_averages() {
        let mut s = DemandStats { average: 3.0, smoothed: 3.0, ..Default::default() };
        s.update(Period { seconds: 0.0, max: 5.0, ..Default::default() });
        assert_eq!((s.average, s.smoothed, s.high_watermark), (3.0, 3.0, 5.0));
    }
}
