//! The built-in admission plugins about storage, ingress, runtime classes and
//! certificate requests on the real binary with kubectl (issue #18):
//! DefaultStorageClass and StorageObjectInUseProtection (a claim gets the default class
//! and the protection finalizer, a volume its finalizer), DefaultIngressClass,
//! PersistentVolumeClaimResize (growth refused without `allowVolumeExpansion`),
//! RuntimeClass (a missing class refused, overhead and scheduling applied),
//! CertificateSubjectRestriction, CertificateApproval and CertificateSigning (the
//! signer permissions asked of RBAC). Upstream's messages. Runs on both backends.

use base64::Engine as _;
use kapi_e2e::{Server, ServerOptions};
use serde_json::Value;
use std::process::Output;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(s: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&s.kubectl_ok(&all)).expect("json")
}

fn create(s: &Server, yaml: &str) {
    let out = s.kubectl_stdin(&["create", "-f", "-"], yaml);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn refused(out: &Output, message: &str) {
    assert!(!out.status.success(), "accepted, expected: {message}");
    assert!(stderr(out).contains(message), "want {message:?} in {}", stderr(out));
}

const CLASSES: &str = r#"
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: standard}
provisioner: example.com/disk
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: fast
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: example.com/disk
allowVolumeExpansion: true
"#;

fn claim(name: &str, class: Option<&str>) -> String {
    let class = class.map(|c| format!("  storageClassName: \"{c}\"\n")).unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}}}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 1Gi}}}}\n{class}"
    )
}

#[test]
fn a_claim_gets_the_default_class_and_the_protection_finalizer() {
    let s = Server::start();
    create(&s, CLASSES);
    create(&s, &claim("data", None));
    let pvc = json(&s, &["get", "pvc", "data"]);
    assert_eq!(pvc["spec"]["storageClassName"], "fast", "{pvc}");
    assert_eq!(pvc["metadata"]["finalizers"], serde_json::json!(["kubernetes.io/pvc-protection"]));

    // an empty class is a choice (no class), kept as it is
    create(&s, &claim("classless", Some("")));
    let pvc = json(&s, &["get", "pvc", "classless"]);
    assert_eq!(pvc["spec"]["storageClassName"], "", "{pvc}");

    create(
        &s,
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: vol}\nspec:\n  capacity: {storage: 1Gi}\n  accessModes: [ReadWriteOnce]\n  hostPath: {path: /tmp/vol}\n",
    );
    let pv = json(&s, &["get", "pv", "vol"]);
    assert_eq!(pv["metadata"]["finalizers"], serde_json::json!(["kubernetes.io/pv-protection"]));
}

#[test]
fn growing_a_claim_needs_a_class_that_allows_expansion() {
    let s = Server::start();
    create(&s, CLASSES);
    create(&s, &claim("fixed", Some("standard")));
    create(&s, &claim("growing", Some("fast")));
    for name in ["fixed", "growing"] {
        s.kubectl_ok(&[
            "patch",
            "pvc",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Bound"}}"#,
        ]);
    }
    let grow = r#"{"spec":{"resources":{"requests":{"storage":"2Gi"}}}}"#;
    let out = s.kubectl(&["patch", "pvc", "fixed", "-p", grow]);
    refused(
        &out,
        r#"persistentvolumeclaims "fixed" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"#,
    );
    s.kubectl_ok(&["patch", "pvc", "growing", "-p", grow]);
    let pvc = json(&s, &["get", "pvc", "growing"]);
    assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], "2Gi");
    // Regression (a claim's spec could be changed at will): beyond the request of a
    // bound claim, the spec is immutable, as upstream's validation says.
    let modes = r#"{"spec":{"accessModes":["ReadOnlyMany"]}}"#;
    let out = s.kubectl(&["patch", "pvc", "growing", "-p", modes]);
    refused(
        &out,
        r#"The PersistentVolumeClaim "growing" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"#,
    );
}

#[test]
fn an_ingress_gets_the_default_class_unless_it_names_one() {
    let s = Server::start();
    create(
        &s,
        r#"
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: nginx
  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
spec: {controller: example.com/ingress}
"#,
    );
    let ingress = |name: &str, annotations: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, annotations: {{{annotations}}}}}\nspec:\n  defaultBackend: {{service: {{name: web, port: {{number: 80}}}}}}\n"
        )
    };
    create(&s, &ingress("plain", ""));
    assert_eq!(json(&s, &["get", "ingress", "plain"])["spec"]["ingressClassName"], "nginx");
    create(&s, &ingress("legacy", "kubernetes.io/ingress.class: traefik"));
    let legacy = json(&s, &["get", "ingress", "legacy"]);
    assert!(legacy["spec"].get("ingressClassName").is_none(), "{legacy}");
}

fn pod(name: &str, runtime_class: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  runtimeClassName: {runtime_class}\n  containers: [{{name: c, image: nginx}}]\n"
    )
}

