//! What the Node authorizer's graph learns from one stored object: the edges its fields
//! name ([`edges_of`]). A pod bound to a node names `pod -> node` and an edge to the pod
//! from its ServiceAccount (`default` when unset) and from every Secret, ConfigMap,
//! PersistentVolumeClaim (named or a generic ephemeral volume's `POD-VOLUME`) and
//! ResourceClaim it uses, all in its namespace; a claim bound to a volume names
//! `pv -> pvc`; a PersistentVolume names `secret -> pv` for the Secrets its source
//! references (one without a namespace matches any, [`ANY_NAMESPACE`]); a VolumeAttachment
//! or ResourceSlice naming a node names `object -> node`. A pod not bound yet names
//! nothing.
//!
//! This is the only place the authorizer reads objects: once per change, off the request
//! path (`node_follow`). [`extractions`] counts the calls on this thread, so tests can
//! show a decision makes none.

use super::node_graph::{ANY_NAMESPACE, EdgeKey, VKey, VKind};
use serde_json::Value;
use std::cell::Cell;

/// The resources whose objects contribute edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Pod,
    Pvc,
    Pv,
    VolumeAttachment,
    Slice,
}

thread_local! {
    static EXTRACTIONS: Cell<u64> = const { Cell::new(0) };
}

/// How many objects [`edges_of`] has read on this thread.
pub fn extractions() -> u64 {
    EXTRACTIONS.with(Cell::get)
}

/// The edges object `obj` of resource `source` contributes.
pub fn edges_of(source: Source, obj: &Value) -> Vec<EdgeKey> {
    EXTRACTIONS.with(|c| c.set(c.get() + 1));
    let ns = text(obj, "/metadata/namespace");
    let name = text(obj, "/metadata/name");
    match source {
        Source::Pod => pod_edges(obj, ns, name),
        Source::Pvc => match text(obj, "/spec/volumeName") {
            "" => Vec::new(),
            pv => vec![(VKey::new(VKind::Pv, "", pv), VKey::new(VKind::Pvc, ns, name))],
        },
        Source::Pv => {
            let pv = VKey::new(VKind::Pv, "", name);
            secret_refs(&obj["spec"])
                .into_iter()
                .map(|(sns, s)| {
                    let sns = sns.as_deref().unwrap_or(ANY_NAMESPACE);
                    (VKey::new(VKind::Secret, sns, &s), pv.clone())
                })
                .collect()
        }
        Source::VolumeAttachment => names_node(obj, VKind::VolumeAttachment, name),
        Source::Slice => names_node(obj, VKind::Slice, name),
    }
}

/// `object -> node` for an object whose `spec.nodeName` names one.
fn names_node(obj: &Value, kind: VKind, name: &str) -> Vec<EdgeKey> {
    match text(obj, "/spec/nodeName") {
        "" => Vec::new(),
        node => vec![(VKey::new(kind, "", name), VKey::new(VKind::Node, "", node))],
    }
}

fn pod_edges(p: &Value, ns: &str, name: &str) -> Vec<EdgeKey> {
    let node = text(p, "/spec/nodeName");
    if node.is_empty() {
        return Vec::new();
    }
    let pod = VKey::new(VKind::Pod, ns, name);
    let sa = match text(p, "/spec/serviceAccountName") {
        "" => "default",
        sa => sa,
    };
    let mut edges = vec![
        (pod.clone(), VKey::new(VKind::Node, "", node)),
        (VKey::new(VKind::ServiceAccount, ns, sa), pod.clone()),
    ];
    let uses = [
        (VKind::Secret, pod_secrets(p)),
        (VKind::ConfigMap, pod_config_maps(p)),
        (VKind::Pvc, claim_names(p)),
        (VKind::Claim, resource_claims(p)),
    ];
    for (kind, names) in uses {
        edges.extend(names.iter().map(|n| (VKey::new(kind, ns, n), pod.clone())));
    }
    edges
}

