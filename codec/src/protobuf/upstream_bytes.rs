//! kapi writes the bytes upstream writes: realistic objects (a pod as upstream holds it
//! after `kubectl run` and the apiserver's defaulting and admission, a ConfigMap, a
//! kubelet's node Lease and Node, a defaulted Deployment, provisioned PersistentVolumes, a
//! PodDisruptionBudget and a HorizontalPodAutoscaler with their controllers' status, an
//! Ingress, NetworkPolicies, a StorageClass, a ControllerRevision, a CRD, APIServices, a
//! webhook configuration, a kubelet's CSR, a StatefulSet, review responses, a DRA slice
//! and claim, a CSI driver's objects, an IngressClass, a RuntimeClass, an admission
//! policy and binding, a ResourceQuota, a LimitRange) are encoded by kapi
//! from their JSON trees and compared byte for byte with the same objects built
//! independently as k8s-pb prost messages filled the way Go fills its structs (every
//! non-pointer field present, zero or not; pointers only when set) and encoded by prost
//! (fields in number order, maps sorted).

use super::*;
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::coordination::v1 as coordination;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message as _;
use serde_json::json;
use std::collections::BTreeMap;

/// 2026-01-01T00:00:00Z
const T0: i64 = 1_767_225_600;
const UID: &str = "6f1c2a53-9a5e-4d8e-9b7c-1e0b2f3a4c5d";

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn e() -> Option<String> {
    Some(String::new())
}

/// A set `metav1.Time`: whole seconds, nanos written as 0.
fn time(secs: i64) -> Option<meta::Time> {
    Some(meta::Time { seconds: Some(secs), nanos: Some(0) })
}

fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs.iter().map(|(k, v)| (k.to_string(), Quantity { string: s(v) })).collect()
}

/// ObjectMeta as Go holds a stored object's: every string present, generation 0.
fn go_meta(name: &str, namespace: &str, created: i64) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(name),
        generate_name: e(),
        namespace: s(namespace),
        self_link: e(),
        uid: s(UID),
        resource_version: e(),
        generation: Some(0),
        creation_timestamp: time(created),
        ..Default::default()
    }
}

fn managed(manager: &str, fields: &str) -> meta::ManagedFieldsEntry {
    meta::ManagedFieldsEntry {
        manager: s(manager),
        operation: s("Update"),
        api_version: s("v1"),
        time: time(T0),
        fields_type: s("FieldsV1"),
        fields_v1: Some(meta::FieldsV1 { raw: Some(fields.as_bytes().to_vec()) }),
        subresource: e(),
    }
}

/// The `k8s\0` document upstream stores for `raw` of `kind`.
fn upstream_doc(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta { api_version: s(api_version), kind: s(kind) }),
        raw: Some(raw),
        content_encoding: e(),
        content_type: e(),
    };
    let mut doc = MAGIC.to_vec();
    doc.extend(unknown.encode_to_vec());
    doc
}

/// kapi's bytes for `obj` equal upstream's, and they read back as `obj`.
fn assert_same_bytes(obj: &Value, upstream: &[u8]) {
    let mut ours = Vec::new();
    encode_object(obj, &mut ours).expect("encode");
    if ours != upstream {
        let at = ours.iter().zip(upstream).position(|(a, b)| a != b).unwrap_or(ours.len());
        panic!(
            "{} bytes differ from upstream's at offset {at} (ours {} bytes, upstream {})\n\
             ours:     {:?}\nupstream: {:?}",
            obj["kind"],
            ours.len(),
            upstream.len(),
            &ours[at.saturating_sub(16)..(at + 24).min(ours.len())],
            &upstream[at.saturating_sub(16)..(at + 24).min(upstream.len())],
        );
    }
    assert_eq!(&decode_object(&ours).expect("decode"), obj, "{} view", obj["kind"]);
}

const POD_FIELDS: &str = r#"{"f:metadata":{"f:labels":{".":{},"f:run":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:enableServiceLinks":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}"#;

const MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn pod_json() -> Value {
    let fields: Value = serde_json::from_str(POD_FIELDS).unwrap();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web", "namespace": "default", "uid": UID,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"run": "web"},
            "managedFields": [{"manager": "kubectl-run", "operation": "Update", "apiVersion": "v1",
                "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields}]
        },
        "spec": {
            "volumes": [{"name": "kube-api-access-x7k2p", "projected": {
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt",
                                   "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace",
                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                ],
                "defaultMode": 420}}],
            "containers": [{
                "name": "web", "image": "nginx:1.27", "resources": {},
                "volumeMounts": [{"name": "kube-api-access-x7k2p", "readOnly": true,
                                  "mountPath": MOUNT}],
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"
            }],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
            "serviceAccount": "default", "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                 "effect": "NoExecute", "tolerationSeconds": 300}
            ],
            "priority": 0, "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority"
        },
        "status": {"phase": "Pending", "qosClass": "BestEffort"}
    })
}

fn toleration(key: &str) -> core::Toleration {
    core::Toleration {
        key: s(key),
        operator: s("Exists"),
        value: e(),
        effect: s("NoExecute"),
        toleration_seconds: Some(300),
    }
}

fn api_access_volume() -> core::Volume {
    let token = core::ServiceAccountTokenProjection {
        audience: e(),
        expiration_seconds: Some(3607),
        path: s("token"),
    };
    let ca = core::ConfigMapProjection {
        local_object_reference: Some(core::LocalObjectReference { name: s("kube-root-ca.crt") }),
        items: vec![core::KeyToPath { key: s("ca.crt"), path: s("ca.crt"), mode: None }],
        optional: None,
    };
    let namespace = core::DownwardAPIVolumeFile {
        path: s("namespace"),
        field_ref: Some(core::ObjectFieldSelector {
            api_version: s("v1"),
            field_path: s("metadata.namespace"),
        }),
        ..Default::default()
    };
    let sources = vec![
        core::VolumeProjection { service_account_token: Some(token), ..Default::default() },
        core::VolumeProjection { config_map: Some(ca), ..Default::default() },
        core::VolumeProjection {
            downward_api: Some(core::DownwardAPIProjection { items: vec![namespace] }),
            ..Default::default()
        },
    ];
    let projected = core::ProjectedVolumeSource { sources, default_mode: Some(420) };
    core::Volume {
        name: s("kube-api-access-x7k2p"),
        volume_source: Some(core::VolumeSource {
            projected: Some(projected),
            ..Default::default()
        }),
    }
}

fn web_container() -> core::Container {
    core::Container {
        name: s("web"),
        image: s("nginx:1.27"),
        working_dir: e(),
        resources: Some(core::ResourceRequirements::default()),
        volume_mounts: vec![core::VolumeMount {
            name: s("kube-api-access-x7k2p"),
            read_only: Some(true),
            mount_path: s(MOUNT),
            sub_path: e(),
            sub_path_expr: e(),
            ..Default::default()
        }],
        termination_message_path: s("/dev/termination-log"),
        termination_message_policy: s("File"),
        image_pull_policy: s("IfNotPresent"),
        stdin: Some(false),
        stdin_once: Some(false),
        tty: Some(false),
        ..Default::default()
    }
}

fn pod_spec() -> core::PodSpec {
    core::PodSpec {
        volumes: vec![api_access_volume()],
        containers: vec![web_container()],
        restart_policy: s("Always"),
        termination_grace_period_seconds: Some(30),
        dns_policy: s("ClusterFirst"),
        service_account_name: s("default"),
        service_account: s("default"),
        node_name: e(),
        host_network: Some(false),
        host_pid: Some(false),
        host_ipc: Some(false),
        security_context: Some(core::PodSecurityContext::default()),
        hostname: e(),
        subdomain: e(),
        scheduler_name: s("default-scheduler"),
        tolerations: vec![
            toleration("node.kubernetes.io/not-ready"),
            toleration("node.kubernetes.io/unreachable"),
        ],
        priority_class_name: e(),
        priority: Some(0),
        enable_service_links: Some(true),
        preemption_policy: s("PreemptLowerPriority"),
        ..Default::default()
    }
}

#[test]
fn a_pod_as_kubectl_run_leaves_it_is_written_as_upstream_writes_it() {
    let status = core::PodStatus {
        observed_generation: Some(0),
        phase: s("Pending"),
        message: e(),
        reason: e(),
        nominated_node_name: e(),
        host_ip: e(),
        pod_ip: e(),
        qos_class: s("BestEffort"),
        resize: e(),
        ..Default::default()
    };
    let mut metadata = go_meta("web", "default", T0);
    metadata.labels = strings(&[("run", "web")]);
    metadata.managed_fields = vec![managed("kubectl-run", POD_FIELDS)];
    let pod = core::Pod { metadata: Some(metadata), spec: Some(pod_spec()), status: Some(status) };
    assert_same_bytes(&pod_json(), &upstream_doc("v1", "Pod", pod.encode_to_vec()));
}

#[test]
fn a_config_map_is_written_as_upstream_writes_it_with_its_keys_sorted() {
    let obj = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "apps", "uid": UID,
                     "creationTimestamp": "2026-01-01T00:00:00Z",
                     "labels": {"tier": "web", "app": "shop"},
                     "annotations": {"note": "n"}},
        "data": {"zeta": "last", "alpha": "first", "mid": "x"},
        "binaryData": {"blob": "AP8="}
    });
    let mut metadata = go_meta("settings", "apps", T0);
    metadata.labels = strings(&[("tier", "web"), ("app", "shop")]);
    metadata.annotations = strings(&[("note", "n")]);
    let cm = core::ConfigMap {
        metadata: Some(metadata),
        data: strings(&[("zeta", "last"), ("alpha", "first"), ("mid", "x")]),
        binary_data: [("blob".to_string(), vec![0x00, 0xff])].into(),
        immutable: None,
    };
    let want = upstream_doc("v1", "ConfigMap", cm.encode_to_vec());
    // The JSON keeps the client's key order; upstream's bytes have them sorted.
    let ours = {
        let mut out = Vec::new();
        encode_object(&obj, &mut out).unwrap();
        out
    };
    assert_eq!(ours, want);
    let back = decode_object(&ours).unwrap();
    assert_eq!(back["data"], obj["data"]);
    assert_eq!(back["metadata"]["annotations"], json!({"note": "n"}));
}

