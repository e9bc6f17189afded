//! Unit tests of CEL compilation and validation against upstream's messages.

use serde_json::{Value, json};

use super::*;

const PREFIX: &str = "spec.validation.openAPIV3Schema";

fn schema_with(spec: Value) -> Value {
    json!({"type": "object", "properties": {"spec": spec}})
}

fn rules(schema: &Value) -> Rules {
    match compile(schema, PREFIX) {
        Ok(r) => r,
        Err(e) => panic!("compile failed: {e:?}"),
    }
}

fn messages(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(|e| e.message.clone()).collect()
}

fn replicas_schema() -> Value {
    schema_with(json!({
        "type": "object",
        "properties": {
            "minReplicas": {"type": "integer"},
            "maxReplicas": {"type": "integer"}
        },
        "x-kubernetes-validations": [{"rule": "self.minReplicas <= self.maxReplicas"}]
    }))
}

#[test]
fn min_le_max_passes_and_fails_with_upstream_message() {
    let r = rules(&replicas_schema());
    let ok = json!({"spec": {"minReplicas": 1, "maxReplicas": 3}});
    assert!(r.validate(&ok, None).is_empty());
    let bad = json!({"spec": {"minReplicas": 5, "maxReplicas": 3}});
    let errs = r.validate(&bad, None);
    assert_eq!(
        messages(&errs),
        vec!["spec: Invalid value: \"object\": failed rule: self.minReplicas <= self.maxReplicas"]
    );
    assert_eq!(errs[0].field, "spec");
    assert_eq!(errs[0].kind, FieldErrorType::Invalid);
}

#[test]
fn missing_field_is_a_runtime_error() {
    let r = rules(&replicas_schema());
    let errs = r.validate(&json!({"spec": {"minReplicas": 1}}), None);
    assert_eq!(
        messages(&errs),
        vec![
            "spec: Invalid value: \"object\": no such key: maxReplicas evaluating rule: self.minReplicas <= self.maxReplicas"
        ]
    );
}

#[test]
fn immutable_transition_rule() {
    let schema = schema_with(json!({
        "type": "object",
        "properties": {"name": {
            "type": "string",
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "Value is immutable"}]
        }}
    }));
    let r = rules(&schema);
    let new = json!({"spec": {"name": "b"}});
    // Create: transition rules do not run.
    assert!(r.validate(&new, None).is_empty());
    let old = json!({"spec": {"name": "a"}});
    assert_eq!(
        messages(&r.validate(&new, Some(&old))),
        vec!["spec.name: Invalid value: \"string\": Value is immutable"]
    );
    assert!(r.validate(&old, Some(&old)).is_empty());
    // The old value was absent: the rule does not run.
    assert!(r.validate(&new, Some(&json!({"spec": {}}))).is_empty());
}

#[test]
fn optional_old_self() {
    let schema = schema_with(json!({
        "type": "object",
        "properties": {"n": {
            "type": "integer",
            "x-kubernetes-validations": [{
                "rule": "!oldSelf.hasValue() || self >= oldSelf.value()",
                "message": "may only grow",
                "optionalOldSelf": true
            }]
        }}
    }));
    let r = rules(&schema);
    assert!(r.validate(&json!({"spec": {"n": 1}}), None).is_empty());
    assert!(r.validate(&json!({"spec": {"n": 3}}), Some(&json!({"spec": {"n": 2}}))).is_empty());
    assert_eq!(
        messages(&r.validate(&json!({"spec": {"n": 1}}), Some(&json!({"spec": {"n": 2}})))),
        vec!["spec.n: Invalid value: \"integer\": may only grow"]
    );
}

