//! Borrowing between priority levels: every adjustment period the server's seats (the
//! sum of the levels' nominal limits) are shared out again as current limits, following
//! each level's recent seat demand (upstream's concurrency borrowing, KEP-1040).
//!
//! - [`allocate`]: the fair allocation: the unique `fair_frac` such that the allocations
//!   `clamp(fair_frac * target, lower, upper)` sum to the seats to share.
//! - [`rebalance`]: one adjustment. An exempt level gets what it used (its high
//!   watermark, at least its own lower limit); the non-exempt levels share the rest:
//!   each gets at least its nominal limit or its high watermark, whichever is less (but
//!   never below its configured minimum, nominal minus lendable), at most its nominal
//!   plus its borrowing limit, and in between in proportion to its smoothed demand.
//!   When exempt use leaves too little for those lower bounds, each non-exempt level
//!   gives up the same fraction of what it could lend (down to its configured minimum),
//!   as upstream's exempt borrowing does.
//!
//! Invariants: allocations are never below a level's configured minimum nor above its
//! maximum; they sum to the seats shared whenever the bounds allow it.

use crate::demand::DemandStats;

/// A target below this counts as this (avoids dividing by zero).
pub const MIN_TARGET: f64 = 0.001;
const EPSILON: f64 = 1e-7;

/// One level's part of an allocation problem.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Item {
    pub target: f64,
    pub lower: f64,
    pub upper: f64,
}

/// Why an allocation problem has no solution.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum AllocError {
    #[error("item {0} has a negative lower bound")]
    NegativeLower(usize),
    #[error("item {0} has a target below its lower bound")]
    TargetBelowLower(usize),
    #[error("item {0} has an upper bound below its lower bound")]
    UpperBelowLower(usize),
    #[error("the lower bounds sum to {0}, more than the seats to share")]
    LowerSumTooHigh(f64),
    #[error("the upper bounds sum to {0}, less than the seats to share")]
    UpperSumTooLow(f64),
}

fn check(items: &[Item]) -> Result<(), AllocError> {
    for (i, it) in items.iter().enumerate() {
        if it.lower < 0.0 {
            return Err(AllocError::NegativeLower(i));
        }
        if it.target < it.lower {
            return Err(AllocError::TargetBelowLower(i));
        }
        if it.upper < it.lower {
            return Err(AllocError::UpperBelowLower(i));
        }
    }
    Ok(())
}

fn target(it: &Item) -> f64 {
    it.target.max(MIN_TARGET)
}

/// What the allocations sum to for `frac`.
fn sum_at(items: &[Item], frac: f64) -> f64 {
    items.iter().map(|it| (frac * target(it)).clamp(it.lower, it.upper)).sum()
}

/// Share `seats` among `items`: each gets `clamp(fair_frac * target, lower, upper)` for
/// the one `fair_frac` that makes them sum to `seats`. Returns the allocations and
/// `fair_frac`.
pub fn allocate(seats: u32, items: &[Item]) -> Result<(Vec<f64>, f64), AllocError> {
    check(items)?;
    let want = f64::from(seats);
    let low: f64 = items.iter().map(|i| i.lower).sum();
    let high: f64 = items.iter().map(|i| i.upper).sum();
    if low - want > EPSILON {
        return Err(AllocError::LowerSumTooHigh(low));
    }
    if want - high > EPSILON {
        return Err(AllocError::UpperSumTooLow(high));
    }
    let ratios = |f: fn(&Item) -> f64| items.iter().map(move |i| f(i) / target(i));
    if seats == 0 {
        return Ok((vec![0.0; items.len()], 0.0));
    }
    if low - want > -EPSILON {
        let frac = ratios(|i| i.lower).fold(f64::INFINITY, f64::min);
        return Ok((items.iter().map(|i| i.lower).collect(), frac));
    }
    if want - high > -EPSILON {
        let frac = ratios(|i| i.upper).fold(0.0, f64::max);
        return Ok((items.iter().map(|i| i.upper).collect(), frac));
    }
    // The sum is piecewise linear and nondecreasing in the fraction, with corners where
    // an item reaches a bound: find the segment that crosses `want` and solve in it.
    let mut corners: Vec<f64> = ratios(|i| i.lower).chain(ratios(|i| i.upper)).collect();
    corners.sort_by(f64::total_cmp);
    corners.dedup();
    let mut prev = (corners[0], sum_at(items, corners[0]));
    let mut frac = prev.0;
    for &c in &corners[1..] {
        let s = sum_at(items, c);
        if s >= want {
            frac =
                if s > prev.1 { prev.0 + (want - prev.1) * (c - prev.0) / (s - prev.1) } else { c };
            break;
        }
        prev = (c, s);
        frac = c;
    }
    let allocs = items.iter().map(|it| (frac * target(it)).clamp(it.lower, it.upper)).collect();
    Ok((allocs, frac))
}

