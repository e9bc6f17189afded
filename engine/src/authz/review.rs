//! The SubjectAccessReview family, answered from the authorization chain as upstream:
//! SubjectAccessReview (any user, `spec.user`/`groups`/`uid`/`extra`),
//! LocalSubjectAccessReview (its namespace must be the URL's), SelfSubjectAccessReview
//! (the caller), and SelfSubjectRulesReview (the caller's RBAC rules in a namespace).

use super::Chain;
use super::attributes::Attributes;
use super::rules::Rule;
use crate::auth::{Decision, UserInfo};
use kapi_codec::FieldError;
use serde_json::{Value, json};

/// Which access review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    Subject,
    Local,
    SelfSubject,
}

impl AccessKind {
    pub fn of_kind(kind: &str) -> AccessKind {
        match kind {
            "LocalSubjectAccessReview" => AccessKind::Local,
            "SelfSubjectAccessReview" => AccessKind::SelfSubject,
            _ => AccessKind::Subject,
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect()
}

fn text<'v>(v: &'v Value, field: &str) -> &'v str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

/// The user a SubjectAccessReview asks about.
fn spec_user(spec: &Value) -> UserInfo {
    let extra = spec.get("extra").and_then(Value::as_object);
    UserInfo {
        name: text(spec, "user").to_string(),
        uid: text(spec, "uid").to_string(),
        groups: strings(&spec["groups"]),
        extra: extra.into_iter().flatten().map(|(k, v)| (k.clone(), strings(v))).collect(),
    }
}

/// Upstream's validation of an access review's spec.
pub fn validate(kind: AccessKind, spec: &Value, url_namespace: Option<&str>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (res, non) = (spec.get("resourceAttributes"), spec.get("nonResourceAttributes"));
    match (res, non) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            "spec.nonResourceAttributes",
            &spec["nonResourceAttributes"],
            "cannot be specified in combination with resourceAttributes",
        )),
        (None, None) => errs.push(FieldError::invalid(
            "spec.resourceAttributes",
            &Value::Null,
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
        _ => {}
    }
    if kind != AccessKind::SelfSubject
        && text(spec, "user").is_empty()
        && strings(&spec["groups"]).is_empty()
    {
        errs.push(FieldError::invalid(
            "spec.user",
            &json!(""),
            "at least one of user or group must be specified",
        ));
    }
    if kind == AccessKind::Local {
        let ns = res.map(|r| text(r, "namespace")).unwrap_or("");
        if Some(ns) != url_namespace {
            errs.push(FieldError::invalid(
                "spec.resourceAttributes.namespace",
                &json!(ns),
                "must match metadata.namespace",
            ));
        }
    }
    errs
}

/// The `status` of an access review asked by `caller`: the full chain decides, the
/// Webhook mode asked when its cache has no answer (a failed call is the
/// `evaluationError`, as upstream). Without `app` (unit tests) the chain decides in
/// memory ([`Chain::decide`]).
pub async fn access_status(
    chain: &Chain,
    app: Option<&crate::app::App>,
    kind: AccessKind,
    spec: &Value,
    caller: &UserInfo,
) -> Value {
    let user = if kind == AccessKind::SelfSubject { caller.clone() } else { spec_user(spec) };
    let path;
    let attrs = match spec.get("resourceAttributes") {
        Some(r) => Attributes {
            user: &user,
            verb: text(r, "verb"),
            resource_request: true,
            path: "",
            group: text(r, "group"),
            version: text(r, "version"),
            namespace: text(r, "namespace"),
            resource: text(r, "resource"),
            subresource: text(r, "subresource"),
            name: text(r, "name"),
            field_selector: "",
        },
        None => {
            let n = &spec["nonResourceAttributes"];
            path = text(n, "path").to_string();
            Attributes {
                user: &user,
                verb: text(n, "verb"),
                resource_request: false,
                path: &path,
                group: "",
                version: "",
                namespace: "",
                resource: "",
                subresource: "",
                name: "",
                field_selector: "",
            }
        }
    };
    let decided = match app {
        Some(app) => chain.authorize_request_explained(app, &attrs).await,
        None => Ok(chain.explain(&attrs)).map(|(allowed, why)| match allowed {
            true => (Decision::Allow, why),
            false => (Decision::Deny(why), String::new()),
        }),
    };
    match decided {
        Ok((Decision::Allow, reason)) if reason.is_empty() => json!({"allowed": true}),
        Ok((Decision::Allow, reason)) => json!({"allowed": true, "reason": reason}),
        Ok((Decision::Deny(reason), _)) if reason.is_empty() => json!({"allowed": false}),
        Ok((Decision::Deny(reason), _)) => json!({"allowed": false, "reason": reason}),
        Err(e) => json!({"allowed": false, "evaluationError": e}),
    }
}

