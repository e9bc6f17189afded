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
    // A request counted before the first scrape (a request is counted before its response
    // is sent; the scrape itself is counted only after it renders): without it a scrape
    // of a server that has served nothing yet has no apiserver_request_total series.
    s.kubectl_ok(&["get", "namespaces"]);
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
    // Every ConfigMap in the store counts (kube-system's extension-apiserver-authentication
    // one included), as upstream's figure does.
    let all = s.kubectl_ok(&["get", "configmaps", "-A", "-o", "name"]).lines().count() as f64;
    let stored = metric(&after, "apiserver_storage_objects", &["resource=\"configmaps\""]);
    assert_eq!(stored, Some(all));
    assert!(all >= 3.0);
    assert!(after.contains("# TYPE apiserver_request_duration_seconds histogram"));
    for phase in [
        "read",
        "authentication",
        "authorization",
        "decode",
        "admission",
        "storage",
        "encode",
        "write",
    ] {
        let count = metric(
            &after,
            "kapi_request_phase_duration_seconds_count",
            &[&format!("phase=\"{phase}\"")],
        );
        assert!(count.is_some_and(|n| n >= 1.0), "phase {phase} not recorded");
    }
    // kapi's own figures: the watch caches' feed queues and the response buffer pools
    // (the three creates answered from pooled buffers).
    let cm = ["resource=\"configmaps\""];
    let received = metric(&after, "apiserver_watch_cache_events_received_total", &cm);
    assert!(received.is_some_and(|n| n >= 3.0), "watch cache events received: {received:?}");
    let inits = metric(&after, "apiserver_watch_cache_initializations_total", &cm);
    assert!(inits.is_some_and(|n| n >= 1.0), "watch cache initializations: {inits:?}");
    assert!(after.contains("apiserver_watch_cache_events_dispatched_total{"));
    let pending = metric(&after, "kapi_watch_cache_pending_events", &["resource=\"configmaps\""]);
    assert!(pending.is_some(), "kapi_watch_cache_pending_events missing");
    let pooled: f64 = ["kapi_buffer_pool_hits_total", "kapi_buffer_pool_misses_total"]
        .iter()
        .map(|name| {
            after
                .lines()
                .filter(|l| l.starts_with(&format!("{name}{{")))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        })
        .sum();
    assert!(pooled >= 3.0, "buffer pool figures did not move: {pooled}");
    let io = |text: &str, name: &str| -> f64 {
        let series = text.lines().filter(|l| l.starts_with(&format!("{name}{{core=\"")));
        series.filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    };
    for name in [
        "kapi_io_read_operations_total",
        "kapi_io_read_bytes_total",
        "kapi_io_write_operations_total",
        "kapi_io_write_bytes_total",
        "kapi_connections_accepted_total",
    ] {
        assert!(after.contains(&format!("{name}{{core=\"0\"}}")), "{name} missing");
        assert!(io(&after, name) > io(&before, name), "{name} did not move");
    }
    assert!(after.contains("kapi_connections_open{core=\"1\"}"));
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

/// The few fields of a pprof `Profile` the tests look at, decoded from the wire.
#[derive(Debug, Default)]
struct Profile {
    sample_types: Vec<(i64, i64)>,
    /// (location ids innermost first, values)
    samples: Vec<(Vec<u64>, Vec<i64>)>,
    /// location id -> function ids (inlined first)
    locations: std::collections::HashMap<u64, Vec<u64>>,
    /// function id -> name (string index)
    functions: std::collections::HashMap<u64, i64>,
    strings: Vec<String>,
    period: i64,
    default_sample_type: i64,
}

mod pb {
    pub use kapi_codec::protobuf::wire::{LEN, Reader, VARINT};

    /// Every (field, value) of a message; LEN fields as bytes, varints as numbers.
    pub fn fields(buf: &[u8]) -> Vec<(u32, Result<u64, &[u8]>)> {
        let mut r = Reader::new(buf);
        let mut out = Vec::new();
        while !r.done() {
            match r.key().expect("field key") {
                (n, VARINT) => out.push((n, Ok(r.varint().expect("varint")))),
                (n, LEN) => out.push((n, Err(r.bytes().expect("bytes")))),
                (_, wt) => r.skip(wt).expect("skip"),
            }
        }
        out
    }

