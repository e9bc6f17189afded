//! `--custom-resource`: the PerfPod CustomResourceDefinition the pod workloads run on
//! instead of pods, installed (if missing) and waited for until Established, so the same
//! bytes can be measured as a custom type and as a built-in one.

use super::pods::{CUSTOM_GROUP, CUSTOM_PLURAL, custom_crd};
use super::{Ctx, PerfError, expect};
use crate::client::{JSON, Req};
use bytes::Bytes;
use http::Method;
use serde_json::Value;
use std::time::Duration;

const ESTABLISH_WAIT: Duration = Duration::from_secs(30);

/// Install the CRD and wait until it is Established.
pub async fn ensure(ctx: &Ctx) -> Result<(), PerfError> {
    let body = Bytes::from(custom_crd().to_string());
    let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
    let r = ctx.setup.send(Req::new(Method::POST, crds).body(body, JSON).json()).await?;
    expect(&r, &[201, 409], "creating the PerfPod CRD")?;
    let path = format!("{crds}/{CUSTOM_PLURAL}.{CUSTOM_GROUP}");
    let deadline = tokio::time::Instant::now() + ESTABLISH_WAIT;
    while tokio::time::Instant::now() < deadline {
        let r = ctx.setup.send(Req::get(&path).json()).await?;
        expect(&r, &[200], "reading the PerfPod CRD")?;
        if established(&r.body) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(PerfError::Setup("the PerfPod CRD did not become Established".into()))
}

fn established(body: &[u8]) -> bool {
    let crd: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let conds = crd.pointer("/status/conditions").and_then(Value::as_array);
    conds.into_iter().flatten().any(|c| c["type"] == "Established" && c["status"] == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn established_is_read_from_the_conditions() {
        let yes = br#"{"status":{"conditions":[{"type":"Established","status":"True"}]}}"#;
        let no = br#"{"status":{"conditions":[{"type":"Established","status":"False"}]}}"#;
        assert!(established(yes) && !established(no) && !established(b"{}"));
    }
}
