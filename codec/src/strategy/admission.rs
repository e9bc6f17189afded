//! ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding
//! (`admissionregistration.k8s.io/v1`): upstream's defaults (failurePolicy `Fail`,
//! matchPolicy `Equivalent`, empty selectors, rule scope `*`) and validation, with
//! every CEL expression compiled and type-checked at write time as upstream does (the
//! `authorizer` library declared), so a policy that cannot compile is refused with 422
//! instead of failing requests later. What a MutatingAdmissionPolicy shares with them
//! (paramKind, matchConstraints, matchConditions, variables, the binding's policyName,
//! paramRef and matchResources) is validated here for both (`mutating_admission`).
//!
//! Invariants: pure functions of the object; each list is looked at up to upstream's
//! own limits (64 match conditions), the rest reported, never walked unbounded.

use super::util::{default, each, obj_at};
use crate::cel::{Expression, Var, admission_vars};
use crate::error::FieldError;
use serde_json::{Value, json};
use std::collections::HashSet;

const MAX_MATCH_CONDITIONS: usize = 64;
const MAX_AUDIT_ANNOTATIONS: usize = 20;
const REASONS: &[&str] = &["Forbidden", "Invalid", "RequestEntityTooLarge", "Unauthorized"];
const OPERATIONS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
/// The operations a mutating policy may match (sorted as upstream lists them).
const MUTATING_OPERATIONS: &[&str] = &["*", "CONNECT", "CREATE", "UPDATE"];

/// The ValidatingAdmissionPolicy strategy.
#[derive(Debug, Default)]
pub struct ValidatingAdmissionPolicies;

/// The ValidatingAdmissionPolicyBinding strategy.
#[derive(Debug, Default)]
pub struct ValidatingAdmissionPolicyBindings;

/// The Strategy of a policy or binding kind: generation tracked, `$default` its
/// defaults, `$validate` its field errors (both kinds of policy share this shape).
macro_rules! admission_strategy {
    ($kind:ty, $default:path, $validate:path) => {
        impl $crate::strategy::Strategy for $kind {
            fn tracks_generation(&self) -> bool {
                true
            }

            fn default(&self, obj: &mut serde_json::Value) {
                $default(obj);
            }

            fn validate(&self, obj: &serde_json::Value) -> Vec<$crate::error::FieldError> {
                let mut errs = Vec::new();
                $validate(obj, &mut errs);
                errs
            }
        }
    };
}
pub(super) use admission_strategy;

admission_strategy!(ValidatingAdmissionPolicies, default_policy, policy_spec);
admission_strategy!(ValidatingAdmissionPolicyBindings, default_binding, binding_spec);

/// A policy's defaults (both kinds): failurePolicy `Fail`, the constraints'.
pub(super) fn default_policy(obj: &mut Value) {
    let Some(spec) = obj_at(obj, &["spec"]) else { return };
    default(spec, "failurePolicy", json!("Fail"));
    if let Some(Value::Object(m)) = spec.get_mut("matchConstraints") {
        default_match_resources(m);
    }
}

/// A binding's defaults (both kinds): its matchResources'.
pub(super) fn default_binding(obj: &mut Value) {
    let Some(spec) = obj_at(obj, &["spec"]) else { return };
    if let Some(Value::Object(m)) = spec.get_mut("matchResources") {
        default_match_resources(m);
    }
}

fn default_match_resources(m: &mut serde_json::Map<String, Value>) {
    default(m, "matchPolicy", json!("Equivalent"));
    default(m, "namespaceSelector", json!({}));
    default(m, "objectSelector", json!({}));
    for key in ["resourceRules", "excludeResourceRules"] {
        for rule in each(m, key) {
            default(rule, "scope", json!("*"));
        }
    }
}

