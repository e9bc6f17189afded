//! `memory`: the server's RSS holding N pods, and its peak under concurrent LISTs. Needs
//! `--server-pid`. Steps: RSS of the server as found; the missing pods (`perf-mem-<i>`)
//! are created with the setup path `list` uses; RSS after 1 s of settling; one LIST in
//! protobuf and one in JSON give the data's size on the wire; then C clients LIST all the
//! pods back to back for `--duration` while RSS is sampled every 50 ms for its peak;
//! RSS after the LISTs and the lifetime peak (VmHWM) close the figures.

use super::pods::{PodTemplate, ensure_pods, pods_path};
use super::{Ctx, Measured, PerfError, expect, measure, outcome};
use crate::client::{Client, ClientOptions, PROTOBUF, Req};
use crate::options::MemoryArgs;
use crate::sampler::{self, Sampler};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Sampling period of the peak during the LISTs.
const PEAK_INTERVAL: Duration = Duration::from_millis(50);
/// Pause after loading, before reading the loaded RSS.
const SETTLE: Duration = Duration::from_secs(1);

/// Run the workload.
pub async fn run(ctx: &Ctx, args: &MemoryArgs) -> Result<Measured, PerfError> {
    let pid = ctx
        .common
        .server_pid
        .ok_or_else(|| PerfError::Setup("memory needs --server-pid".into()))?;
    let rss = |what: &str| {
        sampler::rss_bytes(pid).ok_or_else(|| PerfError::Setup(format!("reading RSS {what}")))
    };
    let before = rss("before loading")?;
    let tpl = PodTemplate::load(&args.pod.pod_template)?;
    ctx.note(&format!("making sure {} pods exist in {}", args.pods, ctx.ns));
    ensure_pods(ctx, &tpl, (0..args.pods).map(|i| format!("perf-mem-{i:06}")).collect()).await?;
    tokio::time::sleep(SETTLE).await;
    let loaded = rss("after loading")?;
    let protobuf_bytes = list_bytes(ctx, true).await?;
    let json_bytes = list_bytes(ctx, false).await?;
    let peak = Sampler::start(pid, PEAK_INTERVAL).map_err(PerfError::Setup)?;
    let query = if args.consistent { "" } else { "?resourceVersion=0" };
    let path: Arc<str> = Arc::from(format!("{}{query}", pods_path(&ctx.ns)));
    let client = ctx.client.clone();
    let mut m = measure(ctx, "list", move |_| {
        let req = Req::get(&*path);
        let client = client.clone();
        async move { outcome(client.send(req).await) }
    })
    .await;
    let during = peak.stop();
    let figures = Figures {
        pods: args.pods,
        before,
        loaded,
        list_peak: during.rss_bytes_peak,
        after: rss("after the LISTs")?,
        hwm: sampler::hwm_bytes(pid).unwrap_or(0),
        protobuf_bytes,
        json_bytes,
    };
    figures.insert(&mut m.extra);
    Ok(m)
}

/// The memory figures of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    pub pods: usize,
    pub before: u64,
    pub loaded: u64,
    pub list_peak: u64,
    pub after: u64,
    pub hwm: u64,
    pub protobuf_bytes: u64,
    pub json_bytes: u64,
}

impl Figures {
    /// Add the figures and their ratios to `extra`.
    pub fn insert(&self, extra: &mut Map<String, Value>) {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { round3(a as f64 / b as f64) };
        let per_pod = self.loaded.saturating_sub(self.before) / self.pods.max(1) as u64;
        let fields: [(&str, Value); 12] = [
            ("pods", self.pods.into()),
            ("rss_before_bytes", self.before.into()),
            ("rss_loaded_bytes", self.loaded.into()),
            ("rss_list_peak_bytes", self.list_peak.into()),
            ("rss_after_lists_bytes", self.after.into()),
            ("rss_hwm_bytes", self.hwm.into()),
            ("rss_growth_per_pod_bytes", per_pod.into()),
            ("list_protobuf_bytes", self.protobuf_bytes.into()),
            ("list_json_bytes", self.json_bytes.into()),
            ("rss_loaded_over_protobuf", ratio(self.loaded, self.protobuf_bytes).into()),
            ("rss_list_peak_over_loaded", ratio(self.list_peak, self.loaded).into()),
            ("rss_list_peak_over_protobuf", ratio(self.list_peak, self.protobuf_bytes).into()),
        ];
        for (k, v) in fields {
            extra.insert(k.into(), v);
        }
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Size of one LIST of the namespace's pods, in protobuf or JSON.
async fn list_bytes(ctx: &Ctx, protobuf: bool) -> Result<u64, PerfError> {
    let opts = ClientOptions {
        http2: ctx.common.http2,
        protobuf,
        connections: 1,
        timeout: ctx.common.timeout,
    };
    let client = Client::new(&ctx.target, &opts)?;
    let r = client.send(Req::get(format!("{}?resourceVersion=0", pods_path(&ctx.ns)))).await?;
    expect(&r, &[200], if protobuf { "a protobuf LIST" } else { "a JSON LIST" })?;
    if protobuf && !r.body.starts_with(b"k8s\0") {
        ctx.note(&format!("the server did not answer in {PROTOBUF}; its size is JSON's"));
    }
    Ok(r.body.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_and_ratios() {
        let f = Figures {
            pods: 100,
            before: 1_000,
            loaded: 11_000,
            list_peak: 22_000,
            after: 12_000,
            hwm: 23_000,
            protobuf_bytes: 5_000,
            json_bytes: 9_000,
        };
        let mut extra = Map::new();
        f.insert(&mut extra);
        assert_eq!(extra["rss_growth_per_pod_bytes"], 100);
        assert_eq!(extra["rss_loaded_over_protobuf"], 2.2);
        assert_eq!(extra["rss_list_peak_over_loaded"], 2.0);
        let empty = Figures { protobuf_bytes: 0, ..f };
        let mut extra = Map::new();
        empty.insert(&mut extra);
        assert_eq!(extra["rss_loaded_over_protobuf"], 0.0);
    }
}
