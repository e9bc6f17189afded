//! The Node authorizer (upstream's NodeAuthorizer, v1.35 with AuthorizeNodeWithSelectors):
//! a kubelet (`system:node:NAME` in `system:nodes`) may read only the objects related
//! to its node — its Node, the Pods bound to it, and the Secrets, ConfigMaps,
//! PersistentVolumeClaims, PersistentVolumes, ServiceAccounts (tokens) and
//! ResourceClaims those pods use — its own Lease and CSINode, the VolumeAttachments
//! and ResourceSlices naming it; everything else by the static node rules (the
//! `system:node` ClusterRole's). Other users get no opinion.
//!
//! The relations are answered from the graph (`node_graph`) that `node_follow` keeps
//! current from the watch caches' events: a decision is a lookup under the graph's read
//! lock (held for a few hash probes), with no store read, no cache scan and no object
//! parsed. Until the graph has synced a resource (its cache still loading), that
//! resource's relations are not found ("no relationship found"), as when decisions read
//! a loading cache.

use super::attributes::Attributes;
use super::node_graph::{ANY_NAMESPACE, NodeGraph, VKind};
use super::rules::Rule;
use crate::app::App;
use parking_lot::RwLock;
use std::sync::{Arc, OnceLock};

/// The Node authorizer: the graph of what each node may reach, and the static node
/// rules.
#[derive(Default)]
pub struct Graph {
    index: Arc<RwLock<NodeGraph>>,
    rules: OnceLock<Vec<Rule>>,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph").finish_non_exhaustive()
    }
}

/// A verdict: Some(true) allow, None no opinion; with the reason.
pub type Verdict = (Option<bool>, String);

fn no(reason: impl Into<String>) -> Verdict {
    (None, reason.into())
}

const ALLOW: fn() -> Verdict = || (Some(true), String::new());

/// The node a user is, as upstream's node identifier decides: in `system:nodes` with a
/// `system:node:` name. Some("") for a node user whose name does not say which node.
pub fn node_identity(user: &crate::auth::UserInfo) -> Option<&str> {
    if !user.groups.iter().any(|g| g == "system:nodes") {
        return None;
    }
    Some(user.name.strip_prefix("system:node:").unwrap_or(""))
}

impl Graph {
    /// Start keeping the graph current from `app`'s watch caches (`node_follow`).
    pub fn start(&self, app: Arc<App>) -> std::io::Result<()> {
        super::node_follow::start(app, self.index.clone())
    }

    /// The graph decisions read (the follower and tests write it).
    pub fn index(&self) -> &Arc<RwLock<NodeGraph>> {
        &self.index
    }

    /// The rules every node has (the `system:node` ClusterRole's).
    pub fn set_rules(&self, rules: Vec<Rule>) {
        let _ = self.rules.set(rules);
    }

    pub fn authorize(&self, a: &Attributes<'_>, _policy: &super::rbac::Policy) -> Verdict {
        let Some(node) = node_identity(a.user) else { return no("") };
        if node.is_empty() {
            return no(format!("unknown node for user {:?}", a.user.name));
        }
        if a.resource_request
            && let Some(v) = self.subdivided(node, a)
        {
            return v;
        }
        let rules = self.rules.get().map(Vec::as_slice).unwrap_or_default();
        if rules.iter().any(|r| r.allows(a)) { ALLOW() } else { no("") }
    }

    /// The resources whose access is subdivided by relation to the node.
    fn subdivided(&self, node: &str, a: &Attributes<'_>) -> Option<Verdict> {
        let v = match (a.group, a.resource) {
            ("", "secrets") => self.read_namespaced(node, Kind::Secret, a),
            ("", "configmaps") => self.read_namespaced(node, Kind::ConfigMap, a),
            ("", "persistentvolumeclaims") if a.subresource == "status" => match a.verb {
                "update" | "patch" => self.related(node, Kind::Pvc, a),
                _ => no("can only get/update/patch this type"),
            },
            ("", "persistentvolumeclaims") => self.get(node, Kind::Pvc, a),
            ("", "persistentvolumes") => self.get(node, Kind::Pv, a),
            ("resource.k8s.io", "resourceclaims") => self.get(node, Kind::Claim, a),
            ("storage.k8s.io", "volumeattachments") => self.get(node, Kind::VolumeAttachment, a),
            ("", "serviceaccounts") => self.create_token(node, a),
            ("coordination.k8s.io", "leases") => {
                named_own(node, a, "kube-node-lease", "a node lease")
            }
            ("storage.k8s.io", "csinodes") => csinode(node, a),
            ("resource.k8s.io", "resourceslices") => self.resource_slice(node, a),
            ("", "nodes") => own_node(node, a),
            ("", "pods") => self.pod(node, a),
            _ => return None,
        };
        Some(v)
    }

