//! MutatingAdmissionPolicy and MutatingAdmissionPolicyBinding
//! (`admissionregistration.k8s.io/v1beta1`): upstream's defaults and validation. What a
//! mutating policy shares with a validating one (failurePolicy defaulted to `Fail`,
//! paramKind, matchConstraints, matchConditions, variables; a binding's policyName,
//! paramRef and matchResources) is checked by the validating policy's code
//! (`admission`); here the mutations: a supported `patchType`, its expression set, and
//! compiled with object construction and the `authorizer` library declared, wanting
//! upstream's result type (`Object` for an apply configuration, `list(JSONPatch)` for
//! a JSON patch). A policy whose CEL cannot compile is refused with 422 at
//! `spec.mutations[i].applyConfiguration.expression` (or `.jsonPatch.expression`).
//!
//! Invariants: pure functions of the object; a `dyn` result (only runtime knows) is
//! accepted, as the validating policy's checks accept it.

use super::Strategy;
use super::admission::{
    Want, default_binding, default_policy, items, shared_binding, shared_spec, text,
};
use crate::error::FieldError;
use serde_json::Value;

const PATCH_TYPES: &[&str] = &["ApplyConfiguration", "JSONPatch"];
const REINVOCATION_POLICIES: &[&str] = &["IfNeeded", "Never"];

/// The MutatingAdmissionPolicy strategy.
#[derive(Debug, Default)]
pub struct MutatingAdmissionPolicies;

/// The MutatingAdmissionPolicyBinding strategy.
#[derive(Debug, Default)]
pub struct MutatingAdmissionPolicyBindings;

impl Strategy for MutatingAdmissionPolicies {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        default_policy(obj);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        policy_spec(obj.get("spec").unwrap_or(&Value::Null), &mut errs);
        errs
    }
}

impl Strategy for MutatingAdmissionPolicyBindings {
    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        default_binding(obj);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        shared_binding(obj.get("spec").unwrap_or(&Value::Null), &mut errs);
        errs
    }
}

