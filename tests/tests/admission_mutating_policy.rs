//! MutatingAdmissionPolicy through kubectl, as upstream v1.35 with the v1beta1 API
//! served (`--runtime-config`) and the plugin enabled: a policy with a ConfigMap as
//! its params labels Deployments and raises their replicas through an apply
//! configuration, and adds an env var and an annotation through a JSON patch; a dry run
//! answers the mutated object and stores nothing; a policy whose expression fails
//! refuses the write under failurePolicy Fail (403, upstream's message) and is skipped
//! under Ignore; an `IfNeeded` policy runs again when a later policy changed the object.

use kapi_e2e::{Server, ServerOptions, eventually};
use serde_json::Value;
use std::time::Duration;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn start() -> Server {
    let args = [
        "--runtime-config=admissionregistration.k8s.io/v1beta1=true",
        "--enable-admission-plugins=MutatingAdmissionPolicy",
    ];
    Server::start_with(ServerOptions {
        extra_args: args.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    })
}

fn stdin_ok(s: &Server, args: &[&str], yaml: &str) {
    let out = s.kubectl_stdin(args, yaml);
    assert!(out.status.success(), "kubectl {args:?}: {}", stderr(&out));
}

fn get(s: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&s.kubectl_ok(&all)).expect("json")
}

const DEFAULTS: &str = r#"
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata: {name: defaults}
spec:
  failurePolicy: Fail
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [deployments]
  variables:
  - name: minReplicas
    expression: "int(params.data.minReplicas)"
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{
          metadata: Object.metadata{labels: {"team": params.data.team}},
          spec: Object.spec{replicas:
            !has(object.spec.replicas) || object.spec.replicas < variables.minReplicas
              ? variables.minReplicas : object.spec.replicas}
        }
  - patchType: JSONPatch
    jsonPatch:
      expression: >
        (has(object.metadata.annotations) ? [] :
          [JSONPatch{op: "add", path: "/metadata/annotations", value: {}}]) +
        [
          JSONPatch{op: "add",
            path: "/metadata/annotations/" + jsonpatch.escapeKey("example.com/env"),
            value: params.data.env},
          JSONPatch{op: "add", path: "/spec/template/spec/containers/0/env",
            value: [{"name": "ENV", "value": params.data.env}]}
        ]
---
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicyBinding
metadata: {name: defaults}
spec:
  policyName: defaults
  paramRef: {name: mutation-params, namespace: default, parameterNotFoundAction: Deny}
  matchResources:
    namespaceSelector:
      matchLabels: {mutate: "yes"}
"#;

fn deployment(name: &str, ns: &str, replicas: u32) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}, labels: {{app: {name}}}}}
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

/// Create `yaml` until the object comes back with the label `key` (the policy's watch
/// cache is a moment behind its write, as upstream's informers are); the stored object.
fn create_until_labelled(s: &Server, yaml: &str, args: &[&str], key: &str) -> Value {
    let mut last = Value::Null;
    let ok = eventually(Duration::from_secs(20), || {
        let out = s.kubectl_stdin(&["create", "-o", "json", "-f", "-"], yaml);
        if !out.status.success() {
            return false;
        }
        let obj: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if obj["metadata"]["labels"].get(key).is_some() {
            last = get(s, args);
            return true;
        }
        let _ = s.kubectl_stdin(&["delete", "-f", "-", "--wait=false"], yaml);
        false
    });
    assert!(ok, "the policy never mutated the object");
    last
}

#[test]
fn a_policy_labels_defaults_and_patches_deployments_from_its_params() {
    let s = start();
    s.kubectl_ok(&[
        "create",
        "configmap",
        "mutation-params",
        "-n",
        "default",
        "--from-literal=team=payments",
        "--from-literal=env=prod",
        "--from-literal=minReplicas=3",
    ]);
    s.kubectl_ok(&["create", "namespace", "mutated"]);
    s.kubectl_ok(&["label", "namespace", "mutated", "mutate=yes"]);
    s.kubectl_ok(&["create", "namespace", "plain"]);
    stdin_ok(&s, &["apply", "-f", "-"], DEFAULTS);

    let d = create_until_labelled(
        &s,
        &deployment("web", "mutated", 1),
        &["get", "deployment", "web", "-n", "mutated"],
        "team",
    );
    // The apply configuration merged the label in (the app label stays) and raised the
    // replicas to the params' minimum.
    assert_eq!(d["metadata"]["labels"]["team"], "payments");
    assert_eq!(d["metadata"]["labels"]["app"], "web");
    assert_eq!(d["spec"]["replicas"], 3);
    // The JSON patch added the annotation (its key escaped) and the env var.
    assert_eq!(d["metadata"]["annotations"]["example.com/env"], "prod");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["env"], serde_json::json!([{"name": "ENV", "value": "prod"}]));
    assert_eq!(c["image"], "nginx");

    // More replicas than the minimum are kept.
    stdin_ok(&s, &["create", "-f", "-"], &deployment("big", "mutated", 5));
    let big = get(&s, &["get", "deployment", "big", "-n", "mutated"]);
    assert_eq!(
        (big["spec"]["replicas"].as_i64(), big["metadata"]["labels"]["team"].as_str()),
        (Some(5), Some("payments"))
    );

    // A dry run answers the mutated object and stores nothing.
    let out = s.kubectl_stdin(
        &["create", "--dry-run=server", "-o", "json", "-f", "-"],
        &deployment("dry", "mutated", 1),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let dry: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(dry["metadata"]["labels"]["team"], "payments");
    assert_eq!(dry["spec"]["replicas"], 3);
    let missing = s.kubectl(&["get", "deployment", "dry", "-n", "mutated"]);
    assert!(!missing.status.success(), "a dry run stored the deployment");

    // The binding's namespace selector leaves other namespaces alone.
    stdin_ok(&s, &["create", "-f", "-"], &deployment("web", "plain", 1));
    let plain = get(&s, &["get", "deployment", "web", "-n", "plain"]);
    assert!(plain["metadata"]["labels"].get("team").is_none(), "{plain}");
    assert_eq!(plain["spec"]["replicas"], 1);
}

