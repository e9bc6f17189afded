//! kapi-perf against the real kapi binary: the `create` and `get` workloads run for ~2 s
//! each and write JSON results with request counts, no errors and latency percentiles.
//! No timing is asserted.
//!
//! The tool is `$KAPI_PERF_BIN` or `target/debug/kapi-perf` (built on demand).

use kapi_e2e::Server;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn perf_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Ok(p) = std::env::var("KAPI_PERF_BIN") {
            return PathBuf::from(p);
        }
        let root = workspace_root();
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join("target"));
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "kapi-perf"])
            .current_dir(&root)
            .status()
            .expect("cargo build -p kapi-perf");
        assert!(status.success(), "building kapi-perf failed");
        target.join("debug").join("kapi-perf")
    })
    .clone()
}

fn pod_template() -> PathBuf {
    workspace_root().join("../shared/workloads/bench-pod.json")
}

/// Run `workload` for 2 s and return its JSON results.
fn run_perf(s: &Server, workload: &str, out: &Path) -> Value {
    run_perf_with(s, workload, out, &[])
}

/// Run `workload` for 2 s with `extra` flags and return its JSON results.
fn run_perf_with(s: &Server, workload: &str, out: &Path, extra: &[String]) -> Value {
    let mut cmd = Command::new(perf_bin());
    cmd.arg(workload).args(extra);
    if workload != "mixed" {
        cmd.arg("--pod-template").arg(pod_template());
    }
    let output = cmd
        .arg("--kubeconfig")
        .arg(s.kubeconfig())
        .arg("--output")
        .arg(out)
        .args(["--duration", "2s", "--warmup", "500ms", "--namespace", "perf-e2e", "--quiet"])
        .output()
        .expect("run kapi-perf");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "kapi-perf {workload} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("SLO"), "the summary shows the SLO checks: {stdout}");
    let text = std::fs::read_to_string(out).expect("results file");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("results are not JSON ({e}): {text}"))
}

fn check_operation(results: &Value, name: &str) {
    let ops = results["operations"].as_array().expect("operations");
    let op = ops.iter().find(|o| o["name"] == name).unwrap_or_else(|| panic!("no {name}: {ops:?}"));
    let count = op["count"].as_u64().expect("count");
    assert!(count > 0, "{name}: no successful requests: {op}");
    assert_eq!(op["errors"], 0, "{name}: errors: {op}");
    let lat = &op["latency_ms"];
    let p = |k: &str| lat[k].as_f64().unwrap_or_else(|| panic!("{name}: no {k}: {lat}"));
    assert!(p("p50") > 0.0, "{lat}");
    assert!(p("p50") <= p("p90") && p("p90") <= p("p99") && p("p99") <= p("p999"), "{lat}");
    assert!(p("p999") <= p("max") && p("min") <= p("p50"), "{lat}");
    let buckets = op["histogram"].as_array().expect("histogram");
    let in_buckets: u64 = buckets.iter().map(|b| b["count"].as_u64().unwrap_or(0)).sum();
    assert_eq!(in_buckets, count, "the histogram holds every request");
    assert!(op["throughput_per_s"].as_f64().is_some_and(|t| t > 0.0), "{op}");
    let slo = results["slo"].as_array().expect("slo");
    let check = slo.iter().find(|c| c["operation"] == name).expect("an SLO check");
    let limit = if name.starts_with("list") { 30_000.0 } else { 1000.0 };
    assert!(check["pass"].is_boolean() && check["limit_ms"] == limit, "{check}");
}

#[test]
fn create_and_get_workloads_report_results() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    for workload in ["create", "get"] {
        let results = run_perf(&s, workload, &dir.path().join(format!("{workload}.json")));
        assert_eq!(results["workload"], workload);
        assert_eq!(results["server"], s.url());
        assert_eq!(results["config"]["mode"], "closed-loop");
        check_operation(&results, workload);
    }
}

