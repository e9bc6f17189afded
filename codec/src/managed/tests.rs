//! Update accounting and server-side apply, table-driven over the cases users hit:
//! two managers sharing an object, conflicts and forcing, pruning of fields a manager
//! stops applying, list-maps by key.

use super::*;

const DEP: &str = "io.k8s.api.apps.v1.Deployment";

fn mgr<'a>(name: &'a str, apply: bool) -> Manager<'a> {
    Manager { name, apply, subresource: None, api_version: "apps/v1", time: "2024-05-01T12:00:00Z" }
}

fn owned(obj: &Value, manager: &str) -> Vec<String> {
    let e = entries(Some(obj)).into_iter().find(|e| e.manager == manager);
    e.map(|e| e.set.paths().iter().map(|p| fieldset::path_string(p)).collect()).unwrap_or_default()
}

fn dep(replicas: i64, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"a": "1"}},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}}})
}

#[test]
fn updates_move_ownership_of_changed_fields() {
    let mut created = dep(1, "i:1");
    record_update(None, &mut created, Ty::builtin(DEP), &mgr("kubectl-create", false));
    assert!(owned(&created, "kubectl-create").contains(&".spec.replicas".to_string()));
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(3);
    record_update(Some(&created), &mut scaled, Ty::builtin(DEP), &mgr("hpa", false));
    assert_eq!(owned(&scaled, "hpa"), [".spec.replicas"]);
    assert!(!owned(&scaled, "kubectl-create").contains(&".spec.replicas".to_string()));
    let mut unlabeled = scaled.clone();
    unlabeled["metadata"].as_object_mut().unwrap().remove("labels");
    record_update(Some(&scaled), &mut unlabeled, Ty::builtin(DEP), &mgr("editor", false));
    assert!(owned(&unlabeled, "kubectl-create").iter().all(|p| !p.starts_with(".metadata.labels")));
    assert!(owned(&unlabeled, "editor").is_empty(), "removing fields owns nothing");
}

#[test]
fn apply_creates_then_conflicts_with_other_owners_unless_forced() {
    let created =
        apply(None, &dep(2, "i:1"), Ty::builtin(DEP), &mgr("alice", true), false).unwrap();
    assert_eq!(created["spec"]["replicas"], 2);
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(5);
    record_update(Some(&created), &mut scaled, Ty::builtin(DEP), &mgr("hpa", false));
    let err = apply(Some(&scaled), &dep(2, "i:1"), Ty::builtin(DEP), &mgr("alice", true), false)
        .unwrap_err();
    assert_eq!(
        err,
        [Conflict {
            manager: "hpa".into(),
            operation: "Update".into(),
            api_version: "apps/v1".into(),
            subresource: None,
            field: ".spec.replicas".into()
        }]
    );
    assert_eq!(
        conflicts_message(&err),
        "Apply failed with 1 conflict: conflict with \"hpa\" using apps/v1: .spec.replicas"
    );
    // The same value is shared, not a conflict.
    assert!(
        apply(Some(&scaled), &dep(5, "i:1"), Ty::builtin(DEP), &mgr("alice", true), false).is_ok()
    );
    let forced =
        apply(Some(&scaled), &dep(2, "i:2"), Ty::builtin(DEP), &mgr("alice", true), true).unwrap();
    assert_eq!(forced["spec"]["replicas"], 2);
    assert_eq!(forced["spec"]["template"]["spec"]["containers"][0]["image"], "i:2");
    assert!(owned(&forced, "hpa").is_empty(), "forcing takes the field away");
}