/// A policy on configmaps of namespaces labelled `mode=MODE` whose first mutation
/// fails and whose second labels the object.
fn broken(mode: &str) -> String {
    let name = mode.to_lowercase();
    format!(
        r#"
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata: {{name: broken-{name}}}
spec:
  failurePolicy: {mode}
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [configmaps]
    namespaceSelector:
      matchLabels: {{mode: {mode}}}
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: 'Object{{metadata: Object.metadata{{labels: {{"x": object.data.missing}}}}}}'
  - patchType: JSONPatch
    jsonPatch:
      expression: '[JSONPatch{{op: "add", path: "/metadata/labels", value: {{"seen": "yes"}}}}]'
---
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicyBinding
metadata: {{name: broken-{name}}}
spec:
  policyName: broken-{name}
"#
    )
}

#[test]
fn a_failing_policy_refuses_under_fail_and_is_skipped_under_ignore() {
    let s = start();
    for mode in ["Fail", "Ignore"] {
        let ns = mode.to_lowercase();
        s.kubectl_ok(&["create", "namespace", &ns]);
        s.kubectl_ok(&["label", "namespace", &ns, &format!("mode={mode}")]);
        stdin_ok(&s, &["apply", "-f", "-"], &broken(mode));
    }
    // Ignore: the failed mutation is skipped, the next one still runs.
    let cm = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ignore"}, "data": {"a": "b"}}"#;
    let stored = create_until_labelled(&s, cm, &["get", "configmap", "c", "-n", "ignore"], "seen");
    assert_eq!(stored["metadata"]["labels"], serde_json::json!({"seen": "yes"}));
    assert_eq!(stored["data"], serde_json::json!({"a": "b"}));

    // Fail: the write is refused with upstream's message, nothing stored.
    let mut err = String::new();
    let refused = eventually(Duration::from_secs(20), || {
        let out = s.kubectl(&["create", "configmap", "c", "-n", "fail", "--from-literal=a=b"]);
        if out.status.success() {
            s.kubectl(&["delete", "configmap", "c", "-n", "fail"]);
        }
        err = stderr(&out);
        !out.status.success()
    });
    assert!(refused, "never refused");
    assert!(
        err.contains(
            "policy 'broken-fail' with binding 'broken-fail' denied request: expression \
             'Object{metadata: Object.metadata{labels: {\"x\": object.data.missing}}}' \
             resulted in error: no such key: missing"
        ),
        "{err}"
    );
    let raw = s.kubectl(&["get", "--raw", "/api/v1/namespaces/fail/configmaps/c"]);
    assert!(!raw.status.success(), "a refused configmap was stored");
    let out = s
        .kubectl_stdin(&["create", "-f", "-", "-o", "json"], &cm.replace("\"ignore\"", "\"fail\""));
    assert!(!out.status.success());
}

/// A policy that records whether the `b` label was there when it ran.
const REINVOKED: &str = r#"
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata: {name: a-observer}
spec:
  reinvocationPolicy: IfNeeded
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [configmaps]
    namespaceSelector:
      matchLabels: {reinvoke: "yes"}
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{metadata: Object.metadata{labels: {"saw-b":
          has(object.metadata.labels) && "b" in object.metadata.labels ? "yes" : "no"}}}
---
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicyBinding
metadata: {name: a-observer}
spec: {policyName: a-observer}
---
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata: {name: b-labeller}
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [configmaps]
    namespaceSelector:
      matchLabels: {reinvoke: "yes"}
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: 'Object{metadata: Object.metadata{labels: {"b": "set"}}}'
---
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicyBinding
metadata: {name: b-labeller}
spec: {policyName: b-labeller}
"#;

#[test]
fn an_if_needed_policy_runs_again_after_a_later_policy_changed_the_object() {
    let s = start();
    s.kubectl_ok(&["create", "namespace", "r"]);
    s.kubectl_ok(&["label", "namespace", "r", "reinvoke=yes"]);
    stdin_ok(&s, &["apply", "-f", "-"], REINVOKED);
    let cm =
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "r"}}"#;
    // Both policies in force: `b` set by the second, then the first ran again and saw it.
    let mut stored = Value::Null;
    let ok = eventually(Duration::from_secs(20), || {
        stored = create_until_labelled(&s, cm, &["get", "configmap", "c", "-n", "r"], "b");
        let both = stored["metadata"]["labels"].get("saw-b").is_some();
        if !both {
            s.kubectl(&["delete", "configmap", "c", "-n", "r"]);
        }
        both
    });
    assert!(ok, "{stored}");
    assert_eq!(stored["metadata"]["labels"]["saw-b"], "yes", "{stored}");
}
