//! What a run measured, per operation: a latency histogram of the successful requests
//! (and of the stalled ones, whose latency is a lower bound), counts of errors by kind
//! with the first message of each, bytes received, and completions per second of the
//! measurement window (throughput over time).

use crate::histogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How one operation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Success, with the response size in bytes.
    Ok { bytes: u64 },
    /// A quick failure (status or transport error): counted, latency not recorded.
    Failed { kind: String, detail: String },
    /// No answer within the time limit: counted, and its latency so far recorded.
    Stalled { kind: String },
}

/// Statistics of one operation.
#[derive(Debug, Clone, Default)]
pub struct OpStats {
    pub latency: Histogram,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    /// First detail seen of each error kind.
    pub error_samples: BTreeMap<String, String>,
    pub bytes: u64,
    /// Successful completions in each second of the window.
    pub timeline: Vec<u64>,
}

impl OpStats {
    /// Record `outcome` that took `latency` and ended `since_start` into the window.
    pub fn record(&mut self, outcome: Outcome, latency: Duration, since_start: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        match outcome {
            Outcome::Ok { bytes } => {
                self.ok += 1;
                self.bytes += bytes;
                self.latency.record(nanos);
                let second = since_start.as_secs() as usize;
                if second >= self.timeline.len() {
                    self.timeline.resize(second + 1, 0);
                }
                self.timeline[second] += 1;
            }
            Outcome::Failed { kind, detail } => {
                self.error_samples.entry(kind.clone()).or_insert(detail);
                *self.errors.entry(kind).or_default() += 1;
            }
            Outcome::Stalled { kind } => {
                self.latency.record(nanos);
                *self.errors.entry(kind).or_default() += 1;
            }
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Add everything `other` recorded.
    pub fn merge(&mut self, other: &OpStats) {
        self.latency.merge(&other.latency);
        self.ok += other.ok;
        self.bytes += other.bytes;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.error_samples {
            self.error_samples.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if other.timeline.len() > self.timeline.len() {
            self.timeline.resize(other.timeline.len(), 0);
        }
        for (mine, theirs) in self.timeline.iter_mut().zip(&other.timeline) {
            *mine += theirs;
        }
    }
}

/// Thread-safe collection of every operation's statistics for one window.
#[derive(Debug)]
pub struct Recorder {
    window_start: Instant,
    ops: Mutex<BTreeMap<String, OpStats>>,
}

impl Recorder {
    /// A recorder whose timeline starts at `window_start`.
    pub fn new(window_start: Instant) -> Recorder {
        Recorder { window_start, ops: Mutex::new(BTreeMap::new()) }
    }

    pub fn window_start(&self) -> Instant {
        self.window_start
    }

    /// Record one operation named `op` that ended at `done`.
    pub fn record(&self, op: &str, outcome: Outcome, latency: Duration, done: Instant) {
        let since = done.saturating_duration_since(self.window_start);
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        ops.entry(op.to_owned()).or_default().record(outcome, latency, since);
    }

    /// Merge statistics gathered elsewhere (e.g. by one watcher).
    pub fn merge(&self, op: &str, stats: &OpStats) {
        let mut ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        ops.entry(op.to_owned()).or_default().merge(stats);
    }

    /// Successes and errors so far, over all operations.
    pub fn totals(&self) -> (u64, u64) {
        let ops = self.ops.lock().unwrap_or_else(|e| e.into_inner());
        ops.values().fold((0, 0), |(ok, err), s| (ok + s.ok, err + s.error_count()))
    }

    /// A copy of everything recorded.
    pub fn snapshot(&self) -> BTreeMap<String, OpStats> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn outcomes_are_counted_by_kind() {
        let mut s = OpStats::default();
        s.record(Outcome::Ok { bytes: 10 }, ms(2), ms(100));
        s.record(Outcome::Ok { bytes: 5 }, ms(4), ms(1500));
        let failed = |d: &str| Outcome::Failed { kind: "http 409".into(), detail: d.into() };
        s.record(failed("first"), ms(1), ms(1600));
        s.record(failed("second"), ms(1), ms(1700));
        s.record(Outcome::Stalled { kind: "timeout".into() }, ms(60_000), ms(2100));
        assert_eq!((s.ok, s.bytes, s.error_count()), (2, 15, 3));
        assert_eq!(s.errors["http 409"], 2);
        assert_eq!(s.error_samples["http 409"], "first");
        assert_eq!(s.latency.count(), 3, "stalled latency is kept as a lower bound");
        assert_eq!(s.latency.max(), 60_000_000_000);
        assert_eq!(s.timeline, vec![1, 1]);
    }

    #[test]
    fn recorder_merges_and_totals() {
        let start = Instant::now();
        let r = Recorder::new(start);
        r.record("get", Outcome::Ok { bytes: 1 }, ms(1), start + ms(10));
        let mut other = OpStats::default();
        other.record(Outcome::Ok { bytes: 1 }, ms(3), ms(2500));
        other.record(
            Outcome::Failed { kind: "connect".into(), detail: String::new() },
            ms(0),
            ms(0),
        );
        r.merge("get", &other);
        assert_eq!(r.totals(), (2, 1));
        let snap = r.snapshot();
        assert_eq!(snap["get"].timeline, vec![1, 0, 1]);
        assert_eq!(snap["get"].latency.max(), 3_000_000);
    }
}
