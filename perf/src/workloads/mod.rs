//! Runs a workload from start to end: reads the kubeconfig, builds the clients, makes sure
//! the namespace exists, lets the workload set up and measure, cleans up (unless
//! `--keep`) and turns what was recorded into [`Results`]. Also the pieces the
//! workloads share: the run context, the measured phase with its progress line, and the
//! mapping of a response to an [`Outcome`].

pub mod cluster_sim;
pub mod create;
pub mod custom;
pub mod get;
pub mod list;
pub mod memory;
pub mod mixed;
pub mod namespace;
pub mod overload;
pub mod pods;
pub mod startup;
pub mod watch_fanout;

use crate::client::{Client, ClientError, ClientOptions, Response};
use crate::kubeconfig::{self, KubeconfigError, Target};
use crate::options::{Common, StartupArgs, Workload};
use crate::rate::{self, Call, Mode, Plan, RunInfo, Window};
use crate::report::{self, Results};
use crate::sampler::Sampler;
use crate::stats::{OpStats, Outcome, Recorder};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Parallel requests of setup steps (creating the pods a workload needs).
pub const SETUP_CLIENTS: usize = 32;

/// Errors that stop a run.
#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    #[error(transparent)]
    Kubeconfig(#[from] KubeconfigError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("setup: {0}")]
    Setup(String),
}

/// What a workload hands back: its operations' statistics and its own figures.
#[derive(Debug, Default)]
pub struct Measured {
    pub ops: BTreeMap<String, OpStats>,
    pub window: Duration,
    pub extra: Map<String, Value>,
}

/// Everything a workload needs.
pub struct Ctx {
    /// Client of the measured requests.
    pub client: Client,
    /// Client of setup and cleanup, with its own pool.
    pub setup: Client,
    /// The server and credentials.
    pub target: Target,
    pub common: Common,
    pub workload: Workload,
    pub ns: String,
    /// Clients (closed loop) or most requests in flight (open loop).
    pub concurrency: usize,
    pub connections: usize,
    pub seed: u64,
    /// Short id from the seed, part of the names a run creates.
    pub run_id: String,
}

impl Ctx {
    pub fn new(target: &Target, workload: Workload) -> Result<Ctx, PerfError> {
        let common = workload.common().clone();
        let concurrency = common.concurrency.unwrap_or(workload.default_concurrency()).max(1);
        let connections = common.connections.unwrap_or(if common.http2 {
            (concurrency / 8).max(1)
        } else {
            concurrency
        });
        let opts = ClientOptions {
            http2: common.http2,
            protobuf: common.protobuf,
            connections,
            timeout: common.timeout,
        };
        let client = Client::new(target, &opts)?;
        let setup_opts = ClientOptions {
            protobuf: false,
            connections: if common.http2 { 4 } else { SETUP_CLIENTS },
            timeout: common.timeout.max(Duration::from_secs(300)),
            ..opts
        };
        let setup = Client::new(target, &setup_opts)?;
        let seed = common.seed.unwrap_or_else(clock_seed);
        let run_id = format!("{:06x}", splitmix64(seed) & 0xff_ffff);
        let ns = common.namespace.clone();
        let target = target.clone();
        Ok(Ctx {
            client,
            setup,
            target,
            common,
            workload,
            ns,
            concurrency,
            connections,
            seed,
            run_id,
        })
    }

    /// The plan of the measured phase from the common flags.
    pub fn plan(&self) -> Plan {
        let mode = match self.common.rate {
            Some(rate) => Mode::Open { rate, max_in_flight: self.concurrency },
            None => Mode::Closed { clients: self.concurrency },
        };
        self.plan_with(mode)
    }

    pub fn plan_with(&self, mode: Mode) -> Plan {
        let c = &self.common;
        Plan { mode, warmup: c.warmup, duration: c.duration, drain: c.timeout }
    }

    /// Print a line on stderr (setup steps) unless quiet.
    pub fn note(&self, msg: &str) {
        if !self.common.quiet {
            eprintln!("[{}] {msg}", self.workload.name());
        }
    }
}

fn clock_seed() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
}

