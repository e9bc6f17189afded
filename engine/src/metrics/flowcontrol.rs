//! Upstream's `apiserver_flowcontrol_*` metrics: per FlowSchema and priority level,
//! requests dispatched, rejected (by reason), their wait, the length of the queue they
//! joined, their execution time, the requests and seats waiting and executing now (the
//! `current_*` gauges, counted by [`Counted`] guards on the request's core) and the
//! dispatch attempts that found too few free seats; per level, its limits (the current
//! one set by borrowing), the seat demand statistics of the last borrowing adjustment and
//! the timing histograms of the sampled seat demand and seat utilization (read from the
//! dispatcher at scrape time); server-wide, `read_vs_write_current_requests`: the
//! requests waiting and executing by kind over upstream's limits, a timing ratio
//! histogram as upstream's, sampled by the `kapi-apf` thread (`flowcontrol::read_write`).
//!
//! Not served, because kapi's model has no true value for them: `current_r`,
//! `dispatch_r`, `latest_s`, `next_s_bounds` and `next_discounted_s_bounds` (kapi's
//! virtual time counts seats dispatched, not upstream's seat-seconds R),
//! `epoch_advance_total` (never rebased), and upstream's deprecated, hidden
//! `request_concurrency_limit` and `request_concurrency_in_use`.

use super::histogram::Histogram;
use super::render::{header, histogram, labels};
use super::{CoreData, histogram_of, with_core};
use crate::app::App;
use crate::flowcontrol::Classified;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// Upstream's `request_wait_duration_seconds` buckets.
pub const WAIT_BUCKETS: &[f64] =
    &[0.0, 0.005, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0];

/// Upstream's `work_estimated_seats` buckets.
pub const SEATS_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 100.0];
/// Upstream's `request_queue_length_after_enqueue` buckets.
pub const QUEUE_LENGTH_BUCKETS: &[f64] = &[0.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];
/// Upstream's `watch_count_samples` buckets.
pub const WATCH_BUCKETS: &[f64] = &[0.0, 1.0, 10.0, 100.0, 1000.0, 10000.0];

/// (flow_schema, priority_level).
pub type FlowKey = (Arc<str>, Arc<str>);

/// One core's flow control figures.
#[derive(Default)]
pub struct FlowData {
    pub dispatched: HashMap<FlowKey, u64>,
    pub rejected: HashMap<(FlowKey, &'static str), u64>,
    /// Wait durations by (key, executed).
    pub waits: HashMap<(FlowKey, bool), Histogram>,
    /// Each request's estimated seats.
    pub seats: HashMap<FlowKey, Histogram>,
    /// Each write's watchers.
    pub watches: HashMap<FlowKey, Histogram>,
    /// The length of the queue each queued request joined.
    pub queue_lengths: HashMap<FlowKey, Histogram>,
    /// Execution times by (key, type: `regular` or `watch`).
    pub executions: HashMap<(FlowKey, &'static str), Histogram>,
    /// Requests and seats waiting and executing now (this core's part).
    pub current: HashMap<FlowKey, Current>,
    /// Dispatch attempts that found free seats, but too few.
    pub no_accommodation: HashMap<FlowKey, u64>,
}

/// The `current_*` gauges of one FlowSchema and priority level.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Current {
    pub inqueue_requests: i64,
    pub inqueue_seats: i64,
    pub executing_requests: i64,
    pub executing_seats: i64,
}

/// Where a counted request is (upstream's `phase` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    Executing,
}

/// A request counted in the `current_*` gauges of its FlowSchema and priority level and in
/// `read_vs_write_current_requests` while this lives.
#[derive(Debug)]
pub struct Counted {
    key: FlowKey,
    seats: i64,
    phase: Phase,
    mutating: bool,
}

impl Counted {
    /// Count a request of `c` taking or asking for `seats` as `phase` from now on.
    pub fn new(c: &Classified, seats: u32, phase: Phase, mutating: bool) -> Counted {
        let counted = Counted { key: key(c), seats: i64::from(seats), phase, mutating };
        counted.add(1);
        counted
    }

