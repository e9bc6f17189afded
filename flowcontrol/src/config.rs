//! A priority level's settings (from its PriorityLevelConfiguration) and upstream's
//! concurrency limit arithmetic: the server's seats (`--max-requests-inflight` +
//! `--max-mutating-requests-inflight`) are shared by the Limited levels in proportion to
//! their `nominalConcurrencyShares`; `lendablePercent` of a level's nominal limit may be
//! lent to others and `borrowingLimitPercent` bounds what it may borrow.

/// How a Limited level queues requests it cannot seat at once (`limitResponse.queuing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Queuing {
    pub queues: u32,
    pub hand_size: u32,
    pub queue_length_limit: u32,
}

/// One priority level's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelConfig {
    pub name: String,
    pub uid: String,
    /// `type: Exempt`: never limited, never queued.
    pub exempt: bool,
    pub nominal_concurrency_shares: u32,
    pub lendable_percent: u32,
    /// None: unlimited borrowing.
    pub borrowing_limit_percent: Option<u32>,
    /// None: `limitResponse.type: Reject` (a request that finds no seat is refused).
    pub queuing: Option<Queuing>,
}

/// A level's limits in seats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub nominal: u32,
    pub lendable: u32,
    /// None: unlimited.
    pub borrowing: Option<u32>,
}

impl Limits {
    /// The least this level keeps (nominal minus what it lends).
    pub fn min(&self) -> u32 {
        self.nominal - self.lendable
    }

    /// The most this level may use: nominal plus what it may borrow (without a borrowing
    /// limit, upstream lets it borrow the server's seats).
    pub fn max(&self, server_seats: u32) -> u32 {
        self.nominal.saturating_add(self.borrowing.unwrap_or(server_seats))
    }
}

/// The most seats the work estimator may give one request of a queuing level (upstream's
/// max seats tracker): 15% of its nominal limit (rounded up) or its nominal limit over its
/// hand size, whichever is less, at least 1. None for a level without queues (the
/// estimator's own maximum applies).
pub fn max_seats(nominal: u32, queuing: Option<Queuing>) -> Option<u32> {
    let q = queuing?;
    let pct = (f64::from(nominal) * 0.15).ceil() as u32;
    Some(pct.min(nominal / q.hand_size.max(1)).max(1))
}

/// Round half away from zero, as Go's `math.Round`.
fn round(x: f64) -> u32 {
    x.round().clamp(0.0, u32::MAX as f64) as u32
}

/// Each level's limits for `server_seats` (upstream: NominalCL = ceil(ServerCL * NCS /
/// sum of NCS), Lendable = round(NominalCL * lendablePercent / 100), BorrowingLimit =
/// round(NominalCL * borrowingLimitPercent / 100)). The sum of shares counts every
/// level, exempt ones included, as upstream does.
pub fn limits(levels: &[LevelConfig], server_seats: u32) -> Vec<Limits> {
    let total: u64 = levels.iter().map(|l| u64::from(l.nominal_concurrency_shares)).sum();
    levels
        .iter()
        .map(|l| {
            let nominal = if total == 0 {
                0
            } else {
                let share = u64::from(server_seats) * u64::from(l.nominal_concurrency_shares);
                share.div_ceil(total) as u32
            };
            let pct = |p: u32| round(f64::from(nominal) * f64::from(p) / 100.0);
            Limits {
                nominal,
                lendable: pct(l.lendable_percent.min(100)),
                borrowing: l.borrowing_limit_percent.map(pct),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(name: &str, shares: u32, lendable: u32, borrowing: Option<u32>) -> LevelConfig {
        LevelConfig {
            name: name.into(),
            uid: String::new(),
            exempt: false,
            nominal_concurrency_shares: shares,
            lendable_percent: lendable,
            borrowing_limit_percent: borrowing,
            queuing: None,
        }
    }

    /// Upstream's suggested levels with the default 600 seats give the limits
    /// kube-apiserver reports (`apiserver_flowcontrol_nominal_limit_seats`).
    #[test]
    fn the_default_levels_get_upstreams_nominal_limits() {
        let levels = [
            level("exempt", 0, 0, None),
            level("catch-all", 5, 0, None),
            level("global-default", 20, 50, None),
            level("leader-election", 10, 0, None),
            level("node-high", 40, 25, None),
            level("system", 30, 33, None),
            level("workload-high", 40, 50, None),
            level("workload-low", 100, 90, None),
        ];
        let l = limits(&levels, 600);
        let nominal: Vec<u32> = l.iter().map(|l| l.nominal).collect();
        assert_eq!(nominal, [0, 13, 49, 25, 98, 74, 98, 245]);
        assert_eq!(l[7].lendable, 221);
        assert_eq!(l[7].min(), 24);
        assert_eq!(l[1].max(600), 613);
    }

    #[test]
    fn borrowing_limits_bound_the_maximum() {
        let l = limits(&[level("a", 1, 50, Some(100)), level("b", 1, 0, Some(0))], 10);
        assert_eq!(l[0], Limits { nominal: 5, lendable: 3, borrowing: Some(5) });
        assert_eq!((l[0].min(), l[0].max(10)), (2, 10));
        assert_eq!((l[1].min(), l[1].max(10)), (5, 5));
    }

    /// Upstream keeps a default level's maximum at 10 seats with 600 server seats, and
    /// lowers it with the level's nominal limit or a large hand.
    #[test]
    fn max_seats_follow_upstreams_tracker() {
        let q = |hand_size| Some(Queuing { queues: 64, hand_size, queue_length_limit: 50 });
        assert_eq!(max_seats(245, q(6)), Some(37));
        assert_eq!(max_seats(49, q(6)), Some(8));
        assert_eq!(max_seats(13, q(6)), Some(2));
        assert_eq!(max_seats(3, q(8)), Some(1));
        assert_eq!(max_seats(100, None), None);
    }

    #[test]
    fn no_shares_means_no_seats() {
        assert_eq!(limits(&[level("a", 0, 0, None)], 600)[0].nominal, 0);
    }
}