/// Go writes a map entry's value even when it is empty (prost would leave it out, so
/// this one is checked against the bytes gogo's generated code writes).
#[test]
fn empty_map_values_are_written_as_go_writes_them() {
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "c"}, "data": {"k": ""}});
    let mut ours = Vec::new();
    encode_object(&obj, &mut ours).unwrap();
    // data (field 2): entry of 5 bytes, key (1) "k", value (2) "".
    let entry: &[u8] = &[0x12, 5, 0x0a, 1, b'k', 0x12, 0];
    assert!(ours.windows(entry.len()).any(|w| w == entry), "{ours:?}");
    assert_eq!(decode_object(&ours).unwrap()["data"], json!({"k": ""}));
}

#[test]
fn a_node_lease_is_written_as_upstream_writes_it() {
    let obj = json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "node-1", "namespace": "kube-node-lease", "uid": UID,
                     "creationTimestamp": "2026-01-01T00:00:00Z",
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Node",
                                          "name": "node-1", "uid": UID}]},
        "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40,
                 "renewTime": "2026-01-01T00:00:10.123456Z"}
    });
    let mut metadata = go_meta("node-1", "kube-node-lease", T0);
    metadata.owner_references = vec![meta::OwnerReference {
        api_version: s("v1"),
        kind: s("Node"),
        name: s("node-1"),
        uid: s(UID),
        controller: None,
        block_owner_deletion: None,
    }];
    let lease = coordination::Lease {
        metadata: Some(metadata),
        spec: Some(coordination::LeaseSpec {
            holder_identity: s("node-1"),
            lease_duration_seconds: Some(40),
            renew_time: Some(meta::MicroTime { seconds: Some(T0 + 10), nanos: Some(123_456_000) }),
            ..Default::default()
        }),
    };
    let raw = lease.encode_to_vec();
    assert_same_bytes(&obj, &upstream_doc("coordination.k8s.io/v1", "Lease", raw));
}

fn node_json() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-1", "uid": UID, "creationTimestamp": "2026-01-01T00:00:00Z",
                     "labels": {"kubernetes.io/os": "linux", "kubernetes.io/hostname": "node-1",
                                "kubernetes.io/arch": "amd64"},
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0"}},
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]},
        "status": {
            "capacity": {"pods": "110", "memory": "4026532Ki", "cpu": "2"},
            "allocatable": {"pods": "110", "memory": "3924132Ki", "cpu": "2"},
            "conditions": [{"type": "Ready", "status": "True",
                            "lastHeartbeatTime": "2026-01-01T00:00:05Z",
                            "lastTransitionTime": "2026-01-01T00:00:00Z",
                            "reason": "KubeletReady", "message": "kubelet is posting ready status"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.11"},
                          {"type": "Hostname", "address": "node-1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": "m-1", "systemUUID": "s-1", "bootID": "b-1",
                         "kernelVersion": "6.1.0", "osImage": "Debian GNU/Linux 12",
                         "containerRuntimeVersion": "containerd://1.7.24",
                         "kubeletVersion": "v1.35.0", "kubeProxyVersion": "",
                         "operatingSystem": "linux", "architecture": "amd64"},
            "images": [{"names": ["nginx:1.27"], "sizeBytes": 72_000_000}]
        }
    })
}

#[test]
fn a_registered_node_is_written_as_upstream_writes_it() {
    let mut metadata = go_meta("node-1", "", T0);
    metadata.labels = strings(&[
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/hostname", "node-1"),
        ("kubernetes.io/arch", "amd64"),
    ]);
    metadata.annotations = strings(&[("node.alpha.kubernetes.io/ttl", "0")]);
    let info = core::NodeSystemInfo {
        machine_id: s("m-1"),
        system_uuid: s("s-1"),
        boot_id: s("b-1"),
        kernel_version: s("6.1.0"),
        os_image: s("Debian GNU/Linux 12"),
        container_runtime_version: s("containerd://1.7.24"),
        kubelet_version: s("v1.35.0"),
        kube_proxy_version: e(),
        operating_system: s("linux"),
        architecture: s("amd64"),
        swap: None,
    };
    let status = core::NodeStatus {
        capacity: quantities(&[("pods", "110"), ("memory", "4026532Ki"), ("cpu", "2")]),
        allocatable: quantities(&[("pods", "110"), ("memory", "3924132Ki"), ("cpu", "2")]),
        phase: e(),
        conditions: vec![core::NodeCondition {
            r#type: s("Ready"),
            status: s("True"),
            last_heartbeat_time: time(T0 + 5),
            last_transition_time: time(T0),
            reason: s("KubeletReady"),
            message: s("kubelet is posting ready status"),
        }],
        addresses: vec![
            core::NodeAddress { r#type: s("InternalIP"), address: s("10.0.0.11") },
            core::NodeAddress { r#type: s("Hostname"), address: s("node-1") },
        ],
        daemon_endpoints: Some(core::NodeDaemonEndpoints {
            kubelet_endpoint: Some(core::DaemonEndpoint { port: Some(10250) }),
        }),
        node_info: Some(info),
        images: vec![core::ContainerImage {
            names: vec!["nginx:1.27".into()],
            size_bytes: Some(72_000_000),
        }],
        ..Default::default()
    };
    let spec = core::NodeSpec {
        pod_cidr: s("10.244.1.0/24"),
        pod_cid_rs: vec!["10.244.1.0/24".into()],
        provider_id: e(),
        unschedulable: Some(false),
        external_id: e(),
        ..Default::default()
    };
    let node = core::Node { metadata: Some(metadata), spec: Some(spec), status: Some(status) };
    let want = upstream_doc("v1", "Node", node.encode_to_vec());
    let obj = node_json();
    let mut ours = Vec::new();
    encode_object(&obj, &mut ours).unwrap();
    assert_eq!(ours, want);
    // Read back: the same object, maps in Go's (sorted) order aside.
    let back = decode_object(&ours).unwrap();
    assert_eq!(back["status"]["nodeInfo"], obj["status"]["nodeInfo"]);
    assert_eq!(back["status"]["conditions"], obj["status"]["conditions"]);
    assert_eq!(back["metadata"]["labels"], obj["metadata"]["labels"]);
}

/// A Go zero struct is written with its own non-pointer fields: a Pod without spec or
/// status still carries both, as upstream's bytes do.
#[test]
fn absent_non_pointer_structs_are_written_as_go_zero_values() {
    let obj = json!({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": "bare", "namespace": "default", "uid": UID,
                                  "creationTimestamp": "2026-01-01T00:00:00Z"}});
    let spec = core::PodSpec {
        restart_policy: e(),
        dns_policy: e(),
        service_account_name: e(),
        service_account: e(),
        node_name: e(),
        host_network: Some(false),
        host_pid: Some(false),
        host_ipc: Some(false),
        hostname: e(),
        subdomain: e(),
        scheduler_name: e(),
        priority_class_name: e(),
        ..Default::default()
    };
    let status = core::PodStatus {
        observed_generation: Some(0),
        phase: e(),
        message: e(),
        reason: e(),
        nominated_node_name: e(),
        host_ip: e(),
        pod_ip: e(),
        qos_class: e(),
        resize: e(),
        ..Default::default()
    };
    let pod = core::Pod {
        metadata: Some(go_meta("bare", "default", T0)),
        spec: Some(spec),
        status: Some(status),
    };
    let want = upstream_doc("v1", "Pod", pod.encode_to_vec());
    let mut ours = Vec::new();
    encode_object(&obj, &mut ours).unwrap();
    assert_eq!(ours, want);
}

fn percent(p: &str) -> Option<k8s_pb::apimachinery::pkg::util::intstr::IntOrString> {
    Some(k8s_pb::apimachinery::pkg::util::intstr::IntOrString {
        r#type: Some(1),
        int_val: Some(0),
        str_val: s(p),
    })
}

/// A Deployment as upstream holds it after `kubectl create deployment` and defaulting:
/// the template's zero `creationTimestamp` (JSON null) is an empty message, IntOrString
/// percentages carry all three fields, repeated int64s are unpacked (proto2).
#[test]
fn a_defaulted_deployment_is_written_as_upstream_writes_it() {
    let obj = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "default", "uid": UID, "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"app": "api"}},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "api"}},
                "spec": {
                    "containers": [{"name": "busybox", "image": "busybox", "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File", "imagePullPolicy": "Always"}],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "securityContext": {"supplementalGroups": [1000, 2000], "runAsUser": -1},
                    "schedulerName": "default-scheduler"
                }
            },
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600
        },
        "status": {}
    });
    let container = core::Container {
        name: s("busybox"),
        image: s("busybox"),
        image_pull_policy: s("Always"),
        volume_mounts: Vec::new(),
        ..web_container()
    };
    let pod_spec = core::PodSpec {
        volumes: Vec::new(),
        containers: vec![container],
        service_account_name: e(),
        service_account: e(),
        security_context: Some(core::PodSecurityContext {
            supplemental_groups: vec![1000, 2000],
            run_as_user: Some(-1),
            ..Default::default()
        }),
        tolerations: Vec::new(),
        priority: None,
        enable_service_links: None,
        preemption_policy: None,
        ..pod_spec()
    };
    let template_meta = meta::ObjectMeta {
        name: e(),
        generate_name: e(),
        namespace: e(),
        self_link: e(),
        uid: e(),
        resource_version: e(),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        labels: strings(&[("app", "api")]),
        ..Default::default()
    };
    let mut metadata = go_meta("api", "default", T0);
    metadata.generation = Some(1);
    metadata.labels = strings(&[("app", "api")]);
    let spec = apps::DeploymentSpec {
        replicas: Some(1),
        selector: Some(meta::LabelSelector {
            match_labels: strings(&[("app", "api")]),
            match_expressions: Vec::new(),
        }),
        template: Some(core::PodTemplateSpec {
            metadata: Some(template_meta),
            spec: Some(pod_spec),
        }),
        strategy: Some(apps::DeploymentStrategy {
            r#type: s("RollingUpdate"),
            rolling_update: Some(apps::RollingUpdateDeployment {
                max_unavailable: percent("25%"),
                max_surge: percent("25%"),
            }),
        }),
        min_ready_seconds: Some(0),
        revision_history_limit: Some(10),
        paused: Some(false),
        progress_deadline_seconds: Some(600),
    };
    let status = apps::DeploymentStatus {
        observed_generation: Some(0),
        replicas: Some(0),
        updated_replicas: Some(0),
        ready_replicas: Some(0),
        available_replicas: Some(0),
        unavailable_replicas: Some(0),
        ..Default::default()
    };
    let d = apps::Deployment { metadata: Some(metadata), spec: Some(spec), status: Some(status) };
    let want = upstream_doc("apps/v1", "Deployment", d.encode_to_vec());
    let mut ours = Vec::new();
    encode_object(&obj, &mut ours).unwrap();
    assert_eq!(ours, want);
    // Read back as upstream's JSON shows it: the null Time is gone, the rest is the same.
    let back = decode_object(&ours).unwrap();
    assert_eq!(back["spec"]["template"]["metadata"], json!({"labels": {"app": "api"}}));
    assert_eq!(back["spec"]["strategy"], obj["spec"]["strategy"]);
    assert_eq!(back["spec"]["template"]["spec"], obj["spec"]["template"]["spec"]);
    assert_eq!(back["status"], json!({}));
}

