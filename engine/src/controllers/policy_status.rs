//! The ValidatingAdmissionPolicy status controller, in process (upstream runs it in
//! kube-controller-manager; kapi runs standalone): a thread (`kapi-vap-status`) follows
//! the revision of the ValidatingAdmissionPolicy watch cache and, when it moved, gives
//! every policy whose `metadata.generation` is past its `status.observedGeneration`
//! the status upstream's controller writes: `observedGeneration` and `typeChecking`
//! with the expression warnings of the type checker
//! ([`crate::admission::policy::type_checking`]). It sets no conditions (upstream's
//! controller sets none either).
//!
//! Invariants: a policy is checked once per generation (a status write does not move
//! the generation, so the thread's own writes settle); the write goes to the status
//! subresource as [`MANAGER`], and other status fields are kept; the status is computed
//! from the object the write replaces, never from an older read; requests never wait
//! on this thread.

use crate::admission::policy::type_checking;
use crate::app::App;
use crate::rest::{self, InternalTarget};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How often the thread looks at the cache's revision.
const CHECK_EVERY: Duration = Duration::from_millis(50);
/// Upstream's controller name, the status writes' field manager.
pub const MANAGER: &str = "validatingadmissionpolicy-status-controller";

const GROUP: &str = "admissionregistration.k8s.io";
const POLICIES: &str = "validatingadmissionpolicies";

/// Start the controller thread.
pub fn start(app: Arc<App>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("kapi-vap-status".into()).spawn(move || {
        let mut seen = None;
        while !app.is_shutting_down() {
            std::thread::sleep(CHECK_EVERY);
            pass(&app, &mut seen);
        }
    })
}

/// One look: when the cache moved, every policy that needs a status gets one.
fn pass(app: &App, seen: &mut Option<u64>) {
    let reg = app.registry();
    let Some(rt) = reg.get(GROUP, "v1", POLICIES) else { return };
    let Some(cache) = app.caches.get(app, rt) else { return };
    if !cache.is_loaded() || *seen == Some(cache.revision()) {
        return;
    }
    *seen = Some(cache.revision());
    let (items, _, _) = cache.list(&rt.storage_prefix(app.prefix(), None), None, 0);
    for policy in items.iter().map(|e| e.data.obj()) {
        if needs_status(&policy) {
            write(app, &policy);
        }
    }
}

fn generation(policy: &Value) -> i64 {
    policy.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0)
}

/// Whether the policy's generation is past its `status.observedGeneration`.
pub fn needs_status(policy: &Value) -> bool {
    let observed = policy.pointer("/status/observedGeneration").and_then(Value::as_i64);
    generation(policy) > observed.unwrap_or(0)
}

/// `policy` with the status of its current generation.
pub fn with_status(registry: &kapi_codec::registry::Registry, policy: &Value) -> Value {
    let warnings: Vec<Value> =
        type_checking::check(registry, policy).iter().map(|w| w.to_json()).collect();
    let mut type_checking = Map::new();
    if !warnings.is_empty() {
        type_checking.insert("expressionWarnings".into(), Value::Array(warnings));
    }
    let mut out = policy.clone();
    let status = out
        .as_object_mut()
        .map(|o| o.entry("status").or_insert_with(|| json!({})))
        .filter(|s| s.is_object());
    if let Some(Value::Object(s)) = status {
        s.insert("observedGeneration".into(), json!(generation(policy)));
        s.insert("typeChecking".into(), Value::Object(type_checking));
    }
    out
}

fn write(app: &App, policy: &Value) {
    let name = policy.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let target = InternalTarget {
        group: GROUP,
        version: "v1",
        plural: POLICIES,
        ns: None,
        subresource: Some("status"),
        manager: MANAGER,
    };
    let registry = app.registry();
    let result =
        futures_executor::block_on(rest::update_internal_as(app, target, name, |current| {
            Ok(if needs_status(current) {
                with_status(&registry, current)
            } else {
                current.clone()
            })
        }));
    match result {
        Ok(_) | Err(crate::status::ApiError::NotFound(_)) => {}
        Err(e) => tracing::debug!(
            "writing the status of validatingadmissionpolicy {name}: {}",
            e.to_status()["message"]
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kapi_codec::registry::Registry;

    fn policy(generation: i64, expression: &str) -> Value {
        json!({"metadata": {"name": "p", "generation": generation}, "spec": {
            "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                "operations": ["CREATE"], "resources": ["deployments"]}]},
            "validations": [{"expression": expression}]}})
    }

    #[test]
    fn a_new_generation_gets_its_observed_generation_and_warnings() {
        let reg = Registry::known();
        let p = policy(2, "object.nope == 1");
        assert!(needs_status(&p));
        let out = with_status(reg, &p);
        assert_eq!(out["status"]["observedGeneration"], 2);
        let w = &out["status"]["typeChecking"]["expressionWarnings"];
        assert_eq!(w[0]["fieldRef"], "spec.validations[0].expression");
        assert!(w[0]["warning"].as_str().unwrap().contains("undefined field 'nope'"));
        assert!(!needs_status(&out), "the written status settles");
    }

    #[test]
    fn a_good_policy_has_an_empty_type_checking_and_other_status_is_kept() {
        let reg = Registry::known();
        let mut p = policy(1, "object.spec.replicas > 0");
        p["status"] = json!({"conditions": [{"type": "X"}]});
        let out = with_status(reg, &p);
        assert_eq!(
            out["status"],
            json!({"conditions": [{"type": "X"}], "observedGeneration": 1, "typeChecking": {}})
        );
    }
}
