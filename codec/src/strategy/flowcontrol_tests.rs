use super::*;

fn messages(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(|e| e.message.clone()).collect()
}

fn level(name: &str, spec: Value) -> Value {
    let mut obj = json!({"metadata": {"name": name}, "spec": spec});
    PriorityLevels.default(&mut obj);
    obj
}

fn check_level(name: &str, spec: Value) -> Vec<String> {
    messages(&PriorityLevels.validate(&level(name, spec)))
}

fn schema(name: &str, spec: Value) -> Vec<String> {
    let mut obj = json!({"metadata": {"name": name}, "spec": spec});
    FlowSchemas.default(&mut obj);
    messages(&FlowSchemas.validate(&obj))
}

#[test]
fn a_queuing_level_gets_upstreams_defaults() {
    let obj = level(
        "l",
        json!({"type": "Limited", "limited": {"limitResponse": {"type": "Queue", "queuing": {}}}}),
    );
    let limited = &obj["spec"]["limited"];
    assert_eq!(limited["nominalConcurrencyShares"], 30);
    assert_eq!(limited["lendablePercent"], 0);
    assert_eq!(
        limited["limitResponse"]["queuing"],
        json!({"queues": 64, "handSize": 8, "queueLengthLimit": 50})
    );
    assert!(PriorityLevels.validate(&obj).is_empty());
}

#[test]
fn a_limited_level_without_limited_is_refused_as_upstream_words_it() {
    assert_eq!(
        check_level("l", json!({"type": "Limited"})),
        ["spec.limited: Required value: must not be empty when type is Limited"]
    );
}

#[test]
fn queuing_sizes_are_checked_as_upstream_checks_them() {
    let queuing = |q: Value| json!({"type": "Limited", "limited": {"limitResponse": {"type": "Queue", "queuing": q}}});
    let at = "spec.limited.limitResponse.queuing.handSize";
    assert_eq!(
        check_level("l", queuing(json!({"queues": 5, "handSize": 10}))),
        [format!("{at}: Invalid value: 10: should not be greater than queues (5)")]
    );
    assert_eq!(
        check_level("l", queuing(json!({"queues": 512, "handSize": 8, "queueLengthLimit": 100}))),
        [format!(
            "{at}: Invalid value: 8: required entropy bits of deckSize 512 and handSize 8 should not be greater than 60"
        )]
    );
    let reject = json!({"type": "Limited", "limited": {"limitResponse": {"type": "Reject",
        "queuing": {"queues": 1}}}});
    assert_eq!(
        check_level("l", reject),
        [
            "spec.limited.limitResponse.queuing: Forbidden: must be nil if limited.limitResponse.type is not Limited"
        ]
    );
}

#[test]
fn percentages_and_shares_are_bounded() {
    let spec = json!({"type": "Limited", "limited": {"nominalConcurrencyShares": -1,
        "lendablePercent": 101, "borrowingLimitPercent": -2, "limitResponse": {"type": "Reject"}}});
    assert_eq!(
        check_level("l", spec),
        [
            "spec.limited.nominalConcurrencyShares: Invalid value: -1: must be a non-negative integer",
            "spec.limited.lendablePercent: Invalid value: 101: must be between 0 and 100, inclusive",
            "spec.limited.borrowingLimitPercent: Invalid value: -2: if specified, must be a non-negative integer",
        ]
    );
}

/// The mandatory levels: `exempt` only by name and type, with its `exempt` field free;
/// `catch-all` fixed.
#[test]
fn the_mandatory_levels_keep_their_fixed_specs() {
    let exempt = json!({"type": "Exempt", "exempt": {"nominalConcurrencyShares": 10}});
    assert!(check_level("exempt", exempt).is_empty());
    let msgs = check_level(
        "exempt",
        json!({"type": "Limited", "limited":
        {"limitResponse": {"type": "Reject"}}}),
    );
    assert_eq!(
        msgs[0],
        "spec.type: Invalid value: \"Limited\": type must be 'Exempt' if and only if name is 'exempt'"
    );
    assert!(
        msgs[1].ends_with(
            "spec of 'exempt' except the 'spec.exempt' field must equal the fixed value"
        )
    );
    let catch_all = json!({"type": "Limited", "limited": {"nominalConcurrencyShares": 5,
        "limitResponse": {"type": "Reject"}}});
    assert!(check_level("catch-all", catch_all).is_empty());
    let edited = json!({"type": "Limited", "limited": {"nominalConcurrencyShares": 50,
        "limitResponse": {"type": "Reject"}}});
    let msgs = check_level("catch-all", edited);
    assert!(msgs.len() == 1 && msgs[0].ends_with("spec of 'catch-all' must equal the fixed value"));
}

fn rule() -> Value {
    json!({"subjects": [{"kind": "User", "user": {"name": "alice"}}],
        "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
            "namespaces": ["*"]}]})
}

#[test]
fn a_schema_gets_precedence_1000_and_bounds_on_it() {
    let mut obj = json!({"metadata": {"name": "s"}, "spec": {
        "priorityLevelConfiguration": {"name": "l"}, "rules": [rule()]}});
    FlowSchemas.default(&mut obj);
    assert_eq!(obj["spec"]["matchingPrecedence"], 1000);
    assert!(FlowSchemas.validate(&obj).is_empty());
    let spec =
        |p: i64| json!({"matchingPrecedence": p, "priorityLevelConfiguration": {"name": "l"}});
    assert_eq!(
        schema("s", spec(10001)),
        ["spec.matchingPrecedence: Invalid value: 10001: must not be greater than 10000"]
    );
    assert_eq!(
        schema("s", spec(1)),
        [
            "spec.matchingPrecedence: Invalid value: 1: only the schema named 'exempt' may have matchingPrecedence 1"
        ]
    );
    assert_eq!(
        schema("s", json!({"matchingPrecedence": 5})),
        ["spec.priorityLevelConfiguration.name: Required value: must reference a priority level"]
    );
}

#[test]
fn rules_and_subjects_are_checked_as_upstream_checks_them() {
    let spec = json!({"matchingPrecedence": 50, "priorityLevelConfiguration": {"name": "l"},
        "rules": [{"subjects": [{"kind": "User", "group": {"name": "g"}}],
            "resourceRules": [{"verbs": ["*", "create"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["healthz"]}]}]});
    assert_eq!(
        schema("s", spec),
        [
            "spec.rules[0].subjects[0].user: Required value: user is required when subject kind is 'User'",
            "spec.rules[0].subjects[0].group: Forbidden: group is forbidden when subject kind is not 'Group'",
            "spec.rules[0].resourceRules[0].verbs: Invalid value: [\"*\",\"create\"]: if '*' is present, must not specify other verbs",
            "spec.rules[0].resourceRules[0].namespaces: Required value: resource rules that are not cluster scoped must supply at least one namespace",
            "spec.rules[0].nonResourceRules[0].nonResourceURLs[0]: Invalid value: \"healthz\": must start with slash",
        ]
    );
}

#[test]
fn the_mandatory_schemas_are_fixed() {
    let catch_all = mandatory_schema("catch-all").unwrap();
    assert!(schema("catch-all", catch_all.clone()).is_empty());
    let mut edited = catch_all;
    edited["matchingPrecedence"] = json!(9000);
    let msgs = schema("catch-all", edited);
    assert!(msgs.len() == 1 && msgs[0].ends_with("spec of 'catch-all' must equal the fixed value"));
    assert!(schema("exempt", mandatory_schema("exempt").unwrap()).is_empty());
}
