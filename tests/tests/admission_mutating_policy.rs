//! MutatingAdmissionPolicy through kubectl, as upstream v1.35 with the v1beta1 API
//! served (`--runtime-config`) and the plugin enabled: a policy with a ConfigMap as
//! its params labels Deployments and raises their replicas through an apply
//! configuration, and adds an env var and an annotation through a JSON patch; a dry run
//! answers the mutated object and stores nothing; a policy whose expression fails
//! refuses the write under failurePolicy Fail (403, upstream's message) and is skipped
//! under Ignore; an `IfNeeded` policy runs again when a later policy changed the object;
//! a policy of upstream's refused shapes (both patch fields, no reinvocationPolicy,
//! DELETE, a `request` typo) is refused with its causes; `authorizer` decisions carry
//! RBAC's reason.

use kapi_e2e::policy::{Setup, create_until_labelled, get, stderr, stdin_ok};
use kapi_e2e::{Server, eventually};
use serde_json::Value;
use std::time::Duration;

fn start() -> Server {
    kapi_e2e::policy::start(Setup { mutating: true, ..Setup::default() })
}

const DEFAULTS: &str = r#"
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata: {name: defaults}
spec:
  failurePolicy: Fail
  reinvocationPolicy: Never
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
  reinvocationPolicy: Never
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
  reinvocationPolicy: Never
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

/// A policy on configmaps whose mutations are `expressions` (apply configurations),
/// with its binding.
fn policy_of(name: &str, extra: &str, expressions: &[&str]) -> String {
    let mutations: String = expressions
        .iter()
        .map(|e| {
            format!(
                "  - patchType: ApplyConfiguration\n    applyConfiguration:\n      expression: {}\n",
                serde_json::to_string(e).unwrap()
            )
        })
        .collect();
    format!(
        r#"
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata: {{name: {name}}}
spec:
  reinvocationPolicy: Never
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [configmaps]
    namespaceSelector:
      matchLabels: {{policy: {name}}}
{extra}  mutations:
{mutations}---
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicyBinding
metadata: {{name: {name}}}
spec: {{policyName: {name}}}
"#
    )
}

#[test]
fn a_policy_whose_cel_does_not_compile_or_has_the_wrong_type_is_refused_at_create() {
    let s = start();
    let variables = "  variables:\n  - {name: v, expression: 'object.data +'}\n";
    let conditions = "  matchConditions:\n  - {name: c, expression: 'nope == 1'}\n";
    let bad = policy_of(
        "bad",
        &format!("{variables}{conditions}"),
        &["Object{metadata: Object.metadata{labels: params.x}}", "{'metadata': {}}"],
    );
    let out = s.kubectl_stdin(&["create", "-f", "-"], &bad);
    assert!(!out.status.success(), "a policy that cannot compile was stored");
    let err = stderr(&out);
    for want in [
        "The MutatingAdmissionPolicy \"bad\" is invalid",
        "spec.matchConditions[0].expression: Invalid value: \"nope == 1\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'nope'",
        "spec.variables[0].expression: Invalid value: \"object.data +\": compilation failed: ERROR: <input>:1:",
        "spec.mutations[0].applyConfiguration.expression: Invalid value: \"Object{metadata: Object.metadata{labels: params.x}}\": compilation failed: ERROR: <input>:1:",
        "undeclared reference to 'params'",
        "spec.mutations[1].applyConfiguration.expression: Invalid value: \"{'metadata': {}}\": must evaluate to Object but got map(string, map(dyn, dyn))",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    // ("is invalid": kubectl's words for a 422 Invalid, a cause per field.) Not stored.
    let raw = s.kubectl(&[
        "get",
        "--raw",
        "/apis/admissionregistration.k8s.io/v1beta1/mutatingadmissionpolicies/bad",
    ]);
    assert!(!raw.status.success(), "stored anyway");
    let good = policy_of("good", "", &["Object{metadata: Object.metadata{labels: {'a': 'b'}}}"]);
    stdin_ok(&s, &["create", "-f", "-"], &good);
    let policy = get(&s, &["get", "mutatingadmissionpolicy", "good"]);
    assert_eq!(policy["spec"]["failurePolicy"], "Fail", "defaulted as upstream: {policy}");
}

/// A policy upstream refuses for its shape: both patch fields in one mutation, no
/// reinvocationPolicy, a rule matching DELETE, a typo in a `request` field.
const MISSHAPEN: &str = r#"
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata: {name: misshapen}
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE, DELETE]
      resources: [configmaps]
  matchConditions:
  - {name: typo, expression: "request.nmae == 'x'"}
  mutations:
  - patchType: JSONPatch
    jsonPatch: {expression: "[]"}
    applyConfiguration: {expression: "Object{}"}