pub(super) fn items(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

pub(super) fn text(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

/// Which variables the expressions of a policy may name.
pub(super) struct Env {
    params: bool,
}

/// What an expression must evaluate to, and how it is compiled.
#[derive(Clone, Copy)]
pub(super) struct Want<'t> {
    /// The result types upstream accepts (empty: any); `dyn` is accepted too, where
    /// only runtime knows (kapi's variables are `dyn`), and a list of `dyn` where a
    /// list is wanted.
    pub types: &'t [&'t str],
    /// Whether `variables` is declared.
    pub variables: bool,
    /// Whether the object construction of mutations is declared (`Object{...}`).
    pub construct: bool,
}

impl Env {
    fn vars(&self, with_variables: bool) -> Vec<Var<'static>> {
        let mut names = vec!["object", "oldObject", "request", "namespaceObject"];
        if self.params {
            names.push("params");
        }
        if with_variables {
            names.push("variables");
        }
        admission_vars::vars(&names)
    }

    /// Compile `src` at `field`, wanting one of `types` (empty: any).
    fn check(
        &self,
        field: &str,
        src: &str,
        types: &[&str],
        variables: bool,
        errs: &mut Vec<FieldError>,
    ) {
        self.check_as(field, src, Want { types, variables, construct: false }, errs);
    }

    /// Compile `src` at `field` as `want` says (upstream's `CompileCELExpression`: a
    /// compile error, then a result of another type, is `Invalid` at `field`).
    pub(super) fn check_as(
        &self,
        field: &str,
        src: &str,
        want: Want<'_>,
        errs: &mut Vec<FieldError>,
    ) {
        let value = Value::String(src.to_string());
        let vars = self.vars(want.variables);
        let compiled = match want.construct {
            true => Expression::compile_mutation(src, &vars),
            false => Expression::compile_with_authorizer(src, &vars),
        };
        let types = want.types;
        let any_list = |t: &str| t == "list(dyn)" && types.iter().any(|w| w.starts_with("list("));
        match compiled {
            Err(e) => {
                errs.push(FieldError::invalid(field, &value, &format!("compilation failed: {e}")))
            }
            Ok(expr) if types.is_empty() || expr.output_type() == "dyn" => {}
            Ok(expr) if types.contains(&expr.output_type()) || any_list(expr.output_type()) => {}
            Ok(expr) => {
                let want = match types {
                    [one] => one.to_string(),
                    many => format!("one of [{}]", many.join(" ")),
                };
                let detail = format!("must evaluate to {want} but got {}", expr.output_type());
                errs.push(FieldError::invalid(field, &value, &detail));
            }
        }
    }
}

fn policy_spec(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let policy = text(obj.pointer("/metadata/name"));
    let env = shared_spec(spec, false, errs);
    let validations = items(spec.get("validations"));
    let annotations = items(spec.get("auditAnnotations"));
    if validations.is_empty() && annotations.is_empty() {
        let detail = "validations or auditAnnotations must contain at least one item";
        errs.push(FieldError::required("spec.validations", detail));
        errs.push(FieldError::required("spec.auditAnnotations", detail));
        return;
    }
    for (i, v) in validations.iter().enumerate() {
        validation(v, &format!("spec.validations[{i}]"), &env, errs);
    }
    if annotations.len() > MAX_AUDIT_ANNOTATIONS {
        let detail = format!("must not have more than {MAX_AUDIT_ANNOTATIONS} auditAnnotations");
        errs.push(FieldError::invalid("spec.auditAnnotations", &json!(annotations), &detail));
    }
    let mut keys = HashSet::new();
    for (i, a) in annotations.iter().take(MAX_AUDIT_ANNOTATIONS).enumerate() {
        let at = format!("spec.auditAnnotations[{i}]");
        audit_annotation(a, policy, &at, &env, errs);
        let key = text(a.get("key"));
        if !keys.insert(key) {
            errs.push(FieldError::duplicate(format!("{at}.key"), &json!(key)));
        }
    }
}

