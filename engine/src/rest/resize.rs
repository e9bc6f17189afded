//! `pods/resize` writes as upstream's resize strategy: the write changes only the
//! `resources` and `resizePolicy` of the current pod's containers (matched by name; init
//! containers only when they are sidecars, `restartPolicy: Always`); everything else the
//! client sent is dropped.

use serde_json::Value;

/// The pod the write produces: `current` with the client's container resources.
pub fn select(new: &Value, current: &Value) -> Value {
    let mut out = current.clone();
    for key in ["containers", "initContainers"] {
        let sent = new.pointer(&format!("/spec/{key}")).and_then(Value::as_array);
        let Some(list) = out.pointer_mut(&format!("/spec/{key}")).and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in list.iter_mut().filter(|c| key == "containers" || is_sidecar(c)) {
            let name = c.get("name").cloned();
            let Some(from) = sent.into_iter().flatten().find(|s| s.get("name") == name.as_ref())
            else {
                continue;
            };
            for field in ["resources", "resizePolicy"] {
                copy(c, from, field);
            }
        }
    }
    out
}

fn is_sidecar(c: &Value) -> bool {
    c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
}

fn copy(to: &mut Value, from: &Value, field: &str) {
    let Some(o) = to.as_object_mut() else { return };
    match from.get(field) {
        Some(v) => o.insert(field.into(), v.clone()),
        None => o.shift_remove(field),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Regression: pods/resize (listed by discovery) answered 405.
    #[test]
    fn only_container_resources_are_written() {
        let current = json!({"metadata": {"labels": {"a": "b"}}, "spec": {
            "containers": [{"name": "app", "image": "nginx", "resources": {}}],
            "initContainers": [{"name": "init", "image": "busybox"}]}});
        let sent = json!({"metadata": {"labels": {"x": "y"}}, "spec": {
            "containers": [{"name": "app", "image": "other",
                "resources": {"requests": {"cpu": "200m"}}}],
            "initContainers": [{"name": "init", "image": "busybox",
                "resources": {"requests": {"cpu": "1"}}}]}});
        let out = select(&sent, &current);
        assert_eq!(out["spec"]["containers"][0]["resources"]["requests"]["cpu"], "200m");
        assert_eq!(out["spec"]["containers"][0]["image"], "nginx");
        assert_eq!(out["metadata"]["labels"], json!({"a": "b"}));
        assert!(out["spec"]["initContainers"][0].get("resources").is_none());
    }
}