#[test]
fn apply_prunes_what_it_stopped_applying_but_keeps_others_fields() {
    let mut first = dep(2, "i:1");
    first["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "side", "image": "s"}));
    let live = apply(None, &first, Ty::builtin(DEP), &mgr("alice", true), false).unwrap();
    let mut edited = live.clone();
    edited["spec"]["paused"] = json!(true);
    record_update(Some(&live), &mut edited, Ty::builtin(DEP), &mgr("bob", false));
    let mut second = dep(2, "i:1");
    second["metadata"]["labels"] = json!({});
    let out = apply(Some(&edited), &second, Ty::builtin(DEP), &mgr("alice", true), false).unwrap();
    let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c"], "the container alice stopped applying is gone");
    assert_eq!(out["spec"]["paused"], true, "bob's field stays");
    assert!(out["metadata"]["labels"].get("a").is_none(), "the label alice dropped is gone");
}

#[test]
fn list_maps_merge_by_key() {
    let live = apply(None, &dep(1, "i:1"), Ty::builtin(DEP), &mgr("alice", true), false).unwrap();
    let mut side = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s"}]}}}});
    let out = apply(Some(&live), &side, Ty::builtin(DEP), &mgr("bob", true), false).unwrap();
    let containers = out["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2, "bob's container is added next to alice's");
    side["spec"]["template"]["spec"]["containers"][0]["name"] = json!("c");
    side["spec"]["template"]["spec"]["containers"][0]["image"] = json!("other");
    let err = apply(Some(&out), &side, Ty::builtin(DEP), &mgr("bob", true), false).unwrap_err();
    assert_eq!(err[0].field, ".spec.template.spec.containers[name=\"c\"].image");
}

const POD: &str = "io.k8s.api.core.v1.Pod";
const SVC: &str = "io.k8s.api.core.v1.Service";

fn pod_mgr<'a>(name: &'a str) -> Manager<'a> {
    Manager {
        name,
        apply: true,
        subresource: None,
        api_version: "v1",
        time: "2024-05-01T12:00:00Z",
    }
}

/// A pod applied by one manager: `spec` is the applied spec.
fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

fn fields(obj: &Value, def: &str) -> Value {
    fieldset::object_fields(obj, Ty::builtin(def), false).to_fields_v1()
}

/// (case, object, definition, the FieldsV1 upstream writes for it)
fn topology_cases() -> Vec<(&'static str, Value, &'static str, Value)> {
    vec![
        (
            "container ports are keyed by containerPort and protocol, TCP by default",
            pod(json!({"containers": [{"name": "c", "ports": [
                {"containerPort": 80}, {"containerPort": 80, "protocol": "UDP", "name": "dns"}]}]})),
            POD,
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:name": {}, "f:ports": {
                "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}},
                "k:{\"containerPort\":80,\"protocol\":\"UDP\"}": {".": {}, "f:containerPort": {}, "f:name": {}, "f:protocol": {}}}}}}}),
        ),
        (
            "service ports are keyed by port and protocol",
            json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 53, "protocol": "UDP"}], "selector": {"app": "x"}}}),
            SVC,
            json!({"f:spec": {"f:ports": {"k:{\"port\":53,\"protocol\":\"UDP\"}": {".": {}, "f:port": {}, "f:protocol": {}}},
                "f:selector": {}}}),
        ),
        (
            "topology spread constraints have a composite key",
            pod(
                json!({"topologySpreadConstraints": [{"topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "maxSkew": 1}]}),
            ),
            POD,
            json!({"f:spec": {"f:topologySpreadConstraints": {
                "k:{\"topologyKey\":\"zone\",\"whenUnsatisfiable\":\"DoNotSchedule\"}": {".": {}, "f:maxSkew": {}, "f:topologyKey": {}, "f:whenUnsatisfiable": {}}}}}),
        ),
        (
            "atomic lists and atomic maps are owned whole, granular structs field by field",
            pod(
                json!({"containers": [{"name": "c", "args": ["a", "b"]}], "nodeSelector": {"disk": "ssd"},
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}}),
            ),
            POD,
            json!({"f:spec": {"f:affinity": {"f:nodeAffinity": {"f:requiredDuringSchedulingIgnoredDuringExecution": {}}},
                "f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:args": {}, "f:name": {}}},
                "f:nodeSelector": {}}}),
        ),
        (
            "a granular reference to an atomic type stays granular (PersistentVolume claimRef)",
            json!({"metadata": {"name": "pv"}, "spec": {"claimRef": {"name": "c", "namespace": "n"}}}),
            "io.k8s.api.core.v1.PersistentVolume",
            json!({"f:spec": {"f:claimRef": {"f:name": {}, "f:namespace": {}}}}),
        ),
        (
            "sets are keyed by value, owner references by uid and owned whole",
            json!({"metadata": {"name": "p", "finalizers": ["a/b"], "ownerReferences": [{"uid": "u1", "name": "o", "kind": "K", "apiVersion": "v1"}]}}),
            POD,
            json!({"f:metadata": {"f:finalizers": {"v:\"a/b\"": {}}, "f:ownerReferences": {"k:{\"uid\":\"u1\"}": {}}}}),
        ),
    ]
}

