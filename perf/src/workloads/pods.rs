//! The pod template (read from a JSON manifest at run time) and the setup step that makes
//! sure a set of named pods exists.
//!
//! The template is serialized once with a placeholder name and split around it, so each
//! create body is two copies and the name: no JSON encoding per request.

use super::{Ctx, PerfError, SETUP_CLIENTS, expect};
use crate::client::{JSON, Req};
use bytes::Bytes;
use http::Method;
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const PLACEHOLDER: &str = "kapi-perf-name-placeholder";

/// Whether this run's objects are the PerfPod custom resource (`--custom-resource`; one
/// workload per process, so set once at start).
static CUSTOM: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Group, version and plural of the custom resource `--custom-resource` measures.
pub const CUSTOM_GROUP: &str = "perf.kapi.dev";
pub const CUSTOM_PLURAL: &str = "perfpods";

/// Use the PerfPod custom resource instead of pods for this run.
pub fn use_custom_resource(on: bool) {
    let _ = CUSTOM.set(on);
}

fn custom() -> bool {
    CUSTOM.get().copied().unwrap_or(false)
}

/// The CRD of the PerfPod custom resource.
pub fn custom_crd() -> Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{CUSTOM_PLURAL}.{CUSTOM_GROUP}")},
        "spec": {"group": CUSTOM_GROUP, "scope": "Namespaced",
                 "names": {"plural": CUSTOM_PLURAL, "singular": "perfpod", "kind": "PerfPod"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": {
                                   "type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    })
}

/// Metadata the server sets; dropped from the template.
const SERVER_FIELDS: [&str; 8] = [
    "namespace",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generateName",
    "managedFields",
    "selfLink",
    "generation",
];

/// A pod manifest ready to be stamped with names.
#[derive(Debug, Clone)]
pub struct PodTemplate {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl PodTemplate {
    /// Read the template from `path`.
    pub fn load(path: &Path) -> Result<PodTemplate, PerfError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            PerfError::Setup(format!(
                "reading pod template {} (see --pod-template): {e}",
                path.display()
            ))
        })?;
        PodTemplate::from_json(&text)
            .map_err(|e| PerfError::Setup(format!("{}: {e}", path.display())))
    }

    /// Build the template from a pod manifest in JSON.
    pub fn from_json(text: &str) -> Result<PodTemplate, String> {
        let mut pod: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        if pod.get("kind").is_some_and(|k| k != "Pod") {
            return Err(format!("kind is {}, not Pod", pod["kind"]));
        }
        if custom()
            && let Some(o) = pod.as_object_mut()
        {
            o.insert("apiVersion".into(), Value::from(format!("{CUSTOM_GROUP}/v1")));
            o.insert("kind".into(), Value::from("PerfPod"));
        }
        let meta = pod
            .as_object_mut()
            .ok_or("not a JSON object")?
            .entry("metadata")
            .or_insert_with(|| Value::Object(Default::default()));
        let meta = meta.as_object_mut().ok_or("metadata is not an object")?;
        for field in SERVER_FIELDS {
            meta.remove(field);
        }
        meta.insert("name".into(), Value::from(PLACEHOLDER));
        let text = serde_json::to_string(&pod).map_err(|e| e.to_string())?;
        let quoted = format!("\"{PLACEHOLDER}\"");
        let at = text.find(&quoted).ok_or("placeholder not found")?;
        let head = text.as_bytes()[..at + 1].to_vec();
        let tail = text.as_bytes()[at + quoted.len() - 1..].to_vec();
        Ok(PodTemplate { head, tail })
    }

    /// The manifest with `name` (a DNS-1123 name: nothing to escape).
    pub fn body(&self, name: &str) -> Bytes {
        let mut out = Vec::with_capacity(self.len() + name.len());
        out.extend_from_slice(&self.head);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&self.tail);
        Bytes::from(out)
    }

    /// The manifest with `name`, scheduled to `node` (`spec.nodeName` set).
    pub fn body_on_node(&self, name: &str, node: &str) -> Bytes {
        let body = self.body(name);
        let key = b"\"spec\":{";
        let Some(at) = body.windows(key.len()).position(|w| w == key) else { return body };
        let at = at + key.len();
        let mut out = Vec::with_capacity(body.len() + node.len() + 16);
        out.extend_from_slice(&body[..at]);
        out.extend_from_slice(format!("\"nodeName\":\"{node}\"").as_bytes());
        if body.get(at) != Some(&b'}') {
            out.push(b',');
        }
        out.extend_from_slice(&body[at..]);
        Bytes::from(out)
    }

    /// Size of a manifest, without its name.
    pub fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Path of the pods of namespace `ns`.
