//! MutatingAdmissionPolicy and MutatingAdmissionPolicyBinding
//! (`admissionregistration.k8s.io/v1beta1`): upstream's defaults and validation. What a
//! mutating policy shares with a validating one (failurePolicy defaulted to `Fail`,
//! paramKind, matchConstraints, matchConditions, variables; a binding's policyName,
//! paramRef and matchResources; the Strategy's shape) is the validating policy's code
//! (`admission`), with the operations limited to those a mutation can apply to (no
//! DELETE, at `...resourceRules.operations`). Here the mutations: a supported
//! `patchType`, its own field set with its expression compiled (object construction and
//! the `authorizer` library declared) to upstream's result type (`Object` for an apply
//! configuration, `list(JSONPatch)` for a JSON patch), the other patch type's field
//! unset (`Invalid` with upstream's `{applyConfiguration}`/`{jsonPatch}` value); and a
//! required, supported `reinvocationPolicy` (upstream does not default it). A policy
//! whose CEL cannot compile is refused with 422 at
//! `spec.mutations[i].applyConfiguration.expression` (or `.jsonPatch.expression`).
//!
//! Invariants: pure functions of the object; a `dyn` result (only runtime knows) is
//! accepted, as the validating policy's checks accept it.

use super::admission::{
    Want, admission_strategy, default_binding, default_policy, items, shared_binding, shared_spec,
    text,
};
use crate::error::FieldError;
use serde_json::{Value, json};

const PATCH_TYPES: &[&str] = &["ApplyConfiguration", "JSONPatch"];
const REINVOCATION_POLICIES: &[&str] = &["IfNeeded", "Never"];

/// The MutatingAdmissionPolicy strategy.
#[derive(Debug, Default)]
pub struct MutatingAdmissionPolicies;

/// The MutatingAdmissionPolicyBinding strategy.
#[derive(Debug, Default)]
pub struct MutatingAdmissionPolicyBindings;

admission_strategy!(MutatingAdmissionPolicies, default_policy, policy_spec);
admission_strategy!(MutatingAdmissionPolicyBindings, default_binding, binding_spec);

fn binding_spec(obj: &Value, errs: &mut Vec<FieldError>) {
    shared_binding(obj.get("spec").unwrap_or(&Value::Null), true, errs);
}

/// A mutation's patch type: the field that holds its expression, the result types
/// upstream wants of it, and the other patch type's field (which must be unset).
struct PatchType {
    field: &'static str,
    types: &'static [&'static str],
    other: &'static str,
}

const APPLY: PatchType =
    PatchType { field: "applyConfiguration", types: &["Object"], other: "jsonPatch" };
const JSON_PATCH: PatchType =
    PatchType { field: "jsonPatch", types: &["list(JSONPatch)"], other: "applyConfiguration" };

fn policy_spec(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let env = shared_spec(spec, true, errs);
    let mutations = items(spec.get("mutations"));
    if mutations.is_empty() {
        errs.push(FieldError::required(
            "spec.mutations",
            "mutations must contain at least one item",
        ));
    }
    for (i, m) in mutations.iter().enumerate() {
        mutation(m, &format!("spec.mutations[{i}]"), &env, errs);
    }
    match spec.get("reinvocationPolicy").filter(|r| !r.is_null() && r.as_str() != Some("")) {
        None => errs.push(FieldError::required("spec.reinvocationPolicy", "")),
        Some(r) if !r.as_str().is_some_and(|r| REINVOCATION_POLICIES.contains(&r)) => errs
            .push(FieldError::not_supported("spec.reinvocationPolicy", r, REINVOCATION_POLICIES)),
        Some(_) => {}
    }
}

