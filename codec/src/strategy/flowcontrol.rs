//! API Priority and Fairness objects (flowcontrol.apiserver.k8s.io/v1): upstream's
//! defaults and validation of FlowSchemas and PriorityLevelConfigurations, messages
//! included.
//!
//! Defaults: a FlowSchema's `matchingPrecedence` 1000; a Limited level's
//! `nominalConcurrencyShares` 30 and `lendablePercent` 0; queuing's `queues` 64,
//! `handSize` 8 and `queueLengthLimit` 50; an Exempt level's shares and lendable 0.
//!
//! Invariants: the mandatory objects' specs are fixed (`exempt` and `catch-all` of both
//! kinds; only `spec.exempt` of the `exempt` level may change), compared as upstream's
//! semantic equality does (a missing field equals its zero value); a value shown in a
//! message of a whole spec is its JSON (upstream prints Go structs there).

use super::Strategy;
use super::util::{default, obj_at};
use crate::error::FieldError;
use crate::semantic::zeroless;
use crate::validation::{dns1123_label_errors, dns1123_subdomain_errors};
use serde_json::{Value, json};
use std::collections::HashSet;

const EXEMPT: &str = "exempt";
const CATCH_ALL: &str = "catch-all";
const MAX_PRECEDENCE: i64 = 10_000;
const MAX_QUEUES: i64 = 10_000_000;
/// Upstream's shuffle sharding `MaxHashBits`.
const MAX_HASH_BITS: f64 = 60.0;
const VERBS: &[&str] =
    &["create", "delete", "deletecollection", "get", "list", "patch", "proxy", "update", "watch"];

fn int(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn list<'a>(v: &'a Value, key: &str) -> Vec<&'a str> {
    v.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect()
}

fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn present(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).is_some_and(|x| !x.is_null())
}

/// The fixed specs of the mandatory objects (upstream's bootstrap configuration).
fn mandatory_schema(name: &str) -> Option<Value> {
    let everything = |subjects: Value| {
        json!([{"subjects": subjects,
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                "clusterScope": true, "namespaces": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}])
    };
    let group = |n: &str| json!({"kind": "Group", "group": {"name": n}});
    match name {
        EXEMPT => Some(json!({"matchingPrecedence": 1,
            "priorityLevelConfiguration": {"name": EXEMPT},
            "rules": everything(json!([group("system:masters")]))})),
        CATCH_ALL => Some(json!({"matchingPrecedence": 10000,
            "priorityLevelConfiguration": {"name": CATCH_ALL},
            "distinguisherMethod": {"type": "ByUser"},
            "rules": everything(json!([group("system:unauthenticated"),
                group("system:authenticated")]))})),
        _ => None,
    }
}

