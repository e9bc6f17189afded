//! A FlowSchema compiled for matching, and upstream's matching rules (`match.go`): a
//! request matches a FlowSchema when one of its rules matches; a rule matches when one of
//! its subjects matches the user and, for a resource request, one of its resource rules
//! matches (verbs, apiGroups, `resource` or `resource/subresource`, then a namespaced
//! request's namespace in `namespaces` or a cluster-scoped one with `clusterScope`), or,
//! for a non-resource request, one of its non-resource rules (verbs, then the path equal
//! to a URL, or under it: `/healthz` also covers `/healthz/etcd`, `/apis/*` covers
//! `/apis/x`).
//!
//! Invariants: a list holds the wildcard (`*`) only as its single member (upstream's
//! validation; a wildcard among other entries matches only itself, as upstream);
//! matching allocates nothing.

use crate::auth::UserInfo;
use crate::request::RequestInfo;
use serde_json::Value;

/// `distinguisherMethod.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distinguisher {
    None,
    ByUser,
    ByNamespace,
}

impl Distinguisher {
    /// The distinguisher of a request by this method (empty for `None`).
    pub fn of<'a>(self, user: &'a UserInfo, info: &'a RequestInfo) -> &'a str {
        match self {
            Distinguisher::None => "",
            Distinguisher::ByUser => &user.name,
            Distinguisher::ByNamespace => info.namespace.as_deref().unwrap_or_default(),
        }
    }
}

/// A string list of a rule: every value (the list is `["*"]`) or some.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum List {
    Any,
    Of(Vec<String>),
}

impl List {
    fn from_json(v: &Value) -> List {
        let items: Vec<String> = strings(v);
        if items.len() == 1 && items[0] == "*" { List::Any } else { List::Of(items) }
    }

    fn contains(&self, x: &str) -> bool {
        match self {
            List::Any => true,
            List::Of(items) => items.iter().any(|y| y == x),
        }
    }

    /// Whether the list holds `resource` (no subresource) or `resource/subresource`.
    fn contains_resource(&self, resource: &str, sub: Option<&str>) -> bool {
        let List::Of(items) = self else { return true };
        items.iter().any(|y| match sub {
            None | Some("") => y == resource,
            Some(sub) => y
                .strip_prefix(resource)
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|rest| rest == sub),
        })
    }
}

fn strings(v: &Value) -> Vec<String> {
    let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
    items.iter().filter_map(Value::as_str).map(String::from).collect()
}

fn text<'a>(v: &'a Value, path: &str) -> &'a str {
    v.pointer(path).and_then(Value::as_str).unwrap_or_default()
}

/// A subject of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A user name, or `*`.
    User(String),
    /// A group name, or `*`.
    Group(String),
    /// A service account's namespace and name (`*`: any in the namespace).
    ServiceAccount(String, String),
    /// A kind upstream does not know, or its member missing: matches nobody.
    Nobody,
}

const SA_PREFIX: &str = "system:serviceaccount:";

impl Subject {
    fn from_json(v: &Value) -> Subject {
        let has = |field: &str| v.get(field).is_some_and(Value::is_object);
        match text(v, "/kind") {
            "User" if has("user") => Subject::User(text(v, "/user/name").into()),
            "Group" if has("group") => Subject::Group(text(v, "/group/name").into()),
            "ServiceAccount" if has("serviceAccount") => Subject::ServiceAccount(
                text(v, "/serviceAccount/namespace").into(),
                text(v, "/serviceAccount/name").into(),
            ),
            _ => Subject::Nobody,
        }
    }

    fn matches(&self, user: &UserInfo) -> bool {
        match self {
            Subject::User(name) => name == "*" || *name == user.name,
            Subject::Group(name) => name == "*" || user.groups.iter().any(|g| g == name),
            Subject::ServiceAccount(ns, name) => {
                let Some(rest) = user.name.strip_prefix(SA_PREFIX) else { return false };
                let Some(rest) = rest.strip_prefix(ns.as_str()) else { return false };
                let Some(rest) = rest.strip_prefix(':') else { return false };
                name == "*" || rest == name
            }
            Subject::Nobody => false,
        }
    }
}

/// A `resourceRules` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRule {
    verbs: List,
    groups: List,
    resources: List,
    cluster_scope: bool,
    namespaces: List,
}

impl ResourceRule {
    fn from_json(v: &Value) -> ResourceRule {
        ResourceRule {
            verbs: List::from_json(&v["verbs"]),
            groups: List::from_json(&v["apiGroups"]),
            resources: List::from_json(&v["resources"]),
            cluster_scope: v["clusterScope"].as_bool().unwrap_or(false),
            namespaces: List::from_json(&v["namespaces"]),
        }
    }

    fn matches(&self, info: &RequestInfo) -> bool {
        if !self.verbs.contains(&info.verb)
            || !self.resources.contains_resource(&info.resource, info.subresource.as_deref())
            || !self.groups.contains(&info.group)
        {
            return false;
        }
        match info.namespace.as_deref() {
            None | Some("") => self.cluster_scope,
            Some(ns) => self.namespaces.contains(ns),
        }
    }
}

/// A `nonResourceRules` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonResourceRule {
    verbs: List,
    urls: Vec<String>,
}

impl NonResourceRule {
    fn from_json(v: &Value) -> NonResourceRule {
        NonResourceRule {
            verbs: List::from_json(&v["verbs"]),
            urls: strings(&v["nonResourceURLs"]),
        }
    }