/// One level as an adjustment sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LevelDemand {
    pub exempt: bool,
    pub nominal: u32,
    /// Nominal minus lendable.
    pub min: u32,
    /// Nominal plus the borrowing limit.
    pub max: u32,
    pub stats: DemandStats,
}

/// The outcome of one adjustment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Allocation {
    /// Each level's new current limit, in the order given.
    pub limits: Vec<u32>,
    /// Each level's target (upstream's `target_seats`).
    pub targets: Vec<f64>,
    /// The fair fraction (0 when exempt use squeezed the others).
    pub fair_frac: f64,
}

/// Share `seats` (the sum of the levels' nominal limits) among `levels`.
pub fn rebalance(seats: u32, levels: &[LevelDemand]) -> Allocation {
    let mut out = Allocation {
        limits: vec![0; levels.len()],
        targets: vec![0.0; levels.len()],
        fair_frac: 0.0,
    };
    let mut remaining = f64::from(seats);
    let mut shared = Vec::new();
    for (i, l) in levels.iter().enumerate() {
        let hwm = l.stats.high_watermark;
        if l.exempt {
            let limit = f64::from(l.min).max(hwm.round());
            out.limits[i] = to_seats(limit);
            out.targets[i] = limit;
            remaining -= limit;
            continue;
        }
        let lower = f64::from(l.min).max(f64::from(l.nominal).min(hwm));
        let item =
            Item { lower, upper: f64::from(l.max).max(lower), target: lower.max(l.stats.smoothed) };
        out.targets[i] = item.target;
        shared.push((i, item));
    }
    let items: Vec<Item> = shared.iter().map(|(_, it)| *it).collect();
    let allocs = share(to_seats(remaining.max(0.0)), &items, levels, &shared, &mut out.fair_frac);
    for ((i, _), a) in shared.iter().zip(allocs) {
        out.limits[*i] = to_seats(a);
    }
    out
}

/// The non-exempt levels' allocations of `seats`.
fn share(
    seats: u32,
    items: &[Item],
    levels: &[LevelDemand],
    shared: &[(usize, Item)],
    fair_frac: &mut f64,
) -> Vec<f64> {
    match allocate(seats, items) {
        Ok((allocs, frac)) => {
            *fair_frac = frac;
            allocs
        }
        Err(AllocError::UpperSumTooLow(_)) => items.iter().map(|i| i.upper).collect(),
        Err(_) => squeeze(seats, items, levels, shared),
    }
}

/// Too few seats for the lower bounds: every level gives up the same fraction of what it
/// holds above its configured minimum.
fn squeeze(
    seats: u32,
    items: &[Item],
    levels: &[LevelDemand],
    shared: &[(usize, Item)],
) -> Vec<f64> {
    let mins: Vec<f64> = shared.iter().map(|(i, _)| f64::from(levels[*i].min)).collect();
    let slack: f64 = items.iter().zip(&mins).map(|(it, m)| it.lower - m).sum();
    let cut = items.iter().map(|i| i.lower).sum::<f64>() - f64::from(seats);
    let k = if slack > 0.0 { (cut / slack).min(1.0) } else { 1.0 };
    items.iter().zip(&mins).map(|(it, m)| it.lower - k * (it.lower - m)).collect()
}

/// Round half away from zero to whole seats.
fn to_seats(x: f64) -> u32 {
    x.round().clamp(0.0, f64::from(u32::MAX)) as u32
}

#[cfg(test)]
#[path = "borrowing_tests.rs"]
mod tests;
