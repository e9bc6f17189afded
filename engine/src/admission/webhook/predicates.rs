//! Whether a webhook is called for a write, and as which resource (upstream's
//! `ShouldCallHook`): its rules against the request's resource, else (matchPolicy
//! Equivalent) against the equivalent resources (other served versions of the same
//! stored resource, e.g. a beta twin); then its namespace and object selectors; then its
//! match conditions, which see the object in the version the webhook is called for.
//!
//! Invariants: rules are looked at first, so a webhook whose rules do not cover the
//! request is skipped even when its selectors are broken (upstream reports selector
//! errors only for webhooks that apply); no I/O here but the namespace-label lookup's
//! store fallback and a conversion webhook for an equivalent custom resource version.

use super::hook::{Hook, MatchCondition};
use super::review::Gvx;
use super::rules::{self, RuleTarget};
use crate::app::App;
use crate::status::{ApiError, Target};
use kapi_codec::ResourceType;
use kapi_codec::selector::LabelSelector;
use serde_json::{Map, Value};
use std::sync::Arc;

/// The resource a webhook is called for.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub kind: Gvx,
    pub resource: Gvx,
    /// The equivalent resource type, when not the request's own.
    pub equivalent: Option<Arc<ResourceType>>,
}

/// The rule-relevant facts of the request's own resource.
pub fn own_target<'a>(
    rt: &'a ResourceType,
    operation: &'a str,
    subresource: &'a str,
    namespace: &'a str,
) -> RuleTarget<'a> {
    RuleTarget {
        operation,
        group: &rt.group,
        version: &rt.version,
        resource: &rt.plural,
        subresource,
        namespace,
    }
}

/// Which resource `hook`'s rules select: the request's own (`own`), else the first
/// equivalent a rule covers (earlier rules first), unless matchPolicy is Exact.
pub fn invocation(
    hook: &Hook,
    own: &RuleTarget<'_>,
    own_kind: &Gvx,
    equivalents: &[Arc<ResourceType>],
) -> Option<Invocation> {
    if hook.rules.iter().any(|r| rules::matches(r, own)) {
        let resource =
            Gvx { group: own.group.into(), version: own.version.into(), name: own.resource.into() };
        return Some(Invocation { kind: own_kind.clone(), resource, equivalent: None });
    }
    if hook.exact {
        return None;
    }
    for rule in &hook.rules {
        for eq in equivalents {
            let t =
                RuleTarget { group: &eq.group, version: &eq.version, resource: &eq.plural, ..*own };
            if rules::matches(rule, &t) {
                let kind = if own.subresource.is_empty() {
                    Gvx {
                        group: eq.group.to_string(),
                        version: eq.version.to_string(),
                        name: eq.kind.to_string(),
                    }
                } else {
                    own_kind.clone()
                };
                let resource = Gvx {
                    group: eq.group.to_string(),
                    version: eq.version.to_string(),
                    name: eq.plural.to_string(),
                };
                return Some(Invocation { kind, resource, equivalent: Some(eq.clone()) });
            }
        }
    }
    None
}

/// The other served versions of `rt`'s stored resource (same storage key space),
/// serving `subresource` when one is written.
pub fn equivalents(app: &App, rt: &ResourceType, subresource: &str) -> Vec<Arc<ResourceType>> {
    let reg = app.registry();
    reg.all()
        .iter()
        .filter(|e| {
            e.storage_resource == rt.storage_resource
                && e.namespaced == rt.namespaced
                && !(e.group == rt.group && e.version == rt.version && e.plural == rt.plural)
                && (subresource.is_empty() || e.subresource(subresource).is_some())
        })
        .cloned()
        .collect()
}

fn labels(obj: Option<&Value>) -> Option<&Map<String, Value>> {
    obj?.get("metadata")?.get("labels")?.as_object()
}

/// The object selector against the new or the old object (upstream: either matches).
pub fn object_selected(hook: &Hook, obj: &Value, old: Option<&Value>) -> Result<bool, ApiError> {
    let selector =
        hook.object_selector.as_ref().map_err(|e| ApiError::internal_cause(e.clone()))?;
    if selector.is_empty() {
        return Ok(true);
    }
    let selects =
        |o: Option<&Value>| o.is_some_and(|o| o.is_object()) && selector.matches(labels(o));
    Ok(selects(Some(obj)) || selects(old))
}

/// Whether the namespace selector needs the namespace's labels for this request
/// (cluster-scoped objects but namespaces are never exempted by it).
pub fn needs_namespace(hook: &Hook, namespace: &str, is_namespaces: bool) -> bool {
    let selects = hook.namespace_selector.as_ref().map_or(true, |s| !s.is_empty());
    (is_namespaces || !namespace.is_empty()) && selects
}

