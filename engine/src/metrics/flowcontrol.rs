//! Upstream's `apiserver_flowcontrol_*` metrics: per FlowSchema and priority level,
//! requests dispatched, rejected (by reason) and their wait; per level, its limits, the
//! seats in use and the requests waiting (read from the dispatcher at scrape time).

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

/// (flow_schema, priority_level).
pub type FlowKey = (Arc<str>, Arc<str>);

/// One core's flow control figures.
#[derive(Default)]
pub struct FlowData {
    pub dispatched: HashMap<FlowKey, u64>,
    pub rejected: HashMap<(FlowKey, &'static str), u64>,
    /// Wait durations by (key, executed).
    pub waits: HashMap<(FlowKey, bool), Histogram>,
}

impl FlowData {
    pub fn merge(&mut self, other: &FlowData) {
        for (k, v) in &other.dispatched {
            *self.dispatched.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.rejected {
            *self.rejected.entry(k.clone()).or_default() += v;
        }
        for (k, h) in &other.waits {
            match self.waits.get_mut(k) {
                Some(t) => t.merge(h),
                None => {
                    self.waits.insert(k.clone(), h.clone());
                }
            }
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
}

fn refs<'a>(p: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    p.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn sorted<K: Ord, V>(m: &HashMap<K, V>) -> Vec<(&K, &V)> {
    let mut v: Vec<(&K, &V)> = m.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}
