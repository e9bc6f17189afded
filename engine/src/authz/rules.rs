//! RBAC policy rules as upstream matches them (`rbac.RuleAllows`): verbs, API groups,
//! resources (`*`, `resource/subresource`, `*/subresource`) and resource names for
//! resource requests; verbs and non-resource URLs (exact, `*`, or a `prefix*`) for the
//! others. A rule is compiled once from its JSON when the policy index is built.

use super::attributes::Attributes;
use serde_json::Value;

/// One `PolicyRule`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

fn strings(v: &Value, field: &str) -> Vec<String> {
    v.get(field)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

impl Rule {
    pub fn from_json(v: &Value) -> Rule {
        Rule {
            verbs: strings(v, "verbs"),
            api_groups: strings(v, "apiGroups"),
            resources: strings(v, "resources"),
            resource_names: strings(v, "resourceNames"),
            non_resource_urls: strings(v, "nonResourceURLs"),
        }
    }

    /// The rules of a Role or ClusterRole object.
    pub fn all_of(role: &Value) -> Vec<Rule> {
        role.get("rules")
            .and_then(Value::as_array)
            .map(|rules| rules.iter().map(Rule::from_json).collect())
            .unwrap_or_default()
    }

    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("verbs".into(), self.verbs.clone().into());
        for (k, v) in [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !v.is_empty() {
                m.insert(k.into(), v.clone().into());
            }
        }
        Value::Object(m)
    }

    /// Whether this rule allows the request.
    pub fn allows(&self, a: &Attributes<'_>) -> bool {
        if !self.verb_matches(a.verb) {
            return false;
        }
        if !a.resource_request {
            return self.url_matches(a.path);
        }
        self.group_matches(a.group)
            && self.resource_matches(a.resource, a.subresource)
            && self.name_matches(a.name)
    }

    pub fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    pub fn group_matches(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| g == "*" || g == group)
    }

    pub fn resource_matches(&self, resource: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            if r == "*" {
                return true;
            }
            if subresource.is_empty() {
                return r == resource;
            }
            match r.split_once('/') {
                Some((res, sub)) => sub == subresource && (res == "*" || res == resource),
                None => false,
            }
        })
    }

    pub fn name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == name)
    }

    pub fn url_matches(&self, path: &str) -> bool {
        self.non_resource_urls.iter().any(|u| {
            u == "*"
                || u == path
                || u.strip_suffix('*').is_some_and(|prefix| path.starts_with(prefix))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::UserInfo;
    use serde_json::json;

    fn req<'a>(
        u: &'a UserInfo,
        verb: &'a str,
        res: &'a str,
        sub: &'a str,
        name: &'a str,
    ) -> Attributes<'a> {
        Attributes {
            user: u,
            verb,
            resource_request: true,
            path: "",
            group: "apps",
            version: "v1",
            namespace: "ns",
            resource: res,
            subresource: sub,
            name,
            field_selector: "",
        }
    }

    #[test]
    fn resource_rules_match_as_upstream() {
        let u = UserInfo::default();
        let r = Rule::from_json(&json!({"verbs": ["get", "list"], "apiGroups": ["apps"],
            "resources": ["deployments", "deployments/scale", "*/status"], "resourceNames": ["d"]}));
        assert!(r.allows(&req(&u, "get", "deployments", "", "d")));
        assert!(!r.allows(&req(&u, "get", "deployments", "", "e")), "resourceNames");
        assert!(!r.allows(&req(&u, "watch", "deployments", "", "d")), "verbs");
        assert!(r.allows(&req(&u, "get", "deployments", "scale", "d")));
        assert!(r.allows(&req(&u, "get", "replicasets", "status", "d")), "*/status");
        assert!(!r.allows(&req(&u, "get", "deployments", "rollback", "d")));
        let any = Rule::from_json(&json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        assert!(any.allows(&req(&u, "delete", "pods", "exec", "")));
        let core =
            Rule::from_json(&json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}));
        assert!(
            !core.allows(&req(&u, "get", "pods", "", "")),
            "the apps group is not the core group"
        );
    }

    #[test]
    fn non_resource_urls_match_exactly_by_star_or_by_prefix() {
        let u = UserInfo::default();
        let r =
            Rule::from_json(&json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}));
        let path =
            |p| Attributes { resource_request: false, path: p, ..req(&u, "get", "", "", "") };
        assert!(r.allows(&path("/healthz")));
        assert!(!r.allows(&path("/healthz/etcd")));
        assert!(r.allows(&path("/apis/apps/v1")));
        assert!(!r.allows(&path("/api")));
        let resource = req(&u, "get", "pods", "", "");
        assert!(!r.allows(&resource), "a non-resource rule allows no resource");
    }
}
