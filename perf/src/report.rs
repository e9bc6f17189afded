//! Turns what a run recorded into results: per operation counts, throughput, latency
//! percentiles (p50, p90, p99, p99.9, max) and a plottable histogram; upstream's SLO checks
//! (mutating p99 <= 1 s, get p99 <= 1 s, list p99 <= 30 s); a summary table for stdout and
//! a JSON file for later comparison and plots.

use crate::histogram::Histogram;
use crate::sampler::ProcessReport;
use crate::stats::OpStats;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// Everything a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    pub tool: String,
    pub version: String,
    pub workload: String,
    pub server: String,
    /// Unix time of the start, milliseconds.
    pub started_unix_ms: u64,
    /// Flags and derived settings of the run.
    pub config: Value,
    /// Length of the measurement window, seconds.
    pub window_seconds: f64,
    pub operations: Vec<OpReport>,
    pub slo: Vec<SloCheck>,
    /// Workload-specific figures (pods listed, deliveries per second...).
    pub extra: Map<String, Value>,
    /// CPU and RSS of the server process over the run (`--server-pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_process: Option<ProcessReport>,
}

/// One operation's figures.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    pub name: String,
    /// Successful operations.
    pub count: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// First message of each error kind.
    pub error_samples: BTreeMap<String, String>,
    /// Successful operations per second of the window.
    pub throughput_per_s: f64,
    pub bytes: u64,
    pub bytes_per_s: f64,
    pub latency_ms: Latency,
    pub histogram: Vec<HistogramBucket>,
    /// Successful operations in each second of the window.
    pub timeline: Vec<u64>,
}

/// Latency summary in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// Histogram bucket: operations with latency `<= le_ms` (`null`: above the last bound).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct HistogramBucket {
    pub le_ms: Option<f64>,
    pub count: u64,
}

/// One SLO check against upstream's thresholds.
#[derive(Debug, Clone, Serialize)]
pub struct SloCheck {
    pub operation: String,
    pub class: String,
    pub p99_ms: f64,
    pub limit_ms: f64,
    pub pass: bool,
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Latency summary of `h`.
pub fn latency(h: &Histogram) -> Latency {
    Latency {
        min: ms(h.min()),
        mean: h.mean() / 1e6,
        p50: ms(h.percentile(50.0)),
        p90: ms(h.percentile(90.0)),
        p99: ms(h.percentile(99.0)),
        p999: ms(h.percentile(99.9)),
        max: ms(h.max()),
    }
}

/// The report of operation `name` over a window of `window`.
pub fn op_report(name: &str, s: &OpStats, window: Duration) -> OpReport {
    let secs = window.as_secs_f64().max(1e-9);
    let last = s.latency.buckets().iter().rposition(|b| b.count > 0).unwrap_or(0);
    let histogram = s.latency.buckets()[..=last]
        .iter()
        .map(|b| HistogramBucket { le_ms: b.le_ns.map(ms), count: b.count })
        .collect();
    OpReport {
        name: name.to_owned(),
        count: s.ok,
        errors: s.error_count(),
        errors_by_kind: s.errors.clone(),
        error_samples: s.error_samples.clone(),
        throughput_per_s: s.ok as f64 / secs,
        bytes: s.bytes,
        bytes_per_s: s.bytes as f64 / secs,
        latency_ms: latency(&s.latency),
        histogram,
        timeline: s.timeline.clone(),
    }
}

/// Upstream's SLO class and p99 limit (ms) of an operation, if it has one.
pub fn slo_class(op: &str) -> Option<(&'static str, f64)> {
    // `create pods`, `patch pods/status`: the verb is the first word.
    match op.split(' ').next().unwrap_or(op) {
        "create" | "update" | "patch" | "delete" => Some(("mutating", 1_000.0)),
        "get" => Some(("get", 1_000.0)),
        "list" => Some(("list", 30_000.0)),
        _ => None,
    }
}

/// SLO checks of the operations that have a class.
pub fn slo_checks(ops: &[OpReport]) -> Vec<SloCheck> {
    ops.iter()
        .filter(|o| o.count > 0)
        .filter_map(|o| {
            let (class, limit) = slo_class(&o.name)?;
            let p99 = o.latency_ms.p99;
            Some(SloCheck {
                operation: o.name.clone(),
                class: class.to_owned(),
                p99_ms: p99,
                limit_ms: limit,
                pass: p99 <= limit,
            })
        })
        .collect()
}

/// A latency in milliseconds for people: 3 significant digits, seconds above 1 s.
pub fn human_ms(v: f64) -> String {
    match v {
        v if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
        v if v >= 100.0 => format!("{v:.0} ms"),
        v if v >= 10.0 => format!("{v:.1} ms"),
        v => format!("{v:.2} ms"),
    }
}

/// The summary table printed at the end of a run.
pub fn summary(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "workload {}  server {}  window {:.1} s",
        r.workload, r.server, r.window_seconds
    );
    if r.config.get("mode").is_some() {
        let c = &r.config;
        let rate = c["rate"].as_f64().map(|r| format!(", {r} per s")).unwrap_or_default();
        let _ = writeln!(
            out,
            "{} x{} ({} connections), {} {}{rate}",
            c["mode"].as_str().unwrap_or("?"),
            c["concurrency"],
            c["connections"],
            c["http"].as_str().unwrap_or("?"),
            c["encoding"].as_str().unwrap_or("?"),
        );
    }
    let _ = writeln!(
        out,
        "{:<22} {:>9} {:>7} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "op", "ok", "errors", "per s", "p50", "p90", "p99", "p99.9", "max"
    );
    for o in &r.operations {
        let l = &o.latency_ms;
        let _ = writeln!(
            out,
            "{:<22} {:>9} {:>7} {:>10.1} {:>10} {:>10} {:>10} {:>10} {:>10}",
            o.name,
            o.count,
            o.errors,
            o.throughput_per_s,
            human_ms(l.p50),
            human_ms(l.p90),
            human_ms(l.p99),
            human_ms(l.p999),
            human_ms(l.max)
        );
        for (kind, n) in &o.errors_by_kind {
            let sample = o.error_samples.get(kind).map(String::as_str).unwrap_or("");
            let _ = writeln!(out, "  {n} x {kind} {}", truncate(sample, 160));
        }
    }
    for (k, v) in &r.extra {
        let _ = writeln!(out, "{k}: {v}");
    }
    if let Some(p) = &r.server_process {
        let _ = writeln!(out, "{}", process_line(p));
    }
    for c in &r.slo {
        let verdict = if c.pass { "PASS" } else { "FAIL" };
        let _ = writeln!(
            out,
            "SLO {} ({}): p99 {} <= {}  {verdict}",
            c.operation,
            c.class,
            human_ms(c.p99_ms),
            human_ms(c.limit_ms)
        );
    }
    out
}