fn policy_spec(spec: &Value, errs: &mut Vec<FieldError>) {
    let env = shared_spec(spec, errs);
    let mutations = items(spec.get("mutations"));
    if mutations.is_empty() {
        errs.push(FieldError::required(
            "spec.mutations",
            "mutations must contain at least one item",
        ));
    }
    for (i, m) in mutations.iter().enumerate() {
        let at = format!("spec.mutations[{i}]");
        let (field, types): (&str, &[&str]) = match m.get("patchType") {
            None | Some(Value::Null) => {
                errs.push(FieldError::required(format!("{at}.patchType"), ""));
                continue;
            }
            Some(t) if t.as_str() == Some("ApplyConfiguration") => {
                ("applyConfiguration", &["Object"])
            }
            Some(t) if t.as_str() == Some("JSONPatch") => ("jsonPatch", &["list(JSONPatch)"]),
            Some(t) => {
                errs.push(FieldError::not_supported(format!("{at}.patchType"), t, PATCH_TYPES));
                continue;
            }
        };
        let Some(body) = m.get(field).filter(|b| b.is_object()) else {
            let detail =
                format!("must be specified when patchType is {}", text(m.get("patchType")));
            errs.push(FieldError::required(format!("{at}.{field}"), &detail));
            continue;
        };
        let expr = text(body.get("expression")).trim();
        let at = format!("{at}.{field}.expression");
        if expr.is_empty() {
            errs.push(FieldError::required(at, ""));
        } else {
            env.check_as(&at, expr, Want { types, variables: true, construct: true }, errs);
        }
    }
    if let Some(r) = spec
        .get("reinvocationPolicy")
        .filter(|r| !r.is_null() && !r.as_str().is_some_and(|r| REINVOCATION_POLICIES.contains(&r)))
    {
        errs.push(FieldError::not_supported("spec.reinvocationPolicy", r, REINVOCATION_POLICIES));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(spec: Value) -> Value {
        let mut p = json!({"metadata": {"name": "p"}, "spec": spec});
        MutatingAdmissionPolicies.default(&mut p);
        p
    }

    fn constraints() -> Value {
        json!({"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
            "operations": ["CREATE"], "resources": ["deployments"]}]})
    }

    fn apply(expr: &str) -> Value {
        json!({"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": expr}})
    }

    fn patch(expr: &str) -> Value {
        json!({"patchType": "JSONPatch", "jsonPatch": {"expression": expr}})
    }

    fn messages(p: &Value) -> Vec<String> {
        MutatingAdmissionPolicies.validate(p).into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn a_sound_policy_is_defaulted_and_accepted() {
        let p = policy(
            json!({"matchConstraints": constraints(), "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
            "variables": [{"name": "team", "expression": "params.data.team"}],
            "matchConditions": [{"name": "m", "expression": "authorizer.requestResource.check('get').allowed()"}],
            "reinvocationPolicy": "IfNeeded",
            "mutations": [
                apply("Object{metadata: Object.metadata{labels: {'team': variables.team}}}"),
                patch("has(object.x) ? [] : [JSONPatch{op: 'add', path: '/x', value: authorizer.path('/x').check('get').reason()}]"),
                apply("object.spec.enabled ? Object{} : Object{spec: Object.spec{replicas: 1}}"),
            ]}),
        );
        assert_eq!(p["spec"]["failurePolicy"], "Fail");
        assert_eq!(p["spec"]["matchConstraints"]["matchPolicy"], "Equivalent");
        assert_eq!(messages(&p), Vec::<String>::new());
    }

    #[test]
    fn expressions_that_cannot_compile_are_refused_at_their_field() {
        let p = policy(json!({"matchConstraints": constraints(),
            "matchConditions": [{"name": "m", "expression": "object.x =="}],
            "variables": [{"name": "v", "expression": "nope"}],
            "mutations": [apply("Object{spec: params.x}"), patch("[JSONPatch{op: 'remove', path: 1 +}]")]}));
        let m = messages(&p);
        assert!(m[0].starts_with("spec.matchConditions[0].expression: Invalid value: \"object.x ==\": compilation failed: ERROR: <input>:1:"), "{m:?}");
        assert!(m[1].starts_with("spec.variables[0].expression: Invalid value: \"nope\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'nope'"), "{m:?}");
        assert!(m[2].starts_with("spec.mutations[0].applyConfiguration.expression: Invalid value: \"Object{spec: params.x}\": compilation failed: ERROR: <input>:1:14: undeclared reference to 'params'"), "{m:?}");
        assert!(m[3].starts_with("spec.mutations[1].jsonPatch.expression: Invalid value: \"[JSONPatch{op: 'remove', path: 1 +}]\": compilation failed: ERROR: <input>:1:"), "{m:?}");
        assert_eq!(m.len(), 4, "{m:?}");
    }

    #[test]
    fn a_mutation_of_the_wrong_result_type_is_refused() {
        let p = policy(json!({"matchConstraints": constraints(), "mutations": [
            apply("{'spec': {'replicas': 1}}"),
            apply("Object.spec{replicas: 1}"),
            patch("JSONPatch{op: 'remove', path: '/x'}"),
            patch("['x']"),
            apply("[JSONPatch{op: 'remove', path: '/x'}]"),
        ]}));
        assert_eq!(
            messages(&p),
            [
                "spec.mutations[0].applyConfiguration.expression: Invalid value: \"{'spec': {'replicas': 1}}\": must evaluate to Object but got map(string, map(string, int))",
                "spec.mutations[1].applyConfiguration.expression: Invalid value: \"Object.spec{replicas: 1}\": must evaluate to Object but got Object.spec",
                "spec.mutations[2].jsonPatch.expression: Invalid value: \"JSONPatch{op: 'remove', path: '/x'}\": must evaluate to list(JSONPatch) but got JSONPatch",
                "spec.mutations[3].jsonPatch.expression: Invalid value: \"['x']\": must evaluate to list(JSONPatch) but got list(string)",
                "spec.mutations[4].applyConfiguration.expression: Invalid value: \"[JSONPatch{op: 'remove', path: '/x'}]\": must evaluate to Object but got list(JSONPatch)",
            ]
        );
    }

    #[test]
    fn mutations_need_a_supported_patch_type_with_its_expression() {
        let p = policy(json!({"matchConstraints": constraints(), "reinvocationPolicy": "Always",
        "mutations": [
            {"applyConfiguration": {"expression": "Object{}"}},
            {"patchType": "Merge"},
            {"patchType": "JSONPatch", "applyConfiguration": {"expression": "Object{}"}},
            {"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": " "}},
        ]}));
        let m = messages(&p);
        assert_eq!(m[0], "spec.mutations[0].patchType: Required value");
        assert!(
            m[1].starts_with("spec.mutations[1].patchType: Unsupported value: \"Merge\""),
            "{m:?}"
        );
        assert_eq!(
            m[2],
            "spec.mutations[2].jsonPatch: Required value: must be specified when patchType is JSONPatch"
        );
        assert_eq!(m[3], "spec.mutations[3].applyConfiguration.expression: Required value");
        assert!(
            m[4].starts_with("spec.reinvocationPolicy: Unsupported value: \"Always\""),
            "{m:?}"
        );
        let m = messages(&policy(json!({"matchConstraints": constraints()})));
        assert_eq!(m, ["spec.mutations: Required value: mutations must contain at least one item"]);
    }

    #[test]
    fn a_binding_needs_its_policy_and_no_validation_actions() {
        let b = json!({"metadata": {"name": "b"}, "spec": {"paramRef": {"name": "x"}}});
        let m: Vec<String> =
            MutatingAdmissionPolicyBindings.validate(&b).into_iter().map(|e| e.message).collect();
        assert_eq!(
            m,
            [
                "spec.policyName: Required value",
                "spec.paramRef.parameterNotFoundAction: Required value"
            ]
        );
    }
}
