//! `startup`: how long a server takes from launch to its first 200 on /readyz, and its
//! RSS once idle. Each round spawns `--server-cmd` (`sh -c "exec CMD"`, so the child's PID
//! is the server's), polls /readyz with the kubeconfig's credentials (re-reading the
//! kubeconfig until it exists: a server may write it when it starts), waits
//! `--idle-wait`, reads VmRSS, then stops the server with SIGTERM (SIGKILL after 30 s).
//! The last round's CPU and RSS series is the run's `server_process`.

use super::{Measured, PerfError};
use crate::client::{Client, ClientOptions, Req};
use crate::kubeconfig::{self, Target};
use crate::options::StartupArgs;
use crate::sampler::{self, ProcessReport, Sampler};
use crate::stats::{OpStats, Outcome};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// How long a stopping server may take before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// One start.
#[derive(Debug, Clone, Copy)]
struct Round {
    ready: Duration,
    idle_rss: u64,
    stop: Duration,
    clean_exit: bool,
}

/// Run every round; returns the figures, the last round's samples and the server URL.
pub async fn run(
    args: &StartupArgs,
) -> Result<(Measured, Option<ProcessReport>, String), PerfError> {
    let mut stats = OpStats::default();
    let (mut rounds, mut last, mut server) = (Vec::new(), None, String::new());
    let t0 = Instant::now();
    for i in 0..args.rounds.max(1) {
        let (round, report, url) = one_round(args).await?;
        note(args, &format!("round {}: ready in {:.1} ms", i + 1, ms(round.ready)));
        stats.record(Outcome::Ok { bytes: 0 }, round.ready, t0.elapsed());
        rounds.push(round);
        (last, server) = (Some(report), url);
    }
    let mut m = Measured { window: t0.elapsed(), ..Default::default() };
    m.ops.insert("ready".into(), stats);
    m.extra.insert("rounds".into(), rounds.iter().map(round_json).collect());
    m.extra.insert("ready_ms_median".into(), median_ms(&rounds).into());
    let rss: Vec<u64> = rounds.iter().map(|r| r.idle_rss).collect();
    m.extra.insert("idle_rss_bytes_median".into(), median(rss).into());
    Ok((m, last, server))
}

fn note(args: &StartupArgs, msg: &str) {
    if !args.common.quiet {
        eprintln!("[startup] {msg}");
    }
}

/// Milliseconds, to the microsecond.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1000.0
}

fn round_json(r: &Round) -> Value {
    json!({
        "ready_ms": ms(r.ready),
        "idle_rss_bytes": r.idle_rss,
        "stop_ms": ms(r.stop),
        "clean_exit": r.clean_exit,
    })
}

fn median_ms(rounds: &[Round]) -> f64 {
    let mut v: Vec<f64> = rounds.iter().map(|r| ms(r.ready)).collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

async fn one_round(args: &StartupArgs) -> Result<(Round, ProcessReport, String), PerfError> {
    let spawned = Instant::now();
    let mut child = spawn(&args.server_cmd)?;
    let pid = child.id();
    let sampler = Sampler::start(pid, args.common.sample_interval).ok();
    let ready = wait_ready(args, &mut child, spawned).await;
    let (ready, server) = match ready {
        Ok(r) => r,
        Err(e) => {
            stop(&mut child).await;
            return Err(e);
        }
    };
    tokio::time::sleep(args.idle_wait).await;
    let idle_rss = sampler::rss_bytes(pid).unwrap_or(0);
    let report = sampler.map(Sampler::stop);
    let stopping = Instant::now();
    let clean_exit = stop(&mut child).await;
    let round = Round { ready, idle_rss, stop: stopping.elapsed(), clean_exit };
    let report = report.unwrap_or_else(|| sampler::Series::new(1.0).report(pid, Duration::ZERO));
    Ok((round, report, server))
}

fn spawn(cmd: &str) -> Result<Child, PerfError> {
    Command::new("sh")
        .arg("-c")
        .arg(format!("exec {cmd}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| PerfError::Setup(format!("starting --server-cmd: {e}")))
}

/// Poll /readyz until it answers 200; the time since `spawned` and the server URL.
async fn wait_ready(
    args: &StartupArgs,
    child: &mut Child,
    spawned: Instant,
) -> Result<(Duration, String), PerfError> {
    let mut client: Option<(Client, String)> = None;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(PerfError::Setup(format!("the server exited before ready: {status}")));
        }
        if spawned.elapsed() > args.ready_timeout {
            return Err(PerfError::Setup("the server did not become ready in time".into()));
        }
        if client.is_none() {
            client = probe_client(args);
        }
        if let Some((c, url)) = &client {
            match c.send(Req::get("/readyz").json()).await {
                Ok(r) if r.status == 200 => return Ok((spawned.elapsed(), url.clone())),
                Ok(_) | Err(crate::client::ClientError::Connect(_)) => {}
                // TLS and other failures: the kubeconfig may be stale, read it again.
                Err(_) => client = None,
            }
        }
        tokio::time::sleep(args.poll_interval).await;
    }
}

fn probe_client(args: &StartupArgs) -> Option<(Client, String)> {
    let c = &args.common;
    let path = c.kubeconfig.clone().unwrap_or_else(kubeconfig::default_path);
    let target: Target = kubeconfig::load(&path, c.context.as_deref()).ok()?;
    let opts = ClientOptions {
        http2: c.http2,
        protobuf: false,
        connections: 1,
        timeout: Duration::from_secs(2),
    };
    Some((Client::new(&target, &opts).ok()?, target.server))
}

/// SIGTERM, wait for the exit (SIGKILL after the grace); true when it exited by itself.
async fn stop(child: &mut Child) -> bool {
    // SAFETY: kill(2) on the PID of our own child, which has not been reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + STOP_GRACE;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![5, 1, 3]), 3);
        assert_eq!(median(vec![]), 0);
        let r = |ms| Round {
            ready: Duration::from_millis(ms),
            idle_rss: 1,
            stop: Duration::ZERO,
            clean_exit: true,
        };
        assert_eq!(median_ms(&[r(30), r(10), r(20)]), 20.0);
    }
}