"#;

/// Regression (issue #18): these were stored; upstream answers 422 with a cause each.
#[test]
fn a_policy_with_both_patch_fields_no_reinvocation_policy_or_deletes_is_refused() {
    let s = start();
    let out = s.kubectl_stdin(&["create", "-f", "-"], MISSHAPEN);
    assert!(!out.status.success(), "a misshapen policy was stored");
    let err = stderr(&out);
    for want in [
        "The MutatingAdmissionPolicy \"misshapen\" is invalid",
        "spec.matchConstraints.resourceRules.operations: Unsupported value: \"DELETE\": supported values: \"*\", \"CONNECT\", \"CREATE\", \"UPDATE\"",
        "spec.matchConditions[0].expression: Invalid value: \"request.nmae == 'x'\": compilation failed: ERROR: <input>:1:8: undefined field 'nmae'",
        "spec.mutations[0].applyConfiguration: Invalid value: \"{applyConfiguration}\": must not be specified when patchType is JSONPatch",
        "spec.reinvocationPolicy: Required value",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    let raw = s.kubectl(&[
        "get",
        "--raw",
        "/apis/admissionregistration.k8s.io/v1beta1/mutatingadmissionpolicies/misshapen",
    ]);
    assert!(!raw.status.success(), "stored anyway");
}

/// Alice and bob may create ConfigMaps in `authz`; alice may also read its Secrets.
const RBAC: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: writer, namespace: authz}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [create, delete, get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: writers, namespace: authz}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: writer}
subjects: [{kind: User, name: alice}, {kind: User, name: bob}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secret-reader, namespace: authz}
rules:
- {apiGroups: [""], resources: [secrets], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: secret-readers, namespace: authz}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secret-reader}
subjects: [{kind: User, name: alice}]
"#;

#[test]
fn mutations_ask_the_authorizer_as_the_requests_user() {
    let s = kapi_e2e::policy::start(Setup { mutating: true, users: true });
    kapi_e2e::policy::labelled_namespace(&s, "authz", "policy=authz");
    kapi_e2e::policy::apply(&s, RBAC);
    let label = "Object{metadata: Object.metadata{labels: {'may-read-secrets': \
                 string(authorizer.group('').resource('secrets').namespace(request.namespace)\
                 .check('get').allowed())}}}";
    // A decision's reason() is the authorizer's: RBAC names the binding that allowed.
    let reason = "Object{metadata: Object.metadata{annotations: {'reason': \
                  authorizer.group('').resource('secrets').namespace(request.namespace)\
                  .check('get').reason()}}}";
    kapi_e2e::policy::apply(&s, &policy_of("authz", "", &[label, reason]));
    let create = |token: &str, name: &str| -> Value {
        let cm = format!(
            "{{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {{\"name\": \"{name}\", \"namespace\": \"authz\"}}}}"
        );
        let mut got = Value::Null;
        let ok = eventually(Duration::from_secs(20), || {
            let out = s.kubectl_token(token, &["create", "-o", "json", "-f", "-"], Some(&cm));
            if !out.status.success() {
                got = Value::String(stderr(&out));
                return false;
            }
            got = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let done = got["metadata"]["labels"].get("may-read-secrets").is_some();
            if !done {
                s.kubectl(&["delete", "configmap", name, "-n", "authz"]);
            }
            done
        });
        assert!(ok, "the policy never labelled {name}");
        got
    };
    let by_alice = create(kapi_e2e::policy::ALICE, "by-alice");
    assert_eq!(by_alice["metadata"]["labels"]["may-read-secrets"], "true", "{by_alice}");
    assert_eq!(
        by_alice["metadata"]["annotations"]["reason"],
        r#"RBAC: allowed by RoleBinding "secret-readers/authz" of Role "secret-reader" to User "alice""#,
        "{by_alice}"
    );
    let by_bob = create(kapi_e2e::policy::BOB, "by-bob");
    assert_eq!(by_bob["metadata"]["labels"]["may-read-secrets"], "false", "{by_bob}");
}

/// A policy (reinvocationPolicy Never) replacing every pod's tolerations in namespace
/// `tolerated` by its own, and labelling it.
const TOLERATIONS: &str = r#"
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicy
metadata: {name: tolerations}
spec:
  reinvocationPolicy: Never
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [CREATE]
      resources: [pods]
    namespaceSelector:
      matchLabels: {policy: tolerations}
  mutations:
  - patchType: JSONPatch
    jsonPatch:
      expression: >
        [JSONPatch{op: "replace", path: "/spec/tolerations",
           value: [{"key": "example.com/own", "operator": "Exists"}]},
         JSONPatch{op: "add", path: "/metadata/labels", value: {"patched": "yes"}}]
