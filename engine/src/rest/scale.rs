//! The `scale` subresource (autoscaling/v1 Scale) of deployments, replicasets,
//! statefulsets and replicationcontrollers: a view of `spec.replicas`, `status.replicas`
//! and the selector; writes change only `spec.replicas`, through the same
//! optimistic-concurrency loop as any update.

use super::patch::{self, PatchType};
use super::update::guaranteed_update;
use super::{Request, Scope, get, object};
use crate::body::Response;
use crate::negotiation::{self, body_format};
use crate::status::ApiError;
use kapi_codec::ResourceType;
use kapi_codec::{format, meta};
use serde_json::{Value, json};

pub async fn get(scope: &Scope<'_>) -> Result<Response, ApiError> {
    let name = scope.url_name()?;
    let obj = get::read(scope, name).await?;
    Ok(negotiation::respond(200, &scale_of(&scope.rt, &obj), scope.output, scope.pretty))
}

pub async fn update(req: &Request<'_>, scope: &Scope<'_>) -> Result<Response, ApiError> {
    let name = scope.url_name()?;
    let fmt = body_format(req.header(http::header::CONTENT_TYPE))?;
    let body = format::decode(&req.body, fmt).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if body.get("kind").and_then(Value::as_str) != Some("Scale") {
        return Err(ApiError::BadRequest("the body of a scale update must be a Scale".into()));
    }
    if meta::name(&body).is_some_and(|n| n != name) {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            meta::name(&body).unwrap_or("")
        )));
    }
    let replicas = replicas_of(&body)?;
    let pinned = object::resource_version(&body)?;
    let out = guaranteed_update(scope, name, pinned, |current| {
        Ok(with_replicas(&scope.rt, current, replicas))
    })
    .await?;
    Ok(negotiation::respond(200, &scale_of(&scope.rt, &out), scope.output, scope.pretty))
}

pub async fn patch(req: &Request<'_>, scope: &Scope<'_>) -> Result<Response, ApiError> {
    let name = scope.url_name()?;
    let kind: PatchType = patch::patch_type(req.header(http::header::CONTENT_TYPE))?;
    let body = req.body.clone();
    let out = guaranteed_update(scope, name, None, |current| {
        let patched = patch::apply(
            kind,
            &scale_of(&scope.rt, current),
            &body,
            "io.k8s.api.autoscaling.v1.Scale",
        )?;
        Ok(with_replicas(&scope.rt, current, replicas_of(&patched)?))
    })
    .await?;
    Ok(negotiation::respond(200, &scale_of(&scope.rt, &out), scope.output, scope.pretty))
}

fn replicas_of(scale: &Value) -> Result<i64, ApiError> {
    let r = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
    let r = r
        .as_i64()
        .ok_or_else(|| ApiError::BadRequest("spec.replicas must be an integer".into()))?;
    if r < 0 {
        let cause = kapi_codec::FieldError::invalid(
            "spec.replicas",
            &json!(r),
            "must be greater than or equal to 0",
        );
        return Err(ApiError::Invalid(scale_target(), vec![cause]));
    }
    Ok(r)
}

fn scale_target() -> crate::status::Target {
    crate::status::Target {
        group: "autoscaling".into(),
        resource: "scale".into(),
        kind: "Scale".into(),
        name: String::new(),
    }
}

/// Where a type keeps its replicas and selector: upstream's fixed fields for the
/// built-in workloads, the CRD's `subresources.scale` paths for custom resources (a
/// custom selector is already a string).
struct Paths {
    spec_replicas: String,
    status_replicas: String,
    selector: Option<String>,
    selector_is_string: bool,
}

fn paths(rt: &ResourceType) -> Paths {
    let pointer = |p: &str| format!("/{}", p.trim_start_matches('.').replace('.', "/"));
    match rt.custom.as_ref().and_then(|c| c.scale.as_ref()) {
        Some(s) => Paths {
            spec_replicas: pointer(&s.spec_replicas),
            status_replicas: pointer(&s.status_replicas),
            selector: s.label_selector.as_deref().map(pointer),
            selector_is_string: true,
        },
        None => Paths {
            spec_replicas: "/spec/replicas".into(),
            status_replicas: "/status/replicas".into(),
            selector: Some("/spec/selector".into()),
            selector_is_string: false,
        },
    }
}

