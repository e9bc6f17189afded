//! MutatingAdmissionPolicy (`admissionregistration.k8s.io/v1beta1`): CEL mutations of
//! writes, declared by policies and put in force by bindings, as upstream's
//! MutatingAdmissionPolicy plugin applies them (mutating phase, just before the
//! mutating webhooks).
//!
//! - `compile`: a policy's mutations (with `Object{...}` / `JSONPatch{...}`
//!   construction), on top of what it shares with a validating policy.
//! - `patch`: one mutation's result applied (apply configuration or JSON patch).
//!
//! Per write: for each policy (name order) whose constraints match the object as the
//! plugin received it, each of its bindings that matches: collect params (as the
//! validating plugin), then for each param: the match conditions, then every mutation
//! in order, each evaluated (variables included) on the object as the mutations before
//! it left it, in the version the policy's rules selected, and defaulted after each
//! change (the type's strategy). Errors (a CEL error, a
//! patch that does not apply, a result of the wrong type, a broken selector or param
//! reference) are collected; after all policies ran, the first one of a policy whose
//! failurePolicy is `Fail` refuses the write: 403, reason `Invalid`, `policy 'P' with
//! binding 'B' denied request: ...`, as upstream's generic policy dispatcher.
//!
//! Reinvocation (`admission::rounds`): a policy run that changed the object asks for
//! the chain's reinvocation round and marks the `IfNeeded` invocations before it; in
//! that round the marked ones run again, and all `IfNeeded` ones that ran when another
//! plugin (a webhook) changed the object since this plugin's first round.
//!
//! Every expression may ask the `authorizer` (as the request's user), and each
//! mutation has upstream's cost budget (`decide::Scope`): past it, the mutation fails
//! with upstream's `validation failed due to running out of cost budget, ...`.
//!
//! Deletes and connects are not mutated (upstream has no object to patch for them).
//!
//! Invariants: no store read per request; the writes of admission configuration objects
//! are never mutated; inert unless the `v1beta1` resources are served (upstream gates
//! the plugin with a feature gate; kapi's gate is `--runtime-config`); the request's
//! object is replaced only by a successfully patched copy.

mod compile;
mod patch;

use super::super::webhook::{Reinvocation, exempt, in_version};
use super::super::{Attributes, Operation, Plugin, Step};
use super::Write;
use super::compile::Binding;
use super::decide::{Input, Scope, conditions_hold};
use super::matching::Selected;
use super::source::Source;
use crate::status::{ApiError, WholeStatus};
use compile::{Mutating, MutatingPolicy};
use serde_json::{Value, json};

const PLUGIN: &str = "MutatingAdmissionPolicy";

/// Upstream's MutatingAdmissionPolicy plugin.
#[derive(Default)]
pub struct MutatingPolicyPlugin {
    source: Source<Mutating>,
}

impl MutatingPolicyPlugin {
    pub fn new() -> MutatingPolicyPlugin {
        MutatingPolicyPlugin::default()
    }
}

impl Plugin for MutatingPolicyPlugin {
    fn name(&self) -> &'static str {
        PLUGIN
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        let rt = a.rt();
        !exempt(&rt.group, &rt.kind) && !self.source.surely_empty(a.scope.app)
    }

    fn mutates(&self) -> bool {
        true
    }

    fn admit<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a mut Value) -> Step<'a> {
        Box::pin(run(&self.source, a, obj))
    }
}

/// What the plugin remembers between the chain's two rounds.
#[derive(Default)]
struct Rounds {
    reinvocation: Reinvocation,
    /// The object as the policies left it in the first round.
    last: Option<Value>,
}

/// A policy error to report under the policy's failure policy.
struct Failure {
    policy: String,
    binding: String,
    message: String,
}

async fn run(
    source: &Source<Mutating>,
    a: &Attributes<'_>,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let snap = source.current(a.scope.app);
    if snap.hooks.is_empty() || matches!(a.operation, Operation::Delete | Operation::Connect) {
        return Ok(());
    }
    let mut state: Rounds = a.rounds.take(PLUGIN);
    let reinvoking = a.rounds.is_reinvoke();
    if reinvoking && state.last.as_ref() != Some(&*obj) {
        state.reinvocation.changed_elsewhere();
    }
    let received = obj.clone();
    let w = Write::new(a, &received).await?;
    let mut failures = Vec::new();
    for hook in &snap.hooks {
        for binding in &hook.bindings {
            let run = Run { w: &w, policy: &hook.policy, binding, reinvoking };
            run.bound(obj, &mut state.reinvocation, &mut failures).await?;
        }
    }
    if !reinvoking {
        if *obj != received {
            a.rounds.request();
        }
        state.last = Some(obj.clone());
        a.rounds.put(PLUGIN, state);
    }
    match failures.into_iter().next() {
        Some(f) => Err(refusal(a, &received, f)),
        None => Ok(()),
    }
}

/// One policy with one of its bindings.
struct Run<'r> {
    w: &'r Write<'r>,
    policy: &'r MutatingPolicy,
    binding: &'r Binding,
    reinvoking: bool,
}

