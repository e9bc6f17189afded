//! Upstream kube-apiserver's RBAC bootstrap policy (v1.35 defaults) as kapi's own compact
//! tables, and the objects they expand into.
//!
//! Files: `roles` (cluster roles: cluster-admin, admin/edit/view and their aggregate-to
//! roles, every `system:*` role), `controllers` (the `system:controller:*` roles that
//! kube-controller-manager with `--use-service-account-credentials` uses, each bound to
//! its kube-system service account), `bindings` (cluster role bindings and the namespaced
//! roles and bindings in kube-system and kube-public) and `reconcile` (what the server does
//! with the policy at start, adding rules the stored roles lack by `authz::covers`).
//!
//! Invariants: every expanded object carries `kubernetes.io/bootstrapping: rbac-defaults`
//! and `rbac.authorization.kubernetes.io/autoupdate: "true"`; names are unique per kind
//! and namespace; every binding's roleRef names a role of the policy; rule lists are
//! sorted as upstream's rule builder sorts them.

mod bindings;
mod controllers;
mod reconcile;
mod roles;

pub use reconcile::reconcile;
use serde_json::{Map, Value, json};

pub const GROUP: &str = "rbac.authorization.k8s.io";
pub const API_VERSION: &str = "rbac.authorization.k8s.io/v1";
pub const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";
pub const BOOTSTRAPPING: &str = "kubernetes.io/bootstrapping";
pub const AGGREGATE_TO: &str = "rbac.authorization.k8s.io/aggregate-to-";
const CONTROLLER_PREFIX: &str = "system:controller:";

/// One policy rule in the tables' compact form: apiGroups as a slice (the core group is
/// `""`), resources, resourceNames, nonResourceURLs and verbs as space-separated lists.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    groups: &'static [&'static str],
    resources: &'static str,
    names: &'static str,
    urls: &'static str,
    verbs: &'static str,
}

/// A resource rule.
const fn r(groups: &'static [&'static str], resources: &'static str, verbs: &'static str) -> Rule {
    Rule { groups, resources, names: "", urls: "", verbs }
}

/// A resource rule limited to some object names.
const fn named(
    groups: &'static [&'static str],
    resources: &'static str,
    names: &'static str,
    verbs: &'static str,
) -> Rule {
    Rule { groups, resources, names, urls: "", verbs }
}

/// A non-resource URL rule.
const fn urls(urls: &'static str, verbs: &'static str) -> Rule {
    Rule { groups: &[], resources: "", names: "", urls, verbs }
}

/// Upstream's events rule, shared by most controllers and components.
const EVENTS: Rule = r(&["", "events.k8s.io"], "events", "create patch update");
const READ: &str = "get list watch";

fn sorted(items: impl Iterator<Item = &'static str>) -> Value {
    let mut v: Vec<&str> = items.collect();
    v.sort_unstable();
    json!(v)
}

impl Rule {
    fn to_json(self) -> Value {
        let mut o = Map::new();
        if self.urls.is_empty() {
            o.insert("apiGroups".into(), sorted(self.groups.iter().copied()));
            o.insert("resources".into(), sorted(self.resources.split_whitespace()));
            if !self.names.is_empty() {
                o.insert("resourceNames".into(), sorted(self.names.split_whitespace()));
            }
        } else {
            o.insert("nonResourceURLs".into(), sorted(self.urls.split_whitespace()));
        }
        o.insert("verbs".into(), sorted(self.verbs.split_whitespace()));
        Value::Object(o)
    }
}

fn rules_json(rules: &[Rule]) -> Value {
    Value::Array(rules.iter().map(|r| r.to_json()).collect())
}

/// The metadata every bootstrap object carries, plus `extra_labels`.
fn metadata(name: &str, namespace: Option<&str>, extra_labels: &[(String, &str)]) -> Value {
    let mut labels = Map::new();
    labels.insert(BOOTSTRAPPING.into(), json!("rbac-defaults"));
    for (k, v) in extra_labels {
        labels.insert(k.clone(), json!(v));
    }
    let mut m = json!({"name": name, "labels": labels, "annotations": {AUTOUPDATE: "true"}});
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    m
}

/// Every default ClusterRole: the policy's roles, then the controllers' roles.
pub fn cluster_roles() -> Vec<Value> {
    let own = roles::CLUSTER_ROLES.iter().map(roles::ClusterRoleRow::to_json);
    let ctl = controllers::CONTROLLER_ROLES.iter().map(|(suffix, rules)| {
        let name = format!("{CONTROLLER_PREFIX}{suffix}");
        json!({"apiVersion": API_VERSION, "kind": "ClusterRole",
            "metadata": metadata(&name, None, &[]), "rules": rules_json(rules)})
    });
    own.chain(ctl).collect()
}

/// Every default ClusterRoleBinding: the policy's, then one per controller role binding it
/// to the controller's kube-system service account.
pub fn cluster_role_bindings() -> Vec<Value> {
    let own = bindings::CLUSTER_ROLE_BINDINGS.iter().map(bindings::BindingRow::to_json);
    let ctl = controllers::CONTROLLER_ROLES.iter().map(|(suffix, _)| {
        let name = format!("{CONTROLLER_PREFIX}{suffix}");
        let subjects = [bindings::Subject::Sa("kube-system", suffix)];
        bindings::binding_json(&name, None, "ClusterRole", &name, &subjects)
    });
    own.chain(ctl).collect()
}

/// Every default namespaced Role (kube-system, kube-public).
pub fn roles() -> Vec<Value> {
    bindings::NAMESPACE_ROLES
        .iter()
        .map(|(ns, name, rules)| {
            json!({"apiVersion": API_VERSION, "kind": "Role",
                "metadata": metadata(name, Some(ns), &[]), "rules": rules_json(rules)})
        })
        .collect()
}

/// Every default namespaced RoleBinding (kube-system, kube-public).
pub fn role_bindings() -> Vec<Value> {
    bindings::NAMESPACE_ROLE_BINDINGS.iter().map(bindings::BindingRow::to_json).collect()
}

#[cfg(test)]
mod tests;
