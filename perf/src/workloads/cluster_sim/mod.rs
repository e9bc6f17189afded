//! `cluster-sim`: N fake nodes, as kwok runs them, against the server. Setup creates each
//! Node (labelled `kapi-perf/sim=true`, with a Ready status, also written through
//! nodes/status) and its Lease in kube-node-lease. Then, for the run:
//!
//! - every node renews its Lease each `--lease-period` (10 s; an UPDATE of the last
//!   version it saw, spread evenly over the period): `update leases`;
//! - every node watches its pods (`fieldSelector=spec.nodeName=NODE`) and marks the pods
//!   bound to it Running, and finishes their deletion (see [`kubelet`]);
//! - the churn creates pods at `--pod-rate` (open loop: `create pods`), binds each to a
//!   node through pods/binding (`create pods/binding`), and deletes it after
//!   `--pod-lifetime` (`delete pods`);
//! - a controller-like reader LISTs the namespace's pods (`list pods`, from the cache)
//!   and GETs a node (`get nodes`) every `--list-period`.
//!
//! Everything goes over HTTP/2: the watches share one connection per
//! `--watches-per-connection` nodes and the writes a few more, so 5,000 nodes need about
//! 60 connections. Each verb's p99 is checked against upstream's SLOs.

pub mod kubelet;
pub mod objects;

use super::pods::{PodTemplate, pods_path};
use super::{Ctx, Measured, PerfError, SETUP_CLIENTS, expect, outcome, splitmix64};
use crate::client::{Client, ClientOptions, JSON, MERGE_PATCH, Req};
use crate::options::{Binding, ClusterSimArgs};
use crate::rate::{self, Mode, Window};
use crate::stats::{Outcome, Recorder};
use http::Method;
use serde::Deserialize;
use serde_json::json;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Node watches opened at once.
const OPENING: usize = 32;

/// State shared by the nodes, the churn and the reader.
pub struct Sim {
    pub writes: Client,
    pub watches: Client,
    pub stop: watch::Receiver<bool>,
    pub rec: Arc<Recorder>,
    /// The measured window, set once the watches are open.
    pub window: OnceLock<Window>,
    pub watch_seconds: u64,
    pub opened: AtomicU64,
    pub failed: AtomicU64,
    pub events: AtomicU64,
    /// Node watches the server refused at their list's version (opened at "0" instead).
    pub watch_fallbacks: AtomicU64,
    pub watch_error: Mutex<Option<String>>,
    /// Node watches being opened at once (their LIST and watch request).
    pub open_slots: tokio::sync::Semaphore,
    /// Pod lifecycles (bind, wait, delete) still going.
    pub live: AtomicUsize,
}

impl Sim {
    /// Record `outcome` of an operation started at `start`, if it started in the window.
    pub fn record_since(&self, op: &str, outcome: Outcome, start: Instant) {
        let Some(w) = self.window.get() else { return };
        if start >= w.measure_from && start < w.end {
            let now = Instant::now();
            self.rec.record(op, outcome, now - start, now);
        }
    }

    /// Record an event without latency (a failure) that happened at `at`.
    pub fn record_now(&self, op: &str, outcome: Outcome, at: Instant) {
        self.record_since(op, outcome, at);
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }
}

#[derive(Deserialize)]
struct Versioned {
    metadata: VersionMeta,
}

#[derive(Deserialize)]
struct VersionMeta {
    #[serde(rename = "resourceVersion", default)]
    rv: String,
}

pub fn rv_of(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Versioned>(body).ok().map(|v| v.metadata.rv)
}

