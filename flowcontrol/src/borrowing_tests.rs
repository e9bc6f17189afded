use super::*;
use crate::config::{LevelConfig, limits};
use crate::demand::Integrator;
use std::time::{Duration, Instant};

/// A small deterministic generator (xorshift), for the randomized cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn float(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn rel_diff(a: f64, b: f64) -> f64 {
    let den = a.abs().max(b.abs());
    if den == 0.0 { 0.0 } else { (a - b).abs() / den }
}

/// Every solution has the properties upstream's `TestConcAlloc` checks: the sum is the
/// seats shared, and each allocation is its lower bound, its upper bound, or exactly
/// `fair_frac` times its target.
fn check_solution(seats: u32, items: &[Item]) {
    let low: f64 = items.iter().map(|i| i.lower).sum();
    let high: f64 = items.iter().map(|i| i.upper).sum();
    let want = f64::from(seats);
    let expect_err = low - want > 1e-10 || want - high > 1e-10;
    let (allocs, frac) = match allocate(seats, items) {
        Ok(r) => r,
        Err(e) => {
            assert!(expect_err, "{seats} {items:?}: unexpected {e}");
            return;
        }
    };
    assert!(!expect_err, "{seats} {items:?}: solved the unsolvable: {allocs:?}");
    let sum: f64 = allocs.iter().sum();
    assert!(rel_diff(want, sum) <= 1e-9, "{seats} {items:?}: sum {sum} ({allocs:?}, {frac})");
    for (it, a) in items.iter().zip(&allocs) {
        let ideal = frac * it.target.max(MIN_TARGET);
        if ideal <= it.lower {
            assert_eq!(*a, it.lower, "{items:?} {allocs:?} {frac}");
        } else if ideal >= it.upper {
            assert_eq!(*a, it.upper, "{items:?} {allocs:?} {frac}");
        } else {
            assert!(rel_diff(ideal, *a) <= 1e-9, "{items:?} {allocs:?} {frac}");
        }
    }
}

/// Upstream's randomized problem shapes: bound from below, bound from above, and
/// not set by the bounds, plus items with a zero target.
#[test]
fn random_problems_are_solved_as_upstream_requires() {
    let mut rng = Rng(1234567890);
    for _ in 0..10_000 {
        let n = [0usize, 1, 2, 3, 4, 6, 9][rng.below(7) as usize];
        let mut items = Vec::with_capacity(n);
        let seats;
        match rng.below(20) {
            0 if n > 0 => {
                seats = rng.below(n as u64 * 3) as u32;
                for x in partition(&mut rng, n, f64::from(seats)) {
                    let target = x + 2.0 * rng.float();
                    items.push(Item { lower: x, target, upper: x + 3.0 * rng.float() });
                }
            }
            1 if n > 0 => {
                seats = rng.below(n as u64 * 3) as u32 + 1;
                for x in partition(&mut rng, n, f64::from(seats)) {
                    let lower = x * (1.25 * rng.float() - 1.0).max(0.0);
                    items.push(Item { upper: x, lower, target: lower + rng.float() });
                }
            }
            _ => {
                for _ in 0..n {
                    let x = (rng.float() * 5.0 - 1.0).max(0.0);
                    let target = x + 2.0 * rng.float();
                    items.push(Item { lower: x, target, upper: x + 3.0 * rng.float() });
                }
                let low: f64 = items.iter().map(|i| i.lower).sum();
                let high: f64 = items.iter().map(|i| i.upper).sum();
                seats = (low + (high - low) * rng.float()).round() as u32;
            }
        }
        while rng.float() < 0.25 {
            items.push(Item { target: 0.0, lower: 0.0, upper: rng.float() + 0.00001 });
            let last = items.len() - 1;
            let m = rng.below(items.len() as u64) as usize;
            items.swap(m, last);
        }
        check_solution(seats, &items);
    }
}

/// `n` non-negative numbers summing to `x`.
fn partition(rng: &mut Rng, n: usize, x: f64) -> Vec<f64> {
    let mut cuts: Vec<f64> = (1..n).map(|_| rng.float()).collect();
    cuts.sort_by(f64::total_cmp);
    cuts.push(1.0);
    let mut last = 0.0;
    cuts.into_iter()
        .map(|c| {
            let d = (c - last) * x;
            last = c;
            d
        })
        .collect()
}

#[test]
fn without_binding_bounds_seats_follow_the_targets() {
    let items = [
        Item { target: 10.0, lower: 0.0, upper: 100.0 },
        Item { target: 30.0, lower: 0.0, upper: 100.0 },
    ];
    let (allocs, frac) = allocate(20, &items).unwrap();
    assert_eq!((allocs, frac), (vec![5.0, 15.0], 0.5));
}