fn check_process_samples(results: &Value, pid: u32) {
    let p = &results["server_process"];
    assert_eq!(p["pid"], pid, "{p}");
    let samples = p["samples"].as_array().expect("samples");
    assert!(samples.len() >= 4, "a 2.5 s run at 250 ms has samples: {p}");
    assert!(samples.iter().all(|s| s["rss_bytes"].as_u64().is_some_and(|r| r > 0)), "{p}");
    let peak = p["rss_bytes_peak"].as_u64().expect("peak");
    let mean = p["rss_bytes_mean"].as_u64().expect("mean");
    assert!(peak >= mean && mean > 0, "{p}");
    let cpu = p["cpu_cores_mean"].as_f64().expect("cpu mean");
    assert!(cpu >= 0.0 && p["cpu_cores_peak"].as_f64().unwrap_or(-1.0) >= cpu, "{p}");
    assert!(p["cpu_seconds"].as_f64().is_some_and(|c| c > 0.0), "the server worked: {p}");
}

#[test]
fn server_pid_is_sampled() {
    let s = Server::start();
    let pid = s.pid().expect("pid");
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = ["--server-pid".to_owned(), pid.to_string()];
    let results = run_perf_with(&s, "get", &dir.path().join("get.json"), &extra);
    check_operation(&results, "get");
    check_process_samples(&results, pid);
}

#[test]
fn memory_reports_rss_with_pods_loaded_and_under_lists() {
    let s = Server::start();
    let pid = s.pid().expect("pid");
    let dir = tempfile::tempdir().expect("tempdir");
    let extra: Vec<String> = ["--server-pid", &pid.to_string(), "--pods", "200", "--lists", "2"]
        .map(String::from)
        .into();
    let results = run_perf_with(&s, "memory", &dir.path().join("memory.json"), &extra);
    check_operation(&results, "list");
    let x = &results["extra"];
    let bytes = |k: &str| x[k].as_u64().unwrap_or_else(|| panic!("no {k}: {x}"));
    assert_eq!(x["pods"], 200);
    for k in ["rss_before_bytes", "rss_loaded_bytes", "rss_list_peak_bytes", "rss_hwm_bytes"] {
        assert!(bytes(k) > 0, "{k}: {x}");
    }
    // The kernel's high-water mark is updated lazily (per-CPU RSS counters), so a sampled
    // RSS can exceed it by a little; it must not be far below the sampled peak.
    assert!(bytes("rss_hwm_bytes") as f64 >= 0.95 * bytes("rss_list_peak_bytes") as f64, "{x}");
    assert!(bytes("list_json_bytes") > 200 * 1000, "200 pods of 4.5 KB: {x}");
    assert!(bytes("list_protobuf_bytes") > 0, "{x}");
    check_process_samples(&results, pid);
}

#[test]
fn startup_measures_time_to_ready_and_idle_rss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().unwrap().port();
    let cmd = format!(
        "{} --data-dir {} --secure-port {port} --workers 2 --v 0 --unsafe-no-fsync",
        kapi_e2e::kapi_bin().display(),
        data.display()
    );
    let out = dir.path().join("startup.json");
    let output = Command::new(perf_bin())
        .args(["startup", "--rounds", "2", "--idle-wait", "200ms", "--quiet", "--server-cmd", &cmd])
        .arg("--kubeconfig")
        .arg(data.join("admin.kubeconfig"))
        .arg("--output")
        .arg(&out)
        .output()
        .expect("run kapi-perf");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let results: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let rounds = results["extra"]["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2, "{results}");
    for r in rounds {
        assert!(r["ready_ms"].as_f64().is_some_and(|v| v > 0.0), "{r}");
        assert!(r["idle_rss_bytes"].as_u64().is_some_and(|v| v > 0), "{r}");
        assert_eq!(r["clean_exit"], true, "{r}");
    }
    let ready = results["operations"].as_array().unwrap().iter().find(|o| o["name"] == "ready");
    assert_eq!(ready.expect("a ready operation")["count"], 2);
    assert!(results["server_process"]["samples"].is_array(), "{results}");
}

fn op<'a>(results: &'a Value, name: &str) -> &'a Value {
    let ops = results["operations"].as_array().expect("operations");
    ops.iter().find(|o| o["name"] == name).unwrap_or_else(|| panic!("no {name}: {results}"))
}

