//! Calling one webhook for one write: what it is called with (the write's facts, the
//! object in the invoked version), the dry-run rule, the POST through the shared
//! webhook transport (`conversion::Transport`, the aggregator's client thread: a serving
//! core only awaits), the answer verified, its warnings and audit annotations passed on,
//! a refusal turned into upstream's Status.
//!
//! Invariants: a failure to reach or understand the webhook is a [`HookError::Call`]
//! (the failure policy decides); a refusal, a dry run the webhook cannot take and
//! kapi's own errors are [`HookError::Final`] whatever the policy.

use super::Write;
use super::hook::Hook;
use super::predicates::{self, Invocation};
use super::review::{self, Answer, RequestFacts, ReviewVersion};
use crate::conversion::{Call, Transport};
use crate::status::ApiError;
use serde_json::Value;

/// Why a webhook gave no usable answer.
#[derive(Debug)]
pub enum HookError {
    /// Upstream's `ErrCallingWebhook` reason (`failed to call webhook: ...`).
    Call(String),
    /// An error the failure policy does not touch.
    Final(ApiError),
}

/// What one webhook is called with, once it is known to apply.
pub struct Prepared {
    pub invocation: Invocation,
    pub uid: String,
    /// The object in the invoked version.
    pub object: Value,
    /// The review's `request`.
    pub request: Value,
}

/// Whether `hook` is called for the write, and with what (rules, selectors, match
/// conditions; see `predicates`). Errors are the request's answer.
pub async fn prepare(
    w: &Write<'_>,
    hook: &Hook,
    obj: &Value,
) -> Result<Option<Prepared>, ApiError> {
    let own = w.rule_target();
    let equivalents = if hook.exact { &[][..] } else { w.equivalents() };
    let Some(invocation) = predicates::invocation(hook, &own, &w.kind, equivalents) else {
        return Ok(None);
    };
    let selected =
        predicates::namespace_selected(hook, w.namespace, w.is_namespaces, w.namespace_labels())?
            && predicates::object_selected(hook, obj, w.a.old)?;
    if !selected {
        return Ok(None);
    }
    let (object, old) = match &invocation.equivalent {
        None => (obj.clone(), w.a.old.cloned()),
        Some(eq) => {
            let app = w.a.scope.app;
            let object = predicates::in_version(app, &w.a.scope.rt, eq, obj).await?;
            let old = match w.a.old {
                Some(o) => Some(predicates::in_version(app, &w.a.scope.rt, eq, o).await?),
                None => None,
            };
            (object, old)
        }
    };
    let uid = uuid::Uuid::new_v4().to_string();
    let facts = RequestFacts {
        uid: &uid,
        kind: &invocation.kind,
        resource: &invocation.resource,
        subresource: w.subresource,
        request_kind: &w.kind,
        request_resource: &w.resource,
        name: w.review_name(),
        namespace: w.namespace,
        operation: w.a.operation.as_str(),
        user: w.a.user(),
        dry_run: w.a.dry_run,
        options: &w.options,
    };
    let request = review::request_json(&facts, &object, old.as_ref());
    if !hook.conditions.is_empty() {
        let old_v = old.clone().unwrap_or(Value::Null);
        let bindings = [("object", &object), ("oldObject", &old_v), ("request", &request)];
        if !predicates::conditions_hold(hook, &w.a.target(), &bindings)? {
            return Ok(None);
        }
    }
    Ok(Some(Prepared { invocation, uid, object, request }))
}

/// Call `hook` with a prepared review; the verified answer when it allows the write.
pub async fn call(
    w: &Write<'_>,
    hook: &Hook,
    p: &Prepared,
    mutating: bool,
) -> Result<Answer, HookError> {
    if w.a.dry_run && !hook.dry_run_safe() {
        if hook.side_effects.is_none() {
            return Err(HookError::Call("Webhook SideEffects is nil".into()));
        }
        return Err(HookError::Final(ApiError::BadRequest(format!(
            "admission webhook {:?} does not support dry run",
            hook.name
        ))));
    }
    let version = ReviewVersion::pick(&hook.review_versions).map_err(HookError::Call)?;
    let Some(endpoint) = &hook.endpoint else {
        return Err(HookError::Call(
            "could not get REST client: webhook has no clientConfig url or service".into(),
        ));
    };
    let body = review::body(version, p.request.clone());
    let target = Call { endpoint, ca_bundle: &hook.ca_bundle, timeout: hook.timeout };
    let transport = Transport::of(w.a.scope.app);
    let answer = transport
        .post_json(&target, body, "kapi-admission")
        .await
        .map_err(|e| HookError::Call(format!("failed to call webhook: {e}")))?;
    let answer = review::verify(&answer, version, &p.uid, mutating).map_err(|(decoding, m)| {
        HookError::Call(if decoding {
            format!("failed to call webhook: {m}")
        } else {
            format!("received invalid webhook response: {m}")
        })
    })?;
    for (k, v) in &answer.audit_annotations {
        w.a.annotate(format!("{}/{k}", hook.name), v.clone());
    }
    for warning in &answer.warnings {
        w.a.warn(warning.clone());
    }
    if !answer.allowed {
        let refusal = ApiError::webhook_denied(&w.a.target(), &hook.name, answer.result.as_ref());
        return Err(HookError::Final(refusal));
    }
    Ok(answer)
}

/// Apply the outcome of one call to the request as the failure policy says: a failed
/// call of an `Ignore` webhook is recorded (`failed_open` audit annotation key) and
/// passed; of a `Fail` one, upstream's internal error.
pub fn settle<T>(
    w: &Write<'_>,
    hook: &Hook,
    outcome: Result<T, HookError>,
    failed_open_key: String,
) -> Result<Option<T>, ApiError> {
    match outcome {
        Ok(t) => Ok(Some(t)),
        Err(HookError::Final(e)) => Err(e),
        Err(HookError::Call(reason)) if hook.ignore_failures => {
            tracing::warn!(webhook = %hook.name, "failed calling webhook, failing open: {reason}");
            w.a.annotate(failed_open_key, hook.name.clone());
            Ok(None)
        }
        Err(HookError::Call(reason)) => Err(ApiError::internal_cause(format!(
            "failed calling webhook {:?}: {reason}",
            hook.name
        ))),
    }
}
