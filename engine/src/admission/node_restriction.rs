//! NodeRestriction (off by default): what a kubelet (`system:node:NAME` in
//! `system:nodes`) may write, beyond what the Node authorizer lets it reach, as
//! upstream's plugin decides it:
//! - pods: create only mirror pods bound to itself, owned by its Node (controller
//!   reference with the Node's uid) and naming no ServiceAccount, secret, ConfigMap,
//!   ClusterTrustBundle or PVC; delete, evict and update the status only of pods bound
//!   to itself (status updates may not change labels); no other pod subresource;
//! - its own Node only: no `configSource`, no taint changes, and no labels outside the
//!   kubelet's set (`node-restriction.kubernetes.io/` never; other `kubernetes.io` and
//!   `k8s.io` labels only the well-known kubelet ones);
//! - PVCs: only their status (capacity and conditions);
//! - ServiceAccount tokens only bound to a pod (with its uid) running on itself;
//! - Leases only its own in `kube-node-lease`; CSINodes only its own; ResourceSlices
//!   only with its own `spec.nodeName`.
//!
//! Runs in the mutating phase (upstream's plugin is a mutating one) and changes nothing.
//! Pods and Nodes are read from the caches.

use super::cached::{self, NODES, PODS};
use super::{Attributes, Operation, Plugin, Step};
use crate::status::ApiError;
use kapi_codec::meta;
use kapi_codec::pointer::Pointer as _;
use serde_json::{Map, Value};

/// Upstream's NodeRestriction plugin.
pub struct NodeRestriction;

/// The node a user is (upstream's node identifier): a `system:node:` name in the
/// `system:nodes` group. Some("") when the name does not say which node.
pub fn node_of(user: &crate::auth::UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix("system:node:")?;
    user.groups.iter().any(|g| g == "system:nodes").then_some(name)
}

impl Plugin for NodeRestriction {
    fn name(&self) -> &'static str {
        "NodeRestriction"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        a.operation != Operation::Connect && a.user().and_then(node_of).is_some()
    }

    fn mutates(&self) -> bool {
        true
    }

    fn admit<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a mut Value) -> Step<'a> {
        Box::pin(admit(a, obj))
    }
}

async fn admit(a: &Attributes<'_>, obj: &Value) -> Result<(), ApiError> {
    let Some(node) = a.user().and_then(node_of) else { return Ok(()) };
    if node.is_empty() {
        let user = a.user().map_or("", |u| u.name.as_str());
        return Err(a.forbid(obj, format!("could not determine node from user \"{user}\"")));
    }
    let rt = a.rt();
    let verdict = match (&*rt.group, &*rt.plural) {
        ("", "pods") => pod(a, node, obj).await,
        ("", "nodes") => Ok(self_node(a, node, obj)),
        ("", "persistentvolumeclaims") => Ok(pvc(a, node, obj)),
        ("", "serviceaccounts") => token(a, node, obj).await,
        ("coordination.k8s.io", "leases") => Ok(lease(a, node, obj)),
        ("storage.k8s.io", "csinodes") => Ok(same_name(a, node, obj, "CSINode")),
        ("resource.k8s.io", "resourceslices") => Ok(slice(a, node, obj)),
        _ => Ok(None),
    }?;
    match verdict {
        Some(why) => Err(a.forbid(obj, why)),
        None => Ok(()),
    }
}

/// What a refusal says (None: allowed).
type Verdict = Option<String>;