#[test]
fn field_sets_follow_the_schema_topology() {
    for (case, obj, def, want) in topology_cases() {
        assert_eq!(fields(&obj, def), want, "{case}");
    }
}

fn container_ports(ports: Value) -> Value {
    pod(json!({"containers": [{"name": "c", "image": "i", "ports": ports}]}))
}

fn ports_of(obj: &Value) -> Vec<Value> {
    obj["spec"]["containers"][0]["ports"].as_array().cloned().unwrap_or_default()
}

#[test]
fn two_managers_share_a_composite_key_list_and_conflict_on_one_item() {
    let live = apply(
        None,
        &container_ports(json!([{"containerPort": 53}])),
        Ty::builtin(POD),
        &pod_mgr("alice"),
        false,
    )
    .unwrap();
    let bob_ports = json!([{"containerPort": 53, "protocol": "UDP", "name": "dns"}]);
    let both =
        apply(Some(&live), &container_ports(bob_ports), Ty::builtin(POD), &pod_mgr("bob"), false)
            .unwrap();
    assert_eq!(ports_of(&both).len(), 2, "53/TCP and 53/UDP are different items: {both}");
    let alice_names_udp =
        json!([{"containerPort": 53}, {"containerPort": 53, "protocol": "UDP", "name": "other"}]);
    let err = apply(
        Some(&both),
        &container_ports(alice_names_udp.clone()),
        Ty::builtin(POD),
        &pod_mgr("alice"),
        false,
    )
    .unwrap_err();
    let fields: Vec<&str> = err.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [".spec.containers[name=\"c\"].ports[containerPort=53,protocol=\"UDP\"].name"],
        "{err:?}"
    );
    assert_eq!(err[0].manager, "bob");
    let forced = apply(
        Some(&both),
        &container_ports(alice_names_udp),
        Ty::builtin(POD),
        &pod_mgr("alice"),
        true,
    )
    .unwrap();
    assert_eq!(ports_of(&forced)[1]["name"], "other");
    let tcp = apply(
        Some(&forced),
        &container_ports(json!([{"containerPort": 53}])),
        Ty::builtin(POD),
        &pod_mgr("alice"),
        false,
    )
    .unwrap();
    let tcp_ports = ports_of(&tcp);
    let kept: Vec<&str> =
        tcp_ports.iter().map(|p| p["protocol"].as_str().unwrap_or("TCP")).collect();
    assert_eq!(kept, ["TCP", "UDP"], "bob still owns the UDP item, so alice dropping it keeps it");
}

/// (case, first manager's spec, second manager's spec, conflicting fields, the merged
/// spec when the second forces)
type ApplyCase = (&'static str, Value, Value, Vec<&'static str>, Value);

fn apply_cases() -> Vec<ApplyCase> {
    vec![
        (
            "atomic lists conflict as a whole and are replaced, not merged",
            json!({"containers": [{"name": "c", "args": ["a", "b"]}]}),
            json!({"containers": [{"name": "c", "args": ["z"]}]}),
            vec![".spec.containers[name=\"c\"].args"],
            json!({"containers": [{"name": "c", "args": ["z"]}]}),
        ),
        (
            "atomic maps conflict as a whole",
            json!({"nodeSelector": {"disk": "ssd"}}),
            json!({"nodeSelector": {"zone": "a"}}),
            vec![".spec.nodeSelector"],
            json!({"nodeSelector": {"zone": "a"}}),
        ),
        (
            "granular maps merge key by key without conflict",
            json!({"overhead": {"cpu": "1"}}),
            json!({"overhead": {"memory": "1Mi"}}),
            vec![],
            json!({"overhead": {"cpu": "1", "memory": "1Mi"}}),
        ),
        (
            "an atomic list inside a list-map item conflicts as a whole",
            json!({"containers": [{"name": "c"}], "hostAliases": [{"ip": "1.1.1.1", "hostnames": ["a"]}]}),
            json!({"hostAliases": [{"ip": "1.1.1.1", "hostnames": ["b"]}]}),
            vec![".spec.hostAliases[ip=\"1.1.1.1\"].hostnames"],
            json!({"containers": [{"name": "c"}], "hostAliases": [{"ip": "1.1.1.1", "hostnames": ["b"]}]}),
        ),
        (
            "the same value is shared, never a conflict",
            json!({"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Never"}),
            json!({"restartPolicy": "Never"}),
            vec![],
            json!({"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Never"}),
        ),
    ]
}