/// Two of the bootstrap objects every apiserver writes: a system PriorityClass and the
/// cluster-admin binding (cluster-scoped: namespace written as "").
#[test]
fn bootstrap_objects_are_written_as_upstream_writes_them() {
    let pc = json!({
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": {"name": "system-node-critical", "uid": UID,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "value": 2_000_001_000,
        "description": "Used for system critical pods that must not be moved from their current node.",
        "preemptionPolicy": "PreemptLowerPriority"
    });
    let want = k8s_pb::api::scheduling::v1::PriorityClass {
        metadata: Some(go_meta("system-node-critical", "", T0)),
        value: Some(2_000_001_000),
        global_default: Some(false),
        description: pc["description"].as_str().map(str::to_string),
        preemption_policy: s("PreemptLowerPriority"),
    };
    let raw = want.encode_to_vec();
    assert_same_bytes(&pc, &upstream_doc("scheduling.k8s.io/v1", "PriorityClass", raw));

    let crb = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": "cluster-admin", "uid": UID,
                     "creationTimestamp": "2026-01-01T00:00:00Z",
                     "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                     "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io",
                      "name": "system:masters"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"}
    });
    let mut metadata = go_meta("cluster-admin", "", T0);
    metadata.labels = strings(&[("kubernetes.io/bootstrapping", "rbac-defaults")]);
    metadata.annotations = strings(&[("rbac.authorization.kubernetes.io/autoupdate", "true")]);
    let want = k8s_pb::api::rbac::v1::ClusterRoleBinding {
        metadata: Some(metadata),
        subjects: vec![k8s_pb::api::rbac::v1::Subject {
            kind: s("Group"),
            api_group: s("rbac.authorization.k8s.io"),
            name: s("system:masters"),
            namespace: e(),
        }],
        role_ref: Some(k8s_pb::api::rbac::v1::RoleRef {
            api_group: s("rbac.authorization.k8s.io"),
            kind: s("ClusterRole"),
            name: s("cluster-admin"),
        }),
    };
    let raw = want.encode_to_vec();
    let doc = upstream_doc("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", raw);
    assert_same_bytes(&crb, &doc);
}

fn object_ref(kind: &str, namespace: &str, name: &str, api_version: &str) -> core::ObjectReference {
    core::ObjectReference {
        kind: s(kind),
        namespace: s(namespace),
        name: s(name),
        uid: s(UID),
        api_version: s(api_version),
        resource_version: e(),
        field_path: e(),
    }
}

/// A CSI volume as an external provisioner creates it, bound to its claim; and a
/// hand-made NFS volume (only its required fields set).
#[test]
fn persistent_volumes_are_written_as_upstream_writes_them() {
    let obj = json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": "pvc-7d2f", "uid": UID, "creationTimestamp": "2026-01-01T00:00:00Z",
                     "annotations": {"pv.kubernetes.io/provisioned-by": "ebs.csi.aws.com"},
                     "finalizers": ["kubernetes.io/pv-protection"]},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-0abc", "fsType": "ext4",
                    "volumeAttributes": {"storage.kubernetes.io/csiProvisionerIdentity": "p-1"}},
            "accessModes": ["ReadWriteOnce"],
            "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "default", "name": "data",
                         "uid": UID, "apiVersion": "v1"},
            "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "gp3",
            "volumeMode": "Filesystem",
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "topology.ebs.csi.aws.com/zone", "operator": "In",
                 "values": ["eu-west-1a"]}]}]}}
        },
        "status": {"phase": "Bound", "lastPhaseTransitionTime": "2026-01-01T00:00:01Z"}
    });
    let mut metadata = go_meta("pvc-7d2f", "", T0);
    metadata.annotations = strings(&[("pv.kubernetes.io/provisioned-by", "ebs.csi.aws.com")]);
    metadata.finalizers = vec!["kubernetes.io/pv-protection".into()];
    let csi = core::CSIPersistentVolumeSource {
        driver: s("ebs.csi.aws.com"),
        volume_handle: s("vol-0abc"),
        read_only: Some(false),
        fs_type: s("ext4"),
        volume_attributes: strings(&[("storage.kubernetes.io/csiProvisionerIdentity", "p-1")]),
        ..Default::default()
    };
    let zone = core::NodeSelectorRequirement {
        key: s("topology.ebs.csi.aws.com/zone"),
        operator: s("In"),
        values: vec!["eu-west-1a".into()],
    };
    let spec = core::PersistentVolumeSpec {
        capacity: quantities(&[("storage", "10Gi")]),
        persistent_volume_source: Some(core::PersistentVolumeSource {
            csi: Some(csi),
            ..Default::default()
        }),
        access_modes: vec!["ReadWriteOnce".into()],
        claim_ref: Some(object_ref("PersistentVolumeClaim", "default", "data", "v1")),
        persistent_volume_reclaim_policy: s("Delete"),
        storage_class_name: s("gp3"),
        volume_mode: s("Filesystem"),
        node_affinity: Some(core::VolumeNodeAffinity {
            required: Some(core::NodeSelector {
                node_selector_terms: vec![core::NodeSelectorTerm {
                    match_expressions: vec![zone],
                    match_fields: Vec::new(),
                }],
            }),
        }),
        ..Default::default()
    };
    let status = core::PersistentVolumeStatus {
        phase: s("Bound"),
        message: e(),
        reason: e(),
        last_phase_transition_time: time(T0 + 1),
    };
    let pv =
        core::PersistentVolume { metadata: Some(metadata), spec: Some(spec), status: Some(status) };
    assert_same_bytes(&obj, &upstream_doc("v1", "PersistentVolume", pv.encode_to_vec()));

    let obj = json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": "share", "uid": UID, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"capacity": {"storage": "1Ti"}, "nfs": {"server": "nfs.local", "path": "/export"},
                 "accessModes": ["ReadWriteMany"], "persistentVolumeReclaimPolicy": "Retain",
                 "volumeMode": "Filesystem"},
        "status": {"phase": "Available"}
    });
    let spec = core::PersistentVolumeSpec {
        capacity: quantities(&[("storage", "1Ti")]),
        persistent_volume_source: Some(core::PersistentVolumeSource {
            nfs: Some(core::NfsVolumeSource {
                server: s("nfs.local"),
                path: s("/export"),
                read_only: Some(false),
            }),
            ..Default::default()
        }),
        access_modes: vec!["ReadWriteMany".into()],
        persistent_volume_reclaim_policy: s("Retain"),
        storage_class_name: e(),
        volume_mode: s("Filesystem"),
        ..Default::default()
    };
    let status = core::PersistentVolumeStatus {
        phase: s("Available"),
        message: e(),
        reason: e(),
        ..Default::default()
    };
    let pv = core::PersistentVolume {
        metadata: Some(go_meta("share", "", T0)),
        spec: Some(spec),
        status: Some(status),
    };
    assert_same_bytes(&obj, &upstream_doc("v1", "PersistentVolume", pv.encode_to_vec()));
}

/// A PodDisruptionBudget with the status its controller writes (metav1.Condition's
/// strings have no omitempty: an empty message is shown).
#[test]
fn a_pod_disruption_budget_is_written_as_upstream_writes_it() {
    use k8s_pb::api::policy::v1 as policy;
    let obj = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "default", "uid": UID, "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}},
        "status": {"observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 3,
                   "desiredHealthy": 2, "expectedPods": 3,
                   "conditions": [{"type": "DisruptionAllowed", "status": "True",
                                   "observedGeneration": 1,
                                   "lastTransitionTime": "2026-01-01T00:00:02Z",
                                   "reason": "SufficientPods", "message": ""}]}
    });
    let mut metadata = go_meta("web", "default", T0);
    metadata.generation = Some(1);
    let spec = policy::PodDisruptionBudgetSpec {
        min_available: Some(k8s_pb::apimachinery::pkg::util::intstr::IntOrString {
            r#type: Some(0),
            int_val: Some(2),
            str_val: e(),
        }),
        selector: Some(meta::LabelSelector {
            match_labels: strings(&[("app", "web")]),
            match_expressions: Vec::new(),
        }),
        ..Default::default()
    };
    let status = policy::PodDisruptionBudgetStatus {
        observed_generation: Some(1),
        disrupted_pods: BTreeMap::new(),
        disruptions_allowed: Some(1),
        current_healthy: Some(3),
        desired_healthy: Some(2),
        expected_pods: Some(3),
        conditions: vec![meta::Condition {
            r#type: s("DisruptionAllowed"),
            status: s("True"),
            observed_generation: Some(1),
            last_transition_time: time(T0 + 2),
            reason: s("SufficientPods"),
            message: e(),
        }],
    };
    let pdb = policy::PodDisruptionBudget {
        metadata: Some(metadata),
        spec: Some(spec),
        status: Some(status),
    };
    let raw = pdb.encode_to_vec();
    assert_same_bytes(&obj, &upstream_doc("policy/v1", "PodDisruptionBudget", raw));
}

