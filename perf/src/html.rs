//! The HTML report (`--html FILE`): one self-contained page with inline SVG plots drawn by
//! [`crate::svg`]: per operation its latency percentiles, latency histogram and
//! throughput over time; the server's CPU and RSS over time when sampled; and, for a
//! comparison, the B/A ratios. Several runs (A and B) share each plot as series.

use crate::report::{OpReport, Results};
use crate::svg::{bar_chart, escape, line_chart};
use std::fmt::Write as _;

/// Ratios of a comparison, per operation: (name, throughput, p50, p99) of B over A.
pub type Ratios = [(String, f64, f64, f64)];

/// The page of one run.
pub fn render(r: &Results) -> String {
    page(&format!("kapi-perf {}", r.workload), &[("run".into(), r)], None)
}

/// The page of named runs shown together, with B/A ratios if given.
pub fn page(title: &str, runs: &[(String, &Results)], ratios: Option<&Ratios>) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}svg{{margin:4px}}</style></head><body><h1>{t}</h1>",
        t = escape(title)
    );
    for (name, r) in runs {
        let _ = write!(
            out,
            "<p><b>{}</b>: {} against {}, window {:.1} s</p>",
            escape(name),
            escape(&r.workload),
            escape(&r.server),
            r.window_seconds
        );
    }
    if let Some(ratios) = ratios {
        ratio_table(&mut out, ratios);
    }
    summary_table(&mut out, runs);
    for op in op_names(runs) {
        op_section(&mut out, &op, runs);
    }
    process_section(&mut out, runs);
    out.push_str("</body></html>\n");
    out
}

fn op_names(runs: &[(String, &Results)]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (_, r) in runs {
        for o in &r.operations {
            if !names.contains(&o.name) {
                names.push(o.name.clone());
            }
        }
    }
    names
}

fn ratio_table(out: &mut String, ratios: &Ratios) {
    out.push_str("<h2>B / A</h2><table><tr><th>operation</th><th>throughput</th><th>p50</th><th>p99</th></tr>");
    for (name, t, p50, p99) in ratios {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{t:.3}</td><td>{p50:.3}</td><td>{p99:.3}</td></tr>",
            escape(name)
        );
    }
    out.push_str("</table>");
}

fn summary_table(out: &mut String, runs: &[(String, &Results)]) {
    out.push_str("<h2>Summary</h2><table><tr><th>run</th><th>operation</th><th>ok</th><th>errors</th><th>per s</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr>");
    for (name, r) in runs {
        for o in &r.operations {
            let l = &o.latency_ms;
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
                escape(name),
                escape(&o.name),
                o.count,
                o.errors,
                o.throughput_per_s,
                l.p50,
                l.p99,
                l.max
            );
        }
    }
    out.push_str("</table>");
}

fn find<'a>(r: &'a Results, op: &str) -> Option<&'a OpReport> {
    r.operations.iter().find(|o| o.name == op)
}

fn op_section(out: &mut String, op: &str, runs: &[(String, &Results)]) {
    let _ = write!(out, "<h2>{}</h2><div>", escape(op));
    let labels: Vec<String> = ["p50", "p90", "p99", "p99.9", "max"].map(String::from).into();
    let mut pct = Vec::new();
    let mut tput = Vec::new();
    for (name, r) in runs {
        let Some(o) = find(r, op) else { continue };
        let l = &o.latency_ms;
        pct.push((name.clone(), vec![l.p50, l.p90, l.p99, l.p999, l.max]));
        // Completions after the window (the drain) would plot as a last, partial second.
        let seconds = (r.window_seconds.ceil() as usize).max(1);
        let timeline = o.timeline.iter().take(seconds).enumerate();
        let points = timeline.map(|(s, n)| (s as f64, *n as f64)).collect();
        tput.push((name.clone(), points));
    }
    out.push_str(&bar_chart(&format!("{op}: latency percentiles"), "ms", &labels, &pct));
    out.push_str(&histogram(op, runs));
    out.push_str(&line_chart(
        &format!("{op}: throughput"),
        "second of the window",
        "ok per s",
        &tput,
    ));
    out.push_str("</div>");
}

