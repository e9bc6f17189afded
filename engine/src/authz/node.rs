//! The Node authorizer (upstream's NodeAuthorizer, v1.35 with AuthorizeNodeWithSelectors):
//! a kubelet (`system:node:NAME` in `system:nodes`) may read only the objects related
//! to its node — its Node, the Pods bound to it, and the Secrets, ConfigMaps,
//! PersistentVolumeClaims, PersistentVolumes, ServiceAccounts (tokens) and
//! ResourceClaims those pods use — its own Lease and CSINode, the VolumeAttachments
//! and ResourceSlices naming it; everything else by the static node rules (the
//! `system:node` ClusterRole's). Other users get no opinion.
//!
//! The relations upstream keeps as a graph are answered here from the watch caches at
//! decision time: the pods bound to the node, and what they reference (no store read).

use super::attributes::Attributes;
use super::rules::Rule;
use crate::app::App;
use serde_json::Value;
use std::sync::{OnceLock, Weak};

/// What the Node authorizer reads: the app's caches (set once the app exists) and the
/// static node rules.
#[derive(Default)]
pub struct Graph {
    app: OnceLock<Weak<App>>,
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
    /// Connect to the app (its caches) once it exists.
    pub fn attach(&self, app: Weak<App>) {
        let _ = self.app.set(app);
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
        let found =
            self.app.get().and_then(Weak::upgrade).is_some_and(|app| {
                Relations { app: &app, node }.reaches(kind, a.namespace, a.name)
            });
        if found {
            ALLOW()
        } else {
            no(format!("no relationship found between node '{node}' and this object"))
        }
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

/// The relations of one node, read from the caches.
struct Relations<'a> {
    app: &'a App,
    node: &'a str,
}

impl Relations<'_> {
    fn list(&self, group: &str, version: &str, plural: &str) -> Vec<Value> {
        let app = self.app;
        let reg = app.registry();
        let Some(rt) = reg.get(group, version, plural) else { return Vec::new() };
        let Some(cache) = app.caches.get(app, rt) else { return Vec::new() };
        let (items, _, _) = cache.list(&rt.storage_prefix(app.prefix(), None), None, 0);
        items.iter().map(|e| e.data.obj()).collect()
    }

    fn pods(&self) -> Vec<Value> {
        let mut pods = self.list("", "v1", "pods");
        pods.retain(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(self.node));
        pods
    }

    fn reaches(&self, kind: Kind, ns: &str, name: &str) -> bool {
        match kind {
            Kind::VolumeAttachment => {
                self.names_node("storage.k8s.io", "v1", "volumeattachments", name)
            }
            Kind::Slice => self.names_node("resource.k8s.io", "v1", "resourceslices", name),
            Kind::Pv => self.pvcs().iter().any(|(_, pvc)| {
                pvc.pointer("/spec/volumeName").and_then(Value::as_str) == Some(name)
            }),
            Kind::Secret if self.pv_secret(ns, name) => true,
            _ => self.pods().iter().any(|p| pod_uses(p, kind, ns, name)),
        }
    }

    /// Whether the object `name` of this resource names the node in `spec.nodeName`.
    fn names_node(&self, group: &str, version: &str, plural: &str, name: &str) -> bool {
        self.list(group, version, plural).iter().any(|o| {
            o.pointer("/metadata/name").and_then(Value::as_str) == Some(name)
                && o.pointer("/spec/nodeName").and_then(Value::as_str) == Some(self.node)
        })
    }

    /// The claims the node's pods use, with their namespaces.
    fn pvcs(&self) -> Vec<(String, Value)> {
        let used: Vec<(String, String)> = self
            .pods()
            .iter()
            .flat_map(|p| {
                let ns = text(p, "/metadata/namespace").to_string();
                claim_names(p).into_iter().map(move |c| (ns.clone(), c))
            })
            .collect();
        self.list("", "v1", "persistentvolumeclaims")
            .into_iter()
            .filter(|c| {
                let key = (
                    text(c, "/metadata/namespace").to_string(),
                    text(c, "/metadata/name").to_string(),
                );
                used.contains(&key)
            })
            .map(|c| (text(&c, "/metadata/namespace").to_string(), c))
            .collect()
    }

    /// Whether a volume bound to a claim the node's pods use names the secret.
    fn pv_secret(&self, ns: &str, name: &str) -> bool {
        let volumes: Vec<String> =
            self.pvcs().iter().map(|(_, c)| text(c, "/spec/volumeName").to_string()).collect();
        self.list("", "v1", "persistentvolumes").iter().any(|pv| {
            volumes.iter().any(|v| v == text(pv, "/metadata/name"))
                && secret_refs(&pv["spec"])
                    .iter()
                    .any(|(sns, s)| s == name && sns.as_deref().unwrap_or(ns) == ns)
        })
    }
}

fn text<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Whether pod `p` uses the object `kind` `ns/name`.
fn pod_uses(p: &Value, kind: Kind, ns: &str, name: &str) -> bool {
    let same_ns = text(p, "/metadata/namespace") == ns;
    match kind {
        Kind::Pod => same_ns && text(p, "/metadata/name") == name,
        Kind::ServiceAccount => {
            let sa = match text(p, "/spec/serviceAccountName") {
                "" => "default",
                sa => sa,
            };
            same_ns && sa == name
        }
        Kind::Secret => same_ns && pod_secrets(p).iter().any(|s| s == name),
        Kind::ConfigMap => same_ns && pod_config_maps(p).iter().any(|c| c == name),
        Kind::Pvc => same_ns && claim_names(p).iter().any(|c| c == name),
        Kind::Claim => same_ns && resource_claims(p).iter().any(|c| c == name),
        Kind::Pv | Kind::VolumeAttachment | Kind::Slice => false,
    }
}