    fn add(&self, sign: i64) {
        with_core(|d| {
            if !d.flow.current.contains_key(&self.key) {
                d.flow.current.insert(self.key.clone(), Current::default());
            }
            let Some(e) = d.flow.current.get_mut(&self.key) else { return };
            let (requests, seats) = match self.phase {
                Phase::Waiting => (&mut e.inqueue_requests, &mut e.inqueue_seats),
                Phase::Executing => (&mut e.executing_requests, &mut e.executing_seats),
            };
            *requests += sign;
            *seats += sign * self.seats;
        });
        super::apf_requests(read_write_index(self.phase, self.mutating), sign);
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.add(-1);
    }
}

/// The `read_vs_write_current_requests` series, in the order of [`read_write_index`]:
/// (phase, request_kind).
pub const READ_WRITE: [(&str, &str); 4] = [
    ("waiting", "readOnly"),
    ("waiting", "mutating"),
    ("executing", "readOnly"),
    ("executing", "mutating"),
];

/// Upstream's `read_vs_write_current_requests` buckets.
pub const READ_WRITE_BUCKETS: &[f64] =
    &[0.0, 0.001, 0.01, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0];

/// The index of a (phase, kind) series in [`READ_WRITE`].
pub fn read_write_index(phase: Phase, mutating: bool) -> usize {
    let p = match phase {
        Phase::Waiting => 0,
        Phase::Executing => 2,
    };
    p + usize::from(mutating)
}

fn merge_histograms<K: Clone + Eq + std::hash::Hash>(
    into: &mut HashMap<K, Histogram>,
    from: &HashMap<K, Histogram>,
) {
    for (k, h) in from {
        match into.get_mut(k) {
            Some(t) => t.merge(h),
            None => {
                into.insert(k.clone(), h.clone());
            }
        }
    }
}