/// What both kinds of policy spec validate alike: failurePolicy, paramKind,
/// matchConstraints, matchConditions and variables. The environment the policy's own
/// expressions compile in.
/// `mutating`: only the operations a mutating policy may match are supported
/// ([`MUTATING_OPERATIONS`]).
pub(super) fn shared_spec(spec: &Value, mutating: bool, errs: &mut Vec<FieldError>) -> Env {
    let fp = spec.get("failurePolicy");
    if let Some(f) = fp.filter(|f| !matches!(f.as_str(), Some("Fail" | "Ignore"))) {
        errs.push(FieldError::not_supported("spec.failurePolicy", f, &["Fail", "Ignore"]));
    }
    let param_kind = spec.get("paramKind").filter(|p| !p.is_null());
    if let Some(p) = param_kind {
        for key in ["apiVersion", "kind"] {
            if text(p.get(key)).is_empty() {
                errs.push(FieldError::required(format!("spec.paramKind.{key}"), ""));
            }
        }
    }
    match spec.get("matchConstraints").filter(|m| m.is_object()) {
        None => errs.push(FieldError::required("spec.matchConstraints", "")),
        Some(m) => {
            match_resources(m, "spec.matchConstraints", errs);
            if items(m.get("resourceRules")).is_empty() {
                errs.push(FieldError::required("spec.matchConstraints.resourceRules", ""));
            }
            if mutating {
                mutating_operations(m, "spec.matchConstraints", errs);
            }
        }
    }
    let env = Env { params: param_kind.is_some() };
    match_conditions(spec.get("matchConditions"), &env, errs);
    for (i, v) in items(spec.get("variables")).iter().enumerate() {
        variable(v, &format!("spec.variables[{i}]"), &env, errs);
    }
    env
}

fn match_resources(m: &Value, at: &str, errs: &mut Vec<FieldError>) {
    match m.get("matchPolicy") {
        None | Some(Value::Null) => {
            errs.push(FieldError::required(format!("{at}.matchPolicy"), ""))
        }
        Some(p) if !matches!(p.as_str(), Some("Equivalent" | "Exact")) => {
            errs.push(FieldError::not_supported(
                format!("{at}.matchPolicy"),
                p,
                &["Equivalent", "Exact"],
            ));
        }
        Some(_) => {}
    }
    for key in ["namespaceSelector", "objectSelector"] {
        match m.get(key) {
            None | Some(Value::Null) => errs.push(FieldError::required(format!("{at}.{key}"), "")),
            Some(s) => {
                if let Err(e) = crate::selector::LabelSelector::from_object(s) {
                    errs.push(FieldError::invalid(format!("{at}.{key}"), s, &e.to_string()));
                }
            }
        }
    }
    for key in ["resourceRules", "excludeResourceRules"] {
        for (i, r) in items(m.get(key)).iter().enumerate() {
            rule(r, &format!("{at}.{key}[{i}]"), errs);
        }
    }
}

fn rule(r: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let ops = items(r.get("operations"));
    if ops.is_empty() {
        errs.push(FieldError::required(format!("{at}.operations"), ""));
    }
    for (i, op) in ops.iter().enumerate() {
        if !op.as_str().is_some_and(|o| OPERATIONS.contains(&o)) {
            errs.push(FieldError::not_supported(format!("{at}.operations[{i}]"), op, OPERATIONS));
        }
    }
    for key in ["apiGroups", "apiVersions", "resources"] {
        if items(r.get(key)).is_empty() {
            errs.push(FieldError::required(format!("{at}.{key}"), ""));
        }
    }
    if let Some(s) =
        r.get("scope").filter(|s| !matches!(s.as_str(), Some("*" | "Cluster" | "Namespaced")))
    {
        errs.push(FieldError::not_supported(
            format!("{at}.scope"),
            s,
            &["*", "Cluster", "Namespaced"],
        ));
    }
    let mut names = HashSet::new();
    for (i, n) in items(r.get("resourceNames")).iter().enumerate() {
        if !names.insert(text(Some(n))) {
            errs.push(FieldError::duplicate(format!("{at}.resourceNames[{i}]"), n));
        }
    }
}

