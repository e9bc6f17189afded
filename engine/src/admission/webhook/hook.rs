//! One admission webhook of a Mutating/ValidatingWebhookConfiguration, compiled once
//! when the configuration is seen: its rules, policies, selectors (parsed), match
//! conditions (CEL, compiled), timeout and where it is.
//!
//! Invariants: built from whatever the cache holds without panicking; a selector or a
//! condition that does not compile is kept as its error and reported when the webhook
//! would be consulted (upstream refuses such configurations at write time); defaults
//! are upstream's v1 defaults (failurePolicy Fail, matchPolicy Equivalent,
//! timeoutSeconds 10, reinvocationPolicy Never, empty selectors match everything).

use kapi_codec::cel::Condition;
use kapi_codec::pointer::Pointer as _;
use kapi_codec::selector::LabelSelector;
use kapi_codec::webhook_conversion::{Endpoint, client_config};
use serde_json::Value;
use std::time::Duration;

/// Upstream's default `timeoutSeconds`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most `timeoutSeconds` may say (upstream validates 1..=30).
const MAX_TIMEOUT_SECONDS: u64 = 30;
/// The variables a match condition may name (`authorizer` is not offered by kapi).
pub const CONDITION_VARS: &[&str] = &["object", "oldObject", "request"];

/// One `rules[]` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rule {
    pub operations: Vec<String>,
    pub groups: Vec<String>,
    pub versions: Vec<String>,
    pub resources: Vec<String>,
    /// `Cluster`, `Namespaced`, `*` (None: `*`).
    pub scope: Option<String>,
}

/// One compiled `matchConditions[]` entry.
#[derive(Debug)]
pub struct MatchCondition {
    pub name: String,
    pub expression: String,
    pub compiled: Result<Condition, String>,
}

/// One admission webhook.
#[derive(Debug)]
pub struct Hook {
    pub name: String,
    /// The configuration it belongs to.
    pub configuration: String,
    /// `CONFIGURATION/NAME/N` (N counts repeated names), upstream's accessor uid.
    pub uid: String,
    /// None: the configuration has no usable `clientConfig` (every call fails).
    pub endpoint: Option<Endpoint>,
    pub ca_bundle: Vec<u8>,
    pub rules: Vec<Rule>,
    /// failurePolicy `Ignore` (default `Fail`).
    pub ignore_failures: bool,
    /// matchPolicy `Exact` (default `Equivalent`).
    pub exact: bool,
    pub namespace_selector: Result<LabelSelector, String>,
    pub object_selector: Result<LabelSelector, String>,
    /// `sideEffects` (None when unset).
    pub side_effects: Option<String>,
    pub timeout: Duration,
    pub review_versions: Vec<String>,
    /// reinvocationPolicy `IfNeeded` (mutating webhooks).
    pub reinvoke_if_needed: bool,
    pub conditions: Vec<MatchCondition>,
}

impl Hook {
    /// Every webhook of one configuration object, in its list order.
    pub fn all_of(config: &Value) -> Vec<Hook> {
        let configuration = text(config.at("/metadata/name")).to_string();
        let mut seen: Vec<&str> = Vec::new();
        let hooks = config.get("webhooks").and_then(Value::as_array);
        hooks
            .into_iter()
            .flatten()
            .map(|w| {
                let name = text(w.get("name"));
                let n = seen.iter().filter(|s| **s == name).count();
                seen.push(name);
                Hook::of(w, &configuration, n)
            })
            .collect()
    }

    fn of(w: &Value, configuration: &str, n: usize) -> Hook {
        let name = text(w.get("name")).to_string();
        let (endpoint, ca_bundle) = match w.get("clientConfig").and_then(client_config) {
            Some((e, ca)) => (Some(e), ca),
            None => (None, Vec::new()),
        };
        let timeout = w
            .get("timeoutSeconds")
            .and_then(Value::as_u64)
            .filter(|s| (1..=MAX_TIMEOUT_SECONDS).contains(s))
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
        Hook {
            uid: format!("{configuration}/{name}/{n}"),
            configuration: configuration.to_string(),
            endpoint,
            ca_bundle,
            rules: w
                .get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(rule)
                .collect(),
            ignore_failures: text(w.get("failurePolicy")) == "Ignore",
            exact: text(w.get("matchPolicy")) == "Exact",
            namespace_selector: selector(w.get("namespaceSelector")),
            object_selector: selector(w.get("objectSelector")),
            side_effects: w.get("sideEffects").and_then(Value::as_str).map(String::from),
            timeout,
            review_versions: strings(w.get("admissionReviewVersions")),
            reinvoke_if_needed: text(w.get("reinvocationPolicy")) == "IfNeeded",
            conditions: conditions(w.get("matchConditions")),
            name,
        }
    }

