//! ValidatingAdmissionPolicy through kubectl, as upstream v1.35: a policy with a
//! ConfigMap as its params limits replicas (refused with upstream's message and the
//! Invalid reason; a messageExpression names the limit), a binding's namespace
//! selector narrows it, Warn bindings answer with a warning instead, a missing param
//! with `Deny` refuses, and a policy whose CEL cannot compile is refused at create.

use kapi_e2e::policy::{create_until_refused, stderr, stdin_ok};
use kapi_e2e::{Server, ServerOptions, eventually};
use serde_json::Value;
use std::time::Duration;

const POLICY: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: replica-limit}
spec:
  failurePolicy: Fail
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [deployments]
  variables:
  - name: limit
    expression: "int(params.data.maxReplicas)"
  validations:
  - expression: "object.spec.replicas <= variables.limit"
    messageExpression: "'replicas must be no greater than ' + string(variables.limit)"
  auditAnnotations:
  - key: replicas
    valueExpression: "string(object.spec.replicas)"
"#;

fn binding(name: &str, param: &str, actions: &str) -> String {
    format!(
        r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {name}}}
spec:
  policyName: replica-limit
  validationActions: [{actions}]
  paramRef: {{name: {param}, namespace: default, parameterNotFoundAction: Deny}}
  matchResources:
    namespaceSelector:
      matchLabels: {{policy: {name}}}
"#
    )
}

fn deployment(name: &str, ns: &str, replicas: u32) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: c, image: nginx}}]
"#
    )
}

fn labelled_namespace(s: &Server, ns: &str, binding: &str) {
    kapi_e2e::policy::labelled_namespace(s, ns, &format!("policy={binding}"));
}

const NINE: &str = r#"{"spec":{"replicas":9}}"#;

#[test]
fn a_policy_with_params_refuses_too_many_replicas_with_upstreams_message() {
    let s = Server::start();
    s.kubectl_ok(&[
        "create",
        "configmap",
        "limits",
        "-n",
        "default",
        "--from-literal=maxReplicas=5",
    ]);
    stdin_ok(&s, &["apply", "-f", "-"], POLICY);
    stdin_ok(&s, &["apply", "-f", "-"], &binding("deny", "limits", "Deny"));
    labelled_namespace(&s, "guarded", "deny");
    s.kubectl_ok(&["create", "namespace", "free"]);

    let refused = create_until_refused(&s, &deployment("big", "guarded", 50));
    let err = stderr(&refused);
    assert!(
        err.contains(
            // Upstream's answer, as its documentation shows it: 422 Invalid whose one
            // cause is the policy's message (hence kubectl's empty field before it).
            "The deployments \"big\" is invalid: : ValidatingAdmissionPolicy 'replica-limit' \
             with binding 'deny' denied request: replicas must be no greater than 5"
        ),
        "{err}"
    );
    stdin_ok(&s, &["create", "-f", "-"], &deployment("small", "guarded", 3));
    // The binding's namespace selector leaves other namespaces alone.
    stdin_ok(&s, &["create", "-f", "-"], &deployment("big", "free", 50));
    // Updates are validated too (the scale subresource is not: the rule names
    // `deployments` only), and the params are read live.
    let scaled = s.kubectl(&["patch", "deployment", "small", "-n", "guarded", "-p", NINE]);
    assert!(!scaled.status.success(), "scale past the limit was accepted");
    s.kubectl_ok(&[
        "patch",
        "configmap",
        "limits",
        "-n",
        "default",
        "-p",
        r#"{"data":{"maxReplicas":"10"}}"#,
    ]);
    let ok = eventually(Duration::from_secs(20), || {
        s.kubectl(&["patch", "deployment", "small", "-n", "guarded", "-p", NINE]).status.success()
    });
    assert!(ok, "a raised limit in the params was not taken");
}

const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n  resources:\n  - group: apps\n    resources: [deployments]\n";

/// The audit events of writes (kubectl apply: create, then patches) in `ns` so far.
fn audited_writes(log: &std::path::Path, ns: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let events = text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok());
    events
        .filter(|e| {
            e["verb"] == "create"
                && e["objectRef"]["namespace"] == ns
                && e["stage"] == "ResponseComplete"
        })
        .collect()
}

