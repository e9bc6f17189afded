//! /debug/pprof/: an index; `profile?seconds=N`, a CPU profile of every thread of the
//! process sampled at 100 Hz (Go's rate) as a gzipped pprof `Profile` protobuf;
//! `flamegraph?seconds=N`, the same profile drawn as SVG; `heap`, the sampling
//! allocator's heap profile (gzipped pprof, or Go's legacy text with `debug=1`), and
//! `allocs`, the same samples with alloc_space shown first (as Go's).
//!
//! Invariants: one CPU profile (or flame graph) runs at a time, as upstream; the others
//! get a 500 while it runs. `gc=1` on heap is accepted and ignored (frees are recorded
//! as they happen, there is nothing to collect first).

use super::heap;
use crate::body::{Response, ResponseBody};
use crate::request::parse_query;
use bytes::Bytes;
use std::io::Write as _;
use std::time::Duration;

const DEFAULT_SECONDS: u64 = 30;
const MAX_SECONDS: u64 = 600;

fn text(code: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response {
    http::Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(ResponseBody::full(body.into()))
        .unwrap_or_else(|_| http::Response::new(ResponseBody::empty()))
}

fn attachment(bytes: Bytes, filename: &'static str) -> Response {
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "application/octet-stream")
        .header(http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\""))
        .body(ResponseBody::full(bytes))
        .unwrap_or_else(|_| http::Response::new(ResponseBody::empty()))
}

/// Serve a /debug/pprof path.
pub async fn handle(path: &str, query: Option<&str>) -> Response {
    match path.trim_start_matches("/debug/pprof").trim_matches('/') {
        "" => text(200, "text/html; charset=utf-8", INDEX),
        "profile" => profile(query).await,
        "flamegraph" => flamegraph(query).await,
        name @ ("heap" | "allocs") => {
            let query = query.map(str::to_string);
            let default_type = if name == "allocs" { "alloc_space" } else { "" };
            let failed = || Err("profiling thread failed".to_string());
            let run = move || heap_profile(query.as_deref(), default_type);
            match off_core(run, failed).await {
                Ok(HeapBody::Text(t)) => text(200, "text/plain; charset=utf-8", t),
                Ok(HeapBody::Gzipped(b)) => attachment(b, name_of(name)),
                Err(e) => text(500, "text/plain; charset=utf-8", format!("heap profile: {e}\n")),
            }
        }
        _ => text(404, "text/plain; charset=utf-8", "Unknown profile\n"),
    }
}

const INDEX: &str = "<html><head><title>/debug/pprof/</title></head><body>\n\
<p>/debug/pprof/</p>\n\
<p>Types of profiles available:</p>\n\
<table><thead><td>Count</td><td>Profile</td></thead>\n\
<tr><td></td><td><a href='allocs?debug=1'>allocs</a></td></tr>\n\
<tr><td></td><td><a href='flamegraph?seconds=30'>flamegraph</a></td></tr>\n\
<tr><td></td><td><a href='heap?debug=1'>heap</a></td></tr>\n\
<tr><td></td><td><a href='profile?debug=1'>profile</a></td></tr>\n\
</table>\n\
<ul>\n\
<li><div class=profile-name>allocs: </div> A sampling of all past memory allocations \
(the heap profile's samples, alloc_space shown first).</li>\n\
<li><div class=profile-name>flamegraph: </div> CPU profile drawn as an SVG flame graph. \
You can specify the duration in the seconds GET parameter.</li>\n\
<li><div class=profile-name>heap: </div> A sampling of memory allocations of live objects \
(and of all allocations since start). Sampled about every 512 KiB allocated.</li>\n\
<li><div class=profile-name>profile: </div> CPU profile. You can specify the duration in the \
seconds GET parameter. After you get the profile file, use the go tool pprof command to \
investigate the profile.</li>\n\
</ul>\n\
</body></html>\n";

