//! Watchers that never read (issue #14: 1,000 of them during 2,000 updates of 20 KB
//! objects took the server from 0.18 to 1.14 GB, none was closed, and the memory stayed
//! held after they left). Here 1,000 watches that send their request and never read
//! again (800 on HTTP/1.1 connections, 200 on HTTP/2: 150 connections of one stream and
//! 5 of ten; small socket receive buffers, [`RECEIVE_BUFFER`]) sit through 2,000
//! updates of 20 KB ConfigMaps. The server's RSS growth stays
//! under a bound (see [`PEAK_BOUND`]), every watcher's connection is closed by the
//! server, a normal client's GETs keep working meanwhile, and the memory comes back.

use kapi_e2e::raw::{Conn, TCP_ESTABLISHED, Target, rss_bytes};
use kapi_e2e::{Server, ServerOptions};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const H1_WATCHERS: usize = 800;
const H2_SINGLE: usize = 150;
const H2_MULTI: usize = 5;
const H2_STREAMS: u32 = 10;
const CONFIGMAPS: usize = 20;
const WRITERS: usize = 4;
const UPDATES: usize = 2000;
const VALUE_BYTES: usize = 20 * 1024;
/// RSS growth allowed at the peak: what 1,000 stalled watchers may hold by the
/// documented bound (about 256 KiB each: 64 KiB pipe, 64 KiB in hyper, 64 KiB in rustls,
/// two frames; docs/RELIABILITY.md), plus the connections' TLS and HTTP state and the
/// watch cache's window of 20 KB events. Before the fix the growth was about 960 MB.
const PEAK_BOUND: u64 = 450 << 20;
/// RSS growth allowed once the watchers are gone (before the fix: about 1 GB held). It
/// includes what the 2,000 updates themselves leave: the embedded store's history of 40
/// MB of values until its next compaction and the watch cache's window of 1,000 events
/// (measured: about 140 MiB in all).
const AFTER_BOUND: u64 = 200 << 20;

/// The watchers' socket receive buffer. With the kernel's defaults here (up to 32 MiB
/// per socket) a client that stops reading has its kernel absorb megabytes before the
/// server's writes stall; a small buffer makes that point come within the test's time.
/// The server's side (its send buffer, its RSS) is untouched.
const RECEIVE_BUFFER: usize = 16 * 1024;

const WATCH: &str = "/api/v1/namespaces/default/configmaps?watch=true";

fn value(i: usize) -> String {
    let c = (b'a' + (i % 26) as u8) as char;
    format!("{i}-{}", c.to_string().repeat(VALUE_BYTES))
}

fn create_configmaps(t: &Target) {
    let mut c = t.connect(false).expect("connect");
    for i in 0..CONFIGMAPS {
        let body = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("cm-{i}")},
            "data": {"k": value(i)},
        });
        let req = t.h1_request(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(body.to_string().as_bytes()),
        );
        let (code, body) = c.request(&req).expect("create");
        assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    }
}