fn cluster_sim_flags(binding: &str) -> Vec<String> {
    let flags = ["--nodes", "20", "--pod-rate", "20", "--pod-lifetime", "300ms"];
    let more = ["--lease-period", "1s", "--list-period", "500ms", "--binding", binding];
    flags.iter().chain(&more).map(|s| s.to_string()).collect()
}

#[test]
fn cluster_sim_runs_nodes_leases_watches_and_pod_churn() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("cluster-sim.json");
    let results = run_perf_with(&s, "cluster-sim", &out, &cluster_sim_flags("nodename"));
    assert_eq!(results["extra"]["nodes"], 20);
    assert!(results["extra"]["watch_events"].as_u64().is_some_and(|n| n > 0), "{results}");
    for name in ["create pods", "update leases", "patch pods/status", "delete pods", "list pods"] {
        check_operation(&results, name);
    }
    check_operation(&results, "get nodes");
    // The nodes and leases are gone afterwards.
    let nodes = s.kubectl_ok(&["get", "nodes", "-l", "kapi-perf/sim=true", "-o", "name"]);
    assert!(nodes.trim().is_empty(), "nodes left: {nodes}");
    // With the scheduler's pods/binding: when the server has it, it must work.
    let out = dir.path().join("cluster-sim-binding.json");
    let results = run_perf_with(&s, "cluster-sim", &out, &cluster_sim_flags("subresource"));
    let binding = op(&results, "create pods/binding");
    if binding["count"] == 0 && binding["errors_by_kind"].get("http 405").is_some() {
        eprintln!("NOTE: the server has no pods/binding (HTTP 405): {}", binding["error_samples"]);
    } else {
        check_operation(&results, "create pods/binding");
        check_operation(&results, "patch pods/status");
    }
    check_operation(&results, "update leases");
}

#[test]
fn mixed_replays_the_clusterloader2_load_profile() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let flags = ["--nodes", "10", "--pods-per-node", "20", "--medium-size", "10", "--big-size"];
    let more = ["25", "--throughput", "200", "--qps", "100"];
    let extra: Vec<String> = flags.iter().chain(&more).map(|s| s.to_string()).collect();
    let results = run_perf_with(&s, "mixed", &dir.path().join("mixed.json"), &extra);
    let x = &results["extra"];
    assert_eq!((x["namespaces"].as_u64(), x["deployments"].as_u64()), (Some(1), Some(22)), "{x}");
    for verb in ["create", "delete"] {
        for resource in ["services", "configmaps", "secrets", "deployments", "pods"] {
            check_operation(&results, &format!("{verb} {resource}"));
        }
    }
    check_operation(&results, "patch deployments");
    let created = op(&results, "create pods")["count"].as_u64().unwrap_or(0);
    let deleted = op(&results, "delete pods")["count"].as_u64().unwrap_or(0);
    assert_eq!(created, deleted, "every pod made is deleted with its deployment");
    assert!(created >= 145, "at least the deployments' initial pods: {created}");
    let left =
        s.kubectl_ok(&["get", "pods,deployments,services", "-n", "perf-e2e-1", "-o", "name"]);
    assert!(left.trim().is_empty(), "objects left: {left}");
}

/// Chromium, installed by scripts/install-deps.sh if missing; `None` when it cannot be.
fn chromium() -> Option<PathBuf> {
    let find = || {
        ["chromium", "chromium-browser"].iter().find_map(|name| {
            let out =
                Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().ok()?;
            let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
        })
    };
    if let Some(p) = find() {
        return Some(p);
    }
    let script = workspace_root().join("scripts/install-deps.sh");
    let _ = Command::new("bash").arg(script).status();
    find()
}