/// The report of a CPU profile taken for the `seconds` of `query`.
async fn cpu_report(query: Option<&str>) -> Result<pprof::Report, Response> {
    let params = parse_query(query);
    let seconds = match params.get("seconds").map(|s| s.parse::<u64>()) {
        None => DEFAULT_SECONDS,
        Some(Ok(n)) if (1..=MAX_SECONDS).contains(&n) => n,
        Some(_) => {
            return Err(text(400, "text/plain; charset=utf-8", "Bad Request: invalid seconds\n"));
        }
    };
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(100)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
        .map_err(|e| {
            let msg = format!("Could not enable CPU profiling: {e}\n");
            text(500, "text/plain; charset=utf-8", msg)
        })?;
    monoio::time::sleep(Duration::from_secs(seconds)).await;
    let unresolved = guard.report().build_unresolved();
    drop(guard);
    let built = match unresolved {
        // Symbolizing can take a while (the first time it reads the debug information).
        Ok(u) => off_core(move || Ok(resolve(u)), || Err(pprof::Error::CreatingError)).await,
        Err(e) => Err(e),
    };
    built.map_err(|e| text(500, "text/plain; charset=utf-8", format!("profiling failed: {e}\n")))
}

/// Symbolize every stack of `u`.
fn resolve(u: pprof::UnresolvedReport) -> pprof::Report {
    let mut data = std::collections::HashMap::new();
    for (frames, count) in u.data {
        *data.entry(pprof::Frames::from(frames)).or_insert(0) += count;
    }
    pprof::Report { data, timing: u.timing }
}

/// Run `f` on a thread of its own so this core keeps serving meanwhile.
async fn off_core<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
    failed: impl FnOnce() -> T,
) -> T {
    let (tx, rx) = flume::bounded(1);
    let spawned = std::thread::Builder::new().name("kapi-pprof".into()).spawn(move || {
        let _ = tx.send(f());
    });
    match spawned {
        Ok(_) => rx.recv_async().await.unwrap_or_else(|_| failed()),
        Err(_) => failed(),
    }
}

async fn profile(query: Option<&str>) -> Response {
    let report = match cpu_report(query).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    use pprof::protos::Message as _;
    match report.pprof().map_err(|e| e.to_string()).and_then(|p| gzip(&p.encode_to_vec())) {
        Ok(bytes) => attachment(bytes, "profile"),
        Err(e) => text(500, "text/plain; charset=utf-8", format!("profiling failed: {e}\n")),
    }
}

async fn flamegraph(query: Option<&str>) -> Response {
    let report = match cpu_report(query).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let stacks = super::flamegraph::stacks_of(&report);
    let title = format!("kapi CPU flame graph ({} Hz)", report.timing.frequency);
    text(200, "image/svg+xml", super::flamegraph::render(&stacks, &title))
}

/// A heap profile: Go's legacy text (`debug=1`) or the gzipped protobuf.
enum HeapBody {
    Text(String),
    Gzipped(Bytes),
}

fn name_of(profile: &str) -> &'static str {
    if profile == "allocs" { "allocs" } else { "heap" }
}

fn heap_profile(query: Option<&str>, default_type: &str) -> Result<HeapBody, String> {
    let params = parse_query(query);
    let debug = params.get("debug").and_then(|d| d.parse::<u32>().ok()).unwrap_or(0);
    let (buckets, _dropped) = heap::alloc::TABLE.snapshot();
    let rate = heap::sampler::rate();
    let mut symbolize = heap::profile::resolve;
    if debug > 0 {
        return Ok(HeapBody::Text(heap::profile::text(&buckets, rate, &mut symbolize)));
    }
    use pprof::protos::Message as _;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    let profile = heap::profile::build(&buckets, rate, now, default_type, &mut symbolize);
    gzip(&profile.encode_to_vec()).map(HeapBody::Gzipped)
}

fn gzip(raw: &[u8]) -> Result<Bytes, String> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(raw).map_err(|e| e.to_string())?;
    gz.finish().map(Bytes::from).map_err(|e| e.to_string())
}
