//! `watch-fanout`: W watchers on the pods of the namespace while U pod updates per second
//! are made (open loop, round the `--pods` pods). Each update is a merge patch writing its
//! intended send time (Unix nanoseconds) into the annotation `kapi-perf/sent`; each
//! watcher finds that stamp in every event it receives, without decoding the event, and
//! records the delivery latency from the send time to the receipt. Reported: the update
//! latency (`patch`), the delivery latency (`delivery`), deliveries per second, and how
//! many of the expected deliveries (updates x watchers) arrived.

use super::pods::{PodTemplate, ensure_pods, pods_path};
use super::{Ctx, Measured, PerfError, expect, outcome, progress};
use crate::client::{Client, ClientOptions, MERGE_PATCH, Req};
use crate::options::WatchArgs;
use crate::rate::{self, Mode};
use crate::stats::{OpStats, Outcome, Recorder};
use crate::watch::{Framer, find_stamp};
use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::time::Instant;

/// Annotation carrying an update's send time.
pub const STAMP: &str = "kapi-perf/sent";

/// Watch streams per HTTP/2 connection.
const STREAMS_PER_CONNECTION: usize = 100;

/// Longest wait for late deliveries after the last update.
const DELIVERY_DRAIN: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Shared {
    /// Only updates sent at or after this wall time (ns) are measured.
    measure_from_ns: AtomicU64,
    delivered: AtomicU64,
    opened: AtomicU64,
    failed: AtomicU64,
}

