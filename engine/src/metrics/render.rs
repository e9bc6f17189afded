//! The Prometheus text exposition format (version 0.0.4) of every metric, with
//! upstream's HELP texts and stability markers.

use super::histogram::Histogram;
use super::{CoreData, RequestLabels, process, snapshot};
use crate::app::App;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

/// Escape a label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", esc(v))).collect();
    format!("{{{}}}", inner.join(","))
}

fn request_pairs(l: &RequestLabels) -> Vec<(&'static str, String)> {
    vec![
        ("component", "apiserver".into()),
        ("dry_run", if l.dry_run { "All".into() } else { String::new() }),
        ("group", l.group.clone()),
        ("resource", l.resource.clone()),
        ("scope", l.scope.into()),
        ("subresource", l.subresource.clone()),
        ("verb", l.verb.into()),
        ("version", l.version.clone()),
    ]
}

pub(super) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

pub(super) fn histogram(out: &mut String, name: &str, pairs: &[(&str, &str)], h: &Histogram) {
    for (le, n) in h.cumulative() {
        let mut p = pairs.to_vec();
        p.push(("le", &le));
        let _ = writeln!(out, "{name}_bucket{} {n}", labels(&p));
    }
    let _ = writeln!(out, "{name}_sum{} {}", labels(pairs), h.sum);
    let _ = writeln!(out, "{name}_count{} {}", labels(pairs), h.count);
}

fn as_refs<'a>(p: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    p.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn sorted<K: Ord + Clone, V>(m: &HashMap<K, V>) -> Vec<(&K, &V)> {
    let mut v: Vec<(&K, &V)> = m.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

impl PartialOrd for RequestLabels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RequestLabels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |l: &RequestLabels| {
            (l.group.clone(), l.resource.clone(), l.subresource.clone(), l.verb, l.scope)
        };
        key(self).cmp(&key(other))
    }
}