fn text<'v>(v: &'v Value, pointer: &str) -> &'v str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
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
            "resourceClaims": [{"name": "gpu", "resourceClaimName": "gpu-claim"}],
            "containers": [{"name": "c", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "envs", "key": "k"}}}],
                "envFrom": [{"configMapRef": {"name": "envcfg"}}]}]},
            "status": {"resourceClaimStatuses": [{"name": "t", "resourceClaimName": "tmpl-claim"}]}})
    }

    fn has(edges: &[EdgeKey], kind: VKind, ns: &str, name: &str) -> bool {
        edges.iter().any(|(f, _)| *f == VKey::new(kind, ns, name))
    }

    #[test]
    fn a_pod_uses_what_its_spec_references() {
        let e = edges_of(Source::Pod, &pod());
        assert_eq!(e[0], (VKey::new(VKind::Pod, "ns", "p"), VKey::new(VKind::Node, "", "n1")));
        for s in ["pull", "vol", "proj", "envs", "csisecret"] {
            assert!(has(&e, VKind::Secret, "ns", s), "{s}");
        }
        assert!(!has(&e, VKind::Secret, "other", "vol"), "other namespaces are not related");
        assert!(!has(&e, VKind::Secret, "ns", "unrelated"));
        for c in ["cfg", "pcfg", "envcfg"] {
            assert!(has(&e, VKind::ConfigMap, "ns", c), "{c}");
        }
        assert!(has(&e, VKind::Pvc, "ns", "data"));
        assert!(has(&e, VKind::Pvc, "ns", "p-e"), "generic ephemeral volume claim");
        assert!(has(&e, VKind::ServiceAccount, "ns", "sa"));
        assert!(has(&e, VKind::Claim, "ns", "gpu-claim"));
        assert!(has(&e, VKind::Claim, "ns", "tmpl-claim"));
    }

    #[test]
    fn a_pod_not_bound_names_nothing_and_its_service_account_defaults() {
        let mut p = pod();
        p["spec"]["nodeName"] = json!("");
        assert!(edges_of(Source::Pod, &p).is_empty());
        let bare = json!({"metadata": {"name": "b", "namespace": "ns"}, "spec": {"nodeName": "n"}});
        assert!(has(&edges_of(Source::Pod, &bare), VKind::ServiceAccount, "ns", "default"));
    }

    #[test]
    fn volumes_claims_and_node_objects_name_their_edges() {
        let pvc =
            json!({"metadata": {"name": "c", "namespace": "ns"}, "spec": {"volumeName": "v"}});
        assert_eq!(
            edges_of(Source::Pvc, &pvc),
            vec![(VKey::new(VKind::Pv, "", "v"), VKey::new(VKind::Pvc, "ns", "c"))]
        );
        let unbound = json!({"metadata": {"name": "c", "namespace": "ns"}, "spec": {}});
        assert!(edges_of(Source::Pvc, &unbound).is_empty());
        let pv = json!({"metadata": {"name": "v"}, "spec": {
            "csi": {"driver": "d", "nodePublishSecretRef": {"name": "a", "namespace": "x"}},
            "azureFile": {"secretName": "b"}}});
        let e = edges_of(Source::Pv, &pv);
        assert!(has(&e, VKind::Secret, "x", "a"));
        assert!(has(&e, VKind::Secret, ANY_NAMESPACE, "b"), "no namespace: any");
        let va = json!({"metadata": {"name": "va"}, "spec": {"nodeName": "n1"}});
        assert_eq!(
            edges_of(Source::VolumeAttachment, &va),
            vec![(VKey::new(VKind::VolumeAttachment, "", "va"), VKey::new(VKind::Node, "", "n1"))]
        );
        let slice = json!({"metadata": {"name": "s"}, "spec": {"allNodes": true}});
        assert!(edges_of(Source::Slice, &slice).is_empty());
    }
}