/// Latency histogram: the buckets of the first run that has the operation, others aligned.
fn histogram(op: &str, runs: &[(String, &Results)]) -> String {
    let first = runs.iter().find_map(|(_, r)| find(r, op));
    let labels: Vec<String> = first
        .map(|o| {
            o.histogram
                .iter()
                .map(|b| b.le_ms.map_or("inf".into(), crate::svg::tick_label))
                .collect()
        })
        .unwrap_or_default();
    let series: Vec<(String, Vec<f64>)> = runs
        .iter()
        .filter_map(|(name, r)| {
            let o = find(r, op)?;
            let counts = labels
                .iter()
                .enumerate()
                .map(|(i, _)| o.histogram.get(i).map_or(0.0, |b| b.count as f64))
                .collect();
            Some((name.clone(), counts))
        })
        .collect();
    // Leave out the empty buckets below the fastest request.
    let from = (0..labels.len()).find(|i| series.iter().any(|(_, c)| c[*i] > 0.0)).unwrap_or(0);
    let series: Vec<_> = series.into_iter().map(|(n, c)| (n, c[from..].to_vec())).collect();
    let title = format!("{op}: latency histogram (bucket upper bound, ms)");
    bar_chart(&title, "requests", &labels[from..], &series)
}

fn process_section(out: &mut String, runs: &[(String, &Results)]) {
    let sampled: Vec<_> =
        runs.iter().filter_map(|(n, r)| Some((n, r.server_process.as_ref()?))).collect();
    if sampled.is_empty() {
        return;
    }
    out.push_str("<h2>Server process</h2><div>");
    let cpu = sampled
        .iter()
        .map(|(n, p)| ((*n).clone(), p.samples.iter().map(|s| (s.t_s, s.cpu_cores)).collect()))
        .collect::<Vec<_>>();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let rss = sampled
        .iter()
        .map(|(n, p)| ((*n).clone(), p.samples.iter().map(|s| (s.t_s, mib(s.rss_bytes))).collect()))
        .collect::<Vec<_>>();
    out.push_str(&line_chart("server CPU", "seconds", "cores", &cpu));
    out.push_str(&line_chart("server RSS", "seconds", "MiB", &rss));
    out.push_str("</div>");
}

/// Write the report of `r` to `path`.
pub fn write(r: &Results, path: &std::path::Path) -> std::io::Result<()> {
    std::fs::write(path, render(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::op_report;
    use crate::sampler::Series;
    use crate::stats::{OpStats, Outcome};
    use serde_json::{Map, Value};
    use std::time::Duration;

    fn results() -> Results {
        let mut s = OpStats::default();
        for i in 0..50u64 {
            let at = Duration::from_millis(i * 40);
            s.record(Outcome::Ok { bytes: 1 }, Duration::from_micros(500 + i * 100), at);
        }
        let mut series = Series::new(100.0);
        series.push(0.0, 0, 1 << 20);
        series.push(0.5, 20, 2 << 20);
        Results {
            tool: "kapi-perf".into(),
            version: "0".into(),
            workload: "get<x>".into(),
            server: "https://x".into(),
            started_unix_ms: 0,
            config: Value::Null,
            window_seconds: 2.0,
            operations: vec![op_report("get", &s, Duration::from_secs(2))],
            slo: vec![],
            extra: Map::new(),
            server_process: Some(series.report(1, Duration::from_millis(500))),
        }
    }

    #[test]
    fn report_has_every_plot() {
        let html = render(&results());
        assert!(html.starts_with("<!DOCTYPE html>") && html.contains("get&lt;x&gt;"));
        // Percentiles, histogram, throughput, CPU, RSS.
        assert_eq!(html.matches("<svg").count(), 5);
        assert!(html.matches("class=\"bar\"").count() >= 5 + 2);
        assert_eq!(html.matches("class=\"series\"").count(), 3);
        assert!(!html.contains("<script"), "no scripts");
    }

    #[test]
    fn compared_runs_share_plots_and_show_ratios() {
        let (a, b) = (results(), results());
        let ratios = [("get".to_owned(), 1.5, 0.5, 0.25)];
        let html = page("cmp", &[("A".into(), &a), ("B".into(), &b)], Some(&ratios));
        assert_eq!(html.matches("<svg").count(), 5);
        assert!(html.contains("<td>1.500</td><td>0.500</td><td>0.250</td>"));
        assert_eq!(html.matches("class=\"series\"").count(), 6);
    }
}