pub fn pods_path(ns: &str) -> String {
    if custom() {
        return format!("/apis/{CUSTOM_GROUP}/v1/namespaces/{ns}/{CUSTOM_PLURAL}");
    }
    format!("/api/v1/namespaces/{ns}/pods")
}

/// How many pods the namespace holds, from one page of one (`remainingItemCount` + 1);
/// None when the server does not say.
async fn pods_held(ctx: &Ctx) -> Option<usize> {
    let r = ctx.setup.send(Req::get(format!("{}?limit=1", pods_path(&ctx.ns))).json()).await;
    let r = r.ok().filter(|r| r.status == 200)?;
    let page: Value = serde_json::from_slice(&r.body).ok()?;
    let items = page.get("items")?.as_array()?.len() as u64;
    let remaining = page.pointer("/metadata/remainingItemCount").and_then(Value::as_u64);
    Some((items + remaining.unwrap_or(0)) as usize)
}

/// Create the pods of `names` that do not exist yet, `SETUP_CLIENTS` at a time. When the
/// namespace already holds as many pods (a later round of `compare`), nothing is sent:
/// 10,000 creates answered 409 are no free check on a server still busy from the last
/// round.
pub async fn ensure_pods(
    ctx: &Ctx,
    tpl: &PodTemplate,
    names: Vec<String>,
) -> Result<(), PerfError> {
    if pods_held(ctx).await.is_some_and(|held| held >= names.len()) {
        return Ok(());
    }
    let names = Arc::new(names);
    let next = Arc::new(AtomicUsize::new(0));
    let failure: Arc<Mutex<Option<PerfError>>> = Arc::default();
    let path = Arc::new(pods_path(&ctx.ns));
    let tpl = Arc::new(tpl.clone());
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..SETUP_CLIENTS {
        let (names, next, failure) = (names.clone(), next.clone(), failure.clone());
        let (client, path, tpl) = (ctx.setup.clone(), path.clone(), tpl.clone());
        set.spawn(async move {
            while let Some(name) = names.get(next.fetch_add(1, Ordering::Relaxed)) {
                let req = Req::new(Method::POST, path.as_str()).body(tpl.body(name), JSON).json();
                let result = match client.send(req).await {
                    Ok(r) => expect(&r, &[201, 409], "creating a pod"),
                    Err(e) => Err(e.into()),
                };
                if let Err(e) = result {
                    failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                    next.store(usize::MAX / 2, Ordering::Relaxed);
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    let failure = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
    failure.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_is_stamped_with_names() {
        let manifest = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bench","namespace":"x","uid":"u","labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}"#;
        let tpl = PodTemplate::from_json(manifest).unwrap();
        let pod: Value = serde_json::from_slice(&tpl.body("perf-1")).unwrap();
        assert_eq!(pod["metadata"]["name"], "perf-1");
        assert_eq!(pod["metadata"]["labels"]["a"], "b");
        assert!(pod["metadata"].get("namespace").is_none() && pod["metadata"].get("uid").is_none());
        assert_eq!(pod["spec"]["containers"][0]["image"], "i");
        let placed: Value = serde_json::from_slice(&tpl.body_on_node("p", "n1")).unwrap();
        assert_eq!(placed["spec"]["nodeName"], "n1");
        assert_eq!(placed["spec"]["containers"][0]["image"], "i");
        let bare = PodTemplate::from_json(r#"{"kind":"Pod","spec":{}}"#).unwrap();
        let placed: Value = serde_json::from_slice(&bare.body_on_node("p", "n2")).unwrap();
        assert_eq!(placed["spec"], serde_json::json!({"nodeName": "n2"}));
        assert!(PodTemplate::from_json(r#"{"kind":"Service"}"#).is_err());
        assert!(PodTemplate::from_json("[1]").is_err());
        assert!(PodTemplate::from_json("{").is_err());
    }
}