fn match_conditions(list: Option<&Value>, env: &Env, errs: &mut Vec<FieldError>) {
    let list = items(list);
    if list.len() > MAX_MATCH_CONDITIONS {
        let detail = format!("must have at most {MAX_MATCH_CONDITIONS} items");
        errs.push(FieldError::invalid("spec.matchConditions", &json!(list.len()), &detail));
    }
    let mut names = HashSet::new();
    for (i, c) in list.iter().take(MAX_MATCH_CONDITIONS).enumerate() {
        let at = format!("spec.matchConditions[{i}]");
        let expr = text(c.get("expression")).trim();
        if expr.is_empty() {
            errs.push(FieldError::required(format!("{at}.expression"), ""));
        } else {
            env.check(&format!("{at}.expression"), expr, &["bool"], false, errs);
        }
        let name = text(c.get("name"));
        if name.is_empty() {
            errs.push(FieldError::required(format!("{at}.name"), ""));
        } else if !names.insert(name) {
            errs.push(FieldError::duplicate(format!("{at}.name"), &json!(name)));
        }
    }
}

fn is_cel_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn variable(v: &Value, at: &str, env: &Env, errs: &mut Vec<FieldError>) {
    let name = text(v.get("name"));
    if name.trim().is_empty() {
        errs.push(FieldError::required(format!("{at}.name"), "name is not specified"));
    } else if !is_cel_identifier(name) {
        errs.push(FieldError::invalid(
            format!("{at}.name"),
            &json!(name),
            "name is not a valid CEL identifier",
        ));
    }
    let expr = text(v.get("expression"));
    if expr.trim().is_empty() {
        errs.push(FieldError::required(format!("{at}.expression"), "expression is not specified"));
    } else {
        env.check(&format!("{at}.expression"), expr, &[], true, errs);
    }
}

fn validation(v: &Value, at: &str, env: &Env, errs: &mut Vec<FieldError>) {
    let expr = text(v.get("expression"));
    if expr.trim().is_empty() {
        errs.push(FieldError::required(format!("{at}.expression"), "expression is not specified"));
    } else {
        env.check(&format!("{at}.expression"), expr, &["bool"], true, errs);
    }
    let msg_expr = text(v.get("messageExpression"));
    if !msg_expr.is_empty() && msg_expr.trim().is_empty() {
        let detail = "must be non-empty if specified";
        errs.push(FieldError::invalid(format!("{at}.messageExpression"), &json!(msg_expr), detail));
    } else if !msg_expr.is_empty() {
        env.check(&format!("{at}.messageExpression"), msg_expr, &["string"], true, errs);
    }
    let message = text(v.get("message"));
    if !message.is_empty() && message.trim().is_empty() {
        let detail = "message must be non-empty if specified";
        errs.push(FieldError::invalid(format!("{at}.message"), &json!(message), detail));
    } else if message.trim().contains(['\n', '\r']) {
        let detail = "message must not contain line breaks";
        errs.push(FieldError::invalid(format!("{at}.message"), &json!(message), detail));
    }
    if let Some(r) = v.get("reason").filter(|r| !r.as_str().is_some_and(|r| REASONS.contains(&r))) {
        errs.push(FieldError::not_supported(format!("{at}.reason"), r, REASONS));
    }
}

fn audit_annotation(a: &Value, policy: &str, at: &str, env: &Env, errs: &mut Vec<FieldError>) {
    let key = text(a.get("key"));
    if policy.is_empty() {
        errs.push(FieldError::invalid(
            format!("{at}.key"),
            &json!(key),
            "requires metadata.name be non-empty",
        ));
    } else if key.is_empty() {
        errs.push(FieldError::required(format!("{at}.key"), ""));
    }
    let expr = text(a.get("valueExpression"));
    if expr.trim().is_empty() {
        errs.push(FieldError::required(
            format!("{at}.valueExpression"),
            "valueExpression is not specified",
        ));
    } else {
        env.check(
            &format!("{at}.valueExpression"),
            expr.trim(),
            &["string", "null_type"],
            true,
            errs,
        );
    }
}