fn mandatory_level(name: &str) -> Option<Value> {
    match name {
        EXEMPT => Some(json!({"type": "Exempt",
            "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}})),
        CATCH_ALL => Some(json!({"type": "Limited", "limited": {"nominalConcurrencyShares": 5,
            "lendablePercent": 0, "limitResponse": {"type": "Reject"}}})),
        _ => None,
    }
}

/// FlowSchemas.
#[derive(Debug)]
pub struct FlowSchemas;

impl Strategy for FlowSchemas {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut)
            && spec.get("matchingPrecedence").and_then(Value::as_i64).unwrap_or(0) == 0
        {
            spec.insert("matchingPrecedence".into(), json!(1000));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let name = text(obj, "/metadata/name");
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let mut out = schema_spec(name, spec);
        if let Some(fixed) = mandatory_schema(name)
            && zeroless(spec) != zeroless(&fixed)
        {
            let msg = format!("spec of '{name}' must equal the fixed value");
            out.push(FieldError::invalid("spec", spec, &msg));
        }
        out.extend(conditions(obj));
        out
    }
}

fn schema_spec(name: &str, spec: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    let precedence = int(spec, "/matchingPrecedence").unwrap_or(0);
    let at = "spec.matchingPrecedence";
    if precedence <= 0 {
        out.push(FieldError::invalid(at, &json!(precedence), "must be a positive value"));
    }
    if precedence > MAX_PRECEDENCE {
        let msg = format!("must not be greater than {MAX_PRECEDENCE}");
        out.push(FieldError::invalid(at, &json!(precedence), &msg));
    }
    if precedence == 1 && name != EXEMPT {
        let msg = "only the schema named 'exempt' may have matchingPrecedence 1";
        out.push(FieldError::invalid(at, &json!(precedence), msg));
    }
    if present(spec, "/distinguisherMethod") {
        let by = text(spec, "/distinguisherMethod/type");
        if !matches!(by, "ByNamespace" | "ByUser") {
            let at = "spec.distinguisherMethod.type";
            out.push(FieldError::not_supported(at, &json!(by), &["ByNamespace", "ByUser"]));
        }
    }
    let level = text(spec, "/priorityLevelConfiguration/name");
    let at = "spec.priorityLevelConfiguration.name";
    if level.is_empty() {
        out.push(FieldError::required(at, "must reference a priority level"));
    }
    for msg in if level.is_empty() { vec![] } else { dns1123_subdomain_errors(level) } {
        out.push(FieldError::invalid(at, &json!(level), &msg));
    }
    for (i, rule) in items(spec, "rules").iter().enumerate() {
        out.extend(policy_rules(rule, &format!("spec.rules[{i}]")));
    }
    out
}

fn policy_rules(rule: &Value, at: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    let subjects = items(rule, "subjects");
    if subjects.is_empty() {
        let msg = "subjects must contain at least one value";
        out.push(FieldError::required(format!("{at}.subjects"), msg));
    }
    for (i, s) in subjects.iter().enumerate() {
        out.extend(subject(s, &format!("{at}.subjects[{i}]")));
    }
    let (resource, non_resource) = (items(rule, "resourceRules"), items(rule, "nonResourceRules"));
    if resource.is_empty() && non_resource.is_empty() {
        let msg = "at least one of resourceRules and nonResourceRules has to be non-empty";
        out.push(FieldError::required(at, msg));
    }
    for (i, r) in resource.iter().enumerate() {
        out.extend(resource_rule(r, &format!("{at}.resourceRules[{i}]")));
    }
    for (i, r) in non_resource.iter().enumerate() {
        out.extend(non_resource_rule(r, &format!("{at}.nonResourceRules[{i}]")));
    }
    out
}

fn subject(s: &Value, at: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    let kind = text(s, "/kind");
    let fields = [("ServiceAccount", "serviceAccount"), ("User", "user"), ("Group", "group")];
    let Some((_, own)) = fields.iter().find(|(k, _)| *k == kind) else {
        let valid = ["Group", "ServiceAccount", "User"];
        out.push(FieldError::not_supported(format!("{at}.kind"), &json!(kind), &valid));
        return out;
    };
    match s.get(*own).filter(|v| !v.is_null()) {
        None => {
            let msg = format!("{own} is required when subject kind is '{kind}'");
            out.push(FieldError::required(format!("{at}.{own}"), &msg));
        }
        Some(v) if *own == "serviceAccount" => {
            out.extend(service_account(v, &format!("{at}.{own}")))
        }
        Some(v) if text(v, "/name").is_empty() => {
            out.push(FieldError::required(format!("{at}.{own}.name"), ""));
        }
        Some(_) => {}
    }
    for (other_kind, other) in fields {
        if other != *own && present(s, &format!("/{other}")) {
            let msg = format!("{other} is forbidden when subject kind is not '{other_kind}'");
            out.push(FieldError::forbidden(format!("{at}.{other}"), &msg));
        }
    }
    out
}

fn service_account(sa: &Value, at: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    let name = text(sa, "/name");
    if name.is_empty() {
        out.push(FieldError::required(format!("{at}.name"), ""));
    } else if name != "*" {
        for msg in dns1123_subdomain_errors(name) {
            out.push(FieldError::invalid(format!("{at}.name"), &json!(name), &msg));
        }
    }
    let ns = text(sa, "/namespace");
    if ns.is_empty() {
        let msg = "must specify namespace for service account";
        out.push(FieldError::required(format!("{at}.namespace"), msg));
    }
    for msg in if ns.is_empty() { vec![] } else { dns1123_label_errors(ns) } {
        out.push(FieldError::invalid(format!("{at}.namespace"), &json!(ns), &msg));
    }
    out
}

/// `verbs`: present, `*` alone, or upstream's verbs.
fn verbs(rule: &Value, at: &str, out: &mut Vec<FieldError>) {
    let verbs = list(rule, "verbs");
    let at = format!("{at}.verbs");
    if verbs.is_empty() {
        out.push(FieldError::required(at, "verbs must contain at least one value"));
    } else if verbs.contains(&"*") {
        if verbs.len() > 1 {
            let msg = "if '*' is present, must not specify other verbs";
            out.push(FieldError::invalid(at, &json!(verbs), msg));
        }
    } else if !verbs.iter().all(|v| VERBS.contains(v)) {
        out.push(FieldError::not_supported(at, &json!(verbs), VERBS));
    }
}

fn resource_rule(rule: &Value, at: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    verbs(rule, at, &mut out);
    let lists = [("apiGroups", "api group", "api groups"), ("resources", "resource", "resources")];
    for (key, one, many) in lists {
        let values = list(rule, key);
        let field = format!("{at}.{key}");
        if values.is_empty() {
            let msg = format!("resource rules must supply at least one {one}");
            out.push(FieldError::required(field, &msg));
        } else if values.len() > 1 && values.contains(&"*") {
            let msg = format!("if '*' is present, must not specify other {many}");
            out.push(FieldError::invalid(field, &json!(values), &msg));
        }
    }
    let namespaces = list(rule, "namespaces");
    let cluster = rule.get("clusterScope").and_then(Value::as_bool).unwrap_or(false);
    let field = format!("{at}.namespaces");
    if namespaces.is_empty() && !cluster {
        let msg = "resource rules that are not cluster scoped must supply at least one namespace";
        out.push(FieldError::required(field, msg));
    } else if namespaces.contains(&"*") {
        if namespaces.len() > 1 {
            let msg = "if '*' is present, must not specify other namespaces";
            out.push(FieldError::invalid(field, &json!(namespaces), msg));
        }
    } else {
        for (i, ns) in namespaces.iter().enumerate() {
            for msg in dns1123_label_errors(ns) {
                let msg =
                    format!("each member of this list must be '*' or a DNS-1123 label; {msg}");
                out.push(FieldError::invalid(format!("{field}[{i}]"), &json!(ns), &msg));
            }
        }
    }
    out
}

fn non_resource_rule(rule: &Value, at: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    verbs(rule, at, &mut out);
    let urls = list(rule, "nonResourceURLs");
    let field = format!("{at}.nonResourceURLs");
    if urls.is_empty() {
        let msg = "nonResourceURLs must contain at least one value";
        out.push(FieldError::required(field, msg));
    } else if urls.contains(&"*") {
        if urls.len() > 1 {
            let msg = "if '*' is present, must not specify other non-resource URLs";
            out.push(FieldError::invalid(field, &json!(urls), msg));
        }
    } else {
        for (i, url) in urls.iter().enumerate() {
            if let Some(msg) = url_error(url) {
                out.push(FieldError::invalid(format!("{field}[{i}]"), &json!(url), msg));
            }
        }
    }
    out
}

/// Upstream's `ValidateNonResourceURLPath`.
fn url_error(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("must not be empty");
    }
    if path == "/" {
        return None;
    }
    if !path.starts_with('/') {
        return Some("must start with slash");
    }
    if path.contains(' ') {
        return Some("must not contain white-space");
    }
    if path.contains("//") {
        return Some("must not contain double slash");
    }
    let stars = path.matches('*').count();
    (stars > 1 || (stars == 1 && !path.ends_with("/*")))
        .then_some("wildcard can only do suffix matching")
}

/// `status.conditions`: types present and not repeated.
fn conditions(obj: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let status = obj.get("status").unwrap_or(&Value::Null);
    for (i, c) in items(status, "conditions").iter().enumerate() {
        let kind = text(c, "/type");
        if !seen.insert(kind) {
            out.push(FieldError::duplicate(format!("status.conditions[{i}].type"), &json!(kind)));
        }
        if kind.is_empty() {
            out.push(FieldError::required(
                format!("status.conditions[{i}].type"),
                "must not be empty",
            ));
        }
    }
    out
}

/// PriorityLevelConfigurations.
#[derive(Debug)]
pub struct PriorityLevels;

impl Strategy for PriorityLevels {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        if present(obj, "/spec/limited") {
            let Some(limited) = obj_at(obj, &["spec", "limited"]) else { return };
            default(limited, "nominalConcurrencyShares", json!(30));
            default(limited, "lendablePercent", json!(0));
            if let Some(q) = limited.get_mut("limitResponse").and_then(|r| r.get_mut("queuing"))
                && let Some(q) = q.as_object_mut()
            {
                for (key, value) in [("queues", 64), ("handSize", 8), ("queueLengthLimit", 50)] {
                    if q.get(key).and_then(Value::as_i64).unwrap_or(0) == 0 {
                        q.insert(key.into(), json!(value));
                    }
                }
            }
        }
        if present(obj, "/spec/exempt") {
            let Some(exempt) = obj_at(obj, &["spec", "exempt"]) else { return };
            default(exempt, "nominalConcurrencyShares", json!(0));
            default(exempt, "lendablePercent", json!(0));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let name = text(obj, "/metadata/name");
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let mut out = level_spec(name, spec);
        out.extend(mandatory_level_errors(name, spec));
        out.extend(conditions(obj));
        out
    }
}

fn level_spec(name: &str, spec: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    let kind = text(spec, "/type");
    if (name == EXEMPT) != (kind == "Exempt") {
        let msg = "type must be 'Exempt' if and only if name is 'exempt'";
        out.push(FieldError::invalid("spec.type", &json!(kind), msg));
    }
    match kind {
        "Exempt" => {
            if present(spec, "/limited") {
                let msg = "must be nil if the type is not Limited";
                out.push(FieldError::forbidden("spec.limited", msg));
            }
            if let Some(e) = spec.get("exempt").filter(|v| !v.is_null()) {
                out.extend(shares_and_lendable(e, "spec.exempt"));
            }
        }
        "Limited" => {
            if present(spec, "/exempt") {
                out.push(FieldError::forbidden(
                    "spec.exempt",
                    "must be nil if the type is Limited",
                ));
            }
            match spec.get("limited").filter(|v| !v.is_null()) {
                None => {
                    let msg = "must not be empty when type is Limited";
                    out.push(FieldError::required("spec.limited", msg));
                }
                Some(l) => out.extend(limited(l)),
            }
        }
        _ => out.push(FieldError::not_supported("spec.type", &json!(kind), &["Exempt", "Limited"])),
    }
    out
}

/// `nominalConcurrencyShares` not negative, `lendablePercent` within 0..=100.
fn shares_and_lendable(v: &Value, at: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    if let Some(n) = int(v, "/nominalConcurrencyShares").filter(|n| *n < 0) {
        let field = format!("{at}.nominalConcurrencyShares");
        out.push(FieldError::invalid(field, &json!(n), "must be a non-negative integer"));
    }
    if let Some(p) = int(v, "/lendablePercent").filter(|p| !(0..=100).contains(p)) {
        let field = format!("{at}.lendablePercent");
        out.push(FieldError::invalid(field, &json!(p), "must be between 0 and 100, inclusive"));
    }
    out
}

fn limited(l: &Value) -> Vec<FieldError> {
    let at = "spec.limited";
    let mut out = Vec::new();
    if let Some(n) = int(l, "/nominalConcurrencyShares").filter(|n| *n < 0) {
        let field = format!("{at}.nominalConcurrencyShares");
        out.push(FieldError::invalid(field, &json!(n), "must be a non-negative integer"));
    }
    out.extend(limit_response(l.get("limitResponse").unwrap_or(&Value::Null)));
    if let Some(p) = int(l, "/lendablePercent").filter(|p| !(0..=100).contains(p)) {
        let field = format!("{at}.lendablePercent");
        out.push(FieldError::invalid(field, &json!(p), "must be between 0 and 100, inclusive"));
    }
    if let Some(p) = int(l, "/borrowingLimitPercent").filter(|p| *p < 0) {
        let msg = "if specified, must be a non-negative integer";
        out.push(FieldError::invalid(format!("{at}.borrowingLimitPercent"), &json!(p), msg));
    }
    out
}

fn limit_response(r: &Value) -> Vec<FieldError> {
    let at = "spec.limited.limitResponse";
    let mut out = Vec::new();
    let kind = text(r, "/type");
    match kind {
        "Reject" => {
            if present(r, "/queuing") {
                let msg = "must be nil if limited.limitResponse.type is not Limited";
                out.push(FieldError::forbidden(format!("{at}.queuing"), msg));
            }
        }
        "Queue" => match r.get("queuing").filter(|v| !v.is_null()) {
            None => {
                let msg = "must not be empty if limited.limitResponse.type is Limited";
                out.push(FieldError::required(format!("{at}.queuing"), msg));
            }
            Some(q) => out.extend(queuing(q, &format!("{at}.queuing"))),
        },
        _ => {
            let field = format!("{at}.type");
            out.push(FieldError::not_supported(field, &json!(kind), &["Queue", "Reject"]));
        }
    }
    out
}

fn queuing(q: &Value, at: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    let get = |k: &str| int(q, &format!("/{k}")).unwrap_or(0);
    let (limit, queues, hand) = (get("queueLengthLimit"), get("queues"), get("handSize"));
    if limit <= 0 {
        out.push(FieldError::invalid(
            format!("{at}.queueLengthLimit"),
            &json!(limit),
            "must be positive",
        ));
    }
    if queues <= 0 {
        out.push(FieldError::invalid(format!("{at}.queues"), &json!(queues), "must be positive"));
    } else if queues > MAX_QUEUES {
        let msg = format!("must not be greater than {MAX_QUEUES}");
        out.push(FieldError::invalid(format!("{at}.queues"), &json!(queues), &msg));
    }
    let field = format!("{at}.handSize");
    if hand <= 0 {
        out.push(FieldError::invalid(field, &json!(hand), "must be positive"));
    } else if hand > queues {
        let msg = format!("should not be greater than queues ({queues})");
        out.push(FieldError::invalid(field, &json!(hand), &msg));
    } else if ((queues as f64).log2() * hand as f64).ceil() > MAX_HASH_BITS {
        let msg = format!(
            "required entropy bits of deckSize {queues} and handSize {hand} should not be greater than 60"
        );
        out.push(FieldError::invalid(field, &json!(hand), &msg));
    }
    out
}

/// The mandatory levels' fixed specs (`exempt`: all but `spec.exempt`).
fn mandatory_level_errors(name: &str, spec: &Value) -> Vec<FieldError> {
    let Some(mut fixed) = mandatory_level(name) else { return Vec::new() };
    let mut have = spec.clone();
    let msg = if name == EXEMPT {
        if let Some(m) = have.as_object_mut() {
            m.remove("exempt");
        }
        if let Some(m) = fixed.as_object_mut() {
            m.remove("exempt");
        }
        format!("spec of '{name}' except the 'spec.exempt' field must equal the fixed value")
    } else {
        format!("spec of '{name}' must equal the fixed value")
    };
    if zeroless(&have) == zeroless(&fixed) {
        return Vec::new();
    }
    vec![FieldError::invalid("spec", spec, &msg)]
}

#[cfg(test)]
#[path = "flowcontrol_tests.rs"]
mod tests;
