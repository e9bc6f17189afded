//! `create`: pods made from the template with unique names (`perf-<run id>-<n>`), 32
//! clients by default. Every pod created stays until the namespace is cleaned up.

use super::pods::{PodTemplate, pods_path};
use super::{Ctx, Measured, PerfError, measure, outcome};
use crate::client::{JSON, Req};
use crate::options::PodArgs;
use http::Method;
use std::sync::Arc;

/// Run the workload.
pub async fn run(ctx: &Ctx, args: &PodArgs) -> Result<Measured, PerfError> {
    let tpl = Arc::new(PodTemplate::load(&args.pod_template)?);
    let path: Arc<str> = Arc::from(pods_path(&ctx.ns));
    let prefix: Arc<str> = Arc::from(format!("perf-{}", ctx.run_id));
    let (client, body) = (ctx.client.clone(), tpl.clone());
    let mut m = measure(ctx, "create", move |call| {
        let name = format!("{prefix}-{}", call.seq);
        let req = Req::new(Method::POST, &*path).body(body.body(&name), JSON);
        let client = client.clone();
        async move { outcome(client.send(req).await) }
    })
    .await;
    m.extra.insert("pod_bytes".into(), tpl.len().into());
    Ok(m)
}
