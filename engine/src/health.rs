//! /healthz, /livez, /readyz with named checks (`/readyz/ping`, `?verbose`,
//! `?exclude=`), answered without authentication as upstream's default RBAC allows.
//! /readyz fails once shutdown has begun. The `etcd` check reports the store's last
//! health probe, made off the request path every second ([`start_storage_probe`]); the
//! readiness-only `etcd-writable` check reports whether the store takes writes (it fails
//! while the embedded store's disk is full, and passes again once it takes writes).

use crate::app::App;
use crate::body::{Response, ResponseBody};
use crate::request::parse_query;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Probe the store every second until shutdown; the results feed the `etcd` and
/// `etcd-writable` checks.
pub fn start_storage_probe(app: Arc<App>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("kapi-health".into()).spawn(move || {
        while !app.is_shutting_down() {
            let ok = futures_executor::block_on(app.store.check_health()).is_ok();
            if ok != app.storage_healthy.swap(ok, Ordering::AcqRel) {
                tracing::warn!("storage health: {}", if ok { "ok" } else { "failing" });
            }
            let writable = futures_executor::block_on(app.store.check_writable());
            let ok = writable.is_ok();
            if ok != app.storage_writable.swap(ok, Ordering::AcqRel) {
                match writable {
                    Ok(()) => tracing::warn!("storage writes: ok"),
                    Err(e) => tracing::warn!("storage writes: failing ({e})"),
                }
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    })
}

/// One named check: (name, ok).
type Check = (&'static str, bool);

fn checks(app: &App, endpoint: &str) -> Vec<Check> {
    let etcd = app.storage_healthy.load(Ordering::Acquire);
    let mut out = vec![("ping", true), ("log", true), ("etcd", etcd)];
    if endpoint == "readyz" {
        out.push(("etcd-writable", app.storage_writable.load(Ordering::Acquire)));
        out.push(("shutdown", !app.is_shutting_down()));
    }
    out
}

/// Answer a health endpoint, or None when `path` is not one.
pub fn handle(app: &App, path: &str, query: Option<&str>) -> Option<Response> {
    let trimmed = path.trim_start_matches('/');
    let (endpoint, single) = match trimmed.split_once('/') {
        Some((e, c)) => (e, Some(c)),
        None => (trimmed, None),
    };
    if !matches!(endpoint, "healthz" | "livez" | "readyz") {
        return None;
    }
    let params = parse_query(query);
    let all = checks(app, endpoint);
    if let Some(name) = single.filter(|s| !s.is_empty()) {
        let found = all.iter().find(|(n, _)| *n == name);
        return Some(match found {
            Some((_, true)) => text(200, "ok".into()),
            Some((n, false)) => text(500, format!("internal server error: {n} check failed")),
            None => text(404, "404 page not found\n".into()),
        });
    }
    let excluded: Vec<&str> =
        query.unwrap_or("").split('&').filter_map(|p| p.strip_prefix("exclude=")).collect();
    let active: Vec<&Check> = all.iter().filter(|(n, _)| !excluded.contains(n)).collect();
    let ok = active.iter().all(|(_, ok)| *ok);
    let verbose = params.contains_key("verbose");
    if !verbose && ok {
        return Some(text(200, "ok".into()));
    }
    let mut body = String::new();
    for (name, good) in &active {
        if *good {
            body.push_str(&format!("[+]{name} ok\n"));
        } else {
            body.push_str(&format!("[-]{name} failed: reason withheld\n"));
        }
    }
    for name in &excluded {
        body.push_str(&format!("[+]{name} excluded: ok\n"));
    }
    if ok {
        body.push_str(&format!("{endpoint} check passed\n"));
        Some(text(200, body))
    } else {
        body.push_str(&format!("{endpoint} check failed\n"));
        Some(text(500, body))
    }
}

fn text(code: u16, body: String) -> Response {
    http::Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("X-Content-Type-Options", "nosniff")
        .body(ResponseBody::full(body))
        .unwrap_or_else(|_| http::Response::new(ResponseBody::empty()))
}