impl Run<'_> {
    fn fail(&self, failures: &mut Vec<Failure>, message: String) {
        if self.policy.base.ignore_failures {
            tracing::debug!(policy = %self.policy.base.name, error = %message, "policy failure ignored");
            return;
        }
        failures.push(Failure {
            policy: self.policy.base.name.clone(),
            binding: self.binding.name.clone(),
            message,
        });
    }

    /// Match, collect params, and run the policy once per param.
    async fn bound(
        &self,
        obj: &mut Value,
        reinvocation: &mut Reinvocation,
        failures: &mut Vec<Failure>,
    ) -> Result<(), ApiError> {
        let (w, base) = (self.w, &self.policy.base);
        let request = w.request();
        let selected = match base.matcher.matches(&request) {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.fail(failures, format!("failed to configure policy: {e}"));
                return Ok(());
            }
        };
        if let Some(m) = &self.binding.matcher {
            match m.matches(&request) {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.fail(failures, format!("failed to configure binding: {e}"));
                    return Ok(());
                }
            }
        }
        let app = w.a.scope.app;
        let params = super::params::collect(
            app,
            base.param_kind.as_ref(),
            self.binding.param_ref.as_ref(),
            w.a.namespace(),
        )
        .await;
        let params = match params {
            Ok(p) => p,
            Err(e) => {
                self.fail(failures, format!("failed to configure binding: {e}"));
                return Ok(());
            }
        };
        for param in &params {
            let key = self.key(param);
            if self.reinvoking && !reinvocation.runs_again(&key) {
                continue;
            }
            let before = obj.clone();
            self.once(obj, &selected, param, failures).await?;
            reinvocation.called(&key, *obj != before, self.policy.reinvoke_if_needed);
        }
        Ok(())
    }

    /// Upstream's invocation key: policy, binding and param.
    fn key(&self, param: &Value) -> String {
        let meta = |f: &str| param.pointer(&format!("/metadata/{f}")).and_then(Value::as_str);
        format!(
            "{}/{}/{}/{}",
            self.policy.base.name,
            self.binding.name,
            meta("namespace").unwrap_or(""),
            meta("name").unwrap_or("")
        )
    }

    /// The match conditions, then each mutation, for one param.
    async fn once(
        &self,
        obj: &mut Value,
        selected: &Selected,
        param: &Value,
        failures: &mut Vec<Failure>,
    ) -> Result<(), ApiError> {
        let w = self.w;
        let a = w.a;
        let old = match a.operation {
            Operation::Create => Value::Null,
            _ => super::in_selected(a, selected, a.old).await?,
        };
        let request = super::request_variable(w, selected);
        let mut current = super::in_selected(a, selected, Some(&*obj)).await?;
        let rt: &kapi_codec::ResourceType = match selected {
            Some(eq) => eq,
            None => &a.scope.rt,
        };
        let ty = rt.apply_type();
        let chain = super::authorizer::ChainAuthorizer(&a.scope.app.authorizer);
        let authz = super::authorizer::context(a, &chain);
        let mut changed = false;
        for (i, m) in self.policy.mutations.iter().enumerate() {
            let input = Input {
                object: &current,
                old: &old,
                request: &request,
                params: param,
                namespace: &w.ns_object,
                authorizer: Some(&authz),
            };
            let scope = Scope::with_variables(&self.policy.base, &input);
            if i == 0 {
                match conditions_hold(&scope, &self.policy.base.conditions) {
                    Ok(true) => {}
                    Ok(false) => return Ok(()),
                    Err(e) => {
                        self.fail(failures, e);
                        return Ok(());
                    }
                }
            }
            let kind = match &m.patch_type {
                Ok(k) => *k,
                Err(e) => {
                    self.fail(failures, e.clone());
                    continue;
                }
            };
            let result = scope
                .eval(&m.expression, &m.compiled)
                .and_then(|r| patch::apply(kind, &current, &r, ty));
            match result {
                Ok(mut next) => {
                    // As upstream, the patched object is defaulted before the next one.
                    rt.strategy.default(&mut next);
                    changed |= next != current;
                    current = next;
                }
                Err(e) => self.fail(failures, e),
            }
        }
        if changed {
            *obj = match selected {
                None => current,
                Some(eq) => in_version(a.scope.app, eq, &a.scope.rt, &current).await?,
            };
        }
        Ok(())
    }
}

/// Upstream's refusal of a failed policy: `admission.NewForbidden` with the policy
/// error's message and reason `Invalid` (the code stays 403).
fn refusal(a: &Attributes<'_>, obj: &Value, f: Failure) -> ApiError {
    let t = a.named_target(obj);
    let message =
        format!("policy '{}' with binding '{}' denied request: {}", f.policy, f.binding, f.message);
    let mut details = serde_json::Map::new();
    for (k, v) in [("name", &t.name), ("group", &t.group), ("kind", &t.resource)] {
        if !v.is_empty() {
            details.insert(k.into(), json!(v));
        }
    }
    details.insert("causes".into(), json!([{"message": message}]));
    ApiError::Whole(Box::new(WholeStatus {
        code: 403,
        reason: "Invalid".into(),
        message,
        details: Some(Value::Object(details)),
    }))
}
