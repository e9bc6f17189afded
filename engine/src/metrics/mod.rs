//! Prometheus metrics with upstream kube-apiserver's names, labels and buckets.
//!
//! Counting is per core: each worker thread owns a `CoreMetrics` (registered once, on
//! first use) behind a mutex that only its own thread takes on the hot path; a scrape
//! sums every core's figures. Nothing on the request path touches another core's memory.
//!
//! - [`flowcontrol`]: `apiserver_flowcontrol_*` (priority and fairness).
//! - [`etcd`]: `etcd_request_duration_seconds` from the etcd backend.
//! - [`histogram`]: fixed-bucket histograms.
//! - [`io`]: per-core connection I/O counters (`kapi_io_*`, `kapi_connections_*`).
//! - [`process`]: `process_*` figures from /proc.
//! - [`render`]: the text exposition format.

pub mod etcd;
pub mod flowcontrol;
pub mod histogram;
pub mod io;
pub mod process;
pub mod render;

use histogram::Histogram;
use kapi_codec::ResourceType;
use kapi_codec::registry::Name;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};

/// Upstream's `apiserver_request_duration_seconds` buckets.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];
/// Upstream's `apiserver_response_sizes` buckets: 1000 * 10^k, k = 0..8.
pub const SIZE_BUCKETS: &[f64] = &[1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];
/// Upstream's `apiserver_watch_events_sizes` buckets: 1024 * 2^k, k = 0..8.
pub const WATCH_SIZE_BUCKETS: &[f64] =
    &[1024.0, 2048.0, 4096.0, 8192.0, 16384.0, 32768.0, 65536.0, 131072.0];

/// Buckets of `kapi_request_phase_duration_seconds`: 10 us to 10 s.
pub const PHASE_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// (group, version, kind) of watch event metrics.
pub type WatchKey = (Name, Name, Name);

/// The labels of one request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RequestLabels {
    pub verb: &'static str,
    pub dry_run: bool,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub scope: &'static str,
}

#[derive(Default)]
pub struct CoreData {
    /// Requests per label set, by response code.
    pub requests: HashMap<RequestLabels, std::collections::BTreeMap<u16, u64>>,
    pub durations: HashMap<RequestLabels, Histogram>,
    pub sizes: HashMap<RequestLabels, Histogram>,
    pub inflight: HashMap<&'static str, i64>,
    pub longrunning: HashMap<RequestLabels, i64>,
    pub watch_events: HashMap<WatchKey, u64>,
    pub watch_sizes: HashMap<WatchKey, Histogram>,
    /// Watches ended because their client stopped reading, by (group, resource).
    pub terminated_watchers: HashMap<(Name, Name), u64>,
    pub phases: HashMap<&'static str, Histogram>,
    /// `apiserver_audit_event_total`.
    pub audit_events: u64,
    /// `apiserver_audit_error_total` by plugin.
    pub audit_errors: HashMap<&'static str, u64>,
    /// `apiserver_audit_requests_rejected_total`.
    pub audit_rejected: u64,
    /// `apiserver_audit_level_total` by level.
    pub audit_levels: HashMap<&'static str, u64>,
    /// `apiserver_flowcontrol_*` per FlowSchema and priority level.
    pub flow: flowcontrol::FlowData,
}

/// One core's figures.
#[derive(Default)]
pub struct CoreMetrics {
    data: Mutex<CoreData>,
    /// Requests waiting and executing under priority and fairness, by
    /// `flowcontrol::read_write_index` (written by this core only, read by the `kapi-apf`
    /// thread's sampling without a lock).
    apf: [AtomicI64; 4],
}

fn cores() -> &'static Mutex<Vec<Arc<CoreMetrics>>> {
    static CORES: OnceLock<Mutex<Vec<Arc<CoreMetrics>>>> = OnceLock::new();
    CORES.get_or_init(Mutex::default)
}

thread_local! {
    static CORE: Arc<CoreMetrics> = {
        let core = Arc::new(CoreMetrics::default());
        cores().lock().push(core.clone());
        core
    };
}

/// Run `f` on this thread's figures.
pub fn with_core<R>(f: impl FnOnce(&mut CoreData) -> R) -> R {
    CORE.with(|c| f(&mut c.data.lock()))
}

/// The histogram of `key`, created on first use (the key is copied only then).
pub(crate) fn histogram_of<'m, K: Clone + Eq + std::hash::Hash>(
    map: &'m mut HashMap<K, Histogram>,
    key: &K,
    bounds: &'static [f64],
) -> &'m mut Histogram {
    if !map.contains_key(key) {
        map.insert(key.clone(), Histogram::new(bounds));
    }
    map.get_mut(key).expect("inserted above")
}

/// A finished request.
pub fn request_done(labels: &RequestLabels, code: u16, seconds: f64, size: Option<usize>) {
    with_core(|d| {
        if let Some(n) = size {
            histogram_of(&mut d.sizes, labels, SIZE_BUCKETS).observe(n as f64);
        }
        histogram_of(&mut d.durations, labels, DURATION_BUCKETS).observe(seconds);
        if !d.requests.contains_key(labels) {
            d.requests.insert(labels.clone(), Default::default());
        }
        if let Some(codes) = d.requests.get_mut(labels) {
            *codes.entry(code).or_default() += 1;
        }
    });
}

