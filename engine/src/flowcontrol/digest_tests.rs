//! Classification with upstream's bootstrap configuration, and the digest's handling of
//! defaults, broken levels, missing mandatory objects and dangling FlowSchemas.

use super::*;
use crate::auth::UserInfo;
use crate::flowcontrol::bootstrap;
use crate::request::RequestInfo;
use std::sync::Arc;

fn bootstrap_set() -> (Vec<Value>, Vec<Value>) {
    let levels = [bootstrap::mandatory_levels(), bootstrap::suggested_levels()].concat();
    let schemas = [bootstrap::mandatory_schemas(), bootstrap::suggested_schemas()].concat();
    (levels, schemas)
}

fn loaded(levels: &[Value], schemas: &[Value]) -> FlowControl {
    let fc = FlowControl::new(true, 600, 2);
    fc.load(&digest(levels, schemas));
    fc
}

fn bootstrapped() -> FlowControl {
    let (levels, schemas) = bootstrap_set();
    loaded(&levels, &schemas)
}

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Default::default()
    }
}

fn kubelet() -> UserInfo {
    user("system:node:n1", &["system:nodes", "system:authenticated"])
}

fn sa(ns: &str, name: &str) -> UserInfo {
    let ns_group = format!("system:serviceaccounts:{ns}");
    user(
        &format!("system:serviceaccount:{ns}:{name}"),
        &["system:serviceaccounts", &ns_group, "system:authenticated"],
    )
}

fn res(verb: &str, group: &str, resource: &str, ns: Option<&str>) -> RequestInfo {
    RequestInfo {
        is_resource: true,
        verb: verb.into(),
        group: group.into(),
        version: "v1".into(),
        resource: resource.into(),
        namespace: ns.map(String::from),
        ..Default::default()
    }
}

fn sub(mut info: RequestInfo, subresource: &str) -> RequestInfo {
    info.subresource = Some(subresource.into());
    info
}

fn path(verb: &str, path: &str) -> RequestInfo {
    RequestInfo { path: path.into(), verb: verb.into(), ..Default::default() }
}

/// The FlowSchema and level a request lands in.
fn route(fc: &FlowControl, u: &UserInfo, info: &RequestInfo) -> (String, String) {
    let c = fc.classify(u, info).expect("classified");
    (c.schema_name.to_string(), c.level.name().to_string())
}

fn is(fc: &FlowControl, u: &UserInfo, info: &RequestInfo, schema: &str, level: &str) {
    assert_eq!(route(fc, u, info), (schema.to_string(), level.to_string()), "{u:?} {info:?}");
}

#[test]
fn node_heartbeats_go_to_node_high_and_the_rest_of_a_kubelets_work_to_system() {
    let fc = bootstrapped();
    let lease = res("update", "coordination.k8s.io", "leases", Some("kube-node-lease"));
    is(&fc, &kubelet(), &lease, "system-node-high", "node-high");
    let status = sub(res("patch", "", "nodes", None), "status");
    is(&fc, &kubelet(), &status, "system-node-high", "node-high");
    is(&fc, &kubelet(), &res("get", "", "nodes", None), "system-node-high", "node-high");
    is(&fc, &kubelet(), &res("list", "", "pods", None), "system-nodes", "system");
    is(&fc, &kubelet(), &sub(res("create", "", "nodes", None), "proxy"), "system-nodes", "system");
    is(&fc, &kubelet(), &path("get", "/version"), "system-nodes", "system");
}

#[test]
fn service_accounts_go_by_namespace_and_purpose() {
    let fc = bootstrapped();
    let pods = res("list", "", "pods", Some("default"));
    is(
        &fc,
        &sa("kube-system", "job-controller"),
        &pods,
        "kube-system-service-accounts",
        "workload-high",
    );
    is(&fc, &sa("app", "default"), &pods, "service-accounts", "workload-low");
    let lease = res("update", "coordination.k8s.io", "leases", Some("kube-system"));
    is(&fc, &sa("kube-system", "x"), &lease, "system-leader-election", "leader-election");
    let ep = res("update", "", "endpoints", Some("default"));
    is(&fc, &sa("kube-system", "endpoint-controller"), &ep, "endpoint-controller", "workload-high");
    is(&fc, &sa("kube-system", "other"), &ep, "workload-leader-election", "leader-election");
    // A verb the leader-election rules do not list.
    let watch = res("watch", "", "endpoints", Some("default"));
    is(&fc, &sa("kube-system", "other"), &watch, "kube-system-service-accounts", "workload-high");
}

#[test]
fn control_plane_components_go_to_workload_high() {
    let fc = bootstrapped();
    let kcm = user("system:kube-controller-manager", &["system:authenticated"]);
    let pods = res("list", "", "pods", None);
    is(&fc, &kcm, &pods, "kube-controller-manager", "workload-high");
    let sched = user("system:kube-scheduler", &["system:authenticated"]);
    is(&fc, &sched, &pods, "kube-scheduler", "workload-high");
    let lease = res("get", "coordination.k8s.io", "leases", Some("kube-system"));
    is(&fc, &sched, &lease, "system-leader-election", "leader-election");
}

