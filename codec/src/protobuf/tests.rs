//! The table-driven codec checked against an independent implementation (prost types
//! of the same v1.35 protos) and against itself (JSON -> protobuf -> JSON).

use super::*;
use k8s_pb::api::core::v1 as pb;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as pbmeta;
use prost::Message as _;
use serde_json::json;

fn pod_json() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-0",
            "namespace": "default",
            "labels": {"app": "web", "tier": ""},
            "creationTimestamp": "2024-05-01T12:00:00Z",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "uid": "u-1", "controller": true}],
            "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                "time": "2024-05-01T12:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}]
        },
        "spec": {
            "containers": [{
                "name": "nginx",
                "image": "nginx:1.27",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 10},
                "readinessProbe": {"tcpSocket": {"port": 8080}}
            }],
            "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                        {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}],
            "terminationGracePeriodSeconds": 0,
            "hostNetwork": true
        },
        "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.7"}],
                   "startTime": "2024-05-01T12:00:01Z"}
    })
}

fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_object(v, &mut out).expect("encode");
    out
}

fn raw_of(doc: &[u8]) -> Vec<u8> {
    let (_, _, raw) = unknown(&doc[4..]).expect("envelope");
    raw.to_vec()
}

#[test]
fn pod_round_trips_through_protobuf() {
    let pod = pod_json();
    let back = decode_object(&encode(&pod)).expect("decode");
    assert_eq!(back, pod);
}

#[test]
fn encoded_pod_reads_back_with_prost() {
    let doc = encode(&pod_json());
    assert_eq!(&doc[..4], MAGIC);
    let p = pb::Pod::decode(raw_of(&doc).as_slice()).expect("prost decodes our bytes");
    let meta = p.metadata.unwrap();
    assert_eq!(meta.name.as_deref(), Some("web-0"));
    assert_eq!(meta.labels.get("tier").map(String::as_str), Some(""));
    assert_eq!(meta.creation_timestamp.unwrap().seconds, Some(1_714_564_800));
    let spec = p.spec.unwrap();
    let c = &spec.containers[0];
    assert_eq!(c.ports[0].container_port, Some(80));
    let port = c
        .liveness_probe
        .as_ref()
        .unwrap()
        .handler
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap()
        .port
        .clone()
        .unwrap();
    assert_eq!((port.r#type, port.str_val.as_deref()), (Some(1), Some("http")));
    let tcp =
        c.readiness_probe.as_ref().unwrap().handler.as_ref().unwrap().tcp_socket.as_ref().unwrap();
    assert_eq!(tcp.port.as_ref().unwrap().int_val, Some(8080));
    assert_eq!(c.resources.as_ref().unwrap().limits["memory"].string.as_deref(), Some("128Mi"));
    let vol = spec.volumes[1].volume_source.as_ref().unwrap().config_map.as_ref().unwrap();
    assert_eq!(vol.default_mode, Some(420));
    assert_eq!(spec.termination_grace_period_seconds, Some(0));
    assert_eq!(p.status.unwrap().pod_ips[0].ip.as_deref(), Some("10.0.0.7"));
    let fields = meta.managed_fields[0].fields_v1.as_ref().unwrap().raw.clone().unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&fields).unwrap()["f:metadata"]["f:labels"],
        json!({".": {}})
    );
}

#[test]
fn prost_encoded_objects_decode_as_upstream_json() {
    let secret = pb::Secret {
        metadata: Some(pbmeta::ObjectMeta {
            name: Some("s".into()),
            namespace: Some(String::new()),
            generation: Some(0),
            creation_timestamp: Some(pbmeta::Time { seconds: Some(0), nanos: Some(0) }),
            ..Default::default()
        }),
        data: [("k".to_string(), b"\x00\xffv".to_vec())].into_iter().collect(),
        r#type: Some("Opaque".into()),
        immutable: None,
        ..Default::default()
    };
    let mut doc = MAGIC.to_vec();
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("Secret".into()),
        }),
        raw: Some(secret.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    doc.extend(unknown.encode_to_vec());
    let v = decode_object(&doc).expect("decode");
    // Go's JSON view: zero values of omitempty fields and the zero Time are omitted,
    // bytes are base64.
    assert_eq!(
        v,
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "s"},
               "data": {"k": "AP92"}, "type": "Opaque"})
    );
}

