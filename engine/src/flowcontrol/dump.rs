//! The debug dumps upstream serves under `/debug/api_priority_and_fairness/`:
//! `dump_priority_levels` (a row per level), `dump_queues` (a row per queue) and
//! `dump_requests` (a row per waiting request), as text tables whose cells end in `,`
//! and are aligned as Go's tabwriter aligns them (minimum width 8, one space of padding).
//!
//! Levels' figures count every core. Queues are per core in kapi (each core queues its
//! own requests, in thread-locals), so the dump gathers every core's view of them
//! (`crate::cores`) and merges them: a queue's row sums its figures over the cores (its
//! `NextDispatchR`, a per-core virtual time, is the largest), and a queue's waiting
//! requests from every core are listed by arrival, numbered in that order.
//! `dump_requests?includeRequestDetails=1` (any non-empty value) adds upstream's request
//! detail columns.

use crate::app::App;
use crate::request::RequestInfo;
use kapi_flowcontrol::queueset::QueueDigest;
use kapi_flowcontrol::{Level, RequestNote};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime};

/// How long a dump waits for the cores' answers (a core busy that long is left out).
const GATHER_WAIT: Duration = Duration::from_secs(5);

/// One core's queues of one level: their digests and their waiting requests (queue,
/// place, note).
#[derive(Debug, Clone, Default)]
pub struct CoreQueues {
    pub queues: Vec<QueueDigest>,
    pub requests: Vec<(usize, usize, RequestNote)>,
}

/// Every level's queues as every core sees them, merged.
#[derive(Debug, Default)]
pub struct Queues {
    /// By level name: each queue's digest summed over the cores.
    pub queues: BTreeMap<Arc<str>, Vec<QueueDigest>>,
    /// By level name: each queue's waiting requests, by arrival.
    pub requests: BTreeMap<Arc<str>, Vec<Vec<RequestNote>>>,
}

/// The calling core's queues of `levels` (run on each core).
fn this_core(levels: &[Arc<Level>]) -> Vec<(Arc<str>, CoreQueues)> {
    levels
        .iter()
        .filter(|l| l.has_queues())
        .map(|l| {
            let requests = l
                .local_requests()
                .into_iter()
                .map(|(q, i, slot)| (q, i, slot.note.as_deref().cloned().unwrap_or_default()))
                .collect();
            (l.name().clone(), CoreQueues { queues: l.local_queues(), requests })
        })
        .collect()
}

/// Merge the cores' views (each: a level's queues on one core).
pub fn merge(cores: Vec<Vec<(Arc<str>, CoreQueues)>>) -> Queues {
    let mut out = Queues::default();
    let mut pending: BTreeMap<Arc<str>, Pending> = BTreeMap::new();
    for (level, core) in cores.into_iter().flatten() {
        let queues = out.queues.entry(level.clone()).or_default();
        for (i, q) in core.queues.iter().enumerate() {
            match queues.get_mut(i) {
                Some(sum) => {
                    sum.pending += q.pending;
                    sum.executing += q.executing;
                    sum.seats_in_use += q.seats_in_use;
                    sum.seats_waiting += q.seats_waiting;
                    sum.next_dispatch_r = sum.next_dispatch_r.max(q.next_dispatch_r);
                }
                None => queues.push(*q),
            }
        }
        let requests = pending.entry(level).or_default();
        for (queue, index, note) in core.requests {
            if requests.len() <= queue {
                requests.resize_with(queue + 1, Vec::new);
            }
            requests[queue].push((index, note));
        }
    }
    // Within a queue: by arrival, then by place on the core (a note without a time).
    out.requests = pending
        .into_iter()
        .map(|(level, queues)| {
            let queues = queues
                .into_iter()
                .map(|mut q| {
                    q.sort_by_key(|(i, n)| (n.arrived, *i));
                    q.into_iter().map(|(_, n)| n).collect()
                })
                .collect();
            (level, queues)
        })
        .collect();
    out
}

/// A level's waiting requests by queue, each with its place on its core.
type Pending = Vec<Vec<(usize, RequestNote)>>;

/// Every core's queues of `levels`, merged.
async fn gather(app: &App, levels: &[Arc<Level>]) -> Queues {
    let mine = levels.to_vec();
    let asked = app.cores.gather(move || this_core(&mine));
    let cores = monoio::time::timeout(GATHER_WAIT, asked).await.unwrap_or_default();
    merge(cores)
}

/// The dump `info` asks for, if it is one.
pub async fn handle(app: &App, info: &RequestInfo) -> Option<String> {
    let levels = app.flowcontrol.dispatcher.levels();
    let dump = info.path.strip_prefix("/debug/api_priority_and_fairness/")?;
    if !matches!(dump, "dump_priority_levels" | "dump_queues" | "dump_requests") {
        return None;
    }
    let queues = gather(app, &levels).await;
    let rows = match dump {
        "dump_priority_levels" => priority_levels(&levels, &queues),
        "dump_queues" => self::queues(&levels, &queues),
        _ => {
            let details = info.param("includeRequestDetails").is_some_and(|v| !v.is_empty());
            requests(&levels, &queues, details)
        }
    };
    Some(tabwrite(&rows))
}

