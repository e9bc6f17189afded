//! kapi on etcd keeps upstream's data layout: keys where upstream v1.35 puts them and
//! values as upstream stores them (the `k8s\0` protobuf envelope for built-in types, no
//! resourceVersion inside, every Go non-pointer field present as upstream's marshaller
//! writes it), checked with an independent protobuf implementation (k8s-pb prost types);
//! and a value written into etcd the upstream way is served by kapi.
//! An etcd outage turns /readyz/etcd red and requests into fast 503s, and kapi recovers.
//! Skipped with a message when no etcd binary is installed.

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use kapi_e2e::etcd::{self, Etcd};
use kapi_e2e::{Server, ServerOptions, eventually};
use prost::Message;
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn client(e: &Etcd) -> etcd_client::Client {
    etcd_client::Client::connect(e.endpoint_list(), None).await.expect("etcd client")
}

/// The envelope of a stored value: (apiVersion, kind, raw message).
fn unwrap(value: &[u8]) -> (String, String, Vec<u8>) {
    let body = value.strip_prefix(b"k8s\0".as_slice()).expect("k8s\\0 magic");
    let u = Unknown::decode(body).expect("runtime.Unknown");
    let tm = u.type_meta.unwrap_or_default();
    (tm.api_version.unwrap_or_default(), tm.kind.unwrap_or_default(), u.raw.unwrap_or_default())
}

/// An etcd member and kapi on it; None (skipped, with a message) without etcd.
fn on_etcd(args: &[&str]) -> Option<(Etcd, Server)> {
    if !etcd::available() {
        eprintln!("skipped: no etcd binary (install etcd-server)");
        return None;
    }
    let e = Etcd::start();
    let s = Server::start_with(ServerOptions {
        etcd_servers: Some(e.endpoints()),
        extra_args: args.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    });
    Some((e, s))
}

#[test]
fn objects_are_stored_under_upstream_keys_as_upstream_protobuf() {
    let Some((e, s)) = on_etcd(&[]) else { return };
    s.kubectl_ok(&["run", "web", "--image=nginx:1.27"]);
    s.kubectl_ok(&["create", "deployment", "api", "--image=busybox"]);
    let rt = runtime();
    let (pod, deployment, keys) = rt.block_on(async {
        let mut c = client(&e).await;
        let pod =
            c.get("/registry/pods/default/web", None).await.unwrap().kvs()[0].value().to_vec();
        let deployment = c.get("/registry/deployments/default/api", None).await.unwrap().kvs()[0]
            .value()
            .to_vec();
        let mut keys = Vec::new();
        for k in [
            "/registry/deployments/default/api",
            "/registry/services/specs/default/kubernetes",
            "/registry/services/endpoints/default/kubernetes",
            "/registry/namespaces/kube-system",
            "/registry/priorityclasses/system-node-critical",
        ] {
            keys.push((k, c.get(k, None).await.unwrap().kvs().len()));
        }
        (pod, deployment, keys)
    });
    for (k, n) in keys {
        assert_eq!(n, 1, "{k} is not where upstream keeps it");
    }
    let (api_version, kind, raw) = unwrap(&pod);
    assert_eq!((api_version.as_str(), kind.as_str()), ("v1", "Pod"));
    let pod = core::Pod::decode(raw.as_slice()).expect("a Pod message");
    // Written as upstream's marshaller writes: canonical (prost writes the same bytes back)
    // and with every Go non-pointer field present even when zero.
    assert_eq!(pod.encode_to_vec(), raw, "stored bytes are not in canonical field order");
    let m = pod.metadata.clone().unwrap_or_default();
    assert_eq!(m.name.as_deref(), Some("web"));
    assert!(m.uid.is_some_and(|u| !u.is_empty()));
    assert_eq!(m.resource_version.as_deref(), Some(""), "resourceVersion stored in the value");
    assert_eq!(m.generate_name.as_deref(), Some(""));
    assert!(m.generation.is_some() && m.self_link.as_deref() == Some(""));
    assert_eq!(m.creation_timestamp.and_then(|t| t.nanos), Some(0));
    assert!(m.deletion_timestamp.is_none(), "a nil pointer was written");
    let spec = pod.spec.clone().unwrap_or_default();
    assert_eq!((spec.host_network, spec.node_name.as_deref()), (Some(false), Some("")));
    assert_eq!(spec.active_deadline_seconds, None, "a nil pointer was written");
    let c = &spec.containers[0];
    assert_eq!(c.image.as_deref(), Some("nginx:1.27"));
    assert_eq!((c.working_dir.as_deref(), c.tty), (Some(""), Some(false)));
    assert!(c.resources.is_some() && c.liveness_probe.is_none());
    let status = pod.status.clone().expect("status written even when empty");
    assert_eq!(status.pod_ip.as_deref(), Some(""));
    let (_, kind, raw) = unwrap(&deployment);
    assert_eq!(kind, "Deployment");
    let d = apps::Deployment::decode(raw.as_slice()).expect("a Deployment message");
    assert_eq!(d.encode_to_vec(), raw, "stored bytes are not in canonical field order");
    let spec = d.spec.unwrap_or_default();
    assert_eq!((spec.paused, spec.min_ready_seconds), (Some(false), Some(0)));
    let template_meta = spec.template.and_then(|t| t.metadata).unwrap_or_default();
    assert_eq!(template_meta.name.as_deref(), Some(""));
    // etcd request latencies, upstream's metric and labels.
    let metrics = s.kubectl_ok(&["get", "--raw", "/metrics"]);
    for series in [
        "etcd_request_duration_seconds_count{operation=\"create\",type=\"pods\"}",
        "etcd_request_duration_seconds_bucket{operation=\"create\",type=\"deployments.apps\",le=\"60\"}",
        "etcd_request_duration_seconds_count{operation=\"listWithCount\",type=\"pods\"}",
    ] {
        assert!(metrics.contains(series), "{series} missing from /metrics");
    }
}