#[test]
fn lists_and_status_have_messages() {
    let list = json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "7"},
        "items": [{"metadata": {"name": "a"}, "data": {"x": "y"}}]});
    assert_eq!(decode_object(&encode(&list)).unwrap(), list);
    let status = json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
        "message": "nope", "reason": "NotFound", "details": {"name": "x", "kind": "pods"}, "code": 404});
    assert_eq!(decode_object(&encode(&status)).unwrap(), status);
}

/// An object's view after one pass through protobuf is stable: a second pass neither
/// adds nor drops anything, and its bytes are the same.
#[test]
fn every_served_kind_is_stable_after_one_protobuf_pass() {
    for rt in Registry::builtin().all() {
        let v = json!({"apiVersion": rt.api_version(), "kind": rt.kind, "metadata": {"name": "x"}});
        let bytes = encode(&v);
        let once = decode_object(&bytes).unwrap();
        assert_eq!(once["metadata"], v["metadata"], "{}", rt.kind);
        assert_eq!(encode(&once), bytes, "{}", rt.kind);
        assert_eq!(decode_object(&encode(&once)).unwrap(), once, "{}", rt.kind);
    }
}

/// Go's JSON view of bare objects: non-pointer structs shown even when empty, zero
/// scalars shown only where the JSON tag has no omitempty.
#[test]
fn bare_objects_read_back_as_upstream_shows_them() {
    let view = |kind: &str| {
        let v = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"}});
        decode_object(&encode(&v)).unwrap()
    };
    let cm = view("ConfigMap");
    assert_eq!(cm, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}));
    let svc = view("Service");
    assert_eq!(svc["spec"], json!({}));
    assert_eq!(svc["status"], json!({"loadBalancer": {}}));
    let ev = view("Event");
    assert_eq!(
        (ev["reportingComponent"].as_str(), ev["reportingInstance"].as_str()),
        (Some(""), Some(""))
    );
    assert_eq!(ev["involvedObject"], json!({}));
    assert_eq!(ev["source"], json!({}));
    assert!(ev.get("count").is_none() && ev.get("eventTime").is_none(), "{ev}");
    let node = view("Node");
    assert_eq!(node["status"]["daemonEndpoints"], json!({"kubeletEndpoint": {"Port": 0}}));
    assert_eq!(node["status"]["nodeInfo"]["machineID"], "");
    assert_eq!(node["status"]["nodeInfo"].as_object().map(|o| o.len()), Some(10));
    assert!(node["spec"].get("unschedulable").is_none());
}

#[test]
fn hostile_input_is_an_error_not_a_panic() {
    assert!(decode_object(b"{}").is_err());
    assert!(decode_object(b"k8s\0\x0a\xff").is_err());
    let mut doc = encode(&pod_json());
    for cut in [5, 9, doc.len() / 2, doc.len() - 1] {
        let _ = decode_object(&doc[..cut]);
    }
    doc[20] ^= 0xff;
    let _ = decode_object(&doc);
    // Deeply nested JSONSchemaProps stop at the depth limit.
    let mut nested = Vec::new();
    for _ in 0..10_000 {
        let mut outer = Vec::new();
        wire::put_bytes(&mut outer, 28, &nested);
        nested = outer;
    }
    assert!(
        decode::decode_message(
            "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
            &nested
        )
        .is_err()
    );
}

