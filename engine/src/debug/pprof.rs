//! /debug/pprof/: an index, and `profile?seconds=N`, a CPU profile of every thread of the
//! process sampled at 100 Hz (Go's rate) as a gzipped pprof `Profile` protobuf. One
//! profile runs at a time, as upstream.

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

/// Serve a /debug/pprof path.
pub async fn handle(path: &str, query: Option<&str>) -> Response {
    match path.trim_start_matches("/debug/pprof").trim_matches('/') {
        "" => text(200, "text/html; charset=utf-8", INDEX),
        "profile" => profile(query).await,
        _ => text(404, "text/plain; charset=utf-8", "Unknown profile\n"),
    }
}

const INDEX: &str = "<html><head><title>/debug/pprof/</title></head><body>\n\
<p>/debug/pprof/</p>\n\
<p>Types of profiles available:</p>\n\
<table><thead><td>Count</td><td>Profile</td></thead>\n\
<tr><td></td><td><a href='profile?debug=1'>profile</a></td></tr>\n\
</table>\n\
<p>profile: CPU profile. You can specify the duration in the seconds GET parameter. \
After you get the profile file, use the go tool pprof command to investigate the profile.</p>\n\
</body></html>\n";

async fn profile(query: Option<&str>) -> Response {
    let params = parse_query(query);
    let seconds = match params.get("seconds").map(|s| s.parse::<u64>()) {
        None => DEFAULT_SECONDS,
        Some(Ok(n)) if (1..=MAX_SECONDS).contains(&n) => n,
        Some(_) => return text(400, "text/plain; charset=utf-8", "Bad Request: invalid seconds\n"),
    };
    let guard = match pprof::ProfilerGuardBuilder::default()
        .frequency(100)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()
    {
        Ok(g) => g,
        Err(e) => {
            let msg = format!("Could not enable CPU profiling: {e}\n");
            return text(500, "text/plain; charset=utf-8", msg);
        }
    };
    monoio::time::sleep(Duration::from_secs(seconds)).await;
    match encode(&guard) {
        Ok(bytes) => http::Response::builder()
            .status(200)
            .header(http::header::CONTENT_TYPE, "application/octet-stream")
            .header(http::header::CONTENT_DISPOSITION, "attachment; filename=\"profile\"")
            .body(ResponseBody::full(bytes))
            .unwrap_or_else(|_| http::Response::new(ResponseBody::empty())),
        Err(e) => text(500, "text/plain; charset=utf-8", format!("profiling failed: {e}\n")),
    }
}

/// The gzipped pprof protobuf of what `guard` sampled.
fn encode(guard: &pprof::ProfilerGuard<'_>) -> Result<Bytes, String> {
    use pprof::protos::Message as _;
    let report = guard.report().build().map_err(|e| e.to_string())?;
    let profile = report.pprof().map_err(|e| e.to_string())?;
    let raw = profile.encode_to_vec();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).map_err(|e| e.to_string())?;
    gz.finish().map(Bytes::from).map_err(|e| e.to_string())
}