    fn matches(&self, info: &RequestInfo) -> bool {
        self.verbs.contains(&info.verb) && self.urls.iter().any(|u| url_matches(u, &info.path))
    }
}

/// Upstream's URL rule: `*`, the path itself, or a prefix ending in `/` once a trailing
/// `*` is dropped and a `/` added.
fn url_matches(rule: &str, path: &str) -> bool {
    if rule == "*" || rule == path {
        return true;
    }
    let prefix = rule.strip_suffix('*').unwrap_or(rule);
    match prefix.strip_suffix('/') {
        Some(_) => path.starts_with(prefix),
        None => path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/')),
    }
}

/// A `rules` entry: subjects and what they do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    subjects: Vec<Subject>,
    resource: Vec<ResourceRule>,
    non_resource: Vec<NonResourceRule>,
}

impl Rule {
    fn from_json(v: &Value) -> Rule {
        let items = |field: &str| v[field].as_array().map(Vec::as_slice).unwrap_or_default();
        Rule {
            subjects: items("subjects").iter().map(Subject::from_json).collect(),
            resource: items("resourceRules").iter().map(ResourceRule::from_json).collect(),
            non_resource: items("nonResourceRules")
                .iter()
                .map(NonResourceRule::from_json)
                .collect(),
        }
    }

    fn matches(&self, user: &UserInfo, info: &RequestInfo) -> bool {
        if !self.subjects.iter().any(|s| s.matches(user)) {
            return false;
        }
        if info.is_resource {
            self.resource.iter().any(|r| r.matches(info))
        } else {
            self.non_resource.iter().any(|r| r.matches(info))
        }
    }
}

/// A FlowSchema's spec, compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    pub name: String,
    pub uid: String,
    pub level: String,
    pub precedence: i64,
    pub distinguisher: Distinguisher,
    rules: Vec<Rule>,
}

/// Upstream's default `matchingPrecedence`.
const DEFAULT_PRECEDENCE: i64 = 1000;

impl Schema {
    pub fn from_json(fs: &Value) -> Schema {
        let spec = &fs["spec"];
        let distinguisher = match text(spec, "/distinguisherMethod/type") {
            "ByUser" => Distinguisher::ByUser,
            "ByNamespace" => Distinguisher::ByNamespace,
            _ => Distinguisher::None,
        };
        let precedence = match spec["matchingPrecedence"].as_i64() {
            None | Some(0) => DEFAULT_PRECEDENCE,
            Some(p) => p,
        };
        let rules = spec["rules"].as_array().map(Vec::as_slice).unwrap_or_default();
        Schema {
            name: text(fs, "/metadata/name").into(),
            uid: text(fs, "/metadata/uid").into(),
            level: text(spec, "/priorityLevelConfiguration/name").into(),
            precedence,
            distinguisher,
            rules: rules.iter().map(Rule::from_json).collect(),
        }
    }

    pub fn matches(&self, user: &UserInfo, info: &RequestInfo) -> bool {
        self.rules.iter().any(|r| r.matches(user, info))
    }

    /// The flow distinguisher of a request (empty without a method).
    pub fn distinguisher_of<'a>(&self, user: &'a UserInfo, info: &'a RequestInfo) -> &'a str {
        self.distinguisher.of(user, info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn url_rules_cover_the_path_and_what_is_under_it() {
        assert!(url_matches("*", "/anything"));
        assert!(url_matches("/healthz", "/healthz"));
        assert!(url_matches("/healthz", "/healthz/etcd"));
        assert!(!url_matches("/healthz", "/healthzz"));
        assert!(url_matches("/apis/*", "/apis/apps"));
        assert!(url_matches("/apis/*", "/apis/"));
        assert!(!url_matches("/apis/*", "/apis"));
        assert!(url_matches("/metrics/", "/metrics/x"));
    }

    #[test]
    fn a_wildcard_among_other_entries_matches_only_itself() {
        let l = List::from_json(&json!(["get", "*"]));
        assert!(!l.contains("list"));
        assert!(l.contains("*"));
        assert!(List::from_json(&json!(["*"])).contains("list"));
        assert!(!List::from_json(&json!([])).contains("list"));
    }

    #[test]
    fn resources_name_subresources_with_a_slash() {
        let l = List::from_json(&json!(["nodes", "nodes/status"]));
        assert!(l.contains_resource("nodes", None));
        assert!(l.contains_resource("nodes", Some("status")));
        assert!(!l.contains_resource("nodes", Some("proxy")));
        let only_status = List::from_json(&json!(["nodes/status"]));
        assert!(!only_status.contains_resource("nodes", None));
    }

    #[test]
    fn service_account_subjects_match_the_username_form() {
        let user = |name: &str| UserInfo { name: name.into(), ..Default::default() };
        let any = Subject::ServiceAccount("kube-system".into(), "*".into());
        assert!(any.matches(&user("system:serviceaccount:kube-system:default")));
        assert!(!any.matches(&user("system:serviceaccount:kube-systemx:default")));
        assert!(!any.matches(&user("kube-system:default")));
        let one = Subject::ServiceAccount("ns".into(), "a".into());
        assert!(one.matches(&user("system:serviceaccount:ns:a")));
        assert!(!one.matches(&user("system:serviceaccount:ns:ab")));
        let missing = Subject::from_json(&json!({"kind": "User"}));
        assert_eq!(missing, Subject::Nobody);
    }
}