/// Regression: frames were a `k8s\0` document around the WatchEvent, which client-go
/// reads as a bare WatchEvent ("proto: illegal wireType 7"), so every informer relisted.
#[test]
fn watch_frames_are_bare_watch_events_whose_object_carries_the_envelope() {
    let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
    let mut out = Vec::new();
    encode_watch_event("ADDED", &obj, &mut out).unwrap();
    let len = u32::from_be_bytes(out[..4].try_into().unwrap()) as usize;
    assert_eq!(len, out.len() - 4);
    assert!(!out[4..].starts_with(MAGIC), "the frame is the event message itself");
    let ev = pbmeta::WatchEvent::decode(&out[4..]).expect("prost reads the event");
    assert_eq!(ev.r#type.as_deref(), Some("ADDED"));
    let inner = ev.object.unwrap().raw.unwrap();
    assert!(inner.starts_with(MAGIC), "the object inside carries its envelope");
    assert_eq!(decode_object(&inner).unwrap(), obj);
    // A cached message framed without re-encoding gives the same bytes.
    let mut raw = Vec::new();
    encode::encode_message("io.k8s.api.core.v1.ConfigMap", &obj, &mut raw).unwrap();
    let mut framed = Vec::new();
    watch_event_from_raw("ADDED", "v1", "ConfigMap", &raw, &mut framed).unwrap();
    assert_eq!(framed, out);
}

/// A watch frame sent as pieces around the shared message (head, message, tail) is the
/// same bytes as one encoded from the object, whatever the lengths of its varints (each
/// length crossing the 1-2-3 byte boundaries), and prost reads it as upstream's
/// WatchEvent.
#[test]
fn watch_frames_in_pieces_are_the_frames_encoded_whole() {
    let sizes = (0..300).chain(16_200..16_500).chain([2_100_000]);
    for (i, n) in sizes.enumerate() {
        let kind = ["ADDED", "MODIFIED", "DELETED"][i % 3];
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"},
            "data": {"x": "y".repeat(n)}});
        let mut whole = Vec::new();
        encode_watch_event(kind, &obj, &mut whole).unwrap();
        let mut raw = Vec::new();
        encode::encode_message("io.k8s.api.core.v1.ConfigMap", &obj, &mut raw).unwrap();
        let head = watch_event_head(kind, "v1", "ConfigMap", raw.len()).unwrap();
        let pieces = [head.as_slice(), &raw, WATCH_EVENT_TAIL].concat();
        assert!(pieces == whole, "{n}-byte value: the framed pieces differ");
        let ev = pbmeta::WatchEvent::decode(&pieces[4..]).expect("prost reads the event");
        assert_eq!(ev.r#type.as_deref(), Some(kind));
        assert_eq!(decode_object(&ev.object.unwrap().raw.unwrap()).unwrap(), obj);
    }
}

#[test]
fn lists_assembled_from_encoded_items_decode_like_encoded_lists() {
    let items = [
        json!({"metadata": {"name": "a"}, "data": {"x": "1"}}),
        json!({"metadata": {"name": "b"}}),
    ];
    let raws: Vec<Vec<u8>> = items
        .iter()
        .map(|i| {
            let mut out = Vec::new();
            encode::encode_message("io.k8s.api.core.v1.ConfigMap", i, &mut out).unwrap();
            out
        })
        .collect();
    let refs: Vec<&[u8]> = raws.iter().map(Vec::as_slice).collect();
    let meta = json!({"resourceVersion": "9", "continue": "c"});
    let (head, prefixes, tail) = list_parts("v1", "ConfigMapList", &meta, &refs).unwrap();
    let mut doc = head;
    for (p, r) in prefixes.iter().zip(&raws) {
        doc.extend_from_slice(p);
        doc.extend_from_slice(r);
    }
    doc.extend_from_slice(&tail);
    let want =
        json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": meta, "items": items});
    assert_eq!(decode_object(&doc).unwrap(), want);
    let mut single = Vec::new();
    envelope("v1", "ConfigMap", &raws[0], &mut single);
    let mut whole = Vec::new();
    encode_object(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"x": "1"}}), &mut whole).unwrap();
    assert_eq!(single, whole, "an envelope around a cached message equals encoding the object");
}
