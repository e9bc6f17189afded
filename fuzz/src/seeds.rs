//! The seed corpus: real inputs of every target, written by `examples/seed.rs` into
//! `corpus/TARGET/` (checked in). Objects come from `tests/manifests/every-type.yaml`
//! (one of every stored built-in kind); WAL files are written by the embedded store
//! itself.

use crate::memfs::{FILE_SEPARATOR, MemFs};
use crate::{choice_of, resource_type};
use kapi::rest::fuzz_api;
use kapi_codec::format::{self, Format};
use kapi_codec::stored::{self, StorageMediaType};
use kapi_codec::{Registry, ResourceType, convert, protobuf};
use kapi_storage::embedded::fs::Fs;
use kapi_storage::{Precondition, Store};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

const EVERY_TYPE: &str = include_str!("../../tests/manifests/every-type.yaml");

/// Every object of the manifest with its resource type.
pub fn objects() -> Vec<(&'static ResourceType, Value)> {
    let mut out = Vec::new();
    for doc in EVERY_TYPE.split("\n---\n") {
        let Ok(obj) = format::decode(doc.as_bytes(), Format::Yaml) else { continue };
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        if let Some(rt) = Registry::builtin().by_kind(group, version, kind) {
            out.push((&**rt, obj));
        }
    }
    out
}

fn find(kind: &str) -> (u8, Value) {
    let (rt, obj) = objects().into_iter().find(|(rt, _)| rt.kind == kind).expect(kind);
    (choice_of(&rt.group, &rt.kind), obj)
}

fn with(head: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut out = head.to_vec();
    out.extend_from_slice(&parts.join(&0u8));
    out
}

/// Every target's seeds, by target name.
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    let mut s: Vec<(&'static str, Vec<u8>)> = Vec::new();
    for (rt, obj) in objects() {
        let k = choice_of(&rt.group, &rt.kind);
        assert!(std::ptr::eq(resource_type(k), rt), "choice byte of {}", rt.kind);
        s.push(("decode", with(&[k, 0], &[&format::encode_json(&obj)])));
        s.push(("decode", with(&[k, 1], &[&format::encode_yaml(&obj)])));
        let mut pb = Vec::new();
        if protobuf::encode_object(&obj, &mut pb).is_ok() {
            s.push(("decode", with(&[k, 2], &[&pb])));
        }
        let storage = convert::to_storage(rt, obj.clone());
        s.push(("decode", with(&[k, 3], &[&stored::encode(&storage, StorageMediaType::Protobuf)])));
    }
    for head in HEADS {
        s.push(("http_head", head.replace('\n', "\r\n").into_bytes()));
    }
    let token = fuzz_api::encode_continue(42, "default/web-1", Some(7));
    let head = format!(
        "GET /api/v1/namespaces/default/pods?limit=500&continue={token}&labelSelector=app%3Dweb HTTP/1.1\r\nHost: k\r\nAccept: application/json\r\n\r\n"
    );
    s.push(("http_head", head.into_bytes()));
    for (label, field) in SELECTORS {
        let (k, obj) = find("Pod");
        s.push((
            "selectors",
            with(&[k], &[label.as_bytes(), field.as_bytes(), &format::encode_json(&obj)]),
        ));
    }
    let (k, rs) = find("ReplicaSet");
    let selector = rs.pointer("/spec/selector").cloned().unwrap_or(json!({}));
    let object = json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["e"]}], "metadata": {"labels": {"app": "e"}}});
    for obj in [selector, object] {
        s.push(("selectors", with(&[k], &[b"", b"", &format::encode_json(&obj)])));
    }
    for (kind, ptype, patch) in PATCHES {
        let (k, mut live) = find(kind);
        live["metadata"]["resourceVersion"] = json!("5");
        s.push(("patch", with(&[k, *ptype], &[&format::encode_json(&live), patch.as_bytes()])));
    }
    for t in [
        fuzz_api::encode_continue(42, "default/web-1", None),
        fuzz_api::encode_continue(42, "default/web-1", Some(7)),
        fuzz_api::encode_continue(1, "", None),
        "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6Mywic3RhcnQiOiIuLi94In0=".into(),
    ] {
        s.push(("continue_token", t.into_bytes()));
    }
    for (current, rv, matching) in [
        (7u8, "5", "NotOlderThan"),
        (7, "9", ""),
        (7, "0", "Exact"),
        (7, "5", "Exact"),
        (7, "", ""),
        (0, "18446744073709551615", "NotOlderThan"),
    ] {
        s.push(("resource_version", with(&[current], &[rv.as_bytes(), matching.as_bytes()])));
    }
    s.extend(bearer_seeds());
    s.extend(wal_seeds());
    s
}

/// Write every seed as `dir/TARGET/NAME` (NAME: a hash of the content, as libFuzzer
/// names its corpus files). Returns how many were written.
pub fn write_all(dir: &Path) -> usize {
    let seeds = all();
    for (target, data) in &seeds {
        let d = dir.join(target);
        std::fs::create_dir_all(&d).expect("corpus directory");
        std::fs::write(d.join(format!("seed-{:016x}", fnv(data))), data).expect("seed");
    }
    seeds.len()
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
}

