//! PodSecurity: upstream's Pod Security admission (the Pod Security Standards per
//! namespace), a validating plugin.
//!
//! - Pods (creates, updates that change what the checks see, and the pod subresources
//!   that write the pod spec) are evaluated against their namespace's policy: the
//!   enforce mode refuses (403 `pods "x" is forbidden: violates PodSecurity ...`), the
//!   warn mode adds a `Warning`, the audit mode an audit annotation.
//! - Pod templates of the workload resources (deployments, replicasets, statefulsets,
//!   daemonsets, jobs, cronjobs, replicationcontrollers, podtemplates) are warned about
//!   and audited, never refused.
//! - Namespaces: invalid Pod Security labels are refused (422); tightening enforce warns
//!   about existing pods that violate it.
//!
//! A namespace's labels are read from the namespaces watch cache (the store only when
//! the cache does not hold it yet, e.g. just created); existing pods from the pods cache.
//!
//! Not implemented: the `PodSecurityConfiguration` of `--admission-control-config-file`
//! (defaults other than `privileged:latest`, exempt users, namespaces and runtime
//! classes); every namespace without labels is `privileged:latest` in all modes.
//!
//! Invariants: a namespace whose policy is privileged in every mode costs one cache
//! lookup per pod write; the object is read in place, never copied.

pub mod api;
pub mod checks;
pub mod decision;
pub mod evaluate;
pub mod namespace;
pub mod update;

use super::{Attributes, Operation, Plugin, Step};
use crate::app::App;
use crate::status::ApiError;
use api::{Level, Policy, policy_for};
use checks::Pod;
use decision::Decision;
use kapi_codec::error::FieldError;
use kapi_codec::pointer::Pointer as _;
use serde_json::Value;
use std::time::{Duration, Instant};

/// How long a namespace update may spend checking existing pods (upstream's default).
const POD_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Pod subresources whose writes do not carry a pod spec to evaluate.
const IGNORED_POD_SUBRESOURCES: [&str; 8] =
    ["exec", "attach", "binding", "eviction", "log", "portforward", "proxy", "status"];

/// The workload resources whose pod template is warned about and audited.
const WORKLOADS: [(&str, &str); 8] = [
    ("", "replicationcontrollers"),
    ("", "podtemplates"),
    ("apps", "replicasets"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
];

/// What a request writes, as PodSecurity sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Subject {
    Pod,
    Namespace,
    Template,
}

fn subject(a: &Attributes<'_>) -> Option<Subject> {
    let rt = a.rt();
    let sub = a.subresource();
    match (&*rt.group, &*rt.plural) {
        ("", "pods") if sub.is_none_or(|s| !IGNORED_POD_SUBRESOURCES.contains(&s)) => {
            Some(Subject::Pod)
        }
        ("", "namespaces") if sub.is_none() => Some(Subject::Namespace),
        (g, p) if sub.is_none() && WORKLOADS.contains(&(g, p)) => Some(Subject::Template),
        _ => None,
    }
}

/// Upstream's PodSecurity plugin.
pub struct PodSecurity;

impl Plugin for PodSecurity {
    fn name(&self) -> &'static str {
        "PodSecurity"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        matches!(a.operation, Operation::Create | Operation::Update) && subject(a).is_some()
    }

    fn validates(&self) -> bool {
        true
    }

    fn validate<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a Value) -> Step<'a> {
        Box::pin(async move {
            match subject(a) {
                Some(Subject::Namespace) => validate_namespace(a, obj),
                Some(Subject::Pod) => validate_pod(a, obj).await,
                Some(Subject::Template) => validate_template(a, obj).await,
                None => Ok(()),
            }
        })
    }
}

/// Apply a decision to the request: annotations and warnings, then the refusal.
fn apply(a: &Attributes<'_>, d: Decision) -> Result<(), ApiError> {
    for (k, v) in d.annotations {
        a.annotate(k, v);
    }
    for w in d.warnings {
        a.warn(w);
    }
    match d.refusal {
        Some(why) => Err(ApiError::ForbiddenTarget(a.target(), why)),
        None => Ok(()),
    }
}

