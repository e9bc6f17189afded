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
use super::covers;
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
    let owner: Vec<Value> = held.rules.iter().flat_map(|rs| rs.iter()).map(Rule::to_json).collect();
    let wanted: Vec<Value> = rules.iter().map(Rule::to_json).collect();
    let mut missing: Vec<String> =
        covers::uncovered(&owner, &wanted).iter().map(|r| compact(&Rule::from_json(r))).collect();
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

    #[test]
    fn missing_grants_are_written_as_upstreams_compact_strings() {
        let owner = [
            json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "*/status"]}),
        ];
        let wanted = [
            json!({"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods", "nodes/status"]}),
        ];
        let missing: Vec<String> = covers::uncovered(&owner, &wanted)
            .iter()
            .map(|r| compact(&Rule::from_json(r)))
            .collect();
        assert_eq!(
            missing,
            [
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#,
                r#"{APIGroups:[""], Resources:["nodes/status"], Verbs:["delete"]}"#,
            ]
        );
        let named = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"]});
        let any_secret = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]});
        assert!(
            covers::uncovered(std::slice::from_ref(&any_secret), std::slice::from_ref(&named))
                .is_empty()
        );
        assert!(
            !covers::uncovered(&[named], &[any_secret]).is_empty(),
            "a name does not cover all"
        );
    }
}