fn requests(out: &mut String, d: &CoreData) {
    header(
        out,
        "apiserver_request_total",
        "counter",
        "[STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
    );
    for (l, codes) in sorted(&d.requests) {
        for (code, n) in codes {
            let mut p = request_pairs(l);
            p.insert(0, ("code", code.to_string()));
            let _ = writeln!(out, "apiserver_request_total{} {n}", labels(&as_refs(&p)));
        }
    }
    header(
        out,
        "apiserver_request_duration_seconds",
        "histogram",
        "[STABLE] Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
    );
    for (l, h) in sorted(&d.durations) {
        histogram(out, "apiserver_request_duration_seconds", &as_refs(&request_pairs(l)), h);
    }
    header(
        out,
        "apiserver_response_sizes",
        "histogram",
        "[STABLE] Response size distribution in bytes for each group, version, verb, resource, subresource, scope and component.",
    );
    for (l, h) in sorted(&d.sizes) {
        let p: Vec<(&'static str, String)> =
            request_pairs(l).into_iter().filter(|(k, _)| *k != "dry_run").collect();
        histogram(out, "apiserver_response_sizes", &as_refs(&p), h);
    }
    header(
        out,
        "apiserver_current_inflight_requests",
        "gauge",
        "[STABLE] Maximal number of currently used inflight request limit of this apiserver per request kind in last second.",
    );
    for kind in ["mutating", "readOnly"] {
        let n = d.inflight.get(kind).copied().unwrap_or(0).max(0);
        let _ = writeln!(
            out,
            "apiserver_current_inflight_requests{} {n}",
            labels(&[("request_kind", kind)])
        );
    }
    header(
        out,
        "apiserver_longrunning_requests",
        "gauge",
        "[STABLE] Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component. Not all requests are tracked this way.",
    );
    for (l, n) in sorted(&d.longrunning) {
        let p: Vec<(&'static str, String)> =
            request_pairs(l).into_iter().filter(|(k, _)| *k != "dry_run").collect();
        let _ =
            writeln!(out, "apiserver_longrunning_requests{} {}", labels(&as_refs(&p)), (*n).max(0));
    }
}

fn phases(out: &mut String, d: &CoreData) {
    header(
        out,
        "kapi_request_phase_duration_seconds",
        "histogram",
        "Time requests spend in each phase: read, authentication, authorization, decode, admission, storage, encode.",
    );
    for (phase, h) in sorted(&d.phases) {
        histogram(out, "kapi_request_phase_duration_seconds", &[("phase", phase)], h);
    }
}

fn watches(out: &mut String, d: &CoreData) {
    header(
        out,
        "apiserver_watch_events_total",
        "counter",
        "[ALPHA] Number of events sent in watch clients",
    );
    for ((g, v, k), n) in sorted(&d.watch_events) {
        let _ = writeln!(
            out,
            "apiserver_watch_events_total{} {n}",
            labels(&[("group", g), ("kind", k), ("version", v)])
        );
    }
    header(
        out,
        "apiserver_watch_events_sizes",
        "histogram",
        "[ALPHA] Watch event size distribution in bytes",
    );
    for ((g, v, k), h) in sorted(&d.watch_sizes) {
        histogram(
            out,
            "apiserver_watch_events_sizes",
            &[("group", g), ("kind", k), ("version", v)],
            h,
        );
    }
    header(
        out,
        "apiserver_terminated_watchers_total",
        "counter",
        "[ALPHA] Counter of watchers closed due to unresponsiveness broken by resource type.",
    );
    for ((g, r), n) in sorted(&d.terminated_watchers) {
        let _ = writeln!(
            out,
            "apiserver_terminated_watchers_total{} {n}",
            labels(&[("group", g), ("resource", r)])
        );
    }
}

/// `pods`, `deployments.apps`: upstream's resource label.
fn resource_name(rt: &kapi_codec::ResourceType) -> String {
    if rt.group.is_empty() { rt.plural.to_string() } else { format!("{}.{}", rt.plural, rt.group) }
}

fn storage(out: &mut String, app: &App) {
    header(
        out,
        "apiserver_storage_objects",
        "gauge",
        "[STABLE] Number of stored objects at the time of last check split by kind. In case of a fetching error, the value will be -1.",
    );
    let mut caches: Vec<(String, _)> =
        app.caches.started(app).into_iter().map(|(rt, c)| (resource_name(&rt), c)).collect();
    caches.sort_by(|a, b| a.0.cmp(&b.0));
    for (resource, c) in &caches {
        let n = c.len();
        let _ = writeln!(out, "apiserver_storage_objects{} {n}", labels(&[("resource", resource)]));
    }
    header(
        out,
        "apiserver_watch_cache_resource_version",
        "gauge",
        "[ALPHA] Current resource version of watch cache broken by resource type.",
    );
    for (name, c) in &caches {
        let _ = writeln!(
            out,
            "apiserver_watch_cache_resource_version{} {}",
            labels(&[("resource", name)]),
            c.revision()
        );
    }
    header(
        out,
        "kapi_watch_cache_watchers",
        "gauge",
        "Watchers registered with each resource's watch cache.",
    );
    for (name, c) in &caches {
        let _ = writeln!(
            out,
            "kapi_watch_cache_watchers{} {}",
            labels(&[("resource", name)]),
            c.watcher_count()
        );
    }
    cache_counters(out, &caches);
    header(
        out,
        "kapi_watch_cache_pending_events",
        "gauge",
        "Store events queued for each resource's watch cache and not applied yet.",
    );
    for (name, c) in &caches {
        let _ = writeln!(
            out,
            "kapi_watch_cache_pending_events{} {}",
            labels(&[("resource", name)]),
            c.backlog()
        );
    }
}

/// Upstream's watch cache counters, per resource.
fn cache_counters(out: &mut String, caches: &[(String, std::sync::Arc<crate::cache::Cache>)]) {
    type Read = fn(&kapi_storage::cache::CacheStats) -> u64;
    let series: [(&str, &str, Read); 3] = [
        (
            "apiserver_watch_cache_events_received_total",
            "[ALPHA] Counter of events received in watch cache broken by resource type.",
            |s| s.received.load(Relaxed),
        ),
        (
            "apiserver_watch_cache_events_dispatched_total",
            "[ALPHA] Counter of events dispatched in watch cache broken by resource type.",
            |s| s.dispatched.load(Relaxed),
        ),
        (
            "apiserver_watch_cache_initializations_total",
            "[ALPHA] Counter of watch cache initializations broken by resource type.",
            |s| s.initializations.load(Relaxed),
        ),
    ];
    for (name, help, value) in series {
        header(out, name, "counter", help);
        for (resource, c) in caches {
            let _ =
                writeln!(out, "{name}{} {}", labels(&[("resource", resource)]), value(c.stats()));
        }
    }
}

/// Response buffer pool figures (`buffers.rs`), one series per thread pool.
fn buffer_pools(out: &mut String) {
    let cores = crate::buffers::stats();
    let series: [(&str, &str, fn(&crate::buffers::PoolStats) -> u64); 4] = [
        (
            "kapi_buffer_pool_hits_total",
            "Response encodes that reused a pooled buffer, per thread pool (one per worker core).",
            |s| s.hits,
        ),
        (
            "kapi_buffer_pool_misses_total",
            "Response encodes that allocated a new buffer, per thread pool (one per worker core).",
            |s| s.misses,
        ),
        (
            "kapi_buffer_pool_returned_total",
            "Buffers put back in the pool after their bytes were sent, per thread pool (one per worker core).",
            |s| s.returned,
        ),
        (
            "kapi_buffer_pool_discarded_total",
            "Buffers freed instead of pooled (pool full or too large), per thread pool (one per worker core).",
            |s| s.discarded,
        ),
    ];
    for (name, help, value) in series {
        header(out, name, "counter", help);
        for (core, s) in cores.iter().enumerate() {
            let _ = writeln!(out, "{name}{} {}", labels(&[("pool", &core.to_string())]), value(s));
        }
    }
}

fn io(out: &mut String) {
    let cores = super::io::snapshot();
    let series: [(&str, &str, &str, fn(&super::io::IoFigures) -> i64); 6] = [
        (
            "kapi_connections_accepted_total",
            "counter",
            "Client connections accepted by each core.",
            |f| f.accepted as i64,
        ),
        ("kapi_connections_open", "gauge", "Client connections open on each core.", |f| f.open),
        (
            "kapi_io_read_operations_total",
            "counter",
            "Completed recv syscalls on client connections, per core (monoio poll-io: readiness from the core's io_uring driver, then a non-blocking recv; EOF and errors included).",
            |f| f.reads as i64,
        ),
        (
            "kapi_io_read_bytes_total",
            "counter",
            "Bytes received on client connections, per core.",
            |f| f.read_bytes as i64,
        ),
        (
            "kapi_io_write_operations_total",
            "counter",
            "Completed send syscalls on client connections, per core (monoio poll-io: readiness from the core's io_uring driver, then a non-blocking send; errors included).",
            |f| f.writes as i64,
        ),
        (
            "kapi_io_write_bytes_total",
            "counter",
            "Bytes sent on client connections, per core.",
            |f| f.written_bytes as i64,
        ),
    ];
    for (name, kind, help, value) in series {
        header(out, name, kind, help);
        for f in &cores {
            let core = f.core.to_string();
            let _ = writeln!(out, "{name}{} {}", labels(&[("core", &core)]), value(f));
        }
    }
}

fn etcd(out: &mut String) {
    let figures = super::etcd::snapshot();
    if figures.is_empty() {
        return;
    }
    let name = "etcd_request_duration_seconds";
    header(
        out,
        name,
        "histogram",
        "Etcd request latency in seconds for each operation and object type.",
    );
    for ((op, kind), h) in &figures {
        histogram(out, name, &[("operation", op), ("type", kind)], h);
    }
}

fn audit(out: &mut String, d: &CoreData) {
    let name = "apiserver_audit_event_total";
    header(
        out,
        name,
        "counter",
        "[ALPHA] Counter of audit events generated and sent to the audit backend.",
    );
    let _ = writeln!(out, "{name} {}", d.audit_events);
    let name = "apiserver_audit_error_total";
    header(
        out,
        name,
        "counter",
        "[ALPHA] Counter of audit events that failed to be audited properly. Plugin identifies the plugin affected by the error.",
    );
    for (plugin, n) in sorted(&d.audit_errors) {
        let _ = writeln!(out, "{name}{} {n}", labels(&[("plugin", plugin)]));
    }
    let name = "apiserver_audit_requests_rejected_total";
    header(
        out,
        name,
        "counter",
        "[ALPHA] Counter of apiserver requests rejected due to an error in audit logging backend.",
    );
    let _ = writeln!(out, "{name} {}", d.audit_rejected);
    let name = "apiserver_audit_level_total";
    header(
        out,
        name,
        "counter",
        "[ALPHA] Counter of policy levels for audit events (1 per request).",
    );
    for (level, n) in sorted(&d.audit_levels) {
        let _ = writeln!(out, "{name}{} {n}", labels(&[("level", level)]));
    }
}

/// The whole /metrics document.
pub fn render(app: &App) -> String {
    let d = snapshot();
    let mut out = String::with_capacity(64 * 1024);
    requests(&mut out, &d);
    phases(&mut out, &d);
    audit(&mut out, &d);
    super::flowcontrol::render(&mut out, &d.flow, app);
    watches(&mut out, &d);
    storage(&mut out, app);
    etcd(&mut out);
    io(&mut out);
    buffer_pools(&mut out);
    for (name, kind, help, value) in process::samples() {
        header(&mut out, name, kind, help);
        let _ = writeln!(out, "{name} {value}");
    }
    out
}
