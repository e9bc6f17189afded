//! The admission chain on the real binary with kubectl (issue #18): NamespaceLifecycle
//! (missing and terminating namespaces, immortal ones), ServiceAccount (the default
//! account, the projected token volume, a missing account refused),
//! DefaultTolerationSeconds, Priority, TaintNodesByCondition, NodeRestriction (enabled
//! by flag), `--disable-admission-plugins`, and dry run (admission runs, nothing is
//! stored). Upstream's messages. Runs on both backends.

use kapi_e2e::{Server, ServerOptions, eventually, openssl};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(s: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&s.kubectl_ok(&all)).expect("json")
}

fn with_args(args: &[&str]) -> Server {
    Server::start_with(ServerOptions {
        extra_args: args.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    })
}

/// Run a pod once the namespace's `default` ServiceAccount exists (the controller makes
/// it shortly after the namespace).
fn run_pod(s: &Server, name: &str, extra: &[&str]) -> Output {
    let mut args = vec!["run", name, "--image=nginx"];
    args.extend(extra);
    s.kubectl(&args)
}

#[test]
fn creates_in_missing_or_terminating_namespaces_are_refused() {
    let s = Server::start();
    let out = s.kubectl(&["create", "configmap", "c", "-n", "nope"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(r#"namespaces "nope" not found"#), "{}", stderr(&out));

    s.kubectl_ok(&["create", "namespace", "held"]);
    let held = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"held","namespace":"held","finalizers":["example.com/hold"]}}"#;
    let out = s.kubectl_stdin(&["create", "-f", "-"], held);
    assert!(out.status.success(), "{}", stderr(&out));
    s.kubectl_ok(&["delete", "namespace", "held", "--wait=false"]);
    let out = s.kubectl(&["create", "configmap", "late", "-n", "held"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(r#"configmaps "late" is forbidden: unable to create new content in namespace held because it is being terminated"#),
        "{}",
        stderr(&out)
    );
}

#[test]
fn kube_system_may_not_be_deleted() {
    let s = Server::start();
    let out = s.kubectl(&["delete", "namespace", "kube-system"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            r#"namespaces "kube-system" is forbidden: this namespace may not be deleted"#
        ),
        "{}",
        stderr(&out)
    );
    s.kubectl_ok(&["get", "namespace", "kube-system"]);
}

fn assert_admitted_pod(pod: &Value) {
    let spec = &pod["spec"];
    assert_eq!(spec["serviceAccountName"], "default", "{pod}");
    assert_eq!(spec["serviceAccount"], "default", "{pod}");
    let volume = &spec["volumes"][0];
    let name = volume["name"].as_str().unwrap();
    assert!(name.starts_with("kube-api-access-") && name.len() == 21, "{name}");
    let sources = volume["projected"]["sources"].as_array().unwrap();
    assert_eq!(sources[0]["serviceAccountToken"]["path"], "token");
    assert_eq!(sources[1]["configMap"]["name"], "kube-root-ca.crt");
    assert_eq!(volume["projected"]["defaultMode"], 420);
    let mount = &spec["containers"][0]["volumeMounts"][0];
    assert_eq!(mount["name"], name);
    assert_eq!(mount["mountPath"], "/var/run/secrets/kubernetes.io/serviceaccount");
    assert_eq!(mount["readOnly"], true);
    let tolerations: Vec<(&str, i64)> = spec["tolerations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["key"].as_str().unwrap(), t["tolerationSeconds"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        tolerations,
        [("node.kubernetes.io/not-ready", 300), ("node.kubernetes.io/unreachable", 300)]
    );
    assert_eq!(
        (spec["priority"].as_i64(), spec["preemptionPolicy"].as_str()),
        (Some(0), Some("PreemptLowerPriority"))
    );
}

#[test]
fn pods_get_their_service_account_token_volume_and_tolerations() {
    let s = Server::start();
    let out = run_pod(&s, "web", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_admitted_pod(&json(&s, &["get", "pod", "web"]));
    // a new namespace gets its default ServiceAccount, so its pods are admitted too
    s.kubectl_ok(&["create", "namespace", "fresh"]);
    let out = run_pod(&s, "web", &["-n", "fresh"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_admitted_pod(&json(&s, &["get", "pod", "web", "-n", "fresh"]));
    // a pod that opts out gets no token volume
    let opted_out = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"quiet"},
        "spec":{"automountServiceAccountToken":false,"containers":[{"name":"c","image":"nginx"}]}}"#;
    let out = s.kubectl_stdin(&["create", "-f", "-"], opted_out);
    assert!(out.status.success(), "{}", stderr(&out));
    let pod = json(&s, &["get", "pod", "quiet"]);
    assert!(pod["spec"].get("volumes").is_none(), "{pod}");
    assert_eq!(pod["spec"]["serviceAccountName"], "default");
}

#[test]
fn a_pod_naming_a_missing_service_account_is_refused() {
    let s = Server::start();
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"lost"},
        "spec":{"serviceAccountName":"missing","containers":[{"name":"c","image":"nginx"}]}}"#;
    let out = s.kubectl_stdin(&["create", "-f", "-"], pod);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(r#"pods "lost" is forbidden: error looking up service account default/missing: serviceaccount "missing" not found"#),
        "{}",
        stderr(&out)
    );
    // once it exists, the pod is admitted
    s.kubectl_ok(&["create", "serviceaccount", "missing"]);
    let out = s.kubectl_stdin(&["create", "-f", "-"], pod);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&s, &["get", "pod", "lost"])["spec"]["serviceAccountName"], "missing");
}