#[test]
fn conflicts_between_two_appliers() {
    for (case, first, second, want, merged) in apply_cases() {
        let live = apply(None, &pod(first), Ty::builtin(POD), &pod_mgr("alice"), false).unwrap();
        let result =
            apply(Some(&live), &pod(second.clone()), Ty::builtin(POD), &pod_mgr("bob"), false);
        let got: Vec<String> = match &result {
            Ok(_) => Vec::new(),
            Err(c) => c.iter().map(|c| c.field.clone()).collect(),
        };
        assert_eq!(got, want, "{case}");
        let forced =
            apply(Some(&live), &pod(second), Ty::builtin(POD), &pod_mgr("bob"), true).unwrap();
        assert_eq!(forced["spec"], merged, "{case}");
    }
}

#[test]
fn set_members_are_pruned_one_by_one() {
    let fin = |f: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": f}});
    let live =
        apply(None, &fin(json!(["a", "x"])), Ty::builtin(POD), &pod_mgr("alice"), false).unwrap();
    let live =
        apply(Some(&live), &fin(json!(["b"])), Ty::builtin(POD), &pod_mgr("bob"), false).unwrap();
    assert_eq!(live["metadata"]["finalizers"], json!(["a", "x", "b"]));
    let out =
        apply(Some(&live), &fin(json!(["x"])), Ty::builtin(POD), &pod_mgr("alice"), false).unwrap();
    assert_eq!(
        out["metadata"]["finalizers"],
        json!(["x", "b"]),
        "alice's dropped member goes, bob's stays"
    );
}

const LAST: &str = last_applied::ANNOTATION;

/// A deployment as client-side `kubectl apply` leaves it: created by the
/// `kubectl-client-side-apply` manager with the last-applied annotation.
fn client_side_applied(replicas: i64) -> Value {
    let mut d = dep(replicas, "i:1");
    let mut config = d.clone();
    config["metadata"]["annotations"] = json!({});
    d["metadata"]["annotations"] = json!({LAST: serde_json::to_string(&config).unwrap()});
    record_update(None, &mut d, Ty::builtin(DEP), &mgr("kubectl-client-side-apply", false));
    d
}

#[test]
fn a_kubectl_apply_takes_over_fields_the_last_client_side_apply_set() {
    let live = client_side_applied(2);
    let out =
        apply(Some(&live), &dep(3, "i:1"), Ty::builtin(DEP), &mgr("kubectl", true), false).unwrap();
    assert_eq!(out["spec"]["replicas"], 3, "no conflict: the live value is the last applied one");
    assert!(owned(&out, "kubectl").contains(&".spec.replicas".to_string()));
    assert!(!owned(&out, "kubectl-client-side-apply").contains(&".spec.replicas".to_string()));

    // Once someone changed the field, its value is no longer the last-applied one.
    let mut edited = live.clone();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("i:9");
    record_update(
        Some(&live),
        &mut edited,
        Ty::builtin(DEP),
        &mgr("kubectl-client-side-apply", false),
    );
    let err = apply(Some(&edited), &dep(3, "i:2"), Ty::builtin(DEP), &mgr("kubectl", true), false)
        .unwrap_err();
    let fields: Vec<&str> = err.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(
        fields,
        [".spec.template.spec.containers[name=\"c\"].image"],
        "only the edited field conflicts"
    );
}

/// Regression (issue #14 item 6): any field manager took over what the last client-side
/// apply set without a conflict; upstream allows that only to the `kubectl` manager (the
/// migration `kubectl apply --server-side` makes), others conflict unless forced.
#[test]
fn only_kubectl_takes_over_client_side_applied_fields_without_a_conflict() {
    let live = client_side_applied(2);
    let err = apply(Some(&live), &dep(3, "i:1"), Ty::builtin(DEP), &mgr("other", true), false)
        .unwrap_err();
    assert_eq!(
        conflicts_message(&err),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: \
         .spec.replicas"
    );
    let forced =
        apply(Some(&live), &dep(3, "i:1"), Ty::builtin(DEP), &mgr("other", true), true).unwrap();
    assert!(owned(&forced, "other").contains(&".spec.replicas".to_string()));
    assert!(!owned(&forced, "kubectl-client-side-apply").contains(&".spec.replicas".to_string()));
    let near = mgr("kubectl-x", true);
    assert!(
        apply(Some(&live), &dep(3, "i:1"), Ty::builtin(DEP), &near, false).is_err(),
        "names match whole"
    );
}