const HEADS: &[&str] = &[
    "GET /api/v1/namespaces/default/pods/web HTTP/1.1\nHost: 127.0.0.1:6443\nUser-Agent: kubectl/v1.35.0 (linux/amd64) kubernetes/abcdef\nAccept: application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json\nAuthorization: Bearer static-token\n\n",
    "GET /api/v1/pods?fieldSelector=spec.nodeName%3Dn1&resourceVersion=0&watch=true&allowWatchBookmarks=true&timeoutSeconds=300 HTTP/1.1\nHost: k\nAccept: application/vnd.kubernetes.protobuf, */*\n\n",
    "GET /apis/apps/v1/namespaces/kube-system/deployments?limit=500&resourceVersion=12&resourceVersionMatch=Exact HTTP/1.1\nHost: k\nAccept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1\n\n",
    "POST /api/v1/namespaces/default/configmaps?fieldManager=kubectl-create&fieldValidation=Strict HTTP/1.1\nHost: k\nContent-Type: application/yaml\nContent-Length: 10\n\n",
    "PATCH /apis/apps/v1/namespaces/default/deployments/web/scale?timeout=5s HTTP/1.1\nHost: k\nContent-Type: application/strategic-merge-patch+json\nAccept: application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1\n\n",
    "PATCH /api/v1/namespaces/default/pods/web?fieldManager=m&force=true HTTP/1.1\nHost: k\nContent-Type: application/apply-patch+yaml; charset=utf-8\n\n",
    "DELETE /api/v1/namespaces/default/pods?labelSelector=app+in+(a%2Cb)%2C!x HTTP/1.1\nHost: k\nAuthorization: bearer eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0.AAAA\n\n",
    "GET /api/v1/watch/namespaces/ns/pods HTTP/1.1\nHost: k\nAccept: application/yaml\n\n",
    "PUT /api/v1/namespaces/x/finalize HTTP/1.1\nHost: k\nContent-Type: application/vnd.kubernetes.protobuf\n\n",
    "GET /healthz?verbose&exclude=etcd HTTP/1.1\nHost: k\n\n",
];

const SELECTORS: &[(&str, &str)] = &[
    ("app=e", "metadata.name=e-pod"),
    ("app in (e,f),tier notin (db),!canary,env", "spec.nodeName!=n1,status.phase==Running"),
    ("app!=x,version", "metadata.namespace=every,spec.restartPolicy=Always"),
    ("a.b/c-d_e=f", "metadata.name=a\\,b"),
    ("x", "spec.schedulerName=default-scheduler,spec.serviceAccountName=default"),
];

const PATCHES: &[(&str, u8, &str)] = &[
    ("Pod", 0, r#"{"metadata":{"labels":{"app":null,"b":"2"},"annotations":{"a":"b"}}}"#),
    (
        "Pod",
        1,
        r#"[{"op":"add","path":"/metadata/labels/b","value":"2"},{"op":"replace","path":"/spec/containers/0/image","value":"nginx"},{"op":"test","path":"/metadata/name","value":"e-pod"},{"op":"copy","from":"/metadata/labels","path":"/metadata/annotations"},{"op":"move","from":"/metadata/annotations","path":"/metadata/x"},{"op":"remove","path":"/metadata/x"}]"#,
    ),
    (
        "Pod",
        2,
        r#"{"spec":{"containers":[{"name":"c","image":"nginx"},{"name":"d","image":"x","$patch":"delete"}],"$setElementOrder/containers":[{"name":"c"}]}}"#,
    ),
    (
        "Pod",
        2,
        r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["a"],"finalizers":["b"]},"spec":{"$retainKeys":["containers"],"tolerations":[{"$patch":"replace"}]}}"#,
    ),
    ("Pod", 2, r#"{"$patch":"delete"}"#),
    (
        "Deployment",
        2,
        r#"{"spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"c","env":[{"name":"A","value":"1"}]}]}}}}"#,
    ),
    (
        "Deployment",
        3,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: e-deploy\n  namespace: every\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n      - name: c\n        image: nginx\n",
    ),
    (
        "Deployment",
        7,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: e-deploy, labels: {x: y}}\nspec: {replicas: 5}\n",
    ),
    ("ConfigMap", 0, r#"{"data":{"key":null,"new":"v"},"binaryData":{"b":"aGk="}}"#),
    (
        "ConfigMap",
        3,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: e-cm}\ndata: {key: other}\n",
    ),
    ("Service", 2, r#"{"spec":{"ports":[{"port":80,"targetPort":8080,"protocol":"TCP"}]}}"#),
    ("Node", 0, r#"{"spec":{"unschedulable":true,"taints":[{"key":"k","effect":"NoSchedule"}]}}"#),
];

/// ServiceAccount tokens: headers as sent (mode 0) and claims the target signs (mode 1).
fn bearer_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let iss = "https://kubernetes.default.svc.cluster.local";
    let sa = json!({"name": "default", "uid": "sa-uid"});
    let claims = [
        json!({"iss": iss, "aud": [iss], "exp": 4_000_000_000i64, "iat": 1, "nbf": 1, "sub": "system:serviceaccount:default:default",
            "kubernetes.io": {"namespace": "default", "serviceaccount": sa}}),
        json!({"iss": iss, "aud": iss, "exp": 4_000_000_000i64, "jti": "j", "kubernetes.io": {"namespace": "default", "serviceaccount": sa,
            "pod": {"name": "web", "uid": "pod-uid"}, "node": {"name": "n1", "uid": "node-uid"}}}),
        json!({"iss": iss, "aud": [iss], "exp": 4_000_000_000i64, "kubernetes.io": {"namespace": "default", "serviceaccount": sa,
            "secret": {"name": "tok", "uid": "secret-uid"}}}),
        json!({"iss": "kubernetes/serviceaccount", "sub": "system:serviceaccount:default:default",
            "kubernetes.io/serviceaccount/namespace": "default", "kubernetes.io/serviceaccount/secret.name": "tok",
            "kubernetes.io/serviceaccount/service-account.name": "default", "kubernetes.io/serviceaccount/service-account.uid": "sa-uid"}),
        json!({"iss": iss, "aud": ["other"], "exp": 1}),
    ];
    let mut out = Vec::new();
    for c in &claims {
        out.push(("bearer_token", with(&[1], &[&format::encode_json(c)])));
    }
    let signer = &crate::authenticator().service_accounts.as_ref().expect("sa").signer;
    for c in &claims[..2] {
        let token = signer.sign(c).expect("sign");
        out.push(("bearer_token", with(&[0], &[format!("Bearer {token}").as_bytes()])));
    }
    for h in ["Bearer static-token", "bearer  x.y.z ", "Basic dXNlcjpwYXNz", "Bearer a.b"] {
        out.push(("bearer_token", with(&[0], &[h.as_bytes()])));
    }
    out
}