/// `request_kind` is `readOnly` or `mutating`; `delta` is +1 on start, -1 at the end.
pub fn inflight(request_kind: &'static str, delta: i64) {
    with_core(|d| *d.inflight.entry(request_kind).or_default() += delta);
}

/// A request starts (+1) or stops (-1) waiting or executing under priority and fairness
/// (`index`: `flowcontrol::read_write_index`).
pub fn apf_requests(index: usize, delta: i64) {
    CORE.with(|c| c.apf[index].fetch_add(delta, Ordering::Relaxed));
}

/// The requests waiting and executing under priority and fairness now, every core's
/// summed (by `flowcontrol::read_write_index`).
pub fn apf_requests_now() -> [i64; 4] {
    let mut total = [0; 4];
    for core in cores().lock().iter() {
        for (t, n) in total.iter_mut().zip(&core.apf) {
            *t += n.load(Ordering::Relaxed);
        }
    }
    total.map(|n| n.max(0))
}

/// A long-running request (watch) starts (+1) or ends (-1).
pub fn longrunning(labels: &RequestLabels, delta: i64) {
    with_core(|d| *d.longrunning.entry(labels.clone()).or_default() += delta);
}

/// One watch event of `kind` sent, `size` bytes.
pub fn watch_event(rt: &ResourceType, size: usize) {
    with_core(|d| {
        let key = (rt.group.clone(), rt.version.clone(), rt.kind.clone());
        histogram_of(&mut d.watch_sizes, &key, WATCH_SIZE_BUCKETS).observe(size as f64);
        *d.watch_events.entry(key).or_default() += 1;
    });
}

/// A watch of `resource` ended because its client stopped reading (upstream's
/// `apiserver_terminated_watchers_total`).
pub fn watch_terminated(rt: &ResourceType) {
    with_core(|d| {
        *d.terminated_watchers.entry((rt.group.clone(), rt.plural.clone())).or_default() += 1
    });
}

/// Time spent in one phase of a request (`read`, `authentication`, `authorization`,
/// `decode`, `admission`, `storage`, `encode`).
pub fn phase(name: &'static str, elapsed: std::time::Duration) {
    with_core(|d| {
        d.phases
            .entry(name)
            .or_insert_with(|| Histogram::new(PHASE_BUCKETS))
            .observe(elapsed.as_secs_f64())
    });
}

/// Run `f`, recording its duration as phase `name`.
pub fn timed<R>(name: &'static str, f: impl FnOnce() -> R) -> R {
    let start = std::time::Instant::now();
    let out = f();
    phase(name, start.elapsed());
    out
}

/// An audit event was handed to the backends.
pub fn audit_event() {
    with_core(|d| d.audit_events += 1);
}

/// `n` audit events failed in `plugin` (`buffered`, `log`, `webhook`).
pub fn audit_error(plugin: &'static str, n: u64) {
    with_core(|d| *d.audit_errors.entry(plugin).or_default() += n);
}

/// A request was refused because its audit event could not be stored.
pub fn audit_rejected() {
    with_core(|d| d.audit_rejected += 1);
}

/// The audit policy gave a request `level`.
pub fn audit_level(level: &'static str) {
    with_core(|d| *d.audit_levels.entry(level).or_default() += 1);
}

/// Every core's figures summed.
pub fn snapshot() -> CoreData {
    let mut total = CoreData::default();
    for core in cores().lock().iter() {
        let d = core.data.lock();
        for (k, codes) in &d.requests {
            let t = total.requests.entry(k.clone()).or_default();
            for (code, n) in codes {
                *t.entry(*code).or_default() += n;
            }
        }
        merge_histograms(&mut total.durations, &d.durations);
        merge_histograms(&mut total.sizes, &d.sizes);
        for (k, v) in &d.inflight {
            *total.inflight.entry(k).or_default() += v;
        }
        for (k, v) in &d.longrunning {
            *total.longrunning.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &d.watch_events {
            *total.watch_events.entry(k.clone()).or_default() += v;
        }
        merge_histograms(&mut total.watch_sizes, &d.watch_sizes);
        for (k, v) in &d.terminated_watchers {
            *total.terminated_watchers.entry(k.clone()).or_default() += v;
        }
        merge_histograms(&mut total.phases, &d.phases);
        total.audit_events += d.audit_events;
        total.audit_rejected += d.audit_rejected;
        for (k, v) in &d.audit_errors {
            *total.audit_errors.entry(k).or_default() += v;
        }
        for (k, v) in &d.audit_levels {
            *total.audit_levels.entry(k).or_default() += v;
        }
        total.flow.merge(&d.flow);
    }
    total
}

fn merge_histograms<K: Clone + Eq + std::hash::Hash>(
    into: &mut HashMap<K, Histogram>,
    from: &HashMap<K, Histogram>,
) {
    for (k, h) in from {
        match into.get_mut(k) {
            Some(t) => t.merge(h),
            None => {
                into.insert(k.clone(), h.clone());
            }
        }
    }
}