impl FlowData {
    pub fn merge(&mut self, other: &FlowData) {
        for (k, v) in &other.dispatched {
            *self.dispatched.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.rejected {
            *self.rejected.entry(k.clone()).or_default() += v;
        }
        merge_histograms(&mut self.waits, &other.waits);
        merge_histograms(&mut self.seats, &other.seats);
        merge_histograms(&mut self.watches, &other.watches);
        merge_histograms(&mut self.queue_lengths, &other.queue_lengths);
        merge_histograms(&mut self.executions, &other.executions);
        for (k, v) in &other.current {
            let t = self.current.entry(k.clone()).or_default();
            t.inqueue_requests += v.inqueue_requests;
            t.inqueue_seats += v.inqueue_seats;
            t.executing_requests += v.executing_requests;
            t.executing_seats += v.executing_seats;
        }
        for (k, v) in &other.no_accommodation {
            *self.no_accommodation.entry(k.clone()).or_default() += v;
        }
    }
}

fn key(c: &Classified) -> FlowKey {
    (c.schema_name.clone(), c.level.name().clone())
}

/// A request got its seats.
pub fn dispatched(c: &Classified) {
    with_core(|d: &mut CoreData| *d.flow.dispatched.entry(key(c)).or_default() += 1);
}

/// A request was refused (`queue-full`, `concurrency-limit`, `time-out`).
pub fn rejected(c: &Classified, reason: &'static str) {
    with_core(|d| *d.flow.rejected.entry((key(c), reason)).or_default() += 1);
}

/// A request's work estimate: its seats, and for a write the watchers it counted.
pub fn estimated(c: &Classified, seats: u32, watchers: Option<u64>) {
    with_core(|d| {
        histogram_of(&mut d.flow.seats, &key(c), SEATS_BUCKETS).observe(f64::from(seats));
        if let Some(n) = watchers {
            histogram_of(&mut d.flow.watches, &key(c), WATCH_BUCKETS).observe(n as f64);
        }
    });
}

/// A request waited `waited` for its seats, then ran (`executed`) or not.
pub fn waited(c: &Classified, waited: Duration, executed: bool) {
    with_core(|d| {
        histogram_of(&mut d.flow.waits, &(key(c), executed), WAIT_BUCKETS)
            .observe(waited.as_secs_f64())
    });
}

/// A request joined a queue of `length` requests (itself included).
pub fn queued(c: &Classified, length: usize) {
    with_core(|d| {
        histogram_of(&mut d.flow.queue_lengths, &key(c), QUEUE_LENGTH_BUCKETS)
            .observe(length as f64)
    });
}

/// A queued request found free seats, but too few, `times` times.
pub fn no_accommodation(c: &Classified, times: u32) {
    if times > 0 {
        with_core(|d| *d.flow.no_accommodation.entry(key(c)).or_default() += u64::from(times));
    }
}

/// A request executed for `took` (a watch: until its response started).
pub fn executed(c: &Classified, watch: bool, took: Duration) {
    let kind = if watch { "watch" } else { "regular" };
    with_core(|d| {
        histogram_of(&mut d.flow.executions, &(key(c), kind), WAIT_BUCKETS)
            .observe(took.as_secs_f64())
    });
}

/// The flow control section of /metrics.
pub fn render(out: &mut String, d: &FlowData, app: &App) {
    flows(out, d);
    current(out, d);
    levels(out, app);
    read_write(out, &app.flowcontrol.read_write.snapshot(std::time::Instant::now()));
}

/// The `current_*` gauges and the no-accommodation counter, per FlowSchema and priority
/// level.
fn current(out: &mut String, d: &FlowData) {
    let pairs =
        |k: &FlowKey| [("flow_schema", k.0.to_string()), ("priority_level", k.1.to_string())];
    type Pick = fn(&Current) -> i64;
    let gauges: [(&str, &str, Pick); 4] = [
        (
            "apiserver_flowcontrol_current_executing_requests",
            "[BETA] Number of requests in initial (for a WATCH) or any (for a non-WATCH) execution stage in the API Priority and Fairness subsystem",
            |c| c.executing_requests,
        ),
        (
            "apiserver_flowcontrol_current_executing_seats",
            "[BETA] Concurrency (number of seats) occupied by the currently executing (initial stage for a WATCH, any stage otherwise) requests in the API Priority and Fairness subsystem",
            |c| c.executing_seats,
        ),
        (
            "apiserver_flowcontrol_current_inqueue_requests",
            "[BETA] Number of requests currently pending in queues of the API Priority and Fairness subsystem",
            |c| c.inqueue_requests,
        ),
        (
            "apiserver_flowcontrol_current_inqueue_seats",
            "[ALPHA] Number of seats currently pending in queues of the API Priority and Fairness subsystem",
            |c| c.inqueue_seats,
        ),
    ];
    let current = sorted(&d.current);
    for (name, help, pick) in gauges {
        header(out, name, "gauge", help);
        for (k, c) in &current {
            let _ = writeln!(out, "{name}{} {}", labels(&refs(&pairs(k))), pick(c));
        }
    }
    let name = "apiserver_flowcontrol_request_dispatch_no_accommodation_total";
    header(
        out,
        name,
        "counter",
        "[ALPHA] Number of times a dispatch attempt resulted in a non accommodation due to lack of available seats",
    );
    for (k, n) in sorted(&d.no_accommodation) {
        let _ = writeln!(out, "{name}{} {n}", labels(&refs(&pairs(k))));
    }
}

/// `read_vs_write_current_requests`: one timing ratio histogram per phase and kind.
fn read_write(out: &mut String, snapshots: &[kapi_flowcontrol::timing::TimingSnapshot; 4]) {
    let name = "apiserver_flowcontrol_read_vs_write_current_requests";
    header(
        out,
        name,
        "histogram",
        "[ALPHA] Observations, at the end of every nanosecond, of the number of requests (as a fraction of the relevant limit) waiting or in regular stage of execution",
    );
    for ((phase, kind), t) in READ_WRITE.iter().zip(snapshots) {
        timing(out, name, &[("phase", phase), ("request_kind", kind)], t);
    }
}

/// The per FlowSchema and priority level series.
fn flows(out: &mut String, d: &FlowData) {
    let pairs =
        |k: &FlowKey| [("flow_schema", k.0.to_string()), ("priority_level", k.1.to_string())];
    let name = "apiserver_flowcontrol_dispatched_requests_total";
    header(
        out,
        name,
        "counter",
        "[BETA] Number of requests executed by API Priority and Fairness subsystem",
    );
    for (k, n) in sorted(&d.dispatched) {
        let p = pairs(k);
        let _ = writeln!(out, "{name}{} {n}", labels(&refs(&p)));
    }
    let name = "apiserver_flowcontrol_rejected_requests_total";
    header(
        out,
        name,
        "counter",
        "[BETA] Number of requests rejected by API Priority and Fairness subsystem",
    );
    for ((k, reason), n) in sorted(&d.rejected) {
        let mut p = refs(&pairs(k)).iter().map(|(a, b)| (*a, b.to_string())).collect::<Vec<_>>();
        p.push(("reason", reason.to_string()));
        let _ = writeln!(out, "{name}{} {n}", labels(&refs(&p)));
    }
    let name = "apiserver_flowcontrol_request_wait_duration_seconds";
    header(out, name, "histogram", "[BETA] Length of time a request spent waiting in its queue");
    for ((k, executed), h) in sorted(&d.waits) {
        let mut p = vec![("execute", executed.to_string())];
        p.extend(pairs(k));
        histogram(out, name, &refs(&p), h);
    }
    let name = "apiserver_flowcontrol_work_estimated_seats";
    header(
        out,
        name,
        "histogram",
        "[ALPHA] Number of estimated seats (maximum of initial and final seats) associated with requests in API Priority and Fairness",
    );
    for (k, h) in sorted(&d.seats) {
        histogram(out, name, &refs(&pairs(k)), h);
    }
    let name = "apiserver_flowcontrol_watch_count_samples";
    header(
        out,
        name,
        "histogram",
        "[ALPHA] count of watchers for mutating requests in API Priority and Fairness",
    );
    for (k, h) in sorted(&d.watches) {
        histogram(out, name, &refs(&pairs(k)), h);
    }
    let name = "apiserver_flowcontrol_request_queue_length_after_enqueue";
    header(
        out,
        name,
        "histogram",
        "[ALPHA] Length of queue in the API Priority and Fairness subsystem, as seen by each request after it is enqueued",
    );
    for (k, h) in sorted(&d.queue_lengths) {
        histogram(out, name, &refs(&pairs(k)), h);
    }
    let name = "apiserver_flowcontrol_request_execution_seconds";
    header(
        out,
        name,
        "histogram",
        "[ALPHA] Duration of initial stage (for a WATCH) or any (for a non-WATCH) stage of request execution in the API Priority and Fairness subsystem",
    );
    for ((k, kind), h) in sorted(&d.executions) {
        let mut p = pairs(k).to_vec();
        p.push(("type", kind.to_string()));
        histogram(out, name, &refs(&p), h);
    }
}

/// Per-level gauges, read from the dispatcher.
fn levels(out: &mut String, app: &App) {
    let levels = app.flowcontrol.dispatcher.levels();
    let seats = app.flowcontrol.dispatcher.server_seats();
    let name = "apiserver_flowcontrol_upper_limit_seats";
    header(
        out,
        name,
        "gauge",
        "[ALPHA] Configured upper bound on number of execution seats available to each priority level",
    );
    for l in &levels {
        let _ = writeln!(
            out,
            "{name}{} {}",
            labels(&[("priority_level", l.name())]),
            l.limits().max(seats)
        );
    }
    let gauges: [(&str, &str, fn(&kapi_flowcontrol::Level) -> u64); 3] = [
        (
            "apiserver_flowcontrol_nominal_limit_seats",
            "[BETA] Nominal number of execution seats configured for each priority level",
            |l| l.limits().nominal.into(),
        ),
        (
            "apiserver_flowcontrol_current_limit_seats",
            "[ALPHA] current derived number of execution seats available to each priority level",
            |l| l.current_limit().into(),
        ),
        (
            "apiserver_flowcontrol_lower_limit_seats",
            "[ALPHA] Configured lower bound on number of execution seats available to each priority level",
            |l| l.limits().min().into(),
        ),
    ];
    for (name, help, value) in gauges {
        header(out, name, "gauge", help);
        for l in &levels {
            let _ = writeln!(out, "{name}{} {}", labels(&[("priority_level", l.name())]), value(l));
        }
    }
    demand(out, &levels);
    timings(out, &levels, std::time::Instant::now());
    let name = "apiserver_flowcontrol_seat_fair_frac";
    header(
        out,
        name,
        "gauge",
        "[ALPHA] Fair fraction of server's concurrency to allocate to each priority level that can use it",
    );
    let _ = writeln!(out, "{name} {}", app.flowcontrol.dispatcher.fair_frac());
}

/// The seat demand statistics and targets of the last borrowing adjustment.
fn demand(out: &mut String, levels: &[Arc<kapi_flowcontrol::Level>]) {
    let stats: Vec<_> = levels.iter().map(|l| l.demand_stats()).collect();
    type Pick = fn(&(kapi_flowcontrol::demand::DemandStats, f64)) -> f64;
    let gauges: [(&str, &str, Pick); 5] = [
        (
            "apiserver_flowcontrol_demand_seats_high_watermark",
            "[ALPHA] High watermark, over last adjustment period, of demand_seats",
            |s| s.0.high_watermark,
        ),
        (
            "apiserver_flowcontrol_demand_seats_average",
            "[ALPHA] Time-weighted average, over last adjustment period, of demand_seats",
            |s| s.0.average,
        ),
        (
            "apiserver_flowcontrol_demand_seats_stdev",
            "[ALPHA] Time-weighted standard deviation, over last adjustment period, of demand_seats",
            |s| s.0.deviation,
        ),
        ("apiserver_flowcontrol_demand_seats_smoothed", "[ALPHA] Smoothed seat demands", |s| {
            s.0.smoothed
        }),
        ("apiserver_flowcontrol_target_seats", "[ALPHA] Seat allocation targets", |s| s.1),
    ];
    for (name, help, pick) in gauges {
        header(out, name, "gauge", help);
        for (l, s) in levels.iter().zip(&stats) {
            let _ = writeln!(out, "{name}{} {}", labels(&[("priority_level", l.name())]), pick(s));
        }
    }
}

/// The timing histograms of each level's sampled seat demand (over its nominal seats)
/// and seat utilization (over its current limit).
fn timings(out: &mut String, levels: &[Arc<kapi_flowcontrol::Level>], now: std::time::Instant) {
    let name = "apiserver_flowcontrol_demand_seats";
    header(
        out,
        name,
        "histogram",
        "[ALPHA] Observations, at the end of every nanosecond, of (the number of seats each priority level could use) / (nominal number of seats for that level)",
    );
    for l in levels {
        if let Some(t) = l.demand_timing(now) {
            timing(out, name, &[("priority_level", l.name())], &t);
        }
    }
    let name = "apiserver_flowcontrol_priority_level_seat_utilization";
    header(
        out,
        name,
        "histogram",
        "[ALPHA] Observations, at the end of every nanosecond, of utilization of seats for any stage of execution (but only initial stage for WATCHes)",
    );
    for l in levels.iter().filter(|l| !l.is_exempt()) {
        let t = l.utilization_timing(now);
        timing(out, name, &[("phase", "executing"), ("priority_level", l.name())], &t);
    }
}

/// One timing histogram's series.
fn timing(
    out: &mut String,
    name: &str,
    pairs: &[(&str, &str)],
    t: &kapi_flowcontrol::timing::TimingSnapshot,
) {
    for (le, n) in &t.buckets {
        let le = super::histogram::format_bound(*le);
        let mut p = pairs.to_vec();
        p.push(("le", &le));
        let _ = writeln!(out, "{name}_bucket{} {n}", labels(&p));
    }
    let mut p = pairs.to_vec();
    p.push(("le", "+Inf"));
    let _ = writeln!(out, "{name}_bucket{} {}", labels(&p), t.count);
    let _ = writeln!(out, "{name}_sum{} {}", labels(pairs), t.sum);
    let _ = writeln!(out, "{name}_count{} {}", labels(pairs), t.count);
}

fn refs<'a>(p: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    p.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn sorted<K: Ord, V>(m: &HashMap<K, V>) -> Vec<(&K, &V)> {
    let mut v: Vec<(&K, &V)> = m.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use kapi_flowcontrol::{Dispatcher, LevelConfig, Queuing};
    use std::time::Instant;