async fn validate_pod(a: &Attributes<'_>, obj: &Value) -> Result<(), ApiError> {
    let ns = a.namespace();
    let Some((policy, errs)) = namespace_policy(a.scope.app, ns).await? else {
        return Err(ApiError::Internal(format!("failed to lookup namespace {ns}")));
    };
    if errs.is_empty() && policy.all_privileged() {
        return apply(a, decision::privileged());
    }
    if a.operation == Operation::Update
        && let Some(old) = a.old
        && !update::significant(obj, old)
    {
        return Ok(());
    }
    apply(a, decision::decide(&policy, &errs, &Pod::of(obj), true))
}

/// The pod template of a workload object (None when it has none).
fn template<'v>(plural: &str, obj: &'v Value) -> Option<&'v Value> {
    let t = match plural {
        "podtemplates" => obj.get("template"),
        "cronjobs" => obj.at("/spec/jobTemplate/spec/template"),
        _ => obj.at("/spec/template"),
    };
    t.filter(|t| !t.is_null())
}

async fn validate_template(a: &Attributes<'_>, obj: &Value) -> Result<(), ApiError> {
    let ns = a.namespace();
    let Some((policy, errs)) = namespace_policy(a.scope.app, ns).await? else {
        a.annotate(format!("{}error", api::PREFIX), format!("failed to lookup namespace {ns}"));
        return Ok(());
    };
    let quiet = [policy.warn, policy.audit].iter().all(|lv| lv.level == Level::Privileged);
    if errs.is_empty() && quiet {
        return Ok(());
    }
    let Some(t) = template(&a.rt().plural, obj) else { return Ok(()) };
    apply(a, decision::decide(&policy, &errs, &Pod::of(t), false))
}

fn validate_namespace(a: &Attributes<'_>, obj: &Value) -> Result<(), ApiError> {
    let invalid = |errs: Vec<FieldError>| ApiError::Invalid(a.target(), errs);
    match (a.operation, a.old) {
        (Operation::Create, _) => namespace::on_create(obj).map_err(invalid),
        (Operation::Update, Some(old)) => {
            let Some(enforce) = namespace::on_update(obj, old).map_err(invalid)? else {
                return Ok(());
            };
            let deadline = Instant::now() + POD_CHECK_TIMEOUT;
            let pods = existing_pods(a.scope.app, a.name);
            for w in namespace::existing_pods(a.name, enforce, pods, deadline) {
                a.warn(w);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The Pod Security policy of namespace `ns` (None: no such namespace).
async fn namespace_policy(
    app: &App,
    ns: &str,
) -> Result<Option<(Policy, Vec<FieldError>)>, ApiError> {
    let reg = app.registry();
    let Some(rt) = reg.get("", "v1", "namespaces") else { return Ok(None) };
    let cached = app
        .caches
        .get(app, rt)
        .and_then(|cache| super::cached::with_key(app, rt, None, ns, |key| cache.get(key).0));
    if let Some(entry) = cached {
        return Ok(Some(policy_for(entry.data.labels())));
    }
    // Not in the cache (yet): the store has the last word.
    let key = rt.storage_key(app.prefix(), None, ns);
    let target = crate::status::Target::default();
    let kv = app.store.get(&key).await.map_err(|e| ApiError::from_storage(e, &target))?;
    Ok(kv.map(|kv| {
        let obj: Value = kapi_codec::stored::decode(&kv.value).unwrap_or(Value::Null);
        policy_for(namespace::labels(&obj))
    }))
}

/// The pods of namespace `ns`, from the pods cache.
fn existing_pods(app: &App, ns: &str) -> Vec<Value> {
    let reg = app.registry();
    let Some(rt) = reg.get("", "v1", "pods") else { return Vec::new() };
    let Some(cache) = app.caches.get(app, rt) else { return Vec::new() };
    let (items, _, _) = cache.list(&rt.storage_prefix(app.prefix(), Some(ns)), None, 0);
    items.iter().map(|e| e.data.obj()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_are_found_where_each_workload_keeps_them() {
        let t = json!({"spec": {"containers": []}});
        let deploy = json!({"spec": {"template": t}});
        assert_eq!(template("deployments", &deploy), Some(&t));
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": t}}}});
        assert_eq!(template("cronjobs", &cron), Some(&t));
        let pt = json!({"template": t});
        assert_eq!(template("podtemplates", &pt), Some(&t));
        let rc = json!({"spec": {"replicas": 1, "template": null}});
        assert_eq!(template("replicationcontrollers", &rc), None);
    }
}
