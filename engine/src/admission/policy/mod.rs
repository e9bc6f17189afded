//! ValidatingAdmissionPolicy (`admissionregistration.k8s.io/v1`, GA since v1.30): CEL
//! validations of writes, declared by policies and put in force by bindings, as
//! upstream's ValidatingAdmissionPolicy plugin decides them; and, in `mutating`,
//! MutatingAdmissionPolicy (`v1beta1`), which shares everything below but the
//! decision.
//!
//! - `source`: policies and bindings of one [`source::Kind`], a compiled snapshot of
//!   their watch caches.
//! - `compile`: a policy's and a binding's expressions, rules and selectors, compiled.
//! - `matching`: which writes `matchConstraints` / `matchResources` select.
//! - `params`: a binding's parameter objects (`paramKind`, `paramRef`).
//! - `decide`: one policy evaluated for one binding and one parameter: match
//!   conditions, variables, validations with their messages, audit annotations.
//! - `mutating`: the MutatingAdmissionPolicy plugin (its mutations, patches and
//!   reinvocation), using the write facts, matching, params, match conditions and
//!   variables of this module.
//! - `authorizer`: the `authorizer` variable, answered by the server's authorizer chain.
//! - `type_checking`: the type checker the status controller
//!   (`crate::controllers::policy_status`) runs on each new policy generation.
//!
//! Per write: for each policy (name order) whose constraints match, each of its
//! bindings that matches: collect params, decide for each; a failed validation does
//! what the binding's `validationActions` say (Deny: the request is refused with the
//! first denial, upstream's message and the validation's reason; Warn: a `Warning`
//! header; Audit: the `validation.policy.admission.k8s.io/validation_failure` audit
//! annotation). Errors (a CEL runtime error, a missing param with `Deny`, a broken
//! selector) follow the policy's failurePolicy.
//!
//! Invariants: no store read per request; the writes of admission configuration
//! objects are never looked at (a policy cannot lock itself in); with no bound
//! policy a request costs one revision check.

mod authorizer;
mod compile;
mod decide;
mod matching;
mod mutating;
mod params;
mod source;
pub mod type_checking;

pub(super) use mutating::MutatingPolicyPlugin;

use super::webhook::{RuleTarget, equivalents, exempt, in_version, namespace_labels};
use super::{Attributes, Operation, Plugin, Step};
use crate::status::ApiError;
use compile::{Action, Binding, Policy};
use decide::{Decision, Input};
use matching::{Request, Selected};
use serde_json::{Map, Value, json};
use source::Source;
use std::sync::Arc;

/// The most validation failures the audit annotation lists.
const MAX_AUDITED_FAILURES: usize = 50;
/// The longest audit annotation value kept (longer ones are cut).
const MAX_ANNOTATION_VALUE: usize = 10 * 1024;

/// Upstream's ValidatingAdmissionPolicy plugin.
#[derive(Default)]
pub struct ValidatingPolicy {
    source: Source,
}

impl ValidatingPolicy {
    pub fn new() -> ValidatingPolicy {
        ValidatingPolicy::default()
    }
}

impl Plugin for ValidatingPolicy {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionPolicy"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        let rt = a.rt();
        !exempt(&rt.group, &rt.kind) && !self.source.surely_empty(a.scope.app)
    }

    fn validates(&self) -> bool {
        true
    }

    fn validate<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a Value) -> Step<'a> {
        Box::pin(run(&self.source, a, obj))
    }
}

/// A refusal: the policy, the binding (None: a policy-level error) and the decision.
struct Denial {
    policy: String,
    binding: Option<String>,
    message: String,
    reason: Option<String>,
}

/// What the policies of one write concluded.
#[derive(Default)]
struct Outcome {
    denials: Vec<Denial>,
    audited: Vec<Value>,
}

impl Outcome {
    fn config_error(&mut self, policy: &Policy, binding: Option<&Binding>, err: &str) {
        if policy.ignore_failures {
            tracing::debug!(policy = %policy.name, error = err, "policy failure ignored");
            return;
        }
        let what = if binding.is_some() { "binding" } else { "policy" };
        self.denials.push(Denial {
            policy: policy.name.clone(),
            binding: binding.map(|b| b.name.clone()),
            message: format!("failed to configure {what}: {err}"),
            reason: None,
        });
    }
}

/// The facts of the write shared by every policy.
struct Write<'a> {
    a: &'a Attributes<'a>,
    obj: &'a Value,
    namespace: &'a str,
    is_namespaces: bool,
    equivalents: Vec<Arc<kapi_codec::ResourceType>>,
    ns_labels: Option<Map<String, Value>>,
    ns_object: Value,
}

