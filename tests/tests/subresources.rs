//! The pods/binding and pods/eviction subresources through kubectl: a scheduler-style
//! Binding assigns a pod to a node once; `kubectl drain` evicts the node's pods, and a
//! PodDisruptionBudget with no disruptions allowed makes eviction answer 429 so drain
//! keeps the pod.

use kapi_e2e::Server;
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).expect("json")
}

fn binding(pod: &str, node: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Binding","metadata":{{"name":"{pod}"}},"target":{{"apiVersion":"v1","kind":"Node","name":"{node}"}}}}"#
    )
}

const NODE: &str = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1","labels":{"kubernetes.io/hostname":"n1"}}}"#;

#[test]
fn a_binding_assigns_a_pod_to_a_node_once() {
    let s = Server::start();
    s.kubectl_stdin(&["create", "-f", "-"], NODE);
    s.kubectl_ok(&["run", "web", "--image=nginx"]);
    let url = "/api/v1/namespaces/default/pods/web/binding";
    let out = s.kubectl_stdin(&["create", "--raw", url, "-f", "-"], &binding("web", "n1"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        (status["kind"].as_str(), status["status"].as_str()),
        (Some("Status"), Some("Success"))
    );
    let pod = json(&s.kubectl_ok(&["get", "pod", "web", "-o", "json"]));
    assert_eq!(pod["spec"]["nodeName"], "n1");
    let scheduled = pod["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .cloned();
    assert_eq!(scheduled.map(|c| c["status"].clone()), Some(Value::from("True")));
    // A second binding is a conflict, as upstream.
    let again = s.kubectl_stdin(&["create", "--raw", url, "-f", "-"], &binding("web", "n2"));
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("already assigned to node"), "{err}");
    // The node's watchers see the pod: field selector on spec.nodeName.
    let on_node =
        s.kubectl_ok(&["get", "pods", "--field-selector", "spec.nodeName=n1", "-o", "name"]);
    assert_eq!(on_node.trim(), "pod/web");
}

#[test]
fn drain_evicts_pods_and_respects_disruption_budgets() {
    let s = Server::start();
    s.kubectl_stdin(&["create", "-f", "-"], NODE);
    for pod in ["free", "guarded"] {
        s.kubectl_ok(&["run", pod, "--image=nginx", "--labels", &format!("app={pod}")]);
        let url = format!("/api/v1/namespaces/default/pods/{pod}/binding");
        s.kubectl_stdin(&["create", "--raw", &url, "-f", "-"], &binding(pod, "n1"));
        // As a kubelet would report it: running.
        s.kubectl_ok(&[
            "patch",
            "pod",
            pod,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Running"}}"#,
        ]);
    }
    s.kubectl_ok(&[
        "create",
        "poddisruptionbudget",
        "keep",
        "--selector=app=guarded",
        "--min-available=1",
    ]);
    let out = s.kubectl(&[
        "drain",
        "n1",
        "--pod-selector=app=free",
        "--force",
        "--grace-period=0",
        "--timeout=20s",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let gone = s.kubectl(&["get", "pod", "free"]);
    assert!(!gone.status.success(), "the evicted pod is still there");
    let node = json(&s.kubectl_ok(&["get", "node", "n1", "-o", "json"]));
    assert_eq!(node["spec"]["unschedulable"], true, "drain cordons the node");
    // The budget allows no disruption (no controller computes one): drain gives up.
    let blocked =
        s.kubectl(&["drain", "n1", "--pod-selector=app=guarded", "--force", "--timeout=4s"]);
    assert!(!blocked.status.success(), "drain evicted a pod its budget protects");
    let err = String::from_utf8_lossy(&blocked.stderr);
    assert!(err.contains("disruption budget"), "{err}");
    s.kubectl_ok(&["get", "pod", "guarded"]);
}