    /// A repeated integer field, packed or not.
    pub fn ints(fields: &[(u32, Result<u64, &[u8]>)], field: u32) -> Vec<u64> {
        let mut out = Vec::new();
        for (_, v) in fields.iter().filter(|(n, _)| *n == field) {
            match v {
                Ok(x) => out.push(*x),
                Err(packed) => {
                    let mut r = Reader::new(packed);
                    while !r.done() {
                        out.push(r.varint().expect("packed varint"));
                    }
                }
            }
        }
        out
    }

    pub fn int(fields: &[(u32, Result<u64, &[u8]>)], field: u32) -> u64 {
        ints(fields, field).first().copied().unwrap_or(0)
    }
}

impl Profile {
    fn decode(raw: &[u8]) -> Profile {
        let mut p = Profile::default();
        for (n, v) in pb::fields(raw) {
            match (n, v) {
                (1, Err(m)) => {
                    let f = pb::fields(m);
                    p.sample_types.push((pb::int(&f, 1) as i64, pb::int(&f, 2) as i64));
                }
                (2, Err(m)) => {
                    let f = pb::fields(m);
                    let values = pb::ints(&f, 2).into_iter().map(|v| v as i64).collect();
                    p.samples.push((pb::ints(&f, 1), values));
                }
                (4, Err(m)) => {
                    let f = pb::fields(m);
                    let lines = f
                        .iter()
                        .filter(|(n, _)| *n == 4)
                        .filter_map(|(_, v)| v.as_ref().err().map(|l| pb::int(&pb::fields(l), 1)))
                        .collect();
                    p.locations.insert(pb::int(&f, 1), lines);
                }
                (5, Err(m)) => {
                    let f = pb::fields(m);
                    p.functions.insert(pb::int(&f, 1), pb::int(&f, 2) as i64);
                }
                (6, Err(s)) => p.strings.push(String::from_utf8_lossy(s).into_owned()),
                (12, Ok(v)) => p.period = v as i64,
                (14, Ok(v)) => p.default_sample_type = v as i64,
                _ => {}
            }
        }
        p
    }

    fn gunzip(gz: &[u8]) -> Profile {
        use std::io::Read as _;
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(gz).read_to_end(&mut raw).expect("gzip");
        Profile::decode(&raw)
    }

    fn types(&self) -> Vec<(&str, &str)> {
        let s = |i: i64| self.strings[i as usize].as_str();
        self.sample_types.iter().map(|(t, u)| (s(*t), s(*u))).collect()
    }

    /// The function names of a stack, innermost first.
    fn names(&self, locations: &[u64]) -> Vec<&str> {
        locations
            .iter()
            .flat_map(|l| self.locations.get(l).into_iter().flatten())
            .filter_map(|f| self.functions.get(f))
            .map(|&i| self.strings[i as usize].as_str())
            .collect()
    }
}

