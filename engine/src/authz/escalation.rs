//! RBAC's guard against privilege escalation, as upstream's RBAC storage applies it to
//! every create and update:
//! - a Role or ClusterRole may only grant what its writer already holds (in the role's
//!   namespace, or cluster-wide), unless the writer may `escalate` roles; only members of
//!   `system:masters` may write an `aggregationRule`;
//! - a RoleBinding or ClusterRoleBinding needs `bind` on the role it references, or its
//!   writer must hold everything that role grants (in the binding's namespace).
//!
//! "Holds" is checked rule by rule after breaking every rule into single verb /
//! group / resource / name grants (upstream's `BreakdownRule` and `Covers`).

use super::attributes::Attributes;
use super::rules::Rule;
use super::{Chain, PRIVILEGED_GROUP};
use crate::auth::{Decision, UserInfo};
use crate::rest::Scope;
use crate::status::ApiError;
use kapi_codec::registry::Role;
use serde_json::Value;

const GROUP: &str = "rbac.authorization.k8s.io";

/// Refuse the write of `obj` (a role or binding) if it would escalate its writer.
pub fn check(scope: &Scope<'_>, obj: &Value) -> Result<(), ApiError> {
    let Some(user) = scope.user else { return Ok(()) };
    if !matches!(scope.rt.role, Role::RbacRoles | Role::RbacBindings) {
        return Ok(());
    }
    if user.groups.iter().any(|g| g == PRIVILEGED_GROUP) {
        return Ok(());
    }
    let chain = &scope.app.authorizer;
    let name = obj.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    let ns = scope.namespace.as_deref().unwrap_or("");
    let result = if scope.rt.role == Role::RbacRoles {
        check_role(chain, user, &scope.rt.plural, ns, name, obj)
    } else {
        check_binding(chain, user, ns, obj)
    };
    result.map_err(|msg| ApiError::ForbiddenTarget(scope.target(name), msg))
}

fn check_role(
    chain: &Chain,
    user: &UserInfo,
    plural: &str,
    ns: &str,
    name: &str,
    role: &Value,
) -> Result<(), String> {
    if role.get("aggregationRule").is_some_and(|a| !a.is_null()) {
        return Err("must have cluster-admin privileges to use the aggregationRule".into());
    }
    if allowed(chain, user, "escalate", plural, ns, name) {
        return Ok(());
    }
    confirm_no_escalation(chain, user, ns, &Rule::all_of(role))
}

fn check_binding(chain: &Chain, user: &UserInfo, ns: &str, binding: &Value) -> Result<(), String> {
    let kind = binding.pointer("/roleRef/kind").and_then(Value::as_str).unwrap_or("");
    let role = binding.pointer("/roleRef/name").and_then(Value::as_str).unwrap_or("");
    let plural = if kind == "Role" { "roles" } else { "clusterroles" };
    if allowed(chain, user, "bind", plural, ns, role) {
        return Ok(());
    }
    let policy = chain.policy.load();
    let rules = match kind {
        "Role" => policy.role(ns, role),
        _ => policy.cluster_role(role),
    };
    let Some(rules) = rules else {
        return Err(format!("{}.{GROUP} {role:?} not found", kind.to_lowercase()));
    };
    confirm_no_escalation(chain, user, ns, rules)
}

/// Whether the chain allows `verb` on the named role (`bind`, `escalate`).
fn allowed(chain: &Chain, user: &UserInfo, verb: &str, plural: &str, ns: &str, name: &str) -> bool {
    let a = Attributes {
        user,
        verb,
        resource_request: true,
        path: "",
        group: GROUP,
        version: "",
        namespace: ns,
        resource: plural,
        subresource: "",
        name,
        field_selector: "",
    };
    chain.decide(&a) == Decision::Allow
}

