//! Which writes a policy's `matchConstraints` (or a binding's `matchResources`) select,
//! as upstream's policy matcher decides it: the namespace and object selectors, then
//! the excluded rules, then the resource rules (with `resourceNames`), and with
//! matchPolicy `Equivalent` the other served versions of the same resource.
//!
//! Invariants: no I/O (the caller fetches the namespace's labels when
//! [`Matcher::needs_namespace`] says so); selector errors are reported only for a
//! matcher whose rules select the request, as upstream reports them.

use crate::admission::webhook::{Rule, RuleTarget, rule_matches};
use kapi_codec::ResourceType;
use kapi_codec::selector::LabelSelector;
use serde_json::{Map, Value};
use std::sync::Arc;

/// One `resourceRules[]` / `excludeResourceRules[]` entry.
#[derive(Debug, Clone, Default)]
pub struct NamedRule {
    pub rule: Rule,
    /// `resourceNames` (empty: any name).
    pub names: Vec<String>,
}

/// A compiled `MatchResources`.
#[derive(Debug)]
pub struct Matcher {
    pub rules: Vec<NamedRule>,
    pub exclude: Vec<NamedRule>,
    /// matchPolicy is not `Equivalent` (upstream: unset is Exact; the API defaults it).
    pub exact: bool,
    pub namespace_selector: Result<LabelSelector, String>,
    pub object_selector: Result<LabelSelector, String>,
}

/// The resource a matcher selected: the request's own (None) or an equivalent one.
pub type Selected = Option<Arc<ResourceType>>;

fn strings(v: Option<&Value>) -> Vec<String> {
    let items = v.and_then(Value::as_array).into_iter().flatten();
    items.filter_map(|s| s.as_str().map(String::from)).collect()
}

fn named_rules(v: Option<&Value>) -> Vec<NamedRule> {
    let items = v.and_then(Value::as_array).into_iter().flatten().take(super::compile::MAX_ITEMS);
    items
        .map(|r| NamedRule {
            rule: Rule {
                operations: strings(r.get("operations")),
                groups: strings(r.get("apiGroups")),
                versions: strings(r.get("apiVersions")),
                resources: strings(r.get("resources")),
                scope: r.get("scope").and_then(Value::as_str).map(String::from),
            },
            names: strings(r.get("resourceNames")),
        })
        .collect()
}

fn selector(v: Option<&Value>) -> Result<LabelSelector, String> {
    match v {
        None | Some(Value::Null) => Ok(LabelSelector::default()),
        Some(s) => LabelSelector::from_object(s).map_err(|e| e.to_string()),
    }
}

fn labels(obj: Option<&Value>) -> Option<&Map<String, Value>> {
    obj?.get("metadata")?.get("labels")?.as_object()
}

/// The facts of one write a matcher looks at.
pub struct Request<'a> {
    pub target: RuleTarget<'a>,
    /// The object's name (empty while a create has only `generateName`).
    pub name: &'a str,
    pub is_namespaces: bool,
    pub object: &'a Value,
    pub old: Option<&'a Value>,
    /// The other served versions of the resource (matchPolicy Equivalent).
    pub equivalents: &'a [Arc<ResourceType>],
    /// The labels of the request's namespace, when [`Matcher::needs_namespace`].
    pub namespace_labels: Option<&'a Map<String, Value>>,
}

impl Matcher {
    pub fn of(m: Option<&Value>) -> Matcher {
        let m = m.unwrap_or(&Value::Null);
        Matcher {
            rules: named_rules(m.get("resourceRules")),
            exclude: named_rules(m.get("excludeResourceRules")),
            exact: m.get("matchPolicy").and_then(Value::as_str) != Some("Equivalent"),
            namespace_selector: selector(m.get("namespaceSelector")),
            object_selector: selector(m.get("objectSelector")),
        }
    }

    /// Whether deciding needs the namespace's labels (a namespaced request, or a
    /// namespace itself, and a selector that is not empty).
    pub fn needs_namespace(&self, r: &Request<'_>) -> bool {
        let selects = self.namespace_selector.as_ref().map_or(true, |s| !s.is_empty());
        (r.is_namespaces || !r.target.namespace.is_empty()) && selects
    }

    /// Whether the request is selected, and as which resource. `Err`: a selector that
    /// does not parse, on a matcher whose rules select the request.
    pub fn matches(&self, r: &Request<'_>) -> Result<Option<Selected>, String> {
        let ns = self.namespace_matches(r);
        let obj = self.object_matches(r);
        if matches!(ns, Ok(false)) || matches!(obj, Ok(false)) {
            return Ok(None);
        }
        if self.rules_select(&self.exclude, r).is_some() {
            return Ok(None);
        }
        let selected =
            if self.rules.is_empty() { Some(None) } else { self.rules_select(&self.rules, r) };
        let Some(selected) = selected else { return Ok(None) };
        ns?;
        obj?;
        Ok(Some(selected))
    }