/// One mutation, as upstream's `validateMutation`: a supported patchType, its own field
/// set with an expression that compiles to the wanted type, the other field unset.
fn mutation(m: &Value, at: &str, env: &super::admission::Env, errs: &mut Vec<FieldError>) {
    let patch_type = match m.get("patchType") {
        None | Some(Value::Null) => {
            errs.push(FieldError::required(format!("{at}.patchType"), ""));
            return;
        }
        Some(t) if t.as_str() == Some("ApplyConfiguration") => APPLY,
        Some(t) if t.as_str() == Some("JSONPatch") => JSON_PATCH,
        Some(t) => {
            errs.push(FieldError::not_supported(format!("{at}.patchType"), t, PATCH_TYPES));
            return;
        }
    };
    let name = text(m.get("patchType"));
    let set = |field: &str| m.get(field).filter(|b| !b.is_null());
    match set(patch_type.field) {
        None => {
            let detail = format!("must be specified when patchType is {name}");
            errs.push(FieldError::required(format!("{at}.{}", patch_type.field), &detail));
        }
        Some(body) => {
            let expr = text(body.get("expression")).trim();
            let field = format!("{at}.{}.expression", patch_type.field);
            if expr.is_empty() {
                errs.push(FieldError::required(field, ""));
            } else {
                let want = Want { types: patch_type.types, variables: true, construct: true };
                env.check_as(&field, expr, want, errs);
            }
        }
    }
    if set(patch_type.other).is_some() {
        let other = patch_type.other;
        errs.push(FieldError::invalid(
            format!("{at}.{other}"),
            &json!(format!("{{{other}}}")),
            &format!("must not be specified when patchType is {name}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Strategy;

    /// A policy of `spec` (reinvocationPolicy `Never` unless `spec` says).
    fn policy(mut spec: Value) -> Value {
        if spec.get("reinvocationPolicy").is_none() {
            spec["reinvocationPolicy"] = json!("Never");
        }
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
        assert_eq!(
            m[3],
            "spec.mutations[2].applyConfiguration: Invalid value: \"{applyConfiguration}\": must not be specified when patchType is JSONPatch"
        );
        assert_eq!(m[4], "spec.mutations[3].applyConfiguration.expression: Required value");
        assert_eq!(
            m[5],
            "spec.reinvocationPolicy: Unsupported value: \"Always\": supported values: \"IfNeeded\", \"Never\""
        );
        assert_eq!(m.len(), 6, "{m:?}");
        let m = messages(&policy(json!({"matchConstraints": constraints()})));
        assert_eq!(m, ["spec.mutations: Required value: mutations must contain at least one item"]);
    }

    /// Regression: a mutation that set both `applyConfiguration` and `jsonPatch` was
    /// accepted (only the patchType's field was looked at); upstream refuses the other.
    #[test]
    fn a_mutation_with_both_patch_fields_is_refused_at_the_other_one() {
        let both = |t: &str| {
            json!({"patchType": t, "applyConfiguration": {"expression": "Object{}"},
                "jsonPatch": {"expression": "[]"}})
        };
        let p = policy(json!({"matchConstraints": constraints(),
            "mutations": [both("ApplyConfiguration"), both("JSONPatch")]}));
        assert_eq!(
            messages(&p),
            [
                "spec.mutations[0].jsonPatch: Invalid value: \"{jsonPatch}\": must not be specified when patchType is ApplyConfiguration",
                "spec.mutations[1].applyConfiguration: Invalid value: \"{applyConfiguration}\": must not be specified when patchType is JSONPatch",
            ]
        );
    }

    /// Regression: a policy without a reinvocationPolicy was accepted; upstream neither
    /// defaults nor allows it.
    #[test]
    fn a_policy_needs_a_reinvocation_policy() {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"matchConstraints": constraints(),
            "mutations": [apply("Object{}")]}});
        MutatingAdmissionPolicies.default(&mut p);
        assert_eq!(messages(&p), ["spec.reinvocationPolicy: Required value"]);
        p["spec"]["reinvocationPolicy"] = json!("");
        assert_eq!(messages(&p), ["spec.reinvocationPolicy: Required value"]);
    }

    /// Regression: a policy or binding matching DELETE was accepted; a mutation cannot
    /// apply to a delete, and upstream refuses it (at `operations`, no index).
    #[test]
    fn mutating_policies_and_bindings_may_not_match_deletes() {
        let mut c = constraints();
        c["resourceRules"][0]["operations"] = json!(["CREATE", "DELETE", "CONNECT", "*"]);
        let p = policy(json!({"matchConstraints": c, "mutations": [apply("Object{}")]}));
        assert_eq!(
            messages(&p),
            [
                "spec.matchConstraints.resourceRules.operations: Unsupported value: \"DELETE\": supported values: \"*\", \"CONNECT\", \"CREATE\", \"UPDATE\""
            ]
        );
        let mut b = json!({"metadata": {"name": "b"}, "spec": {"policyName": "p",
            "matchResources": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                "operations": ["DELETE"], "resources": ["pods"]}]}}});
        MutatingAdmissionPolicyBindings.default(&mut b);
        let m: Vec<String> =
            MutatingAdmissionPolicyBindings.validate(&b).into_iter().map(|e| e.message).collect();
        assert_eq!(
            m,
            [
                "spec.matchResources.resourceRules.operations: Unsupported value: \"DELETE\": supported values: \"*\", \"CONNECT\", \"CREATE\", \"UPDATE\""
            ]
        );
    }

    #[test]
    fn request_and_namespace_object_are_typed_as_upstream() {
        let p = policy(json!({"matchConstraints": constraints(),
            "matchConditions": [{"name": "m", "expression": "request.nmae == 'x'"}],
            "mutations": [apply("Object{metadata: Object.metadata{labels: {'t': namespaceObject.metadata.labels['t'], 'u': request.userInfo.username}}}")]}));
        let m = messages(&p);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].starts_with("spec.matchConditions[0].expression: Invalid value: \"request.nmae == 'x'\": compilation failed: ERROR: <input>:1:8: undefined field 'nmae'"), "{m:?}");
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