    fn key() -> FlowKey {
        ("fs".into(), "pl".into())
    }

    #[test]
    fn queue_lengths_and_execution_times_have_upstreams_names_labels_and_buckets() {
        let mut d = FlowData::default();
        histogram_of(&mut d.queue_lengths, &key(), QUEUE_LENGTH_BUCKETS).observe(12.0);
        histogram_of(&mut d.executions, &(key(), "watch"), WAIT_BUCKETS).observe(0.3);
        let mut out = String::new();
        flows(&mut out, &d);
        let q = "apiserver_flowcontrol_request_queue_length_after_enqueue";
        assert!(out.contains(&format!("# TYPE {q} histogram\n")), "{out}");
        assert!(out.contains(&format!(
            "{q}_bucket{{flow_schema=\"fs\",priority_level=\"pl\",le=\"10\"}} 0\n"
        )));
        assert!(out.contains(&format!(
            "{q}_bucket{{flow_schema=\"fs\",priority_level=\"pl\",le=\"25\"}} 1\n"
        )));
        let e = "apiserver_flowcontrol_request_execution_seconds";
        let labels = "flow_schema=\"fs\",priority_level=\"pl\",type=\"watch\"";
        assert!(out.contains(&format!("{e}_bucket{{{labels},le=\"0.5\"}} 1\n")), "{out}");
        assert!(out.contains(&format!("{e}_count{{{labels}}} 1\n")), "{out}");
    }

