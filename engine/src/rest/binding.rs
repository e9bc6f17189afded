//! The `binding` subresource of pods (what a scheduler POSTs): assigns an unscheduled pod
//! to a node, as upstream's BindingREST. The pod is changed in storage directly (as
//! upstream's `assignPod`, not through the pod update strategy, which forbids changing
//! `spec.nodeName`): `spec.nodeName` is set, the binding's annotations and labels are
//! copied (the labels carry what PodTopologyLabels admission put on the Binding), and
//! the `PodScheduled` condition becomes True. Answers 201 with a Success Status.

use super::{Request, Scope, object};
use crate::admission::{Attributes, Operation};
use crate::body::Response;
use crate::cache::written;
use crate::negotiation::{self, body_format};
use crate::status::{self, ApiError};
use kapi_codec::{format, meta};
use kapi_storage::{Precondition, StorageError};
use serde_json::{Map, Value, json};

/// Attempts of the read-modify-write loop before giving up with a conflict.
const MAX_ATTEMPTS: usize = 16;

pub async fn create(req: &Request<'_>, scope: &Scope<'_>) -> Result<Response, ApiError> {
    let name = scope.url_name()?;
    let fmt = body_format(req.header(http::header::CONTENT_TYPE))?;
    let mut binding =
        format::decode(&req.body, fmt).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let attrs = Attributes::new(scope, Operation::Create, name, None);
    super::admit::mutating(scope, &attrs, &mut binding).await?;
    let node = check(&binding, name)?;
    super::admit::validating(scope, &attrs, &binding).await?;
    let copied = Copied {
        annotations: meta_map(&binding, "annotations"),
        labels: meta_map(&binding, "labels"),
    };
    if !scope.dry_run()? {
        assign(scope, name, &node, &copied).await?;
    }
    let mut ok = status::success(None);
    ok["code"] = json!(201);
    Ok(negotiation::respond(201, &ok, scope.output, scope.pretty))
}

/// What a Binding's metadata gives the pod it binds.
#[derive(Debug, Default)]
struct Copied {
    annotations: Map<String, Value>,
    labels: Map<String, Value>,
}

/// The binding's `metadata.<field>` map (empty when absent).
fn meta_map(binding: &Value, field: &str) -> Map<String, Value> {
    meta::metadata(binding)
        .and_then(|m| m.get(field))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// The node a valid Binding for pod `name` targets.
fn check(binding: &Value, name: &str) -> Result<String, ApiError> {
    if binding.get("kind").and_then(Value::as_str).is_some_and(|k| k != "Binding") {
        return Err(ApiError::BadRequest("the body of a binding must be a Binding".into()));
    }
    let bound = meta::name(binding).unwrap_or("");
    if bound != name {
        return Err(ApiError::BadRequest(format!(
            "name in URL ({name}) does not match name in Binding object ({bound})"
        )));
    }
    let target = binding.get("target").cloned().unwrap_or(Value::Null);
    let kind = target.get("kind").and_then(Value::as_str).unwrap_or("");
    if !kind.is_empty() && kind != "Node" {
        return Err(ApiError::BadRequest(format!(
            "target.kind: Invalid value: \"{kind}\": must be empty or 'Node'"
        )));
    }
    match target.get("name").and_then(Value::as_str) {
        Some(node) if !node.is_empty() => Ok(node.to_string()),
        _ => Err(ApiError::BadRequest("target.name: Required value".into())),
    }
}

async fn assign(
    scope: &Scope<'_>,
    name: &str,
    node: &str,
    copied: &Copied,
) -> Result<(), ApiError> {
    let key = scope.key(name);
    let mut target = scope.target(name);
    target.resource = "pods/binding".into();
    for _ in 0..MAX_ATTEMPTS {
        let kv = scope.app.store.get(&key).await.map_err(|e| ApiError::from_storage(e, &target))?;
        let kv = kv.ok_or_else(|| ApiError::NotFound(scope.target(name)))?;
        let mut pod = object::from_stored(&scope.rt, &kv)?;
        bind(&mut pod, node, copied).map_err(|why| ApiError::Conflict(target.clone(), why))?;
        // The cache's feed takes what this write made instead of decoding it again.
        let written = written::to_stored(scope.app, &scope.rt, &key, &pod).await?;
        let bytes = written.bytes.clone();
        let updated =
            scope.app.store.update(&key, bytes, Precondition::ModRevision(kv.mod_revision));
        match updated.await {
            Ok(_) => return Ok(()),
            Err(e) => {
                written.withdraw(&key);
                match e {
                    StorageError::Conflict { .. } => continue,
                    e => return Err(ApiError::from_storage(e, &target)),
                }
            }
        }
    }
    Err(ApiError::Conflict(target, "the object has been modified; please try again".into()))
}

/// Upstream's `assignPod` on a pod object; the error says why the pod cannot be bound.
fn bind(pod: &mut Value, node: &str, copied: &Copied) -> Result<(), String> {
    let name = meta::name(pod).unwrap_or("").to_string();
    if meta::meta_str(pod, "deletionTimestamp").is_some() {
        return Err(format!("pod {name} is being deleted, cannot be assigned to a host"));
    }
    if let Some(bound) =
        pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty())
    {
        return Err(format!("pod {name} is already assigned to node \"{bound}\""));
    }
    pod["spec"]["nodeName"] = json!(node);
    merge(pod, "annotations", &copied.annotations);
    merge(pod, "labels", &copied.labels);
    scheduled(pod);
    Ok(())
}