/// The namespace selector against the namespace's labels (fetched by the caller).
pub fn namespace_selected(
    hook: &Hook,
    namespace: &str,
    is_namespaces: bool,
    ns_labels: &Result<Option<Map<String, Value>>, ApiError>,
) -> Result<bool, ApiError> {
    if !needs_namespace(hook, namespace, is_namespaces) {
        return Ok(true);
    }
    let selector: &LabelSelector =
        hook.namespace_selector.as_ref().map_err(|e| ApiError::internal_cause(e.clone()))?;
    match ns_labels {
        Ok(l) => Ok(selector.matches(l.as_ref())),
        Err(e) => Err(clone_error(e)),
    }
}

fn clone_error(e: &ApiError) -> ApiError {
    match e {
        ApiError::NotFound(t) => ApiError::NotFound(t.clone()),
        other => ApiError::internal_cause(other.to_string()),
    }
}

/// The labels of the namespace a request is in: the object's own when a namespace is
/// created or updated (the cache does not have it yet), else the namespaces cache's
/// (the store's when the cache has not seen it yet). NotFound when there is none.
pub async fn namespace_labels(
    app: &App,
    namespace: &str,
    written_namespace: Option<&Value>,
) -> Result<Option<Map<String, Value>>, ApiError> {
    if let Some(obj) = written_namespace {
        return Ok(labels(Some(obj)).cloned());
    }
    let reg = app.registry();
    let ns_target = Target {
        resource: "namespaces".into(),
        kind: "Namespace".into(),
        name: namespace.into(),
        ..Default::default()
    };
    let Some(rt) = reg.get("", "v1", "namespaces") else {
        return Err(ApiError::NotFound(ns_target));
    };
    let key = rt.storage_key(app.prefix(), None, namespace);
    if let Some(cache) = app.caches.get(app, rt)
        && let (Some(entry), _) = cache.get(&key)
    {
        return Ok(entry.data.labels().cloned());
    }
    let kv = app.store.get(&key).await.map_err(|e| ApiError::from_storage(e, &ns_target))?;
    let Some(kv) = kv else { return Err(ApiError::NotFound(ns_target)) };
    let obj = kapi_codec::stored::decode(&kv.value).unwrap_or(Value::Null);
    Ok(labels(Some(&obj)).cloned())
}