/// GET `path` with the admin token; the raw body.
fn get(s: &Server, path: &str) -> Vec<u8> {
    let pki = s.dir.path().join("data/pki");
    let token = std::fs::read_to_string(pki.join("admin.token")).unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "60", "--cacert"])
        .arg(pki.join("ca.crt"))
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())])
        .arg(format!("{}{path}", s.url()))
        .output()
        .expect("curl");
    assert!(out.status.success(), "GET {path}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Create `n` configmaps with kubectl on another thread.
fn load(s: &Server, prefix: &str, n: usize) -> std::thread::JoinHandle<()> {
    let (kubeconfig, prefix) = (s.kubeconfig(), prefix.to_string());
    std::thread::spawn(move || {
        for i in 0..n {
            let _ = std::process::Command::new("kubectl")
                .arg("--kubeconfig")
                .arg(&kubeconfig)
                .args(["create", "configmap", &format!("{prefix}{i}")])
                .output();
        }
    })
}

/// A CPU profile taken under load is a gzipped pprof `Profile` whose samples run
/// through kapi's own functions.
#[test]
fn cpu_profile_is_a_pprof_protobuf_with_kapi_frames() {
    let s = Server::start();
    let busy = load(&s, "load", 40);
    let p = Profile::gunzip(&get(&s, "/debug/pprof/profile?seconds=3"));
    busy.join().unwrap();
    assert_eq!(p.types(), [("samples", "count"), ("cpu", "nanoseconds")]);
    assert!(!p.samples.is_empty(), "no samples");
    let kapi_samples: i64 = p
        .samples
        .iter()
        .filter(|(locs, _)| p.names(locs).iter().any(|n| n.contains("kapi")))
        .map(|(_, v)| v[0])
        .sum();
    assert!(kapi_samples > 0, "no samples through kapi functions among {}", p.samples.len());
    let index = String::from_utf8(get(&s, "/debug/pprof/")).unwrap();
    for profile in ["profile", "heap", "allocs", "flamegraph"] {
        assert!(index.contains(&format!(">{profile}</a>")), "{index}");
    }
}

/// The heap profile is Go's: four sample types, the sampling rate as period, and stacks
/// that start at the allocating code (kapi's), not in the sampler.
#[test]
fn heap_profile_is_a_pprof_protobuf_with_kapi_stacks() {
    let s = Server::start();
    load(&s, "heap", 20).join().unwrap();
    let p = Profile::gunzip(&get(&s, "/debug/pprof/heap?gc=1"));
    assert_eq!(
        p.types(),
        [
            ("alloc_objects", "count"),
            ("alloc_space", "bytes"),
            ("inuse_objects", "count"),
            ("inuse_space", "bytes")
        ]
    );
    let rate = std::env::var("KAPI_MEM_PROFILE_RATE").ok().and_then(|r| r.parse().ok());
    assert_eq!(p.period, rate.unwrap_or(512 * 1024), "the sampling rate is the period");
    assert!(!p.samples.is_empty(), "no heap samples");
    let stacks: Vec<Vec<&str>> = p.samples.iter().map(|(l, _)| p.names(l)).collect();
    for stack in &stacks {
        let top = stack.first().copied().unwrap_or("");
        assert!(!top.contains("debug::heap::alloc") && !top.starts_with("backtrace::"), "{top}");
    }
    let kapi = p
        .samples
        .iter()
        .filter(|(l, v)| v[1] > 0 && p.names(l).iter().any(|n| n.starts_with("kapi::")))
        .count();
    assert!(kapi > 0, "no heap sample with a kapi frame among {}", p.samples.len());
    assert!(p.samples.iter().any(|(_, v)| v[3] > 0), "nothing in use");
    assert_eq!(p.default_sample_type, 0, "pprof's default (inuse_space) for heap");
    let allocs = Profile::gunzip(&get(&s, "/debug/pprof/allocs"));
    assert_eq!(allocs.types(), p.types());
    assert_eq!(allocs.strings[allocs.default_sample_type as usize], "alloc_space");
    let text = String::from_utf8(get(&s, "/debug/pprof/heap?debug=1")).unwrap();
    assert!(text.starts_with("heap profile: "), "{}", &text[..text.len().min(200)]);
    assert!(text.contains(&format!("@ heap/{}", 2 * p.period)));
}

/// The flame graph is an SVG whose frames include kapi's functions.
#[test]
fn flamegraph_is_an_svg_with_kapi_frames() {
    let s = Server::start();
    let busy = load(&s, "flame", 30);
    let svg = String::from_utf8(get(&s, "/debug/pprof/flamegraph?seconds=3")).unwrap();
    busy.join().unwrap();
    assert!(svg.starts_with("<?xml"), "{}", &svg[..svg.len().min(200)]);
    assert!(svg.contains("<svg") && svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains("<title>all ("));
    let kapi_frames = svg.matches("<title>kapi::").count();
    assert!(kapi_frames > 0, "no kapi frames in the flame graph");
    assert_eq!(svg.matches("<g>").count(), svg.matches("</g>").count());
}