/// An autoscaling/v2 HorizontalPodAutoscaler on CPU with upstream's default behavior and
/// the status its controller writes.
#[test]
fn a_horizontal_pod_autoscaler_is_written_as_upstream_writes_it() {
    use k8s_pb::api::autoscaling::v2 as hpa;
    let obj = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "uid": UID,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
            "minReplicas": 2, "maxReplicas": 10,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70}}}],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Percent", "value": 100, "periodSeconds": 15}]},
                "scaleDown": {"selectPolicy": "Max", "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15}]}
            }
        },
        "status": {
            "observedGeneration": 1, "lastScaleTime": "2026-01-01T00:01:00Z",
            "currentReplicas": 2, "desiredReplicas": 2,
            "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu",
                "current": {"averageValue": "12m", "averageUtilization": 6}}}],
            "conditions": [{"type": "AbleToScale", "status": "True",
                            "lastTransitionTime": "2026-01-01T00:00:30Z",
                            "reason": "ReadyForNewScale",
                            "message": "recommended size matches current size"}]
        }
    });
    let policy = |t: &str, value: i32| hpa::HpaScalingPolicy {
        r#type: s(t),
        value: Some(value),
        period_seconds: Some(15),
    };
    let spec = hpa::HorizontalPodAutoscalerSpec {
        scale_target_ref: Some(hpa::CrossVersionObjectReference {
            kind: s("Deployment"),
            name: s("web"),
            api_version: s("apps/v1"),
        }),
        min_replicas: Some(2),
        max_replicas: Some(10),
        metrics: vec![hpa::MetricSpec {
            r#type: s("Resource"),
            resource: Some(hpa::ResourceMetricSource {
                name: s("cpu"),
                target: Some(hpa::MetricTarget {
                    r#type: s("Utilization"),
                    average_utilization: Some(70),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }],
        behavior: Some(hpa::HorizontalPodAutoscalerBehavior {
            scale_up: Some(hpa::HpaScalingRules {
                stabilization_window_seconds: Some(0),
                select_policy: s("Max"),
                policies: vec![policy("Pods", 4), policy("Percent", 100)],
                ..Default::default()
            }),
            scale_down: Some(hpa::HpaScalingRules {
                select_policy: s("Max"),
                policies: vec![policy("Percent", 100)],
                ..Default::default()
            }),
        }),
    };
    let status = hpa::HorizontalPodAutoscalerStatus {
        observed_generation: Some(1),
        last_scale_time: time(T0 + 60),
        current_replicas: Some(2),
        desired_replicas: Some(2),
        current_metrics: vec![hpa::MetricStatus {
            r#type: s("Resource"),
            resource: Some(hpa::ResourceMetricStatus {
                name: s("cpu"),
                current: Some(hpa::MetricValueStatus {
                    average_value: Some(Quantity { string: s("12m") }),
                    average_utilization: Some(6),
                    value: None,
                }),
            }),
            ..Default::default()
        }],
        conditions: vec![hpa::HorizontalPodAutoscalerCondition {
            r#type: s("AbleToScale"),
            status: s("True"),
            last_transition_time: time(T0 + 30),
            reason: s("ReadyForNewScale"),
            message: s("recommended size matches current size"),
        }],
    };
    let h = hpa::HorizontalPodAutoscaler {
        metadata: Some(go_meta("web", "default", T0)),
        spec: Some(spec),
        status: Some(status),
    };
    let raw = h.encode_to_vec();
    assert_same_bytes(&obj, &upstream_doc("autoscaling/v2", "HorizontalPodAutoscaler", raw));
}

/// An Ingress with TLS and a load balancer address; a NetworkPolicy admitting one
/// namespace and a CIDR; a default-deny policy whose empty selector is still written.
#[test]
fn networking_objects_are_written_as_upstream_writes_them() {
    use k8s_pb::api::networking::v1 as net;
    let obj = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "shop", "namespace": "default", "uid": UID, "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}],
            "rules": [{"host": "shop.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}
    });
    let mut metadata = go_meta("shop", "default", T0);
    metadata.generation = Some(1);
    let path = net::HttpIngressPath {
        path: s("/"),
        path_type: s("Prefix"),
        backend: Some(net::IngressBackend {
            service: Some(net::IngressServiceBackend {
                name: s("web"),
                port: Some(net::ServiceBackendPort { name: e(), number: Some(80) }),
            }),
            resource: None,
        }),
    };
    let spec = net::IngressSpec {
        ingress_class_name: s("nginx"),
        default_backend: None,
        tls: vec![net::IngressTls {
            hosts: vec!["shop.example.com".into()],
            secret_name: s("shop-tls"),
        }],
        rules: vec![net::IngressRule {
            host: s("shop.example.com"),
            ingress_rule_value: Some(net::IngressRuleValue {
                http: Some(net::HttpIngressRuleValue { paths: vec![path] }),
            }),
        }],
    };
    let status = net::IngressStatus {
        load_balancer: Some(net::IngressLoadBalancerStatus {
            ingress: vec![net::IngressLoadBalancerIngress {
                ip: s("203.0.113.10"),
                hostname: e(),
                ports: Vec::new(),
            }],
        }),
    };
    let ing = net::Ingress { metadata: Some(metadata), spec: Some(spec), status: Some(status) };
    let raw = ing.encode_to_vec();
    assert_same_bytes(&obj, &upstream_doc("networking.k8s.io/v1", "Ingress", raw));

    let obj = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "web", "namespace": "default", "uid": UID, "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{
                "ports": [{"protocol": "TCP", "port": 8080}],
                "from": [
                    {"namespaceSelector": {"matchLabels":
                        {"kubernetes.io/metadata.name": "monitoring"}}},
                    {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}
                ]
            }],
            "policyTypes": ["Ingress"]
        }
    });
    let mut metadata = go_meta("web", "default", T0);
    metadata.generation = Some(1);
    let selector = |k: &str, v: &str| meta::LabelSelector {
        match_labels: strings(&[(k, v)]),
        match_expressions: Vec::new(),
    };
    let spec = net::NetworkPolicySpec {
        pod_selector: Some(selector("app", "web")),
        ingress: vec![net::NetworkPolicyIngressRule {
            ports: vec![net::NetworkPolicyPort {
                protocol: s("TCP"),
                port: Some(k8s_pb::apimachinery::pkg::util::intstr::IntOrString {
                    r#type: Some(0),
                    int_val: Some(8080),
                    str_val: e(),
                }),
                end_port: None,
            }],
            from: vec![
                net::NetworkPolicyPeer {
                    namespace_selector: Some(selector("kubernetes.io/metadata.name", "monitoring")),
                    ..Default::default()
                },
                net::NetworkPolicyPeer {
                    ip_block: Some(net::IpBlock {
                        cidr: s("10.0.0.0/8"),
                        except: vec!["10.1.0.0/16".into()],
                    }),
                    ..Default::default()
                },
            ],
        }],
        egress: Vec::new(),
        policy_types: vec!["Ingress".into()],
    };
    let np = net::NetworkPolicy { metadata: Some(metadata), spec: Some(spec) };
    let raw = np.encode_to_vec();
    assert_same_bytes(&obj, &upstream_doc("networking.k8s.io/v1", "NetworkPolicy", raw));

    let deny = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny", "namespace": "default", "uid": UID,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"policyTypes": ["Ingress"]}
    });
    let np = net::NetworkPolicy {
        metadata: Some(go_meta("deny", "default", T0)),
        spec: Some(net::NetworkPolicySpec {
            pod_selector: Some(meta::LabelSelector::default()),
            policy_types: vec!["Ingress".into()],
            ..Default::default()
        }),
    };
    let want = upstream_doc("networking.k8s.io/v1", "NetworkPolicy", np.encode_to_vec());
    let mut ours = Vec::new();
    encode_object(&deny, &mut ours).unwrap();
    assert_eq!(ours, want);
    assert_eq!(decode_object(&ours).unwrap()["spec"]["podSelector"], json!({}));
}

/// A default StorageClass and the ControllerRevision a StatefulSet keeps.
#[test]
fn storage_classes_and_controller_revisions_are_written_as_upstream_writes_them() {
    let obj = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "gp3", "uid": UID, "creationTimestamp": "2026-01-01T00:00:00Z",
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"encrypted": "true", "type": "gp3"},
        "reclaimPolicy": "Delete", "allowVolumeExpansion": true,
        "volumeBindingMode": "WaitForFirstConsumer"
    });
    let mut metadata = go_meta("gp3", "", T0);
    metadata.annotations = strings(&[("storageclass.kubernetes.io/is-default-class", "true")]);
    let sc = k8s_pb::api::storage::v1::StorageClass {
        metadata: Some(metadata),
        provisioner: s("ebs.csi.aws.com"),
        parameters: strings(&[("encrypted", "true"), ("type", "gp3")]),
        reclaim_policy: s("Delete"),
        mount_options: Vec::new(),
        allow_volume_expansion: Some(true),
        volume_binding_mode: s("WaitForFirstConsumer"),
        allowed_topologies: Vec::new(),
    };
    let raw = sc.encode_to_vec();
    assert_same_bytes(&obj, &upstream_doc("storage.k8s.io/v1", "StorageClass", raw));

    let data = json!({"spec": {"template": {"$patch": "replace", "metadata": {}}}});
    let obj = json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": "db-5d8f7c", "namespace": "default", "uid": UID,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "data": data, "revision": 1
    });
    let cr = apps::ControllerRevision {
        metadata: Some(go_meta("db-5d8f7c", "default", T0)),
        data: Some(k8s_pb::apimachinery::pkg::runtime::RawExtension {
            raw: Some(serde_json::to_vec(&data).unwrap()),
        }),
        revision: Some(1),
    };
    let raw = cr.encode_to_vec();
    assert_same_bytes(&obj, &upstream_doc("apps/v1", "ControllerRevision", raw));
}