#[test]
fn a_kubectl_apply_rewrites_the_last_applied_annotation() {
    let live = client_side_applied(2);
    let other =
        apply(Some(&live), &dep(2, "i:1"), Ty::builtin(DEP), &mgr("ctrl", true), false).unwrap();
    assert_eq!(other["metadata"]["annotations"][LAST], live["metadata"]["annotations"][LAST]);
    let mut applied = dep(4, "i:1");
    applied["metadata"]["annotations"] = json!({LAST: "stale", "note": "<b>"});
    let out = apply(Some(&live), &applied, Ty::builtin(DEP), &mgr("kubectl", true), true).unwrap();
    let text = out["metadata"]["annotations"][LAST].as_str().unwrap();
    assert!(text.ends_with("}\n") && text.contains("\"replicas\":4"), "{text}");
    assert!(
        text.contains("{\"note\":\"\\u003cb\\u003e\"}"),
        "annotation removed, HTML escaped: {text}"
    );
    let last: Value = serde_json::from_str(text).unwrap();
    assert_eq!(last["spec"]["replicas"], 4);
    let fresh =
        apply(None, &dep(1, "i:1"), Ty::builtin(DEP), &mgr("kubectl", true), false).unwrap();
    assert!(fresh["metadata"].get("annotations").is_none(), "no annotation is added");
    let mut with_one = dep(1, "i:1");
    with_one["metadata"]["annotations"] = json!({LAST: "given"});
    let created = apply(None, &with_one, Ty::builtin(DEP), &mgr("kubectl", true), false).unwrap();
    let text = created["metadata"]["annotations"][LAST].as_str().unwrap();
    assert!(text.contains("\"annotations\":{}"), "an applied annotation is rewritten too: {text}");
}

#[test]
fn an_update_may_set_managed_fields_as_kubectl_migrating_to_server_side_apply() {
    let live = client_side_applied(2);
    let mut migrated = live.clone();
    let entry = &mut migrated["metadata"]["managedFields"][0];
    entry["manager"] = json!("kubectl");
    entry["operation"] = json!("Apply");
    let requested = migrated["metadata"]["managedFields"].clone();
    record_update(Some(&live), &mut migrated, Ty::builtin(DEP), &mgr("kubectl", false));
    assert_eq!(migrated["metadata"]["managedFields"], requested);
    // The next apply by kubectl prunes what it stopped applying, with no conflict.
    let mut next = dep(2, "i:1");
    next["metadata"].as_object_mut().unwrap().remove("labels");
    let out =
        apply(Some(&migrated), &next, Ty::builtin(DEP), &mgr("kubectl", true), false).unwrap();
    assert!(out["metadata"].get("labels").is_none_or(|l| l.get("a").is_none()), "{out}");

    let mut reset = live.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    record_update(Some(&live), &mut reset, Ty::builtin(DEP), &mgr("x", false));
    assert!(reset["metadata"].get("managedFields").is_none(), "[{{}}] clears managedFields");
    let mut status = live.clone();
    status["metadata"]["managedFields"] = json!([{}]);
    let sub = Manager { subresource: Some("status"), ..mgr("x", false) };
    record_update(Some(&live), &mut status, Ty::builtin(DEP), &sub);
    assert_eq!(status["metadata"]["managedFields"], live["metadata"]["managedFields"]);
}

#[test]
fn conflict_messages_name_managers_as_upstream() {
    let c = |manager: &str, operation: &str, subresource: Option<&str>, field: &str| Conflict {
        manager: manager.into(),
        operation: operation.into(),
        api_version: "v1".into(),
        subresource: subresource.map(String::from),
        field: field.into(),
    };
    let list = [
        c("alice", "Apply", None, ".spec.a"),
        c("alice", "Apply", None, ".spec.b"),
        c("kubelet", "Update", Some("status"), ".status.x"),
    ];
    assert_eq!(
        conflicts_message(&list),
        "Apply failed with 3 conflicts: conflicts with \"alice\":\n- .spec.a\n- .spec.b\nconflicts with \"kubelet\" with subresource \"status\" using v1:\n- .status.x"
    );
    assert_eq!(list[0].manager_shown(), "\"alice\"");
}

