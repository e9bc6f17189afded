//! The `authorizer` variable of ValidatingAdmissionPolicy expressions through kubectl
//! (issue #18): a policy refuses creating a ConfigMap unless its author may read the
//! namespace's Secrets, asked of RBAC as the request's user: alice (granted) creates,
//! bob (not granted) is refused with upstream's message; `authorizer.requestResource`
//! asks about the request's own resource. Runs on both backends.

use kapi_e2e::policy::{ALICE, BOB, Setup, apply, start, stderr};
use kapi_e2e::{Server, eventually};
use std::time::Duration;

fn with_users() -> Server {
    start(Setup { users: true, ..Setup::default() })
}

/// Alice and bob may write ConfigMaps in `guarded`; alice may also read its Secrets.
const RBAC: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: configmap-writer, namespace: guarded}
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [create, delete, get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: configmap-writers, namespace: guarded}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: configmap-writer}
subjects: [{kind: User, name: alice}, {kind: User, name: bob}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secret-reader, namespace: guarded}
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: secret-readers, namespace: guarded}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader}
subjects: [{kind: User, name: alice}]
"#;

const POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: secret-readers-only}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [configmaps]
  matchConditions:
  - name: only-in-guarded
    expression: "authorizer.requestResource.namespace('guarded').check('create').allowed() && object.metadata.namespace == 'guarded'"
  validations:
  - expression: "authorizer.group('').resource('secrets').namespace(object.metadata.namespace).check('get').allowed()"
    message: "only those who may read secrets may create configmaps"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: secret-readers-only}
spec:
  policyName: secret-readers-only
  validationActions: [Deny]
"#;

fn configmap(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: guarded}}\n")
}

#[test]
fn a_policy_asks_rbac_whether_the_requests_user_may_read_secrets() {
    let s = with_users();
    s.kubectl_ok(&["create", "namespace", "guarded"]);
    apply(&s, RBAC);
    apply(&s, POLICY);

    // Bob may create ConfigMaps but not read Secrets: refused once the policy is in force.
    let mut last = None;
    eventually(Duration::from_secs(20), || {
        let out = s.kubectl_token(BOB, &["create", "-f", "-"], Some(&configmap("by-bob")));
        let refused = !out.status.success();
        if !refused {
            let _ = s.kubectl_token(BOB, &["delete", "configmap", "by-bob", "-n", "guarded"], None);
        }
        last = Some(out);
        refused
    });
    let err = stderr(&last.expect("one attempt"));
    assert!(
        err.contains(
            "ValidatingAdmissionPolicy 'secret-readers-only' with binding 'secret-readers-only' denied request: only those who may read secrets may create configmaps"
        ),
        "{err}"
    );

    // Alice may read Secrets: allowed.
    let out = s.kubectl_token(ALICE, &["create", "-f", "-"], Some(&configmap("by-alice")));
    assert!(out.status.success(), "{}", stderr(&out));

    // The admin is in system:masters: allowed everything.
    let out = s.kubectl_stdin(&["create", "-f", "-"], &configmap("by-admin"));
    assert!(out.status.success(), "{}", stderr(&out));
}
