//! Admission: the NamespaceLifecycle plugin — no creates in a missing or terminating
//! namespace, and the system namespaces can never be deleted. Mutating/validating
//! plugins and webhooks plug in here later.

use crate::rest::Scope;
use crate::status::{ApiError, Target};
use kapi_codec::meta;
use serde_json::Value;

/// Namespaces the apiserver keeps alive (upstream's immortal namespaces).
pub const IMMORTAL: [&str; 3] = ["default", "kube-system", "kube-public"];

pub async fn admit_create(scope: &Scope<'_>, obj: &Value) -> Result<(), ApiError> {
    if !scope.rt.namespaced {
        return Ok(());
    }
    let ns = meta::namespace(obj).unwrap_or("");
    let key = format!("{}/namespaces/{ns}", scope.app.prefix());
    let ns_target = Target {
        resource: "namespaces".into(),
        kind: "Namespace".into(),
        name: ns.into(),
        ..Default::default()
    };
    let kv = scope.app.store.get(&key).await.map_err(|e| ApiError::from_storage(e, &ns_target))?;
    let Some(kv) = kv else { return Err(ApiError::NotFound(ns_target)) };
    let namespace: Value = kapi_codec::stored::decode(&kv.value).unwrap_or(Value::Null);
    let terminating = meta::meta_str(&namespace, "deletionTimestamp").is_some()
        || namespace.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
    if terminating {
        let name = meta::name(obj).unwrap_or("");
        return Err(ApiError::ForbiddenTarget(
            scope.target(name),
            format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        ));
    }
    Ok(())
}

pub fn admit_delete(scope: &Scope<'_>, name: &str) -> Result<(), ApiError> {
    let is_namespace = scope.rt.role == kapi_codec::registry::Role::Namespaces;
    if is_namespace && IMMORTAL.contains(&name) {
        return Err(ApiError::ForbiddenTarget(
            scope.target(name),
            "this namespace may not be deleted".into(),
        ));
    }
    Ok(())
}
