//! The debug dumps upstream serves under `/debug/api_priority_and_fairness/`:
//! `dump_priority_levels` (a row per level), `dump_queues` (a row per queue) and
//! `dump_requests` (a row per waiting request), as text tables whose cells end in `,`
//! and are aligned as Go's tabwriter aligns them (minimum width 8, one space of padding).
//!
//! Levels' figures count every core; queues are per core in kapi (each core queues its
//! own requests), so `dump_queues` and `dump_requests` show the queues of the core that
//! serves the dump.

use crate::app::App;
use kapi_flowcontrol::Level;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// The dump at `path`, if it is one.
pub fn handle(app: &App, path: &str) -> Option<String> {
    let levels = app.flowcontrol.dispatcher.levels();
    let rows = match path.strip_prefix("/debug/api_priority_and_fairness/")? {
        "dump_priority_levels" => priority_levels(&levels),
        "dump_queues" => queues(&levels),
        "dump_requests" => requests(),
        _ => return None,
    };
    Some(tabwrite(&rows))
}

fn priority_levels(levels: &[Arc<Level>]) -> Vec<Vec<String>> {
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
        let active = l.local_queue_lengths().iter().filter(|n| **n > 0).count();
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

fn queues(levels: &[Arc<Level>]) -> Vec<Vec<String>> {
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
        for (i, q) in l.local_queues().into_iter().enumerate() {
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

fn requests() -> Vec<Vec<String>> {
    vec![cells(&[
        "PriorityLevelName",
        "FlowSchemaName",
        "QueueIndex",
        "RequestIndexInQueue",
        "FlowDistingsher",
        "ArriveTime",
        "InitialSeats",
        "FinalSeats",
        "AdditionalLatency",
    ])]
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
