//! The PodTopologyLabels admission plugin on the real binary with kubectl (issue #18,
//! upstream v1.35, on by default): a pod bound to a node through the `pods/binding`
//! subresource, or created with `spec.nodeName`, gets the node's
//! `topology.kubernetes.io/zone` and `topology.kubernetes.io/region` labels (and no other
//! label of the node); a node without them changes nothing. Runs on both backends.

use kapi_e2e::Server;
use serde_json::Value;

const ZONE: &str = "topology.kubernetes.io/zone";
const REGION: &str = "topology.kubernetes.io/region";

fn json(s: &str) -> Value {
    serde_json::from_str(s).expect("json")
}

fn create(s: &Server, body: &str) {
    let out = s.kubectl_stdin(&["create", "-f", "-"], body);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn node(name: &str, labels: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"{name}","labels":{labels}}}}}"#
    )
}

fn bind(s: &Server, pod: &str, node: &str) {
    let url = format!("/api/v1/namespaces/default/pods/{pod}/binding");
    let body = format!(
        r#"{{"apiVersion":"v1","kind":"Binding","metadata":{{"name":"{pod}"}},"target":{{"apiVersion":"v1","kind":"Node","name":"{node}"}}}}"#
    );
    let out = s.kubectl_stdin(&["create", "--raw", &url, "-f", "-"], &body);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn labels(s: &Server, pod: &str) -> Value {
    let pod = json(&s.kubectl_ok(&["get", "pod", pod, "-o", "json"]));
    pod["metadata"]["labels"].clone()
}

#[test]
fn a_bound_pod_gets_its_nodes_zone_and_region() {
    let s = Server::start();
    let topology = format!(
        r#"{{"{ZONE}":"eu-west-1a","{REGION}":"eu-west-1","kubernetes.io/hostname":"n1"}}"#
    );
    create(&s, &node("n1", &topology));
    create(&s, &node("bare", r#"{"kubernetes.io/hostname":"bare"}"#));

    // Bound through the binding subresource, as a scheduler does.
    s.kubectl_ok(&["run", "web", "--image=nginx", "--labels=app=web"]);
    assert_eq!(labels(&s, "web").get(ZONE), None, "not bound yet");
    bind(&s, "web", "n1");
    let got = labels(&s, "web");
    assert_eq!(got[ZONE], "eu-west-1a");
    assert_eq!(got[REGION], "eu-west-1");
    assert_eq!(got["app"], "web");
    assert_eq!(got.get("kubernetes.io/hostname"), None, "only topology labels are copied");

    // Created already scheduled: the labels come with the create.
    let scheduled = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"pinned"},
        "spec":{"nodeName":"n1","containers":[{"name":"c","image":"nginx"}]}}"#;
    create(&s, scheduled);
    let got = labels(&s, "pinned");
    assert_eq!((got[ZONE].as_str(), got[REGION].as_str()), (Some("eu-west-1a"), Some("eu-west-1")));

    // A node without topology labels gives none.
    s.kubectl_ok(&["run", "plain", "--image=nginx", "--labels=app=plain"]);
    bind(&s, "plain", "bare");
    let got = labels(&s, "plain");
    assert_eq!(got, serde_json::json!({"app": "plain"}));
}