    fn get(&self, node: &str, kind: Kind, a: &Attributes<'_>) -> Verdict {
        if a.verb != "get" {
            return no("can only get individual resources of this type");
        }
        if !a.subresource.is_empty() {
            return no("cannot get subresource");
        }
        self.related(node, kind, a)
    }

    fn read_namespaced(&self, node: &str, kind: Kind, a: &Attributes<'_>) -> Verdict {
        if !matches!(a.verb, "get" | "list" | "watch") {
            return no("can only read resources of this type");
        }
        if !a.subresource.is_empty() {
            return no("cannot read subresource");
        }
        if a.namespace.is_empty() {
            return no("can only read namespaced object of this type");
        }
        self.related(node, kind, a)
    }

    fn create_token(&self, node: &str, a: &Attributes<'_>) -> Verdict {
        if a.verb != "create" || a.name.is_empty() {
            return no("can only create tokens for individual service accounts");
        }
        if a.subresource != "token" {
            return no("can only create token subresource of serviceaccount");
        }
        self.related(node, Kind::ServiceAccount, a)
    }

    fn resource_slice(&self, node: &str, a: &Attributes<'_>) -> Verdict {
        if !a.subresource.is_empty() {
            return no("cannot authorize ResourceSlice subresources");
        }
        match a.verb {
            "create" => ALLOW(),
            "get" | "update" | "patch" | "delete" => self.related(node, Kind::Slice, a),
            "watch" | "list" | "deletecollection" if a.field_equals("spec.nodeName", node) => {
                ALLOW()
            }
            "watch" | "list" | "deletecollection" => no(
                "can only list/watch/deletecollection resourceslices with nodeName field selector",
            ),
            _ => no(
                "only the following verbs are allowed for a ResourceSlice: get, watch, list, create, update, patch, delete, deletecollection",
            ),
        }
    }

    fn pod(&self, node: &str, a: &Attributes<'_>) -> Verdict {
        match (a.subresource, a.verb) {
            ("", "get") => self.get(node, Kind::Pod, a),
            ("", "list" | "watch") if a.field_equals("spec.nodeName", node) => ALLOW(),
            ("", "list" | "watch") if !a.name.is_empty() => self.related(node, Kind::Pod, a),
            ("", "list" | "watch") => {
                no("can only list/watch pods with spec.nodeName field selector")
            }
            ("", "create" | "delete") | ("status", "update" | "patch") | ("eviction", "create") => {
                ALLOW()
            }
            _ => no(""),
        }
    }

    /// Whether the object the request names is related to `node`.
    fn related(&self, node: &str, kind: Kind, a: &Attributes<'_>) -> Verdict {
        if a.name.is_empty() {
            return no("No Object name found");
        }
        if self.reaches(node, kind, a.namespace, a.name) {
            ALLOW()
        } else {
            no(format!("no relationship found between node '{node}' and this object"))
        }
    }
}

impl Graph {
    /// Whether the object has a path to `node` in the graph.
    fn reaches(&self, node: &str, kind: Kind, ns: &str, name: &str) -> bool {
        let g = self.index.read();
        let (kind, ns) = match kind {
            Kind::Pod => (VKind::Pod, ns),
            Kind::Secret if g.reaches(VKind::Secret, ANY_NAMESPACE, name, node) => return true,
            Kind::Secret => (VKind::Secret, ns),
            Kind::ConfigMap => (VKind::ConfigMap, ns),
            Kind::Pvc => (VKind::Pvc, ns),
            Kind::ServiceAccount => (VKind::ServiceAccount, ns),
            Kind::Claim => (VKind::Claim, ns),
            // Cluster-scoped.
            Kind::Pv => (VKind::Pv, ""),
            Kind::VolumeAttachment => (VKind::VolumeAttachment, ""),
            Kind::Slice => (VKind::Slice, ""),
        };
        g.reaches(kind, ns, name, node)
    }
}

fn named_own(node: &str, a: &Attributes<'_>, namespace: &str, what: &str) -> Verdict {
    if !matches!(a.verb, "get" | "create" | "update" | "patch" | "delete") {
        return no(format!("can only get, create, update, patch, or delete {what}"));
    }
    if a.namespace != namespace {
        return no(format!("can only access leases in the {namespace:?} system namespace"));
    }
    if a.verb != "create" && a.name != node {
        return no("can only access node lease with the same name as the requesting node");
    }
    ALLOW()
}