#[test]
fn a_pod_takes_its_runtime_class_and_a_missing_class_is_refused() {
    let s = Server::start();
    let out = s.kubectl_stdin(&["create", "-f", "-"], &pod("lost", "missing"));
    refused(&out, r#"pods "lost" is forbidden: pod rejected: RuntimeClass "missing" not found"#);

    create(
        &s,
        r#"
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: sandboxed}
handler: runsc
overhead: {podFixed: {cpu: 250m, memory: 64Mi}}
scheduling:
  nodeSelector: {sandbox: "true"}
  tolerations: [{key: sandbox, operator: Exists, effect: NoSchedule}]
"#,
    );
    create(&s, &pod("boxed", "sandboxed"));
    let p = json(&s, &["get", "pod", "boxed"]);
    assert_eq!(p["spec"]["overhead"], serde_json::json!({"cpu": "250m", "memory": "64Mi"}), "{p}");
    assert_eq!(p["spec"]["nodeSelector"]["sandbox"], "true", "{p}");
    let tolerations = p["spec"]["tolerations"].as_array().expect("tolerations");
    assert!(tolerations.iter().any(|t| t["key"] == "sandbox"), "{p}");
}

const ALICE: &str = "alice-token-0123456789";

fn with_alice() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tokens.csv");
    std::fs::write(&file, format!("{ALICE},alice,uid-a\n")).expect("token file");
    let extra_args = vec!["--token-auth-file".into(), file.display().to_string()];
    let s = Server::start_with(ServerOptions { extra_args, ..Default::default() });
    std::mem::forget(dir); // the server reads the file at start
    s
}

/// A CSR object for `signer` whose subject has the organizations `orgs`.
fn csr(name: &str, signer: &str, orgs: &[&str]) -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(rcgen::DnType::CommonName, "someone");
    for o in orgs {
        params.distinguished_name.push(rcgen::DnType::OrganizationName, *o);
    }
    let pem = params.serialize_request(&key).expect("csr").pem().expect("pem");
    let request = base64::engine::general_purpose::STANDARD.encode(pem);
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {{name: {name}}}\nspec:\n  signerName: {signer}\n  usages: [client auth]\n  request: {request}\n"
    )
}

/// Alice may read and update CSRs and their approval and status, and `verb`s on
/// `signers` named `signer` (none when empty).
fn grant_alice(s: &Server, verb: &str, signer: &str) {
    let signers = if signer.is_empty() {
        String::new()
    } else {
        format!(
            "- apiGroups: [certificates.k8s.io]\n  resources: [signers]\n  resourceNames: [\"{signer}\"]\n  verbs: [{verb}]\n"
        )
    };
    let yaml = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: csr-{verb}}}\nrules:\n- apiGroups: [certificates.k8s.io]\n  resources: [certificatesigningrequests, certificatesigningrequests/approval, certificatesigningrequests/status]\n  verbs: [get, list, update, patch]\n{signers}---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: csr-{verb}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: csr-{verb}}}\nsubjects: [{{kind: User, name: alice}}]\n"
    );
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &yaml);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_client_certificate_request_for_system_masters_is_refused() {
    let s = Server::start();
    let signer = "kubernetes.io/kube-apiserver-client";
    let out = s.kubectl_stdin(&["create", "-f", "-"], &csr("root", signer, &["system:masters"]));
    refused(
        &out,
        r#"certificatesigningrequests.certificates.k8s.io "root" is forbidden: use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"#,
    );
    create(&s, &csr("dev", signer, &["devs"]));
}

/// A self-signed certificate, base64 of its PEM (as `status.certificate` holds it).
fn certificate() -> String {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["someone".to_string()]).expect("params");
    let pem = params.self_signed(&key).expect("cert").pem();
    base64::engine::general_purpose::STANDARD.encode(pem)
}

#[test]
fn approving_and_signing_need_the_signer_permission() {
    let s = with_alice();
    create(&s, &csr("one", "example.com/signer", &["devs"]));
    grant_alice(&s, "sign", "");
    let approve = || s.kubectl_token(ALICE, &["certificate", "approve", "one"], None);
    refused(
        &approve(),
        r#"certificatesigningrequests.certificates.k8s.io "one" is forbidden: user not permitted to approve requests with signerName "example.com/signer""#,
    );

    // the domain wildcard grants approving every signer of the domain
    grant_alice(&s, "approve", "example.com/*");
    let out = approve();
    assert!(out.status.success(), "{}", stderr(&out));
    let conditions = json(&s, &["get", "csr", "one"])["status"]["conditions"].clone();
    assert_eq!(conditions[0]["type"], "Approved", "{conditions}");

    let patch = format!(r#"{{"status":{{"certificate":"{}"}}}}"#, certificate());
    let args = ["patch", "csr", "one", "--subresource=status", "--type=merge", "-p", &patch];
    refused(
        &s.kubectl_token(ALICE, &args, None),
        r#"certificatesigningrequests.certificates.k8s.io "one" is forbidden: user not permitted to sign requests with signerName "example.com/signer""#,
    );
    grant_alice(&s, "sign", "example.com/signer");
    let out = s.kubectl_token(ALICE, &args, None);
    assert!(out.status.success(), "{}", stderr(&out));
    let csr = json(&s, &["get", "csr", "one"]);
    assert!(csr["status"]["certificate"].as_str().is_some_and(|c| !c.is_empty()), "{csr}");
}
