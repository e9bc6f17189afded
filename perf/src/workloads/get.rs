//! `get`: GET one pod by name, 64 clients by default. The pod (`perf-get`) is created
//! from the template first if it does not exist.

use super::pods::{PodTemplate, ensure_pods, pods_path};
use super::{Ctx, Measured, PerfError, measure, outcome};
use crate::client::Req;
use crate::options::PodArgs;
use std::sync::Arc;

/// Run the workload.
pub async fn run(ctx: &Ctx, args: &PodArgs) -> Result<Measured, PerfError> {
    let tpl = PodTemplate::load(&args.pod_template)?;
    ensure_pods(ctx, &tpl, vec!["perf-get".to_owned()]).await?;
    let path: Arc<str> = Arc::from(format!("{}/perf-get", pods_path(&ctx.ns)));
    let client = ctx.client.clone();
    Ok(measure(ctx, "get", move |_| {
        let req = Req::get(&*path);
        let client = client.clone();
        async move { outcome(client.send(req).await) }
    })
    .await)
}