/// A JSONSchemaProps as Go holds it: every non-pointer string and bool present.
fn go_schema(
    ty: &str,
) -> k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps {
    k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1::JsonSchemaProps {
        id: e(),
        schema: e(),
        description: e(),
        r#type: s(ty),
        format: e(),
        title: e(),
        exclusive_maximum: Some(false),
        exclusive_minimum: Some(false),
        pattern: e(),
        unique_items: Some(false),
        nullable: Some(false),
        x_kubernetes_embedded_resource: Some(false),
        x_kubernetes_int_or_string: Some(false),
        ..Default::default()
    }
}

/// A CustomResourceDefinition as `kubectl apply` and the apiextensions controllers leave
/// it: a structural schema (a typed additionalProperties, items, a CEL rule), a status
/// subresource, a printer column, the conditions and accepted names.
#[test]
fn a_custom_resource_definition_is_written_as_upstream_writes_it() {
    use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
    let names = json!({"plural": "widgets", "singular": "widget", "shortNames": ["wd"],
                       "kind": "Widget", "listKind": "WidgetList"});
    let obj = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "uid": UID, "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "group": "example.com", "names": names, "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "format": "int32",
                                 "description": "How many."},
                        "labels": {"type": "object",
                                   "additionalProperties": {"type": "string"}},
                        "ports": {"type": "array", "items": {"type": "integer"}},
                        "template": {"type": "object",
                                     "x-kubernetes-preserve-unknown-fields": true}
                    }, "x-kubernetes-validations": [
                        {"rule": "self.size <= 10", "message": "too big"}]},
                    "status": {"type": "object", "properties": {
                        "ready": {"type": "boolean"}}}
                }}},
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"}]
            }],
            "conversion": {"strategy": "None"}
        },
        "status": {
            "conditions": [
                {"type": "NamesAccepted", "status": "True",
                 "lastTransitionTime": "2026-01-01T00:00:00Z", "reason": "NoConflicts",
                 "message": "no conflicts found"},
                {"type": "Established", "status": "True",
                 "lastTransitionTime": "2026-01-01T00:00:00Z",
                 "reason": "InitialNamesAccepted",
                 "message": "the initial names have been accepted"}
            ],
            "acceptedNames": names, "storedVersions": ["v1"]
        }
    });
    let go_names = ext::CustomResourceDefinitionNames {
        plural: s("widgets"),
        singular: s("widget"),
        short_names: vec!["wd".into()],
        kind: s("Widget"),
        list_kind: s("WidgetList"),
        categories: Vec::new(),
    };
    let size = ext::JsonSchemaProps {
        description: s("How many."),
        format: s("int32"),
        ..go_schema("integer")
    };
    let labels = ext::JsonSchemaProps {
        additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool {
            allows: Some(true),
            schema: Some(Box::new(go_schema("string"))),
        })),
        ..go_schema("object")
    };
    let ports = ext::JsonSchemaProps {
        items: Some(Box::new(ext::JsonSchemaPropsOrArray {
            schema: Some(Box::new(go_schema("integer"))),
            j_son_schemas: Vec::new(),
        })),
        ..go_schema("array")
    };
    let template = ext::JsonSchemaProps {
        x_kubernetes_preserve_unknown_fields: Some(true),
        ..go_schema("object")
    };
    let spec_schema = ext::JsonSchemaProps {
        required: vec!["size".into()],
        properties: [
            ("size".to_string(), size),
            ("labels".to_string(), labels),
            ("ports".to_string(), ports),
            ("template".to_string(), template),
        ]
        .into(),
        x_kubernetes_validations: vec![ext::ValidationRule {
            rule: s("self.size <= 10"),
            message: s("too big"),
            message_expression: e(),
            field_path: e(),
            ..Default::default()
        }],
        ..go_schema("object")
    };
    let status_schema = ext::JsonSchemaProps {
        properties: [("ready".to_string(), go_schema("boolean"))].into(),
        ..go_schema("object")
    };
    let root = ext::JsonSchemaProps {
        properties: [("spec".to_string(), spec_schema), ("status".to_string(), status_schema)]
            .into(),
        ..go_schema("object")
    };
    let version = ext::CustomResourceDefinitionVersion {
        name: s("v1"),
        served: Some(true),
        storage: Some(true),
        deprecated: Some(false),
        schema: Some(ext::CustomResourceValidation { open_apiv3_schema: Some(root) }),
        subresources: Some(ext::CustomResourceSubresources {
            status: Some(ext::CustomResourceSubresourceStatus {}),
            scale: None,
        }),
        additional_printer_columns: vec![ext::CustomResourceColumnDefinition {
            name: s("Size"),
            r#type: s("integer"),
            format: e(),
            description: e(),
            priority: Some(0),
            json_path: s(".spec.size"),
        }],
        ..Default::default()
    };
    let condition = |t: &str, reason: &str, message: &str| ext::CustomResourceDefinitionCondition {
        r#type: s(t),
        status: s("True"),
        last_transition_time: time(T0),
        reason: s(reason),
        message: s(message),
        observed_generation: Some(0),
    };
    let mut metadata = go_meta("widgets.example.com", "", T0);
    metadata.generation = Some(1);
    let crd = ext::CustomResourceDefinition {
        metadata: Some(metadata),
        spec: Some(ext::CustomResourceDefinitionSpec {
            group: s("example.com"),
            names: Some(go_names.clone()),
            scope: s("Namespaced"),
            versions: vec![version],
            conversion: Some(ext::CustomResourceConversion { strategy: s("None"), webhook: None }),
            preserve_unknown_fields: Some(false),
        }),
        status: Some(ext::CustomResourceDefinitionStatus {
            conditions: vec![
                condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                condition(
                    "Established",
                    "InitialNamesAccepted",
                    "the initial names have been accepted",
                ),
            ],
            accepted_names: Some(go_names),
            stored_versions: vec!["v1".into()],
            observed_generation: Some(0),
        }),
    };
    let raw = crd.encode_to_vec();
    let doc = upstream_doc("apiextensions.k8s.io/v1", "CustomResourceDefinition", raw);
    assert_same_bytes(&obj, &doc);
}

/// The APIService kube-apiserver keeps for a built-in group/version and an aggregated
/// one (metrics-server's).
#[test]
fn api_services_are_written_as_upstream_writes_them() {
    use k8s_pb::kube_aggregator::pkg::apis::apiregistration::v1 as reg;
    let local = json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1.apps", "uid": UID, "creationTimestamp": "2026-01-01T00:00:00Z",
                     "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
        "spec": {"group": "apps", "version": "v1", "groupPriorityMinimum": 17800,
                 "versionPriority": 15},
        "status": {"conditions": [{"type": "Available", "status": "True",
                                   "lastTransitionTime": "2026-01-01T00:00:00Z",
                                   "reason": "Local",
                                   "message": "Local APIServices are always available"}]}
    });
    let mut metadata = go_meta("v1.apps", "", T0);
    metadata.labels = strings(&[("kube-aggregator.kubernetes.io/automanaged", "onstart")]);
    let available = |reason: &str, message: &str| reg::APIServiceCondition {
        r#type: s("Available"),
        status: s("True"),
        last_transition_time: time(T0),
        reason: s(reason),
        message: s(message),
    };
    let want = reg::APIService {
        metadata: Some(metadata),
        spec: Some(reg::APIServiceSpec {
            group: s("apps"),
            version: s("v1"),
            insecure_skip_tls_verify: Some(false),
            group_priority_minimum: Some(17800),
            version_priority: Some(15),
            ..Default::default()
        }),
        status: Some(reg::APIServiceStatus {
            conditions: vec![available("Local", "Local APIServices are always available")],
        }),
    };
    let raw = want.encode_to_vec();
    assert_same_bytes(&local, &upstream_doc("apiregistration.k8s.io/v1", "APIService", raw));

    let metrics = json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": "v1beta1.metrics.k8s.io", "uid": UID,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"service": {"namespace": "kube-system", "name": "metrics-server", "port": 443},
                 "group": "metrics.k8s.io", "version": "v1beta1",
                 "insecureSkipTLSVerify": true, "groupPriorityMinimum": 100,
                 "versionPriority": 100},
        "status": {"conditions": [{"type": "Available", "status": "True",
                                   "lastTransitionTime": "2026-01-01T00:00:00Z",
                                   "reason": "Passed", "message": "all checks passed"}]}
    });
    let want = reg::APIService {
        metadata: Some(go_meta("v1beta1.metrics.k8s.io", "", T0)),
        spec: Some(reg::APIServiceSpec {
            service: Some(reg::ServiceReference {
                namespace: s("kube-system"),
                name: s("metrics-server"),
                port: Some(443),
            }),
            group: s("metrics.k8s.io"),
            version: s("v1beta1"),
            insecure_skip_tls_verify: Some(true),
            ca_bundle: None,
            group_priority_minimum: Some(100),
            version_priority: Some(100),
        }),
        status: Some(reg::APIServiceStatus {
            conditions: vec![available("Passed", "all checks passed")],
        }),
    };
    let raw = want.encode_to_vec();
    assert_same_bytes(&metrics, &upstream_doc("apiregistration.k8s.io/v1", "APIService", raw));
}

