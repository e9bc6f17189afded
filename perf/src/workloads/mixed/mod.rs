//! `mixed`: replays clusterloader2's `load` profile (testing/load/config.yaml) against the
//! server, its phases in order:
//!
//! 1. Services, one per two Deployments, at the `default` tuning set's rate (`--qps`);
//! 2. a ConfigMap and a Secret per Deployment, at the same rate;
//! 3. the Deployments, each created at a random instant of the saturation time
//!    (totalPods / `--throughput`), each followed by its Pods: no controllers run, so the
//!    tool plays the ReplicaSet controller and creates them itself;
//! 4. every Deployment scaled to a random size in [size/2, 3·size/2] at a random instant
//!    of a quarter of the saturation time (PATCH of spec.replicas, then Pods created or
//!    deleted to match);
//! 5. the Deployments deleted at random instants of the deletion time, their Pods with
//!    them (as the garbage collector would);
//! 6. the ConfigMaps, Secrets and Services deleted at `--qps`.
//!
//! Every request is recorded by verb and resource (`create deployments`, `delete pods`…)
//! with its latency from its scheduled instant (open loop). The StatefulSets, Jobs,
//! DaemonSets and measurements of the profile are not replayed. Shrink the profile with
//! `--nodes`, `--pods-per-node`, the group sizes and the rates to run it in seconds.

pub mod profile;
pub mod templates;

use super::{Ctx, Measured, PerfError, expect, outcome, splitmix64};
use crate::client::{JSON, MERGE_PATCH, Req};
use crate::options::MixedArgs;
use crate::rate::Window;
use crate::stats::{Outcome, Recorder};
use http::Method;
use profile::Profile;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Requests of one phase in flight at most.
const MAX_IN_FLIGHT: usize = 256;

/// One Deployment and the Pods the tool made for it.
#[derive(Debug, Clone)]
struct Deploy {
    ns: String,
    name: String,
    svc: String,
    size: usize,
    pods: Vec<String>,
}

/// What every action needs.
struct Run {
    ctx_client: crate::client::Client,
    rec: Arc<Recorder>,
    deploys: Vec<Mutex<Deploy>>,
    seed: u64,
    counter: AtomicU64,
}

impl Run {
    fn next_random(&self) -> u64 {
        splitmix64(self.seed ^ self.counter.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37))
    }

    async fn send(&self, op: &str, req: Req, since: Instant) -> bool {
        let result = outcome(self.ctx_client.send(req.json()).await);
        let ok = matches!(result, Outcome::Ok { .. });
        let now = Instant::now();
        self.rec.record(op, result, now - since, now);
        ok
    }
}

