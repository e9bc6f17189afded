//! The `Retry-After` a level's 429s carry, as upstream's dropped-requests tracker
//! decides it: it starts at 1 s; a second that begins after at least `3 * retryAfter`
//! drops in the last `retryAfter` seconds doubles it (at most once per `retryAfter`
//! seconds, up to 32 s, as TCP backs off); fewer than `retryAfter` drops in that window
//! bring it down by one second.
//!
//! Counting a drop in the current second is one atomic add; a new second takes a short
//! lock (at most once per second per level).

use parking_lot::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

/// The largest `Retry-After`, in seconds.
pub const MAX_RETRY_AFTER: i64 = 32;

#[derive(Debug, Default)]
struct History {
    /// (second, drops) of past seconds, the last [`MAX_RETRY_AFTER`] seconds at most.
    seconds: Vec<(i64, i64)>,
    last_raise: i64,
}

/// One level's drops and its current `Retry-After`.
#[derive(Debug)]
pub struct RetryAfter {
    current_second: AtomicI64,
    current_count: AtomicI64,
    retry_after: AtomicI64,
    history: Mutex<History>,
}

impl Default for RetryAfter {
    fn default() -> Self {
        RetryAfter {
            current_second: AtomicI64::new(i64::MIN),
            current_count: AtomicI64::new(0),
            retry_after: AtomicI64::new(1),
            history: Mutex::new(History::default()),
        }
    }
}

impl RetryAfter {
    /// The `Retry-After` to send now, in seconds.
    pub fn get(&self) -> i64 {
        self.retry_after.load(Ordering::Acquire)
    }

    /// A request was dropped at `unix` (seconds).
    pub fn dropped(&self, unix: i64) {
        if self.current_second.load(Ordering::Acquire) == unix {
            self.current_count.fetch_add(1, Ordering::AcqRel);
            return;
        }
        let mut h = self.history.lock();
        if self.current_second.load(Ordering::Acquire) == unix {
            self.current_count.fetch_add(1, Ordering::AcqRel);
            return;
        }
        let (second, count) = (
            self.current_second.load(Ordering::Acquire),
            self.current_count.load(Ordering::Acquire),
        );
        if second != i64::MIN {
            h.seconds.push((second, count));
            h.seconds.retain(|(s, _)| second - s <= MAX_RETRY_AFTER);
        }
        self.current_count.store(1, Ordering::Release);
        self.current_second.store(unix, Ordering::Release);
        self.update(&mut h, unix);
    }

    fn update(&self, h: &mut History, unix: i64) {
        let retry = self.get();
        let drops: i64 =
            h.seconds.iter().filter(|(s, _)| unix - s <= retry && *s < unix).map(|(_, n)| n).sum();
        if unix - h.last_raise >= retry && drops >= 3 * retry {
            self.retry_after.store((retry * 2).min(MAX_RETRY_AFTER), Ordering::Release);
            h.last_raise = unix;
        } else if drops < retry && retry > 1 {
            self.retry_after.store(retry - 1, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_starts_at_one_second() {
        assert_eq!(RetryAfter::default().get(), 1);
    }

    #[test]
    fn many_drops_double_it_and_quiet_seconds_bring_it_down() {
        let r = RetryAfter::default();
        for _ in 0..5 {
            r.dropped(100);
        }
        // The next second looks at second 100: 5 drops >= 3 * 1.
        r.dropped(101);
        assert_eq!(r.get(), 2);
        for _ in 0..10 {
            r.dropped(102);
        }
        // Raised at 101: not again before 103.
        r.dropped(103);
        assert_eq!(r.get(), 4);
        // A quiet stretch: one drop now and then brings it down a second at a time.
        r.dropped(120);
        assert_eq!(r.get(), 3);
        r.dropped(140);
        assert_eq!(r.get(), 2);
    }

    #[test]
    fn it_never_passes_thirty_two_seconds() {
        let r = RetryAfter::default();
        let mut t = 0;
        for _ in 0..20 {
            for _ in 0..200 {
                r.dropped(t);
            }
            t += 40;
        }
        assert!(r.get() <= MAX_RETRY_AFTER);
    }
}