/// A validating webhook as upstream defaults it (failure and match policy, empty
/// selectors, timeout, service port, rule scope).
#[test]
fn a_webhook_configuration_is_written_as_upstream_writes_it() {
    use k8s_pb::api::admissionregistration::v1 as adm;
    let obj = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "policy", "uid": UID, "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "webhooks": [{
            "name": "pods.policy.example.com",
            "clientConfig": {"service": {"namespace": "policy", "name": "webhook",
                                         "path": "/validate", "port": 443},
                             "caBundle": "AAEC"},
            "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""],
                       "apiVersions": ["v1"], "resources": ["pods"], "scope": "*"}],
            "failurePolicy": "Fail", "matchPolicy": "Equivalent",
            "namespaceSelector": {}, "objectSelector": {}, "sideEffects": "None",
            "timeoutSeconds": 10, "admissionReviewVersions": ["v1"],
            "matchConditions": [{"name": "not-system",
                                 "expression": "!request.userInfo.username.startsWith('system:')"}]
        }]
    });
    let mut metadata = go_meta("policy", "", T0);
    metadata.generation = Some(1);
    let webhook = adm::ValidatingWebhook {
        name: s("pods.policy.example.com"),
        client_config: Some(adm::WebhookClientConfig {
            url: None,
            service: Some(adm::ServiceReference {
                namespace: s("policy"),
                name: s("webhook"),
                path: s("/validate"),
                port: Some(443),
            }),
            ca_bundle: Some(vec![0, 1, 2]),
        }),
        rules: vec![adm::RuleWithOperations {
            operations: vec!["CREATE".into(), "UPDATE".into()],
            rule: Some(adm::Rule {
                api_groups: vec![String::new()],
                api_versions: vec!["v1".into()],
                resources: vec!["pods".into()],
                scope: s("*"),
            }),
        }],
        failure_policy: s("Fail"),
        match_policy: s("Equivalent"),
        namespace_selector: Some(meta::LabelSelector::default()),
        object_selector: Some(meta::LabelSelector::default()),
        side_effects: s("None"),
        timeout_seconds: Some(10),
        admission_review_versions: vec!["v1".into()],
        match_conditions: vec![adm::MatchCondition {
            name: s("not-system"),
            expression: s("!request.userInfo.username.startsWith('system:')"),
        }],
    };
    let want =
        adm::ValidatingWebhookConfiguration { metadata: Some(metadata), webhooks: vec![webhook] };
    let raw = want.encode_to_vec();
    let doc =
        upstream_doc("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", raw);
    assert_same_bytes(&obj, &doc);
}

/// A kubelet's client certificate request, approved and issued.
#[test]
fn a_certificate_signing_request_is_written_as_upstream_writes_it() {
    use k8s_pb::api::certificates::v1 as certs;
    let obj = json!({
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "csr-8x2kq", "uid": UID, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"request": "LS0tLQ==",
                 "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                 "usages": ["digital signature", "client auth"],
                 "username": "system:bootstrap:abcdef",
                 "groups": ["system:bootstrappers", "system:authenticated"]},
        "status": {
            "conditions": [{"type": "Approved", "status": "True", "reason": "AutoApproved",
                            "message": "Auto approving kubelet client certificate after SubjectAccessReview.",
                            "lastUpdateTime": "2026-01-01T00:00:01Z",
                            "lastTransitionTime": "2026-01-01T00:00:01Z"}],
            "certificate": "Q0VSVA=="
        }
    });
    let want = certs::CertificateSigningRequest {
        metadata: Some(go_meta("csr-8x2kq", "", T0)),
        spec: Some(certs::CertificateSigningRequestSpec {
            request: Some(b"----".to_vec()),
            signer_name: s("kubernetes.io/kube-apiserver-client-kubelet"),
            expiration_seconds: None,
            usages: vec!["digital signature".into(), "client auth".into()],
            username: s("system:bootstrap:abcdef"),
            uid: e(),
            groups: vec!["system:bootstrappers".into(), "system:authenticated".into()],
            extra: BTreeMap::new(),
        }),
        status: Some(certs::CertificateSigningRequestStatus {
            conditions: vec![certs::CertificateSigningRequestCondition {
                r#type: s("Approved"),
                status: s("True"),
                reason: s("AutoApproved"),
                message: obj["status"]["conditions"][0]["message"].as_str().map(str::to_string),
                last_update_time: time(T0 + 1),
                last_transition_time: time(T0 + 1),
            }],
            certificate: Some(b"CERT".to_vec()),
        }),
    };
    let raw = want.encode_to_vec();
    let doc = upstream_doc("certificates.k8s.io/v1", "CertificateSigningRequest", raw);
    assert_same_bytes(&obj, &doc);
}

/// A StatefulSet as a user creates it and its controller reports it: pod anti-affinity,
/// a volume claim template (defaulted, as its own non-pointer fields are), a retention
/// policy.
#[test]
fn a_stateful_set_is_written_as_upstream_writes_it() {
    let obj = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default", "uid": UID, "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "replicas": 3, "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {
                    "containers": [{"name": "postgres", "image": "postgres:17",
                        "ports": [{"name": "pg", "containerPort": 5432, "protocol": "TCP"}],
                        "resources": {},
                        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}],
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst", "securityContext": {},
                    "affinity": {"podAntiAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
                            "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "db"}},
                                                "topologyKey": "kubernetes.io/hostname"}}]}},
                    "schedulerName": "default-scheduler"
                }
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "10Gi"}},
                         "volumeMode": "Filesystem"},
                "status": {"phase": "Pending"}
            }],
            "serviceName": "db", "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "revisionHistoryLimit": 10,
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain",
                                                     "whenScaled": "Retain"}
        },
        "status": {"observedGeneration": 1, "replicas": 3, "readyReplicas": 3,
                   "currentReplicas": 3, "updatedReplicas": 3,
                   "currentRevision": "db-5d8f7c", "updateRevision": "db-5d8f7c",
                   "collisionCount": 0, "availableReplicas": 3}
    });
    let empty_meta = || meta::ObjectMeta {
        name: e(),
        generate_name: e(),
        namespace: e(),
        self_link: e(),
        uid: e(),
        resource_version: e(),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    };
    let db = || meta::LabelSelector {
        match_labels: strings(&[("app", "db")]),
        match_expressions: Vec::new(),
    };
    let container = core::Container {
        name: s("postgres"),
        image: s("postgres:17"),
        ports: vec![core::ContainerPort {
            name: s("pg"),
            host_port: Some(0),
            container_port: Some(5432),
            protocol: s("TCP"),
            host_ip: e(),
        }],
        volume_mounts: vec![core::VolumeMount {
            name: s("data"),
            read_only: Some(false),
            mount_path: s("/var/lib/postgresql/data"),
            sub_path: e(),
            sub_path_expr: e(),
            ..Default::default()
        }],
        ..web_container()
    };
    let anti = core::PodAntiAffinity {
        preferred_during_scheduling_ignored_during_execution: vec![core::WeightedPodAffinityTerm {
            weight: Some(100),
            pod_affinity_term: Some(core::PodAffinityTerm {
                label_selector: Some(db()),
                topology_key: s("kubernetes.io/hostname"),
                ..Default::default()
            }),
        }],
        ..Default::default()
    };
    let pod_spec = core::PodSpec {
        volumes: Vec::new(),
        containers: vec![container],
        service_account_name: e(),
        service_account: e(),
        affinity: Some(core::Affinity { pod_anti_affinity: Some(anti), ..Default::default() }),
        tolerations: Vec::new(),
        priority: None,
        enable_service_links: None,
        preemption_policy: None,
        ..pod_spec()
    };
    let mut template_meta = empty_meta();
    template_meta.labels = strings(&[("app", "db")]);
    let mut claim_meta = empty_meta();
    claim_meta.name = s("data");
    let claim = core::PersistentVolumeClaim {
        metadata: Some(claim_meta),
        spec: Some(core::PersistentVolumeClaimSpec {
            access_modes: vec!["ReadWriteOnce".into()],
            resources: Some(core::VolumeResourceRequirements {
                requests: quantities(&[("storage", "10Gi")]),
                limits: BTreeMap::new(),
            }),
            volume_name: e(),
            volume_mode: s("Filesystem"),
            ..Default::default()
        }),
        status: Some(core::PersistentVolumeClaimStatus {
            phase: s("Pending"),
            ..Default::default()
        }),
    };
    let mut metadata = go_meta("db", "default", T0);
    metadata.generation = Some(1);
    let spec = apps::StatefulSetSpec {
        replicas: Some(3),
        selector: Some(db()),
        template: Some(core::PodTemplateSpec {
            metadata: Some(template_meta),
            spec: Some(pod_spec),
        }),
        volume_claim_templates: vec![claim],
        service_name: s("db"),
        pod_management_policy: s("OrderedReady"),
        update_strategy: Some(apps::StatefulSetUpdateStrategy {
            r#type: s("RollingUpdate"),
            rolling_update: Some(apps::RollingUpdateStatefulSetStrategy {
                partition: Some(0),
                max_unavailable: None,
            }),
        }),
        revision_history_limit: Some(10),
        min_ready_seconds: Some(0),
        persistent_volume_claim_retention_policy: Some(
            apps::StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: s("Retain"),
                when_scaled: s("Retain"),
            },
        ),
        ordinals: None,
    };
    let status = apps::StatefulSetStatus {
        observed_generation: Some(1),
        replicas: Some(3),
        ready_replicas: Some(3),
        current_replicas: Some(3),
        updated_replicas: Some(3),
        current_revision: s("db-5d8f7c"),
        update_revision: s("db-5d8f7c"),
        collision_count: Some(0),
        conditions: Vec::new(),
        available_replicas: Some(3),
    };
    let sts =
        apps::StatefulSet { metadata: Some(metadata), spec: Some(spec), status: Some(status) };
    assert_same_bytes(&obj, &upstream_doc("apps/v1", "StatefulSet", sts.encode_to_vec()));
}

