//! RBAC authorization with kubectl as several users against the real binary (issue #17):
//! roles and bindings grant exactly what they say, refusals are upstream's 403 with
//! upstream's message, `kubectl auth can-i` (SelfSubjectAccessReview and
//! SelfSubjectRulesReview) answers from the same policy, policy changes apply live,
//! escalation through roles and bindings is refused, `bind` allows binding a role one
//! does not hold, aggregated ClusterRoles gather their selected roles' rules, and
//! SubjectAccessReview answers for any user. Runs on both backends.

use kapi_e2e::{Server, ServerOptions, eventually};
use serde_json::Value;
use std::process::Output;
use std::time::Duration;

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789";

fn server() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tokens.csv");
    std::fs::write(&file, format!("{ALICE},alice,uid-a\n{BOB},bob,uid-b,\"devs\"\n"))
        .expect("token file");
    let extra_args = vec!["--token-auth-file".into(), file.display().to_string()];
    let s = Server::start_with(ServerOptions { extra_args, ..Default::default() });
    std::mem::forget(dir); // the server reads the file at start; the directory outlives the test
    s
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn apply(s: &Server, yaml: &str) {
    let out = s.kubectl_stdin(&["apply", "-f", "-"], yaml);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn can_i(s: &Server, token: &str, args: &[&str]) -> bool {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let out = s.kubectl_token(token, &all, None);
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

const POD_READER: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: default}
rules:
- {apiGroups: [""], resources: [pods], verbs: [get, list, watch]}
- {apiGroups: [""], resources: [configmaps], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-reads-pods, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects: [{kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}]
"#;

#[test]
fn roles_grant_exactly_what_they_say_and_refusals_read_as_upstreams() {
    let s = server();
    apply(&s, POD_READER);
    s.kubectl_ok(&["create", "configmap", "c1", "--from-literal=k=v"]);
    // The policy follows the caches: wait until alice's binding is in effect.
    assert!(eventually(Duration::from_secs(10), || can_i(&s, ALICE, &["list", "pods"])));
    ok(s.kubectl_token(ALICE, &["get", "pods"], None));
    ok(s.kubectl_token(ALICE, &["get", "configmap", "c1"], None));

    let out = s.kubectl_token(ALICE, &["get", "secrets"], None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            r#"secrets is forbidden: User "alice" cannot list resource "secrets" in API group "" in the namespace "default""#
        ),
        "{}",
        stderr(&out)
    );
    let out = s.kubectl_token(ALICE, &["delete", "configmap", "c1"], None);
    assert!(
        stderr(&out).contains(
            r#"configmaps "c1" is forbidden: User "alice" cannot delete resource "configmaps" in API group "" in the namespace "default""#
        ),
        "{}",
        stderr(&out)
    );
    let out = s.kubectl_token(ALICE, &["get", "pods", "-n", "kube-system"], None);
    assert!(stderr(&out).contains(r#"in the namespace "kube-system""#), "{}", stderr(&out));
    let out = s.kubectl_token(ALICE, &["get", "nodes"], None);
    assert!(
        stderr(&out)
            .contains(r#"cannot list resource "nodes" in API group "" at the cluster scope"#)
    );
    // The raw 403 body is upstream's Status.
    let raw =
        s.kubectl_token(ALICE, &["get", "--raw", "/api/v1/namespaces/default/secrets/x"], None);
    assert!(
        stderr(&raw).contains("Forbidden") || stderr(&raw).contains("forbidden"),
        "{}",
        stderr(&raw)
    );

    // can-i answers from the same policy; --list shows the bound rules.
    assert!(can_i(&s, ALICE, &["get", "pods"]));
    assert!(!can_i(&s, ALICE, &["delete", "pods"]));
    assert!(!can_i(&s, BOB, &["get", "pods"]));
    let list = ok(s.kubectl_token(ALICE, &["auth", "can-i", "--list", "-n", "default"], None));
    assert!(
        list.lines().any(|l| l.starts_with("pods ") && l.contains("[get list watch]")),
        "{list}"
    );

    // A change to the role applies without a restart; so does deleting the binding.
    s.kubectl_ok(&["patch", "role", "pod-reader", "--type=json", "-p",
        r#"[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["secrets"],"verbs":["list"]}}]"#]);
    assert!(eventually(Duration::from_secs(10), || can_i(&s, ALICE, &["list", "secrets"])));
    s.kubectl_ok(&["delete", "rolebinding", "alice-reads-pods"]);
    assert!(eventually(Duration::from_secs(10), || !can_i(&s, ALICE, &["list", "pods"])));
}

#[test]
fn groups_cluster_roles_and_missing_roles() {
    let s = server();
    apply(
        &s,
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: node-viewer}
rules: [{apiGroups: [""], resources: [nodes], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: devs-view-nodes}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: node-viewer}
subjects: [{kind: Group, name: devs, apiGroup: rbac.authorization.k8s.io}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: dangling, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: does-not-exist}
subjects: [{kind: User, name: bob, apiGroup: rbac.authorization.k8s.io}]
"#,
    );
    assert!(eventually(Duration::from_secs(10), || can_i(&s, BOB, &["list", "nodes"])));
    assert!(!can_i(&s, ALICE, &["list", "nodes"]), "alice is not in devs");
    // A binding to a missing role names it in the refusal, as upstream's RBAC does.
    let out = s.kubectl_token(BOB, &["get", "pods"], None);
    assert!(
        stderr(&out)
            .contains(r#"RBAC: clusterrole.rbac.authorization.k8s.io "does-not-exist" not found"#),
        "{}",
        stderr(&out)
    );
}

#[test]
fn escalation_is_refused_and_bind_allows_binding_a_role_one_does_not_hold() {
    let s = server();
    apply(
        &s,
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: rbac-writer, namespace: default}
rules:
- {apiGroups: [rbac.authorization.k8s.io], resources: [roles, rolebindings], verbs: [create, get, list, update, patch]}
- {apiGroups: [""], resources: [configmaps], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-writes-rbac, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: rbac-writer}
subjects: [{kind: User, name: alice}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: secret-admin}
rules: [{apiGroups: [""], resources: [secrets], verbs: ["*"]}]
"#,
    );
    assert!(eventually(Duration::from_secs(10), || can_i(&s, ALICE, &["create", "roles"])));
    // A role granting only what alice holds is fine; one granting more is refused.
    let held = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm-getter, namespace: default}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
"#;
    ok(s.kubectl_token(ALICE, &["create", "-f", "-"], Some(held)));
    let more =
        held.replace("cm-getter", "cm-deleter").replace("verbs: [get]", "verbs: [get, delete]");
    let out = s.kubectl_token(ALICE, &["create", "-f", "-"], Some(&more));
    let err = stderr(&out);
    assert!(
        err.contains(r#"roles.rbac.authorization.k8s.io "cm-deleter" is forbidden: user "alice" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#)
            && err.contains(r#"{APIGroups:[""], Resources:["configmaps"], Verbs:["delete"]}"#),
        "{err}"
    );
    // Binding cluster-wide secret-admin in the namespace: refused, until alice may `bind` it.
    let binding = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bob-secrets, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: secret-admin}
subjects: [{kind: User, name: bob}]
"#;
    let out = s.kubectl_token(ALICE, &["create", "-f", "-"], Some(binding));
    assert!(
        stderr(&out).contains("is attempting to grant RBAC permissions not currently held"),
        "{}",
        stderr(&out)
    );
    apply(
        &s,
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: binder, namespace: default}
rules: [{apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind], resourceNames: [secret-admin]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: alice-binds, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: binder}
subjects: [{kind: User, name: alice}]
"#,
    );
    let bound = eventually(Duration::from_secs(10), || {
        s.kubectl_token(ALICE, &["create", "-f", "-"], Some(binding)).status.success()
    });
    assert!(bound, "bind on the role lets alice bind it");
    assert!(eventually(Duration::from_secs(10), || can_i(&s, BOB, &["delete", "secrets"])));
    assert!(
        !can_i(&s, BOB, &["delete", "secrets", "-n", "kube-system"]),
        "only in the binding's namespace"
    );
}

#[test]
fn aggregated_cluster_roles_and_subject_access_reviews() {
    let s = server();
    apply(
        &s,
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: monitoring}
aggregationRule:
  clusterRoleSelectors: [{matchLabels: {example.com/aggregate-to-monitoring: "true"}}]
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: monitoring-endpoints, labels: {example.com/aggregate-to-monitoring: "true"}}
rules: [{apiGroups: [""], resources: [endpoints], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: alice-monitors}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: monitoring}
subjects: [{kind: User, name: alice}]
"#,
    );
    // The aggregated rules are written into the role, as upstream's controller does.
    let aggregated = eventually(Duration::from_secs(10), || {
        let role: Value = serde_json::from_str(&s.kubectl_ok(&[
            "get",
            "clusterrole",
            "monitoring",
            "-o",
            "json",
        ]))
        .unwrap_or_default();
        role["rules"][0]["resources"] == serde_json::json!(["endpoints"])
    });
    assert!(aggregated, "monitoring never got the selected role's rules");
    assert!(eventually(Duration::from_secs(10), || can_i(&s, ALICE, &["list", "endpoints", "-A"])));

    // A SubjectAccessReview asked by the admin about alice and bob.
    let sar = |user: &str, verb: &str| {
        let body = format!(
            r#"{{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{{"user":"{user}","resourceAttributes":{{"verb":"{verb}","resource":"endpoints","namespace":"default"}}}}}}"#
        );
        let out = s.kubectl_stdin(&["create", "-f", "-", "-o", "json"], &body);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        assert!(out.status.success(), "{}", stderr(&out));
        v["status"].clone()
    };
    let allowed = |status: Value| status["allowed"].as_bool();
    // An allow names the binding that allowed it, as upstream's RBAC reason does.
    let alice = sar("alice", "get");
    assert_eq!(allowed(alice.clone()), Some(true));
    let reason = alice["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("RBAC: allowed by ") && reason.ends_with(r#" to User "alice""#),
        "{alice}"
    );
    assert_eq!(allowed(sar("alice", "delete")), Some(false));
    assert_eq!(allowed(sar("bob", "get")), Some(false));
    // Without a user or group it is invalid, as upstream.
    let bad = r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview","spec":{"resourceAttributes":{"verb":"get","resource":"pods"}}}"#;
    let out = s.kubectl_stdin(&["create", "-f", "-"], bad);
    assert!(
        stderr(&out).contains("at least one of user or group must be specified"),
        "{}",
        stderr(&out)
    );
}

/// Impersonation is authorized with the `impersonate` verb (issue #17): refused with
/// upstream's message until RBAC grants it, then the request runs as the impersonated
/// user (and is authorized as that user).
#[test]
fn impersonation_needs_the_impersonate_verb() {
    let s = server();
    let pods = "/api/v1/namespaces/default/pods";
    let out = s.kubectl_token(ALICE, &["get", "--raw", pods, "--as=bob"], None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(r#"users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" at the cluster scope"#),
        "{}",
        stderr(&out)
    );
    apply(
        &s,
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: impersonate-bob}
rules: [{apiGroups: [""], resources: [users], verbs: [impersonate], resourceNames: [bob]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: alice-impersonates-bob}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: impersonate-bob}
subjects: [{kind: User, name: alice}]
"#,
    );
    let whoami = || {
        let out = s.kubectl_token(
            ALICE,
            &["auth", "whoami", "--as=bob", "-o", "jsonpath={.status.userInfo.username}"],
            None,
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(eventually(Duration::from_secs(10), || whoami() == "bob"), "alice acts as bob");
    // As bob, alice holds bob's rights, not hers: bob may not list secrets.
    let secrets = "/api/v1/namespaces/default/secrets";
    let out = s.kubectl_token(ALICE, &["get", "--raw", secrets, "--as=bob"], None);
    assert!(
        stderr(&out).contains(r#"User "bob" cannot list resource "secrets""#),
        "{}",
        stderr(&out)
    );
}