fn binding_spec(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    shared_binding(spec, false, errs);
    validation_actions(items(spec.get("validationActions")), errs);
}

/// What both kinds of binding spec validate alike, in upstream's order: policyName,
/// paramRef, matchResources (`mutating`: with [`MUTATING_OPERATIONS`] only).
pub(super) fn shared_binding(spec: &Value, mutating: bool, errs: &mut Vec<FieldError>) {
    if text(spec.get("policyName")).is_empty() {
        errs.push(FieldError::required("spec.policyName", ""));
    }
    if let Some(p) = spec.get("paramRef").filter(|p| p.is_object()) {
        param_ref(p, errs);
    }
    if let Some(m) = spec.get("matchResources").filter(|m| m.is_object()) {
        match_resources(m, "spec.matchResources", errs);
        if mutating {
            mutating_operations(m, "spec.matchResources", errs);
        }
    }
}

/// A mutating policy's (or binding's) resource rules name no operation but these
/// (upstream's `supportedMutatingOperations`: no DELETE); the error is at the rules'
/// `operations` without an index, as upstream reports it.
fn mutating_operations(m: &Value, at: &str, errs: &mut Vec<FieldError>) {
    for r in items(m.get("resourceRules")) {
        for op in items(r.get("operations")) {
            if !op.as_str().is_some_and(|o| MUTATING_OPERATIONS.contains(&o)) {
                let field = format!("{at}.resourceRules.operations");
                errs.push(FieldError::not_supported(field, op, MUTATING_OPERATIONS));
            }
        }
    }
}

fn param_ref(p: &Value, errs: &mut Vec<FieldError>) {
    let name = text(p.get("name"));
    let selector = p.get("selector").filter(|s| !s.is_null());
    if !name.is_empty() && selector.is_some() {
        errs.push(FieldError::forbidden(
            "spec.paramRef.name",
            "name and selector are mutually exclusive",
        ));
    }
    if name.is_empty() && selector.is_none() {
        errs.push(FieldError::required(
            "spec.paramRef",
            "one of name or selector must be specified",
        ));
    }
    if let Some(s) = selector
        && let Err(e) = crate::selector::LabelSelector::from_object(s)
    {
        errs.push(FieldError::invalid("spec.paramRef.selector", s, &e.to_string()));
    }
    match p.get("parameterNotFoundAction") {
        None | Some(Value::Null) => {
            errs.push(FieldError::required("spec.paramRef.parameterNotFoundAction", ""));
        }
        Some(a) if !matches!(a.as_str(), Some("Allow" | "Deny")) => {
            let field = "spec.paramRef.parameterNotFoundAction";
            errs.push(FieldError::not_supported(field, a, &["Allow", "Deny"]));
        }
        Some(_) => {}
    }
}