/// The review objects the apiserver answers with (create-only, never stored, but served
/// as protobuf to clients that ask): a webhook authorizer's SubjectAccessReview and a
/// TokenReview of a pod's service account token.
#[test]
fn review_responses_are_written_as_upstream_writes_them() {
    use k8s_pb::api::authentication::v1 as authn;
    use k8s_pb::api::authorization::v1 as authz;
    let empty_meta = meta::ObjectMeta {
        name: e(),
        generate_name: e(),
        namespace: e(),
        self_link: e(),
        uid: e(),
        resource_version: e(),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    };
    let reason =
        r#"RBAC: allowed by RoleBinding "dev/default" of ClusterRole "edit" to Group "dev""#;
    let obj = json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "metadata": {},
        "spec": {"resourceAttributes": {"namespace": "default", "verb": "get",
                                        "version": "v1", "resource": "pods", "name": "web"},
                 "user": "alice", "groups": ["dev", "system:authenticated"]},
        "status": {"allowed": true, "reason": reason}
    });
    let want = authz::SubjectAccessReview {
        metadata: Some(empty_meta.clone()),
        spec: Some(authz::SubjectAccessReviewSpec {
            resource_attributes: Some(authz::ResourceAttributes {
                namespace: s("default"),
                verb: s("get"),
                group: e(),
                version: s("v1"),
                resource: s("pods"),
                subresource: e(),
                name: s("web"),
                field_selector: None,
                label_selector: None,
            }),
            non_resource_attributes: None,
            user: s("alice"),
            groups: vec!["dev".into(), "system:authenticated".into()],
            extra: BTreeMap::new(),
            uid: e(),
        }),
        status: Some(authz::SubjectAccessReviewStatus {
            allowed: Some(true),
            denied: Some(false),
            reason: s(reason),
            evaluation_error: e(),
        }),
    };
    let raw = want.encode_to_vec();
    assert_same_bytes(&obj, &upstream_doc("authorization.k8s.io/v1", "SubjectAccessReview", raw));

    let obj = json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
        "metadata": {},
        "spec": {"token": "eyJhbGciOi.x.y"},
        "status": {"authenticated": true,
                   "user": {"username": "system:serviceaccount:default:app", "uid": UID,
                            "groups": ["system:serviceaccounts", "system:authenticated"],
                            "extra": {"authentication.kubernetes.io/pod-name": ["web-0"]}},
                   "audiences": ["https://kubernetes.default.svc"]}
    });
    let want = authn::TokenReview {
        metadata: Some(empty_meta),
        spec: Some(authn::TokenReviewSpec { token: s("eyJhbGciOi.x.y"), audiences: Vec::new() }),
        status: Some(authn::TokenReviewStatus {
            authenticated: Some(true),
            user: Some(authn::UserInfo {
                username: s("system:serviceaccount:default:app"),
                uid: s(UID),
                groups: vec!["system:serviceaccounts".into(), "system:authenticated".into()],
                extra: [(
                    "authentication.kubernetes.io/pod-name".to_string(),
                    authn::ExtraValue { items: vec!["web-0".into()] },
                )]
                .into(),
            }),
            audiences: vec!["https://kubernetes.default.svc".into()],
            error: e(),
        }),
    };
    let raw = want.encode_to_vec();
    assert_same_bytes(&obj, &upstream_doc("authentication.k8s.io/v1", "TokenReview", raw));
}

/// A DRA ResourceSlice as a driver publishes it, and a ResourceClaim the scheduler has
/// allocated and reserved for a pod.
#[test]
fn dra_objects_are_written_as_upstream_writes_them() {
    use k8s_pb::api::resource::v1 as dra;
    let obj = json!({
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
        "metadata": {"name": "node-1-gpu.example.com-x2k", "uid": UID,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"driver": "gpu.example.com",
                 "pool": {"name": "node-1", "generation": 1, "resourceSliceCount": 1},
                 "nodeName": "node-1",
                 "devices": [{"name": "gpu-0",
                              "attributes": {"model": {"string": "A100"}, "index": {"int": 0}},
                              "capacity": {"memory": {"value": "40Gi"}}}]}
    });
    let device = dra::Device {
        name: s("gpu-0"),
        attributes: [
            ("model".to_string(), dra::DeviceAttribute { string: s("A100"), ..Default::default() }),
            ("index".to_string(), dra::DeviceAttribute { int: Some(0), ..Default::default() }),
        ]
        .into(),
        capacity: [(
            "memory".to_string(),
            dra::DeviceCapacity {
                value: Some(Quantity { string: s("40Gi") }),
                request_policy: None,
            },
        )]
        .into(),
        ..Default::default()
    };
    let slice = dra::ResourceSlice {
        metadata: Some(go_meta("node-1-gpu.example.com-x2k", "", T0)),
        spec: Some(dra::ResourceSliceSpec {
            driver: s("gpu.example.com"),
            pool: Some(dra::ResourcePool {
                name: s("node-1"),
                generation: Some(1),
                resource_slice_count: Some(1),
            }),
            node_name: s("node-1"),
            devices: vec![device],
            ..Default::default()
        }),
    };
    let raw = slice.encode_to_vec();
    assert_same_bytes(&obj, &upstream_doc("resource.k8s.io/v1", "ResourceSlice", raw));

    let obj = json!({
        "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
        "metadata": {"name": "web-gpu-7xq", "namespace": "default", "uid": UID,
                     "creationTimestamp": "2026-01-01T00:00:00Z",
                     "finalizers": ["resource.kubernetes.io/delete-protection"]},
        "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {
            "deviceClassName": "gpu.example.com", "allocationMode": "ExactCount",
            "count": 1}}]}},
        "status": {
            "allocation": {
                "devices": {"results": [{"request": "gpu", "driver": "gpu.example.com",
                                         "pool": "node-1", "device": "gpu-0"}]},
                "nodeSelector": {"nodeSelectorTerms": [{"matchFields": [
                    {"key": "metadata.name", "operator": "In", "values": ["node-1"]}]}]}
            },
            "reservedFor": [{"resource": "pods", "name": "web", "uid": UID}]
        }
    });
    let mut metadata = go_meta("web-gpu-7xq", "default", T0);
    metadata.finalizers = vec!["resource.kubernetes.io/delete-protection".into()];
    let claim = dra::ResourceClaim {
        metadata: Some(metadata),
        spec: Some(dra::ResourceClaimSpec {
            devices: Some(dra::DeviceClaim {
                requests: vec![dra::DeviceRequest {
                    name: s("gpu"),
                    exactly: Some(dra::ExactDeviceRequest {
                        device_class_name: s("gpu.example.com"),
                        allocation_mode: s("ExactCount"),
                        count: Some(1),
                        ..Default::default()
                    }),
                    first_available: Vec::new(),
                }],
                ..Default::default()
            }),
        }),
        status: Some(dra::ResourceClaimStatus {
            allocation: Some(dra::AllocationResult {
                devices: Some(dra::DeviceAllocationResult {
                    results: vec![dra::DeviceRequestAllocationResult {
                        request: s("gpu"),
                        driver: s("gpu.example.com"),
                        pool: s("node-1"),
                        device: s("gpu-0"),
                        ..Default::default()
                    }],
                    config: Vec::new(),
                }),
                node_selector: Some(core::NodeSelector {
                    node_selector_terms: vec![core::NodeSelectorTerm {
                        match_expressions: Vec::new(),
                        match_fields: vec![core::NodeSelectorRequirement {
                            key: s("metadata.name"),
                            operator: s("In"),
                            values: vec!["node-1".into()],
                        }],
                    }],
                }),
                allocation_timestamp: None,
            }),
            reserved_for: vec![dra::ResourceClaimConsumerReference {
                api_group: e(),
                resource: s("pods"),
                name: s("web"),
                uid: s(UID),
            }],
            devices: Vec::new(),
        }),
    };
    let raw = claim.encode_to_vec();
    assert_same_bytes(&obj, &upstream_doc("resource.k8s.io/v1", "ResourceClaim", raw));
}

