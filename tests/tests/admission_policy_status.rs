//! ValidatingAdmissionPolicy status through kubectl (issue #18), as upstream's status
//! controller keeps it: a policy whose expression names a field Deployments lack gets
//! `status.typeChecking.expressionWarnings` with the field and upstream's warning text,
//! a well-typed policy gets none, and `status.observedGeneration` follows
//! `metadata.generation` when the policy changes. Runs on both backends.

use kapi_e2e::{Server, eventually};
use serde_json::Value;
use std::time::Duration;

fn policy(name: &str, expression: &str) -> String {
    format!(
        r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {name}}}
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [deployments]
  validations:
  - expression: "{expression}"
"#
    )
}

fn apply(s: &Server, yaml: &str) {
    let out = s.kubectl_stdin(&["apply", "-f", "-"], yaml);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn get(s: &Server, name: &str) -> Value {
    let out = s.kubectl_ok(&["get", "validatingadmissionpolicy", name, "-o", "json"]);
    serde_json::from_str(&out).expect("json")
}

/// The policy once its status has observed its current generation.
fn observed(s: &Server, name: &str) -> Value {
    let mut last = Value::Null;
    let done = eventually(Duration::from_secs(20), || {
        last = get(s, name);
        last["status"]["observedGeneration"] == last["metadata"]["generation"]
    });
    assert!(done, "status never observed the generation: {last}");
    last
}

#[test]
fn type_checking_warns_of_fields_the_matched_kind_lacks() {
    let s = Server::start();
    apply(&s, &policy("bad", "object.replicas > 1"));
    let p = observed(&s, "bad");
    assert_eq!(p["status"]["observedGeneration"], 1, "{p}");
    let warnings = &p["status"]["typeChecking"]["expressionWarnings"];
    assert_eq!(warnings.as_array().map(Vec::len), Some(1), "{p}");
    assert_eq!(warnings[0]["fieldRef"], "spec.validations[0].expression");
    assert_eq!(
        warnings[0]["warning"],
        "apps/v1, Kind=Deployment: ERROR: <input>:1:7: undefined field 'replicas'\n | object.replicas > 1\n | ......^\n"
    );

    apply(&s, &policy("good", "object.spec.replicas > 1"));
    let p = observed(&s, "good");
    assert_eq!(p["status"]["typeChecking"], serde_json::json!({}), "{p}");

    // A fix is a new generation: observed, and the warning is gone.
    apply(&s, &policy("bad", "object.spec.replicas > 1"));
    let p = observed(&s, "bad");
    assert_eq!(p["metadata"]["generation"], 2, "{p}");
    assert!(p["status"]["typeChecking"].get("expressionWarnings").is_none(), "{p}");
}