/// Data directories the embedded store writes: a few writes, deletes and a compaction in
/// one segment; and with snapshots (tiny segments), laid out as the `wal` target reads
/// them (snapshot first, then segments in order).
fn wal_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    for snapshot_after in [1u64 << 30, 600] {
        let fs = MemFs::default();
        let dir = Path::new("/data");
        let opts = kapi_storage::embedded::EmbeddedOptions {
            fsync: false,
            snapshot_after_bytes: snapshot_after,
            watch_buffer: 16,
            fs: Arc::new(fs.clone()),
        };
        let store = kapi_storage::embedded::EmbeddedStore::open(dir, opts).expect("open");
        for i in 0..12 {
            let key = format!("/registry/configmaps/default/cm-{}", i % 5);
            let value = bytes::Bytes::from(format!("{{\"v\":{i}}}"));
            if futures_executor::block_on(store.create(&key, value.clone())).is_err() {
                let _ = futures_executor::block_on(store.update(&key, value, Precondition::None));
            }
            if i % 4 == 3 {
                let _ = futures_executor::block_on(store.delete(&key, Precondition::None));
            }
        }
        let _ = futures_executor::block_on(store.compact(store.current_revision() - 2));
        let _ = futures_executor::block_on(store.close());
        drop(store);
        let mut names = fs.list(dir).expect("list");
        names.sort_by_key(|n| !n.starts_with("snapshot-"));
        let has_snapshot = names.first().is_some_and(|n| n.starts_with("snapshot-"));
        let files: Vec<Vec<u8>> =
            names.iter().map(|n| fs.read(&dir.join(n)).expect("read")).collect();
        let mut data = vec![u8::from(has_snapshot)];
        data.extend_from_slice(&files.join(FILE_SEPARATOR));
        out.push(("wal", data.clone()));
        // The same with a torn tail on the newest segment.
        data.extend_from_slice(&[9, 0, 0, 0, 1, 2, 3]);
        out.push(("wal", data));
    }
    out
}

#[cfg(test)]
mod tests {
    /// Every seed runs through its target (the corpus is valid input, and finds nothing).
    #[test]
    fn every_seed_runs_clean() {
        let seeds = super::all();
        for (name, f) in crate::TARGETS {
            let n = seeds.iter().filter(|(t, _)| t == name).map(|(_, d)| f(d)).count();
            assert!(n > 0, "no seeds for {name}");
        }
    }

    /// Every input a fuzz run once found a bug with (`fuzz/regressions/TARGET-what`) runs
    /// clean through its target now: the fixes hold.
    #[test]
    fn every_past_finding_runs_clean() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
        let mut ran = 0;
        for entry in std::fs::read_dir(&dir).expect("fuzz/regressions") {
            let path = entry.expect("entry").path();
            let file = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            let target = crate::TARGETS.iter().find(|(t, _)| file.starts_with(&format!("{t}-")));
            let (_, f) = target.unwrap_or_else(|| panic!("{file}: no target named by its prefix"));
            f(&std::fs::read(&path).expect("finding"));
            ran += 1;
        }
        assert!(ran > 0, "no past findings in {}", dir.display());
    }
}