    fn namespace_matches(&self, r: &Request<'_>) -> Result<bool, String> {
        if !self.needs_namespace(r) {
            return Ok(true);
        }
        let s = self.namespace_selector.as_ref().map_err(Clone::clone)?;
        Ok(s.matches(r.namespace_labels))
    }

    fn object_matches(&self, r: &Request<'_>) -> Result<bool, String> {
        let s = self.object_selector.as_ref().map_err(Clone::clone)?;
        if s.is_empty() {
            return Ok(true);
        }
        let selects = |o: Option<&Value>| o.is_some_and(|o| o.is_object()) && s.matches(labels(o));
        Ok(selects(Some(r.object)) || selects(r.old))
    }

    /// The resource `rules` select: the request's own (with its name among a rule's
    /// `resourceNames` when it has any), else an equivalent one (names not looked at,
    /// as upstream) unless the match policy is Exact.
    fn rules_select(&self, rules: &[NamedRule], r: &Request<'_>) -> Option<Selected> {
        let named = |n: &NamedRule| n.names.is_empty() || n.names.iter().any(|x| x == r.name);
        if rules.iter().any(|n| rule_matches(&n.rule, &r.target) && named(n)) {
            return Some(None);
        }
        if self.exact {
            return None;
        }
        for n in rules {
            for eq in r.equivalents {
                let t = RuleTarget {
                    group: &eq.group,
                    version: &eq.version,
                    resource: &eq.plural,
                    ..r.target
                };
                if rule_matches(&n.rule, &t) {
                    return Some(Some(eq.clone()));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request<'a>(op: &'a str, ns: &'a str, name: &'a str, obj: &'a Value) -> Request<'a> {
        Request {
            target: RuleTarget {
                operation: op,
                group: "apps",
                version: "v1",
                resource: "deployments",
                subresource: "",
                namespace: ns,
            },
            name,
            is_namespaces: false,
            object: obj,
            old: None,
            equivalents: &[],
            namespace_labels: None,
        }
    }

    fn deployments_rule() -> Value {
        json!({"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
               "resources": ["deployments"]})
    }

    #[test]
    fn rules_operations_and_resource_names_select() {
        let m = Matcher::of(Some(&json!({"resourceRules": [deployments_rule()]})));
        let obj = json!({"metadata": {"name": "a"}});
        assert!(matches!(m.matches(&request("CREATE", "ns", "a", &obj)), Ok(Some(None))));
        assert!(matches!(m.matches(&request("DELETE", "ns", "a", &obj)), Ok(None)));
        let mut named = deployments_rule();
        named["resourceNames"] = json!(["b"]);
        let m = Matcher::of(Some(&json!({"resourceRules": [named]})));
        assert!(matches!(m.matches(&request("CREATE", "ns", "a", &obj)), Ok(None)));
        assert!(matches!(m.matches(&request("CREATE", "ns", "b", &obj)), Ok(Some(None))));
    }

    #[test]
    fn excluded_rules_win_and_selectors_filter() {
        let m = Matcher::of(Some(&json!({
            "resourceRules": [deployments_rule()],
            "excludeResourceRules": [{"apiGroups": ["*"], "apiVersions": ["*"],
                "operations": ["*"], "resources": ["*"], "resourceNames": ["skip"]}],
            "objectSelector": {"matchLabels": {"team": "x"}}})));
        let labelled = json!({"metadata": {"labels": {"team": "x"}}});
        let other = json!({"metadata": {"labels": {"team": "y"}}});
        assert!(matches!(m.matches(&request("CREATE", "ns", "a", &labelled)), Ok(Some(None))));
        assert!(matches!(m.matches(&request("CREATE", "ns", "skip", &labelled)), Ok(None)));
        assert!(matches!(m.matches(&request("CREATE", "ns", "a", &other)), Ok(None)));
    }

    #[test]
    fn a_namespace_selector_looks_at_the_namespace_labels_and_exempts_nothing_cluster_scoped() {
        let m = Matcher::of(Some(&json!({"resourceRules": [deployments_rule()],
            "namespaceSelector": {"matchLabels": {"env": "prod"}}})));
        let obj = json!({});
        let prod = json!({"env": "prod"});
        let mut r = request("CREATE", "ns", "a", &obj);
        assert!(m.needs_namespace(&r));
        assert!(matches!(m.matches(&r), Ok(None)));
        r.namespace_labels = prod.as_object();
        assert!(matches!(m.matches(&r), Ok(Some(None))));
        let cluster = request("CREATE", "", "a", &obj);
        assert!(!m.needs_namespace(&cluster));
        assert!(matches!(m.matches(&cluster), Ok(Some(None))));
    }

    #[test]
    fn a_broken_selector_is_an_error_only_where_the_rules_select() {
        let m = Matcher::of(Some(&json!({"resourceRules": [deployments_rule()],
            "objectSelector": {"matchExpressions": [{"key": "a", "operator": "Bogus"}]}})));
        let obj = json!({});
        assert!(m.matches(&request("CREATE", "ns", "a", &obj)).is_err());
        assert!(matches!(m.matches(&request("DELETE", "ns", "a", &obj)), Ok(None)));
    }
}
