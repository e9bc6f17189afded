//! MutatingAdmissionWebhook and ValidatingAdmissionWebhook: the webhooks of the
//! `admissionregistration.k8s.io/v1` Mutating/ValidatingWebhookConfigurations, called
//! with an AdmissionReview (v1 or v1beta1) over HTTPS, as upstream v1.35.
//!
//! - `source`: the configurations, a compiled snapshot of the watch cache, rebuilt when
//!   the cache's revision moves (never a store read per request).
//! - `hook`, `rules`, `predicates`: which webhooks apply (rules with subresource patterns
//!   and scope, matchPolicy Equivalent, namespace and object selectors, CEL
//!   matchConditions with the failure policy).
//! - `review`, `call`: the review sent, the answer verified, refusals and failures in
//!   upstream's words (`admission webhook "x" denied the request: ...`, `Internal error
//!   occurred: failed calling webhook "x": ...`), dry run only for side-effect-free
//!   webhooks, warnings and audit annotations passed on.
//! - `mutating`: webhooks one after another (configurations by name, webhooks in list
//!   order), JSON patches applied, one reinvocation round (`reinvocation`) in the
//!   chain's reinvocation round (`admission::rounds`), shared with MutatingAdmissionPolicy.
//! - `validating`: webhooks called concurrently; the first refusal in order answers.
//!
//! Invariants: a webhook call is a oneshot awaited on the serving core (the POST runs
//! on the aggregator's client thread); the writes of admission configuration objects
//! never reach a webhook; with no webhooks configured a request costs one revision
//! check per plugin.

mod call;
mod hook;
mod mutating;
mod predicates;
mod reinvocation;
mod review;
mod rules;
mod source;
mod validating;

pub(super) use hook::Rule;
pub(super) use predicates::{equivalents, in_version, namespace_labels};
pub(super) use reinvocation::Reinvocation;
pub(super) use review::user_json;
pub(super) use rules::{RuleTarget, exempt, matches as rule_matches};

use super::{Attributes, Operation, Plugin, Step};
use crate::status::ApiError;
use kapi_codec::ResourceType;
use review::Gvx;
use serde_json::{Map, Value, json};
use source::{Snapshot, Source};
use std::cell::OnceCell;
use std::sync::Arc;

/// Upstream's MutatingAdmissionWebhook plugin.
pub struct MutatingWebhook {
    source: Source,
}

impl MutatingWebhook {
    pub fn new() -> MutatingWebhook {
        MutatingWebhook { source: Source::new("mutatingwebhookconfigurations") }
    }
}

impl Plugin for MutatingWebhook {
    fn name(&self) -> &'static str {
        "MutatingAdmissionWebhook"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        handles(&self.source, a)
    }

    fn mutates(&self) -> bool {
        true
    }

    fn admit<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a mut Value) -> Step<'a> {
        Box::pin(mutating::admit(&self.source, a, obj))
    }
}

/// Upstream's ValidatingAdmissionWebhook plugin.
pub struct ValidatingWebhook {
    source: Source,
}

impl ValidatingWebhook {
    pub fn new() -> ValidatingWebhook {
        ValidatingWebhook { source: Source::new("validatingwebhookconfigurations") }
    }
}

impl Plugin for ValidatingWebhook {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionWebhook"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        handles(&self.source, a)
    }

    fn validates(&self) -> bool {
        true
    }

    fn validate<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a Value) -> Step<'a> {
        Box::pin(validating::validate(&self.source, a, obj))
    }
}

fn handles(source: &Source, a: &Attributes<'_>) -> bool {
    let rt = a.rt();
    !rules::exempt(&rt.group, &rt.kind) && !source.surely_empty(a.scope.app)
}

/// One write as the webhooks see it, worked out once per request and plugin.
pub struct Write<'a> {
    pub a: &'a Attributes<'a>,
    /// The request's namespace (a namespace object's own name for namespaces).
    pub namespace: &'a str,
    /// Whether the resource is namespaces (whose selector looks at the object itself).
    pub is_namespaces: bool,
    pub subresource: &'a str,
    /// The request's kind and resource.
    pub kind: Gvx,
    pub resource: Gvx,
    /// The operation's options object (`CreateOptions`, ...).
    pub options: Value,
    equivalents: OnceCell<Vec<Arc<ResourceType>>>,
    ns_labels: Result<Option<Map<String, Value>>, ApiError>,
}

