//! NamespaceLifecycle: no new objects in a missing or terminating namespace, and the
//! immortal namespaces (`default`, `kube-system`, `kube-public`) are never deleted.
//! As upstream, it runs in the mutating phase, so a missing namespace is reported before
//! the object is validated, and reads the namespace from the cache (which is let catch
//! up with what the store already sent on a miss, as upstream falls back to a live
//! lookup).

use super::{Attributes, Operation, Plugin, Step};
use crate::status::{ApiError, Target};
use kapi_codec::meta;
use kapi_codec::pointer::Pointer as _;
use serde_json::Value;

/// Namespaces the apiserver keeps alive (upstream's immortal namespaces).
pub const IMMORTAL: [&str; 3] = ["default", "kube-system", "kube-public"];

/// Upstream's NamespaceLifecycle plugin.
pub struct NamespaceLifecycle;

impl Plugin for NamespaceLifecycle {
    fn name(&self) -> &'static str {
        "NamespaceLifecycle"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        match a.operation {
            Operation::Create => a.rt().namespaced && a.subresource().is_none(),
            Operation::Delete => a.rt().role == kapi_codec::registry::Role::Namespaces,
            _ => false,
        }
    }

    fn mutates(&self) -> bool {
        true
    }

    fn admit<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a mut Value) -> Step<'a> {
        match a.operation {
            Operation::Delete => super::done(check_delete(a)),
            _ => Box::pin(check_create(a, obj)),
        }
    }
}

fn check_delete(a: &Attributes<'_>) -> Result<(), ApiError> {
    if IMMORTAL.contains(&a.name) {
        return Err(ApiError::ForbiddenTarget(
            a.target(),
            "this namespace may not be deleted".into(),
        ));
    }
    Ok(())
}

async fn check_create(a: &Attributes<'_>, obj: &Value) -> Result<(), ApiError> {
    let ns = a.namespace();
    let app = a.scope.app;
    let ns_target = || Target {
        resource: "namespaces".into(),
        kind: "Namespace".into(),
        name: ns.into(),
        ..Default::default()
    };
    let found = super::cached::get_or_store(app, super::cached::NAMESPACES, None, ns).await;
    let found = found.map_err(|e| ApiError::from_storage(e, &ns_target()))?;
    let Some(namespace) = found else { return Err(ApiError::NotFound(ns_target())) };
    let terminating = meta::meta_str(&namespace, "deletionTimestamp").is_some()
        || namespace.at("/status/phase").and_then(Value::as_str) == Some("Terminating");
    if terminating {
        let why = format!(
            "unable to create new content in namespace {ns} because it is being terminated"
        );
        return Err(a.forbid(obj, why));
    }
    Ok(())
}