fn op_name(a: &Attributes<'_>) -> &'static str {
    a.operation.as_str()
}

async fn pod(a: &Attributes<'_>, node: &str, obj: &Value) -> Result<Verdict, ApiError> {
    match (a.subresource(), a.operation) {
        (None, Operation::Create) => pod_create(a, node, obj).await,
        (None, Operation::Delete) => {
            let existing = existing_pod(a, a.name).await?;
            Ok((node_name(&existing) != node).then(|| {
                format!("node \"{node}\" can only delete pods with spec.nodeName set to itself")
            }))
        }
        (None, _) => Ok(Some(format!(
            "unexpected operation \"{}\", node \"{node}\" can only create and delete mirror pods",
            op_name(a)
        ))),
        (Some("status"), Operation::Update) => Ok(pod_status(node, a.old, obj)),
        (Some("status"), _) => Ok(Some(format!("unexpected operation \"{}\"", op_name(a)))),
        (Some("eviction"), Operation::Create) => {
            let name = if a.name.is_empty() { meta::name(obj).unwrap_or("") } else { a.name };
            if name.is_empty() {
                return Ok(Some("could not determine pod from request data".into()));
            }
            let existing = existing_pod(a, name).await?;
            Ok((node_name(&existing) != node).then(|| {
                format!("node {node} can only evict pods with spec.nodeName set to itself")
            }))
        }
        (Some("eviction"), _) => Ok(Some(format!("unexpected operation {}", op_name(a)))),
        (Some(other), _) => Ok(Some(format!(
            "unexpected pod subresource \"{other}\", only 'status' and 'eviction' are allowed"
        ))),
    }
}

fn node_name(pod: &Value) -> &str {
    pod.at("/spec/nodeName").and_then(Value::as_str).unwrap_or("")
}

/// The pod as it is (the delete's object, else the cache); 404 when it is gone.
async fn existing_pod(a: &Attributes<'_>, name: &str) -> Result<Value, ApiError> {
    if let Some(old) = a.old {
        return Ok(old.clone());
    }
    cached::get(a.scope.app, PODS, Some(a.namespace()), name)
        .await
        .ok_or_else(|| ApiError::NotFound(a.scope.target(name)))
}

async fn pod_create(a: &Attributes<'_>, node: &str, pod: &Value) -> Result<Verdict, ApiError> {
    if let Some(why) = mirror_pod_rules(node, pod) {
        return Ok(Some(why));
    }
    let owner_uid = pod.at("/metadata/ownerReferences/0/uid").and_then(Value::as_str);
    let Some(found) = cached::get(a.scope.app, NODES, None, node).await else {
        let mut target = a.scope.target(node);
        target.resource = "nodes".into();
        target.kind = "Node".into();
        return Err(ApiError::NotFound(target));
    };
    let uid = meta::meta_str(&found, "uid").unwrap_or("");
    if owner_uid.unwrap_or("") != uid {
        let owner = owner_uid.unwrap_or("");
        return Ok(Some(format!("node {node} UID mismatch: expected {owner} got {uid}")));
    }
    Ok(references(node, pod))
}

/// A kubelet's pod must be a mirror pod bound to it with one controller owner
/// reference to its Node.
pub fn mirror_pod_rules(node: &str, pod: &Value) -> Verdict {
    let mirror =
        meta::annotations(pod).is_some_and(|m| m.contains_key("kubernetes.io/config.mirror"));
    if !mirror {
        return Some(format!(
            "pod does not have \"kubernetes.io/config.mirror\" annotation, node \"{node}\" can only create mirror pods"
        ));
    }
    if node_name(pod) != node {
        return Some(format!(
            "node \"{node}\" can only create pods with spec.nodeName set to itself"
        ));
    }
    let owners = pod.at("/metadata/ownerReferences").and_then(Value::as_array);
    let owners = owners.map_or(&[][..], Vec::as_slice);
    match owners {
        [] => Some(format!(
            "node \"{node}\" can only create pods with an owner reference set to itself"
        )),
        [owner] => owner_rules(node, owner),
        _ => Some(format!(
            "node \"{node}\" can only create pods with a single owner reference set to itself"
        )),
    }
}

fn owner_rules(node: &str, owner: &Value) -> Verdict {
    let s = |f: &str| owner.get(f).and_then(Value::as_str).unwrap_or("");
    let b = |f: &str| owner.get(f).and_then(Value::as_bool);
    if s("apiVersion") != "v1" || s("kind") != "Node" || s("name") != node {
        return Some(format!(
            "node \"{node}\" can only create pods with an owner reference set to itself"
        ));
    }
    if b("controller") != Some(true) {
        return Some(format!(
            "node \"{node}\" can only create pods with a controller owner reference set to itself"
        ));
    }
    if b("blockOwnerDeletion") == Some(true) {
        return Some(format!(
            "node \"{node}\" must not set blockOwnerDeletion on an owner reference"
        ));
    }
    None
}

/// A kubelet's pod references no other API object.
pub fn references(node: &str, pod: &Value) -> Verdict {
    if pod.at("/spec/serviceAccountName").and_then(Value::as_str).is_some_and(|s| !s.is_empty()) {
        return Some(format!(
            "node \"{node}\" can not create pods that reference a service account"
        ));
    }
    if !super::service_account::secret_names(pod).is_empty() {
        return Some(format!("node \"{node}\" can not create pods that reference secrets"));
    }
    if references_config_maps(pod) {
        return Some(format!("node \"{node}\" can not create pods that reference configmaps"));
    }
    let volumes = pod.at("/spec/volumes").and_then(Value::as_array);
    let volumes = || volumes.into_iter().flatten();
    let bundles = volumes().any(|v| {
        v.at("/projected/sources")
            .and_then(Value::as_array)
            .is_some_and(|s| s.iter().any(|p| p.get("clusterTrustBundle").is_some()))
    });
    if bundles {
        return Some(format!(
            "node \"{node}\" can not create pods that reference clustertrustbundles"
        ));
    }
    if volumes().any(|v| v.get("persistentVolumeClaim").is_some()) {
        return Some(format!(
            "node \"{node}\" can not create pods that reference persistentvolumeclaims"
        ));
    }
    None
}

/// Upstream's `VisitPodConfigmapNames`: configMap volumes and projections, env
/// references of every container.
fn references_config_maps(pod: &Value) -> bool {
    let spec = pod.get("spec");
    let list = |k: &str| {
        spec.and_then(|s| s.get(k)).and_then(Value::as_array).cloned().unwrap_or_default()
    };
    let containers =
        ["initContainers", "containers", "ephemeralContainers"].into_iter().flat_map(list);
    let in_env = containers.into_iter().any(|c| {
        let env = c.get("env").and_then(Value::as_array).into_iter().flatten();
        let from = c.get("envFrom").and_then(Value::as_array).into_iter().flatten();
        env.clone().any(|e| e.at("/valueFrom/configMapKeyRef").is_some())
            || from.clone().any(|e| e.get("configMapRef").is_some())
    });
    in_env
        || list("volumes").iter().any(|v| {
            v.get("configMap").is_some()
                || v.at("/projected/sources")
                    .and_then(Value::as_array)
                    .is_some_and(|s| s.iter().any(|p| p.get("configMap").is_some()))
        })
}

/// A status update of a pod bound to the node, labels unchanged.
pub fn pod_status(node: &str, old: Option<&Value>, new: &Value) -> Verdict {
    let old = old?;
    if node_name(old) != node {
        return Some(format!(
            "node \"{node}\" can only update pod status for pods with spec.nodeName set to itself"
        ));
    }
    if meta::labels(old) != meta::labels(new) {
        return Some(format!("node \"{node}\" cannot update labels through pod status"));
    }
    let claims = |p: &Value| p.at("/status/resourceClaimStatuses").cloned();
    if claims(old) != claims(new) {
        return Some(format!("node \"{node}\" cannot update resource claim statues"));
    }
    None
}

/// A kubelet changes its own Node only, within the rules on config source, taints and
/// labels.
fn self_node(a: &Attributes<'_>, node: &str, obj: &Value) -> Verdict {
    let requested = if a.name.is_empty() { meta::name(obj).unwrap_or("") } else { a.name };
    if requested != node {
        return Some(format!("node \"{node}\" is not allowed to modify node \"{requested}\""));
    }
    match a.operation {
        Operation::Create => node_create(node, obj),
        Operation::Update => node_update(node, a.old?, obj),
        _ => None,
    }
}

pub fn node_create(node: &str, obj: &Value) -> Verdict {
    if obj.at("/spec/configSource").is_some_and(|c| !c.is_null()) {
        return Some(format!(
            "node \"{node}\" is not allowed to create pods with a non-nil configSource"
        ));
    }
    let forbidden = forbidden_labels(&modified_labels(meta::labels(obj), None));
    (!forbidden.is_empty()).then(|| {
        format!(
            "node \"{node}\" is not allowed to set the following labels: {}",
            forbidden.join(", ")
        )
    })
}

pub fn node_update(node: &str, old: &Value, new: &Value) -> Verdict {
    let config = new.at("/spec/configSource").filter(|c| !c.is_null());
    if config.is_some() && config != old.at("/spec/configSource") {
        return Some(format!(
            "node \"{node}\" is not allowed to update configSource to a new non-nil configSource"
        ));
    }
    let taints = |n: &Value| {
        n.at("/spec/taints").filter(|t| t.as_array().is_some_and(|a| !a.is_empty())).cloned()
    };
    if taints(new) != taints(old) {
        return Some(format!("node \"{node}\" is not allowed to modify taints"));
    }
    let forbidden = forbidden_labels(&modified_labels(meta::labels(new), meta::labels(old)));
    (!forbidden.is_empty())
        .then(|| format!("is not allowed to modify labels: {}", forbidden.join(", ")))
}

/// Keys whose value differs between the two label sets.
fn modified_labels<'l>(
    a: Option<&'l Map<String, Value>>,
    b: Option<&'l Map<String, Value>>,
) -> Vec<&'l str> {
    static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
    let (a, b) = (a.unwrap_or(&EMPTY), b.unwrap_or(&EMPTY));
    let mut out: Vec<&str> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(v))
        .chain(b.iter().filter(|(k, v)| a.get(*k) != Some(v)))
        .map(|(k, _)| k.as_str())
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

