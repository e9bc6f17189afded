//! The RBAC authorizer's policy: every Role, ClusterRole, RoleBinding and
//! ClusterRoleBinding compiled into one immutable snapshot ([`Policy`]), rebuilt from the
//! watch caches when any of them moves (no store read per request), and the decision as
//! upstream's RBAC authorizer makes it: a request is allowed when a rule of a role bound
//! to the user (cluster-wide, or in the request's namespace) allows it; otherwise no
//! opinion, with the bindings whose roles are missing named in the reason. An allow
//! names the binding that granted it, as upstream's reason does (`RBAC: allowed by
//! ClusterRoleBinding "x" of ClusterRole "y" to User "z"`).
//!
//! A ClusterRole with an `aggregationRule` has the union of the rules of the
//! ClusterRoles its selectors match (what upstream's aggregation controller writes into
//! it; `aggregation.rs` writes them too so they can be read back).
//!
//! Invariant: what a user may do in a namespace is resolved once per snapshot and
//! identity on each core (a per-thread memo, bounded), so a cached identity costs one
//! hash probe and a scan of its rules.

use super::attributes::Attributes;
use super::rules::Rule;
use crate::auth::UserInfo;
use kapi_codec::selector::LabelSelector;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// Who a binding names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    User(String),
    Group(String),
    /// A ServiceAccount: its user name (`system:serviceaccount:NS:NAME`) and how
    /// upstream describes it (`NAME/NS`).
    ServiceAccount(String, String),
}

impl Subject {
    /// A binding's subject; a ServiceAccount's namespace defaults to the binding's.
    fn from_json(s: &Value, binding_ns: &str) -> Option<Subject> {
        let name = s.get("name")?.as_str()?.to_string();
        match s.get("kind")?.as_str()? {
            "User" => Some(Subject::User(name)),
            "Group" => Some(Subject::Group(name)),
            "ServiceAccount" => {
                let ns = s.get("namespace").and_then(Value::as_str).filter(|n| !n.is_empty());
                let ns = ns.unwrap_or(binding_ns);
                (!ns.is_empty()).then(|| {
                    let user = format!("system:serviceaccount:{ns}:{name}");
                    Subject::ServiceAccount(user, format!("{name}/{ns}"))
                })
            }
            _ => None,
        }
    }

    fn applies_to(&self, u: &UserInfo) -> bool {
        match self {
            Subject::User(n) | Subject::ServiceAccount(n, _) => *n == u.name,
            Subject::Group(g) => u.groups.iter().any(|x| x == g),
        }
    }

    /// As upstream's `describeSubject`: `User "alice"`, `ServiceAccount "sa/ns"`.
    fn describe(&self) -> String {
        match self {
            Subject::User(n) => format!("User {n:?}"),
            Subject::Group(g) => format!("Group {g:?}"),
            Subject::ServiceAccount(_, d) => format!("ServiceAccount {d:?}"),
        }
    }
}

/// What a binding grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRef {
    ClusterRole(String),
    Role(String),
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub namespace: String,
    pub name: String,
    pub role: RoleRef,
    pub subjects: Vec<Subject>,
}

impl Binding {
    fn from_json(b: &Value) -> Option<Binding> {
        let meta = b.get("metadata")?;
        let namespace = meta.get("namespace").and_then(Value::as_str).unwrap_or("").to_string();
        let name = meta.get("name").and_then(Value::as_str).unwrap_or("").to_string();
        let role_name = b.pointer("/roleRef/name")?.as_str()?.to_string();
        let role = match b.pointer("/roleRef/kind")?.as_str()? {
            "ClusterRole" => RoleRef::ClusterRole(role_name),
            "Role" => RoleRef::Role(role_name),
            _ => return None,
        };
        let subjects = b.get("subjects").and_then(Value::as_array);
        let subjects = subjects
            .into_iter()
            .flatten()
            .filter_map(|s| Subject::from_json(s, &namespace))
            .collect();
        Some(Binding { namespace, name, role, subjects })
    }

    /// The first of the binding's subjects that is `u`.
    fn subject_for(&self, u: &UserInfo) -> Option<&Subject> {
        self.subjects.iter().find(|s| s.applies_to(u))
    }

