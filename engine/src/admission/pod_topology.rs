//! PodTopologyLabels: a pod bound to a node gets the node's topology labels
//! (`topology.kubernetes.io/zone` and `topology.kubernetes.io/region`, the exact keys of
//! upstream's default configuration), so the downward API can expose them. As upstream
//! v1.35 (feature gate PodTopologyLabelsAdmission, beta and on by default; kapi has no
//! feature gates, so the plugin is on whenever it is in the chain):
//! - a `pods/binding` create whose `target.kind` is `Node` gets the labels on the
//!   Binding (the binding subresource copies a Binding's labels onto the pod);
//! - a pod create that already names `spec.nodeName` gets them on the pod;
//! - the node's value replaces a label of the same key already there;
//! - a node that does not exist (or has none of the labels) changes nothing.
//!
//! The node is read from the nodes watch cache (upstream's node lister); every other
//! request costs one `handles` call, and a pod create without `spec.nodeName` one
//! field lookup.

use super::cached::{self, NODES};
use super::{Attributes, Operation, Plugin, Step};
use crate::status::ApiError;
use kapi_codec::pointer::Pointer as _;
use serde_json::{Map, Value};

/// The node labels copied (upstream's `defaultConfig`).
pub const TOPOLOGY_LABELS: [&str; 2] =
    ["topology.kubernetes.io/zone", "topology.kubernetes.io/region"];

/// Upstream's PodTopologyLabels plugin.
pub struct PodTopologyLabels;

impl Plugin for PodTopologyLabels {
    fn name(&self) -> &'static str {
        "PodTopologyLabels"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        let rt = a.rt();
        a.operation == Operation::Create
            && rt.group.is_empty()
            && &*rt.plural == "pods"
            && matches!(a.subresource(), None | Some("binding"))
    }

    fn mutates(&self) -> bool {
        true
    }

    fn admit<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a mut Value) -> Step<'a> {
        let Some(node) = bound_node(a.subresource().is_some(), obj) else {
            return super::done(Ok(()));
        };
        let node = node.to_string();
        Box::pin(admit(a, obj, node))
    }
}

/// The node a Binding (`binding`) or a pod names, when the plugin has work: a Binding
/// whose target is a `Node`, a pod already scheduled.
pub fn bound_node(binding: bool, obj: &Value) -> Option<&str> {
    let name = if binding {
        let target = obj.get("target")?;
        if target.get("kind").and_then(Value::as_str) != Some("Node") {
            return None;
        }
        target.get("name")
    } else {
        obj.at("/spec/nodeName")
    };
    name.and_then(Value::as_str).filter(|n| !n.is_empty())
}

async fn admit(a: &Attributes<'_>, obj: &mut Value, node: String) -> Result<(), ApiError> {
    let Some(node) = cached::get_shared(a.scope.app, NODES, None, &node).await else {
        return Ok(());
    };
    copy_labels(&node, obj);
    Ok(())
}

/// Copy the node's topology labels onto `obj`'s labels (replacing the same keys).
pub fn copy_labels(node: &Value, obj: &mut Value) {
    let Some(theirs) = kapi_codec::meta::labels(node) else { return };
    let found: Vec<(&str, &Value)> = TOPOLOGY_LABELS
        .iter()
        .filter_map(|k| theirs.get(*k).filter(|v| v.is_string()).map(|v| (*k, v)))
        .collect();
    if found.is_empty() || !obj.is_object() {
        return;
    }
    let meta = kapi_codec::meta::metadata_mut(obj);
    let labels = meta.entry("labels").or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    if let Some(labels) = labels.as_object_mut() {
        for (k, v) in found {
            labels.insert(k.to_string(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(labels: Value) -> Value {
        json!({"metadata": {"name": "n1", "labels": labels}})
    }

    #[test]
    fn only_the_zone_and_region_labels_are_copied() {
        let n = node(json!({"topology.kubernetes.io/zone": "z1",
            "topology.kubernetes.io/region": "r1", "topology.kubernetes.io/rack": "k",
            "kubernetes.io/hostname": "n1", "topology.k8s.io/zone": "old"}));
        let mut b = json!({"kind": "Binding", "metadata": {"name": "p"}});
        copy_labels(&n, &mut b);
        assert_eq!(
            b["metadata"]["labels"],
            json!({"topology.kubernetes.io/zone": "z1", "topology.kubernetes.io/region": "r1"})
        );
    }

    #[test]
    fn the_nodes_value_replaces_an_existing_label_and_others_stay() {
        let n = node(json!({"topology.kubernetes.io/zone": "z1"}));
        let mut pod = json!({"metadata": {"name": "p",
            "labels": {"app": "web", "topology.kubernetes.io/zone": "mine"}}});
        copy_labels(&n, &mut pod);
        assert_eq!(
            pod["metadata"]["labels"],
            json!({"app": "web", "topology.kubernetes.io/zone": "z1"})
        );
    }

    #[test]
    fn a_node_without_topology_labels_changes_nothing() {
        let mut pod = json!({"metadata": {"name": "p"}});
        copy_labels(&node(json!({"other": "x"})), &mut pod);
        copy_labels(&json!({"metadata": {"name": "n1"}}), &mut pod);
        assert_eq!(pod, json!({"metadata": {"name": "p"}}));
    }

    #[test]
    fn only_node_targets_and_scheduled_pods_are_handled() {
        let b = |kind: &str| json!({"target": {"kind": kind, "name": "n1"}});
        assert_eq!(bound_node(true, &b("Node")), Some("n1"));
        assert_eq!(bound_node(true, &b("")), None, "upstream checks the kind is Node");
        assert_eq!(bound_node(true, &b("Service")), None);
        assert_eq!(bound_node(false, &json!({"spec": {"nodeName": "n2"}})), Some("n2"));
        assert_eq!(bound_node(false, &json!({"spec": {"nodeName": ""}})), None);
        assert_eq!(bound_node(false, &json!({"spec": {}})), None);
    }
}