/// Set `from`'s entries in the pod's `metadata.<field>` (replacing the same keys).
fn merge(pod: &mut Value, field: &str, from: &Map<String, Value>) {
    if from.is_empty() {
        return;
    }
    let existing = meta::metadata_mut(pod).entry(field).or_insert_with(|| json!({}));
    if !existing.is_object() {
        *existing = json!({});
    }
    if let Some(m) = existing.as_object_mut() {
        m.extend(from.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// Set the `PodScheduled` condition to True (added when missing).
fn scheduled(pod: &mut Value) {
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    let conditions =
        pod["status"].as_object_mut().map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(Value::Array(conditions)) = conditions else { return };
    let now = json!(crate::time::now_rfc3339());
    match conditions.iter_mut().find(|c| c["type"] == "PodScheduled") {
        Some(c) if c["status"] == "True" => {}
        Some(c) => {
            c["status"] = json!("True");
            c["lastTransitionTime"] = now;
        }
        None => conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(name: &str, node: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name}, "target": {"kind": "Node", "name": node}})
    }

    #[test]
    fn bindings_are_checked_as_upstream() {
        assert_eq!(check(&binding("p", "n1"), "p").unwrap(), "n1");
        assert!(check(&binding("q", "n1"), "p").is_err());
        assert!(check(&binding("p", ""), "p").is_err());
        let svc = json!({"kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Service", "name": "x"}});
        assert!(check(&svc, "p").is_err());
    }

    #[test]
    fn binding_sets_the_node_and_the_scheduled_condition_once() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": []}, "status": {"phase": "Pending"}});
        let notes: Map<String, Value> = [("a".to_string(), json!("b"))].into_iter().collect();
        bind(&mut pod, "n1", &Copied { annotations: notes, ..Default::default() }).unwrap();
        assert_eq!(pod["spec"]["nodeName"], "n1");
        assert_eq!(pod["metadata"]["annotations"]["a"], "b");
        assert_eq!(pod["status"]["conditions"][0]["type"], "PodScheduled");
        assert_eq!(pod["status"]["conditions"][0]["status"], "True");
        let again = bind(&mut pod, "n2", &Copied::default()).unwrap_err();
        assert!(again.contains("already assigned to node \"n1\""), "{again}");
        let mut deleting = json!({"metadata": {"name": "p", "deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}});
        assert!(
            bind(&mut deleting, "n1", &Copied::default()).unwrap_err().contains("being deleted")
        );
    }

    #[test]
    fn a_bindings_labels_are_copied_onto_the_pod() {
        let mut pod = json!({"metadata": {"name": "p", "labels": {"app": "web", "zone": "old"}},
            "spec": {}});
        let labels: Map<String, Value> = [("zone".to_string(), json!("z1"))].into_iter().collect();
        bind(&mut pod, "n1", &Copied { labels, ..Default::default() }).unwrap();
        assert_eq!(pod["metadata"]["labels"], json!({"app": "web", "zone": "z1"}));
        assert!(pod["metadata"].get("annotations").is_none());
    }
}