#[test]
fn message_expression_reason_and_field_path() {
    let schema = schema_with(json!({
        "type": "object",
        "properties": {"replicas": {"type": "integer"}, "name": {"type": "string"}},
        "x-kubernetes-validations": [{
            "rule": "self.replicas < 10",
            "messageExpression": "'replicas must be below 10, got ' + string(self.replicas)",
            "reason": "FieldValueForbidden",
            "fieldPath": ".replicas"
        }]
    }));
    let r = rules(&schema);
    let errs = r.validate(&json!({"spec": {"replicas": 12, "name": "x"}}), None);
    assert_eq!(
        messages(&errs),
        vec!["spec.replicas: Forbidden: replicas must be below 10, got 12"]
    );
    assert_eq!(errs[0].kind, FieldErrorType::Forbidden);
}

#[test]
fn rule_on_list_items_and_map_values() {
    let schema = schema_with(json!({
        "type": "object",
        "properties": {
            "ports": {
                "type": "array",
                "maxItems": 10,
                "items": {
                    "type": "object",
                    "properties": {"port": {"type": "integer"}, "name": {"type": "string", "maxLength": 20}},
                    "x-kubernetes-validations": [{"rule": "self.port > 0 && self.port < 65536", "message": "bad port"}]
                }
            },
            "labels": {
                "type": "object",
                "additionalProperties": {
                    "type": "string",
                    "maxLength": 10,
                    "x-kubernetes-validations": [{"rule": "self.matches('^[a-z]+$')"}]
                }
            }
        }
    }));
    let r = rules(&schema);
    let obj = json!({"spec": {
        "ports": [{"port": 80, "name": "http"}, {"port": 0, "name": "zero"}],
        "labels": {"a": "ok", "b": "NOT"}
    }});
    assert_eq!(
        messages(&r.validate(&obj, None)),
        vec![
            "spec.ports[1]: Invalid value: \"object\": bad port",
            "spec.labels[b]: Invalid value: \"string\": failed rule: self.matches('^[a-z]+$')",
        ]
    );
}

#[test]
fn list_macros_and_string_functions() {
    let schema = schema_with(json!({
        "type": "object",
        "properties": {
            "names": {"type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": 30}},
        },
        "x-kubernetes-validations": [
            {"rule": "self.names.all(n, n.startsWith('a'))", "message": "all"},
            {"rule": "self.names.exists(n, n.endsWith('z'))", "message": "exists"},
            {"rule": "self.names.exists_one(n, n.contains('q'))", "message": "exists_one"},
            {"rule": "self.names.map(n, n.upperAscii()).filter(n, n.size() > 3).size() == 1", "message": "map/filter"},
            {"rule": "self.names.isSorted()", "message": "sorted"},
            {"rule": "has(self.names) && !has(self.other)", "message": "has"},
            {"rule": "'abz' in self.names && size(self.names) == 3", "message": "in"},
        ]
    }));
    let r = rules(&json!({
        "type": "object",
        "properties": {"spec": {
            "type": "object",
            "properties": {
                "names": schema["properties"]["spec"]["properties"]["names"].clone(),
                "other": {"type": "string"}
            },
            "x-kubernetes-validations": schema["properties"]["spec"]["x-kubernetes-validations"].clone()
        }}
    }));
    let good = json!({"spec": {"names": ["aaq", "abcd", "abz"]}});
    assert_eq!(messages(&r.validate(&good, None)), Vec::<String>::new());
    let bad = json!({"spec": {"names": ["b", "aq", "aqq", "a"], "other": "x"}});
    assert_eq!(
        messages(&r.validate(&bad, None)),
        vec![
            "spec: Invalid value: \"object\": all",
            "spec: Invalid value: \"object\": exists",
            "spec: Invalid value: \"object\": exists_one",
            "spec: Invalid value: \"object\": map/filter",
            "spec: Invalid value: \"object\": sorted",
            "spec: Invalid value: \"object\": has",
            "spec: Invalid value: \"object\": in",
        ]
    );
}