/// Run the workload.
pub async fn run(ctx: &Ctx, args: &ClusterSimArgs) -> Result<Measured, PerfError> {
    let tpl = Arc::new(PodTemplate::load(&args.pod.pod_template)?);
    let nodes = args.nodes.max(1);
    let (stop_tx, stop) = watch::channel(false);
    let sim = Arc::new(new_sim(ctx, args, nodes, stop)?);
    ctx.note(&format!("creating {nodes} nodes and their leases"));
    ensure_lease_namespace(ctx).await?;
    let rvs = setup_nodes(ctx, nodes, args.lease_duration).await?;
    let watchers: Vec<_> = (0..nodes).map(|i| tokio::spawn(kubelet::run(sim.clone(), i))).collect();
    wait_open(ctx, &sim, nodes as u64).await?;
    let plan = ctx.plan_with(Mode::Open { rate: args.pod_rate, max_in_flight: ctx.concurrency });
    let win = plan.window(Instant::now());
    let _ = sim.window.set(win);
    let mut tasks: Vec<_> = rvs
        .into_iter()
        .enumerate()
        .map(|(i, rv)| tokio::spawn(renew_lease(sim.clone(), args.clone(), i, nodes, rv)))
        .collect();
    tasks.push(tokio::spawn(reader(sim.clone(), ctx.ns.clone(), args.list_period, nodes)));
    let bar = super::progress(ctx, sim.rec.clone(), win);
    let info = churn(ctx, args, &sim, tpl, nodes, &plan, win).await;
    bar.stop();
    wait_lifecycles(&sim, args.pod_lifetime + ctx.common.timeout).await;
    let _ = stop_tx.send(true);
    for t in tasks.into_iter().chain(watchers) {
        let _ = t.await;
    }
    if !ctx.common.keep {
        cleanup(ctx).await;
    }
    let mut m = Measured {
        ops: sim.rec.snapshot(),
        window: ctx.common.duration,
        extra: Default::default(),
    };
    super::add_schedule_lag(&mut m.extra, &info);
    m.extra.insert("nodes".into(), nodes.into());
    m.extra.insert("watch_connections".into(), nodes.div_ceil(watches_per_conn(args)).into());
    m.extra.insert("write_connections".into(), write_connections(args, nodes).into());
    m.extra.insert("watch_events".into(), sim.events.load(Ordering::Relaxed).into());
    m.extra.insert("pod_rate_target".into(), args.pod_rate.into());
    let fallbacks = sim.watch_fallbacks.load(Ordering::Relaxed);
    m.extra.insert("watch_fallbacks".into(), fallbacks.into());
    if fallbacks > 0 {
        ctx.note(&format!(
            "{fallbacks} node watches were refused at their LIST's resourceVersion and opened at 0"
        ));
    }
    Ok(m)
}

fn watches_per_conn(args: &ClusterSimArgs) -> usize {
    args.watches_per_connection.max(1)
}

fn write_connections(args: &ClusterSimArgs, nodes: usize) -> usize {
    args.write_connections.unwrap_or((nodes / 500).max(2))
}

fn new_sim(
    ctx: &Ctx,
    args: &ClusterSimArgs,
    nodes: usize,
    stop: watch::Receiver<bool>,
) -> Result<Sim, PerfError> {
    let c = &ctx.common;
    let h2 = |connections| ClientOptions {
        http2: true,
        protobuf: false,
        connections,
        timeout: c.timeout,
    };
    let writes = Client::new(&ctx.target, &h2(write_connections(args, nodes)))?;
    let watches = Client::new(&ctx.target, &h2(nodes.div_ceil(watches_per_conn(args))))?;
    let watch_seconds = (c.warmup + c.duration + c.timeout + args.pod_lifetime).as_secs() + 120;
    Ok(Sim {
        writes,
        watches,
        stop,
        rec: Arc::new(Recorder::new(Instant::now())),
        window: OnceLock::new(),
        watch_seconds,
        opened: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        events: AtomicU64::new(0),
        watch_fallbacks: AtomicU64::new(0),
        watch_error: Mutex::new(None),
        live: AtomicUsize::new(0),
        open_slots: tokio::sync::Semaphore::new(OPENING),
    })
}

pub async fn ensure_lease_namespace(ctx: &Ctx) -> Result<(), PerfError> {
    let body =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": objects::LEASE_NS}});
    let req = Req::new(Method::POST, "/api/v1/namespaces").body(body.to_string(), JSON).json();
    let r = ctx.setup.send(req).await?;
    expect(&r, &[201, 409], "creating kube-node-lease")
}

