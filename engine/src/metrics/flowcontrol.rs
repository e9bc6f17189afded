//! Upstream's `apiserver_flowcontrol_*` metrics: per FlowSchema and priority level,
//! requests dispatched, rejected (by reason) and their wait; per level, its limits (the
//! current one set by borrowing), the seats in use, the requests waiting and the seat
//! demand statistics of the last borrowing adjustment (read from the dispatcher at
//! scrape time).

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
pub const SEATS_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 10.0];
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

/// The flow control section of /metrics.
pub fn render(out: &mut String, d: &FlowData, app: &App) {
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
    levels(out, app);
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
    let gauges: [(&str, &str, fn(&kapi_flowcontrol::Level) -> u64); 5] = [
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
        (
            "apiserver_flowcontrol_current_executing_seats",
            "[BETA] Concurrency (number of seats) occupied by the currently executing (initial stage for a WATCH, any stage otherwise) requests in the API Priority and Fairness subsystem",
            |l| l.seats_in_use().into(),
        ),
        (
            "apiserver_flowcontrol_current_inqueue_requests",
            "[BETA] Number of requests currently pending in queues of the API Priority and Fairness subsystem",
            |l| l.waiting().into(),
        ),
    ];
    for (name, help, value) in gauges {
        header(out, name, "gauge", help);
        for l in &levels {
            let _ = writeln!(out, "{name}{} {}", labels(&[("priority_level", l.name())]), value(l));
        }
    }
    demand(out, &levels);
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

fn refs<'a>(p: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    p.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn sorted<K: Ord, V>(m: &HashMap<K, V>) -> Vec<(&K, &V)> {
    let mut v: Vec<(&K, &V)> = m.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}