/// An action of a phase.
#[derive(Debug, Clone)]
enum Action {
    Create { op: &'static str, path: String, body: Value },
    Delete { op: &'static str, path: String },
    CreateDeployment(usize),
    ScaleDeployment(usize),
    DeleteDeployment(usize),
}

/// Run the workload.
pub async fn run(ctx: &Ctx, args: &MixedArgs) -> Result<Measured, PerfError> {
    let p = Profile::of(args);
    ctx.note(&format!(
        "{} namespaces, {} deployments ({} pods), saturation {:.1} s",
        p.namespaces,
        p.namespaces * p.deployments_per_ns(),
        p.deployment_pods(),
        p.saturation_s
    ));
    let namespaces: Vec<String> = (1..=p.namespaces).map(|i| format!("{}-{i}", ctx.ns)).collect();
    for ns in &namespaces {
        create_namespace(ctx, ns).await?;
    }
    let t0 = Instant::now();
    let run = Arc::new(Run {
        ctx_client: ctx.client.clone(),
        rec: Arc::new(Recorder::new(t0)),
        deploys: deployments(&p, &namespaces).into_iter().map(Mutex::new).collect(),
        seed: ctx.seed,
        counter: AtomicU64::new(0),
    });
    let estimate = Duration::from_secs_f64(p.saturation_s * 1.25 + p.deletion_s + 4.0);
    let win = Window { t0, measure_from: t0, end: t0 + estimate, drain_until: t0 + estimate };
    let bar = super::progress(ctx, run.rec.clone(), win);
    let mut phases = serde_json::Map::new();
    for (name, actions) in phases_of(&p, &run, &namespaces) {
        let started = Instant::now();
        execute(&run, actions).await;
        phases.insert(name.into(), round3(started.elapsed().as_secs_f64()).into());
    }
    bar.stop();
    if !ctx.common.keep {
        for ns in &namespaces {
            let req = Req::new(Method::DELETE, format!("/api/v1/namespaces/{ns}")).json();
            let _ = ctx.setup.send(req).await;
        }
    }
    let mut m =
        Measured { ops: run.rec.snapshot(), window: t0.elapsed(), extra: Default::default() };
    m.extra.insert("namespaces".into(), p.namespaces.into());
    m.extra.insert("deployments".into(), (p.namespaces * p.deployments_per_ns()).into());
    m.extra.insert("deployment_pods".into(), p.deployment_pods().into());
    m.extra.insert("saturation_s".into(), p.saturation_s.into());
    m.extra.insert("phase_seconds".into(), phases.into());
    Ok(m)
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

async fn create_namespace(ctx: &Ctx, ns: &str) -> Result<(), PerfError> {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    let req = Req::new(Method::POST, "/api/v1/namespaces").body(body.to_string(), JSON).json();
    let r = ctx.setup.send(req).await?;
    expect(&r, &[201, 409], "creating a namespace")
}

fn deployments(p: &Profile, namespaces: &[String]) -> Vec<Deploy> {
    let mut all = Vec::new();
    for ns in namespaces {
        for g in &p.groups {
            for i in 1..=g.deployments {
                all.push(Deploy {
                    ns: ns.clone(),
                    name: format!("{}-deployment-{i}", g.class),
                    svc: format!("{}-service-{i}", g.class),
                    size: g.size,
                    pods: Vec::new(),
                });
            }
        }
    }
    all
}

type Phase = (&'static str, Vec<(f64, Action)>);

/// The six phases with their actions at their offsets (seconds).
fn phases_of(p: &Profile, run: &Run, namespaces: &[String]) -> Vec<Phase> {
    let paced = |actions: Vec<Action>| -> Vec<(f64, Action)> {
        actions.into_iter().enumerate().map(|(i, a)| (i as f64 / p.qps, a)).collect()
    };
    let random = |span: f64, make: fn(usize) -> Action| -> Vec<(f64, Action)> {
        let mut v: Vec<(f64, Action)> = (0..run.deploys.len())
            .map(|i| ((run.next_random() % 1_000_000) as f64 / 1e6 * span, make(i)))
            .collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    let services = service_actions(p, namespaces);
    let (create_cs, delete_cs) = config_actions(run);
    let delete_services = services
        .iter()
        .filter_map(|a| match a {
            Action::Create { path, body, .. } => {
                let name = body["metadata"]["name"].as_str().unwrap_or_default();
                Some(Action::Delete { op: "delete services", path: format!("{path}/{name}") })
            }
            _ => None,
        })
        .collect();
    vec![
        ("create services", paced(services)),
        ("create configmaps and secrets", paced(create_cs)),
        ("create deployments", random(p.saturation_s, Action::CreateDeployment)),
        ("scale deployments", random(p.scaling_s, Action::ScaleDeployment)),
        ("delete deployments", random(p.deletion_s, Action::DeleteDeployment)),
        ("delete configmaps and secrets", paced(delete_cs)),
        ("delete services", paced(delete_services)),
    ]
}

fn service_actions(p: &Profile, namespaces: &[String]) -> Vec<Action> {
    let mut v = Vec::new();
    for ns in namespaces {
        for g in &p.groups {
            for i in 1..=g.services {
                let name = format!("{}-service-{i}", g.class);
                let path = format!("/api/v1/namespaces/{ns}/services");
                v.push(Action::Create {
                    op: "create services",
                    path,
                    body: templates::service(&name),
                });
            }
        }
    }
    v
}

fn config_actions(run: &Run) -> (Vec<Action>, Vec<Action>) {
    let (mut create, mut delete) = (Vec::new(), Vec::new());
    for (i, d) in run.deploys.iter().enumerate() {
        let d = d.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for (kind, op, body) in [
            ("configmaps", "create configmaps", templates::configmap(&d.name, i)),
            ("secrets", "create secrets", templates::secret(&d.name, i)),
        ] {
            let path = format!("/api/v1/namespaces/{}/{kind}", d.ns);
            let del = if kind == "secrets" { "delete secrets" } else { "delete configmaps" };
            delete.push(Action::Delete { op: del, path: format!("{path}/{}", d.name) });
            create.push(Action::Create { op, path, body });
        }
    }
    (create, delete)
}

/// Run a phase's actions at their offsets from now, and wait for all of them.
async fn execute(run: &Arc<Run>, actions: Vec<(f64, Action)>) {
    let t0 = Instant::now();
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut set = tokio::task::JoinSet::new();
    for (at, action) in actions {
        let due = t0 + Duration::from_secs_f64(at);
        tokio::time::sleep_until(due).await;
        let Ok(permit) = slots.clone().acquire_owned().await else { break };
        let run = run.clone();
        set.spawn(async move {
            act(&run, action, due).await;
            drop(permit);
        });
        while set.try_join_next().is_some() {}
    }
    while set.join_next().await.is_some() {}
}

async fn act(run: &Run, action: Action, due: Instant) {
    match action {
        Action::Create { op, path, body } => {
            run.send(op, Req::new(Method::POST, path).body(body.to_string(), JSON), due).await;
        }
        Action::Delete { op, path } => {
            run.send(op, Req::new(Method::DELETE, path), due).await;
        }
        Action::CreateDeployment(i) => create_deployment(run, i, due).await,
        Action::ScaleDeployment(i) => scale_deployment(run, i, due).await,
        Action::DeleteDeployment(i) => delete_deployment(run, i, due).await,
    }
}

fn snapshot(run: &Run, i: usize) -> Deploy {
    run.deploys[i].lock().unwrap_or_else(|e| e.into_inner()).clone()
}

async fn create_deployment(run: &Run, i: usize, due: Instant) {
    let d = snapshot(run, i);
    let body = templates::deployment(&d.name, &d.svc, d.size).to_string();
    let path = format!("/apis/apps/v1/namespaces/{}/deployments", d.ns);
    if run.send("create deployments", Req::new(Method::POST, path).body(body, JSON), due).await {
        set_pods(run, i, &d, d.size).await;
    }
}

/// A new size in [size/2, 3·size/2], as the profile's scaling draws it.
pub fn scaled_size(size: usize, random: u64) -> usize {
    let (min, max) = (size / 2, size + size / 2);
    min + (random % (max - min + 1) as u64) as usize
}

async fn scale_deployment(run: &Run, i: usize, due: Instant) {
    let d = snapshot(run, i);
    let replicas = scaled_size(d.size, run.next_random());
    let path = format!("/apis/apps/v1/namespaces/{}/deployments/{}", d.ns, d.name);
    let body = json!({"spec": {"replicas": replicas}}).to_string();
    if run
        .send("patch deployments", Req::new(Method::PATCH, path).body(body, MERGE_PATCH), due)
        .await
    {
        set_pods(run, i, &d, replicas).await;
    }
}

async fn delete_deployment(run: &Run, i: usize, due: Instant) {
    let d = snapshot(run, i);
    let path = format!("/apis/apps/v1/namespaces/{}/deployments/{}", d.ns, d.name);
    run.send("delete deployments", Req::new(Method::DELETE, path), due).await;
    set_pods(run, i, &d, 0).await;
}

/// Create or delete Pods until deployment `i` has `want`, as its ReplicaSet would.
async fn set_pods(run: &Run, i: usize, d: &Deploy, want: usize) {
    let base = format!("/api/v1/namespaces/{}/pods", d.ns);
    let mut pods = d.pods.clone();
    while pods.len() < want {
        let pod = format!("{}-{:08x}", d.name, run.next_random() as u32);
        let body = templates::pod(&pod, &d.name, &d.svc).to_string();
        let start = Instant::now();
        if run
            .send("create pods", Req::new(Method::POST, base.as_str()).body(body, JSON), start)
            .await
        {
            pods.push(pod);
        } else {
            break;
        }
    }
    while pods.len() > want {
        let pod = pods.pop().unwrap_or_default();
        let body = r#"{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":0}"#;
        let req = Req::new(Method::DELETE, format!("{base}/{pod}")).body(body, JSON);
        run.send("delete pods", req, Instant::now()).await;
    }
    run.deploys[i].lock().unwrap_or_else(|e| e.into_inner()).pods = pods;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_stays_in_the_profile_range() {
        for r in 0..1000 {
            let n = scaled_size(30, splitmix64(r));
            assert!((15..=45).contains(&n), "{n}");
        }
        assert_eq!(scaled_size(1, 0), 0);
        assert_eq!(scaled_size(0, 7), 0);
    }
}