/// Run `f(i)` for `0..n`, `SETUP_CLIENTS` at a time; the results in order.
pub async fn parallel<T, F, Fut>(n: usize, f: F) -> Result<Vec<T>, PerfError>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, PerfError>> + Send,
{
    let (f, next) = (Arc::new(f), Arc::new(AtomicUsize::new(0)));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..SETUP_CLIENTS.min(n.max(1)) {
        let (f, next) = (f.clone(), next.clone());
        set.spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, PerfError>(done);
                }
                done.push((i, f(i).await?));
            }
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(joined) = set.join_next().await {
        all.extend(joined.map_err(|e| PerfError::Setup(e.to_string()))??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, v)| v).collect())
}

/// Create the nodes (with status) and their leases; the leases' resourceVersions.
async fn setup_nodes(ctx: &Ctx, nodes: usize, lease_s: u64) -> Result<Vec<String>, PerfError> {
    let client = ctx.setup.clone();
    parallel(nodes, move |i| {
        let client = client.clone();
        async move {
            let name = objects::node_name(i);
            let node = objects::node(&name, i).to_string();
            let r = client
                .send(Req::new(Method::POST, "/api/v1/nodes").body(node, JSON).json())
                .await?;
            expect(&r, &[201, 409], "creating a node")?;
            let status = json!({"status": objects::node_status(i)}).to_string();
            let path = format!("/api/v1/nodes/{name}/status");
            let r =
                client.send(Req::new(Method::PATCH, path).body(status, MERGE_PATCH).json()).await?;
            expect(&r, &[200], "writing a node's status")?;
            create_lease(&client, &name, lease_s).await
        }
    })
    .await
}

fn leases_path() -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{}/leases", objects::LEASE_NS)
}

async fn create_lease(client: &Client, node: &str, lease_s: u64) -> Result<String, PerfError> {
    let body = objects::lease(node, lease_s, None).to_string();
    let r = client.send(Req::new(Method::POST, leases_path()).body(body, JSON).json()).await?;
    let r = if r.status == 409 {
        client.send(Req::get(format!("{}/{node}", leases_path())).json()).await?
    } else {
        r
    };
    expect(&r, &[200, 201], "creating a lease")?;
    rv_of(&r.body).ok_or_else(|| PerfError::Setup("a lease without resourceVersion".into()))
}

