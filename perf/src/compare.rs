//! `compare`: one workload against two servers, A and B, in alternating rounds (A, B, A,
//! B…) so that drift of the machine hits both alike. Per operation, each side's
//! throughput, p50 and p99 are averaged over its rounds, and B/A ratios reported (above 1
//! for throughput means B is faster; below 1 for latency means B is faster).

use crate::options::{CompareArgs, Workload};
use crate::report::{Results, human_ms};
use crate::workloads::{self, PerfError};
use serde::Serialize;
use std::fmt::Write as _;

/// Averages of one side for one operation.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Default)]
pub struct Side {
    pub throughput_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub rounds: usize,
}

/// One operation's figures and ratios.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Ratio {
    pub operation: String,
    pub a: Side,
    pub b: Side,
    pub throughput: f64,
    pub p50: f64,
    pub p99: f64,
}

/// Everything a comparison produced.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub workload: String,
    pub a: Vec<Results>,
    pub b: Vec<Results>,
    pub ratios: Vec<Ratio>,
}

/// The workload of one side: its kubeconfig and server PID.
fn side(args: &CompareArgs, b: bool) -> Workload {
    let mut w = (*args.workload).clone();
    let c = w.common_mut();
    c.kubeconfig = Some(if b { args.b_kubeconfig.clone() } else { args.a_kubeconfig.clone() });
    c.server_pid = if b { args.b_server_pid } else { args.a_server_pid };
    c.output = None;
    c.html = None;
    w
}

/// Run the rounds and compute the ratios.
pub async fn run(args: &CompareArgs) -> Result<Comparison, PerfError> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..args.rounds.max(1) {
        for is_b in [false, true] {
            if !args.workload.common().quiet {
                eprintln!(
                    "[compare] round {} of {}: {}",
                    round + 1,
                    args.rounds,
                    if is_b { "B" } else { "A" }
                );
            }
            let r = workloads::execute(side(args, is_b)).await?;
            if is_b {
                b.push(r)
            } else {
                a.push(r)
            }
            let pid = if is_b { args.b_server_pid } else { args.a_server_pid };
            if let Some(pid) = pid {
                settle(pid).await;
            }
        }
    }
    let ratios = ratios(&a, &b);
    Ok(Comparison { workload: args.workload.name().into(), a, b, ratios })
}

/// Wait (at most a minute) until the server that was just measured is quiet (under a
/// tenth of a core over a second): a server still working off requests its clients gave
/// up on would otherwise take CPU from the other side's round.
async fn settle(pid: u32) {
    const QUIET_CORES: f64 = 0.1;
    let ticks_per_s = crate::sampler::clock_ticks();
    for _ in 0..60 {
        let Some((before, _)) = crate::sampler::read_process(pid) else { return };
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let Some((after, _)) = crate::sampler::read_process(pid) else { return };
        if (after.saturating_sub(before)) as f64 / ticks_per_s < QUIET_CORES {
            return;
        }
    }
}

/// Average `op` over the rounds that have it.
pub fn average(runs: &[Results], op: &str) -> Side {
    let found: Vec<_> =
        runs.iter().filter_map(|r| r.operations.iter().find(|o| o.name == op)).collect();
    let n = found.len().max(1) as f64;
    let sum =
        |f: &dyn Fn(&crate::report::OpReport) -> f64| found.iter().map(|o| f(o)).sum::<f64>() / n;
    Side {
        throughput_per_s: sum(&|o| o.throughput_per_s),
        p50_ms: sum(&|o| o.latency_ms.p50),
        p99_ms: sum(&|o| o.latency_ms.p99),
        rounds: found.len(),
    }
}

fn ratio(b: f64, a: f64) -> f64 {
    if a > 0.0 { (b / a * 1000.0).round() / 1000.0 } else { 0.0 }
}