fn csinode(node: &str, a: &Attributes<'_>) -> Verdict {
    if !matches!(a.verb, "get" | "create" | "update" | "patch" | "delete") {
        return no("can only get, create, update, patch, or delete a CSINode");
    }
    if !a.subresource.is_empty() {
        return no("cannot authorize CSINode subresources");
    }
    if a.verb != "create" && a.name != node {
        return no("can only access CSINode with the same name as the requesting node");
    }
    ALLOW()
}

fn own_node(node: &str, a: &Attributes<'_>) -> Verdict {
    match (a.subresource, a.verb) {
        ("", "create" | "update" | "patch") | ("status", "update" | "patch") => ALLOW(),
        ("", "get" | "list" | "watch") if a.name == node => ALLOW(),
        ("", "get" | "list" | "watch") if a.name.is_empty() => {
            no(format!("node '{node}' cannot read all nodes, only its own Node object"))
        }
        ("", "get" | "list" | "watch") => {
            no(format!("node '{node}' cannot read '{}', only its own Node object", a.name))
        }
        _ => no(""),
    }
}

/// The kinds of objects whose relation to a node is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pod,
    Secret,
    ConfigMap,
    Pvc,
    Pv,
    ServiceAccount,
    Claim,
    VolumeAttachment,
    Slice,
}

#[cfg(test)]
mod tests {
    use super::super::node_refs::{Source, edges_of, extractions};
    use super::*;
    use crate::auth::UserInfo;
    use serde_json::json;

    fn node_user(name: &str) -> UserInfo {
        UserInfo { name: name.into(), groups: vec!["system:nodes".into()], ..Default::default() }
    }