    /// As upstream's binding describers: `ClusterRoleBinding "b" of ClusterRole "r" to
    /// User "u"`, `RoleBinding "b/ns" of Role "r" to ...`.
    fn describe(&self, subject: &Subject) -> String {
        let (kind, role) = match &self.role {
            RoleRef::ClusterRole(r) => ("ClusterRole", r),
            RoleRef::Role(r) => ("Role", r),
        };
        let subject = subject.describe();
        match self.namespace.as_str() {
            "" => format!("ClusterRoleBinding {:?} of {kind} {role:?} to {subject}", self.name),
            ns => format!("RoleBinding \"{}/{ns}\" of {kind} {role:?} to {subject}", self.name),
        }
    }
}

/// The rules that apply to one identity in one namespace (cluster-wide ones included),
/// and the roles its bindings name that do not exist.
#[derive(Debug, Default)]
pub struct Resolved {
    pub rules: Vec<Arc<[Rule]>>,
    /// Upstream's allow reason for each of `rules` (the same index), naming what
    /// granted it.
    pub sources: Vec<Arc<str>>,
    pub missing: Vec<String>,
}

impl Resolved {
    pub fn allows(&self, a: &Attributes<'_>) -> bool {
        self.rules.iter().any(|rs| rs.iter().any(|r| r.allows(a)))
    }

    /// Upstream's reason for the first granted rule set that allows the request.
    pub fn allowed_by(&self, a: &Attributes<'_>) -> Option<Arc<str>> {
        let i = self.rules.iter().position(|rs| rs.iter().any(|r| r.allows(a)))?;
        self.sources.get(i).cloned()
    }

    /// Upstream's reason when nothing allowed the request (`RBAC: ... not found`).
    pub fn reason(&self) -> String {
        match self.missing.as_slice() {
            [] => String::new(),
            [one] => format!("RBAC: {one}"),
            many => format!("RBAC: [{}]", many.join(", ")),
        }
    }
}

/// One compiled snapshot of the RBAC objects.
#[derive(Debug, Default)]
pub struct Policy {
    /// Bumped on every rebuild; keys the per-thread memo.
    pub generation: u64,
    cluster_roles: HashMap<String, Arc<[Rule]>>,
    roles: HashMap<(String, String), Arc<[Rule]>>,
    cluster_bindings: Vec<Binding>,
    bindings: HashMap<String, Vec<Binding>>,
}

/// The four kinds of RBAC objects, as JSON.
#[derive(Debug, Default)]
pub struct Objects {
    pub cluster_roles: Vec<Value>,
    pub roles: Vec<Value>,
    pub cluster_role_bindings: Vec<Value>,
    pub role_bindings: Vec<Value>,
}

impl Policy {
    pub fn build(objects: &Objects, generation: u64) -> Policy {
        let mut policy = Policy { generation, ..Default::default() };
        for (name, rules) in aggregated_cluster_roles(&objects.cluster_roles) {
            policy.cluster_roles.insert(name, rules.into());
        }
        for r in &objects.roles {
            let meta = &r["metadata"];
            let (ns, name) = (text(&meta["namespace"]), text(&meta["name"]));
            policy.roles.insert((ns, name), Rule::all_of(r).into());
        }
        policy.cluster_bindings =
            objects.cluster_role_bindings.iter().filter_map(Binding::from_json).collect();
        for b in objects.role_bindings.iter().filter_map(Binding::from_json) {
            policy.bindings.entry(b.namespace.clone()).or_default().push(b);
        }
        policy
    }

    /// The rules of the ClusterRole `name` (aggregated ones included).
    pub fn cluster_role(&self, name: &str) -> Option<&Arc<[Rule]>> {
        self.cluster_roles.get(name)
    }

    /// The rules of the Role `namespace/name`.
    pub fn role(&self, namespace: &str, name: &str) -> Option<&Arc<[Rule]>> {
        self.roles.get(&(namespace.to_string(), name.to_string()))
    }

    /// What `user` is granted in `namespace` ("" for cluster-wide only).
    pub fn resolve(&self, user: &UserInfo, namespace: &str) -> Resolved {
        let mut out = Resolved::default();
        for b in &self.cluster_bindings {
            self.grant(b, user, &mut out);
        }
        if !namespace.is_empty() {
            for b in self.bindings.get(namespace).into_iter().flatten() {
                self.grant(b, user, &mut out);
            }
        }
        out
    }