    /// Whether the webhook may be called for a dry run (`sideEffects` None or
    /// NoneOnDryRun).
    pub fn dry_run_safe(&self) -> bool {
        matches!(self.side_effects.as_deref(), Some("None" | "NoneOnDryRun"))
    }
}

fn text(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(String::from)
        .collect()
}

fn rule(r: &Value) -> Rule {
    Rule {
        operations: strings(r.get("operations")),
        groups: strings(r.get("apiGroups")),
        versions: strings(r.get("apiVersions")),
        resources: strings(r.get("resources")),
        scope: r.get("scope").and_then(Value::as_str).map(String::from),
    }
}

fn selector(v: Option<&Value>) -> Result<LabelSelector, String> {
    match v {
        None | Some(Value::Null) => Ok(LabelSelector::default()),
        Some(s) => LabelSelector::from_object(s).map_err(|e| e.to_string()),
    }
}

fn conditions(v: Option<&Value>) -> Vec<MatchCondition> {
    let list = v.and_then(Value::as_array);
    list.into_iter()
        .flatten()
        .map(|c| {
            let expression = text(c.get("expression")).to_string();
            MatchCondition {
                name: text(c.get("name")).to_string(),
                compiled: Condition::compile(&expression, CONDITION_VARS)
                    .map_err(|e| format!("compilation failed: {e}")),
                expression,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_configuration_compiles_with_upstreams_defaults() {
        let config = json!({"metadata": {"name": "cfg"}, "webhooks": [
            {"name": "a.example.com", "clientConfig": {"url": "https://h:1/x"},
             "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                        "resources": ["configmaps"]}],
             "sideEffects": "None", "admissionReviewVersions": ["v1"]},
            {"name": "a.example.com", "clientConfig": {"service": {"namespace": "n", "name": "s"}},
             "failurePolicy": "Ignore", "matchPolicy": "Exact", "timeoutSeconds": 3,
             "reinvocationPolicy": "IfNeeded", "sideEffects": "Unknown",
             "objectSelector": {"matchExpressions": [{"key": "k", "operator": "Bogus"}]},
             "matchConditions": [{"name": "c", "expression": "object.x == 1"},
                                 {"name": "bad", "expression": "nope"}]},
        ]});
        let hooks = Hook::all_of(&config);
        assert_eq!(hooks.len(), 2);
        let (a, b) = (&hooks[0], &hooks[1]);
        assert_eq!(
            (a.uid.as_str(), b.uid.as_str()),
            ("cfg/a.example.com/0", "cfg/a.example.com/1")
        );
        assert!(!a.ignore_failures && !a.exact && !a.reinvoke_if_needed && a.dry_run_safe());
        assert_eq!(a.timeout, DEFAULT_TIMEOUT);
        assert_eq!(a.rules[0].resources, vec!["configmaps"]);
        assert!(b.ignore_failures && b.exact && b.reinvoke_if_needed && !b.dry_run_safe());
        assert_eq!(b.timeout, Duration::from_secs(3));
        assert!(b.object_selector.is_err());
        assert!(b.conditions[0].compiled.is_ok());
        let bad = b.conditions[1].compiled.as_ref().unwrap_err();
        assert!(
            bad.starts_with("compilation failed: ERROR: <input>:1:1: undeclared reference"),
            "{bad}"
        );
        match &b.endpoint {
            Some(Endpoint::Service(s)) => assert_eq!((s.path.as_str(), s.port), ("/", 443)),
            other => panic!("{other:?}"),
        }
    }
}
