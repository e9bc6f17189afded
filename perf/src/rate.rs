//! Drives an operation for a warmup and a measured duration, in one of two modes.
//!
//! - Open loop (`--rate R`): request `i` is due at `t0 + i/R` whatever happened before.
//!   Its latency is measured from that intended start, so when the server stalls, the
//!   requests that should have been sent meanwhile carry the wait in their latency
//!   (coordinated omission cannot hide it). At most `max_in_flight` run at once; a request
//!   due while all are busy waits, and the wait counts.
//! - Closed loop (`--concurrency C` alone): C clients send back to back; latency is from
//!   each request's actual start. Good for peak throughput, blind to queueing.
//!
//! The open loop also records its own schedule lag (send time minus intended start): it
//! includes waiting for a free slot (server queueing) and the timer's granularity (about
//! 1 ms), which shows how much of a small latency is the load generator's own.
//!
//! Requests that start during the warmup are run but not recorded. Whatever has not
//! finished at `end + drain` is recorded as stalled ("incomplete"), with the latency it
//! had so far; requests still due but never sent by then too.

use crate::histogram::Histogram;
use crate::stats::{Outcome, Recorder};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until, timeout_at};

/// How requests are issued.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Closed { clients: usize },
    Open { rate: f64, max_in_flight: usize },
}

/// A run's shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub mode: Mode,
    pub warmup: Duration,
    pub duration: Duration,
    /// Time after the end to let requests finish.
    pub drain: Duration,
}

/// A run's instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub t0: Instant,
    pub measure_from: Instant,
    pub end: Instant,
    pub drain_until: Instant,
}

impl Plan {
    /// The instants of a run starting at `t0`.
    pub fn window(&self, t0: Instant) -> Window {
        let measure_from = t0 + self.warmup;
        let end = measure_from + self.duration;
        Window { t0, measure_from, end, drain_until: end + self.drain }
    }
}

/// One request to make: its sequence number and when it was meant to start.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub seq: u64,
    pub intended: Instant,
}

/// When request `i` is due at `rate` per second from `t0`.
pub fn intended_start(t0: Instant, i: u64, rate: f64) -> Instant {
    t0 + Duration::from_secs_f64(i as f64 / rate)
}

/// How many requests are due in `span` at `rate` (those with `i/rate < span`).
pub fn due_count(rate: f64, span: Duration) -> u64 {
    (span.as_secs_f64() * rate).ceil().max(0.0) as u64
}

/// What the driver itself observed.
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// Open loop: send time minus intended start of the measured requests, ns.
    pub schedule_lag: Histogram,
}

/// Run `op` as `plan` says over `win`, recording every measured call under `name`.
pub async fn run<F, Fut>(plan: &Plan, win: Window, rec: Arc<Recorder>, name: &str, op: F) -> RunInfo
where
    F: Fn(Call) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let op = Arc::new(op);
    let name: Arc<str> = Arc::from(name);
    match plan.mode {
        Mode::Closed { clients } => {
            closed(clients, win, rec, name, op).await;
            RunInfo::default()
        }
        Mode::Open { rate, max_in_flight } => open(rate, max_in_flight, win, rec, name, op).await,
    }
}

async fn finish<Fut: Future<Output = Outcome>>(deadline: Instant, fut: Fut) -> Outcome {
    timeout_at(deadline, fut)
        .await
        .unwrap_or_else(|_| Outcome::Stalled { kind: "incomplete".into() })
}

