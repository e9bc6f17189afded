//! The ensurer's decisions (upstream's strategy tests, restated).

use super::*;
use serde_json::json;

fn global_default() -> Value {
    let all = bootstrap::suggested_levels();
    all.into_iter().find(|l| l["metadata"]["name"] == "global-default").unwrap()
}

fn with(mut obj: Value, annotation: Option<&str>, generation: i64, shares: u32) -> Value {
    obj["metadata"]["generation"] = json!(generation);
    match annotation {
        Some(a) => obj["metadata"]["annotations"][AUTOUPDATE] = json!(a),
        None => {
            obj["metadata"] = json!({"name": obj["metadata"]["name"], "generation": generation})
        }
    }
    obj["spec"]["limited"]["nominalConcurrencyShares"] = json!(shares);
    obj
}

fn updated(p: Plan) -> Value {
    match p {
        Plan::Update(v) => v,
        Plan::Keep => panic!("expected an update"),
    }
}

#[test]
fn bootstrap_objects_as_created_are_kept() {
    let all = [
        bootstrap::suggested_levels(),
        bootstrap::suggested_schemas(),
        bootstrap::mandatory_levels(),
        bootstrap::mandatory_schemas(),
    ];
    for obj in all.iter().flatten() {
        let mut stored = obj.clone();
        stored["metadata"]["generation"] = json!(1);
        stored["metadata"]["uid"] = json!("u");
        assert_eq!(plan(Strategy::Suggested, &stored, obj), Plan::Keep, "{obj}");
        assert_eq!(plan(Strategy::Mandatory, &stored, obj), Plan::Keep, "{obj}");
    }
}

#[test]
fn a_suggested_object_marked_true_gets_its_spec_back() {
    let want = global_default();
    let edited = with(want.clone(), Some("true"), 2, 99);
    let next = updated(plan(Strategy::Suggested, &edited, &want));
    assert_eq!(next["spec"], want["spec"]);
    assert_eq!(next["metadata"]["generation"], 2);
}

#[test]
fn a_suggested_object_marked_false_is_left_to_its_owner() {
    let want = global_default();
    let edited = with(want.clone(), Some("false"), 2, 99);
    assert_eq!(plan(Strategy::Suggested, &edited, &want), Plan::Keep);
}

#[test]
fn without_the_annotation_the_generation_decides_and_the_annotation_is_written() {
    let want = global_default();
    // Never edited: the server keeps it, and says so.
    let fresh = with(want.clone(), None, 1, 20);
    let next = updated(plan(Strategy::Suggested, &fresh, &want));
    assert_eq!(next["metadata"]["annotations"][AUTOUPDATE], "true");
    assert_eq!(next["spec"], want["spec"]);
    // Edited: the owner's, and the annotation says false.
    let edited = with(want.clone(), None, 3, 99);
    let next = updated(plan(Strategy::Suggested, &edited, &want));
    assert_eq!(next["metadata"]["annotations"][AUTOUPDATE], "false");
    assert_eq!(next["spec"]["limited"]["nominalConcurrencyShares"], 99);
    // Go's ParseBool spellings count; others do not.
    let spelled = with(want.clone(), Some("FALSE"), 2, 99);
    assert_eq!(plan(Strategy::Suggested, &spelled, &want), Plan::Keep);
    let garbage = with(want.clone(), Some("yes"), 2, 99);
    let next = updated(plan(Strategy::Suggested, &garbage, &want));
    assert_eq!(next["metadata"]["annotations"][AUTOUPDATE], "false");
}

#[test]
fn mandatory_objects_are_always_restored() {
    let want = bootstrap::mandatory_levels().remove(0);
    let edited = with(want.clone(), Some("false"), 5, 99);
    let next = updated(plan(Strategy::Mandatory, &edited, &want));
    assert_eq!(next["spec"], want["spec"]);
    assert_eq!(next["metadata"]["annotations"][AUTOUPDATE], "true");
}

#[test]
fn the_exempt_level_keeps_its_tuned_shares_and_lendable_percent() {
    let want = bootstrap::mandatory_levels().remove(1);
    let mut tuned = want.clone();
    tuned["spec"]["exempt"] = json!({"nominalConcurrencyShares": 10, "lendablePercent": 5});
    assert_eq!(plan(Strategy::Mandatory, &tuned, &want), Plan::Keep);
    let mut limited = want.clone();
    limited["spec"] = json!({"type": "Limited", "limited": {"limitResponse": {"type": "Reject"}}});
    assert_eq!(updated(plan(Strategy::Mandatory, &limited, &want))["spec"], want["spec"]);
}

#[test]
fn only_unknown_objects_marked_true_are_unwanted() {
    let obj = |name: &str, a: Option<&str>| {
        let mut o = json!({"metadata": {"name": name}});
        if let Some(a) = a {
            o["metadata"]["annotations"] = json!({AUTOUPDATE: a});
        }
        o
    };
    let current = by_name([
        obj("retired", Some("true")),
        obj("mine", None),
        obj("kept", Some("false")),
        obj("odd", Some("maybe")),
        obj("global-default", Some("true")),
    ]);
    assert_eq!(unwanted(&current, &bootstrap::suggested_levels()), ["retired"]);
}