/// Upstream's match-condition verdict: any condition false skips the webhook; else
/// errors fail the request (`Fail`, a Forbidden naming the resource) or skip the
/// webhook (`Ignore`); else the webhook is called.
pub fn conditions_hold(
    hook: &Hook,
    target: &Target,
    bindings: &[(&str, &Value)],
) -> Result<bool, ApiError> {
    let mut errors = Vec::new();
    for c in &hook.conditions {
        match evaluate(c, bindings) {
            Ok(false) => {
                tracing::debug!(webhook = %hook.name, condition = %c.name, "match condition false");
                return Ok(false);
            }
            Ok(true) => {}
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        return Ok(true);
    }
    if hook.ignore_failures {
        return Ok(false);
    }
    let why = if errors.len() == 1 { errors.remove(0) } else { format!("[{}]", errors.join(", ")) };
    Err(ApiError::ForbiddenTarget(target.clone(), why))
}

fn evaluate(c: &MatchCondition, bindings: &[(&str, &Value)]) -> Result<bool, String> {
    let compiled = c.compiled.as_ref().map_err(Clone::clone)?;
    match compiled.eval(bindings) {
        Ok(Some(b)) => Ok(b),
        // Not a bool is not false: upstream skips only on false.
        Ok(None) => Ok(true),
        Err(e) => Err(format!("expression '{}' resulted in error: {e}", c.expression)),
    }
}

/// `obj` (of `from`) in the version of `to` (an equivalent served version): built-in
/// twins and custom resources without a conversion webhook differ by apiVersion only
/// (or by kapi's fixed conversions); a conversion webhook converts the others.
pub async fn in_version(
    app: &App,
    from: &ResourceType,
    to: &ResourceType,
    obj: &Value,
) -> Result<Value, ApiError> {
    if !obj.is_object() || subresource_object(from, obj) {
        return Ok(obj.clone());
    }
    if let Some(hook) = kapi_codec::convert::webhook(to) {
        let transport = crate::conversion::Transport::of(app);
        let converted = transport.convert(hook, obj.clone(), &to.api_version()).await;
        return converted.map_err(|e| ApiError::internal_cause(e.to_string()));
    }
    let stored = kapi_codec::convert::to_storage(from, obj.clone());
    Ok(kapi_codec::convert::from_storage(to, stored))
}

/// Whether `obj` is not of `rt`'s kind (a subresource's own object, e.g. a Scale):
/// sent as it is, whatever the resource's version.
fn subresource_object(rt: &ResourceType, obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str).is_some_and(|k| k != &*rt.kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hook(config: Value) -> Hook {
        let mut all = Hook::all_of(&json!({"metadata": {"name": "c"}, "webhooks": [config]}));
        all.remove(0)
    }

    fn target() -> Target {
        Target {
            resource: "configmaps".into(),
            kind: "ConfigMap".into(),
            name: "x".into(),
            ..Default::default()
        }
    }

    #[test]
    fn object_selectors_match_the_new_or_the_old_object() {
        let h = hook(json!({"name": "h", "objectSelector": {"matchLabels": {"a": "1"}}}));
        let with = json!({"metadata": {"labels": {"a": "1"}}});
        let without = json!({"metadata": {}});
        assert!(object_selected(&h, &with, None).unwrap());
        assert!(!object_selected(&h, &without, None).unwrap());
        assert!(object_selected(&h, &without, Some(&with)).unwrap());
        assert!(!object_selected(&h, &Value::Null, None).unwrap());
        let any = hook(json!({"name": "h"}));
        assert!(object_selected(&any, &Value::Null, None).unwrap());
        let broken = hook(
            json!({"name": "h", "objectSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}),
        );
        assert_eq!(object_selected(&broken, &with, None).unwrap_err().code(), 500);
    }

    #[test]
    fn namespace_selectors_skip_cluster_scoped_objects_but_namespaces() {
        let h = hook(json!({"name": "h", "namespaceSelector": {"matchLabels": {"env": "prod"}}}));
        let prod = Ok(Some(json!({"env": "prod"}).as_object().unwrap().clone()));
        let none = Ok(None);
        assert!(
            namespace_selected(&h, "", false, &none).unwrap(),
            "cluster-scoped: never exempted"
        );
        assert!(namespace_selected(&h, "ns", false, &prod).unwrap());
        assert!(!namespace_selected(&h, "ns", false, &none).unwrap());
        assert!(!namespace_selected(&h, "ns", true, &none).unwrap(), "a namespace's own labels");
        assert!(!needs_namespace(&hook(json!({"name": "h"})), "ns", false));
        let missing = Err(ApiError::NotFound(Target {
            resource: "namespaces".into(),
            name: "ns".into(),
            ..Default::default()
        }));
        assert_eq!(namespace_selected(&h, "ns", false, &missing).unwrap_err().code(), 404);
    }

    #[test]
    fn match_conditions_follow_the_failure_policy() {
        let obj = json!({"metadata": {"name": "x", "labels": {"skip": "yes"}}});
        let b = [("object", &obj), ("oldObject", &Value::Null), ("request", &Value::Null)];
        let conds = |policy: &str, exprs: &[&str]| {
            let list: Vec<Value> = exprs
                .iter()
                .enumerate()
                .map(|(i, e)| json!({"name": format!("c{i}"), "expression": e}))
                .collect();
            hook(json!({"name": "h", "failurePolicy": policy, "matchConditions": list}))
        };
        assert!(
            conditions_hold(&conds("Fail", &["object.metadata.name == 'x'"]), &target(), &b)
                .unwrap()
        );
        assert!(
            !conditions_hold(&conds("Fail", &["!has(object.metadata.labels.skip)"]), &target(), &b)
                .unwrap()
        );
        let e =
            conditions_hold(&conds("Fail", &["object.spec.x == 1"]), &target(), &b).unwrap_err();
        assert_eq!(
            e.to_status()["message"],
            "configmaps \"x\" is forbidden: expression 'object.spec.x == 1' resulted in error: no such key: spec"
        );
        assert!(
            !conditions_hold(&conds("Ignore", &["object.spec.x == 1"]), &target(), &b).unwrap()
        );
        // A false condition wins over an error.
        assert!(
            !conditions_hold(&conds("Fail", &["object.spec.x == 1", "false"]), &target(), &b)
                .unwrap()
        );
    }

    #[test]
    fn equivalent_versions_are_used_unless_exact() {
        let reg = kapi_codec::Registry::builtin();
        let rt = reg.get("", "v1", "configmaps").unwrap();
        let own = own_target(rt, "CREATE", "", "ns");
        let kind = Gvx { group: String::new(), version: "v1".into(), name: "ConfigMap".into() };
        let twin = rt.clone();
        let rules = json!([{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}]);
        let h = hook(json!({"name": "h", "rules": rules}));
        let inv = invocation(&h, &own, &kind, &[]).unwrap();
        assert!(inv.equivalent.is_none());
        let other = hook(
            json!({"name": "h", "rules": [{"operations": ["*"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["secrets"]}]}),
        );
        assert!(invocation(&other, &own, &kind, std::slice::from_ref(&twin)).is_none());
        let v2 = hook(
            json!({"name": "h", "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["v1"], "resources": ["configmaps"]}]}),
        );
        let beta = RuleTarget { version: "v1beta1", ..own };
        let inv = invocation(&v2, &beta, &kind, std::slice::from_ref(&twin)).unwrap();
        assert_eq!(inv.resource.version, "v1", "called as the equivalent v1 resource");
        let exact = hook(
            json!({"name": "h", "matchPolicy": "Exact", "rules": [{"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["v1"], "resources": ["configmaps"]}]}),
        );
        assert!(invocation(&exact, &beta, &kind, &[twin]).is_none());
    }
}
