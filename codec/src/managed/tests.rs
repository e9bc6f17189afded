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
    record_update(None, &mut created, DEP, &mgr("kubectl-create", false));
    assert!(owned(&created, "kubectl-create").contains(&".spec.replicas".to_string()));
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(3);
    record_update(Some(&created), &mut scaled, DEP, &mgr("hpa", false));
    assert_eq!(owned(&scaled, "hpa"), [".spec.replicas"]);
    assert!(!owned(&scaled, "kubectl-create").contains(&".spec.replicas".to_string()));
    let mut unlabeled = scaled.clone();
    unlabeled["metadata"].as_object_mut().unwrap().remove("labels");
    record_update(Some(&scaled), &mut unlabeled, DEP, &mgr("editor", false));
    assert!(owned(&unlabeled, "kubectl-create").iter().all(|p| !p.starts_with(".metadata.labels")));
    assert!(owned(&unlabeled, "editor").is_empty(), "removing fields owns nothing");
}

#[test]
fn apply_creates_then_conflicts_with_other_owners_unless_forced() {
    let created = apply(None, &dep(2, "i:1"), DEP, &mgr("alice", true), false).unwrap();
    assert_eq!(created["spec"]["replicas"], 2);
    let mut scaled = created.clone();
    scaled["spec"]["replicas"] = json!(5);
    record_update(Some(&created), &mut scaled, DEP, &mgr("hpa", false));
    let err = apply(Some(&scaled), &dep(2, "i:1"), DEP, &mgr("alice", true), false).unwrap_err();
    assert_eq!(
        err,
        [Conflict {
            manager: "hpa".into(),
            api_version: "apps/v1".into(),
            field: ".spec.replicas".into()
        }]
    );
    // The same value is shared, not a conflict.
    assert!(apply(Some(&scaled), &dep(5, "i:1"), DEP, &mgr("alice", true), false).is_ok());
    let forced = apply(Some(&scaled), &dep(2, "i:2"), DEP, &mgr("alice", true), true).unwrap();
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
    let live = apply(None, &first, DEP, &mgr("alice", true), false).unwrap();
    let mut edited = live.clone();
    edited["spec"]["paused"] = json!(true);
    record_update(Some(&live), &mut edited, DEP, &mgr("bob", false));
    let mut second = dep(2, "i:1");
    second["metadata"]["labels"] = json!({});
    let out = apply(Some(&edited), &second, DEP, &mgr("alice", true), false).unwrap();
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
    let live = apply(None, &dep(1, "i:1"), DEP, &mgr("alice", true), false).unwrap();
    let mut side = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "side", "image": "s"}]}}}});
    let out = apply(Some(&live), &side, DEP, &mgr("bob", true), false).unwrap();
    let containers = out["spec"]["template"]["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2, "bob's container is added next to alice's");
    side["spec"]["template"]["spec"]["containers"][0]["name"] = json!("c");
    side["spec"]["template"]["spec"]["containers"][0]["image"] = json!("other");
    let err = apply(Some(&out), &side, DEP, &mgr("bob", true), false).unwrap_err();
    assert_eq!(err[0].field, ".spec.template.spec.containers[name=\"c\"].image");
}