/// SplitMix64: a small, good mixer for seeds and choices.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Run `workload` against the server of the kubeconfig and build its results.
pub async fn execute(workload: Workload) -> Result<Results, PerfError> {
    if let Workload::Startup(args) = &workload {
        return execute_startup(args).await;
    }
    let common = workload.common().clone();
    if common.custom_resource {
        let supported = matches!(
            workload,
            Workload::Create(_) | Workload::Get(_) | Workload::List(_) | Workload::WatchFanout(_)
        );
        if !supported {
            return Err(PerfError::Setup(
                "--custom-resource works with create, get, list and watch-fanout".into(),
            ));
        }
    }
    pods::use_custom_resource(common.custom_resource);
    let path = common.kubeconfig.clone().unwrap_or_else(kubeconfig::default_path);
    let target = kubeconfig::load(&path, common.context.as_deref())?;
    let ctx = Ctx::new(&target, workload)?;
    let started = SystemTime::now();
    namespace::ensure(&ctx).await?;
    if common.custom_resource {
        custom::ensure(&ctx).await?;
    }
    let sampler = start_sampler(&common)?;
    let measured = match &ctx.workload {
        Workload::Create(a) => create::run(&ctx, a).await,
        Workload::Get(a) => get::run(&ctx, a).await,
        Workload::List(a) => list::run(&ctx, a).await,
        Workload::WatchFanout(a) => watch_fanout::run(&ctx, a).await,
        Workload::Memory(a) => memory::run(&ctx, a).await,
        Workload::ClusterSim(a) => cluster_sim::run(&ctx, a).await,
        Workload::Mixed(a) => mixed::run(&ctx, a).await,
        Workload::Overload(a) => overload::run(&ctx, a).await,
        Workload::Startup(_) => unreachable!("startup runs without a namespace"),
    };
    let process = sampler.map(Sampler::stop);
    if !ctx.common.keep {
        namespace::cleanup(&ctx).await;
    }
    let mut results = results(&ctx, &target, started, measured?);
    results.server_process = process;
    Ok(results)
}

/// Start sampling `--server-pid`, if given.
pub fn start_sampler(common: &Common) -> Result<Option<Sampler>, PerfError> {
    let Some(pid) = common.server_pid else { return Ok(None) };
    let interval = common.sample_interval.max(Duration::from_millis(10));
    Sampler::start(pid, interval)
        .map(Some)
        .map_err(|e| PerfError::Setup(format!("--server-pid: {e}")))
}

/// `startup` launches the server itself: no namespace, no client before it runs.
async fn execute_startup(args: &StartupArgs) -> Result<Results, PerfError> {
    let started = SystemTime::now();
    let (m, process, server) = startup::run(args).await?;
    let config = json!({
        "server_cmd": args.server_cmd,
        "rounds": args.rounds,
        "poll_interval_ms": args.poll_interval.as_secs_f64() * 1000.0,
        "idle_wait_s": args.idle_wait.as_secs_f64(),
    });
    let mut r = build_results("startup", server, config, started, m);
    r.server_process = process;
    Ok(r)
}

fn build_results(
    workload: &str,
    server: String,
    config: Value,
    started: SystemTime,
    m: Measured,
) -> Results {
    let ops: Vec<_> = m.ops.iter().map(|(n, s)| report::op_report(n, s, m.window)).collect();
    let started_unix_ms =
        started.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    Results {
        tool: "kapi-perf".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        workload: workload.into(),
        server,
        started_unix_ms,
        config,
        window_seconds: m.window.as_secs_f64(),
        slo: report::slo_checks(&ops),
        operations: ops,
        extra: m.extra,
        server_process: None,
    }
}

fn results(ctx: &Ctx, target: &Target, started: SystemTime, m: Measured) -> Results {
    let c = &ctx.common;
    let config = json!({
        "mode": if c.rate.is_some() { "open-loop" } else { "closed-loop" },
        "concurrency": ctx.concurrency,
        "rate": c.rate,
        "connections": ctx.connections,
        "http": if c.http2 { "HTTP/2" } else { "HTTP/1.1" },
        "encoding": if c.protobuf { "protobuf" } else { "json" },
        "duration_s": c.duration.as_secs_f64(),
        "warmup_s": c.warmup.as_secs_f64(),
        "timeout_s": c.timeout.as_secs_f64(),
        "seed": ctx.seed,
        "namespace": ctx.ns,
    });
    let mut config = config;
    if let Workload::ClusterSim(a) = &ctx.workload {
        config["mode"] = "open-loop".into();
        config["rate"] = a.pod_rate.into();
        config["http"] = "HTTP/2".into();
        config["encoding"] = "json".into();
        config["connections"] = m.extra.get("watch_connections").cloned().unwrap_or_default();
        config["binding"] = format!("{:?}", a.binding).to_lowercase().into();
    }
    if let Workload::Mixed(_) = &ctx.workload {
        config["mode"] = "open-loop (clusterloader2 load profile)".into();
        config["rate"] = Value::Null;
    }
    build_results(ctx.workload.name(), target.server.clone(), config, started, m)
}

/// Measure `op` under `name` with the plan of the common flags.
pub async fn measure<F, Fut>(ctx: &Ctx, name: &str, op: F) -> Measured
where
    F: Fn(Call) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let plan = ctx.plan();
    let win = plan.window(Instant::now());
    let rec = Arc::new(Recorder::new(win.measure_from));
    let progress = progress(ctx, rec.clone(), win);
    let info = rate::run(&plan, win, rec.clone(), name, op).await;
    progress.stop();
    let mut extra = Map::new();
    add_schedule_lag(&mut extra, &info);
    Measured { ops: rec.snapshot(), window: plan.duration, extra }
}