/// The `status` of a SelfSubjectRulesReview: what RBAC grants `caller` in `namespace`
/// (cluster-wide rules included); incomplete for a kubelet, whose access the Node
/// authorizer decides per object.
pub fn rules_status(chain: &Chain, namespace: &str, caller: &UserInfo) -> Value {
    let resolved = chain.policy.load().resolve(caller, namespace);
    let mut resource_rules: Vec<Value> = Vec::new();
    let mut non_resource_rules: Vec<Value> = Vec::new();
    let privileged = caller.groups.iter().any(|g| g == super::PRIVILEGED_GROUP);
    if privileged {
        resource_rules.push(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        non_resource_rules.push(json!({"verbs": ["*"], "nonResourceURLs": ["*"]}));
    }
    for rule in resolved.rules.iter().flat_map(|rs| rs.iter()) {
        if rule.non_resource_urls.is_empty() {
            resource_rules.push(resource_rule(rule));
        } else {
            non_resource_rules
                .push(json!({"verbs": rule.verbs, "nonResourceURLs": rule.non_resource_urls}));
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": false,
    });
    let mut errors: Vec<String> = resolved.missing.clone();
    if chain.modes().contains(&super::Mode::Node) && super::node::node_identity(caller).is_some() {
        errors.push("node authorizer does not support user rule resolution".into());
        status["incomplete"] = json!(true);
    }
    if !errors.is_empty() {
        status["evaluationError"] = json!(errors.join(", "));
    }
    status
}

fn resource_rule(rule: &Rule) -> Value {
    let mut v =
        json!({"verbs": rule.verbs, "apiGroups": rule.api_groups, "resources": rule.resources});
    if !rule.resource_names.is_empty() {
        v["resourceNames"] = json!(rule.resource_names);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::Mode;
    use crate::authz::rbac::{Objects, Policy};
    use std::sync::Arc;

    fn chain() -> Chain {
        let chain = Chain::new(vec![Mode::Rbac]);
        let objects = Objects {
            cluster_roles: vec![json!({"metadata": {"name": "reader"},
                "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
                    {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]})],
            cluster_role_bindings: vec![json!({"metadata": {"name": "r"},
                "roleRef": {"kind": "ClusterRole", "name": "reader"},
                "subjects": [{"kind": "User", "name": "alice"}]})],
            ..Default::default()
        };
        chain.policy.store(Arc::new(Policy::build(&objects, 1)));
        chain
    }

    fn status(c: &Chain, kind: AccessKind, spec: &Value, caller: &UserInfo) -> Value {
        use futures_util::FutureExt as _;
        access_status(c, None, kind, spec, caller).now_or_never().expect("no webhook to wait for")
    }

    #[test]
    fn access_reviews_answer_from_the_chain() {
        let c = chain();
        let caller = UserInfo { name: "alice".into(), ..Default::default() };
        let get = json!({"user": "alice", "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "x"}});
        // An allow names what allowed it, as upstream's RBAC reason does.
        let reason =
            r#"RBAC: allowed by ClusterRoleBinding "r" of ClusterRole "reader" to User "alice""#;
        assert_eq!(
            status(&c, AccessKind::Subject, &get, &caller),
            json!({"allowed": true, "reason": reason})
        );
        let del = json!({"resourceAttributes": {"verb": "delete", "resource": "pods"}});
        assert_eq!(status(&c, AccessKind::SelfSubject, &del, &caller), json!({"allowed": false}));
        let health = json!({"nonResourceAttributes": {"verb": "get", "path": "/healthz"}});
        assert_eq!(
            status(&c, AccessKind::SelfSubject, &health, &caller),
            json!({"allowed": true, "reason": reason})
        );
        assert_eq!(validate(AccessKind::Subject, &get, None).len(), 0);
        assert_eq!(validate(AccessKind::Subject, &del, None).len(), 1, "no user or group");
        assert_eq!(validate(AccessKind::Local, &get, Some("y")).len(), 1, "namespace mismatch");
    }

    #[test]
    fn rules_reviews_list_the_bound_rules() {
        let c = chain();
        let caller = UserInfo { name: "alice".into(), ..Default::default() };
        let s = rules_status(&c, "default", &caller);
        assert_eq!(
            s["resourceRules"],
            json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}])
        );
        assert_eq!(
            s["nonResourceRules"],
            json!([{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}])
        );
        assert_eq!(s["incomplete"], false);
    }
}
