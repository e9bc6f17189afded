//! The reconciliation plan, object by object.

use super::*;
use serde_json::json;

fn role(rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "r", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "rules": rules})
}

fn pods(verbs: &[&str]) -> Value {
    json!({"apiGroups": [""], "resources": ["pods"], "verbs": verbs})
}

#[test]
fn an_object_equal_to_the_policy_is_kept() {
    let want = role(json!([pods(&["get", "list"])]));
    assert_eq!(plan(true, &want, &want), Plan::Keep);
}

#[test]
fn a_removed_rule_comes_back_and_a_users_rule_stays() {
    let want = role(json!([pods(&["get", "list"])]));
    let user_rule = json!({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]});
    let have = role(json!([user_rule]));
    let Plan::Update(out) = plan(true, &have, &want) else { panic!("no update") };
    assert_eq!(out["rules"], json!([user_rule, pods(&["get"]), pods(&["list"])]));
    // A broader rule of the user's covers the policy's: nothing to add.
    let broad = role(json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]));
    assert_eq!(plan(true, &broad, &want), Plan::Keep);
}

#[test]
fn missing_labels_and_annotations_are_added_and_the_users_values_win() {
    let want = role(json!([]));
    let mut have = want.clone();
    have["metadata"]["labels"] = json!({"kubernetes.io/bootstrapping": "mine", "team": "a"});
    have["metadata"].as_object_mut().unwrap().remove("annotations");
    let Plan::Update(out) = plan(true, &have, &want) else { panic!("no update") };
    assert_eq!(
        out["metadata"]["labels"],
        json!({"kubernetes.io/bootstrapping": "mine", "team": "a"})
    );
    assert_eq!(
        out["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
        "true"
    );
}

#[test]
fn autoupdate_false_is_left_alone() {
    let want = role(json!([pods(&["get"])]));
    let mut have = role(json!([]));
    have["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] = json!("false");
    assert_eq!(plan(true, &have, &want), Plan::Keep);
}

#[test]
fn aggregation_selectors_are_unioned() {
    let sel = |l: &str| json!({"matchLabels": {l: "true"}});
    let mut want = role(Value::Null);
    want["aggregationRule"] = json!({"clusterRoleSelectors": [sel("a")]});
    let mut have = want.clone();
    have["aggregationRule"] = json!({"clusterRoleSelectors": [sel("mine")]});
    have["rules"] = json!([pods(&["get"])]);
    let Plan::Update(out) = plan(true, &have, &want) else { panic!("no update") };
    assert_eq!(out["aggregationRule"]["clusterRoleSelectors"], json!([sel("mine"), sel("a")]));
    assert_eq!(out["rules"], json!([pods(&["get"])]));
}

fn binding(role: &str, subjects: Value) -> Value {
    json!({"kind": "ClusterRoleBinding", "metadata": {"name": "b",
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": subjects})
}

#[test]
fn missing_subjects_are_added_and_the_users_stay() {
    let masters =
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"});
    let user = json!({"kind": "User", "name": "alice"});
    let want = binding("cluster-admin", json!([masters]));
    let Plan::Update(out) = plan(false, &binding("cluster-admin", json!([user])), &want) else {
        panic!("no update")
    };
    assert_eq!(out["subjects"], json!([user, masters]));
    // The same subject without its (defaulted) apiGroup is the same subject.
    let bare = json!({"kind": "Group", "name": "system:masters"});
    assert_eq!(plan(false, &binding("cluster-admin", json!([bare])), &want), Plan::Keep);
}

#[test]
fn a_different_role_ref_is_recreated() {
    let want = binding("cluster-admin", json!([]));
    assert_eq!(plan(false, &binding("view", json!([])), &want), Plan::Recreate);
}

#[test]
fn the_policy_reconciled_against_itself_changes_nothing() {
    for (objs, is_role) in [
        (crate::authz::bootstrap::cluster_roles(), true),
        (crate::authz::bootstrap::roles(), true),
        (crate::authz::bootstrap::cluster_role_bindings(), false),
        (crate::authz::bootstrap::role_bindings(), false),
    ] {
        for o in objs {
            assert_eq!(plan(is_role, &o, &o), Plan::Keep, "{o}");
        }
    }
}
