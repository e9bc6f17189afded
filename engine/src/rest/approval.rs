//! `certificatesigningrequests/approval` writes as upstream's approval strategy: the
//! write keeps the current spec and status and takes only the client's
//! `status.conditions` (Approved, Denied and the like), with their timestamps filled in
//! (`lastUpdateTime` now; `lastTransitionTime` carried over from the same condition, or
//! now) and upstream's condition rules checked.

use kapi_codec::FieldError;
use serde_json::{Map, Value, json};

const PATH: &str = "status.conditions";

/// Conditions that may only be True.
const TRUE_ONLY: [&str; 3] = ["Approved", "Denied", "Failed"];

/// The CSR the write produces at `now` (RFC 3339): the client's object with the current
/// spec and status, but the client's conditions.
pub fn select(new: &Value, current: &Value, now: &str) -> Value {
    let mut conditions = new.pointer("/status/conditions").cloned().unwrap_or(Value::Null);
    let old = current.pointer("/status/conditions").and_then(Value::as_array);
    for c in conditions.as_array_mut().into_iter().flatten() {
        if let Some(c) = c.as_object_mut() {
            stamp(c, old.map_or(&[], Vec::as_slice), now);
        }
    }
    let mut out = new.clone();
    let Some(o) = out.as_object_mut() else { return out };
    for part in ["spec", "status"] {
        match current.get(part) {
            Some(v) => o.insert(part.into(), v.clone()),
            None => o.shift_remove(part),
        };
    }
    if !conditions.is_null() {
        let status = o.entry("status").or_insert_with(|| json!({}));
        if let Some(s) = status.as_object_mut() {
            s.insert("conditions".into(), conditions);
        }
    } else if let Some(s) = o.get_mut("status").and_then(Value::as_object_mut) {
        s.shift_remove("conditions");
    }
    out
}

/// Upstream's defaults and timestamps of one condition.
fn stamp(c: &mut Map<String, Value>, old: &[Value], now: &str) {
    if c.get("status").and_then(Value::as_str).is_none_or(str::is_empty) {
        c.insert("status".into(), json!("True"));
    }
    if c.get("lastUpdateTime").is_none_or(Value::is_null) {
        c.insert("lastUpdateTime".into(), json!(now));
    }
    if c.get("lastTransitionTime").is_none_or(Value::is_null) {
        let same = old.iter().find(|o| {
            o.get("type") == c.get("type")
                && o.get("status") == c.get("status")
                && o.get("lastTransitionTime").is_some_and(|t| !t.is_null())
        });
        let at = same.and_then(|o| o.get("lastTransitionTime")).cloned();
        c.insert("lastTransitionTime".into(), at.unwrap_or_else(|| json!(now)));
    }
}

fn conditions(csr: &Value) -> &[Value] {
    csr.pointer("/status/conditions").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn type_of(c: &Value) -> &str {
    c.get("type").and_then(Value::as_str).unwrap_or("")
}

/// Upstream's approval-update rules of the conditions, `new` against `old`.
pub fn validate_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errors = validate_conditions(new, old);
    for t in TRUE_ONLY {
        let count = |csr: &Value| conditions(csr).iter().filter(|c| type_of(c) == t).count();
        if count(new) < count(old) {
            let why = format!("updates may not remove a condition of type {t:?}");
            errors.push(FieldError::forbidden(PATH, &why));
        }
    }
    errors
}

fn validate_conditions(new: &Value, old: &Value) -> Vec<FieldError> {
    let old_types: Vec<&str> = conditions(old).iter().map(type_of).collect();
    let tolerate_both = old_types.contains(&"Approved") && old_types.contains(&"Denied");
    let tolerate_dups = old_types.iter().enumerate().any(|(i, t)| old_types[..i].contains(t));
    let (mut errors, mut seen) = (Vec::new(), Vec::new());
    for (i, c) in conditions(new).iter().enumerate() {
        let (at, t) = (format!("{PATH}[{i}]"), type_of(c));
        if t.is_empty() && !old_types.contains(&"") {
            errors.push(FieldError::required(format!("{at}.type"), ""));
        }
        let allowed: &[&str] =
            if TRUE_ONLY.contains(&t) { &["True"] } else { &["False", "True", "Unknown"] };
        match c.get("status").and_then(Value::as_str).unwrap_or("") {
            "" => errors.push(FieldError::required(format!("{at}.status"), "")),
            s if !allowed.contains(&s) => {
                errors.push(FieldError::not_supported(format!("{at}.status"), &json!(s), allowed));
            }
            _ => {}
        }
        let other = match t {
            "Approved" => Some("Denied"),
            "Denied" => Some("Approved"),
            _ => None,
        };
        if !tolerate_both && other.is_some_and(|o| seen.contains(&o)) {
            let why = "Approved and Denied conditions are mutually exclusive";
            errors.push(FieldError::invalid(format!("{at}.type"), &json!(t), why));
        }
        if !tolerate_dups && seen.contains(&t) {
            errors.push(FieldError::duplicate(format!("{at}.type"), &json!(t)));
        }
        seen.push(t);
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn csr(conditions: Value) -> Value {
        json!({"metadata": {"name": "c"}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client"},
            "status": {"conditions": conditions}})
    }

    #[test]
    fn only_conditions_change_and_get_timestamps() {
        let current = csr(json!([]));
        let mut sent = csr(json!([{"type": "Approved", "reason": "KubectlApprove"}]));
        sent["spec"]["signerName"] = json!("other");
        sent["status"]["certificate"] = json!("Zm9v");
        let out = select(&sent, &current, NOW);
        assert_eq!(out["spec"]["signerName"], "kubernetes.io/kube-apiserver-client");
        assert!(out["status"].get("certificate").is_none());
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Approved", "reason": "KubectlApprove", "status": "True",
                "lastUpdateTime": NOW, "lastTransitionTime": NOW}])
        );
    }

    #[test]
    fn condition_rules_are_upstreams() {
        let both = csr(
            json!([{"type": "Approved", "status": "True"}, {"type": "Denied", "status": "True"}]),
        );
        let errors = validate_update(&both, &csr(json!([])));
        assert_eq!(
            errors[0].message,
            "status.conditions[1].type: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive"
        );
        let false_approval = csr(json!([{"type": "Approved", "status": "False"}]));
        assert_eq!(
            validate_update(&false_approval, &csr(json!([])))[0].field,
            "status.conditions[0].status"
        );
        let approved = csr(json!([{"type": "Approved", "status": "True"}]));
        let removed = validate_update(&csr(json!([])), &approved);
        assert_eq!(
            removed[0].message,
            "status.conditions: Forbidden: updates may not remove a condition of type \"Approved\""
        );
        assert!(validate_update(&approved, &csr(json!([]))).is_empty());
    }
}