#[test]
fn warn_bindings_warn_and_missing_params_with_deny_refuse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (policy, log) = (dir.path().join("audit.yaml"), dir.path().join("audit.log"));
    std::fs::write(&policy, AUDIT_POLICY).expect("audit policy");
    let extra_args = [
        "--audit-policy-file",
        policy.to_str().unwrap(),
        "--audit-log-path",
        log.to_str().unwrap(),
    ];
    let s = Server::start_with(ServerOptions {
        extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    });
    s.kubectl_ok(&[
        "create",
        "configmap",
        "limits",
        "-n",
        "default",
        "--from-literal=maxReplicas=2",
    ]);
    stdin_ok(&s, &["apply", "-f", "-"], POLICY);
    stdin_ok(&s, &["apply", "-f", "-"], &binding("warn", "limits", "Warn, Audit"));
    stdin_ok(&s, &["apply", "-f", "-"], &binding("missing", "nope", "Deny"));
    labelled_namespace(&s, "warned", "warn");
    labelled_namespace(&s, "unparameterized", "missing");

    let want = "Warning: Validation failed for ValidatingAdmissionPolicy 'replica-limit' with binding 'warn': \
                replicas must be no greater than 2";
    let warned = eventually(Duration::from_secs(20), || {
        let out = s.kubectl_stdin(&["apply", "-f", "-"], &deployment("w", "warned", 4));
        out.status.success() && stderr(&out).contains(want)
    });
    assert!(warned, "no warning from the Warn binding");
    // The Audit action and the policy's audit annotation reach the audit event.
    let mut annotations = Value::Null;
    let audited = eventually(Duration::from_secs(10), || {
        let key = "validation.policy.admission.k8s.io/validation_failure";
        let events = audited_writes(&log, "warned");
        let found = events.into_iter().find(|e| e["annotations"].get(key).is_some());
        annotations = found.map(|e| e["annotations"].clone()).unwrap_or_default();
        !annotations.is_null()
    });
    assert!(audited, "no validation failure audited: {annotations}");
    let failures: Value = serde_json::from_str(
        annotations["validation.policy.admission.k8s.io/validation_failure"].as_str().unwrap(),
    )
    .expect("a JSON list");
    assert_eq!(
        failures,
        serde_json::json!([{"message": "replicas must be no greater than 2", "policy": "replica-limit",
            "binding": "warn", "expressionIndex": 0, "validationActions": ["Warn", "Audit"]}])
    );
    assert_eq!(annotations["replica-limit/replicas"], "4");

    let refused = create_until_refused(&s, &deployment("d", "unparameterized", 1));
    let err = stderr(&refused);
    assert!(
        err.contains(
            "ValidatingAdmissionPolicy 'replica-limit' with binding 'missing' denied request: \
             failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction"
        ),
        "{err}"
    );
}

#[test]
fn a_policy_that_does_not_compile_is_refused_at_create() {
    let s = Server::start();
    let bad = POLICY
        .replace("name: replica-limit", "name: bad")
        .replace("object.spec.replicas <= variables.limit", "object.spec.replicas <=");
    let out = s.kubectl_stdin(&["create", "-f", "-"], &bad);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(
            "The ValidatingAdmissionPolicy \"bad\" is invalid: \
                      spec.validations[0].expression: Invalid value: \"object.spec.replicas <=\": \
                      compilation failed: ERROR: <input>:1:"
        ),
        "{err}"
    );
    // Regression (issue #18): `request` was `dyn`, so a typo in its fields was stored;
    // upstream types it (`kubernetes.AdmissionRequest`) and refuses the policy.
    let typo = POLICY
        .replace("name: replica-limit", "name: typo")
        .replace("object.spec.replicas <= variables.limit", "request.nmae == 'x'");
    let out = s.kubectl_stdin(&["create", "-f", "-"], &typo);
    assert!(!out.status.success(), "a policy naming request.nmae was stored");
    let err = stderr(&out);
    assert!(
        err.contains(
            "spec.validations[0].expression: Invalid value: \"request.nmae == 'x'\": \
             compilation failed: ERROR: <input>:1:8: undefined field 'nmae'"
        ),
        "{err}"
    );
    let defaulted = s.kubectl_stdin(
        &["create", "-f", "-", "-o", "jsonpath={.spec.matchConstraints.matchPolicy}"],
        POLICY,
    );
    assert_eq!(String::from_utf8_lossy(&defaulted.stdout), "Equivalent", "{}", stderr(&defaulted));
}
