//! `list`: LIST the pods of a namespace holding N pods (10,000 by default), from the
//! watch cache (`resourceVersion=0`) or consistent (`--consistent`), in JSON or protobuf.
//! The missing pods (`perf-list-<i>`) are created first, and one JSON LIST counts the
//! items the server returns.

use super::pods::{PodTemplate, ensure_pods, pods_path};
use super::{Ctx, Measured, PerfError, expect, measure, outcome};
use crate::client::Req;
use crate::options::ListArgs;
use serde::Deserialize;
use serde::de::IgnoredAny;
use std::sync::Arc;

#[derive(Deserialize)]
struct Items {
    items: Vec<IgnoredAny>,
}

/// Run the workload.
pub async fn run(ctx: &Ctx, args: &ListArgs) -> Result<Measured, PerfError> {
    let tpl = PodTemplate::load(&args.pod.pod_template)?;
    ctx.note(&format!("making sure {} pods exist in {}", args.pods, ctx.ns));
    let names = (0..args.pods).map(|i| format!("perf-list-{i:06}")).collect();
    ensure_pods(ctx, &tpl, names).await?;
    let items = count_items(ctx).await?;
    ctx.note(&format!("the namespace holds {items} pods"));
    let query = if args.consistent { "" } else { "?resourceVersion=0" };
    let path: Arc<str> = Arc::from(format!("{}{query}", pods_path(&ctx.ns)));
    let client = ctx.client.clone();
    let mut m = measure(ctx, "list", move |_| {
        let req = Req::get(&*path);
        let client = client.clone();
        async move { outcome(client.send(req).await) }
    })
    .await;
    let per_list = m.ops.get("list").filter(|s| s.ok > 0).map(|s| s.bytes / s.ok);
    m.extra.insert("items".into(), items.into());
    m.extra.insert("bytes_per_list".into(), per_list.unwrap_or(0).into());
    m.extra.insert("consistent".into(), args.consistent.into());
    Ok(m)
}

async fn count_items(ctx: &Ctx) -> Result<usize, PerfError> {
    let r = ctx.setup.send(Req::get(pods_path(&ctx.ns)).json()).await?;
    expect(&r, &[200], "listing the pods")?;
    let list: Items = serde_json::from_slice(&r.body)
        .map_err(|e| PerfError::Setup(format!("the pod list is not JSON: {e}")))?;
    Ok(list.items.len())
}