#[test]
fn ordinary_users_go_to_global_default_and_masters_are_exempt() {
    let fc = bootstrapped();
    let alice = user("alice", &["dev", "system:authenticated"]);
    is(&fc, &alice, &res("list", "", "pods", Some("x")), "global-default", "global-default");
    is(&fc, &alice, &path("get", "/metrics"), "global-default", "global-default");
    let admin = user("admin", &["system:masters", "system:authenticated"]);
    is(&fc, &admin, &res("delete", "apps", "deployments", Some("x")), "exempt", "exempt");
    assert!(fc.classify(&admin, &path("get", "/api")).unwrap().level.is_exempt());
    let anonymous = user("system:anonymous", &["system:unauthenticated"]);
    is(&fc, &anonymous, &res("get", "", "pods", Some("x")), "global-default", "global-default");
}

#[test]
fn probes_are_exempt_for_everyone_but_only_for_get() {
    let fc = bootstrapped();
    let anonymous = user("system:anonymous", &["system:unauthenticated"]);
    for p in ["/healthz", "/readyz", "/livez", "/healthz/etcd", "/readyz/ping"] {
        is(&fc, &anonymous, &path("get", p), "probes", "exempt");
    }
    is(&fc, &anonymous, &path("post", "/healthz"), "global-default", "global-default");
    is(&fc, &anonymous, &path("get", "/healthzx"), "global-default", "global-default");
}

#[test]
fn a_user_in_no_group_falls_back_to_catch_all() {
    let fc = bootstrapped();
    is(&fc, &user("nobody", &[]), &res("get", "", "pods", Some("x")), "catch-all", "catch-all");
}

#[test]
fn flows_are_told_apart_by_the_distinguisher() {
    let fc = bootstrapped();
    let pods = |ns| res("list", "", "pods", Some(ns));
    let (a, b) = (user("a", &["system:authenticated"]), user("b", &["system:authenticated"]));
    let flow = |u: &UserInfo, i: &RequestInfo| fc.classify(u, i).unwrap().flow;
    // ByUser: the user counts, the namespace does not.
    assert_eq!(flow(&a, &pods("x")), flow(&a, &pods("y")));
    assert_ne!(flow(&a, &pods("x")), flow(&b, &pods("x")));
    assert_eq!(
        flow(&a, &pods("x")),
        crate::flowcontrol::classifier::flow_hash("global-default", "a")
    );
    // ByNamespace: the namespace counts, the user does not.
    let k = sa("kube-system", "k");
    let j = sa("kube-system", "j");
    assert_eq!(flow(&k, &pods("x")), flow(&j, &pods("x")));
    assert_ne!(flow(&k, &pods("x")), flow(&k, &pods("y")));
    // Exempt levels have no flows.
    let admin = user("admin", &["system:masters"]);
    assert_eq!(flow(&admin, &pods("x")), 0);
}

#[test]
fn precedence_orders_matching_and_names_break_ties() {
    let (levels, mut schemas) = bootstrap_set();
    let custom = |name: &str, precedence: u32, level: &str| {
        serde_json::json!({"metadata": {"name": name, "uid": format!("uid-{name}")}, "spec": {
            "priorityLevelConfiguration": {"name": level}, "matchingPrecedence": precedence,
            "rules": [{"subjects": [{"kind": "User", "user": {"name": "alice"}}],
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                    "namespaces": ["*"], "clusterScope": true}]}]}})
    };
    schemas.push(custom("zz-alice", 50, "workload-low"));
    schemas.push(custom("aa-alice", 50, "leader-election"));
    schemas.push(custom("late-alice", 9999, "system"));
    let fc = loaded(&levels, &schemas);
    let alice = user("alice", &["system:authenticated"]);
    let c = fc.classify(&alice, &res("get", "", "pods", Some("x"))).unwrap();
    assert_eq!((&*c.schema_name, &*c.schema_uid), ("aa-alice", "uid-aa-alice"));
    // Non-resource requests match no resource rule: on to global-default.
    is(&fc, &alice, &path("get", "/version"), "global-default", "global-default");
}

