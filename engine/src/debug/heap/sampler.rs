//! Per-thread sampling state and the interval math: a byte countdown drawn from an
//! exponential distribution (a Poisson process over allocated bytes), as Go's runtime.
//!
//! Invariants: the thread-local state is `const`-initialized and has no destructor, so
//! reading it never allocates, never registers anything and works during thread exit.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Go's default `runtime.MemProfileRate`: one sample per 512 KiB allocated on average.
pub const DEFAULT_RATE: u64 = 512 * 1024;

/// The mean sampling interval in bytes; 0 turns sampling off.
static RATE: AtomicU64 = AtomicU64::new(DEFAULT_RATE);

/// Seeds the threads' generators apart.
static SEEDS: AtomicU64 = AtomicU64::new(0x2545_f491_4f6c_dd1d);

pub fn rate() -> u64 {
    RATE.load(Ordering::Relaxed)
}

/// Set the mean interval (bytes); threads pick it up at their next sample.
pub fn set_rate(bytes: u64) {
    RATE.store(bytes, Ordering::Relaxed);
}

/// One thread's sampling state.
pub struct ThreadState {
    /// Bytes left until the next sample; at or below zero the next allocation samples.
    pub countdown: Cell<i64>,
    /// xorshift64* state; 0 until this thread's first trip through the slow path.
    rng: Cell<u64>,
    /// Set while this thread is inside the sampler (re-entry passes through).
    busy: Cell<bool>,
}

thread_local! {
    pub static STATE: ThreadState = const {
        ThreadState { countdown: Cell::new(0), rng: Cell::new(0), busy: Cell::new(false) }
    };
}

/// Run `f` with this thread's busy flag set; `None` (and `f` not run) if it already was.
pub fn exclusive<R>(f: impl FnOnce(&ThreadState) -> R) -> Option<R> {
    STATE
        .try_with(|s| {
            if s.busy.replace(true) {
                return None;
            }
            let out = f(s);
            s.busy.set(false);
            Some(out)
        })
        .ok()
        .flatten()
}

/// Whether this thread is inside the sampler now.
pub fn busy() -> bool {
    STATE.try_with(|s| s.busy.get()).unwrap_or(true)
}

/// The next pseudo-random 64 bits (xorshift64*; `state` must be non-zero).
pub fn next_u64(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// An exponentially distributed interval with mean `mean` bytes, at least 1, at most
/// 64 means (the tail beyond that has probability e^-64).
pub fn next_interval(state: &mut u64, mean: u64) -> i64 {
    let bits = next_u64(state) >> 11;
    let u = (bits + 1) as f64 / (1u64 << 53) as f64; // in (0, 1]
    let x = -u.ln() * mean as f64;
    x.clamp(1.0, mean as f64 * 64.0) as i64
}

/// Whether the allocation that brought the countdown to zero should be sampled, and the
/// next countdown either way. A thread's first trip only starts its countdown.
pub fn on_countdown_expired(s: &ThreadState) -> bool {
    let mean = rate();
    if mean == 0 {
        s.countdown.set(i64::MAX);
        return false;
    }
    let mut rng = s.rng.get();
    let first = rng == 0;
    if first {
        rng = seed(s);
    }
    s.countdown.set(next_interval(&mut rng, mean));
    s.rng.set(rng);
    !first
}

fn seed(s: &ThreadState) -> u64 {
    let n = SEEDS.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    let addr = s as *const ThreadState as u64;
    let seed = n ^ addr.rotate_left(32);
    if seed == 0 { 1 } else { seed }
}

/// Go's unsampling: `count` samples of `bytes` in all stand for `count / p` allocations,
/// where `p = 1 - exp(-avg/rate)` is the probability of sampling one of average size.
pub fn unsample(count: u64, bytes: u64, rate: u64) -> (i64, i64) {
    if count == 0 || bytes == 0 {
        return (0, 0);
    }
    if rate <= 1 {
        return (count as i64, bytes as i64);
    }
    let avg = bytes as f64 / count as f64;
    let scale = 1.0 / (1.0 - (-avg / rate as f64).exp());
    ((count as f64 * scale) as i64, (bytes as f64 * scale) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_exponential_with_the_mean() {
        let mut rng = 12345u64;
        let mean = DEFAULT_RATE;
        let n = 200_000;
        let draws: Vec<i64> = (0..n).map(|_| next_interval(&mut rng, mean)).collect();
        assert!(draws.iter().all(|&d| d >= 1 && d <= 64 * mean as i64));
        let avg = draws.iter().sum::<i64>() as f64 / n as f64;
        assert!((avg / mean as f64 - 1.0).abs() < 0.02, "mean {avg}");
        // P(X > mean) = 1/e for an exponential distribution.
        let above = draws.iter().filter(|&&d| d > mean as i64).count() as f64 / n as f64;
        assert!((above - (-1f64).exp()).abs() < 0.01, "P(X > mean) = {above}");
        // Memoryless: P(X > 2 mean | X > mean) = 1/e as well.
        let above2 = draws.iter().filter(|&&d| d > 2 * mean as i64).count() as f64 / n as f64;
        assert!((above2 / above - (-1f64).exp()).abs() < 0.02);
    }

    /// Drive a countdown as the allocator does; count how many allocations sample.
    fn simulate(size: i64, allocations: usize, mean: u64) -> usize {
        let mut rng = 99u64;
        let mut countdown = next_interval(&mut rng, mean);
        let mut sampled = 0;
        for _ in 0..allocations {
            countdown -= size;
            if countdown <= 0 {
                sampled += 1;
                countdown = next_interval(&mut rng, mean);
            }
        }
        sampled
    }

    #[test]
    fn allocations_sample_with_go_probability_and_unsample_back() {
        let mean = 4096u64;
        for size in [64i64, 1024, 4096, 65536] {
            let n = 200_000;
            let sampled = simulate(size, n, mean);
            let p = 1.0 - (-(size as f64) / mean as f64).exp();
            let got = sampled as f64 / n as f64;
            assert!((got / p - 1.0).abs() < 0.05, "size {size}: {got} vs {p}");
            let (objects, bytes) = unsample(sampled as u64, sampled as u64 * size as u64, mean);
            assert!((objects as f64 / n as f64 - 1.0).abs() < 0.05, "size {size}: {objects}");
            assert_eq!(bytes / size, objects);
        }
    }

    #[test]
    fn unsample_edge_cases() {
        assert_eq!(unsample(0, 0, DEFAULT_RATE), (0, 0));
        assert_eq!(unsample(3, 300, 1), (3, 300));
        // Huge blocks are always sampled: no scaling.
        assert_eq!(unsample(2, 2 << 40, DEFAULT_RATE), (2, 2 << 40));
    }

    #[test]
    fn first_trip_only_starts_the_countdown_and_rate_zero_disables() {
        let s = ThreadState { countdown: Cell::new(0), rng: Cell::new(0), busy: Cell::new(false) };
        assert!(!on_countdown_expired(&s));
        assert!(s.countdown.get() >= 1);
        s.countdown.set(0);
        assert!(on_countdown_expired(&s));
        assert!(exclusive(|_| exclusive(|_| ()).is_none()).unwrap());
        assert!(!busy());
    }
}