---
apiVersion: admissionregistration.k8s.io/v1beta1
kind: MutatingAdmissionPolicyBinding
metadata: {name: tolerations}
spec: {policyName: tolerations}
"#;

#[test]
fn in_tree_plugins_run_again_after_a_policy_changed_the_object() {
    let s = start();
    kapi_e2e::policy::labelled_namespace(&s, "tolerated", "policy=tolerations");
    stdin_ok(&s, &["apply", "-f", "-"], TOLERATIONS);
    let pod = r#"{"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "tolerated"},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]}}"#;
    let stored = create_until_labelled(&s, pod, &["get", "pod", "p", "-n", "tolerated"], "patched");
    // The policy replaced the tolerations DefaultTolerationSeconds had added; in the
    // reinvocation round it added them again (upstream reruns the whole chain).
    let keys: Vec<(&str, Option<i64>)> = stored["spec"]["tolerations"]
        .as_array()
        .expect("tolerations")
        .iter()
        .map(|t| (t["key"].as_str().unwrap_or(""), t["tolerationSeconds"].as_i64()))
        .collect();
    assert_eq!(
        keys,
        [
            ("example.com/own", None),
            ("node.kubernetes.io/not-ready", Some(300)),
            ("node.kubernetes.io/unreachable", Some(300)),
        ],
        "{stored}"
    );
}

/// `[0, ..., 9]` comprehended `depth` times: 10^depth innermost steps.
fn nested(depth: usize) -> String {
    let list = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]";
    let mut e = "0".to_string();
    for i in 0..depth {
        e = format!("{list}.map(x{i}, {e})");
    }
    e
}

#[test]
fn an_expression_over_its_cost_limit_or_a_mutation_over_its_budget_fails_per_failure_policy() {
    let s = start();
    // One expression past the per-call limit: the mutation's runtime error.
    let expensive = format!(
        "Object{{metadata: Object.metadata{{labels: {{'n': string(size({}))}}}}}}",
        nested(6)
    );
    kapi_e2e::policy::labelled_namespace(&s, "limit", "policy=limit");
    kapi_e2e::policy::apply(&s, &policy_of("limit", "", &[&expensive]));
    // Variables each under the limit (a split of a 500 kB string), together past the
    // mutation's budget.
    let vars: String = (0..20)
        .map(|i| format!("  - {{name: v{i}, expression: \"object.data.big.split('x')\"}}\n"))
        .collect();
    let sum: Vec<String> = (0..20).map(|i| format!("size(variables.v{i})")).collect();
    let over = format!(
        "Object{{metadata: Object.metadata{{labels: {{'n': string({})}}}}}}",
        sum.join(" + ")
    );
    let with_vars = format!("  variables:\n{vars}");
    kapi_e2e::policy::labelled_namespace(&s, "budget", "policy=budget");
    kapi_e2e::policy::apply(&s, &policy_of("budget", &with_vars, &[&over]));
    // Under Ignore the same mutation is skipped; the next one still runs.
    kapi_e2e::policy::labelled_namespace(&s, "ignored", "policy=ignored");
    let ignored = policy_of(
        "ignored",
        &format!("  failurePolicy: Ignore\n{with_vars}"),
        &[&over, "Object{metadata: Object.metadata{labels: {'after': 'yes'}}}"],
    );
    kapi_e2e::policy::apply(&s, &ignored);

    let big = "a".repeat(500_000);
    let cm = |ns: &str| {
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": ns}, "data": {"big": big}})
        .to_string()
    };
    let err = stderr(&kapi_e2e::policy::create_until_refused(&s, &cm("limit")));
    assert!(
        err.contains("policy 'limit' with binding 'limit' denied request: expression 'Object{")
            && err.contains("resulted in error: operation cancelled: actual cost limit exceeded"),
        "{err}"
    );
    let err = stderr(&kapi_e2e::policy::create_until_refused(&s, &cm("budget")));
    assert!(
        err.contains(
            "policy 'budget' with binding 'budget' denied request: validation failed due to \
             running out of cost budget, no further validation rules will be run"
        ),
        "{err}"
    );
    let stored = create_until_labelled(
        &s,
        &cm("ignored"),
        &["get", "configmap", "c", "-n", "ignored"],
        "after",
    );
    assert!(stored["metadata"]["labels"].get("n").is_none(), "{}", stored["metadata"]);
}