/// Run the workload.
pub async fn run(ctx: &Ctx, args: &WatchArgs) -> Result<Measured, PerfError> {
    let tpl = PodTemplate::load(&args.pod.pod_template)?;
    let names: Vec<String> = (0..args.pods.max(1)).map(|i| format!("perf-watch-{i:04}")).collect();
    ensure_pods(ctx, &tpl, names.clone()).await?;
    let rv = resource_version(ctx).await?;
    let shared = Arc::new(Shared {
        measure_from_ns: AtomicU64::new(u64::MAX),
        delivered: AtomicU64::new(0),
        opened: AtomicU64::new(0),
        failed: AtomicU64::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    let watchers = start_watchers(ctx, args.watchers, &rv, &shared, stopped)?;
    wait_open(ctx, args.watchers as u64, &shared).await?;
    let result = update_and_measure(ctx, args, names, &shared).await;
    let _ = stop.send(true);
    let rec = result.rec.clone();
    for task in watchers {
        if let Ok(stats) = task.await {
            rec.merge("delivery", &stats);
        }
    }
    let mut m =
        Measured { ops: rec.snapshot(), window: ctx.common.duration, extra: Default::default() };
    let delivered = m.ops.get("delivery").map_or(0, |s| s.ok);
    let secs = ctx.common.duration.as_secs_f64().max(1e-9);
    super::add_schedule_lag(&mut m.extra, &result.info);
    m.extra.insert("watchers".into(), args.watchers.into());
    m.extra.insert("updates_per_s_target".into(), result.rate.into());
    m.extra.insert("deliveries".into(), delivered.into());
    m.extra.insert("expected_deliveries".into(), result.expected.into());
    m.extra.insert("deliveries_per_s".into(), (delivered as f64 / secs).into());
    Ok(m)
}

async fn resource_version(ctx: &Ctx) -> Result<String, PerfError> {
    let r = ctx.setup.send(Req::get(format!("{}?limit=1", pods_path(&ctx.ns))).json()).await?;
    expect(&r, &[200], "listing the pods")?;
    let list: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
    list["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| PerfError::Setup("the pod list has no resourceVersion".into()))
}

fn start_watchers(
    ctx: &Ctx,
    count: usize,
    rv: &str,
    shared: &Arc<Shared>,
    stopped: watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<OpStats>>, PerfError> {
    let c = &ctx.common;
    let connections = if c.http2 { count.div_ceil(STREAMS_PER_CONNECTION) } else { count };
    let opts =
        ClientOptions { http2: c.http2, protobuf: c.protobuf, connections, timeout: c.timeout };
    let client = Client::new(&ctx.target, &opts)?;
    let seconds = (c.warmup + c.duration + c.timeout + DELIVERY_DRAIN).as_secs() + 60;
    let path = format!(
        "{}?watch=1&resourceVersion={rv}&allowWatchBookmarks=false&timeoutSeconds={seconds}",
        pods_path(&ctx.ns)
    );
    let spawn = |_| {
        let w = Watcher { client: client.clone(), shared: shared.clone(), stop: stopped.clone() };
        tokio::spawn(w.run(path.clone()))
    };
    Ok((0..count).map(spawn).collect())
}

async fn wait_open(ctx: &Ctx, count: u64, shared: &Shared) -> Result<(), PerfError> {
    let deadline = Instant::now() + ctx.common.timeout;
    loop {
        let (opened, failed) =
            (shared.opened.load(Ordering::Relaxed), shared.failed.load(Ordering::Relaxed));
        if failed > 0 {
            return Err(PerfError::Setup(format!("{failed} of {count} watches failed to open")));
        }
        if opened >= count {
            ctx.note(&format!("{count} watches open"));
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(PerfError::Setup(format!("only {opened} of {count} watches opened")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct UpdateResult {
    rec: Arc<Recorder>,
    info: rate::RunInfo,
    rate: f64,
    expected: u64,
}

async fn update_and_measure(
    ctx: &Ctx,
    args: &WatchArgs,
    names: Vec<String>,
    shared: &Shared,
) -> UpdateResult {
    let rate = ctx.common.rate.unwrap_or(args.updates_per_sec);
    let plan = ctx.plan_with(Mode::Open { rate, max_in_flight: ctx.concurrency });
    let (t0, wall0) = (Instant::now(), wall_ns());
    let win = plan.window(t0);
    let wall_of = move |at: Instant| wall0 + (at - t0).as_nanos() as u64;
    shared.measure_from_ns.store(wall_of(win.measure_from), Ordering::Relaxed);
    let rec = Arc::new(Recorder::new(win.measure_from));
    let bar = progress(ctx, rec.clone(), win);
    let (client, base, names) = (ctx.client.clone(), pods_path(&ctx.ns), Arc::new(names));
    let info = rate::run(&plan, win, rec.clone(), "patch", move |call| {
        let name = &names[(call.seq % names.len() as u64) as usize];
        let body = format!(
            r#"{{"metadata":{{"annotations":{{"{STAMP}":"{}"}}}}}}"#,
            wall_of(call.intended)
        );
        let req = Req::new(Method::PATCH, format!("{base}/{name}")).body(body, MERGE_PATCH);
        let client = client.clone();
        async move { outcome(client.send(req).await) }
    })
    .await;
    bar.stop();
    let updates = rec.snapshot().get("patch").map_or(0, |s| s.ok);
    let expected = updates * args.watchers as u64;
    let deadline = Instant::now() + DELIVERY_DRAIN;
    while shared.delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    UpdateResult { rec, rate, expected, info }
}

fn wall_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

struct Watcher {
    client: Client,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
}

impl Watcher {
    async fn run(mut self, path: String) -> OpStats {
        let mut stats = OpStats::default();
        let stream = match self.client.stream(Req::get(path)).await {
            Ok(s) if s.status == 200 => s,
            Ok(s) => return self.open_failed(stats, format!("http {}", s.status)),
            Err(e) => return self.open_failed(stats, e.to_string()),
        };
        self.shared.opened.fetch_add(1, Ordering::Relaxed);
        let mut framer = Framer::for_content_type(&stream.content_type);
        let mut body = stream.body;
        loop {
            let frame = tokio::select! {
                _ = self.stop.changed() => break,
                frame = body.frame() => frame,
            };
            let problem = match frame {
                Some(Ok(f)) => match f.into_data() {
                    Ok(data) => self.on_chunk(&mut framer, &data, &mut stats).err(),
                    Err(_) => None,
                },
                Some(Err(e)) => Some(format!("watch stream: {e}")),
                None => Some("the server ended the watch".to_owned()),
            };
            if let Some(detail) = problem {
                stats.record(watch_failure(detail), Duration::ZERO, Duration::ZERO);
                break;
            }
        }
        stats
    }

    fn open_failed(&self, mut stats: OpStats, detail: String) -> OpStats {
        eprintln!("kapi-perf: a watch failed to open: {detail}");
        self.shared.failed.fetch_add(1, Ordering::Relaxed);
        stats.record(watch_failure(detail), Duration::ZERO, Duration::ZERO);
        stats
    }

    fn on_chunk(
        &self,
        framer: &mut Framer,
        data: &Bytes,
        stats: &mut OpStats,
    ) -> Result<(), String> {
        let now = wall_ns();
        let from = self.shared.measure_from_ns.load(Ordering::Relaxed);
        let mut delivered = 0;
        framer
            .push(data, |event| {
                let Some(sent) = find_stamp(event, STAMP.as_bytes()).filter(|s| *s >= from) else {
                    return;
                };
                let latency = Duration::from_nanos(now.saturating_sub(sent));
                let since = Duration::from_nanos(now.saturating_sub(from));
                stats.record(Outcome::Ok { bytes: event.len() as u64 }, latency, since);
                delivered += 1;
            })
            .map_err(|e| e.to_string())?;
        self.shared.delivered.fetch_add(delivered, Ordering::Relaxed);
        Ok(())
    }
}

fn watch_failure(detail: String) -> Outcome {
    Outcome::Failed { kind: "watch".into(), detail }
}
