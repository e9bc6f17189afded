//! The mutating webhooks of one write, one after another: each applicable webhook is
//! called with the object as the webhooks before it left it; a JSONPatch answer is
//! applied (in the invoked version, then back in the request's); `IfNeeded` webhooks
//! run once more when a later webhook changed the object (`reinvocation`).
//!
//! Audit annotations as upstream: `mutation.webhook.admission.k8s.io/round_R_index_I`
//! for every call, `patch.webhook.admission.k8s.io/round_R_index_I` with the patch when
//! it changed the object, `failed-open.mutation.webhook.admission.k8s.io/...` when an
//! `Ignore` webhook failed.

use super::call::{self, HookError, Prepared};
use super::hook::Hook;
use super::reinvocation::Reinvocation;
use super::review::Answer;
use super::source::Source;
use super::{Attributes, Write, predicates};
use crate::rest::patch::{self, PatchType};
use crate::status::ApiError;
use serde_json::{Value, json};

/// What the webhooks remember between the chain's two rounds.
#[derive(Default)]
struct Rounds {
    reinvocation: Reinvocation,
    /// The object as the webhooks left it in the first round.
    last: Option<Value>,
}

const PLUGIN: &str = "MutatingAdmissionWebhook";

/// Run the mutating webhooks on `obj`: all of them in the chain's first round; in its
/// reinvocation round the `IfNeeded` ones marked (or all called `IfNeeded` ones when
/// another plugin changed the object since).
pub async fn admit(source: &Source, a: &Attributes<'_>, obj: &mut Value) -> Result<(), ApiError> {
    let snap = source.current(a.scope.app).await?;
    if snap.hooks.is_empty() {
        return Ok(());
    }
    let w = Write::new(a, obj, &snap).await;
    let mut state: Rounds = a.rounds.take(PLUGIN);
    let round = usize::from(a.rounds.is_reinvoke());
    if round == 1 && state.last.as_ref() != Some(&*obj) {
        state.reinvocation.changed_elsewhere();
    }
    let mut changed = false;
    for (i, hook) in snap.hooks.iter().enumerate() {
        if round == 0 || state.reinvocation.runs_again(&hook.uid) {
            changed |= run(&w, hook, (round, i), obj, &mut state.reinvocation).await?;
        }
    }
    if round == 0 {
        if changed {
            a.rounds.request();
        }
        state.last = Some(obj.clone());
        a.rounds.put(PLUGIN, state);
    }
    Ok(())
}

/// One webhook in round `at.0` at index `at.1`; whether it changed the object.
async fn run(
    w: &Write<'_>,
    hook: &Hook,
    at: (usize, usize),
    obj: &mut Value,
    reinvocation: &mut Reinvocation,
) -> Result<bool, ApiError> {
    let Some(p) = call::prepare(w, hook, obj).await? else { return Ok(false) };
    let outcome = mutate(w, hook, &p, at).await;
    let changed = matches!(outcome, Ok(Some(_)));
    let annotation =
        json!({"configuration": hook.configuration, "webhook": hook.name, "mutated": changed});
    w.a.annotate(
        format!("mutation.webhook.admission.k8s.io/round_{}_index_{}", at.0, at.1),
        annotation.to_string(),
    );
    reinvocation.called(&hook.uid, changed, hook.reinvoke_if_needed);
    let key =
        format!("failed-open.mutation.webhook.admission.k8s.io/round_{}_index_{}", at.0, at.1);
    if let Some(Some(new)) = call::settle(w, hook, outcome, key)? {
        *obj = new;
    }
    Ok(changed)
}