fn priority_levels(levels: &[Arc<Level>], queues: &Queues) -> Vec<Vec<String>> {
    let mut rows = vec![cells(&[
        "PriorityLevelName",
        "ActiveQueues",
        "IsIdle",
        "IsQuiescing",
        "WaitingRequests",
        "ExecutingRequests",
        "DispatchedRequests",
        "RejectedRequests",
        "TimedoutRequests",
        "CancelledRequests",
    ])];
    for l in levels {
        if !l.has_queues() && l.is_exempt() {
            let mut row = vec![l.name().to_string()];
            row.extend(std::iter::repeat_n("<none>".to_string(), 9));
            rows.push(row);
            continue;
        }
        let c = &l.counters;
        let executing = c.executing.load(Relaxed);
        let active =
            queues.queues.get(l.name()).map_or(0, |qs| qs.iter().filter(|q| q.pending > 0).count());
        let rejected =
            c.rejected_concurrency_limit.load(Relaxed) + c.rejected_queue_full.load(Relaxed);
        rows.push(vec![
            l.name().to_string(),
            active.to_string(),
            (executing == 0 && l.waiting() == 0).to_string(),
            "false".into(),
            l.waiting().to_string(),
            executing.to_string(),
            c.dispatched.load(Relaxed).to_string(),
            rejected.to_string(),
            c.timed_out.load(Relaxed).to_string(),
            "0".into(),
        ]);
    }
    rows
}

fn queues(levels: &[Arc<Level>], merged: &Queues) -> Vec<Vec<String>> {
    let mut rows = vec![cells(&[
        "PriorityLevelName",
        "Index",
        "PendingRequests",
        "ExecutingRequests",
        "SeatsInUse",
        "NextDispatchR",
        "InitialSeatsSum",
        "MaxSeatsSum",
        "TotalWorkSum",
    ])];
    for l in levels {
        if !l.has_queues() {
            let mut row = vec![l.name().to_string()];
            row.extend(std::iter::repeat_n("<none>".to_string(), 8));
            rows.push(row);
            continue;
        }
        for (i, q) in merged.queues.get(l.name()).into_iter().flatten().enumerate() {
            rows.push(vec![
                l.name().to_string(),
                i.to_string(),
                q.pending.to_string(),
                q.executing.to_string(),
                q.seats_in_use.to_string(),
                format!("{:.8}ss", q.next_dispatch_r),
                q.seats_waiting.to_string(),
                q.seats_waiting.to_string(),
                format!("{:.8}ss", f64::from(q.seats_waiting)),
            ]);
        }
    }
    rows
}

/// Upstream's request detail columns.
const DETAILS: [&str; 8] =
    ["UserName", "Verb", "APIPath", "Namespace", "Name", "APIVersion", "Resource", "SubResource"];

fn requests(levels: &[Arc<Level>], merged: &Queues, details: bool) -> Vec<Vec<String>> {
    let mut header = cells(&[
        "PriorityLevelName",
        "FlowSchemaName",
        "QueueIndex",
        "RequestIndexInQueue",
        "FlowDistingsher",
        "ArriveTime",
        "InitialSeats",
        "FinalSeats",
        "AdditionalLatency",
    ]);
    if details {
        header.extend(cells(&DETAILS));
    }
    let mut rows = vec![header];
    for l in levels.iter().filter(|l| l.has_queues()) {
        let Some(queues) = merged.requests.get(l.name()) else { continue };
        for (queue, waiting) in queues.iter().enumerate() {
            for (index, n) in waiting.iter().enumerate() {
                rows.push(request_row(l.name(), queue, index, n, details));
            }
        }
    }
    rows
}

fn request_row(
    level: &str,
    queue: usize,
    index: usize,
    n: &RequestNote,
    details: bool,
) -> Vec<String> {
    let mut row = vec![
        level.to_string(),
        n.flow_schema.clone(),
        queue.to_string(),
        index.to_string(),
        n.distinguisher.clone(),
        n.arrived.map(rfc3339_nano).unwrap_or_default(),
        n.initial_seats.to_string(),
        n.final_seats.to_string(),
        go_duration(n.additional_latency),
    ];
    if details {
        row.extend([
            n.user.clone(),
            n.verb.clone(),
            n.path.clone(),
            n.namespace.clone(),
            n.name.clone(),
            n.api_version.clone(),
            n.resource.clone(),
            n.subresource.clone(),
        ]);
    }
    row
}

/// Go's `time.RFC3339Nano` in UTC (trailing zeros of the fraction dropped).
fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let base = crate::time::rfc3339(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        return base;
    }
    let frac = format!("{nanos:09}");
    let stem = base.strip_suffix('Z').unwrap_or(&base);
    format!("{stem}.{}Z", frac.trim_end_matches('0'))
}