#[test]
fn root_rule_sees_metadata_name() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"x": {"type": "string"}}}},
        "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('a') && self.kind == 'Foo'"}]
    });
    let r = rules(&schema);
    let ok = json!({"apiVersion": "x/v1", "kind": "Foo", "metadata": {"name": "abc"}, "spec": {}});
    assert!(r.validate(&ok, None).is_empty());
    let bad = json!({"apiVersion": "x/v1", "kind": "Foo", "metadata": {"name": "b"}, "spec": {}});
    assert_eq!(
        messages(&r.validate(&bad, None)),
        vec![
            "<nil>: Invalid value: \"object\": failed rule: self.metadata.name.startsWith('a') && self.kind == 'Foo'"
        ]
    );
    // Only name and generateName of metadata are visible.
    let err = compile(
        &json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.metadata.labels.size() > 0"}]}),
        PREFIX,
    )
    .unwrap_err();
    assert!(err[0].message.contains("undefined field 'labels'"), "{err:?}");
}

#[test]
fn compile_errors_in_upstream_shape() {
    let schema = schema_with(json!({
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "x-kubernetes-validations": [
            {"rule": "self.b > 0"},
            {"rule": "self.a +"},
            {"rule": "self.a"},
            {"rule": "quantity(self.a).isZero()"},
            {"rule": ""},
            {"rule": "self.a == 'x'"},
        ]
    }));
    let errs = compile(&schema, PREFIX).unwrap_err();
    let m = messages(&errs);
    assert_eq!(m.len(), 1, "{m:#?}");
    assert_eq!(
        m[0],
        "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[4].rule: Required value: rule is not specified"
    );
    // Without the empty rule, every other one is a CEL compile error.
    let mut schema = schema;
    schema["properties"]["spec"]["x-kubernetes-validations"].as_array_mut().unwrap().remove(4);
    let m = messages(&compile(&schema, PREFIX).unwrap_err());
    let p = "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations";
    let shown = |rule: &str| {
        format!(
            "apiextensions.ValidationRule{{Rule:{rule:?}, Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}}"
        )
    };
    assert_eq!(m.len(), 5, "{m:#?}");
    assert!(
        m[0].starts_with(&format!(
            "{p}[0].rule: Invalid value: {}: compilation failed: ERROR: <input>:1:",
            shown("self.b > 0")
        )),
        "{}",
        m[0]
    );
    assert!(m[0].contains("undefined field 'b'\n | self.b > 0\n | "), "{}", m[0]);
    assert!(
        m[1].contains("[1].rule: Invalid value: ")
            && m[1].contains("compilation failed: ERROR: <input>:1:"),
        "{}",
        m[1]
    );
    assert_eq!(
        m[2],
        format!(
            "{p}[2].rule: Invalid value: {}: cel expression must evaluate to a bool",
            shown("self.a")
        )
    );
    assert!(m[3].contains("undeclared reference to 'quantity' (in container '')"), "{}", m[3]);
    assert!(
        m[4].contains("found no matching overload for '_==_' applied to '(int, string)'"),
        "{}",
        m[4]
    );
}

#[test]
fn old_self_forbidden_on_uncorrelatable_list_items() {
    let schema = schema_with(json!({
        "type": "object",
        "properties": {"xs": {
            "type": "array",
            "maxItems": 5,
            "items": {"type": "string", "maxLength": 5, "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}
        }}
    }));
    let m = messages(&compile(&schema, PREFIX).unwrap_err());
    assert_eq!(
        m,
        vec![format!(
            "{PREFIX}.properties[spec].properties[xs].items.x-kubernetes-validations[0].rule: Invalid value: \"self == oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within {PREFIX}.properties[spec].properties[xs]"
        )]
    );
}

#[test]
fn map_list_items_correlate_by_key() {
    let schema = schema_with(json!({
        "type": "object",
        "properties": {"xs": {
            "type": "array",
            "maxItems": 5,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "maxLength": 10}, "v": {"type": "integer"}},
                "x-kubernetes-validations": [{"rule": "self.v == oldSelf.v", "message": "v is immutable"}]
            }
        }}
    }));
    let r = rules(&schema);
    let old = json!({"spec": {"xs": [{"name": "a", "v": 1}, {"name": "b", "v": 2}]}});
    let new = json!({"spec": {"xs": [{"name": "b", "v": 2}, {"name": "a", "v": 5}, {"name": "c", "v": 9}]}});
    assert_eq!(
        messages(&r.validate(&new, Some(&old))),
        vec!["spec.xs[1]: Invalid value: \"object\": v is immutable"]
    );
}