fn containers(p: &Value) -> impl Iterator<Item = &Value> {
    ["containers", "initContainers", "ephemeralContainers"]
        .into_iter()
        .flat_map(move |k| p["spec"][k].as_array().into_iter().flatten())
}

fn volumes(p: &Value) -> impl Iterator<Item = &Value> {
    p["spec"]["volumes"].as_array().into_iter().flatten()
}

fn projected(p: &Value) -> impl Iterator<Item = &Value> {
    volumes(p).flat_map(|v| {
        v.pointer("/projected/sources").and_then(Value::as_array).into_iter().flatten()
    })
}

fn push(out: &mut Vec<String>, v: Option<&Value>) {
    if let Some(s) = v.and_then(Value::as_str).filter(|s| !s.is_empty()) {
        out.push(s.to_string());
    }
}

/// Every Secret a pod names: volumes, projected sources, env, envFrom, image pull
/// secrets, and the secret references of in-line volume sources.
fn pod_secrets(p: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for ips in p["spec"]["imagePullSecrets"].as_array().into_iter().flatten() {
        push(&mut out, ips.get("name"));
    }
    for v in volumes(p) {
        push(&mut out, v.pointer("/secret/secretName"));
        out.extend(secret_refs(v).into_iter().map(|(_, n)| n));
    }
    for s in projected(p) {
        push(&mut out, s.pointer("/secret/name"));
    }
    for c in containers(p) {
        for e in c["env"].as_array().into_iter().flatten() {
            push(&mut out, e.pointer("/valueFrom/secretKeyRef/name"));
        }
        for e in c["envFrom"].as_array().into_iter().flatten() {
            push(&mut out, e.pointer("/secretRef/name"));
        }
    }
    out
}

/// Secret references of volume sources (`secretRef`, `nodePublishSecretRef`, ...), with
/// the namespace when the source gives one.
fn secret_refs(source: &Value) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    let Some(m) = source.as_object() else { return out };
    for (_, src) in m {
        for key in [
            "secretRef",
            "nodePublishSecretRef",
            "nodeStageSecretRef",
            "controllerPublishSecretRef",
            "nodeExpandSecretRef",
        ] {
            if let Some(r) = src.get(key)
                && let Some(n) = r.get("name").and_then(Value::as_str)
            {
                let ns = r.get("namespace").and_then(Value::as_str).map(String::from);
                out.push((ns, n.to_string()));
            }
        }
        if let Some(n) = src.get("secretName").and_then(Value::as_str) {
            let ns = src.get("secretNamespace").and_then(Value::as_str).map(String::from);
            out.push((ns, n.to_string()));
        }
    }
    out
}

fn pod_config_maps(p: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for v in volumes(p) {
        push(&mut out, v.pointer("/configMap/name"));
    }
    for s in projected(p) {
        push(&mut out, s.pointer("/configMap/name"));
    }
    for c in containers(p) {
        for e in c["env"].as_array().into_iter().flatten() {
            push(&mut out, e.pointer("/valueFrom/configMapKeyRef/name"));
        }
        for e in c["envFrom"].as_array().into_iter().flatten() {
            push(&mut out, e.pointer("/configMapRef/name"));
        }
    }
    out
}

/// The PersistentVolumeClaims a pod uses: named ones and its generic ephemeral
/// volumes' (`POD-VOLUME`).
fn claim_names(p: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let pod = text(p, "/metadata/name");
    for v in volumes(p) {
        push(&mut out, v.pointer("/persistentVolumeClaim/claimName"));
        if v.get("ephemeral").is_some() {
            out.push(format!("{pod}-{}", text(v, "/name")));
        }
    }
    out
}

fn resource_claims(p: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for c in p["spec"]["resourceClaims"].as_array().into_iter().flatten() {
        push(&mut out, c.get("resourceClaimName"));
    }
    for s in p["status"]["resourceClaimStatuses"].as_array().into_iter().flatten() {
        push(&mut out, s.get("resourceClaimName"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::UserInfo;
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": "n1",
            "serviceAccountName": "sa",
            "imagePullSecrets": [{"name": "pull"}],
            "volumes": [{"name": "v", "secret": {"secretName": "vol"}},
                {"name": "c", "configMap": {"name": "cfg"}},
                {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "e", "ephemeral": {}},
                {"name": "x", "projected": {"sources": [{"secret": {"name": "proj"}}, {"configMap": {"name": "pcfg"}}]}},
                {"name": "csi", "csi": {"driver": "d", "nodePublishSecretRef": {"name": "csisecret"}}}],
            "containers": [{"name": "c", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "envs", "key": "k"}}}],
                "envFrom": [{"configMapRef": {"name": "envcfg"}}]}]}})
    }

    #[test]
    fn a_pod_uses_what_its_spec_references() {
        let p = pod();
        for s in ["pull", "vol", "proj", "envs", "csisecret"] {
            assert!(pod_uses(&p, Kind::Secret, "ns", s), "{s}");
        }
        assert!(!pod_uses(&p, Kind::Secret, "other", "vol"), "other namespaces are not related");
        assert!(!pod_uses(&p, Kind::Secret, "ns", "unrelated"));
        for c in ["cfg", "pcfg", "envcfg"] {
            assert!(pod_uses(&p, Kind::ConfigMap, "ns", c), "{c}");
        }
        assert!(pod_uses(&p, Kind::Pvc, "ns", "data"));
        assert!(pod_uses(&p, Kind::Pvc, "ns", "p-e"), "generic ephemeral volume claim");
        assert!(pod_uses(&p, Kind::ServiceAccount, "ns", "sa"));
    }

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
}
