//! `overload`: API Priority and Fairness under an overload of mixed priority levels,
//! against any API server. Three streams run side by side for the window:
//!
//! - `list pods (elephant)`: a closed loop of `--concurrency` clients LISTing the
//!   namespace's `--pods` pods (from the cache, `resourceVersion=0`) as the user
//!   `kapi-perf-elephant`;
//! - `get configmap (mouse)`: GETs of one ConfigMap at `--mouse-rate` as the user
//!   `kapi-perf-mouse`: the same priority level as the elephants (global-default),
//!   another flow, so fair queuing should keep its latency;
//! - `patch leases (node)`: Lease renewals at `--lease-rate` as the kubelets
//!   `system:node:kapi-perf-overload-<i>` (group system:nodes: the system / node-high
//!   levels), which must not notice the elephants.
//!
//! Each stream has its own connection pool (the mice never wait for a connection the
//! elephants hold). Users are impersonated (the kubeconfig's user needs `impersonate`); the run binds the
//! group `kapi-perf:overload` to the `view` ClusterRole and removes the binding, the
//! ConfigMap and the Leases afterwards. A 429 is recorded as the stream's `http 429`
//! error: the per-stream throughput, p99 and 429 rate are the result.

use super::cluster_sim::ensure_lease_namespace;
use super::cluster_sim::objects::{LEASE_NS, now_ms, rfc3339};
use super::pods::{PodTemplate, ensure_pods, pods_path};
use super::{Ctx, Measured, PerfError, expect, outcome};
use crate::client::{Client, ClientOptions, JSON, MERGE_PATCH, Req};
use crate::options::OverloadArgs;
use crate::rate::{self, Mode};
use crate::stats::{OpStats, Recorder};
use http::{HeaderValue, Method};
use serde_json::json;
use std::sync::Arc;
use tokio::time::Instant;

const GROUP: &str = "kapi-perf:overload";
const MOUSE_CM: &str = "kapi-perf-mouse";

fn binding_name(ctx: &Ctx) -> String {
    format!("kapi-perf-overload-{}", ctx.run_id)
}

fn node_name(ctx: &Ctx, i: usize) -> String {
    format!("kapi-perf-overload-{}-{i}", ctx.run_id)
}

/// `req` as `user` in `groups` (impersonated).
fn as_user(req: Req, user: &str, groups: &[&str]) -> Req {
    let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("invalid"));
    let mut req = req.header("impersonate-user", value(user));
    for g in groups {
        req = req.header("impersonate-group", value(g));
    }
    req
}

/// Run the workload.
pub async fn run(ctx: &Ctx, args: &OverloadArgs) -> Result<Measured, PerfError> {
    let tpl = PodTemplate::load(&args.pod.pod_template)?;
    ctx.note(&format!("making sure {} pods exist in {}", args.pods, ctx.ns));
    let names = (0..args.pods).map(|i| format!("perf-overload-{i:06}")).collect();
    ensure_pods(ctx, &tpl, names).await?;
    setup(ctx, args.nodes.max(1)).await?;
    let measured = streams(ctx, args).await;
    cleanup(ctx, args.nodes.max(1)).await;
    Ok(measured)
}

async fn post(ctx: &Ctx, path: &str, body: serde_json::Value, what: &str) -> Result<(), PerfError> {
    let req = Req::new(Method::POST, path).body(body.to_string(), JSON).json();
    let r = ctx.setup.send(req).await?;
    expect(&r, &[201, 409], what)
}

async fn setup(ctx: &Ctx, nodes: usize) -> Result<(), PerfError> {
    ctx.note("binding the overload users to view; a ConfigMap; the nodes' Leases");
    let crb = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": binding_name(ctx)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": GROUP}]});
    post(ctx, "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", crb, "binding view")
        .await?;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": MOUSE_CM},
        "data": {"k": "v"}});
    post(ctx, &format!("/api/v1/namespaces/{}/configmaps", ctx.ns), cm, "the mouse's ConfigMap")
        .await?;
    ensure_lease_namespace(ctx).await?;
    for i in 0..nodes {
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": node_name(ctx, i), "namespace": LEASE_NS},
            "spec": {"holderIdentity": node_name(ctx, i), "leaseDurationSeconds": 40}});
        post(ctx, &leases_path(), lease, "a node's Lease").await?;
    }
    Ok(())
}

