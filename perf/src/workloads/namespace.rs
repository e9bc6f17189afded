//! The run's namespace: created if missing (waiting for a namespace of the same name that
//! is still terminating to go away), and removed at the end. Removal deletes the pods
//! first with one DELETE of the collection, so it also completes on an API server that
//! runs without the namespace controller.

use super::{Ctx, PerfError, expect};
use crate::client::{JSON, Req};
use http::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// How long to wait for a terminating namespace of the same name to go away.
const TERMINATING_WAIT: Duration = Duration::from_secs(180);

/// Make sure the namespace exists and is active.
pub async fn ensure(ctx: &Ctx) -> Result<(), PerfError> {
    let path = format!("/api/v1/namespaces/{}", ctx.ns);
    let deadline = tokio::time::Instant::now() + TERMINATING_WAIT;
    let mut noted = false;
    while tokio::time::Instant::now() < deadline {
        let r = ctx.setup.send(Req::get(&path).json()).await?;
        match r.status {
            404 => return create(ctx).await,
            200 if !terminating(&r.body) => return Ok(()),
            200 => {
                if !noted {
                    ctx.note(&format!("waiting for namespace {} to finish terminating", ctx.ns));
                    noted = true;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            _ => return expect(&r, &[200, 404], "reading the namespace"),
        }
    }
    Err(PerfError::Setup(format!("namespace {} is still terminating", ctx.ns)))
}

fn terminating(body: &[u8]) -> bool {
    let ns: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    ns["status"]["phase"] == "Terminating"
}

async fn create(ctx: &Ctx) -> Result<(), PerfError> {
    let body = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ctx.ns, "labels": {"app.kubernetes.io/managed-by": "kapi-perf"}},
    });
    let req = Req::new(Method::POST, "/api/v1/namespaces").body(body.to_string(), JSON).json();
    let r = ctx.setup.send(req).await?;
    expect(&r, &[200, 201, 409], "creating the namespace")
}

/// Delete the namespace's pods and the namespace; problems are printed, not fatal.
pub async fn cleanup(ctx: &Ctx) {
    let limit = Duration::from_secs(600);
    let pods = format!("/api/v1/namespaces/{}/pods", ctx.ns);
    let ns = format!("/api/v1/namespaces/{}", ctx.ns);
    for (what, path) in [("pods", pods), ("namespace", ns)] {
        let req = Req::new(Method::DELETE, path).json().timeout(limit);
        match ctx.setup.send(req).await {
            Ok(r) if r.ok() || r.status == 404 => {}
            Ok(r) => ctx.note(&format!("cleanup of the {what}: HTTP {}", r.status)),
            Err(e) => ctx.note(&format!("cleanup of the {what}: {e}")),
        }
    }
}