/// Go's `time.Duration.String` ("0s", "5ms", "1.5s", "2m0s").
fn go_duration(d: Duration) -> String {
    let trim = |x: String| {
        if x.contains('.') { x.trim_end_matches('0').trim_end_matches('.').to_string() } else { x }
    };
    let ns = d.as_nanos();
    match ns {
        0 => "0s".into(),
        1..=999 => format!("{ns}ns"),
        1_000..=999_999 => format!("{}µs", trim(format!("{:.3}", ns as f64 / 1e3))),
        1_000_000..=999_999_999 => format!("{}ms", trim(format!("{:.6}", ns as f64 / 1e6))),
        _ => {
            let secs = d.as_secs();
            let (h, m) = (secs / 3600, secs / 60 % 60);
            let s = trim(format!("{}.{:09}", secs % 60, d.subsec_nanos()));
            match (h, m) {
                (0, 0) => format!("{s}s"),
                (0, m) => format!("{m}m{s}s"),
                (h, m) => format!("{h}h{m}m{s}s"),
            }
        }
    }
}

fn cells(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Rows as upstream writes them: cells joined by `,\t`, through a tabwriter (minimum
/// cell width 8, padding 1): every cell but a row's last is padded with spaces to its
/// column's width.
pub fn tabwrite(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            widths[i] = widths[i].max(cell.len() + 2);
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                out.push_str(cell);
            } else {
                let text = format!("{cell},");
                let width = widths[i].max(8);
                out.push_str(&format!("{text:<width$}"));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_are_written_as_go_writes_them() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(ms(5)), "5ms");
        assert_eq!(go_duration(Duration::from_micros(2500)), "2.5ms");
        assert_eq!(go_duration(Duration::from_micros(7)), "7µs");
        assert_eq!(go_duration(ms(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(120)), "2m0s");
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 120_000_000);
        assert_eq!(rfc3339_nano(t), "2023-11-14T22:13:20.12Z");
    }

    #[test]
    fn a_request_row_has_upstreams_columns_and_details_on_demand() {
        let n = RequestNote {
            flow_schema: "fs".into(),
            distinguisher: "alice".into(),
            initial_seats: 1,
            final_seats: 2,
            additional_latency: Duration::from_millis(5),
            user: "alice".into(),
            verb: "create".into(),
            path: "/api/v1/namespaces/a/configmaps".into(),
            namespace: "a".into(),
            api_version: "v1".into(),
            resource: "configmaps".into(),
            ..Default::default()
        };
        let row = request_row("pl", 3, 0, &n, false);
        assert_eq!(row, ["pl", "fs", "3", "0", "alice", "", "1", "2", "5ms"]);
        let row = request_row("pl", 3, 0, &n, true);
        assert_eq!(row.len(), 17);
        assert_eq!(
            &row[9..],
            ["alice", "create", "/api/v1/namespaces/a/configmaps", "a", "", "v1", "configmaps", ""]
        );
    }

    fn digest(pending: usize, executing: u32, r: f64) -> QueueDigest {
        QueueDigest {
            pending,
            executing,
            seats_in_use: executing,
            next_dispatch_r: r,
            seats_waiting: pending as u32,
        }
    }

    fn waiting(user: &str, at: u64) -> RequestNote {
        let arrived = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(at));
        RequestNote { user: user.into(), arrived, ..Default::default() }
    }

    /// Regression guard: the dumps showed only the queues of the core that served them.
    #[test]
    fn every_cores_queues_are_merged_by_index_and_their_requests_by_arrival() {
        let level: Arc<str> = "pl".into();
        let core0 = CoreQueues {
            queues: vec![digest(1, 0, 2.0), digest(0, 1, 1.0)],
            requests: vec![(0, 0, waiting("late", 20))],
        };
        let core1 = CoreQueues {
            queues: vec![digest(2, 1, 1.5), digest(0, 0, 4.0)],
            requests: vec![(0, 0, waiting("early", 10)), (0, 1, waiting("middle", 15))],
        };
        let merged = merge(vec![vec![(level.clone(), core0)], vec![(level.clone(), core1)]]);
        assert_eq!(merged.queues[&level], [digest(3, 1, 2.0), digest(0, 1, 4.0)]);
        let users: Vec<&str> = merged.requests[&level][0].iter().map(|n| n.user.as_str()).collect();
        assert_eq!(users, ["early", "middle", "late"]);
    }

    #[test]
    fn cells_are_aligned_as_gos_tabwriter_aligns_them() {
        let rows = vec![
            cells(&["PriorityLevelName", "ActiveQueues", "IsIdle"]),
            cells(&["exempt", "<none>", "<none>"]),
            cells(&["catch-all", "0", "true"]),
        ];
        let out = tabwrite(&rows);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "PriorityLevelName, ActiveQueues, IsIdle");
        assert_eq!(lines[1], "exempt,            <none>,       <none>");
        assert_eq!(lines[2], "catch-all,         0,            true");
    }
}
