//! The policy's ClusterRoleBindings (upstream's `ClusterRoleBindings()`) and its
//! namespaced Roles and RoleBindings in kube-system and kube-public (upstream's
//! namespace policy: the authentication-config reader, leader locking, the bootstrap
//! token signer and cleaner, the cloud provider).

use super::{API_VERSION, EVENTS, GROUP, READ, Rule, metadata, named, r};
use serde_json::{Value, json};

/// Who a binding grants its role to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Subject {
    User(&'static str),
    Group(&'static str),
    /// A service account: namespace, name.
    Sa(&'static str, &'static str),
}

impl Subject {
    fn to_json(self) -> Value {
        match self {
            Subject::User(n) => json!({"apiGroup": GROUP, "kind": "User", "name": n}),
            Subject::Group(n) => json!({"apiGroup": GROUP, "kind": "Group", "name": n}),
            Subject::Sa(ns, n) => json!({"kind": "ServiceAccount", "name": n, "namespace": ns}),
        }
    }
}

/// One binding: `namespace` is None for a ClusterRoleBinding (whose role is a
/// ClusterRole); a namespaced binding's role is a Role of its namespace.
pub(super) struct BindingRow {
    name: &'static str,
    namespace: Option<&'static str>,
    role: &'static str,
    subjects: &'static [Subject],
}

impl BindingRow {
    pub(super) fn to_json(&self) -> Value {
        let kind = if self.namespace.is_some() { "Role" } else { "ClusterRole" };
        binding_json(self.name, self.namespace, kind, self.role, self.subjects)
    }
}

/// A (Cluster)RoleBinding object; no subjects leaves `subjects` out, as upstream's
/// `system:node` binding.
pub(super) fn binding_json(
    name: &str,
    namespace: Option<&str>,
    role_kind: &str,
    role: &str,
    subjects: &[Subject],
) -> Value {
    let kind = if namespace.is_some() { "RoleBinding" } else { "ClusterRoleBinding" };
    let mut o = json!({"apiVersion": API_VERSION, "kind": kind,
        "metadata": metadata(name, namespace, &[]),
        "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role}});
    if !subjects.is_empty() {
        o["subjects"] = Value::Array(subjects.iter().map(|s| s.to_json()).collect());
    }
    o
}

const fn crb(name: &'static str, subjects: &'static [Subject]) -> BindingRow {
    BindingRow { name, namespace: None, role: name, subjects }
}

const AUTHENTICATED: Subject = Subject::Group("system:authenticated");
const KCM: Subject = Subject::User("system:kube-controller-manager");
const SCHEDULER: Subject = Subject::User("system:kube-scheduler");

pub(super) const CLUSTER_ROLE_BINDINGS: &[BindingRow] = &[
    crb("cluster-admin", &[Subject::Group("system:masters")]),
    crb("system:monitoring", &[Subject::Group("system:monitoring")]),
    crb("system:discovery", &[AUTHENTICATED]),
    crb("system:basic-user", &[AUTHENTICATED]),
    crb("system:public-info-viewer", &[AUTHENTICATED, Subject::Group("system:unauthenticated")]),
    crb("system:node-proxier", &[Subject::User("system:kube-proxy")]),
    crb("system:kube-controller-manager", &[KCM]),
    crb("system:kube-dns", &[Subject::Sa("kube-system", "kube-dns")]),
    crb("system:kube-scheduler", &[SCHEDULER]),
    crb("system:volume-scheduler", &[SCHEDULER]),
    // Kept without subjects since the Node authorizer took over (upstream).
    crb("system:node", &[]),
    crb("system:service-account-issuer-discovery", &[Subject::Group("system:serviceaccounts")]),
];

const CORE: &[&str] = &[""];
const COORDINATION: &[&str] = &["coordination.k8s.io"];
const LEADER_LOCKING: &[Rule] = &[
    r(COORDINATION, "leases", "create get list update watch"),
    r(COORDINATION, "leasecandidates", "create get list update watch"),
];

/// Namespace, name, rules.
pub(super) const NAMESPACE_ROLES: &[(&str, &str, &[Rule])] = &[
    (
        "kube-system",
        "extension-apiserver-authentication-reader",
        &[named(CORE, "configmaps", "extension-apiserver-authentication", READ)],
    ),
    ("kube-system", "system::leader-locking-kube-controller-manager", LEADER_LOCKING),
    ("kube-system", "system::leader-locking-kube-scheduler", LEADER_LOCKING),
    ("kube-system", "system:controller:bootstrap-signer", &[r(CORE, "secrets", READ)]),
    (
        "kube-system",
        "system:controller:cloud-provider",
        &[r(CORE, "configmaps", "create get list watch")],
    ),
    (
        "kube-system",
        "system:controller:token-cleaner",
        &[r(CORE, "secrets", "delete get list watch"), EVENTS],
    ),
    (
        "kube-public",
        "system:controller:bootstrap-signer",
        &[r(CORE, "configmaps", READ), named(CORE, "configmaps", "cluster-info", "update"), EVENTS],
    ),
];

const fn rb(
    namespace: &'static str,
    name: &'static str,
    role: &'static str,
    subjects: &'static [Subject],
) -> BindingRow {
    BindingRow { name, namespace: Some(namespace), role, subjects }
}

const fn sa(name: &'static str) -> Subject {
    Subject::Sa("kube-system", name)
}

pub(super) const NAMESPACE_ROLE_BINDINGS: &[BindingRow] = &[
    rb(
        "kube-system",
        "system::extension-apiserver-authentication-reader",
        "extension-apiserver-authentication-reader",
        &[KCM, SCHEDULER],
    ),
    rb(
        "kube-system",
        "system::leader-locking-kube-controller-manager",
        "system::leader-locking-kube-controller-manager",
        &[KCM, sa("kube-controller-manager"), sa("leader-election-controller")],
    ),
    rb(
        "kube-system",
        "system::leader-locking-kube-scheduler",
        "system::leader-locking-kube-scheduler",
        &[SCHEDULER, sa("kube-scheduler")],
    ),
    rb(
        "kube-system",
        "system:controller:bootstrap-signer",
        "system:controller:bootstrap-signer",
        &[sa("bootstrap-signer")],
    ),
    rb(
        "kube-system",
        "system:controller:cloud-provider",
        "system:controller:cloud-provider",
        &[sa("cloud-provider")],
    ),
    rb(
        "kube-system",
        "system:controller:token-cleaner",
        "system:controller:token-cleaner",
        &[sa("token-cleaner")],
    ),
    rb(
        "kube-public",
        "system:controller:bootstrap-signer",
        "system:controller:bootstrap-signer",
        &[sa("bootstrap-signer")],
    ),
];