    fn attrs<'a>(
        u: &'a UserInfo,
        verb: &'a str,
        group: &'a str,
        resource: &'a str,
        ns: &'a str,
        name: &'a str,
    ) -> Attributes<'a> {
        Attributes {
            user: u,
            verb,
            resource_request: true,
            path: "",
            group,
            version: "v1",
            namespace: ns,
            resource,
            subresource: "",
            name,
            field_selector: "",
        }
    }

    #[test]
    fn nodes_reach_their_own_node_lease_and_csinode_only() {
        let g = Graph::default();
        let policy = super::super::rbac::Policy::default();
        let u = node_user("system:node:n1");
        let own = attrs(&u, "get", "", "nodes", "", "n1");
        assert_eq!(g.authorize(&own, &policy).0, Some(true));
        let other = attrs(&u, "get", "", "nodes", "", "n2");
        assert_eq!(
            g.authorize(&other, &policy),
            (None, "node 'n1' cannot read 'n2', only its own Node object".into())
        );
        let lease = attrs(&u, "update", "coordination.k8s.io", "leases", "kube-node-lease", "n1");
        assert_eq!(g.authorize(&lease, &policy).0, Some(true));
        let foreign = attrs(&u, "update", "coordination.k8s.io", "leases", "kube-node-lease", "n2");
        assert_eq!(g.authorize(&foreign, &policy).0, None);
        let nameless = node_user("system:node:");
        assert_eq!(
            g.authorize(&attrs(&nameless, "get", "", "nodes", "", "n1"), &policy).1,
            "unknown node for user \"system:node:\""
        );
        let person = UserInfo { name: "alice".into(), ..Default::default() };
        assert_eq!(
            g.authorize(&attrs(&person, "get", "", "nodes", "", "n1"), &policy),
            (None, String::new())
        );
    }

    /// Feed `obj` of resource `source` to the authorizer's graph under `key`, as the
    /// follower does for a cache event.
    fn feed(g: &Graph, source: Source, key: &str, obj: &serde_json::Value) {
        g.index().write().set_source(key, &edges_of(source, obj));
    }

    fn pod(ns: &str, name: &str, node: &str, secret: &str) -> serde_json::Value {
        json!({"metadata": {"name": name, "namespace": ns}, "spec": {"nodeName": node,
            "volumes": [{"name": "s", "secret": {"secretName": secret}},
                {"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
            "containers": [{"name": "c"}]}})
    }

    const DENIED: &str = "no relationship found between node 'n1' and this object";

    /// Regression (issue #17): a decision listed whole watch caches and parsed every pod
    /// (and claim and volume) in the cluster. Now it is a lookup in the graph: this
    /// authorizer has no app, hence no cache it could scan, and no object is read while
    /// it decides, whatever the number of pods.
    #[test]
    fn node_decisions_are_graph_lookups_that_read_no_object() {
        let g = Graph::default();
        let policy = super::super::rbac::Policy::default();
        for i in 0..2000 {
            let p =
                pod(&format!("ns-{}", i % 50), &format!("p-{i}"), &format!("n{}", i % 100), "s");
            feed(&g, Source::Pod, &format!("/registry/pods/ns-{}/p-{i}", i % 50), &p);
        }
        let pvc = json!({"metadata": {"name": "data", "namespace": "ns-1"}, "spec": {"volumeName": "vol"}});
        feed(&g, Source::Pvc, "/registry/persistentvolumeclaims/ns-1/data", &pvc);
        let pv = json!({"metadata": {"name": "vol"}, "spec": {"csi": {"driver": "d",
            "nodeStageSecretRef": {"name": "stage", "namespace": "ns-1"}}}});
        feed(&g, Source::Pv, "/registry/persistentvolumes/vol", &pv);
        let read_before = extractions();
        let u = node_user("system:node:n1");
        for _ in 0..100 {
            // Pods 1, 101, 201, ... are on n1, in namespaces ns-1 and ns-51 % 50 = ns-1.
            let used = attrs(&u, "get", "", "secrets", "ns-1", "s");
            assert_eq!(g.authorize(&used, &policy), (Some(true), String::new()));
            let other_ns = attrs(&u, "get", "", "secrets", "ns-2", "s");
            assert_eq!(g.authorize(&other_ns, &policy), (None, DENIED.into()));
            let own_pod = attrs(&u, "get", "", "pods", "ns-1", "p-101");
            assert_eq!(g.authorize(&own_pod, &policy).0, Some(true));
            let foreign_pod = attrs(&u, "get", "", "pods", "ns-2", "p-102");
            assert_eq!(g.authorize(&foreign_pod, &policy), (None, DENIED.into()));
            let volume = attrs(&u, "get", "", "persistentvolumes", "", "vol");
            assert_eq!(g.authorize(&volume, &policy).0, Some(true));
            let stage = attrs(&u, "get", "", "secrets", "ns-1", "stage");
            assert_eq!(g.authorize(&stage, &policy).0, Some(true), "pod -> pvc -> pv -> secret");
        }
        assert_eq!(extractions(), read_before, "deciding read no object");
    }

    #[test]
    fn attachments_slices_and_unnamespaced_volume_secrets_are_decided_from_the_graph() {
        let g = Graph::default();
        let policy = super::super::rbac::Policy::default();
        let u = node_user("system:node:n1");
        let va = json!({"metadata": {"name": "va"}, "spec": {"nodeName": "n1"}});
        feed(&g, Source::VolumeAttachment, "/registry/volumeattachments/va", &va);
        let get_va = attrs(&u, "get", "storage.k8s.io", "volumeattachments", "", "va");
        assert_eq!(g.authorize(&get_va, &policy).0, Some(true));
        let slice = json!({"metadata": {"name": "sl"}, "spec": {"nodeName": "n2"}});
        feed(&g, Source::Slice, "/registry/resourceslices/sl", &slice);
        let get_slice = attrs(&u, "get", "resource.k8s.io", "resourceslices", "", "sl");
        assert_eq!(g.authorize(&get_slice, &policy), (None, DENIED.into()));
        // A volume's secret named without a namespace matches the request's, as before.
        feed(&g, Source::Pod, "/registry/pods/a/p", &pod("a", "p", "n1", "x"));
        let pvc =
            json!({"metadata": {"name": "data", "namespace": "a"}, "spec": {"volumeName": "v"}});
        feed(&g, Source::Pvc, "/registry/persistentvolumeclaims/a/data", &pvc);
        let pv = json!({"metadata": {"name": "v"}, "spec": {"azureFile": {"secretName": "az"}}});
        feed(&g, Source::Pv, "/registry/persistentvolumes/v", &pv);
        for ns in ["a", "b"] {
            let az = attrs(&u, "get", "", "secrets", ns, "az");
            assert_eq!(g.authorize(&az, &policy).0, Some(true), "{ns}");
        }
        g.index().write().remove_source("/registry/pods/a/p");
        let az = attrs(&u, "get", "", "secrets", "a", "az");
        assert_eq!(g.authorize(&az, &policy), (None, DENIED.into()));
    }
}