async fn run(source: &Source, a: &Attributes<'_>, obj: &Value) -> Result<(), ApiError> {
    let snap = source.current(a.scope.app);
    if snap.hooks.is_empty() {
        return Ok(());
    }
    let w = Write::new(a, obj).await?;
    let mut out = Outcome::default();
    for hook in &snap.hooks {
        policy(&w, &hook.policy, &hook.bindings, &mut out).await?;
    }
    finish(a, obj, out)
}

impl<'a> Write<'a> {
    async fn new(a: &'a Attributes<'a>, obj: &'a Value) -> Result<Write<'a>, ApiError> {
        let rt = a.rt();
        let subresource = a.subresource().unwrap_or("");
        let is_namespaces = rt.group.is_empty() && &*rt.plural == "namespaces";
        let namespace = if is_namespaces { a.name } else { a.namespace() };
        let app = a.scope.app;
        let (ns_labels, ns_object) = if namespace.is_empty() || is_namespaces {
            let own = is_namespaces.then(|| obj.pointer("/metadata/labels")).flatten();
            (own.and_then(Value::as_object).cloned(), Value::Null)
        } else {
            let ns = super::cached::get(app, super::cached::NAMESPACES, None, namespace).await;
            let labels = match &ns {
                Some(n) => n.pointer("/metadata/labels").and_then(Value::as_object).cloned(),
                None => namespace_labels(app, namespace, None).await.ok().flatten(),
            };
            (labels, ns.map(namespace_object).unwrap_or(Value::Null))
        };
        Ok(Write {
            a,
            obj,
            namespace,
            is_namespaces,
            equivalents: equivalents(app, rt, subresource),
            ns_labels,
            ns_object,
        })
    }

    fn request(&self) -> Request<'_> {
        let a = self.a;
        let rt = a.rt();
        Request {
            target: RuleTarget {
                operation: a.operation.as_str(),
                group: &rt.group,
                version: &rt.version,
                resource: &rt.plural,
                subresource: a.subresource().unwrap_or(""),
                namespace: self.namespace,
            },
            name: a.name,
            is_namespaces: self.is_namespaces,
            object: self.obj,
            old: a.old,
            equivalents: &self.equivalents,
            namespace_labels: self.ns_labels.as_ref(),
        }
    }
}

/// The namespace as `namespaceObject` shows it (upstream's `CreateNamespaceObject`:
/// metadata, spec and status; no managedFields).
fn namespace_object(mut ns: Value) -> Value {
    if let Some(meta) = ns.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    ns
}

/// One policy for the write: its constraints, then each binding.
async fn policy(
    w: &Write<'_>,
    policy: &Policy,
    bindings: &[Arc<Binding>],
    out: &mut Outcome,
) -> Result<(), ApiError> {
    let request = w.request();
    let selected = match policy.matcher.matches(&request) {
        Ok(Some(s)) => s,
        Ok(None) => return Ok(()),
        Err(e) => {
            out.config_error(policy, None, &e);
            return Ok(());
        }
    };
    let mut annotations: Vec<(String, Vec<String>)> = Vec::new();
    for binding in bindings {
        if let Some(m) = &binding.matcher {
            match m.matches(&request) {
                Ok(Some(_)) => {}
                Ok(None) => continue,
                Err(e) => {
                    out.config_error(policy, Some(binding), &e);
                    continue;
                }
            }
        }
        let params = params::collect(
            w.a.scope.app,
            policy.param_kind.as_ref(),
            binding.param_ref.as_ref(),
            w.a.namespace(),
        )
        .await;
        let params = match params {
            Ok(p) => p,
            Err(e) => {
                out.config_error(policy, Some(binding), &e);
                continue;
            }
        };
        let (object, old) = versioned(w, &selected).await?;
        let request_var = request_variable(w, &selected);
        let chain = authorizer::ChainAuthorizer(&w.a.scope.app.authorizer);
        let authz = authorizer::context(w.a, &chain);
        for param in &params {
            let input = Input {
                object: &object,
                old: &old,
                request: &request_var,
                params: param,
                namespace: &w.ns_object,
                authorizer: Some(&authz),
            };
            let result = decide::decide(policy, &input);
            record(w.a, policy, binding, result.decisions, out);
            for (key, value) in result.annotations {
                match value {
                    Ok(v) => add_annotation(&mut annotations, key, v),
                    Err(e) if !policy.ignore_failures => out.denials.push(Denial {
                        policy: policy.name.clone(),
                        binding: Some(binding.name.clone()),
                        message: e,
                        reason: None,
                    }),
                    Err(_) => {}
                }
            }
        }
    }
    for (key, values) in annotations {
        let mut value = values.join(", ");
        truncate(&mut value, MAX_ANNOTATION_VALUE);
        w.a.annotate(format!("{}/{key}", policy.name), value);
    }
    Ok(())
}

