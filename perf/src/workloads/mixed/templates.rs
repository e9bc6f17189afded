//! The objects of the clusterloader2 load profile, as its templates make them
//! (reconcile-objects/deployment.yaml, services/service.yaml,
//! configmaps-secrets/configmap.yaml and secret.yaml) with their default parameters; and
//! the Pod a ReplicaSet controller would make from a Deployment's template.

use serde_json::{Value, json};

/// Image of the profile's pods.
pub const IMAGE: &str = "registry.k8s.io/pause:3.9";

/// A Service selecting `svc=<name>`.
pub fn service(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"svc": name}, "ports": [{"port": 80, "targetPort": 80}]},
    })
}

/// The ConfigMap of deployment `name` number `index` (immutable but for 10% of them).
pub fn configmap(name: &str, index: usize) -> Value {
    let mut cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"all-queries": "kubernetes.default\nmetadata.google.internal\ngoogle.com\n"},
    });
    if !matches!(index % 20, 0 | 19) {
        cm["immutable"] = true.into();
    }
    cm
}

/// The Secret of deployment `name` number `index` (immutable but for 10% of them).
pub fn secret(name: &str, index: usize) -> Value {
    let mut s = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "type": "Opaque",
        "data": {"password": "c2NhbGFiaWxpdHkK"},
    });
    if !matches!(index % 20, 10 | 19) {
        s["immutable"] = true.into();
    }
    s
}

/// The pod template's labels of deployment `name` served by service `svc`.
fn labels(name: &str, svc: &str) -> Value {
    json!({"name": name, "svc": svc, "group": "load"})
}

/// The pod spec of deployment `name`: pause, 5m CPU, 20M memory, its ConfigMap and Secret.
fn pod_spec(name: &str) -> Value {
    let toleration = |key: &str| json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 900});
    json!({
        "containers": [{
            "name": name,
            "image": IMAGE,
            "env": [{"name": "ENV_VAR", "value": ""}],
            "resources": {"requests": {"cpu": "5m", "memory": "20M"}},
            "volumeMounts": [
                {"name": "configmap", "mountPath": "/var/configmap"},
                {"name": "secret", "mountPath": "/var/secret"},
            ],
        }],
        "terminationGracePeriodSeconds": 1,
        "tolerations": [toleration("node.kubernetes.io/not-ready"), toleration("node.kubernetes.io/unreachable")],
        "volumes": [
            {"name": "configmap", "configMap": {"name": name}},
            {"name": "secret", "secret": {"secretName": name}},
        ],
    })
}

/// Deployment `name` with `replicas`, its pods labelled for service `svc`.
pub fn deployment(name: &str, svc: &str, replicas: usize) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"group": "load", "svc": svc}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"name": name}},
            "template": {"metadata": {"labels": labels(name, svc)}, "spec": pod_spec(name)},
        },
    })
}

/// Pod `pod` of deployment `name`, as its ReplicaSet would create it.
pub fn pod(pod: &str, name: &str, svc: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod, "labels": labels(name, svc)},
        "spec": pod_spec(name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_follow_the_templates() {
        let d = deployment("small-deployment-3", "small-service-3", 5);
        assert_eq!(d["spec"]["replicas"], 5);
        let tpl = &d["spec"]["template"];
        assert_eq!(tpl["metadata"]["labels"]["name"], "small-deployment-3");
        assert_eq!(tpl["spec"]["volumes"][0]["configMap"]["name"], "small-deployment-3");
        let p = pod("small-deployment-3-x1", "small-deployment-3", "small-service-3");
        assert_eq!(p["metadata"]["labels"], tpl["metadata"]["labels"]);
        assert_eq!(service("s")["spec"]["selector"]["svc"], "s");
        assert_eq!(configmap("c", 0).get("immutable"), None);
        assert_eq!(configmap("c", 1)["immutable"], true);
        assert_eq!(secret("s", 10).get("immutable"), None);
        assert_eq!(secret("s", 0)["immutable"], true);
    }
}