#[test]
fn html_report_renders_its_plots_in_chromium() {
    let s = Server::start();
    let pid = s.pid().expect("pid");
    let dir = tempfile::tempdir().expect("tempdir");
    let html = dir.path().join("report.html");
    let extra =
        ["--server-pid".to_owned(), pid.to_string(), "--html".into(), html.display().to_string()];
    let results = run_perf_with(&s, "get", &dir.path().join("get.json"), &extra);
    check_operation(&results, "get");
    let page = std::fs::read_to_string(&html).expect("the report was written");
    assert!(
        !page.contains("<script") && !page.contains(" src=") && !page.contains("<link"),
        "no assets"
    );
    let Some(chromium) = chromium() else {
        println!("SKIP: chromium is not installed and could not be installed");
        return;
    };
    let profile = tempfile::tempdir().expect("profile dir");
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    // get: percentiles, histogram, throughput; the server's CPU and RSS.
    assert_eq!(dom.matches("<svg").count(), 5, "five plots in the DOM: {dom}");
    assert!(dom.matches("class=\"bar\"").count() >= 6, "bars are drawn");
    let lines = dom.matches("class=\"series\"").count();
    assert_eq!(lines, 3, "throughput, CPU and RSS lines are drawn");
    assert!(dom.contains(" d=\"M"), "the lines have path data");
}

#[test]
fn compare_alternates_two_servers_and_reports_ratios() {
    let (a, b) = (Server::start(), Server::start());
    let dir = tempfile::tempdir().expect("tempdir");
    let (json, html) = (dir.path().join("compare.json"), dir.path().join("compare.html"));
    let output = Command::new(perf_bin())
        .arg("compare")
        .arg("--a-kubeconfig")
        .arg(a.kubeconfig())
        .arg("--b-kubeconfig")
        .arg(b.kubeconfig())
        .args(["--a-server-pid", &a.pid().unwrap().to_string()])
        .args(["--b-server-pid", &b.pid().unwrap().to_string(), "--rounds", "2"])
        .arg("--compare-output")
        .arg(&json)
        .arg("--compare-html")
        .arg(&html)
        .args([
            "get",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--namespace",
            "perf-e2e",
            "--quiet",
        ])
        .arg("--pod-template")
        .arg(pod_template())
        .output()
        .expect("run kapi-perf compare");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("B/A") && stdout.contains(&a.url()) && stdout.contains(&b.url()),
        "{stdout}"
    );
    let c: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let (ra, rb) = (c["a"].as_array().unwrap(), c["b"].as_array().unwrap());
    assert_eq!((ra.len(), rb.len()), (2, 2), "two rounds each");
    assert!(ra.iter().all(|r| r["server"] == a.url()) && rb.iter().all(|r| r["server"] == b.url()));
    for r in ra.iter().chain(rb) {
        check_operation(r, "get");
        assert!(r["server_process"]["samples"].is_array(), "sampled");
    }
    let ratio = &c["ratios"][0];
    assert_eq!(ratio["operation"], "get", "{c}");
    for k in ["throughput", "p50", "p99"] {
        assert!(ratio[k].as_f64().is_some_and(|v| v > 0.0), "{k}: {ratio}");
    }
    let page = std::fs::read_to_string(&html).expect("html");
    assert!(page.contains("B / A") && page.matches("<svg").count() >= 5, "the report");
}

/// `overload`: elephants LISTing, mice GETting and kubelets renewing Leases, each as its
/// own impersonated user, side by side; every stream is recorded (a 429 would be its
/// error), and the run's binding and Leases are gone afterwards.
#[test]
fn overload_runs_three_streams_of_mixed_priority() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("overload.json");
    let flags = [
        "--pods",
        "100",
        "--concurrency",
        "4",
        "--mouse-rate",
        "10",
        "--lease-rate",
        "10",
        "--nodes",
        "3",
    ];
    let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    let results = run_perf_with(&s, "overload", &out, &flags);
    assert_eq!(results["extra"]["pods"], 100, "{results}");
    for name in ["list pods (elephant)", "get configmap (mouse)", "patch leases (node)"] {
        check_operation(&results, name);
    }
    let left = s.kubectl_ok(&["get", "clusterrolebindings", "-o", "name"]);
    assert!(!left.contains("kapi-perf-overload"), "binding left: {left}");
    let leases = s.kubectl_ok(&["get", "leases", "-n", "kube-node-lease", "-o", "name"]);
    assert!(!leases.contains("kapi-perf-overload"), "leases left: {leases}");
}