/// `obj` with the value at `pointer` set, creating the objects on the way.
fn set_at(obj: &mut Value, pointer: &str, v: Value) {
    let mut cur = obj;
    let mut parts = pointer.trim_start_matches('/').split('/').peekable();
    while let Some(part) = parts.next() {
        let Some(o) = cur.as_object_mut() else { return };
        if parts.peek().is_none() {
            o.insert(part.to_string(), v);
            return;
        }
        cur = o.entry(part).or_insert_with(|| json!({}));
    }
}

fn with_replicas(rt: &ResourceType, obj: &Value, replicas: i64) -> Value {
    let mut out = obj.clone();
    set_at(&mut out, &paths(rt).spec_replicas, json!(replicas));
    out
}

/// The Scale view of a workload.
pub fn scale_of(rt: &ResourceType, obj: &Value) -> Value {
    let p = paths(rt);
    let selector = p.selector.as_deref().and_then(|s| obj.pointer(s));
    let selector = if p.selector_is_string {
        selector.and_then(Value::as_str).unwrap_or("").to_string()
    } else {
        selector_string(selector)
    };
    let m = |k: &str| meta::meta_str(obj, k).map(String::from);
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m("name"),
            "namespace": m("namespace"),
            "uid": m("uid"),
            "resourceVersion": m("resourceVersion"),
            "creationTimestamp": m("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer(&p.spec_replicas).cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": obj.pointer(&p.status_replicas).cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// A selector as its canonical string (requirements sorted by key), from either a
/// LabelSelector or a ReplicationController's plain map.
fn selector_string(sel: Option<&Value>) -> String {
    let Some(Value::Object(sel)) = sel else { return String::new() };
    let mut reqs: Vec<(String, String)> = Vec::new();
    let labels = match sel.get("matchLabels") {
        Some(Value::Object(l)) => Some(l),
        _ if !sel.contains_key("matchExpressions") => Some(sel),
        _ => None,
    };
    for (k, v) in labels.into_iter().flatten() {
        reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
    }
    for e in sel.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or("").to_string();
        let mut values: Vec<&str> =
            e["values"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        values.sort_unstable();
        let text = match e["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            _ => format!("!{key}"),
        };
        reqs.push((key, text));
    }
    reqs.sort();
    reqs.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_view_of_a_deployment() {
        let d = json!({"metadata": {"name": "d", "namespace": "n", "uid": "u", "resourceVersion": "5"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "x"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]}},
            "status": {"replicas": 2}});
        let deployments = kapi_codec::Registry::builtin().get("apps", "v1", "deployments").unwrap();
        let s = scale_of(deployments, &d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=x,tier in (a,b)");
        assert_eq!(s["metadata"]["resourceVersion"], "5");
        let rc = json!({"spec": {"selector": {"b": "2", "a": "1"}}});
        let rcs = kapi_codec::Registry::builtin().get("", "v1", "replicationcontrollers").unwrap();
        assert_eq!(scale_of(rcs, &rc)["status"]["selector"], "a=1,b=2");
        assert_eq!(with_replicas(deployments, &d, 7)["spec"]["replicas"], 7);
    }
}

#[cfg(test)]
mod custom_tests {
    use super::*;

    /// A custom resource's Scale reads and writes the CRD's paths, and its selector is
    /// the string at labelSelectorPath.
    #[test]
    fn custom_scale_uses_the_crds_paths() {
        let crd = json!({"metadata": {"name": "gizmos.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gizmos", "kind": "Gizmo"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"scale": {
                "specReplicasPath": ".spec.size", "statusReplicasPath": ".status.count",
                "labelSelectorPath": ".status.selector"}}}]}});
        let rt = kapi_codec::custom::types_from_crd(&crd).remove(0);
        let obj = json!({"metadata": {"name": "g"}, "spec": {"size": 4},
                         "status": {"count": 2, "selector": "app=g"}});
        let s = scale_of(&rt, &obj);
        assert_eq!(
            (s["spec"]["replicas"].clone(), s["status"]["replicas"].clone()),
            (json!(4), json!(2))
        );
        assert_eq!(s["status"]["selector"], "app=g");
        let mut out = obj.clone();
        set_at(&mut out, &paths(&rt).spec_replicas, json!(7));
        assert_eq!(out["spec"]["size"], 7);
    }
}