fn validation_actions(actions: &[Value], errs: &mut Vec<FieldError>) {
    let field = "spec.validationActions";
    let mut seen = HashSet::new();
    for (i, a) in actions.iter().enumerate() {
        if !matches!(a.as_str(), Some("Audit" | "Deny" | "Warn")) {
            errs.push(FieldError::not_supported(
                format!("{field}[{i}]"),
                a,
                &["Audit", "Deny", "Warn"],
            ));
        }
        if !seen.insert(text(Some(a))) {
            errs.push(FieldError::duplicate(format!("{field}[{i}]"), a));
        }
    }
    if seen.contains("Deny") && seen.contains("Warn") {
        let detail = "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)";
        errs.push(FieldError::invalid(field, &json!(actions), detail));
    }
    if seen.is_empty() {
        errs.push(FieldError::required(field, "at least one validation action is required"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Strategy;

    fn policy(spec: Value) -> Value {
        let mut p = json!({"metadata": {"name": "p"}, "spec": spec});
        ValidatingAdmissionPolicies.default(&mut p);
        p
    }

    fn constraints() -> Value {
        json!({"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
            "operations": ["CREATE"], "resources": ["deployments"]}]})
    }

    fn messages(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn a_policy_is_defaulted_as_upstream() {
        let p = policy(
            json!({"matchConstraints": constraints(), "validations": [{"expression": "true"}]}),
        );
        assert_eq!(p["spec"]["failurePolicy"], "Fail");
        assert_eq!(p["spec"]["matchConstraints"]["matchPolicy"], "Equivalent");
        assert_eq!(p["spec"]["matchConstraints"]["namespaceSelector"], json!({}));
        assert_eq!(p["spec"]["matchConstraints"]["resourceRules"][0]["scope"], "*");
        assert!(ValidatingAdmissionPolicies.validate(&p).is_empty());
    }

    #[test]
    fn policy_expressions_may_ask_the_authorizer() {
        let p = policy(json!({"matchConstraints": constraints(),
            "matchConditions": [{"name": "m", "expression": "authorizer.requestResource.check('get').allowed()"}],
            "validations": [{"expression": "authorizer.group('').resource('secrets').check('get').allowed()",
                "messageExpression": "authorizer.path('/x').check('get').reason()"}]}));
        assert_eq!(messages(ValidatingAdmissionPolicies.validate(&p)), Vec::<String>::new());
        let p = policy(json!({"matchConstraints": constraints(),
            "validations": [{"expression": "authorizer.allowed()"}]}));
        let m = messages(ValidatingAdmissionPolicies.validate(&p));
        assert!(m[0].contains("found no matching overload for 'allowed'"), "{m:?}");
    }

    #[test]
    fn a_policy_that_cannot_compile_is_refused_with_upstreams_messages() {
        let p = policy(json!({"matchConstraints": constraints(), "validations": [
            {"expression": "object.spec.replicas <="},
            {"expression": "1 + 1"},
            {"expression": "params.max > 1"},
            {"expression": "true", "reason": "Teapot", "message": "a\nb"},
        ]}));
        let m = messages(ValidatingAdmissionPolicies.validate(&p));
        assert!(m[0].starts_with("spec.validations[0].expression: Invalid value: \"object.spec.replicas <=\": compilation failed: ERROR: <input>:1:"), "{m:?}");
        assert_eq!(
            m[1],
            "spec.validations[1].expression: Invalid value: \"1 + 1\": must evaluate to bool but got int"
        );
        assert!(m[2].contains("undeclared reference to 'params'"), "{m:?}");
        assert_eq!(
            m[3],
            "spec.validations[3].message: Invalid value: \"a\\nb\": message must not contain line breaks"
        );
        assert!(
            m[4].starts_with("spec.validations[3].reason: Unsupported value: \"Teapot\""),
            "{m:?}"
        );
    }

    #[test]
    fn a_policy_needs_constraints_and_something_to_do() {
        let m = messages(ValidatingAdmissionPolicies.validate(&policy(json!({}))));
        assert_eq!(
            m,
            [
                "spec.matchConstraints: Required value",
                "spec.validations: Required value: validations or auditAnnotations must contain at least one item",
                "spec.auditAnnotations: Required value: validations or auditAnnotations must contain at least one item",
            ]
        );
    }

    #[test]
    fn a_binding_needs_a_policy_and_sensible_actions() {
        let b = json!({"metadata": {"name": "b"}, "spec": {"validationActions": ["Deny", "Warn", "Deny"],
            "paramRef": {"name": "x"}}});
        let m = messages(ValidatingAdmissionPolicyBindings.validate(&b));
        assert_eq!(m[0], "spec.policyName: Required value");
        assert_eq!(m[1], "spec.paramRef.parameterNotFoundAction: Required value");
        assert_eq!(m[2], "spec.validationActions[2]: Duplicate value: \"Deny\"");
        assert!(m[3].ends_with("must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)"), "{m:?}");
    }
}