fn label_namespace(key: &str) -> &str {
    key.split_once('/').map_or("", |(ns, _)| ns)
}

fn under(ns: &str, domain: &str) -> bool {
    ns == domain || ns.strip_suffix(domain).is_some_and(|p| p.ends_with('.'))
}

/// The labels a kubelet sets itself (`kubeletapis.IsKubeletLabel`).
const KUBELET_LABELS: [&str; 11] = [
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];

fn is_kubelet_label(key: &str) -> bool {
    if KUBELET_LABELS.contains(&key) {
        return true;
    }
    let ns = label_namespace(key);
    under(ns, "kubelet.kubernetes.io") || under(ns, "node.kubernetes.io")
}

/// The modified labels a kubelet may not set (sorted).
pub fn forbidden_labels<'l>(modified: &[&'l str]) -> Vec<&'l str> {
    modified
        .iter()
        .copied()
        .filter(|k| {
            let ns = label_namespace(k);
            let restricted = under(ns, "node-restriction.kubernetes.io");
            let kubernetes = under(ns, "kubernetes.io") || under(ns, "k8s.io");
            restricted || (kubernetes && !is_kubelet_label(k))
        })
        .collect()
}

/// PVCs: only `status.capacity` and `status.conditions` (and the allocation fields).
fn pvc(a: &Attributes<'_>, node: &str, new: &Value) -> Verdict {
    if a.subresource() != Some("status") {
        return Some("may only update PVC status".into());
    }
    if a.operation != Operation::Update {
        return Some(format!("unexpected operation \"{}\"", op_name(a)));
    }
    let old = a.old?;
    (strip_pvc(old) != strip_pvc(new)).then(|| {
        format!("node \"{node}\" is not allowed to update fields other than status.quantity and status.conditions")
    })
}

