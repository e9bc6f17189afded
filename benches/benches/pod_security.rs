//! The cost of PodSecurity's evaluation of one pod (issue #18): a typical defaulted pod
//! (two containers, an init container, probes, volumes, a service account token) checked
//! against `restricted:latest` — compliant (every check runs, nothing is written) and
//! violating (the messages are built) — and the whole decision of a namespace labelled
//! `enforce=restricted`, `warn=restricted`, `audit=baseline`.

use criterion::{Criterion, criterion_group, criterion_main};
use kapi::admission::podsecurity::api::{Level, LevelVersion, Version, policy_for};
use kapi::admission::podsecurity::checks::Pod;
use kapi::admission::podsecurity::decision::decide;
use kapi::admission::podsecurity::evaluate::evaluate;
use serde_json::{Value, json};
use std::hint::black_box;

fn container(name: &str, restricted: bool) -> Value {
    let sc = if restricted {
        json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}})
    } else {
        json!({"privileged": true})
    };
    json!({
        "name": name, "image": "registry.example/app:1.2.3", "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "MODE", "value": "fast"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
            "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 10},
        "volumeMounts": [{"name": "data", "mountPath": "/data"},
            {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}],
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "securityContext": sc,
    })
}

fn pod(restricted: bool) -> Value {
    json!({
        "metadata": {"name": "web-7d4b9c-x2x9q", "namespace": "team", "labels": {"app": "web"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [container("init", true)],
            "containers": [container("app", restricted), container("sidecar", true)],
            "volumes": [{"name": "data", "emptyDir": {}},
                {"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}],
            "serviceAccountName": "default", "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
        }
    })
}

fn pod_security(c: &mut Criterion) {
    let restricted = LevelVersion { level: Level::Restricted, version: Version::LATEST };
    let good = pod(true);
    let bad = pod(false);
    c.bench_function("podsecurity/evaluate_restricted_compliant", |b| {
        b.iter(|| black_box(evaluate(restricted, &Pod::of(black_box(&good)))))
    });
    c.bench_function("podsecurity/evaluate_restricted_violating", |b| {
        b.iter(|| black_box(evaluate(restricted, &Pod::of(black_box(&bad)))))
    });
    let labels = json!({
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "baseline",
    });
    c.bench_function("podsecurity/decide_compliant_pod", |b| {
        b.iter(|| {
            let (policy, errs) = policy_for(black_box(&labels).as_object());
            black_box(decide(&policy, &errs, &Pod::of(&good), true))
        })
    });
}

criterion_group!(benches, pod_security);
criterion_main!(benches);