#[test]
fn a_capped_level_leaves_the_rest_to_the_others() {
    let items = [
        Item { target: 10.0, lower: 0.0, upper: 2.0 },
        Item { target: 10.0, lower: 0.0, upper: 100.0 },
        Item { target: 10.0, lower: 5.0, upper: 100.0 },
    ];
    let (allocs, _) = allocate(30, &items).unwrap();
    assert_eq!(allocs, vec![2.0, 14.0, 14.0]);
    assert!(matches!(allocate(300, &items), Err(AllocError::UpperSumTooLow(_))));
    assert!(matches!(allocate(4, &items), Err(AllocError::LowerSumTooHigh(_))));
}

fn level(name: &str, exempt: bool, shares: u32, lendable: u32) -> LevelConfig {
    LevelConfig {
        name: name.into(),
        uid: String::new(),
        exempt,
        nominal_concurrency_shares: shares,
        lendable_percent: lendable,
        borrowing_limit_percent: None,
        queuing: None,
    }
}

/// Upstream's `TestUpdateBorrowing` levels: exempt, workload-high, workload-low and
/// catch-all with 870 seats, each demand held constant and integrated per period.
struct Upstream {
    levels: Vec<LevelDemand>,
    integrators: Vec<Integrator>,
    demand: Vec<f64>,
    t0: Instant,
    period: u32,
    current: Vec<u32>,
}

impl Upstream {
    fn new() -> Upstream {
        let configs = [
            level("exempt", true, 0, 0),
            level("workload-high", false, 40, 50),
            level("workload-low", false, 100, 90),
            level("catch-all", false, 5, 0),
        ];
        let seats = 145 * 6;
        let levels = limits(&configs, seats)
            .iter()
            .zip(&configs)
            .map(|(l, c)| LevelDemand {
                exempt: c.exempt,
                nominal: l.nominal,
                min: l.min(),
                max: l.max(seats),
                stats: DemandStats::default(),
            })
            .collect();
        let t0 = Instant::now();
        Upstream {
            levels,
            integrators: vec![Integrator::new(t0); 4],
            demand: vec![0.0; 4],
            t0,
            period: 0,
            current: vec![],
        }
    }

    fn set(&mut self, i: usize, x: f64) {
        self.demand[i] = x;
        let now = self.t0 + Duration::from_secs(10) * self.period;
        self.integrators[i].observe(now, x);
    }

    fn adjust(&mut self) {
        self.period += 1;
        let now = self.t0 + Duration::from_secs(10) * self.period;
        for (i, l) in self.levels.iter_mut().enumerate() {
            let p = self.integrators[i].reset(now, self.demand[i]);
            l.stats.update(p);
        }
        let seats = self.levels.iter().map(|l| l.nominal).sum();
        self.current = rebalance(seats, &self.levels).limits;
    }
}

/// Upstream's exempt borrowing scenarios (`TestUpdateBorrowing`), with the same
/// expected current limits.
#[test]
fn upstreams_exempt_borrowing_scenarios() {
    let mut u = Upstream::new();
    let nominal: Vec<u32> = u.levels.iter().map(|l| l.nominal).collect();
    let min: Vec<u32> = u.levels.iter().map(|l| l.min).collect();
    assert_eq!(nominal, [0, 240, 600, 30]);
    let server = 870u32;
    // 1: everybody wants more than the server has; exempt takes it all.
    for i in 0..4 {
        u.set(i, f64::from(server + 100));
    }
    u.adjust();
    assert_eq!(u.current, [server + 100, min[1], min[2], min[3]]);
    // 2: the others get half way between their minimum and nominal limits.
    let half = |i: usize| (nominal[i] + min[i]) / 2;
    let exempt = server - (half(1) + half(2) + half(3));
    u.set(0, f64::from(exempt));
    u.adjust();
    u.adjust();
    assert_eq!(u.current, [exempt, half(1), half(2), half(3)]);
    // 3: only workload-low lends, and exempt borrows all of it.
    let exempt = server - (nominal[1] + min[2] + nominal[3]);
    u.set(0, f64::from(exempt));
    u.set(2, 1.0);
    u.adjust();
    u.adjust();
    assert_eq!(u.current, [exempt, nominal[1], min[2], nominal[3]]);
}

/// An idle level lends what it may; a busy one borrows it, up to its own maximum.
#[test]
fn an_idle_level_lends_to_a_busy_one() {
    let stats = |hwm: f64, smoothed: f64| DemandStats {
        high_watermark: hwm,
        smoothed,
        ..Default::default()
    };
    let levels = [
        LevelDemand { exempt: false, nominal: 50, min: 25, max: 150, stats: stats(0.0, 0.0) },
        LevelDemand { exempt: false, nominal: 50, min: 50, max: 150, stats: stats(90.0, 90.0) },
    ];
    let a = rebalance(100, &levels);
    assert_eq!(a.limits, [25, 75]);
    let capped = [levels[0], LevelDemand { max: 60, ..levels[1] }];
    let a = rebalance(100, &capped);
    assert_eq!(a.limits, [40, 60]);
}