async fn wait_open(ctx: &Ctx, sim: &Sim, count: u64) -> Result<(), PerfError> {
    let deadline = Instant::now() + ctx.common.timeout;
    loop {
        let (opened, failed) =
            (sim.opened.load(Ordering::Relaxed), sim.failed.load(Ordering::Relaxed));
        if failed > 0 {
            let first = sim.watch_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let first = first.unwrap_or_default();
            return Err(PerfError::Setup(format!("{failed} node watches failed to open: {first}")));
        }
        if opened >= count {
            ctx.note(&format!("{count} node watches open"));
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(PerfError::Setup(format!("only {opened} of {count} node watches opened")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Node `i`'s lease loop: renew every period, starting at its share of the period.
async fn renew_lease(sim: Arc<Sim>, args: ClusterSimArgs, i: usize, nodes: usize, mut rv: String) {
    let period = args.lease_period.max(Duration::from_millis(10));
    let offset = period.mul_f64(i as f64 / nodes as f64);
    let mut next = Instant::now() + offset;
    let name = objects::node_name(i);
    let path = format!("{}/{name}", leases_path());
    let mut stop = sim.stop.clone();
    while !sim.stopped() {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        next += period;
        let body = objects::lease(&name, args.lease_duration, Some(&rv)).to_string();
        let start = Instant::now();
        let result =
            sim.writes.send(Req::new(Method::PUT, path.as_str()).body(body, JSON).json()).await;
        if let Ok(r) = &result {
            match r.status {
                200 => rv = rv_of(&r.body).unwrap_or(rv),
                409 => rv = refetch(&sim, &path).await.unwrap_or(rv),
                _ => {}
            }
        }
        sim.record_since("update leases", outcome(result), start);
    }
}

async fn refetch(sim: &Sim, path: &str) -> Option<String> {
    let r = sim.writes.send(Req::get(path).json()).await.ok()?;
    rv_of(&r.body)
}

/// The controller-like reader: a LIST of the pods and a GET of a node every period, side
/// by side (a slow LIST does not hold the GET back: under load it once pushed every GET
/// past the measured window, and the run reported no `get nodes` at all).
async fn reader(sim: Arc<Sim>, ns: String, period: Duration, nodes: usize) {
    let mut tick = tokio::time::interval(period.max(Duration::from_millis(10)));
    let mut stop = sim.stop.clone();
    let list = format!("{}?resourceVersion=0", pods_path(&ns));
    for n in 0.. {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let node = format!("/api/v1/nodes/{}", objects::node_name(n % nodes));
        let start = Instant::now();
        let listed = async {
            let r = sim.writes.send(Req::get(list.as_str())).await;
            sim.record_since("list pods", outcome(r), start);
        };
        let got = async {
            let r = sim.writes.send(Req::get(node)).await;
            sim.record_since("get nodes", outcome(r), start);
        };
        tokio::join!(listed, got);
    }
}

async fn churn(
    ctx: &Ctx,
    args: &ClusterSimArgs,
    sim: &Arc<Sim>,
    tpl: Arc<PodTemplate>,
    nodes: usize,
    plan: &rate::Plan,
    win: Window,
) -> rate::RunInfo {
    let (sim2, base) = (sim.clone(), Arc::new(pods_path(&ctx.ns)));
    let (prefix, seed, lifetime) = (format!("sim-{}", ctx.run_id), ctx.seed, args.pod_lifetime);
    let bind = args.binding;
    rate::run(plan, win, sim.rec.clone(), "create pods", move |call| {
        let name = format!("{prefix}-{}", call.seq);
        let node = (splitmix64(seed ^ call.seq) % nodes as u64) as usize;
        let body = match bind {
            Binding::Subresource => tpl.body(&name),
            Binding::Nodename => tpl.body_on_node(&name, &objects::node_name(node)),
        };
        let req = Req::new(Method::POST, base.as_str()).body(body, JSON).json();
        let (sim, base) = (sim2.clone(), base.clone());
        async move {
            let result = outcome(sim.writes.send(req).await);
            if matches!(result, Outcome::Ok { .. }) {
                sim.live.fetch_add(1, Ordering::Relaxed);
                let node = (bind == Binding::Subresource).then_some(node);
                tokio::spawn(lifecycle(sim, base, name, node, lifetime));
            }
            result
        }
    })
    .await
}

/// Bind the pod to its node (unless created on it), let it live, delete it.
async fn lifecycle(
    sim: Arc<Sim>,
    base: Arc<String>,
    pod: String,
    node: Option<usize>,
    lifetime: Duration,
) {
    if let Some(node) = node {
        let body = objects::binding(&pod, &objects::node_name(node)).to_string();
        let path = format!("{base}/{pod}/binding");
        let start = Instant::now();
        let bound = sim.writes.send(Req::new(Method::POST, path).body(body, JSON).json()).await;
        sim.record_since("create pods/binding", outcome(bound), start);
    }
    tokio::time::sleep(lifetime).await;
    let start = Instant::now();
    let deleted = sim.writes.send(Req::new(Method::DELETE, format!("{base}/{pod}")).json()).await;
    sim.record_since("delete pods", outcome(deleted), start);
    sim.live.fetch_sub(1, Ordering::Relaxed);
}

async fn wait_lifecycles(sim: &Sim, limit: Duration) {
    let deadline = Instant::now() + limit;
    while sim.live.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Delete the simulation's nodes and leases.
async fn cleanup(ctx: &Ctx) {
    let selector = format!("?labelSelector={}%3Dtrue", objects::SIM_LABEL.replace('/', "%2F"));
    for path in [format!("/api/v1/nodes{selector}"), format!("{}{selector}", leases_path())] {
        let req = Req::new(Method::DELETE, path).json().timeout(Duration::from_secs(600));
        match ctx.setup.send(req).await {
            Ok(r) if r.ok() => {}
            Ok(r) => ctx.note(&format!("cleanup: HTTP {}: {}", r.status, super::message(&r))),
            Err(e) => ctx.note(&format!("cleanup: {e}")),
        }
    }
}