/// What a CSI driver's installation and use leave: its CSIDriver (defaulted), the
/// CSINode the kubelet registers, a VolumeAttachment the attacher has marked attached;
/// and an IngressClass and a RuntimeClass as add-ons install them.
#[test]
fn driver_and_class_objects_are_written_as_upstream_writes_them() {
    use k8s_pb::api::networking::v1 as net;
    use k8s_pb::api::storage::v1 as storage;
    let obj = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
        "metadata": {"name": "ebs.csi.aws.com", "uid": UID,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"attachRequired": true, "podInfoOnMount": false,
                 "volumeLifecycleModes": ["Persistent"], "storageCapacity": false,
                 "fsGroupPolicy": "ReadWriteOnceWithFSType", "requiresRepublish": false,
                 "seLinuxMount": false}
    });
    let want = storage::CSIDriver {
        metadata: Some(go_meta("ebs.csi.aws.com", "", T0)),
        spec: Some(storage::CSIDriverSpec {
            attach_required: Some(true),
            pod_info_on_mount: Some(false),
            volume_lifecycle_modes: vec!["Persistent".into()],
            storage_capacity: Some(false),
            fs_group_policy: s("ReadWriteOnceWithFSType"),
            requires_republish: Some(false),
            se_linux_mount: Some(false),
            ..Default::default()
        }),
    };
    let raw = want.encode_to_vec();
    assert_same_bytes(&obj, &upstream_doc("storage.k8s.io/v1", "CSIDriver", raw));

    let obj = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
        "metadata": {"name": "node-1", "uid": UID, "creationTimestamp": "2026-01-01T00:00:00Z",
                     "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "node-1",
                                          "uid": UID}]},
        "spec": {"drivers": [{"name": "ebs.csi.aws.com", "nodeID": "i-0abc",
                              "topologyKeys": ["topology.ebs.csi.aws.com/zone"],
                              "allocatable": {"count": 25}}]}
    });
    let mut metadata = go_meta("node-1", "", T0);
    metadata.owner_references = vec![meta::OwnerReference {
        api_version: s("v1"),
        kind: s("Node"),
        name: s("node-1"),
        uid: s(UID),
        controller: None,
        block_owner_deletion: None,
    }];
    let want = storage::CSINode {
        metadata: Some(metadata),
        spec: Some(storage::CSINodeSpec {
            drivers: vec![storage::CSINodeDriver {
                name: s("ebs.csi.aws.com"),
                node_id: s("i-0abc"),
                topology_keys: vec!["topology.ebs.csi.aws.com/zone".into()],
                allocatable: Some(storage::VolumeNodeResources { count: Some(25) }),
            }],
        }),
    };
    let raw = want.encode_to_vec();
    assert_same_bytes(&obj, &upstream_doc("storage.k8s.io/v1", "CSINode", raw));

    let obj = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
        "metadata": {"name": "csi-4f1e", "uid": UID, "creationTimestamp": "2026-01-01T00:00:00Z",
                     "finalizers": ["external-attacher/ebs-csi-aws-com"]},
        "spec": {"attacher": "ebs.csi.aws.com", "source": {"persistentVolumeName": "pvc-7d2f"},
                 "nodeName": "node-1"},
        "status": {"attached": true, "attachmentMetadata": {"devicePath": "/dev/xvdaa"}}
    });
    let mut metadata = go_meta("csi-4f1e", "", T0);
    metadata.finalizers = vec!["external-attacher/ebs-csi-aws-com".into()];
    let want = storage::VolumeAttachment {
        metadata: Some(metadata),
        spec: Some(storage::VolumeAttachmentSpec {
            attacher: s("ebs.csi.aws.com"),
            source: Some(storage::VolumeAttachmentSource {
                persistent_volume_name: s("pvc-7d2f"),
                inline_volume_spec: None,
            }),
            node_name: s("node-1"),
        }),
        status: Some(storage::VolumeAttachmentStatus {
            attached: Some(true),
            attachment_metadata: strings(&[("devicePath", "/dev/xvdaa")]),
            attach_error: None,
            detach_error: None,
        }),
    };
    let raw = want.encode_to_vec();
    assert_same_bytes(&obj, &upstream_doc("storage.k8s.io/v1", "VolumeAttachment", raw));

    let obj = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "nginx", "uid": UID, "creationTimestamp": "2026-01-01T00:00:00Z",
                     "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
        "spec": {"controller": "k8s.io/ingress-nginx"}
    });
    let mut metadata = go_meta("nginx", "", T0);
    metadata.annotations = strings(&[("ingressclass.kubernetes.io/is-default-class", "true")]);
    let want = net::IngressClass {
        metadata: Some(metadata),
        spec: Some(net::IngressClassSpec {
            controller: s("k8s.io/ingress-nginx"),
            parameters: None,
        }),
    };
    let raw = want.encode_to_vec();
    assert_same_bytes(&obj, &upstream_doc("networking.k8s.io/v1", "IngressClass", raw));

    let obj = json!({
        "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
        "metadata": {"name": "gvisor", "uid": UID, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "handler": "runsc",
        "scheduling": {"nodeSelector": {"sandbox": "gvisor"}}
    });
    let want = k8s_pb::api::node::v1::RuntimeClass {
        metadata: Some(go_meta("gvisor", "", T0)),
        handler: s("runsc"),
        overhead: None,
        scheduling: Some(k8s_pb::api::node::v1::Scheduling {
            node_selector: strings(&[("sandbox", "gvisor")]),
            tolerations: Vec::new(),
        }),
    };
    let raw = want.encode_to_vec();
    assert_same_bytes(&obj, &upstream_doc("node.k8s.io/v1", "RuntimeClass", raw));
}

/// A ValidatingAdmissionPolicy and its binding as upstream defaults them (match policy,
/// empty selectors, rule scope), with the status the type checker writes.
#[test]
fn an_admission_policy_and_binding_are_written_as_upstream_writes_them() {
    use k8s_pb::api::admissionregistration::v1 as adm;
    let obj = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "replicas-limit", "uid": UID, "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {
            "matchConstraints": {
                "namespaceSelector": {}, "objectSelector": {},
                "resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                   "operations": ["CREATE", "UPDATE"],
                                   "resources": ["deployments"], "scope": "*"}],
                "matchPolicy": "Equivalent"
            },
            "validations": [{"expression": "object.spec.replicas <= 5",
                             "message": "too many replicas"}],
            "failurePolicy": "Fail"
        },
        "status": {"observedGeneration": 1, "typeChecking": {}}
    });
    let mut metadata = go_meta("replicas-limit", "", T0);
    metadata.generation = Some(1);
    let rule = adm::NamedRuleWithOperations {
        resource_names: Vec::new(),
        rule_with_operations: Some(adm::RuleWithOperations {
            operations: vec!["CREATE".into(), "UPDATE".into()],
            rule: Some(adm::Rule {
                api_groups: vec!["apps".into()],
                api_versions: vec!["v1".into()],
                resources: vec!["deployments".into()],
                scope: s("*"),
            }),
        }),
    };
    let want = adm::ValidatingAdmissionPolicy {
        metadata: Some(metadata),
        spec: Some(adm::ValidatingAdmissionPolicySpec {
            param_kind: None,
            match_constraints: Some(adm::MatchResources {
                namespace_selector: Some(meta::LabelSelector::default()),
                object_selector: Some(meta::LabelSelector::default()),
                resource_rules: vec![rule],
                exclude_resource_rules: Vec::new(),
                match_policy: s("Equivalent"),
            }),
            validations: vec![adm::Validation {
                expression: s("object.spec.replicas <= 5"),
                message: s("too many replicas"),
                reason: None,
                message_expression: e(),
            }],
            failure_policy: s("Fail"),
            ..Default::default()
        }),
        status: Some(adm::ValidatingAdmissionPolicyStatus {
            observed_generation: Some(1),
            type_checking: Some(adm::TypeChecking { expression_warnings: Vec::new() }),
            conditions: Vec::new(),
        }),
    };
    let raw = want.encode_to_vec();
    let doc = upstream_doc("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", raw);
    assert_same_bytes(&obj, &doc);

    let obj = json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "replicas-limit-prod", "uid": UID, "generation": 1,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"policyName": "replicas-limit",
                 "matchResources": {"namespaceSelector": {"matchLabels": {"env": "prod"}},
                                    "objectSelector": {}, "matchPolicy": "Equivalent"},
                 "validationActions": ["Deny"]}
    });
    let mut metadata = go_meta("replicas-limit-prod", "", T0);
    metadata.generation = Some(1);
    let want = adm::ValidatingAdmissionPolicyBinding {
        metadata: Some(metadata),
        spec: Some(adm::ValidatingAdmissionPolicyBindingSpec {
            policy_name: s("replicas-limit"),
            param_ref: None,
            match_resources: Some(adm::MatchResources {
                namespace_selector: Some(meta::LabelSelector {
                    match_labels: strings(&[("env", "prod")]),
                    match_expressions: Vec::new(),
                }),
                object_selector: Some(meta::LabelSelector::default()),
                match_policy: s("Equivalent"),
                ..Default::default()
            }),
            validation_actions: vec!["Deny".into()],
        }),
    };
    let raw = want.encode_to_vec();
    let kind = "ValidatingAdmissionPolicyBinding";
    assert_same_bytes(&obj, &upstream_doc("admissionregistration.k8s.io/v1", kind, raw));
}

/// A namespace's ResourceQuota with the usage its controller writes, and a LimitRange of
/// container defaults.
#[test]
fn quotas_and_limit_ranges_are_written_as_upstream_writes_them() {
    let obj = json!({
        "apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "compute", "namespace": "team-a", "uid": UID,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"hard": {"pods": "10", "requests.cpu": "4", "requests.memory": "8Gi"}},
        "status": {"hard": {"pods": "10", "requests.cpu": "4", "requests.memory": "8Gi"},
                   "used": {"pods": "3", "requests.cpu": "1500m", "requests.memory": "2Gi"}}
    });
    let hard = || quantities(&[("pods", "10"), ("requests.cpu", "4"), ("requests.memory", "8Gi")]);
    let want = core::ResourceQuota {
        metadata: Some(go_meta("compute", "team-a", T0)),
        spec: Some(core::ResourceQuotaSpec { hard: hard(), ..Default::default() }),
        status: Some(core::ResourceQuotaStatus {
            hard: hard(),
            used: quantities(&[
                ("pods", "3"),
                ("requests.cpu", "1500m"),
                ("requests.memory", "2Gi"),
            ]),
        }),
    };
    assert_same_bytes(&obj, &upstream_doc("v1", "ResourceQuota", want.encode_to_vec()));

    let obj = json!({
        "apiVersion": "v1", "kind": "LimitRange",
        "metadata": {"name": "defaults", "namespace": "team-a", "uid": UID,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"limits": [{"type": "Container",
                             "default": {"cpu": "500m", "memory": "512Mi"},
                             "defaultRequest": {"cpu": "100m", "memory": "128Mi"}}]}
    });
    let want = core::LimitRange {
        metadata: Some(go_meta("defaults", "team-a", T0)),
        spec: Some(core::LimitRangeSpec {
            limits: vec![core::LimitRangeItem {
                r#type: s("Container"),
                default: quantities(&[("cpu", "500m"), ("memory", "512Mi")]),
                default_request: quantities(&[("cpu", "100m"), ("memory", "128Mi")]),
                ..Default::default()
            }],
        }),
    };
    assert_same_bytes(&obj, &upstream_doc("v1", "LimitRange", want.encode_to_vec()));
}