#[test]
fn a_value_written_the_upstream_way_is_served() {
    let Some((e, s)) = on_etcd(&[]) else { return };
    let cm = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            name: Some("upstream".into()),
            namespace: Some("default".into()),
            uid: Some("3f1e6c1a-0000-4000-8000-000000000001".into()),
            creation_timestamp: Some(meta::Time { seconds: Some(1_767_225_600), nanos: Some(0) }),
            labels: [("written-by".to_string(), "kube-apiserver".to_string())].into(),
            ..Default::default()
        }),
        data: [("k".to_string(), "v".to_string())].into(),
        ..Default::default()
    };
    let envelope = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("ConfigMap".into()),
        }),
        raw: Some(cm.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut value = b"k8s\0".to_vec();
    value.extend(envelope.encode_to_vec());
    let rev = runtime().block_on(async {
        let mut c = client(&e).await;
        let put = c.put("/registry/configmaps/default/upstream", value, None).await.unwrap();
        put.header().unwrap().revision()
    });
    let mut got = String::new();
    let served = eventually(Duration::from_secs(10), || {
        let out = s.kubectl(&["get", "configmap", "upstream", "-o", "json"]);
        got = String::from_utf8_lossy(&out.stdout).into_owned();
        out.status.success()
    });
    assert!(served, "kapi did not serve the upstream-written ConfigMap");
    let obj: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(obj["data"]["k"], "v");
    assert_eq!(obj["metadata"]["labels"]["written-by"], "kube-apiserver");
    assert_eq!(obj["metadata"]["creationTimestamp"], "2026-01-01T00:00:00Z");
    assert_eq!(obj["metadata"]["resourceVersion"], rev.to_string());
    // And kapi updates it in place, still as protobuf.
    s.kubectl_ok(&["label", "configmap", "upstream", "edited=yes"]);
    let stored = runtime().block_on(async {
        let mut c = client(&e).await;
        c.get("/registry/configmaps/default/upstream", None).await.unwrap().kvs()[0]
            .value()
            .to_vec()
    });
    let (_, kind, raw) = unwrap(&stored);
    assert_eq!(kind, "ConfigMap");
    let back = core::ConfigMap::decode(raw.as_slice()).unwrap();
    assert_eq!(back.metadata.unwrap().labels.get("edited").map(String::as_str), Some("yes"));
}

#[test]
fn an_etcd_outage_fails_readyz_and_requests_fast_then_recovers() {
    let Some((mut e, s)) = on_etcd(&["--etcd-request-timeout", "2s"]) else { return };
    s.kubectl_ok(&["create", "configmap", "before"]);
    e.members[0].kill();
    let failing = eventually(Duration::from_secs(15), || {
        // kubectl prints the body of a failed request in its error message.
        let out = s.kubectl(&["get", "--raw", "/readyz?verbose"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        !out.status.success() && text.contains("[-]etcd failed")
    });
    assert!(failing, "/readyz did not report the etcd outage");
    let started = std::time::Instant::now();
    let write = s.kubectl(&["create", "configmap", "during", "--request-timeout=30s"]);
    assert!(!write.status.success(), "a write succeeded with etcd down");
    let err = String::from_utf8_lossy(&write.stderr);
    assert!(err.contains("etcd"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15), "the write did not fail fast");
    e.members[0].restart();
    let back = eventually(Duration::from_secs(30), || {
        s.kubectl(&["get", "--raw", "/readyz/etcd"]).status.success()
            && s.kubectl(&["create", "configmap", "after"]).status.success()
    });
    assert!(back, "kapi did not recover after etcd came back");
    let names = s.kubectl_ok(&["get", "configmaps", "-o", "name"]);
    assert!(names.contains("configmap/before") && names.contains("configmap/after"), "{names}");
}
