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
    for phase in
        ["read", "authentication", "authorization", "decode", "admission", "storage", "encode"]
    {
        let count = metric(
            &after,
            "kapi_request_phase_duration_seconds_count",
            &[&format!("phase=\"{phase}\"")],
        );
        assert!(count.is_some_and(|n| n >= 1.0), "phase {phase} not recorded");
    }
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

/// Large responses are gzip-compressed for clients that accept it (upstream: >= 128 KiB);
/// small ones and clients without `Accept-Encoding: gzip` get plain bodies.
#[test]
fn large_responses_are_gzipped_when_accepted() {
    let s = Server::start();
    let big = "x".repeat(100_000);
    for i in 0..3 {
        let manifest = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: big{i}}}\ndata: {{blob: {big}}}\n"
        );
        let out = s.kubectl_stdin(&["create", "-f", "-"], &manifest);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let pki = s.dir.path().join("data/pki");
    let token = std::fs::read_to_string(pki.join("admin.token")).unwrap();
    let curl = |path: &str, gzip: bool| {
        let mut cmd = std::process::Command::new("curl");
        cmd.args(["-sS", "-D", "-", "-o", "/dev/null", "--cacert"])
            .arg(pki.join("ca.crt"))
            .args(["-H", &format!("Authorization: Bearer {}", token.trim())]);
        if gzip {
            cmd.args(["-H", "Accept-Encoding: gzip"]);
        }
        let out = cmd.arg(format!("{}{path}", s.url())).output().expect("curl");
        String::from_utf8_lossy(&out.stdout).to_lowercase()
    };
    let list = "/api/v1/namespaces/default/configmaps";
    assert!(curl(list, true).contains("content-encoding: gzip"));
    assert!(!curl(list, false).contains("content-encoding"));
    assert!(
        !curl("/api/v1/namespaces/default/configmaps/big0?x=1", true).contains("content-encoding"),
        "below the threshold"
    );
}

/// A CPU profile taken under load is a gzipped pprof `Profile` with samples and kapi's own
/// functions in its string table.
#[test]
fn cpu_profile_is_a_pprof_protobuf_with_kapi_frames() {
    use kapi_codec::protobuf::wire::{self, Reader};
    use std::io::Read as _;
    let s = Server::start();
    let load = {
        let kubeconfig = s.kubeconfig();
        std::thread::spawn(move || {
            for i in 0..40 {
                let _ = std::process::Command::new("kubectl")
                    .arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .args(["create", "configmap", &format!("load{i}")])
                    .output();
            }
        })
    };
    let pki = s.dir.path().join("data/pki");
    let token = std::fs::read_to_string(pki.join("admin.token")).unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert"])
        .arg(pki.join("ca.crt"))
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .arg(format!("{}/debug/pprof/profile?seconds=3", s.url()))
        .output()
        .expect("curl");
    load.join().unwrap();
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(out.stdout.as_slice()).read_to_end(&mut raw).expect("gzip");
    let (mut samples, mut strings) = (0, Vec::new());
    let mut r = Reader::new(&raw);
    while !r.done() {
        match r.key().expect("profile field") {
            (2, wire::LEN) => {
                r.bytes().unwrap();
                samples += 1;
            }
            (6, wire::LEN) => {
                strings.push(String::from_utf8_lossy(r.bytes().unwrap()).into_owned())
            }
            (_, wt) => r.skip(wt).unwrap(),
        }
    }
    assert!(samples > 0, "no samples");
    assert!(
        strings.iter().any(|s| s.contains("kapi")),
        "no kapi frames among {} strings",
        strings.len()
    );
    assert!(strings.iter().any(|s| s == "cpu") && strings.iter().any(|s| s == "nanoseconds"));
    let index = s.kubectl_ok(&["get", "--raw", "/debug/pprof/"]);
    assert!(index.contains("profile"), "{index}");
}