/// B/A ratios of every operation both sides have.
pub fn ratios(a: &[Results], b: &[Results]) -> Vec<Ratio> {
    let mut names: Vec<String> = Vec::new();
    for r in a {
        for o in &r.operations {
            if !names.contains(&o.name) {
                names.push(o.name.clone());
            }
        }
    }
    names
        .into_iter()
        .filter_map(|op| {
            let (sa, sb) = (average(a, &op), average(b, &op));
            (sa.rounds > 0 && sb.rounds > 0).then(|| Ratio {
                throughput: ratio(sb.throughput_per_s, sa.throughput_per_s),
                p50: ratio(sb.p50_ms, sa.p50_ms),
                p99: ratio(sb.p99_ms, sa.p99_ms),
                operation: op,
                a: sa,
                b: sb,
            })
        })
        .collect()
}

/// The summary table of a comparison.
pub fn summary(c: &Comparison) -> String {
    let mut out = String::new();
    let server = |v: &[Results]| v.first().map(|r| r.server.clone()).unwrap_or_default();
    let _ = writeln!(
        out,
        "compare {}: A {} vs B {} ({} rounds each)",
        c.workload,
        server(&c.a),
        server(&c.b),
        c.a.len()
    );
    let _ = writeln!(
        out,
        "{:<22} {:>10} {:>10} {:>7} {:>10} {:>10} {:>7} {:>10} {:>10} {:>7}",
        "op", "A per s", "B per s", "B/A", "A p50", "B p50", "B/A", "A p99", "B p99", "B/A"
    );
    for r in &c.ratios {
        let _ = writeln!(
            out,
            "{:<22} {:>10.1} {:>10.1} {:>7.3} {:>10} {:>10} {:>7.3} {:>10} {:>10} {:>7.3}",
            r.operation,
            r.a.throughput_per_s,
            r.b.throughput_per_s,
            r.throughput,
            human_ms(r.a.p50_ms),
            human_ms(r.b.p50_ms),
            r.p50,
            human_ms(r.a.p99_ms),
            human_ms(r.b.p99_ms),
            r.p99
        );
    }
    out
}

/// The HTML page of a comparison: the last round of each side, and the ratios.
pub fn html(c: &Comparison) -> String {
    let ratios: Vec<_> =
        c.ratios.iter().map(|r| (r.operation.clone(), r.throughput, r.p50, r.p99)).collect();
    let mut runs = Vec::new();
    if let Some(a) = c.a.last() {
        runs.push(("A".to_owned(), a));
    }
    if let Some(b) = c.b.last() {
        runs.push(("B".to_owned(), b));
    }
    crate::html::page(&format!("kapi-perf compare {}", c.workload), &runs, Some(&ratios))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::op_report;
    use crate::stats::{OpStats, Outcome};
    use serde_json::{Map, Value};
    use std::time::Duration;

    fn run_with(latency_ms: u64, count: u64) -> Results {
        let mut s = OpStats::default();
        for _ in 0..count {
            s.record(Outcome::Ok { bytes: 1 }, Duration::from_millis(latency_ms), Duration::ZERO);
        }
        Results {
            tool: "kapi-perf".into(),
            version: "0".into(),
            workload: "get".into(),
            server: "https://a".into(),
            started_unix_ms: 0,
            config: Value::Null,
            window_seconds: 1.0,
            operations: vec![op_report("get", &s, Duration::from_secs(1))],
            slo: vec![],
            extra: Map::new(),
            server_process: None,
        }
    }

    #[test]
    fn ratios_average_the_rounds() {
        let a = [run_with(10, 100), run_with(10, 300)];
        let b = [run_with(5, 400), run_with(5, 400)];
        let r = &ratios(&a, &b)[0];
        assert_eq!(r.a.throughput_per_s, 200.0);
        assert_eq!((r.throughput, r.a.rounds, r.b.rounds), (2.0, 2, 2));
        assert!((r.p50 - 0.5).abs() < 0.01 && (r.p99 - 0.5).abs() < 0.01, "{r:?}");
        let c = Comparison {
            workload: "get".into(),
            a: a.to_vec(),
            b: b.to_vec(),
            ratios: vec![r.clone()],
        };
        assert!(summary(&c).contains("2.000"), "{}", summary(&c));
        assert!(html(&c).contains("B / A"));
        assert!(ratios(&a, &[]).is_empty());
    }
}