fn strip_pvc(pvc: &Value) -> Value {
    let mut p = pvc.clone();
    if let Some(m) = p.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    if let Some(s) = p.get_mut("status").and_then(Value::as_object_mut) {
        for f in ["capacity", "conditions", "allocatedResourceStatuses", "allocatedResources"] {
            s.remove(f);
        }
    }
    p
}

/// A token a kubelet asks for is bound to a pod on itself.
async fn token(a: &Attributes<'_>, node: &str, tr: &Value) -> Result<Verdict, ApiError> {
    if a.operation != Operation::Create || a.subresource() != Some("token") {
        return Ok(None);
    }
    let r = tr.at("/spec/boundObjectRef");
    let field = |f: &str| r.and_then(|r| r.get(f)).and_then(Value::as_str).unwrap_or("");
    if field("apiVersion") != "v1" || field("kind") != "Pod" || field("name").is_empty() {
        return Ok(Some("node requested token not bound to a pod".into()));
    }
    if field("uid").is_empty() {
        return Ok(Some("node requested token with a pod binding without a uid".into()));
    }
    let pod = existing_pod_named(a, field("name")).await?;
    let uid = field("uid");
    if meta::meta_str(&pod, "uid") != Some(uid) {
        return Ok(Some(format!(
            "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
        )));
    }
    Ok((node_name(&pod) != node)
        .then(|| "node requested token bound to a pod scheduled on a different node".into()))
}

async fn existing_pod_named(a: &Attributes<'_>, name: &str) -> Result<Value, ApiError> {
    cached::get(a.scope.app, PODS, Some(a.namespace()), name).await.ok_or_else(|| {
        let mut t = a.scope.target(name);
        t.resource = "pods".into();
        t.kind = "Pod".into();
        ApiError::NotFound(t)
    })
}

fn lease(a: &Attributes<'_>, node: &str, obj: &Value) -> Verdict {
    if a.namespace() != "kube-node-lease" {
        return Some("can only access leases in the \"kube-node-lease\" system namespace".into());
    }
    let name =
        if a.operation == Operation::Create { meta::name(obj).unwrap_or("") } else { a.name };
    (name != node)
        .then(|| "can only access node lease with the same name as the requesting node".into())
}

fn same_name(a: &Attributes<'_>, node: &str, obj: &Value, kind: &str) -> Verdict {
    let name =
        if a.operation == Operation::Create { meta::name(obj).unwrap_or("") } else { a.name };
    (name != node)
        .then(|| format!("can only access {kind} with the same name as the requesting node"))
}