/// One line on the sampled server process.
pub fn process_line(p: &ProcessReport) -> String {
    format!(
        "server pid {}: CPU mean {:.2} cores, peak {:.2} ({:.1} CPU s); RSS mean {}, peak {} ({} samples)",
        p.pid,
        p.cpu_cores_mean,
        p.cpu_cores_peak,
        p.cpu_seconds,
        human_bytes(p.rss_bytes_mean),
        human_bytes(p.rss_bytes_peak),
        p.samples.len()
    )
}

/// Bytes for people, in binary units.
pub fn human_bytes(b: u64) -> String {
    let b = b as f64;
    match b {
        b if b >= 1024.0 * 1024.0 * 1024.0 => format!("{:.2} GiB", b / (1024.0 * 1024.0 * 1024.0)),
        b if b >= 1024.0 * 1024.0 => format!("{:.1} MiB", b / (1024.0 * 1024.0)),
        b if b >= 1024.0 => format!("{:.1} KiB", b / 1024.0),
        b => format!("{b} B"),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Write `r` as pretty JSON to `path`.
pub fn write_json(r: &Results, path: &Path) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(r).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Outcome;

    fn stats(latencies_ms: &[u64]) -> OpStats {
        let mut s = OpStats::default();
        for (i, l) in latencies_ms.iter().enumerate() {
            let at = Duration::from_millis(i as u64 * 100);
            s.record(Outcome::Ok { bytes: 100 }, Duration::from_millis(*l), at);
        }
        s
    }

    #[test]
    fn op_report_figures() {
        let r = op_report("get", &stats(&[1, 2, 3, 4, 100]), Duration::from_secs(2));
        assert_eq!(r.count, 5);
        assert!((r.throughput_per_s - 2.5).abs() < 1e-9);
        assert!((r.bytes_per_s - 250.0).abs() < 1e-9);
        assert!((r.latency_ms.max - 100.0).abs() < 1e-9);
        assert!((r.latency_ms.p50 - 3.0).abs() < 0.03);
        assert_eq!(r.histogram.iter().map(|b| b.count).sum::<u64>(), 5);
        assert_eq!(r.histogram.last().unwrap().le_ms, Some(100.0));
    }

    #[test]
    fn slo_checks_use_upstream_limits() {
        let window = Duration::from_secs(1);
        let ops = vec![
            op_report("create", &stats(&[5; 10]), window),
            op_report("get", &stats(&[1500; 10]), window),
            op_report("list", &stats(&[20_000; 3]), window),
            op_report("delivery", &stats(&[1; 3]), window),
            op_report("update leases", &stats(&[2; 3]), window),
            op_report("watch pods", &stats(&[2; 3]), window),
        ];
        let checks = slo_checks(&ops);
        let verdicts: Vec<_> =
            checks.iter().map(|c| (c.operation.as_str(), c.class.as_str(), c.pass)).collect();
        assert_eq!(
            verdicts,
            [
                ("create", "mutating", true),
                ("get", "get", false),
                ("list", "list", true),
                ("update leases", "mutating", true)
            ]
        );
    }

    #[test]
    fn summary_mentions_every_operation_and_slo() {
        let ops = vec![op_report("create", &stats(&[5; 10]), Duration::from_secs(1))];
        let r = Results {
            tool: "kapi-perf".into(),
            version: "0".into(),
            workload: "create".into(),
            server: "https://x".into(),
            started_unix_ms: 0,
            config: Value::Null,
            window_seconds: 1.0,
            slo: slo_checks(&ops),
            operations: ops,
            extra: Map::new(),
            server_process: None,
        };
        let text = summary(&r);
        assert!(text.contains("create") && text.contains("5.00 ms"), "{text}");
        assert!(text.contains("SLO create (mutating): p99 5.00 ms <= 1.00 s  PASS"), "{text}");
        assert_eq!(human_ms(0.1234), "0.12 ms");
        assert_eq!(human_ms(45_000.0), "45.00 s");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(human_bytes(512), "512 B");
    }
}