impl<'a> Write<'a> {
    /// The facts of `a`; the namespace's labels are looked up when a webhook of `snap`
    /// has a namespace selector that needs them.
    pub async fn new(a: &'a Attributes<'a>, obj: &Value, snap: &Snapshot) -> Write<'a> {
        let rt = a.rt();
        let subresource = a.subresource().unwrap_or("");
        let is_namespaces = rt.group.is_empty() && &*rt.plural == "namespaces";
        let namespace = if is_namespaces { a.name } else { a.namespace() };
        let needs =
            snap.hooks.iter().any(|h| predicates::needs_namespace(h, namespace, is_namespaces));
        let ns_labels = if needs {
            let written = is_namespaces
                && subresource.is_empty()
                && matches!(a.operation, Operation::Create | Operation::Update);
            predicates::namespace_labels(a.scope.app, namespace, written.then_some(obj)).await
        } else {
            Ok(None)
        };
        Write {
            a,
            namespace,
            is_namespaces,
            subresource,
            kind: request_kind(rt, subresource, obj),
            resource: Gvx {
                group: rt.group.to_string(),
                version: rt.version.to_string(),
                name: rt.plural.to_string(),
            },
            options: options(a),
            equivalents: OnceCell::new(),
            ns_labels,
        }
    }

    /// The request's own resource for rule matching.
    pub fn rule_target(&self) -> RuleTarget<'_> {
        predicates::own_target(
            self.a.rt(),
            self.a.operation.as_str(),
            self.subresource,
            self.namespace,
        )
    }

    /// The equivalent served versions (looked up on first need).
    pub fn equivalents(&self) -> &[Arc<ResourceType>] {
        self.equivalents.get_or_init(|| {
            predicates::equivalents(self.a.scope.app, self.a.rt(), self.subresource)
        })
    }

    pub fn namespace_labels(&self) -> &Result<Option<Map<String, Value>>, ApiError> {
        &self.ns_labels
    }

    /// The name the review carries.
    pub fn review_name(&self) -> &str {
        self.a.name
    }
}

/// The request's kind: the resource's, or a subresource write's own object's
/// (`autoscaling/v1` Scale for `deployments/scale`).
fn request_kind(rt: &ResourceType, subresource: &str, obj: &Value) -> Gvx {
    let own = || Gvx {
        group: rt.group.to_string(),
        version: rt.version.to_string(),
        name: rt.kind.to_string(),
    };
    if subresource.is_empty() {
        return own();
    }
    let s = |k: &str| obj.get(k).and_then(Value::as_str);
    match (s("apiVersion"), s("kind")) {
        (Some(av), Some(kind)) => {
            let (group, version) = av.rsplit_once('/').unwrap_or(("", av));
            Gvx { group: group.into(), version: version.into(), name: kind.into() }
        }
        _ => own(),
    }
}

/// The options object of the operation, from the request's query (upstream passes the
/// decoded `CreateOptions`, `UpdateOptions` or `DeleteOptions`).
fn options(a: &Attributes<'_>) -> Value {
    let kind = match a.operation {
        Operation::Create => "CreateOptions",
        Operation::Update => "UpdateOptions",
        Operation::Delete => "DeleteOptions",
        Operation::Connect => return Value::Null,
    };
    let mut o = Map::new();
    o.insert("kind".into(), json!(kind));
    o.insert("apiVersion".into(), json!("meta.k8s.io/v1"));
    let info = a.scope.info;
    if let Some(g) = info.param("gracePeriodSeconds").and_then(|g| g.parse::<i64>().ok())
        && a.operation == Operation::Delete
    {
        o.insert("gracePeriodSeconds".into(), json!(g));
    }
    if let Some(p) = info.param("propagationPolicy").filter(|_| a.operation == Operation::Delete) {
        o.insert("propagationPolicy".into(), json!(p));
    }
    if a.dry_run {
        o.insert("dryRun".into(), json!(["All"]));
    }
    if let Some(m) = info.param("fieldManager").filter(|_| a.operation != Operation::Delete) {
        o.insert("fieldManager".into(), json!(m));
    }
    Value::Object(o)
}
