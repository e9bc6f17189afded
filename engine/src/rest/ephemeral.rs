//! `pods/ephemeralcontainers` writes as upstream's ephemeral-containers strategy: the
//! write changes only `spec.ephemeralContainers` of the current pod (everything else the
//! client sent is dropped), and existing ephemeral containers may be neither changed nor
//! removed; new ones are checked as upstream checks them (names unique among all of the
//! pod's containers, an image, none of the fields an ephemeral container cannot have).

use kapi_codec::FieldError;
use kapi_codec::validation::dns1123_label_errors;
use serde_json::{Value, json};
use std::collections::HashSet;

const PATH: &str = "spec.ephemeralContainers";

/// Fields an ephemeral container cannot set (upstream's list), checked when non-empty.
const NOT_ALLOWED: [&str; 7] = [
    "lifecycle",
    "livenessProbe",
    "ports",
    "readinessProbe",
    "resizePolicy",
    "resources",
    "startupProbe",
];

/// The pod the write produces: `current` with the client's ephemeral containers.
pub fn select(new: &Value, current: &Value) -> Value {
    let mut out = current.clone();
    let ephemeral = new.pointer("/spec/ephemeralContainers").filter(|v| !v.is_null()).cloned();
    let Some(o) = out.as_object_mut() else { return out };
    let spec = o.entry("spec").or_insert_with(|| json!({}));
    if let Some(spec) = spec.as_object_mut() {
        match ephemeral {
            Some(list) => spec.insert("ephemeralContainers".into(), list),
            None => spec.shift_remove("ephemeralContainers"),
        };
    }
    out
}

fn containers<'a>(pod: &'a Value, key: &str) -> &'a [Value] {
    pod.pointer(&format!("/spec/{key}")).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn name_of(c: &Value) -> &str {
    c.get("name").and_then(Value::as_str).unwrap_or("")
}

/// Upstream's ephemeral-containers update rules, `new` against `old`.
pub fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let new_list = containers(new, "ephemeralContainers");
    for existing in containers(old, "ephemeralContainers") {
        let name = name_of(existing);
        match new_list.iter().find(|c| name_of(c) == name) {
            None => errors.push(FieldError::forbidden(
                PATH,
                &format!("existing ephemeral containers {name:?} may not be removed\n"),
            )),
            Some(c) if c != existing => errors.push(FieldError::forbidden(
                format!("{PATH}[{name}]"),
                &format!("existing ephemeral containers {name:?} may not be changed\n"),
            )),
            Some(_) => {}
        }
    }
    errors.extend(validate_new(new));
    errors
}

/// The checks of every ephemeral container of `pod`.
fn validate_new(pod: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut seen: HashSet<&str> = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| containers(pod, k))
        .map(name_of)
        .collect();
    for (i, c) in containers(pod, "ephemeralContainers").iter().enumerate() {
        let at = format!("{PATH}[{i}]");
        let name = name_of(c);
        if name.is_empty() {
            errors.push(FieldError::required(format!("{at}.name"), ""));
        } else {
            for e in dns1123_label_errors(name) {
                errors.push(FieldError::invalid(format!("{at}.name"), &json!(name), &e));
            }
            if !seen.insert(name) {
                errors.push(FieldError::duplicate(format!("{at}.name"), &json!(name)));
            }
        }
        if c.get("image").and_then(Value::as_str).is_none_or(|s| s.trim().is_empty()) {
            errors.push(FieldError::required(format!("{at}.image"), ""));
        }
        for field in NOT_ALLOWED {
            if c.get(field).is_some_and(is_set) {
                let why = "cannot be set for an Ephemeral Container";
                errors.push(FieldError::forbidden(format!("{at}.{field}"), why));
            }
        }
    }
    errors
}

/// Whether a field holds something (upstream compares with the zero value).
fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Object(m) => m.values().any(is_set),
        Value::Array(a) => !a.is_empty(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ephemeral: Value) -> Value {
        json!({"metadata": {"name": "p", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "app", "image": "nginx"}],
                "ephemeralContainers": ephemeral}})
    }

    #[test]
    fn only_ephemeral_containers_are_written() {
        let current = pod(json!([]));
        let mut sent = pod(json!([{"name": "debug", "image": "busybox"}]));
        sent["metadata"]["labels"] = json!({"changed": "yes"});
        sent["spec"]["containers"][0]["image"] = json!("other");
        let out = select(&sent, &current);
        assert_eq!(out["metadata"]["labels"], json!({"a": "b"}));
        assert_eq!(out["spec"]["containers"][0]["image"], "nginx");
        assert_eq!(out["spec"]["ephemeralContainers"][0]["name"], "debug");
    }

    #[test]
    fn existing_ephemeral_containers_are_frozen() {
        let old = pod(json!([{"name": "debug", "image": "busybox"}]));
        let removed = validate_update(&pod(json!([])), &old);
        assert_eq!(removed[0].field, "spec.ephemeralContainers");
        assert_eq!(
            removed[0].message,
            "spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debug\" may not be removed\n"
        );
        let changed = validate_update(&pod(json!([{"name": "debug", "image": "alpine"}])), &old);
        assert_eq!(changed[0].field, "spec.ephemeralContainers[debug]");
        let added = json!([{"name": "debug", "image": "busybox"}, {"name": "two", "image": "x"}]);
        assert!(validate_update(&pod(added), &old).is_empty());
    }

    #[test]
    fn new_ephemeral_containers_are_checked() {
        let bad = pod(json!([
            {"name": "app", "image": "busybox"},
            {"name": "x", "ports": [{"containerPort": 80}], "resources": {}}
        ]));
        let fields: Vec<String> =
            validate_update(&bad, &pod(json!([]))).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "spec.ephemeralContainers[0].name",
                "spec.ephemeralContainers[1].image",
                "spec.ephemeralContainers[1].ports"
            ]
        );
    }
}
