//! /metrics with upstream's names that move with traffic, and the health endpoints.

use kapi_e2e::Server;

fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| labels.iter().all(|x| l.contains(x)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_have_upstream_names_and_move_with_traffic() {
    let s = Server::start();
    let before = s.kubectl_ok(&["get", "--raw", "/metrics"]);
    for name in [
        "apiserver_request_total",
        "apiserver_request_duration_seconds_bucket",
        "apiserver_current_inflight_requests",
        "apiserver_storage_objects",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(before.lines().any(|l| l.starts_with(name)), "{name} missing");
    }
    let create = ["code=\"201\"", "resource=\"configmaps\"", "verb=\"POST\""];
    let created_before = metric(&before, "apiserver_request_total", &create).unwrap_or(0.0);
    for i in 0..3 {
        s.kubectl_ok(&["create", "configmap", &format!("m{i}")]);
    }
    s.kubectl_ok(&["get", "configmaps"]);
    let after = s.kubectl_ok(&["get", "--raw", "/metrics"]);
    assert_eq!(metric(&after, "apiserver_request_total", &create), Some(created_before + 3.0));
    let list = ["resource=\"configmaps\"", "verb=\"LIST\"", "scope=\"namespace\"", "le=\"+Inf\""];
    assert!(
        metric(&after, "apiserver_request_duration_seconds_bucket", &list)
            .is_some_and(|n| n >= 1.0)
    );
    let stored = metric(&after, "apiserver_storage_objects", &["resource=\"configmaps\""]);
    assert_eq!(stored, Some(3.0));
    assert!(after.contains("# TYPE apiserver_request_duration_seconds histogram"));
}

#[test]
fn readyz_lists_every_check_and_excludes_on_request() {
    let s = Server::start();
    let verbose = s.kubectl_ok(&["get", "--raw", "/readyz?verbose"]);
    for check in ["[+]ping ok", "[+]etcd ok", "[+]shutdown ok", "readyz check passed"] {
        assert!(verbose.contains(check), "{check} missing in {verbose}");
    }
    let excluded = s.kubectl_ok(&["get", "--raw", "/readyz?verbose&exclude=etcd"]);
    assert!(excluded.contains("[+]etcd excluded: ok"), "{excluded}");
    assert_eq!(s.kubectl_ok(&["get", "--raw", "/livez/ping"]), "ok");
    assert_eq!(s.kubectl_ok(&["get", "--raw", "/healthz"]), "ok");
}