#[test]
fn estimated_cost_limit_rejects_quadratic_rule_on_unbounded_list() {
    let schema = schema_with(json!({
        "type": "object",
        "properties": {"xs": {"type": "array", "items": {"type": "string"}}},
        "x-kubernetes-validations": [{"rule": "self.xs.all(a, self.xs.exists(b, a == b))"}]
    }));
    let m = messages(&compile(&schema, PREFIX).unwrap_err());
    assert_eq!(
        m[0],
        format!(
            "{PREFIX}.properties[spec].x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of more than 100x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
        )
    );
    // Bounded, the same rule is accepted.
    let bounded = schema_with(json!({
        "type": "object",
        "properties": {"xs": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 10}}},
        "x-kubernetes-validations": [{"rule": "self.xs.all(a, self.xs.exists(b, a == b))"}]
    }));
    assert!(compile(&bounded, PREFIX).is_ok());
}

#[test]
fn untyped_data_is_estimated_at_the_request_size() {
    // Untyped (preserve-unknown-fields) data is sized by the request limit, so a cubic
    // walk over it is refused at CRD time.
    let schema = schema_with(json!({
        "type": "object",
        "properties": {"xs": {"x-kubernetes-preserve-unknown-fields": true}},
        "x-kubernetes-validations": [{"rule": "self.xs.all(a, self.xs.all(b, self.xs.all(c, a != b)))"}]
    }));
    let m = messages(&compile(&schema, PREFIX).unwrap_err());
    assert!(
        m[0].contains("estimated rule cost exceeds budget by factor of more than 100x"),
        "{m:#?}"
    );
    assert!(m.last().unwrap().starts_with(&format!(
        "{PREFIX}: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget"
    )));
}

#[test]
fn runtime_call_limit_and_object_budget() {
    let schema = schema_with(json!({
        "type": "object",
        "properties": {"xs": {"type": "array", "maxItems": 100, "items": {"type": "string", "maxLength": 8}}},
        "x-kubernetes-validations": [
            {"rule": "self.xs.all(a, self.xs.all(b, a == b || a != b))"},
            {"rule": "true"}
        ]
    }));
    let xs: Vec<Value> = (0..100).map(|i| json!(format!("v{i}"))).collect();
    let obj = json!({"spec": {"xs": xs}});
    let mut r = rules(&schema);
    assert_eq!(messages(&r.validate(&obj, None)), Vec::<String>::new());
    // A per-call limit below the rule's real cost stops it, and every later rule.
    r.per_call_limit = 10_000;
    let started = std::time::Instant::now();
    assert_eq!(
        messages(&r.validate(&obj, None)),
        vec![
            "spec: Invalid value: \"object\": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: self.xs.all(a, self.xs.all(b, a == b || a != b))"
        ]
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // A per-object budget below it: the budget message.
    r.per_call_limit = PER_CALL_LIMIT;
    r.budget = 10_000;
    assert_eq!(
        messages(&r.validate(&obj, None)),
        vec![
            "spec: Invalid value: \"object\": validation failed due to running out of cost budget, no further validation rules will be run"
        ]
    );
}

#[test]
fn string_blowup_is_metered_before_allocation() {
    let schema = schema_with(json!({
        "type": "object",
        "properties": {"s": {"type": "string", "maxLength": 100}},
        "x-kubernetes-validations": [{"rule": "self.s.replace('', self.s).replace('', self.s).replace('', self.s).size() > 0"}]
    }));
    let r = rules(&schema);
    let s = "a".repeat(100);
    let errs = r.validate(&json!({"spec": {"s": s}}), None);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].message.contains("call cost exceeds limit"), "{errs:?}");
}

