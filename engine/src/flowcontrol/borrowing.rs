//! The periodic step of borrowing between priority levels, run by the configuration
//! thread (`controller`): every tick it samples each level's seat demand; every
//! adjustment period (upstream's 10 s) it has the dispatcher share the server's seats out
//! again as current limits (`kapi_flowcontrol::borrowing`), applied live to the seat
//! pools. Requests never wait on it: they only raise their level's demand peak (one
//! atomic) and read the current limit.
//!
//! The clock and the period are injected ([`Adjuster::new`], [`Adjuster::tick`]), so
//! tests drive adjustments without waiting.

use kapi_flowcontrol::Dispatcher;
use std::time::{Duration, Instant};

/// Upstream's `borrowingAdjustmentPeriod`.
pub const PERIOD: Duration = Duration::from_secs(10);

/// When the next adjustment is due.
#[derive(Debug, Clone)]
pub struct Adjuster {
    period: Duration,
    next: Instant,
}

impl Adjuster {
    /// Adjust every `period`, the first time one period after `now`.
    pub fn new(period: Duration, now: Instant) -> Adjuster {
        Adjuster { period, next: now + period }
    }

    /// One tick at `now`: sample the demand, and adjust when a period is over. Returns
    /// whether it adjusted.
    pub fn tick(&mut self, dispatcher: &Dispatcher, now: Instant) -> bool {
        if now < self.next {
            dispatcher.sample(now);
            return false;
        }
        dispatcher.adjust(now);
        // A late tick (a stalled thread) does not make adjustments pile up.
        self.next = (self.next + self.period).max(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt as _;
    use kapi_flowcontrol::{LevelConfig, Queuing};

    fn level(name: &str, lendable: u32) -> LevelConfig {
        LevelConfig {
            name: name.into(),
            uid: name.into(),
            exempt: false,
            nominal_concurrency_shares: 1,
            lendable_percent: lendable,
            borrowing_limit_percent: None,
            queuing: Some(Queuing { queues: 1, hand_size: 1, queue_length_limit: 10 }),
        }
    }

    /// A level with waiters borrows an idle level's lendable seats at the first
    /// adjustment, not before.
    #[test]
    fn a_busy_level_borrows_once_the_period_is_over() {
        let d = Dispatcher::new(20, 1);
        d.configure(&[level("idle", 50), level("busy", 0)]);
        let busy = d.level("busy").unwrap();
        let idle = d.level("idle").unwrap();
        // Both idle: the seats go in proportion to what each keeps (5 and 10).
        assert_eq!((idle.current_limit(), busy.current_limit()), (7, 13));
        let held: Vec<_> =
            (0..13).map(|f| busy.admit(f, 1).now_or_never().unwrap().unwrap()).collect();
        let mut waiting: Vec<_> = (0..2).map(|f| Box::pin(busy.admit(f, 1))).collect();
        for w in &mut waiting {
            assert!(w.as_mut().now_or_never().is_none());
        }
        let t0 = Instant::now();
        let mut a = Adjuster::new(Duration::from_secs(10), t0);
        assert!(!a.tick(&d, t0 + Duration::from_secs(5)));
        assert_eq!(busy.current_limit(), 13);
        assert!(a.tick(&d, t0 + Duration::from_secs(10)));
        assert_eq!((idle.current_limit(), busy.current_limit()), (5, 15));
        for w in waiting {
            assert!(w.now_or_never().unwrap().is_ok());
        }
        assert!(!a.tick(&d, t0 + Duration::from_secs(15)));
        drop(held);
    }
}