/// The deployment `kubectl create deployment nginx --image=nginx` sends, as the server
/// stores it after defaulting (`extra` merged into metadata).
fn created_deployment(extra_meta: Value) -> Value {
    let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "namespace": "default", "uid": "u", "generation": 1,
            "creationTimestamp": "2024-05-01T12:00:00Z", "labels": {"app": "nginx"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "nginx"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
            "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {},
                    "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                    "imagePullPolicy": "Always"}],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                    "securityContext": {}, "schedulerName": "default-scheduler"}}},
        "status": {}});
    for (k, v) in extra_meta.as_object().into_iter().flatten() {
        d["metadata"][k] = v.clone();
    }
    d
}

/// The spec part of the set upstream records for a deployment created by an Update.
fn created_spec_fields() -> Value {
    json!({"f:progressDeadlineSeconds": {}, "f:replicas": {}, "f:revisionHistoryLimit": {},
        "f:selector": {},
        "f:strategy": {"f:rollingUpdate": {".": {}, "f:maxSurge": {}, "f:maxUnavailable": {}}, "f:type": {}},
        "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {},
                "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {},
                "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}},
                "f:dnsPolicy": {}, "f:restartPolicy": {}, "f:schedulerName": {},
                "f:securityContext": {}, "f:terminationGracePeriodSeconds": {}}}})
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn fields_v1_of(obj: &Value, manager: &str, operation: &str) -> Value {
    let list = obj["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
    list.into_iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

/// (case, live object, written object, manager, apply, subresource, the manager's set as
/// upstream's field manager records it)
type SetCase =
    (&'static str, Option<Value>, Value, &'static str, bool, Option<&'static str>, Value);

fn set_cases() -> Vec<SetCase> {
    let created = {
        let mut d = created_deployment(json!({}));
        record_update(None, &mut d, Ty::builtin(DEP), &mgr("kubectl-create", false));
        d
    };
    let mut status = created.clone();
    status["status"] = json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
        "readyReplicas": 1, "availableReplicas": 1, "conditions": [
        {"type": "Available", "status": "True", "lastUpdateTime": "2024-05-01T12:00:05Z",
            "lastTransitionTime": "2024-05-01T12:00:05Z", "reason": "MinimumReplicasAvailable",
            "message": "Deployment has minimum availability."},
        {"type": "Progressing", "status": "True", "lastUpdateTime": "2024-05-01T12:00:05Z",
            "lastTransitionTime": "2024-05-01T12:00:01Z", "reason": "NewReplicaSetAvailable",
            "message": "ReplicaSet \"nginx-1\" has successfully progressed."}]});
    let mut labelled = created.clone();
    labelled["metadata"]["labels"]["tier"] = json!("web");
    labelled["metadata"]["annotations"] = json!({"note": "n"});
    let mut sidecar = created.clone();
    let containers = sidecar["spec"]["template"]["spec"]["containers"].as_array_mut().unwrap();
    containers[0]["env"] = json!([{"name": "A", "value": "1"}]);
    containers.push(json!({"name": "sidecar", "image": "busybox", "resources": {},
        "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
        "imagePullPolicy": "Always"}));
    let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "labels": {"app": "nginx"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {},
                    "ports": [{"containerPort": 80}]}]}}}});
    let applied_sidecar = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "nginx", "annotations": {"owner": "team"}},
        "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}}});
    let mut csa = created_deployment(json!({"annotations": {LAST_APPLIED: "{}"}}));
    csa["metadata"].as_object_mut().unwrap().remove("managedFields");
    vec![
        (
            "kubectl create deployment: new maps and list items carry `.`, the zero object's structs do not",
            None,
            created_deployment(json!({})),
            "kubectl-create",
            false,
            None,
            json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": created_spec_fields()}),
        ),
        (
            "kubectl apply (client-side): the last-applied annotation is a new map too",
            None,
            csa,
            "kubectl-client-side-apply",
            false,
            None,
            json!({"f:metadata": {"f:annotations": {".": {}, format!("f:{LAST_APPLIED}"): {}},
                "f:labels": {".": {}, "f:app": {}}}, "f:spec": created_spec_fields()}),
        ),
        (
            "kubectl apply --server-side: the applied set, `.` only on list items",
            None,
            applied,
            "kubectl",
            true,
            None,
            json!({"f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:selector": {},
                    "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {},
                            "f:image": {}, "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}}}),
        ),
        (
            "a controller's status update: the new conditions list and its items carry `.`",
            Some(created.clone()),
            status,
            "kube-controller-manager",
            false,
            Some("status"),
            json!({"f:status": {"f:availableReplicas": {}, "f:conditions": {".": {},
                "k:{\"type\":\"Available\"}": {".": {}, "f:lastTransitionTime": {}, "f:lastUpdateTime": {},
                    "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {}},
                "k:{\"type\":\"Progressing\"}": {".": {}, "f:lastTransitionTime": {}, "f:lastUpdateTime": {},
                    "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {}}},
                "f:observedGeneration": {}, "f:readyReplicas": {}, "f:replicas": {}, "f:updatedReplicas": {}}}),
        ),
        (
            "a label added to existing labels, annotations created",
            Some(created.clone()),
            labelled,
            "kubectl-label",
            false,
            None,
            json!({"f:metadata": {"f:annotations": {".": {}, "f:note": {}}, "f:labels": {"f:tier": {}}}}),
        ),
        (
            "a second manager adds a container and an env list to the first",
            Some(created.clone()),
            sidecar,
            "sidecar-injector",
            false,
            None,
            json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"nginx\"}": {"f:env": {".": {}, "k:{\"name\":\"A\"}": {".": {}, "f:name": {}, "f:value": {}}}},
                "k:{\"name\":\"sidecar\"}": {".": {}, "f:image": {}, "f:imagePullPolicy": {}, "f:name": {},
                    "f:resources": {}, "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}}}}}}}),
        ),
        (
            "a second manager applies a container: its set has the item's `.`, not the annotations'",
            Some(created),
            applied_sidecar,
            "sidecar-applier",
            true,
            None,
            json!({"f:metadata": {"f:annotations": {"f:owner": {}}},
                "f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"sidecar\"}": {".": {}, "f:image": {}, "f:name": {}}}}}}}),
        ),
    ]
}

#[test]
fn sets_as_upstreams_field_manager_records_them() {
    for (case, live, written, manager, apply_op, subresource, want) in set_cases() {
        let m = Manager {
            name: manager,
            apply: apply_op,
            subresource,
            api_version: "apps/v1",
            time: "2024-05-01T12:00:00Z",
        };
        let out = if apply_op {
            apply(live.as_ref(), &written, Ty::builtin(DEP), &m, false)
                .unwrap_or_else(|c| panic!("{case}: {c:?}"))
        } else {
            let mut out = written.clone();
            record_update(live.as_ref(), &mut out, Ty::builtin(DEP), &m);
            out
        };
        let op = if apply_op { "Apply" } else { "Update" };
        assert_eq!(fields_v1_of(&out, manager, op), want, "{case}");
    }
}

/// Another manager's field sets keep their `.` when a second manager changes fields
/// under them, and lose a list item's `.` with the item.
#[test]
fn removed_nodes_leave_every_set_with_their_dot() {
    let mut created = created_deployment(json!({}));
    record_update(None, &mut created, Ty::builtin(DEP), &mgr("kubectl-create", false));
    let mut changed = created.clone();
    changed["spec"]["template"]["spec"]["containers"] = json!([{"name": "other", "image": "x"}]);
    record_update(Some(&created), &mut changed, Ty::builtin(DEP), &mgr("editor", false));
    let set = fields_v1_of(&changed, "kubectl-create", "Update");
    assert!(set["f:spec"]["f:template"]["f:spec"].get("f:containers").is_none(), "{set}");
    assert_eq!(set["f:spec"]["f:strategy"]["f:rollingUpdate"]["."], json!({}));
    let editor = fields_v1_of(&changed, "editor", "Update");
    assert_eq!(
        editor["f:spec"]["f:template"]["f:spec"]["f:containers"],
        json!({"k:{\"name\":\"other\"}": {".": {}, "f:image": {}, "f:name": {}, "f:resources": {}}})
    );
}

/// An applier whose set came from an update (`.` on maps and structs, as kubectl's
/// client-side to server-side migration leaves it) prunes only leaves and list items: the
/// maps stay with what others own in them.
#[test]
fn pruning_keeps_maps_whose_dot_the_applier_stops_owning() {
    let mut live = created_deployment(json!({"annotations": {LAST_APPLIED: "{}", "other": "x"}}));
    record_update(None, &mut live, Ty::builtin(DEP), &mgr("kubectl-client-side-apply", false));
    let mf = live["metadata"]["managedFields"].as_array_mut().unwrap();
    mf[0]["manager"] = json!("kubectl");
    mf[0]["operation"] = json!("Apply");
    mf.push(json!({"manager": "keeper", "operation": "Update", "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:annotations": {"f:other": {}}}}}));
    let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nginx"},
        "spec": {"selector": {"matchLabels": {"app": "nginx"}},
            "template": {"metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}});
    let out = apply(Some(&live), &applied, Ty::builtin(DEP), &mgr("kubectl", true), false).unwrap();
    assert_eq!(out["metadata"]["annotations"], json!({"other": "x"}), "{out}");
    assert!(out["metadata"]["labels"].get("app").is_none(), "{out}");
    assert_eq!(out["spec"]["template"]["metadata"]["labels"], json!({"app": "nginx"}));
    assert!(out["spec"]["strategy"].is_object(), "{out}");
}

/// Without a schema (a custom resource's zero object is empty), a create adds `spec`
/// and every map in it, so they carry `.` as upstream writes them for custom resources.
#[test]
fn objects_without_a_schema_carry_dot_on_what_the_create_added() {
    let mut w = json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "labels": {"a": "1"}},
        "spec": {"size": 1, "tags": {"x": "y"}, "items": [{"n": 1}]}});
    let m = Manager {
        name: "creator",
        apply: false,
        subresource: None,
        api_version: "example.com/v1",
        time: "t",
    };
    record_update(None, &mut w, Ty::unknown(), &m);
    assert_eq!(
        fields_v1_of(&w, "creator", "Update"),
        json!({"f:metadata": {"f:labels": {".": {}, "f:a": {}}},
            "f:spec": {".": {}, "f:items": {}, "f:size": {}, "f:tags": {".": {}, "f:x": {}}}})
    );
    let mut changed = w.clone();
    changed["spec"]["tags"]["z"] = json!("1");
    let m2 = Manager { name: "tagger", ..m };
    record_update(Some(&w), &mut changed, Ty::unknown(), &m2);
    assert_eq!(
        fields_v1_of(&changed, "tagger", "Update"),
        json!({"f:spec": {"f:tags": {"f:z": {}}}})
    );
}