#[test]
fn int_or_string_timestamps_durations() {
    let schema = schema_with(json!({
        "type": "object",
        "properties": {
            "port": {"x-kubernetes-int-or-string": true},
            "at": {"type": "string", "format": "date-time"},
            "every": {"type": "string", "format": "duration"}
        },
        "x-kubernetes-validations": [
            {"rule": "type(self.port) == int ? self.port > 0 : self.port.size() > 0", "message": "port"},
            {"rule": "self.at > timestamp('2020-01-01T00:00:00Z')", "message": "at"},
            {"rule": "self.every < duration('1h')", "message": "every"},
        ]
    }));
    // `type(x) == int` needs type identifiers; kapi does not support them.
    let err = compile(&schema, PREFIX).unwrap_err();
    assert!(err[0].message.contains("undeclared reference to 'int'"), "{err:?}");
    let mut schema = schema;
    schema["properties"]["spec"]["x-kubernetes-validations"][0]["rule"] =
        json!("string(self.port) != '0'");
    let r = rules(&schema);
    let ok = json!({"spec": {"port": 8080, "at": "2024-05-01T10:00:00Z", "every": "30m"}});
    assert!(r.validate(&ok, None).is_empty());
    let bad = json!({"spec": {"port": "0", "at": "2019-05-01T10:00:00Z", "every": "2h"}});
    assert_eq!(
        messages(&r.validate(&bad, None)),
        vec![
            "spec: Invalid value: \"object\": port",
            "spec: Invalid value: \"object\": at",
            "spec: Invalid value: \"object\": every",
        ]
    );
}

#[test]
fn no_panics_on_odd_inputs() {
    let nested = format!("{}true{}", "(".repeat(5000), ")".repeat(5000));
    let weird = [
        "",
        "(",
        ")",
        "self.",
        "'unterminated",
        "self[",
        "1/0 == 1",
        "9223372036854775807 + 1 > 0",
        "-9223372036854775808 / -1 > 0",
        "self.x.matches('(')",
        "self.x.matches('a{1000}{1000}')",
        "{1: 2, 1: 3}.size() == 1",
        "[1, 'a'].size() == 2",
        "self.x.substring(5, 1) == ''",
        "self.x.charAt(-1) == ''",
        "int(1e300) > 0",
        "uint(-1.0) > 0u",
        "timestamp(9223372036854775807) > timestamp(0)",
        "duration('9999999999h') > duration('1s')",
        "dyn(self).foo.bar == 1",
        "\u{0}\u{ffff}",
        nested.as_str(),
    ];
    for rule in weird {
        let schema = schema_with(json!({
            "type": "object",
            "properties": {"x": {"type": "string", "maxLength": 10}},
            "x-kubernetes-validations": [{"rule": rule}]
        }));
        if let Ok(r) = compile(&schema, PREFIX) {
            for v in [
                json!({"spec": {"x": "hello"}}),
                json!({"spec": {}}),
                json!({"spec": null}),
                json!(null),
            ] {
                let _ = r.validate(&v, Some(&json!({"spec": 1})));
            }
        }
    }
    // Values that do not match the schema at all.
    let r = rules(&replicas_schema());
    for v in [
        json!(1),
        json!({"spec": [1, 2]}),
        json!({"spec": {"minReplicas": "a", "maxReplicas": []}}),
    ] {
        let _ = r.validate(&v, None);
    }
    // Deep untyped data.
    let mut deep = json!(1);
    for _ in 0..300 {
        deep = json!([deep]);
    }
    let schema = schema_with(json!({
        "type": "object",
        "properties": {"d": {"x-kubernetes-preserve-unknown-fields": true}},
        "x-kubernetes-validations": [{"rule": "self.d == self.d"}]
    }));
    let r = rules(&schema);
    let errs = r.validate(&json!({"spec": {"d": deep}}), None);
    assert_eq!(errs.len(), 1, "{errs:?}");
}
