//! Whether a webhook's rule covers a request (upstream's `rules.Matcher`): operation,
//! API group, version, resource with `resource/subresource` patterns (`*`, `*/status`,
//! `pods/*`), and scope; and which writes no webhook ever sees (the admission
//! configuration objects themselves).

use super::hook::Rule;

/// The parts of a request rules look at (the resource may be an equivalent one).
#[derive(Debug, Clone, Copy)]
pub struct RuleTarget<'a> {
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT`.
    pub operation: &'a str,
    pub group: &'a str,
    pub version: &'a str,
    pub resource: &'a str,
    /// Empty: none.
    pub subresource: &'a str,
    /// The request's namespace (a namespace object's own name for namespaces).
    pub namespace: &'a str,
}

impl RuleTarget<'_> {
    /// Whether this is the core v1 namespaces resource (cluster-scoped, yet carrying
    /// its own name as namespace).
    fn is_namespace_resource(&self) -> bool {
        self.group.is_empty() && self.version == "v1" && self.resource == "namespaces"
    }
}

fn exact_or_wildcard(items: &[String], requested: &str) -> bool {
    items.iter().any(|i| i == "*" || i == requested)
}

fn scope(rule: &Rule, t: &RuleTarget<'_>) -> bool {
    match rule.scope.as_deref() {
        None | Some("*") => true,
        Some("Namespaced") => !t.is_namespace_resource() && !t.namespace.is_empty(),
        Some("Cluster") => t.is_namespace_resource() || t.namespace.is_empty(),
        Some(_) => false,
    }
}

fn resource(rule: &Rule, t: &RuleTarget<'_>) -> bool {
    rule.resources.iter().any(|pattern| {
        let (res, sub) = pattern.split_once('/').unwrap_or((pattern, ""));
        (res == "*" || res == t.resource) && (sub == "*" || sub == t.subresource)
    })
}

/// Whether `rule` covers `t`.
pub fn matches(rule: &Rule, t: &RuleTarget<'_>) -> bool {
    scope(rule, t)
        && exact_or_wildcard(&rule.operations, t.operation)
        && exact_or_wildcard(&rule.groups, t.group)
        && exact_or_wildcard(&rule.versions, t.version)
        && resource(rule, t)
}

/// Writes of these kinds never reach a webhook (upstream's
/// `IsExemptAdmissionConfigurationResource`): a webhook cannot lock itself in.
pub fn exempt(group: &str, kind: &str) -> bool {
    group == "admissionregistration.k8s.io"
        && matches!(
            kind,
            "ValidatingWebhookConfiguration"
                | "MutatingWebhookConfiguration"
                | "ValidatingAdmissionPolicy"
                | "ValidatingAdmissionPolicyBinding"
                | "MutatingAdmissionPolicy"
                | "MutatingAdmissionPolicyBinding"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(ops: &[&str], groups: &[&str], versions: &[&str], res: &[&str]) -> Rule {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect();
        Rule {
            operations: v(ops),
            groups: v(groups),
            versions: v(versions),
            resources: v(res),
            scope: None,
        }
    }

    fn target<'a>(op: &'a str, group: &'a str, resource: &'a str, sub: &'a str) -> RuleTarget<'a> {
        RuleTarget {
            operation: op,
            group,
            version: "v1",
            resource,
            subresource: sub,
            namespace: "ns",
        }
    }

    #[test]
    fn operations_groups_versions_and_resources_match_exactly_or_by_wildcard() {
        let r = rule(&["CREATE"], &[""], &["v1"], &["configmaps"]);
        assert!(matches(&r, &target("CREATE", "", "configmaps", "")));
        assert!(!matches(&r, &target("UPDATE", "", "configmaps", "")));
        assert!(!matches(&r, &target("CREATE", "apps", "configmaps", "")));
        assert!(!matches(&r, &target("CREATE", "", "secrets", "")));
        assert!(!matches(
            &r,
            &RuleTarget { version: "v2", ..target("CREATE", "", "configmaps", "") }
        ));
        let any = rule(&["*"], &["*"], &["*"], &["*"]);
        assert!(matches(&any, &target("DELETE", "apps", "deployments", "")));
    }

    #[test]
    fn subresources_match_only_their_patterns() {
        let main_only = rule(&["*"], &["*"], &["*"], &["pods"]);
        assert!(!matches(&main_only, &target("UPDATE", "", "pods", "status")));
        let status = rule(&["*"], &["*"], &["*"], &["*/status"]);
        assert!(matches(&status, &target("UPDATE", "", "pods", "status")));
        assert!(!matches(&status, &target("UPDATE", "", "pods", "")));
        let pods_any = rule(&["*"], &["*"], &["*"], &["pods/*"]);
        assert!(matches(&pods_any, &target("CREATE", "", "pods", "eviction")));
        // As upstream: `*` after the slash matches no subresource too.
        assert!(matches(&pods_any, &target("CREATE", "", "pods", "")));
        assert!(!matches(&pods_any, &target("CREATE", "", "nodes", "")));
        let star = rule(&["*"], &["*"], &["*"], &["*"]);
        assert!(!matches(&star, &target("UPDATE", "", "pods", "status")));
        let all = rule(&["*"], &["*"], &["*"], &["*/*"]);
        assert!(matches(&all, &target("UPDATE", "", "pods", "status")));
        assert!(matches(&all, &target("UPDATE", "", "pods", "")));
    }

    #[test]
    fn scopes_treat_namespace_objects_as_cluster_scoped() {
        let scoped =
            |s: &str| Rule { scope: Some(s.into()), ..rule(&["*"], &["*"], &["*"], &["*"]) };
        let cm = target("CREATE", "", "configmaps", "");
        let node = RuleTarget { namespace: "", ..target("CREATE", "", "nodes", "") };
        let ns = RuleTarget { namespace: "team-a", ..target("CREATE", "", "namespaces", "") };
        assert!(matches(&scoped("Namespaced"), &cm));
        assert!(!matches(&scoped("Cluster"), &cm));
        assert!(matches(&scoped("Cluster"), &node));
        assert!(!matches(&scoped("Namespaced"), &node));
        assert!(matches(&scoped("Cluster"), &ns));
        assert!(!matches(&scoped("Namespaced"), &ns));
        assert!(matches(&scoped("*"), &ns));
    }

    #[test]
    fn admission_configuration_objects_are_exempt() {
        assert!(exempt("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"));
        assert!(exempt("admissionregistration.k8s.io", "MutatingAdmissionPolicyBinding"));
        assert!(!exempt("", "ConfigMap"));
    }
}