/// Add the open loop's schedule lag (p50, p99, max in ms) to `extra`.
pub fn add_schedule_lag(extra: &mut Map<String, Value>, info: &RunInfo) {
    let h = &info.schedule_lag;
    if h.count() > 0 {
        let ms = |ns: u64| (ns as f64 / 1e4).round() / 100.0;
        let lag = json!({"p50": ms(h.percentile(50.0)), "p99": ms(h.percentile(99.0)), "max": ms(h.max())});
        extra.insert("schedule_lag_ms".into(), lag);
    }
}

/// A progress bar on stderr (redrawn each second on a terminal, a line every 5 s
/// otherwise), unless `--quiet`.
pub struct Progress(Option<tokio::task::JoinHandle<()>>);

impl Progress {
    pub fn stop(self) {
        if let Some(task) = self.0 {
            task.abort();
            eprintln!();
        }
    }
}

/// A bar of `width` cells, `done` of 1 filled.
pub fn bar(done: f64, width: usize) -> String {
    let filled = ((done.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

/// Start the progress bar of a measured phase.
pub fn progress(ctx: &Ctx, rec: Arc<Recorder>, win: Window) -> Progress {
    if ctx.common.quiet {
        return Progress(None);
    }
    let terminal = std::io::stderr().is_terminal();
    let name = ctx.workload.name();
    let total = (win.end - win.t0).as_secs_f64().max(1e-9);
    Progress(Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(if terminal { 1 } else { 5 }));
        loop {
            tick.tick().await;
            let (ok, err) = rec.totals();
            let at = win.t0.elapsed().as_secs_f64().min(total);
            let phase = if Instant::now() < win.measure_from { "warmup " } else { "measure" };
            let line = format!(
                "[{name}] {phase} {} {at:.0}/{total:.0} s  ok {ok}  errors {err}",
                bar(at / total, 30)
            );
            if terminal {
                eprint!("\r{line}   ");
            } else {
                eprintln!("{line}");
            }
            let _ = std::io::stderr().flush();
        }
    })))
}

/// The outcome of a request: 2xx is success, anything else an error of its kind.
pub fn outcome(result: Result<Response, ClientError>) -> Outcome {
    match result {
        Ok(r) if r.ok() => Outcome::Ok { bytes: r.body.len() as u64 },
        Ok(r) => Outcome::Failed { kind: format!("http {}", r.status), detail: message(&r) },
        Err(ClientError::Timeout) => Outcome::Stalled { kind: "timeout".into() },
        Err(e) => Outcome::Failed { kind: e.kind().into(), detail: e.to_string() },
    }
}

/// The `message` of a Status body, or the start of the body.
pub fn message(r: &Response) -> String {
    let parsed: Option<Value> = serde_json::from_slice(&r.body).ok();
    match parsed.as_ref().and_then(|v| v["message"].as_str()) {
        Some(m) => m.to_owned(),
        None => String::from_utf8_lossy(&r.body[..r.body.len().min(200)]).into_owned(),
    }
}

/// Fail setup with the response's status and message unless it is one of `accept`.
pub fn expect(r: &Response, accept: &[u16], what: &str) -> Result<(), PerfError> {
    if accept.contains(&r.status) {
        return Ok(());
    }
    Err(PerfError::Setup(format!("{what}: HTTP {}: {}", r.status, message(r))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn outcomes_of_responses() {
        let resp = |status, body: &'static str| Ok(Response { status, body: Bytes::from(body) });
        assert_eq!(outcome(resp(201, "abc")), Outcome::Ok { bytes: 3 });
        assert_eq!(
            outcome(resp(409, r#"{"kind":"Status","message":"pods \"a\" already exists"}"#)),
            Outcome::Failed { kind: "http 409".into(), detail: "pods \"a\" already exists".into() }
        );
        assert_eq!(outcome(Err(ClientError::Timeout)), Outcome::Stalled { kind: "timeout".into() });
        let Outcome::Failed { kind, .. } = outcome(Err(ClientError::Connect("refused".into())))
        else {
            panic!("connect errors are failures")
        };
        assert_eq!(kind, "connect");
    }

    #[test]
    fn progress_bars() {
        assert_eq!(bar(0.0, 4), "[....]");
        assert_eq!(bar(0.5, 4), "[##..]");
        assert_eq!(bar(2.0, 4), "[####]");
    }

    #[test]
    fn splitmix_is_deterministic_and_mixes() {
        assert_eq!(splitmix64(1), splitmix64(1));
        assert_ne!(splitmix64(1), splitmix64(2));
    }
}