fn add_annotation(all: &mut Vec<(String, Vec<String>)>, key: String, value: String) {
    match all.iter_mut().find(|(k, _)| *k == key) {
        Some((_, values)) if values.contains(&value) => {}
        Some((_, values)) => values.push(value),
        None => all.push((key, vec![value])),
    }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}

/// The object and old object as the policy sees them: in the version its rules
/// selected; for a create no old object, for a delete no object.
async fn versioned(w: &Write<'_>, selected: &Selected) -> Result<(Value, Value), ApiError> {
    let a = w.a;
    let object = match a.operation {
        Operation::Delete => None,
        _ => Some(w.obj),
    };
    let old = match a.operation {
        Operation::Create => None,
        _ => a.old,
    };
    Ok((in_selected(a, selected, object).await?, in_selected(a, selected, old).await?))
}

async fn in_selected(
    a: &Attributes<'_>,
    selected: &Selected,
    v: Option<&Value>,
) -> Result<Value, ApiError> {
    match (v, selected) {
        (None, _) => Ok(Value::Null),
        (Some(v), None) => Ok(v.clone()),
        (Some(v), Some(eq)) => in_version(a.scope.app, &a.scope.rt, eq, v).await,
    }
}

/// The `request` variable (upstream's `CreateAdmissionRequest`: the review's request
/// without the objects), with the kind and resource the policy selected.
fn request_variable(w: &Write<'_>, selected: &Selected) -> Value {
    let a = w.a;
    let rt = a.rt();
    let (kind, resource) = match selected {
        Some(eq) => (&**eq, &**eq),
        None => (rt, rt),
    };
    let gvk = |t: &kapi_codec::ResourceType| json!({"group": t.group, "version": t.version, "kind": t.kind});
    let gvr = |t: &kapi_codec::ResourceType| json!({"group": t.group, "version": t.version, "resource": t.plural});
    let mut r = Map::with_capacity(12);
    r.insert("kind".into(), gvk(kind));
    r.insert("resource".into(), gvr(resource));
    r.insert("requestKind".into(), gvk(rt));
    r.insert("requestResource".into(), gvr(rt));
    if let Some(sub) = a.subresource() {
        r.insert("subResource".into(), json!(sub));
        r.insert("requestSubResource".into(), json!(sub));
    }
    r.insert("name".into(), json!(a.name));
    r.insert("namespace".into(), json!(w.namespace));
    r.insert("operation".into(), json!(a.operation.as_str()));
    r.insert("userInfo".into(), super::webhook::user_json(a.user()));
    r.insert("dryRun".into(), json!(a.dry_run));
    Value::Object(r)
}

/// What a binding's validation actions make of its decisions.
fn record(
    a: &Attributes<'_>,
    policy: &Policy,
    binding: &Binding,
    decisions: Vec<Decision>,
    out: &mut Outcome,
) {
    for d in decisions {
        for action in &binding.actions {
            match action {
                Action::Deny => out.denials.push(Denial {
                    policy: policy.name.clone(),
                    binding: Some(binding.name.clone()),
                    message: d.message.clone(),
                    reason: d.reason.clone(),
                }),
                Action::Warn => a.warn(format!(
                    "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {}",
                    policy.name, binding.name, d.message
                )),
                Action::Audit if out.audited.len() < MAX_AUDITED_FAILURES => {
                    let actions: Vec<&str> = binding.actions.iter().map(|a| a.as_str()).collect();
                    out.audited.push(json!({
                        "message": d.message, "policy": binding.policy_name,
                        "binding": binding.name, "expressionIndex": d.index,
                        "validationActions": actions,
                    }));
                }
                Action::Audit => {}
            }
        }
    }
}

/// The audit annotation of Audit failures, then the first denial as the answer.
fn finish(a: &Attributes<'_>, obj: &Value, out: Outcome) -> Result<(), ApiError> {
    if !out.audited.is_empty() {
        let value = Value::Array(out.audited).to_string();
        a.annotate("validation.policy.admission.k8s.io/validation_failure", value);
    }
    let Some(d) = out.denials.into_iter().next() else { return Ok(()) };
    let message = match &d.binding {
        Some(b) => format!(
            "ValidatingAdmissionPolicy '{}' with binding '{b}' denied request: {}",
            d.policy, d.message
        ),
        None => format!("ValidatingAdmissionPolicy '{}' denied request: {}", d.policy, d.message),
    };
    Err(ApiError::policy_denied(&a.named_target(obj), message, d.reason.as_deref()))
}