/// Upstream's `ConfirmNoEscalation`: every grant of `rules` is held by `user` in `ns`.
fn confirm_no_escalation(
    chain: &Chain,
    user: &UserInfo,
    ns: &str,
    rules: &[Rule],
) -> Result<(), String> {
    let held = chain.policy.load().resolve(user, ns);
    let owner: Vec<&Rule> = held.rules.iter().flat_map(|rs| rs.iter()).collect();
    let mut missing: Vec<String> = rules
        .iter()
        .flat_map(breakdown)
        .filter(|r| !owner.iter().any(|o| covers(o, r)))
        .map(|r| compact(&r))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.sort();
    missing.dedup();
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    let mut msg = format!(
        "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        groups.join(" "),
        missing.join("\n")
    );
    if !held.missing.is_empty() {
        msg.push_str(&format!("; resolution errors: [{}]", held.missing.join(" ")));
    }
    Err(msg)
}

/// One rule as single grants: a verb on a group's resource (by name when the rule names
/// some), or a verb on a URL.
pub fn breakdown(rule: &Rule) -> Vec<Rule> {
    let mut out = Vec::new();
    let one = |v: &str| vec![v.to_string()];
    for verb in &rule.verbs {
        for url in &rule.non_resource_urls {
            out.push(Rule { verbs: one(verb), non_resource_urls: one(url), ..Default::default() });
        }
        for group in &rule.api_groups {
            for resource in &rule.resources {
                let base = Rule {
                    verbs: one(verb),
                    api_groups: one(group),
                    resources: one(resource),
                    ..Default::default()
                };
                if rule.resource_names.is_empty() {
                    out.push(base);
                } else {
                    for name in &rule.resource_names {
                        out.push(Rule { resource_names: one(name), ..base.clone() });
                    }
                }
            }
        }
    }
    out
}

/// Whether `owner` grants the single grant `sub` (upstream's `ruleCovers`).
pub fn covers(owner: &Rule, sub: &Rule) -> bool {
    let has = |list: &[String], v: &str| list.iter().any(|x| x == "*" || x == v);
    let verbs = sub.verbs.iter().all(|v| has(&owner.verbs, v));
    let urls = sub.non_resource_urls.iter().all(|u| {
        owner
            .non_resource_urls
            .iter()
            .any(|o| o == "*" || o == u || o.strip_suffix('*').is_some_and(|p| u.starts_with(p)))
    });
    let groups = sub.api_groups.iter().all(|g| has(&owner.api_groups, g));
    let resources = sub.resources.iter().all(|r| {
        owner.resources.iter().any(|o| {
            o == "*"
                || o == r
                || (o.starts_with("*/")
                    && r.split_once('/').is_some_and(|(_, s)| Some(s) == o.strip_prefix("*/")))
        })
    });
    let names = owner.resource_names.is_empty()
        || sub.resource_names.iter().all(|n| owner.resource_names.contains(n));
    verbs && urls && groups && resources && names
}

/// Upstream's `CompactString` of a rule: `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`.
pub fn compact(rule: &Rule) -> String {
    let quoted = |v: &[String]| {
        let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
        format!("[{}]", items.join(" "))
    };
    let mut parts = Vec::new();
    for (label, list) in [
        ("APIGroups", &rule.api_groups),
        ("Resources", &rule.resources),
        ("NonResourceURLs", &rule.non_resource_urls),
        ("ResourceNames", &rule.resource_names),
        ("Verbs", &rule.verbs),
    ] {
        if !list.is_empty() {
            parts.push(format!("{label}:{}", quoted(list)));
        }
    }
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(v: Value) -> Rule {
        Rule::from_json(&v)
    }

    #[test]
    fn grants_are_held_rule_by_rule() {
        let owner = rule(
            json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "*/status"]}),
        );
        let wanted = rule(
            json!({"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods", "nodes/status"]}),
        );
        let missing: Vec<String> =
            breakdown(&wanted).iter().filter(|r| !covers(&owner, r)).map(compact).collect();
        assert_eq!(
            missing,
            [
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#,
                r#"{APIGroups:[""], Resources:["nodes/status"], Verbs:["delete"]}"#,
            ]
        );
        let named = rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"]}),
        );
        let any_secret =
            rule(json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}));
        assert!(breakdown(&named).iter().all(|r| covers(&any_secret, r)));
        assert!(
            !breakdown(&any_secret).iter().all(|r| covers(&named, r)),
            "a name does not cover all"
        );
        let urls = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/logs/*"]}));
        let sub = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/logs/a"]}));
        assert!(breakdown(&sub).iter().all(|r| covers(&urls, r)));
    }
}