    #[test]
    fn demand_and_utilization_are_timing_histograms_per_level() {
        let dispatcher = Dispatcher::new(10, 1);
        dispatcher.configure(&[LevelConfig {
            name: "pl".into(),
            uid: "u".into(),
            exempt: false,
            nominal_concurrency_shares: 1,
            lendable_percent: 0,
            borrowing_limit_percent: None,
            queuing: Some(Queuing { queues: 4, hand_size: 1, queue_length_limit: 5 }),
        }]);
        let later = Instant::now() + std::time::Duration::from_secs(1);
        let mut out = String::new();
        timings(&mut out, &dispatcher.levels(), later);
        let d = "apiserver_flowcontrol_demand_seats";
        assert!(out.contains(&format!("# TYPE {d} histogram\n")), "{out}");
        // An idle level: all its time (nanoseconds) at a demand of 0, the lowest bucket.
        let lowest = out
            .lines()
            .find_map(|l| {
                l.strip_prefix(&format!("{d}_bucket{{priority_level=\"pl\",le=\"0.2\"}} "))
            })
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{out}"));
        assert!(lowest >= 1e9, "{out}");
        assert!(out.contains(&format!("{d}_sum{{priority_level=\"pl\"}} 0\n")), "{out}");
        let u = "apiserver_flowcontrol_priority_level_seat_utilization";
        assert!(
            out.contains(&format!(
                "{u}_bucket{{phase=\"executing\",priority_level=\"pl\",le=\"0\"}} "
            )),
            "{out}"
        );
    }
}