#[test]
fn a_schema_naming_a_missing_level_is_dangling_and_ignored() {
    let (levels, mut schemas) = bootstrap_set();
    schemas.push(serde_json::json!({"metadata": {"name": "broken"}, "spec": {
        "priorityLevelConfiguration": {"name": "missing"}, "matchingPrecedence": 10,
        "rules": [{"subjects": [{"kind": "Group", "group": {"name": "*"}}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}}));
    let d = digest(&levels, &schemas);
    let broken = d.dangling.iter().find(|s| s.schema == "broken").unwrap();
    assert_eq!((broken.status(), broken.reason()), ("True", "NotFound"));
    assert_eq!(
        broken.message(),
        "This FlowSchema references the PriorityLevelConfiguration object named \"missing\" but there is no such object"
    );
    let ok = d.dangling.iter().find(|s| s.schema == "global-default").unwrap();
    assert_eq!((ok.status(), ok.reason()), ("False", "Found"));
    assert_eq!(d.dangling.len(), 14);
    let fc = loaded(&levels, &schemas);
    let alice = user("alice", &["system:authenticated"]);
    is(&fc, &alice, &path("get", "/version"), "global-default", "global-default");
}

#[test]
fn the_dangling_condition_is_written_once_and_keeps_other_conditions() {
    let d = Dangling { schema: "s".into(), dangling: true, level: "l".into() };
    let fs = serde_json::json!({"metadata": {"name": "s"},
        "status": {"conditions": [{"type": "Other", "status": "True"}]}});
    assert!(!d.is_current(&fs));
    let written = d.written_into(&fs, "2026-01-01T00:00:00Z");
    assert!(d.is_current(&written));
    let conditions = written["status"]["conditions"].as_array().unwrap();
    assert_eq!(conditions.len(), 2);
    assert_eq!(conditions[1]["lastTransitionTime"], "2026-01-01T00:00:00Z");
    let fixed = Dangling { dangling: false, ..d };
    assert!(!fixed.is_current(&written));
}

#[test]
fn without_objects_the_mandatory_configuration_is_imagined() {
    let fc = loaded(&[], &[]);
    let alice = user("alice", &["system:authenticated"]);
    is(&fc, &alice, &res("get", "", "pods", Some("x")), "catch-all", "catch-all");
    let admin = user("admin", &["system:masters"]);
    is(&fc, &admin, &res("get", "", "pods", Some("x")), "exempt", "exempt");
    assert_eq!(fc.dispatcher.levels().len(), 2);
}

#[test]
fn nothing_is_classified_before_the_first_load_or_when_disabled() {
    let fc = FlowControl::new(true, 600, 1);
    assert!(fc.classify(&kubelet(), &path("get", "/healthz")).is_none());
    let off = FlowControl::new(false, 600, 1);
    let (levels, schemas) = bootstrap_set();
    off.load(&digest(&levels, &schemas));
    assert!(off.classify(&kubelet(), &path("get", "/healthz")).is_none());
}

#[test]
fn editing_a_levels_shares_changes_its_limits_live() {
    let (mut levels, schemas) = bootstrap_set();
    let fc = loaded(&levels, &schemas);
    let before = fc.dispatcher.level("workload-low").unwrap();
    assert_eq!(before.limits().nominal, 245);
    let wl = levels.iter_mut().find(|l| l["metadata"]["name"] == "workload-low").unwrap();
    wl["spec"]["limited"]["nominalConcurrencyShares"] = serde_json::json!(265);
    fc.load(&digest(&levels, &schemas));
    let after = fc.dispatcher.level("workload-low").unwrap();
    assert!(Arc::ptr_eq(&before, &after), "the level keeps its seats and queues");
    // ceil(600 * 265 / (265 + 145)) = ceil(387.8).
    assert_eq!(after.limits().nominal, 388);
    let c = fc.classify(&sa("app", "x"), &res("get", "", "pods", Some("app"))).unwrap();
    assert!(Arc::ptr_eq(&c.level, &after));
}

#[test]
fn level_settings_get_upstreams_defaults_and_broken_ones_are_ignored() {
    let plc =
        |name: &str, spec: Value| serde_json::json!({"metadata": {"name": name}, "spec": spec});
    let bare = level_config(&plc(
        "a",
        serde_json::json!({"type": "Limited",
        "limited": {"limitResponse": {"type": "Queue", "queuing": {}}}}),
    ))
    .unwrap();
    assert_eq!((bare.nominal_concurrency_shares, bare.lendable_percent), (30, 0));
    assert_eq!(bare.queuing, Some(Queuing { queues: 64, hand_size: 8, queue_length_limit: 50 }));
    assert_eq!(bare.borrowing_limit_percent, None);
    let reject = level_config(&plc(
        "r",
        serde_json::json!({"type": "Limited", "limited": {
        "nominalConcurrencyShares": 0, "borrowingLimitPercent": 20,
        "limitResponse": {"type": "Reject"}}}),
    ))
    .unwrap();
    assert_eq!((reject.nominal_concurrency_shares, reject.queuing), (0, None));
    assert_eq!(reject.borrowing_limit_percent, Some(20));
    let broken = [
        plc("x", serde_json::json!({"type": "Exempt", "exempt": {}})),
        plc(
            "exempt",
            serde_json::json!({"type": "Limited", "limited": {"limitResponse": {"type": "Reject"}}}),
        ),
        plc("y", serde_json::json!({"type": "Limited"})),
        plc(
            "z",
            serde_json::json!({"type": "Limited", "limited": {"limitResponse":
            {"type": "Reject", "queuing": {"queues": 2}}}}),
        ),
        plc(
            "w",
            serde_json::json!({"type": "Limited", "limited": {"limitResponse":
            {"type": "Queue", "queuing": {"queues": 2, "handSize": 3}}}}),
        ),
    ];
    for b in &broken {
        assert_eq!(level_config(b), None, "{b}");
    }
    let exempt = level_config(&plc("exempt", serde_json::json!({"type": "Exempt"}))).unwrap();
    assert!(exempt.exempt);
}
