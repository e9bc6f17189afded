//! A MutatingAdmissionPolicy compiled once from its JSON
//! (`admissionregistration.k8s.io/v1beta1`): what it shares with a validating policy
//! (paramKind, matchConstraints, failurePolicy, variables, matchConditions: compiled by
//! the validating policy's own code), its mutations with object construction and the
//! `authorizer` library declared (the validating policy's compile, `compile_as`), and
//! its reinvocationPolicy. Bindings are the validating ones' (`policyName`,
//! `paramRef`, `matchResources`; no actions).
//!
//! Invariants: nothing here fails on input; a compile error or an unknown patchType is
//! kept with its mutation and reported (under the failure policy) when the policy runs;
//! at most [`MAX_ITEMS`] mutations.

use super::super::compile::{Compiled, MAX_ITEMS, Policy, VARS, compile_as};
use super::super::source::policy_kind;
use serde_json::Value;

/// How a mutation's result changes the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// An `Object{...}` merged in as server-side apply merges.
    ApplyConfiguration,
    /// A list of `JSONPatch{...}` operations.
    JsonPatch,
}

/// One `mutations[]` entry.
#[derive(Debug)]
pub struct Mutation {
    /// The patch type, or upstream's error text for an unknown one.
    pub patch_type: Result<PatchType, String>,
    pub expression: String,
    pub compiled: Compiled,
}

/// One mutating policy.
#[derive(Debug)]
pub struct MutatingPolicy {
    /// Name, paramKind, matchConstraints, failurePolicy, variables, matchConditions.
    pub base: Policy,
    pub mutations: Vec<Mutation>,
    /// reinvocationPolicy `IfNeeded` (default `Never`).
    pub reinvoke_if_needed: bool,
}

impl MutatingPolicy {
    pub fn of(obj: &Value) -> MutatingPolicy {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let list = spec.get("mutations").and_then(Value::as_array);
        MutatingPolicy {
            base: Policy::of(obj),
            mutations: list.into_iter().flatten().take(MAX_ITEMS).map(mutation).collect(),
            reinvoke_if_needed: spec.get("reinvocationPolicy").and_then(Value::as_str)
                == Some("IfNeeded"),
        }
    }
}

fn mutation(m: &Value) -> Mutation {
    let patch_type = match m.get("patchType").and_then(Value::as_str).unwrap_or("") {
        "ApplyConfiguration" => Ok(PatchType::ApplyConfiguration),
        "JSONPatch" => Ok(PatchType::JsonPatch),
        other => Err(format!("unsupported patch type: {other:?}")),
    };
    let field = match patch_type {
        Ok(PatchType::JsonPatch) => "jsonPatch",
        _ => "applyConfiguration",
    };
    let expression =
        m.pointer(&format!("/{field}/expression")).and_then(Value::as_str).unwrap_or("");
    Mutation {
        patch_type,
        compiled: compile_as(expression, VARS, true),
        expression: expression.to_string(),
    }
}

policy_kind!(
    /// MutatingAdmissionPolicies and their bindings, as the policy source compiles them.
    Mutating,
    MutatingPolicy,
    base.name,
    "v1beta1",
    "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings"
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mutations_compile_with_construction_and_keep_their_errors() {
        let p = MutatingPolicy::of(&json!({"metadata": {"name": "p"}, "spec": {
        "failurePolicy": "Ignore", "reinvocationPolicy": "IfNeeded",
        "variables": [{"name": "v", "expression": "1"}],
        "mutations": [
            {"patchType": "ApplyConfiguration",
             "applyConfiguration": {"expression": "Object{spec: Object.spec{replicas: 1}}"}},
            {"patchType": "JSONPatch", "jsonPatch": {"expression": "[JSONPatch{op: 'remove', path: '/x'}]"}},
            {"patchType": "Other", "applyConfiguration": {"expression": "Object{}"}},
            {"patchType": "JSONPatch", "jsonPatch": {"expression": "nope"}},
        ]}}));
        assert_eq!(p.base.name, "p");
        assert!(p.base.ignore_failures && p.reinvoke_if_needed);
        assert_eq!(p.base.variables.len(), 1);
        let m = &p.mutations;
        assert_eq!(m[0].patch_type, Ok(PatchType::ApplyConfiguration));
        assert!(m[0].compiled.is_ok() && m[1].compiled.is_ok());
        assert_eq!(m[1].patch_type, Ok(PatchType::JsonPatch));
        assert_eq!(m[2].patch_type, Err("unsupported patch type: \"Other\"".into()));
        assert!(m[3].compiled.as_ref().unwrap_err().contains("undeclared reference to 'nope'"));
    }

    #[test]
    fn mutations_may_ask_the_authorizer() {
        let p = MutatingPolicy::of(&json!({"metadata": {"name": "p"}, "spec": {"mutations": [
            {"patchType": "ApplyConfiguration", "applyConfiguration": {"expression":
                "Object{metadata: Object.metadata{labels: {'may': string(authorizer.path('/x').check('get').allowed())}}}"}}]}}));
        assert!(p.mutations[0].compiled.is_ok(), "{:?}", p.mutations[0].compiled);
    }
}