    /// The rules of `b`'s role, when `b` binds `user`.
    fn grant(&self, b: &Binding, user: &UserInfo, out: &mut Resolved) {
        let Some(subject) = b.subject_for(user) else { return };
        let found = match &b.role {
            RoleRef::ClusterRole(n) => self
                .cluster_roles
                .get(n)
                .ok_or_else(|| format!("clusterrole.rbac.authorization.k8s.io {n:?} not found")),
            RoleRef::Role(n) => self
                .roles
                .get(&(b.namespace.clone(), n.clone()))
                .ok_or_else(|| format!("role.rbac.authorization.k8s.io {n:?} not found")),
        };
        match found {
            Ok(rules) => {
                out.rules.push(rules.clone());
                out.sources.push(format!("RBAC: allowed by {}", b.describe(subject)).into());
            }
            Err(e) => out.missing.push(e),
        }
    }

    /// Whether the policy allows the request, and the reason when it does not.
    pub fn authorize(&self, a: &Attributes<'_>) -> Result<(), String> {
        let resolved = memo(self, a.user, a.namespace);
        if resolved.allows(a) { Ok(()) } else { Err(resolved.reason()) }
    }

    /// [`Policy::authorize`] with upstream's reason for an allow too (the binding that
    /// granted it), for those who show it (the CEL `authorizer`'s `reason()`).
    pub fn explain(&self, a: &Attributes<'_>) -> Result<Arc<str>, String> {
        let resolved = memo(self, a.user, a.namespace);
        resolved.allowed_by(a).ok_or_else(|| resolved.reason())
    }
}

/// Identities and namespaces resolved per core before the memo starts over.
const MEMO_LIMIT: usize = 16 * 1024;

type MemoKey = (String, Vec<String>, String);

thread_local! {
    static MEMO: RefCell<(u64, HashMap<MemoKey, Arc<Resolved>>)> =
        RefCell::new((u64::MAX, HashMap::new()));
}

