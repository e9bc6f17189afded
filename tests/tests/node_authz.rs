//! The Node authorizer with a kubelet's own client certificate (`O=system:nodes`,
//! `CN=system:node:NAME`) against the real binary (issue #17): a node reads the Secrets
//! and ConfigMaps its pods use and no others (upstream's "no relationship found"
//! refusal), its own Node but not another's, pods only with its `spec.nodeName` field
//! selector, and its own Lease. Runs on both backends.

use kapi_e2e::{Server, eventually, openssl};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// A client certificate for `subject` signed by the server's CA.
fn client_cert(s: &Server, dir: &Path, name: &str, subject: &str) {
    let pki = s.data_dir().join("pki");
    openssl::client_cert(dir, &pki, name, subject, openssl::Extensions::ClientAuth);
}

fn as_node(s: &Server, dir: &Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .args(["--kubeconfig", "/dev/null", "--server", &s.url()])
        .arg("--certificate-authority")
        .arg(s.data_dir().join("pki/ca.crt"))
        .arg("--client-certificate")
        .arg(dir.join("n1.crt"))
        .arg("--client-key")
        .arg(dir.join("n1.key"))
        .args(args)
        .output()
        .expect("kubectl")
}

fn raw(s: &Server, dir: &Path, path: &str) -> Result<String, String> {
    let out = as_node(s, dir, &["get", "--raw", path]);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

const OBJECTS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: used, namespace: default}
stringData: {k: v}
---
apiVersion: v1
kind: Secret
metadata: {name: unused, namespace: default}
stringData: {k: v}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: env, namespace: default}
data: {k: v}
---
apiVersion: v1
kind: Pod
metadata: {name: on-n1, namespace: default}
spec:
  nodeName: n1
  containers:
  - name: c
    image: busybox
    envFrom: [{configMapRef: {name: env}}]
  volumes: [{name: s, secret: {secretName: used}}]
---
apiVersion: v1
kind: Pod
metadata: {name: on-n2, namespace: default}
spec:
  nodeName: n2
  containers: [{name: c, image: busybox}]
"#;

#[test]
fn a_node_reads_only_what_its_pods_use() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    client_cert(&s, dir.path(), "n1", "/O=system:nodes/CN=system:node:n1");
    let out = s.kubectl_stdin(&["apply", "-f", "-"], OBJECTS);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let d = dir.path();
    let ns = "/api/v1/namespaces/default";
    // The caches may trail the writes a moment: the first read waits for them.
    assert!(
        eventually(Duration::from_secs(10), || raw(&s, d, &format!("{ns}/secrets/used")).is_ok())
    );
    raw(&s, d, &format!("{ns}/configmaps/env")).expect("a ConfigMap its pod uses");
    let err = raw(&s, d, &format!("{ns}/secrets/unused")).unwrap_err();
    assert!(
        err.contains(r#"secrets "unused" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'n1' and this object"#),
        "{err}"
    );
    // A single object by name through list/watch is the same check.
    raw(&s, d, &format!("{ns}/secrets?fieldSelector=metadata.name%3Dused"))
        .expect("list of one used secret");
    raw(&s, d, &format!("{ns}/secrets")).expect_err("list of all secrets");
    // Pods: its own by name or by its node field selector; not the others'.
    raw(&s, d, &format!("{ns}/pods/on-n1")).expect("its own pod");
    raw(&s, d, &format!("{ns}/pods/on-n2")).expect_err("another node's pod");
    raw(&s, d, "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1")
        .expect("its pods by field selector");
    let err = raw(&s, d, "/api/v1/pods").unwrap_err();
    assert!(err.contains("can only list/watch pods with spec.nodeName field selector"), "{err}");
    // Nodes: only its own.
    let err = raw(&s, d, "/api/v1/nodes/n2").unwrap_err();
    assert!(err.contains("node 'n1' cannot read 'n2', only its own Node object"), "{err}");
    // The node's own Lease, not another's.
    let err = raw(&s, d, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n2")
        .unwrap_err();
    assert!(
        err.contains("can only access node lease with the same name as the requesting node"),
        "{err}"
    );
    let own = raw(&s, d, "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1")
        .unwrap_err();
    assert!(own.contains("NotFound") || own.contains("not found"), "allowed, and absent: {own}");
}