#[test]
fn a_pod_with_a_priority_class_gets_its_priority() {
    let s = Server::start();
    // Without a default class: priority 0. (Regression: the plugin keeps the default
    // class it worked out; the default class created below must replace it.)
    let out = run_pod(&s, "early", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&s, &["get", "pod", "early"])["spec"]["priority"].as_i64(), Some(0));
    let class = r#"{"apiVersion":"scheduling.k8s.io/v1","kind":"PriorityClass","metadata":{"name":"high"},"value":1000,"preemptionPolicy":"Never"}"#;
    let out = s.kubectl_stdin(&["create", "-f", "-"], class);
    assert!(out.status.success(), "{}", stderr(&out));
    let pod = |name: &str, class: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"priorityClassName":"{class}","containers":[{{"name":"c","image":"nginx"}}]}}}}"#
        )
    };
    let out = s.kubectl_stdin(&["create", "-f", "-"], &pod("hi", "high"));
    assert!(out.status.success(), "{}", stderr(&out));
    let spec = json(&s, &["get", "pod", "hi"])["spec"].clone();
    assert_eq!(
        (spec["priority"].as_i64(), spec["preemptionPolicy"].as_str()),
        (Some(1000), Some("Never"))
    );
    let out = s.kubectl_stdin(
        &["create", "-n", "kube-system", "-f", "-"],
        &pod("crit", "system-node-critical"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let spec = json(&s, &["get", "pod", "crit", "-n", "kube-system"])["spec"].clone();
    assert_eq!(spec["priority"].as_i64(), Some(2_000_001_000));
    let out = s.kubectl_stdin(&["create", "-f", "-"], &pod("none", "nope"));
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains(r#"pods "none" is forbidden: no PriorityClass with name nope was found"#),
        "{}",
        stderr(&out)
    );
    // a second global default class is refused
    let default = |name: &str| {
        format!(
            r#"{{"apiVersion":"scheduling.k8s.io/v1","kind":"PriorityClass","metadata":{{"name":"{name}"}},"value":5,"globalDefault":true}}"#
        )
    };
    let out = s.kubectl_stdin(&["create", "-f", "-"], &default("first"));
    assert!(out.status.success(), "{}", stderr(&out));
    let out = s.kubectl_stdin(&["create", "-f", "-"], &default("second"));
    assert!(
        stderr(&out).contains(r#"priorityclasses.scheduling.k8s.io "second" is forbidden: PriorityClass first is already marked as default. Only one default can exist"#),
        "{}",
        stderr(&out)
    );
    // and pods without a class now get the default one
    let out = run_pod(&s, "plain", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let spec = json(&s, &["get", "pod", "plain"])["spec"].clone();
    assert_eq!(
        (spec["priority"].as_i64(), spec["priorityClassName"].as_str()),
        (Some(5), Some("first"))
    );
}

#[test]
fn disabling_the_service_account_plugin_stops_the_mount() {
    let s = with_args(&["--disable-admission-plugins=ServiceAccount"]);
    let out = run_pod(&s, "bare", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pod = json(&s, &["get", "pod", "bare"]);
    assert!(pod["spec"].get("volumes").is_none(), "{pod}");
    assert!(pod["spec"].get("serviceAccountName").is_none(), "{pod}");
    // the other default plugins still run
    assert_eq!(pod["spec"]["tolerations"].as_array().map(Vec::len), Some(2), "{pod}");
}

#[test]
fn dry_run_runs_admission_and_stores_nothing() {
    let s = Server::start();
    // the default ServiceAccount exists once a real create succeeds
    assert!(eventually(Duration::from_secs(10), || s
        .kubectl(&["get", "serviceaccount", "default"])
        .status
        .success()));
    let out = run_pod(&s, "ghost", &["--dry-run=server", "-o", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pod: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_admitted_pod(&pod);
    let out = s.kubectl(&["get", "pod", "ghost"]);
    assert!(!out.status.success(), "a dry run stores nothing");
    // refusals happen in a dry run too
    let lost = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"lost"},
        "spec":{"serviceAccountName":"missing","containers":[{"name":"c","image":"nginx"}]}}"#;
    let out = s.kubectl_stdin(&["create", "--dry-run=server", "-f", "-"], lost);
    assert!(
        stderr(&out).contains("error looking up service account default/missing"),
        "{}",
        stderr(&out)
    );
    let out = s.kubectl(&["delete", "namespace", "kube-system", "--dry-run=server"]);
    assert!(stderr(&out).contains("this namespace may not be deleted"), "{}", stderr(&out));
}

#[test]
fn a_new_node_is_tainted_not_ready() {
    let s = Server::start();
    let node = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}"#;
    let out = s.kubectl_stdin(&["create", "-f", "-"], node);
    assert!(out.status.success(), "{}", stderr(&out));
    let taints = json(&s, &["get", "node", "n1"])["spec"]["taints"].clone();
    assert_eq!(
        taints,
        serde_json::json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
    );
}

/// A kubelet's client certificate (`O=system:nodes`, `CN=system:node:NAME`) signed by
/// the server's CA, as `dir/NAME.crt` and `dir/NAME.key`.
fn kubelet_cert(s: &Server, dir: &Path, node: &str) {
    let subject = format!("/O=system:nodes/CN=system:node:{node}");
    let pki = s.data_dir().join("pki");
    openssl::client_cert(dir, &pki, node, &subject, openssl::Extensions::ClientAuth);
}

/// kubectl as kubelet `node`, with `stdin` as its input.
fn as_kubelet(s: &Server, dir: &Path, node: &str, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("kubectl")
        .args(["--kubeconfig", "/dev/null", "--server", &s.url()])
        .arg("--certificate-authority")
        .arg(s.data_dir().join("pki/ca.crt"))
        .arg("--client-certificate")
        .arg(dir.join(format!("{node}.crt")))
        .arg("--client-key")
        .arg(dir.join(format!("{node}.key")))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write");
    child.wait_with_output().expect("kubectl")
}

#[test]
fn node_restriction_keeps_a_kubelet_to_its_own_node() {
    let s = with_args(&["--enable-admission-plugins=NodeRestriction"]);
    let dir = tempfile::tempdir().expect("tempdir");
    kubelet_cert(&s, dir.path(), "a");
    for n in ["a", "b"] {
        let node = format!(r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"{n}"}}}}"#);
        let out = s.kubectl_stdin(&["create", "-f", "-"], &node);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // PUT as the kubelet (its authorizer lets it write any Node, not read another's)
    let label = |node: &str, label: &str| {
        let mut obj = json(&s, &["get", "node", node]);
        obj["metadata"]["labels"][label] = serde_json::json!("x");
        let path = format!("/api/v1/nodes/{node}");
        let args = ["replace", "--raw", path.as_str(), "-f", "-"];
        as_kubelet(&s, dir.path(), "a", &args, &obj.to_string())
    };
    let out = label("b", "example.com/team");
    assert!(!out.status.success());
    assert!(
        stderr(&out)
            .contains(r#"nodes "b" is forbidden: node "a" is not allowed to modify node "b""#),
        "{}",
        stderr(&out)
    );
    let out = label("a", "example.com/team");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = label("a", "node-restriction.kubernetes.io/secure");
    assert!(
        stderr(&out).contains(r#"nodes "a" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/secure"#),
        "{}",
        stderr(&out)
    );
    // pods: only mirror pods of its own
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default"},
        "spec":{"nodeName":"a","containers":[{"name":"c","image":"nginx"}]}}"#;
    let out = as_kubelet(&s, dir.path(), "a", &["create", "-f", "-"], pod);
    assert!(
        stderr(&out).contains(r#"pods "p" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "a" can only create mirror pods"#),
        "{}",
        stderr(&out)
    );
}