/// A custom resource's schema decides how its lists merge (issue #16: every list of a
/// custom resource used to be atomic, so a second applier of a list-map took the whole
/// list and the first one's items were lost or conflicted).
#[test]
fn custom_resources_merge_list_maps_by_the_keys_their_schema_names() {
    let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"}, "port": {"type": "integer"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set",
                "items": {"type": "string"}}}}}});
    let types = CustomTypes::from_schema(&schema);
    let ty = types.root();
    let m = |name| Manager {
        name,
        apply: true,
        subresource: None,
        api_version: "example.com/v1",
        time: "t",
    };
    let w = |spec: Value| json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec});
    let live = apply(
        None,
        &w(json!({"ports": [{"name": "a", "port": 1}], "tags": ["x"]})),
        ty,
        &m("alice"),
        false,
    )
    .unwrap();
    let both = apply(
        Some(&live),
        &w(json!({"ports": [{"name": "b", "port": 2}], "tags": ["y"]})),
        ty,
        &m("bob"),
        false,
    )
    .expect("other items of a list-map and other set members do not conflict");
    assert_eq!(both["spec"]["ports"], json!([{"name": "a", "port": 1}, {"name": "b", "port": 2}]));
    assert_eq!(both["spec"]["tags"], json!(["x", "y"]));
    assert_eq!(
        fields_v1_of(&both, "bob", "Apply"),
        json!({"f:spec": {"f:ports": {"k:{\"name\":\"b\"}": {".": {}, "f:name": {}, "f:port": {}}},
            "f:tags": {"v:\"y\"": {}}}})
    );
    let err =
        apply(Some(&both), &w(json!({"ports": [{"name": "a", "port": 9}]})), ty, &m("bob"), false)
            .unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err[0].field, ".spec.ports[name=\"a\"].port");
    // alice stops applying her item: it goes, bob's stays.
    let pruned = apply(Some(&both), &w(json!({"tags": ["x"]})), ty, &m("alice"), false).unwrap();
    assert_eq!(pruned["spec"]["ports"], json!([{"name": "b", "port": 2}]));
    let dup = w(json!({"ports": [{"name": "a"}, {"name": "a", "port": 1}]}));
    assert_eq!(
        typed::check(&dup, ty).unwrap_err(),
        ".spec.ports: duplicate entries for key [name=\"a\"]"
    );
}