async fn closed<F, Fut>(clients: usize, win: Window, rec: Arc<Recorder>, name: Arc<str>, op: Arc<F>)
where
    F: Fn(Call) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let seq = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    for _ in 0..clients.max(1) {
        let (seq, rec, name, op) = (seq.clone(), rec.clone(), name.clone(), op.clone());
        set.spawn(async move {
            loop {
                let start = Instant::now();
                if start >= win.end {
                    break;
                }
                let call = Call { seq: seq.fetch_add(1, Ordering::Relaxed), intended: start };
                let outcome = finish(win.drain_until, op(call)).await;
                let done = Instant::now();
                if start >= win.measure_from {
                    rec.record(&name, outcome, done - start, done);
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
}

async fn open<F, Fut>(
    rate: f64,
    max_in_flight: usize,
    win: Window,
    rec: Arc<Recorder>,
    name: Arc<str>,
    op: Arc<F>,
) -> RunInfo
where
    F: Fn(Call) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let mut info = RunInfo::default();
    let slots = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let total = due_count(rate, win.end - win.t0);
    let mut set = JoinSet::new();
    for i in 0..total {
        let intended = intended_start(win.t0, i, rate);
        sleep_until(intended).await;
        let Ok(Ok(permit)) = timeout_at(win.drain_until, slots.clone().acquire_owned()).await
        else {
            never_sent(i..total, rate, win, &rec, &name);
            break;
        };
        if intended >= win.measure_from {
            let lag = Instant::now().saturating_duration_since(intended);
            info.schedule_lag.record(u64::try_from(lag.as_nanos()).unwrap_or(u64::MAX));
        }
        let (rec, name, op) = (rec.clone(), name.clone(), op.clone());
        set.spawn(async move {
            let outcome = finish(win.drain_until, op(Call { seq: i, intended })).await;
            let done = Instant::now();
            if intended >= win.measure_from {
                rec.record(&name, outcome, done - intended, done);
            }
            drop(permit);
        });
        while set.try_join_next().is_some() {}
    }
    while set.join_next().await.is_some() {}
    info
}

fn never_sent(seqs: std::ops::Range<u64>, rate: f64, win: Window, rec: &Recorder, name: &str) {
    for i in seqs {
        let intended = intended_start(win.t0, i, rate);
        if intended >= win.measure_from {
            let stalled = Outcome::Stalled { kind: "incomplete".into() };
            rec.record(name, stalled, win.drain_until - intended, win.drain_until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::OpStats;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn intended_starts_follow_the_rate() {
        let t0 = Instant::now();
        assert_eq!(intended_start(t0, 0, 100.0), t0);
        assert_eq!(intended_start(t0, 10, 100.0), t0 + 100 * MS);
        assert_eq!(intended_start(t0, 3, 2.0), t0 + 1500 * MS);
        assert_eq!(due_count(100.0, Duration::from_secs(2)), 200);
        assert_eq!(due_count(3.0, Duration::from_millis(500)), 2);
        let plan = Plan {
            mode: Mode::Closed { clients: 1 },
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(2),
            drain: Duration::from_secs(5),
        };
        let w = plan.window(t0);
        assert_eq!(
            (w.measure_from, w.end, w.drain_until),
            (t0 + 1000 * MS, t0 + 3000 * MS, t0 + 8000 * MS)
        );
    }

    /// A handler that answers in 1 ms, except request 50 which stalls for 1 s.
    async fn stalling(call: Call) -> Outcome {
        let wait = if call.seq == 50 { 1000 * MS } else { MS };
        tokio::time::sleep(wait).await;
        Outcome::Ok { bytes: 0 }
    }

    async fn run_plan(mode: Mode) -> (OpStats, RunInfo) {
        let plan = Plan {
            mode,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(2),
            drain: Duration::from_secs(10),
        };
        let win = plan.window(Instant::now());
        let rec = Arc::new(Recorder::new(win.measure_from));
        let info = run(&plan, win, rec.clone(), "op", stalling).await;
        (rec.snapshot().remove("op").unwrap_or_default(), info)
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_latency_includes_queueing_behind_a_stall() {
        let (s, info) = run_plan(Mode::Open { rate: 100.0, max_in_flight: 1 }).await;
        assert_eq!(s.ok, 200, "every due request is sent");
        assert_eq!(info.schedule_lag.count(), 200);
        assert!(info.schedule_lag.max() >= 990_000_000, "request 51 waited for the stall");
        // Requests due during the 1 s stall waited for it: ~100 of them are slow.
        assert!(s.latency.percentile(50.0) > 50_000_000, "p50 {}", s.latency.percentile(50.0));
        assert!(s.latency.percentile(90.0) > 700_000_000, "p90 {}", s.latency.percentile(90.0));
        assert!(s.latency.max() >= 990_000_000 && s.latency.max() < 1_100_000_000);
    }

    #[tokio::test(start_paused = true)]
    async fn closed_loop_sees_the_stall_once() {
        let (s, _) = run_plan(Mode::Closed { clients: 1 }).await;
        assert!(s.ok > 900, "ok {}", s.ok);
        assert!(s.latency.percentile(99.0) < 2_000_000, "p99 {}", s.latency.percentile(99.0));
        assert!(s.latency.max() >= 1_000_000_000);
    }

    #[tokio::test(start_paused = true)]
    async fn warmup_is_not_recorded_and_stragglers_are_incomplete() {
        let plan = Plan {
            mode: Mode::Open { rate: 10.0, max_in_flight: 1 },
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(1),
            drain: Duration::from_millis(500),
        };
        let win = plan.window(Instant::now());
        let rec = Arc::new(Recorder::new(win.measure_from));
        // Every request takes 300 ms: 20 due at 10/s, but only ~7 can finish before the
        // drain deadline with one in flight at a time.
        run(&plan, win, rec.clone(), "slow", |_| async {
            tokio::time::sleep(300 * MS).await;
            Outcome::Ok { bytes: 0 }
        })
        .await;
        let s = rec.snapshot().remove("slow").unwrap_or_default();
        assert_eq!(s.ok, 0, "the ~7 that finished were all due during the warmup");
        assert_eq!(s.errors["incomplete"], 10, "the 10 measured ones never completed");
        assert!(s.latency.min() >= 500_000_000, "they waited at least the drain");
    }
}