fn leases_path() -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{LEASE_NS}/leases")
}

/// A client with its own pool of 64 connections (HTTP/2: 8), like the measured one.
fn side_client(ctx: &Ctx) -> Client {
    let c = &ctx.common;
    let opts = ClientOptions {
        http2: c.http2,
        protobuf: c.protobuf,
        connections: if c.http2 { 8 } else { 64 },
        timeout: c.timeout,
    };
    Client::new(&ctx.target, &opts).unwrap_or_else(|_| ctx.client.clone())
}

const ELEPHANT_OP: &str = "list pods (elephant)";
const MOUSE_OP: &str = "get configmap (mouse)";
const KUBELET_OP: &str = "patch leases (node)";

/// The three streams over one window.
async fn streams(ctx: &Ctx, args: &OverloadArgs) -> Measured {
    let elephants = ctx.plan_with(Mode::Closed { clients: ctx.concurrency });
    let mice = ctx.plan_with(Mode::Open { rate: args.mouse_rate, max_in_flight: 64 });
    let kubelets = ctx.plan_with(Mode::Open { rate: args.lease_rate, max_in_flight: 64 });
    let win = elephants.window(Instant::now());
    let rec = Arc::new(Recorder::new(win.measure_from));
    // Every stream is reported, a starved one as 0/s (one that finished nothing in the
    // window would otherwise be missing from the table).
    for op in [ELEPHANT_OP, MOUSE_OP, KUBELET_OP] {
        rec.merge(op, &OpStats::default());
    }
    let list: Arc<str> = Arc::from(format!("{}?resourceVersion=0", pods_path(&ctx.ns)));
    // The mice and the kubelets have connections of their own: sharing the elephants'
    // pool would queue them in this client, not in the server.
    let (c1, c2, c3) = (ctx.client.clone(), side_client(ctx), side_client(ctx));
    let elephant = rate::run(&elephants, win, rec.clone(), ELEPHANT_OP, move |_| {
        let (client, req) = (c1.clone(), as_user(Req::get(&*list), "kapi-perf-elephant", &[GROUP]));
        async move { outcome(client.send(req).await) }
    });
    let cm: Arc<str> = Arc::from(format!("/api/v1/namespaces/{}/configmaps/{MOUSE_CM}", ctx.ns));
    let mouse = rate::run(&mice, win, rec.clone(), MOUSE_OP, move |_| {
        let (client, req) = (c2.clone(), as_user(Req::get(&*cm), "kapi-perf-mouse", &[GROUP]));
        async move { outcome(client.send(req).await) }
    });
    let nodes: Arc<Vec<String>> =
        Arc::new((0..args.nodes.max(1)).map(|i| node_name(ctx, i)).collect());
    let kubelet = rate::run(&kubelets, win, rec.clone(), KUBELET_OP, move |call| {
        let node = &nodes[call.seq as usize % nodes.len()];
        let body = json!({"spec": {"renewTime": rfc3339(now_ms(), true)}}).to_string();
        let req =
            Req::new(Method::PATCH, format!("{}/{node}", leases_path())).body(body, MERGE_PATCH);
        let req = as_user(req, &format!("system:node:{node}"), &["system:nodes"]);
        let client = c3.clone();
        async move { outcome(client.send(req).await) }
    });
    tokio::join!(elephant, mouse, kubelet);
    let mut m =
        Measured { ops: rec.snapshot(), window: ctx.common.duration, extra: Default::default() };
    m.extra.insert("pods".into(), args.pods.into());
    m.extra.insert("elephants".into(), ctx.concurrency.into());
    m.extra.insert("mouse_rate".into(), args.mouse_rate.into());
    m.extra.insert("lease_rate".into(), args.lease_rate.into());
    m
}

async fn cleanup(ctx: &Ctx, nodes: usize) {
    if ctx.common.keep {
        return;
    }
    let crb =
        format!("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{}", binding_name(ctx));
    let _ = ctx.setup.send(Req::new(Method::DELETE, crb)).await;
    for i in 0..nodes {
        let path = format!("{}/{}", leases_path(), node_name(ctx, i));
        let _ = ctx.setup.send(Req::new(Method::DELETE, path)).await;
    }
}
