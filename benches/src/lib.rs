//! Shared fixtures of the criterion benchmarks: a realistic ~4 KB pod and stores filled
//! with many of them.

use serde_json::{Value, json};

/// A pod as a kubelet-managed workload has it: labels, owner, two containers with
/// env, probes, resources and mounts, a scheduled status with conditions. ~4 KB of JSON.
pub fn pod(i: usize) -> Value {
    let container = |name: &str, image: &str| {
        json!({
            "name": name, "image": image, "imagePullPolicy": "IfNotPresent",
            "args": ["--port=8080", "--verbose", "--config=/etc/app/config.yaml"],
            "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
            "env": ((0..8).map(|e| json!({"name": format!("ENV_{e}"), "value": format!("value-{e}-{i}")})).collect::<Vec<_>>()),
            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"}, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
            "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 5, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}, {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        })
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("web-{i:06}"), "namespace": format!("ns-{}", i % 100),
            "uid": format!("6c1b2c4e-0000-4000-8000-{i:012}"), "resourceVersion": "12345",
            "creationTimestamp": "2024-05-01T12:00:00Z", "generateName": "web-",
            "labels": {"app": "web", "tier": "frontend", "pod-template-hash": "5d8f7c9b6"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f7c9b6", "uid": "1d2e3f40-0000-4000-8000-000000000001", "controller": true, "blockOwnerDeletion": true}],
        },
        "spec": {
            "containers": [container("app", "registry.example.com/app:1.2.3"), container("sidecar", "registry.example.com/proxy:2.0")],
            "volumes": [{"name": "config", "configMap": {"name": "app-config", "defaultMode": 420}},
                        {"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}]}}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "nodeName": format!("node-{}", i % 500), "schedulerName": "default-scheduler",
            "securityContext": {}, "priority": 0, "enableServiceLinks": true, "preemptionPolicy": "PreemptLowerPriority",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
        },
        "status": {
            "phase": "Running", "hostIP": "10.0.0.1", "podIP": format!("10.244.{}.{}", (i / 250) % 250, i % 250),
            "podIPs": [{"ip": format!("10.244.{}.{}", (i / 250) % 250, i % 250)}], "startTime": "2024-05-01T12:00:01Z", "qosClass": "Burstable",
            "conditions": (["Initialized", "Ready", "ContainersReady", "PodScheduled"].iter().map(|t| json!({"type": t, "status": "True", "lastTransitionTime": "2024-05-01T12:00:05Z"})).collect::<Vec<_>>()),
            "containerStatuses": (["app", "sidecar"].iter().map(|n| json!({"name": n, "ready": true, "restartCount": 0, "started": true, "image": "registry.example.com/app:1.2.3", "imageID": "registry.example.com/app@sha256:0123456789abcdef", "containerID": "containerd://0123456789abcdef", "state": {"running": {"startedAt": "2024-05-01T12:00:03Z"}}})).collect::<Vec<_>>()),
        }
    })
}