fn slice(a: &Attributes<'_>, node: &str, obj: &Value) -> Verdict {
    let of = |s: &Value| s.at("/spec/nodeName").and_then(Value::as_str).unwrap_or("").to_string();
    match a.operation {
        Operation::Create => (of(obj) != node).then(|| {
            "can only create ResourceSlice with the same NodeName as the requesting node".into()
        }),
        Operation::Delete => (of(a.old.unwrap_or(obj)) != node).then(|| {
            "can only delete ResourceSlice with the same NodeName as the requesting node".into()
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(name: &str, groups: &[&str]) -> crate::auth::UserInfo {
        crate::auth::UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_system_node_users_in_the_nodes_group_are_nodes() {
        assert_eq!(node_of(&user("system:node:a", &["system:nodes"])), Some("a"));
        assert_eq!(node_of(&user("system:node:", &["system:nodes"])), Some(""));
        assert_eq!(node_of(&user("system:node:a", &[])), None);
        assert_eq!(node_of(&user("alice", &["system:nodes"])), None);
    }

    fn mirror(node: &str) -> Value {
        json!({"metadata": {"name": "m", "annotations": {"kubernetes.io/config.mirror": "x"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": "u", "controller": true}]},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]}})
    }

    #[test]
    fn kubelets_create_only_mirror_pods_of_their_own() {
        assert_eq!(mirror_pod_rules("a", &mirror("a")), None);
        let mut plain = mirror("a");
        plain["metadata"]["annotations"] = json!({});
        assert_eq!(
            mirror_pod_rules("a", &plain).unwrap(),
            "pod does not have \"kubernetes.io/config.mirror\" annotation, node \"a\" can only create mirror pods"
        );
        assert_eq!(
            mirror_pod_rules("b", &mirror("a")).unwrap(),
            "node \"b\" can only create pods with spec.nodeName set to itself"
        );
        let mut unowned = mirror("a");
        unowned["metadata"]["ownerReferences"] = json!([]);
        assert_eq!(
            mirror_pod_rules("a", &unowned).unwrap(),
            "node \"a\" can only create pods with an owner reference set to itself"
        );
        let mut weak = mirror("a");
        weak["metadata"]["ownerReferences"][0]["controller"] = json!(false);
        assert_eq!(
            mirror_pod_rules("a", &weak).unwrap(),
            "node \"a\" can only create pods with a controller owner reference set to itself"
        );
        let mut with_sa = mirror("a");
        with_sa["spec"]["serviceAccountName"] = json!("default");
        assert_eq!(
            references("a", &with_sa).unwrap(),
            "node \"a\" can not create pods that reference a service account"
        );
        let mut with_cm = mirror("a");
        with_cm["spec"]["volumes"] = json!([{"name": "v", "configMap": {"name": "c"}}]);
        assert_eq!(
            references("a", &with_cm).unwrap(),
            "node \"a\" can not create pods that reference configmaps"
        );
    }

    #[test]
    fn pod_status_only_of_pods_bound_to_the_node_and_without_label_changes() {
        let old = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"nodeName": "a"}});
        assert_eq!(pod_status("a", Some(&old), &old), None);
        assert_eq!(
            pod_status("b", Some(&old), &old).unwrap(),
            "node \"b\" can only update pod status for pods with spec.nodeName set to itself"
        );
        let relabeled = json!({"metadata": {"labels": {"a": "2"}}, "spec": {"nodeName": "a"}});
        assert_eq!(
            pod_status("a", Some(&old), &relabeled).unwrap(),
            "node \"a\" cannot update labels through pod status"
        );
    }

    #[test]
    fn node_labels_outside_the_kubelets_set_are_refused() {
        let node = json!({"metadata": {"name": "a", "labels": {
            "kubernetes.io/hostname": "a", "example.com/x": "1", "node.kubernetes.io/pool": "p",
            "node-restriction.kubernetes.io/secure": "true", "node-role.kubernetes.io/master": ""}}});
        assert_eq!(
            node_create("a", &node).unwrap(),
            "node \"a\" is not allowed to set the following labels: node-restriction.kubernetes.io/secure, node-role.kubernetes.io/master"
        );
        let old = json!({"metadata": {"labels": {"kubernetes.io/hostname": "a"}}});
        let new =
            json!({"metadata": {"labels": {"kubernetes.io/hostname": "a", "foo.k8s.io/x": "1"}}});
        assert_eq!(
            node_update("a", &old, &new).unwrap(),
            "is not allowed to modify labels: foo.k8s.io/x"
        );
        let tainted = json!({"metadata": {"labels": {"kubernetes.io/hostname": "a"}}, "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}});
        assert_eq!(
            node_update("a", &old, &tainted).unwrap(),
            "node \"a\" is not allowed to modify taints"
        );
        assert_eq!(node_update("a", &old, &old), None);
    }
}
