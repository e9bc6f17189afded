//! The RBAC bootstrap policy: every default role and binding exists at start with
//! upstream's labels and annotations, and a restart reconciles them as upstream does — a
//! deleted default comes back, a removed rule, subject or label comes back while what a
//! user added stays, and an object annotated `autoupdate: "false"` is left alone.

use kapi_e2e::Server;
use serde_json::{Value, json};

fn get(server: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&server.kubectl_ok(&all)).expect("json")
}

fn items(list: &Value) -> &[Value] {
    list["items"].as_array().map(Vec::as_slice).unwrap_or_default()
}

fn find<'a>(list: &'a Value, ns: &str, name: &str) -> &'a Value {
    items(list)
        .iter()
        .find(|o| {
            o["metadata"]["name"] == name && o["metadata"]["namespace"].as_str().unwrap_or("") == ns
        })
        .unwrap_or_else(|| panic!("{ns}/{name} missing"))
}

fn assert_bootstrap_meta(obj: &Value) {
    let meta = &obj["metadata"];
    assert_eq!(meta["labels"]["kubernetes.io/bootstrapping"], "rbac-defaults", "{obj}");
    assert_eq!(meta["annotations"]["rbac.authorization.kubernetes.io/autoupdate"], "true", "{obj}");
}

#[test]
fn default_roles_and_bindings_exist_with_upstreams_labels() {
    let server = Server::start();
    let roles = get(&server, &["get", "clusterroles"]);
    for name in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:aggregate-to-admin",
        "system:aggregate-to-edit",
        "system:aggregate-to-view",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
        "system:node",
        "system:node-proxier",
        "system:kube-scheduler",
        "system:kube-controller-manager",
        "system:volume-scheduler",
        "system:monitoring",
        "system:certificates.k8s.io:kube-apiserver-client-approver",
        "system:controller:namespace-controller",
        "system:controller:generic-garbage-collector",
    ] {
        assert_bootstrap_meta(find(&roles, "", name));
    }
    let edit = find(&roles, "", "edit");
    assert_eq!(edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"], "true");
    let selector = &edit["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"];
    assert_eq!(selector["rbac.authorization.k8s.io/aggregate-to-edit"], "true");
    let admin = find(&roles, "", "cluster-admin");
    assert_eq!(admin["rules"][0], json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}));

    let bindings = get(&server, &["get", "clusterrolebindings"]);
    let masters = find(&bindings, "", "cluster-admin");
    assert_bootstrap_meta(masters);
    assert_eq!(masters["subjects"][0]["name"], "system:masters");
    let public = find(&bindings, "", "system:public-info-viewer");
    let subjects = public["subjects"].as_array().cloned().unwrap_or_default();
    let groups: Vec<&str> = subjects.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(groups, ["system:authenticated", "system:unauthenticated"]);
    let gc = find(&bindings, "", "system:controller:generic-garbage-collector");
    let sa = json!([{"kind": "ServiceAccount", "name": "generic-garbage-collector", "namespace": "kube-system"}]);
    assert_eq!(gc["subjects"], sa);

    let ns_roles = get(&server, &["get", "roles", "-A"]);
    assert_bootstrap_meta(find(
        &ns_roles,
        "kube-system",
        "extension-apiserver-authentication-reader",
    ));
    assert_bootstrap_meta(find(&ns_roles, "kube-public", "system:controller:bootstrap-signer"));
    let ns_bindings = get(&server, &["get", "rolebindings", "-A"]);
    let locking = find(&ns_bindings, "kube-system", "system::leader-locking-kube-scheduler");
    assert_bootstrap_meta(locking);
    assert_eq!(locking["roleRef"]["kind"], "Role");
}

fn patch(server: &Server, target: &str, ops: Value) {
    server.kubectl_ok(&["patch", target, "--type=json", "-p", &ops.to_string()]);
}

fn rules(server: &Server, role: &str) -> Vec<Value> {
    get(server, &["get", role])["rules"].as_array().cloned().unwrap_or_default()
}

#[test]
fn restart_reconciles_the_policy_and_keeps_what_users_added() {
    let mut server = Server::start();
    server.kubectl_ok(&["delete", "clusterrole", "view"]);
    // A trimmed autoupdate role: the user's own rule replaces the policy's.
    let mine = json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]});
    patch(
        &server,
        "clusterrole/system:kube-dns",
        json!([
            {"op": "replace", "path": "/rules", "value": [mine]},
            {"op": "remove", "path": "/metadata/labels"},
        ]),
    );
    // A protected role: emptied, and it must stay empty.
    patch(
        &server,
        "clusterrole/system:heapster",
        json!([
            {"op": "replace", "path": "/metadata/annotations/rbac.authorization.kubernetes.io~1autoupdate", "value": "false"},
            {"op": "replace", "path": "/rules", "value": [mine]},
        ]),
    );
    // A binding whose subjects a user replaced.
    let alice = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"});
    patch(
        &server,
        "clusterrolebinding/system:discovery",
        json!([
            {"op": "replace", "path": "/subjects", "value": [alice]},
        ]),
    );
    server.kubectl_ok(&[
        "-n",
        "kube-system",
        "delete",
        "rolebinding",
        "system:controller:token-cleaner",
    ]);

    server.restart();

    let view = get(&server, &["get", "clusterrole", "view"]);
    assert_bootstrap_meta(&view);
    assert_eq!(view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"], "true");
    let dns = get(&server, &["get", "clusterrole", "system:kube-dns"]);
    assert_bootstrap_meta(&dns);
    // Upstream (checked against kube-apiserver) appends the policy's uncovered atomic
    // rules after the user's.
    let atom = |resource: &str, verb: &str| json!({"apiGroups": [""], "resources": [resource], "verbs": [verb]});
    let expected = json!([
        mine,
        atom("endpoints", "list"),
        atom("endpoints", "watch"),
        atom("services", "list"),
        atom("services", "watch"),
    ]);
    assert_eq!(dns["rules"], expected);
    assert_eq!(rules(&server, "clusterrole/system:heapster"), vec![mine.clone()]);
    let heapster = get(&server, &["get", "clusterrole", "system:heapster"]);
    assert_eq!(
        heapster["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
        "false"
    );
    let discovery = get(&server, &["get", "clusterrolebinding", "system:discovery"]);
    let authenticated = json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"});
    assert_eq!(discovery["subjects"], json!([alice, authenticated]));
    get(&server, &["-n", "kube-system", "get", "rolebinding", "system:controller:token-cleaner"]);

    // A second restart with nothing to do writes nothing.
    let before = get(&server, &["get", "clusterrole", "system:kube-dns"]);
    server.restart();
    let after = get(&server, &["get", "clusterrole", "system:kube-dns"]);
    assert_eq!(before["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"]);
}

#[test]
fn a_server_without_the_rbac_api_starts_without_its_policy() {
    let server = Server::start_with(kapi_e2e::ServerOptions {
        extra_args: vec!["--runtime-config=rbac.authorization.k8s.io/v1=false".into()],
        ..Default::default()
    });
    let out = server.kubectl(&["get", "--raw", "/apis/rbac.authorization.k8s.io/v1"]);
    assert!(!out.status.success(), "the RBAC API is still served");
    server.kubectl_ok(&["get", "namespace", "kube-system"]);
}
