//! What a DELETE answers, as upstream kube-apiserver does (checked against the v1.21
//! binary): an object removed at once is named in a Success Status (`details.kind` the
//! resource, `details.uid` its uid), except pods, ServiceAccounts and StorageClasses,
//! which answer with the object; an object a finalizer keeps answers with the object,
//! now carrying its deletionTimestamp. Regression: kapi answered every delete with the
//! object. Runs on both backends.

use kapi_e2e::Server;
use serde_json::Value;

fn delete_raw(s: &Server, path: &str) -> Value {
    let out = s.kubectl(&["delete", "--raw", path]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", out.stdout))
}

#[test]
fn deletes_answer_a_status_or_the_object_as_upstream() {
    let s = Server::start();
    s.kubectl_ok(&["create", "configmap", "c", "--from-literal=a=b"]);
    let uid = s.kubectl_ok(&["get", "configmap", "c", "-o", "jsonpath={.metadata.uid}"]);
    let answer = delete_raw(&s, "/api/v1/namespaces/default/configmaps/c");
    assert_eq!(
        answer,
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": "c", "kind": "configmaps", "uid": uid}})
    );
    s.kubectl_ok(&["create", "priorityclass", "pc", "--value=5"]);
    let answer = delete_raw(&s, "/apis/scheduling.k8s.io/v1/priorityclasses/pc");
    assert_eq!(answer["details"]["group"], "scheduling.k8s.io", "{answer}");
    assert_eq!(answer["details"]["kind"], "priorityclasses", "{answer}");

    s.kubectl_ok(&["create", "serviceaccount", "sa"]);
    let answer = delete_raw(&s, "/api/v1/namespaces/default/serviceaccounts/sa");
    assert_eq!(answer["kind"], "ServiceAccount", "ServiceAccounts return the object: {answer}");

    // Held by a finalizer: the object, marked.
    let held = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"held","finalizers":["example.com/hold"]}}"#;
    let out = s.kubectl_stdin(&["create", "-f", "-"], held);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer = delete_raw(&s, "/api/v1/namespaces/default/configmaps/held");
    assert_eq!(answer["kind"], "ConfigMap", "{answer}");
    assert!(answer["metadata"]["deletionTimestamp"].is_string(), "{answer}");
}
