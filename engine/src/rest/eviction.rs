//! The `eviction` subresource of pods (policy/v1 Eviction; what `kubectl drain` POSTs):
//! a delete that respects PodDisruptionBudgets, as upstream's EvictionREST.
//!
//! A pod that is not running (Pending, Succeeded, Failed) or already terminating is
//! deleted without looking at budgets. Otherwise the budgets of the pod's namespace
//! whose selector matches it decide: none, delete; more than one, 500 as upstream;
//! one with `status.disruptionsAllowed` > 0, that count is decremented (an optimistic
//! write of the budget) and the pod deleted; otherwise 429 TooManyRequests with a
//! `DisruptionBudget` cause, and the client retries. The delete takes the Eviction's
//! `deleteOptions`. Answers 201 with a Success Status.

use super::delete::{self, DeleteOptions};
use super::{Request, Scope, object};
use crate::admission::{Attributes, Operation};
use crate::body::Response;
use crate::negotiation::{self, body_format};
use crate::status::{self, ApiError};
use kapi_codec::selector::LabelSelector;
use kapi_codec::{format, meta};
use kapi_storage::{KeyValue, Precondition, StorageError};
use serde_json::{Value, json};

pub async fn create(req: &Request<'_>, scope: &Scope<'_>) -> Result<Response, ApiError> {
    let name = scope.url_name()?;
    let fmt = body_format(req.header(http::header::CONTENT_TYPE))?;
    let mut eviction =
        format::decode(&req.body, fmt).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let named = meta::name(&eviction).unwrap_or("");
    if named != name {
        return Err(ApiError::BadRequest(format!(
            "name in URL ({name}) does not match name in Eviction object ({named})"
        )));
    }
    let attrs = Attributes::new(scope, Operation::Create, name, None);
    super::admit::both(scope, &attrs, &mut eviction).await?;
    let opts = delete_options(&eviction);
    let pod = super::get::read(scope, name).await?;
    if needs_budget(&pod) {
        spend_budget(scope, &pod).await?;
    }
    if !scope.dry_run()? {
        delete::delete_one(scope, name, &opts).await?;
    }
    let mut ok = status::success(None);
    ok["code"] = json!(201);
    Ok(negotiation::respond(201, &ok, scope.output, scope.pretty))
}

fn delete_options(eviction: &Value) -> DeleteOptions {
    let o = eviction.get("deleteOptions").cloned().unwrap_or(Value::Null);
    DeleteOptions {
        grace: o.get("gracePeriodSeconds").and_then(Value::as_i64),
        uid: o.pointer("/preconditions/uid").and_then(Value::as_str).map(String::from),
        resource_version: o
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(String::from),
        policy: super::propagation::Policy {
            propagation: o.get("propagationPolicy").and_then(Value::as_str).map(String::from),
            orphan_dependents: o.get("orphanDependents").and_then(Value::as_bool),
        },
        admitted: true,
    }
}

/// Whether evicting `pod` must be allowed by a disruption budget (upstream's
/// `canIgnorePDB`, negated).
fn needs_budget(pod: &Value) -> bool {
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending");
    let terminating = meta::meta_str(pod, "deletionTimestamp").is_some();
    !terminating && !matches!(phase, "Pending" | "Succeeded" | "Failed")
}

/// Take one allowed disruption from the budget that covers `pod`, if any.
async fn spend_budget(scope: &Scope<'_>, pod: &Value) -> Result<(), ApiError> {
    let Some(rt) = scope.app.registry().get("policy", "v1", "poddisruptionbudgets").cloned() else {
        return Ok(());
    };
    let ns = meta::namespace(pod).unwrap_or("default");
    let prefix = rt.storage_prefix(scope.app.prefix(), Some(ns));
    let page = scope.app.store.range(&prefix, None, 0, None).await.map_err(storage_error)?;
    let labels = meta::metadata(pod).and_then(|m| m.get("labels")).and_then(Value::as_object);
    let mut covering: Vec<(KeyValue, Value)> = Vec::new();
    for kv in page.items {
        let pdb = object::from_stored(&rt, &kv)?;
        let selector = pdb.pointer("/spec/selector").cloned().unwrap_or(Value::Null);
        if selector.is_null() {
            continue;
        }
        let matches = LabelSelector::from_object(&selector).is_ok_and(|s| s.matches(labels));
        if matches {
            covering.push((kv, pdb));
        }
    }
    match covering.len() {
        0 => Ok(()),
        1 => {
            let (kv, pdb) = covering.remove(0);
            take_disruption(scope, &rt, kv, pdb).await
        }
        _ => Err(ApiError::Internal(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
                .into(),
        )),
    }
}

async fn take_disruption(
    scope: &Scope<'_>,
    rt: &kapi_codec::ResourceType,
    kv: KeyValue,
    mut pdb: Value,
) -> Result<(), ApiError> {
    let allowed = pdb.pointer("/status/disruptionsAllowed").and_then(Value::as_i64).unwrap_or(0);
    if allowed <= 0 {
        let budget = meta::name(&pdb).unwrap_or("").to_string();
        return Err(ApiError::TooManyRequests(format!(
            "Cannot evict pod as it would violate the pod's disruption budget. The disruption budget {budget} needs more healthy pods."
        )));
    }
    if scope.dry_run()? {
        return Ok(());
    }
    pdb["status"]["disruptionsAllowed"] = json!(allowed - 1);
    let bytes = object::to_stored(rt, &pdb, scope.app.storage_media);
    match scope.app.store.update(&kv.key, bytes, Precondition::ModRevision(kv.mod_revision)).await {
        Ok(_) => Ok(()),
        // The budget changed meanwhile: the client retries, as upstream asks it to.
        Err(StorageError::Conflict { .. }) => Err(ApiError::TooManyRequests(
            "the disruption budget changed while evicting; please try again".into(),
        )),
        Err(e) => Err(storage_error(e)),
    }
}

fn storage_error(e: StorageError) -> ApiError {
    ApiError::from_storage(e, &Default::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_running_pods_need_a_budget() {
        assert!(needs_budget(&json!({"metadata": {}, "status": {"phase": "Running"}})));
        assert!(!needs_budget(&json!({"metadata": {}, "status": {"phase": "Pending"}})));
        assert!(!needs_budget(&json!({"metadata": {}, "status": {"phase": "Succeeded"}})));
        let terminating = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Running"}});
        assert!(!needs_budget(&terminating));
    }

    #[test]
    fn eviction_delete_options_are_carried() {
        let ev = json!({"deleteOptions": {"gracePeriodSeconds": 0, "preconditions": {"uid": "u"}}});
        let o = delete_options(&ev);
        assert_eq!(o.grace, Some(0));
        assert_eq!(o.uid.as_deref(), Some("u"));
    }
}