/// Call the webhook and apply its patch: the changed object in the request's version,
/// or None when it did not change.
async fn mutate(
    w: &Write<'_>,
    hook: &Hook,
    p: &Prepared,
    at: (usize, usize),
) -> Result<Option<Value>, HookError> {
    let answer = call::call(w, hook, p, true).await?;
    let Some(patched) = patched(&hook.name, &p.object, &answer)? else { return Ok(None) };
    if patched == p.object {
        return Ok(None);
    }
    let patch: Value = serde_json::from_slice(&answer.patch).unwrap_or(Value::Null);
    let annotation = json!({"configuration": hook.configuration, "webhook": hook.name, "patch": patch, "patchType": "JSONPatch"});
    w.a.annotate(
        format!("patch.webhook.admission.k8s.io/round_{}_index_{}", at.0, at.1),
        annotation.to_string(),
    );
    match &p.invocation.equivalent {
        None => Ok(Some(patched)),
        Some(eq) => predicates::in_version(w.a.scope.app, eq, &w.a.scope.rt, &patched)
            .await
            .map(Some)
            .map_err(HookError::Final),
    }
}

/// `object` with the answer's JSON patch applied (None: no patch, or an empty one).
pub fn patched(webhook: &str, object: &Value, answer: &Answer) -> Result<Option<Value>, HookError> {
    if answer.patch.is_empty() {
        return Ok(None);
    }
    if answer.patch_type != "JSONPatch" {
        return Err(HookError::Call(format!("unsupported patch type {:?}", answer.patch_type)));
    }
    let ops: Vec<Value> = serde_json::from_slice(&answer.patch).map_err(|e| {
        HookError::Call(format!("received undecodable patch in webhook response: {e}"))
    })?;
    if ops.is_empty() {
        return Ok(None);
    }
    if !object.is_object() {
        return Err(HookError::Final(ApiError::internal_cause(format!(
            "admission webhook {webhook:?} attempted to modify the object, which is not supported for this operation"
        ))));
    }
    patch::apply(PatchType::Json, object, &answer.patch, "")
        .map(Some)
        .map_err(|e| HookError::Final(ApiError::internal_cause(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(patch: &str, patch_type: &str) -> Answer {
        Answer {
            allowed: true,
            patch: patch.as_bytes().to_vec(),
            patch_type: patch_type.into(),
            ..Default::default()
        }
    }

    #[test]
    fn json_patches_are_applied_to_the_object() {
        let obj = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
        let a = answer(
            r#"[{"op":"add","path":"/metadata/labels","value":{"added":"yes"}},{"op":"remove","path":"/data/a"}]"#,
            "JSONPatch",
        );
        let out = patched("w", &obj, &a).unwrap().unwrap();
        assert_eq!(out, json!({"metadata": {"name": "c", "labels": {"added": "yes"}}, "data": {}}));
        assert!(patched("w", &obj, &answer("", "")).unwrap().is_none());
        assert!(patched("w", &obj, &answer("[]", "JSONPatch")).unwrap().is_none());
    }

    #[test]
    fn bad_patches_fail_as_upstream() {
        let obj = json!({"metadata": {"name": "c"}});
        match patched("w", &obj, &answer("{}", "JSONPatch")) {
            Err(HookError::Call(m)) => {
                assert!(m.starts_with("received undecodable patch in webhook response: "), "{m}")
            }
            other => panic!("{other:?}"),
        }
        match patched("w", &obj, &answer("[]", "MergePatch")) {
            Err(HookError::Call(m)) => assert_eq!(m, "unsupported patch type \"MergePatch\""),
            other => panic!("{other:?}"),
        }
        let remove = answer(r#"[{"op":"remove","path":"/spec"}]"#, "JSONPatch");
        match patched("w", &obj, &remove) {
            Err(HookError::Final(e)) => assert_eq!(e.code(), 500),
            other => panic!("{other:?}"),
        }
        match patched("w", &Value::Null, &remove) {
            Err(HookError::Final(e)) => assert_eq!(
                e.to_status()["message"],
                "Internal error occurred: admission webhook \"w\" attempted to modify the object, which is not supported for this operation"
            ),
            other => panic!("{other:?}"),
        }
    }
}