/// Open `n` watchers of each kind in parallel: HTTP/1.1 connections, HTTP/2 connections
/// of one stream, HTTP/2 connections of [`H2_STREAMS`] streams.
fn open_watchers(t: &Target) -> Vec<Conn> {
    let kinds = [(H1_WATCHERS, false, 1), (H2_SINGLE, true, 1), (H2_MULTI, true, H2_STREAMS)];
    let threads: Vec<_> = kinds
        .into_iter()
        .flat_map(|(n, h2, streams)| {
            let per = n.div_ceil(4);
            (0..4).map(move |k| (per.min(n.saturating_sub(k * per)), h2, streams))
        })
        .map(|(n, h2, streams)| {
            let t = t.clone();
            std::thread::spawn(move || {
                (0..n)
                    .map(|_| {
                        let tcp = t.tcp_with_receive_buffer(RECEIVE_BUFFER).expect("tcp");
                        let mut c = t.connect_over(h2, tcp).expect("connect a watcher");
                        let req = if h2 {
                            t.h2_gets(WATCH, streams)
                        } else {
                            t.h1_request("GET", WATCH, None)
                        };
                        c.send(&req).expect("send the watch");
                        c
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    threads.into_iter().flat_map(|h| h.join().expect("watcher thread")).collect()
}

fn update(t: &Target, writer: usize) {
    let mut c = t.connect(false).expect("connect a writer");
    for u in 0..UPDATES / WRITERS {
        let cm = writer + WRITERS * (u % (CONFIGMAPS / WRITERS));
        let body = serde_json::json!({"data": {"k": value(u * WRITERS + writer)}});
        let path = format!("/api/v1/namespaces/default/configmaps/cm-{cm}");
        let req = t.h1_request("PATCH", &path, Some(body.to_string().as_bytes()));
        let (code, body) = c.request(&req).expect("update");
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    }
}

/// GETs of one ConfigMap on a keep-alive connection until `stop`; how many succeeded.
fn reader(t: Target, stop: Arc<AtomicBool>) -> usize {
    let mut c = t.connect(false).expect("connect the reader");
    let req = t.h1_request("GET", "/api/v1/namespaces/default/configmaps/cm-0", None);
    let mut ok = 0;
    while !stop.load(Ordering::Relaxed) {
        let (code, _) = c.request(&req).expect("a GET during the updates failed");
        assert_eq!(code, 200);
        ok += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    ok
}

/// Peak RSS of `pid`, sampled every 100 ms until `stop`.
fn sampler(pid: u32, stop: Arc<AtomicBool>, peak: Arc<AtomicU64>) {
    while !stop.load(Ordering::Relaxed) {
        peak.fetch_max(rss_bytes(pid), Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn watchers_that_never_read_are_closed_and_their_memory_is_bounded_and_returned() {
    // A client that stops reading is let go after 5 s; a watch the hub ended (its
    // producer fell behind) finishes its response, and its connection idles out in 10 s.
    let flags = ["--write-stall-timeout", "5s", "--idle-connection-timeout", "10s"];
    let extra_args = flags.iter().map(|f| f.to_string()).collect();
    let s = Server::start_with(ServerOptions { extra_args, ..Default::default() });
    let pid = s.pid().expect("pid");
    let t = Target::of(&s);
    create_configmaps(&t);
    let baseline = rss_bytes(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampling = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || sampler(pid, stop, peak))
    };
    let start = Instant::now();
    let watchers = open_watchers(&t);
    assert_eq!(watchers.len(), H1_WATCHERS + H2_SINGLE + H2_MULTI);
    let reading = {
        let (t, stop) = (t.clone(), stop.clone());
        std::thread::spawn(move || reader(t, stop))
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let t = t.clone();
            std::thread::spawn(move || update(&t, w))
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    eprintln!("{UPDATES} updates done after {:?}", start.elapsed());

    let all_closed = kapi_e2e::eventually(Duration::from_secs(30), || {
        watchers.iter().all(|c| c.tcp_state() != TCP_ESTABLISHED)
    });
    let open = watchers.iter().filter(|c| c.tcp_state() == TCP_ESTABLISHED).count();
    stop.store(true, Ordering::Relaxed);
    let gets = reading.join().expect("the reader's GETs failed");
    sampling.join().expect("sampler");
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "baseline {} MiB, peak {} MiB, {gets} GETs, closed after {:?}",
        baseline >> 20,
        peak >> 20,
        start.elapsed()
    );
    assert!(all_closed, "{open} of {} watchers are still connected", watchers.len());
    assert!(gets > 0, "no GET completed during the updates");
    let growth = peak.saturating_sub(baseline);
    assert!(growth < PEAK_BOUND, "RSS grew by {} MiB", growth >> 20);

    drop(watchers);
    let mut after = rss_bytes(pid);
    // The allocator hands freed pages back lazily, on later allocations of the thread
    // that freed them: a server that has gone quiet keeps them. So, as a real server's
    // traffic does, a few requests on fresh connections (spread over the cores) go on
    // while the RSS is read.
    let get = t.h1_request("GET", "/api/v1/namespaces/default/configmaps/cm-0", None);
    let returned = kapi_e2e::eventually(Duration::from_secs(20), || {
        for _ in 0..4 {
            if let Ok(mut c) = t.connect(false) {
                let _ = c.request(&get);
            }
        }
        after = rss_bytes(pid);
        after.saturating_sub(baseline) < AFTER_BOUND
    });
    eprintln!("after the watchers left: {} MiB", after >> 20);
    assert!(returned, "RSS stayed {} MiB above the baseline", (after - baseline) >> 20);

    // The server still serves, watches included.
    let mut c = t.connect(false).expect("connect");
    let w = "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1";
    let (code, body) = c.request(&t.h1_request("GET", w, None)).expect("watch");
    assert_eq!(code, 200);
    assert!(body.len() > CONFIGMAPS * VALUE_BYTES, "the new watch got its initial events");
}