/// `policy.resolve(user, namespace)`, memoized on this thread for this snapshot.
fn memo(policy: &Policy, user: &UserInfo, namespace: &str) -> Arc<Resolved> {
    MEMO.with(|m| {
        let mut m = m.borrow_mut();
        if m.0 != policy.generation || m.1.len() >= MEMO_LIMIT {
            *m = (policy.generation, HashMap::new());
        }
        let key = (user.name.clone(), user.groups.clone(), namespace.to_string());
        if let Some(r) = m.1.get(&key) {
            return r.clone();
        }
        let r = Arc::new(policy.resolve(user, namespace));
        m.1.insert(key, r.clone());
        r
    })
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// Every ClusterRole's rules by name: its own, or for one with an `aggregationRule` the
/// union (first occurrence order, no duplicates) of the rules of the ClusterRoles its
/// selectors match, as upstream's aggregation controller computes them.
pub fn aggregated_cluster_roles(roles: &[Value]) -> Vec<(String, Vec<Rule>)> {
    roles
        .iter()
        .map(|r| {
            let name = text(&r["metadata"]["name"]);
            let rules = match r.get("aggregationRule") {
                Some(agg) => aggregate(agg, &name, roles),
                None => Rule::all_of(r),
            };
            (name, rules)
        })
        .collect()
}

/// The rules an aggregation rule gathers (roles that aggregate themselves are skipped).
pub fn aggregate(agg: &Value, own_name: &str, roles: &[Value]) -> Vec<Rule> {
    let selectors: Vec<LabelSelector> = agg
        .get("clusterRoleSelectors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| LabelSelector::from_object(s).ok())
        .collect();
    let mut names: Vec<&Value> = roles
        .iter()
        .filter(|r| text(&r["metadata"]["name"]) != own_name && r.get("aggregationRule").is_none())
        .filter(|r| {
            let labels = r.pointer("/metadata/labels").and_then(Value::as_object);
            selectors.iter().any(|s| s.matches(labels))
        })
        .collect();
    names.sort_by_key(|r| text(&r["metadata"]["name"]));
    let mut out: Vec<Rule> = Vec::new();
    for rule in names.into_iter().flat_map(Rule::all_of) {
        if !out.contains(&rule) {
            out.push(rule);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    fn attrs<'a>(u: &'a UserInfo, verb: &'a str, ns: &'a str, resource: &'a str) -> Attributes<'a> {
        Attributes {
            user: u,
            verb,
            resource_request: true,
            path: "",
            group: "",
            version: "v1",
            namespace: ns,
            resource,
            subresource: "",
            name: "",
            field_selector: "",
        }
    }

    fn objects() -> Objects {
        Objects {
            cluster_roles: vec![
                json!({"metadata": {"name": "pod-reader", "labels": {"agg": "x"}},
                    "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]}),
                json!({"metadata": {"name": "cm-writer", "labels": {"agg": "x"}},
                    "rules": [{"verbs": ["create"], "apiGroups": [""], "resources": ["configmaps"]}]}),
                json!({"metadata": {"name": "aggregate"}, "aggregationRule":
                    {"clusterRoleSelectors": [{"matchLabels": {"agg": "x"}}]}, "rules": []}),
            ],
            roles: vec![json!({"metadata": {"name": "secrets", "namespace": "team"},
                "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]})],
            cluster_role_bindings: vec![json!({"metadata": {"name": "readers"},
                "roleRef": {"kind": "ClusterRole", "name": "pod-reader"},
                "subjects": [{"kind": "Group", "name": "readers"}]})],
            role_bindings: vec![
                json!({"metadata": {"name": "s", "namespace": "team"},
                    "roleRef": {"kind": "Role", "name": "secrets"},
                    "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "bot"}]}),
                json!({"metadata": {"name": "agg", "namespace": "team"},
                    "roleRef": {"kind": "ClusterRole", "name": "aggregate"},
                    "subjects": [{"kind": "User", "name": "carol"}]}),
                json!({"metadata": {"name": "gone", "namespace": "team"},
                    "roleRef": {"kind": "ClusterRole", "name": "nope"},
                    "subjects": [{"kind": "User", "name": "alice"}]}),
            ],
        }
    }

    #[test]
    fn bindings_grant_their_roles_rules_cluster_wide_or_in_their_namespace() {
        let p = Policy::build(&objects(), 1);
        let reader = user("bob", &["readers"]);
        assert!(p.authorize(&attrs(&reader, "list", "any", "pods")).is_ok());
        assert!(p.authorize(&attrs(&reader, "list", "", "pods")).is_ok());
        assert!(p.authorize(&attrs(&reader, "delete", "any", "pods")).is_err());
        let alice = user("alice", &[]);
        assert!(p.authorize(&attrs(&alice, "get", "team", "secrets")).is_ok());
        assert!(p.authorize(&attrs(&alice, "get", "other", "secrets")).is_err());
        let bot = user("system:serviceaccount:team:bot", &[]);
        assert!(
            p.authorize(&attrs(&bot, "get", "team", "secrets")).is_ok(),
            "SA namespace defaults to the binding's"
        );
    }

    #[test]
    fn aggregated_roles_gather_the_selected_roles_rules() {
        let p = Policy::build(&objects(), 1);
        let carol = user("carol", &[]);
        assert!(p.authorize(&attrs(&carol, "get", "team", "pods")).is_ok());
        assert!(p.authorize(&attrs(&carol, "create", "team", "configmaps")).is_ok());
        assert!(p.authorize(&attrs(&carol, "delete", "team", "configmaps")).is_err());
    }

    #[test]
    fn an_allow_names_the_binding_role_and_subject_as_upstream() {
        let p = Policy::build(&objects(), 1);
        let reader = user("bob", &["readers"]);
        assert_eq!(
            &*p.explain(&attrs(&reader, "list", "any", "pods")).unwrap(),
            r#"RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "pod-reader" to Group "readers""#
        );
        let alice = user("alice", &[]);
        assert_eq!(
            &*p.explain(&attrs(&alice, "get", "team", "secrets")).unwrap(),
            r#"RBAC: allowed by RoleBinding "s/team" of Role "secrets" to User "alice""#
        );
        let bot = user("system:serviceaccount:team:bot", &[]);
        assert_eq!(
            &*p.explain(&attrs(&bot, "get", "team", "secrets")).unwrap(),
            r#"RBAC: allowed by RoleBinding "s/team" of Role "secrets" to ServiceAccount "bot/team""#
        );
    }

    #[test]
    fn a_binding_to_a_missing_role_is_named_in_the_reason() {
        let p = Policy::build(&objects(), 1);
        let alice = user("alice", &[]);
        let why = p.authorize(&attrs(&alice, "delete", "team", "pods")).unwrap_err();
        assert_eq!(why, r#"RBAC: clusterrole.rbac.authorization.k8s.io "nope" not found"#);
        let stranger = user("zed", &[]);
        assert_eq!(p.authorize(&attrs(&stranger, "get", "team", "pods")).unwrap_err(), "");
    }
}
