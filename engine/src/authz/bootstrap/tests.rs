//! Invariants of the expanded policy.

use super::*;
use std::collections::HashSet;

fn name(o: &Value) -> (&str, &str) {
    (
        o["metadata"]["namespace"].as_str().unwrap_or(""),
        o["metadata"]["name"].as_str().unwrap_or(""),
    )
}

fn names(objs: &[Value]) -> HashSet<(&str, &str)> {
    objs.iter().map(name).collect()
}

#[test]
fn names_are_unique_per_kind() {
    for objs in [cluster_roles(), cluster_role_bindings(), roles(), role_bindings()] {
        assert_eq!(names(&objs).len(), objs.len());
    }
}

#[test]
fn every_object_carries_upstreams_label_and_annotation() {
    let all = [cluster_roles(), cluster_role_bindings(), roles(), role_bindings()].concat();
    for o in &all {
        assert_eq!(o["metadata"]["labels"][BOOTSTRAPPING], "rbac-defaults", "{o}");
        assert_eq!(o["metadata"]["annotations"][AUTOUPDATE], "true", "{o}");
        assert_eq!(o["apiVersion"], API_VERSION);
    }
}

#[test]
fn every_binding_names_a_role_of_the_policy() {
    let cluster = cluster_roles();
    let cluster = names(&cluster);
    for b in cluster_role_bindings() {
        assert_eq!(b["roleRef"]["kind"], "ClusterRole");
        assert!(cluster.contains(&("", b["roleRef"]["name"].as_str().unwrap())), "{b}");
    }
    let ns_roles = roles();
    let ns_roles = names(&ns_roles);
    for b in role_bindings() {
        assert_eq!(b["roleRef"]["kind"], "Role");
        let (ns, _) = name(&b);
        assert!(ns_roles.contains(&(ns, b["roleRef"]["name"].as_str().unwrap())), "{b}");
    }
}

#[test]
fn every_subject_is_well_formed() {
    for b in [cluster_role_bindings(), role_bindings()].concat() {
        for s in b["subjects"].as_array().into_iter().flatten() {
            let kind = s["kind"].as_str().unwrap();
            assert!(!s["name"].as_str().unwrap().is_empty(), "{b}");
            match kind {
                "User" | "Group" => {
                    assert_eq!(s["apiGroup"], GROUP);
                    assert!(s.get("namespace").is_none());
                }
                "ServiceAccount" => {
                    assert!(s.get("apiGroup").is_none());
                    assert!(!s["namespace"].as_str().unwrap().is_empty());
                }
                other => panic!("subject kind {other} in {b}"),
            }
        }
    }
}

#[test]
fn every_rule_is_well_formed_and_sorted() {
    let all = [cluster_roles(), roles()].concat();
    for role in &all {
        for rule in role["rules"].as_array().into_iter().flatten() {
            let resource = rule.get("resources").is_some();
            assert_ne!(resource, rule.get("nonResourceURLs").is_some(), "{rule}");
            assert_eq!(resource, rule.get("apiGroups").is_some(), "{rule}");
            for (field, list) in rule.as_object().unwrap() {
                let list: Vec<&str> =
                    list.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
                assert!(!list.is_empty(), "{field} in {rule}");
                assert!(list.is_sorted(), "{field} unsorted in {}: {rule}", name(role).1);
            }
        }
    }
}

#[test]
fn every_controller_service_account_has_its_role_and_binding() {
    let roles: HashSet<String> = cluster_roles().iter().map(|r| name(r).1.to_string()).collect();
    let bindings = cluster_role_bindings();
    for (suffix, _) in controllers::CONTROLLER_ROLES {
        let role = format!("system:controller:{suffix}");
        assert!(roles.contains(&role), "{role}");
        let b = bindings.iter().find(|b| name(b).1 == role).expect("binding");
        assert_eq!(b["roleRef"]["name"], role.as_str());
        let subject = serde_json::json!([{"kind": "ServiceAccount", "name": suffix, "namespace": "kube-system"}]);
        assert_eq!(b["subjects"], subject);
    }
    // kube-controller-manager's own identities: the ones its RBAC setup names.
    for sa in ["attachdetach-controller", "namespace-controller", "generic-garbage-collector"] {
        assert!(roles.contains(&format!("system:controller:{sa}")), "{sa}");
    }
}

#[test]
fn aggregated_roles_select_their_aggregate_to_labels() {
    let all = cluster_roles();
    let get = |n: &str| all.iter().find(|r| name(r).1 == n).unwrap().clone();
    for (role, label, carries) in
        [("admin", "admin", None), ("edit", "edit", Some("admin")), ("view", "view", Some("edit"))]
    {
        let r = get(role);
        let selector = &r["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"];
        assert_eq!(selector[format!("{AGGREGATE_TO}{label}")], "true");
        assert!(r["rules"].is_null());
        if let Some(to) = carries {
            assert_eq!(r["metadata"]["labels"][format!("{AGGREGATE_TO}{to}")], "true");
        }
        let part = get(&format!("system:aggregate-to-{label}"));
        assert_eq!(part["metadata"]["labels"][format!("{AGGREGATE_TO}{label}")], "true");
    }
}

#[test]
fn the_well_known_roles_and_bindings_are_there() {
    let roles = cluster_roles();
    let roles = names(&roles);
    for n in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
        "system:node",
        "system:node-proxier",
        "system:kube-scheduler",
        "system:kube-controller-manager",
        "system:volume-scheduler",
        "system:kube-dns",
        "system:persistent-volume-provisioner",
        "system:monitoring",
        "system:auth-delegator",
        "system:heapster",
        "system:node-bootstrapper",
        "system:node-problem-detector",
        "system:kubelet-api-admin",
        "system:kube-aggregator",
        "system:service-account-issuer-discovery",
        "system:certificates.k8s.io:kube-apiserver-client-approver",
    ] {
        assert!(roles.contains(&("", n)), "{n}");
    }
    let crbs = cluster_role_bindings();
    let admin = crbs.iter().find(|b| name(b).1 == "cluster-admin").unwrap();
    assert_eq!(admin["subjects"][0]["name"], "system:masters");
    let node = crbs.iter().find(|b| name(b).1 == "system:node").unwrap();
    assert!(node.get("subjects").is_none());
    assert_eq!(cluster_roles().len(), 31 + controllers::CONTROLLER_ROLES.len());
}
