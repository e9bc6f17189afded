//! A ValidatingAdmissionPolicy and its bindings compiled once from their JSON
//! (`admissionregistration.k8s.io/v1`): CEL expressions parsed and checked, selectors
//! parsed, rules read. Every expression may name `authorizer` (the authorizer
//! library); [`compile_as`] compiles the expressions of both kinds of policy (a
//! mutation's with object construction). A compile error is kept with what it broke,
//! not raised: upstream turns it into a decision under the policy's failure policy
//! when the policy matches.
//!
//! Invariants: nothing here fails on input; every list is capped by the API's own
//! validation at write time, and again here at [`MAX_ITEMS`].

use super::matching::Matcher;
use kapi_codec::cel::{Expression, admission_vars};
use serde_json::Value;

/// The most validations, variables, conditions or annotations kept per policy.
pub const MAX_ITEMS: usize = 256;

/// The variables validations, message expressions and audit annotations see.
pub(super) const VARS: &[&str] =
    &["object", "oldObject", "request", "params", "namespaceObject", "variables"];
/// The variables match conditions see.
const CONDITION_VARS: &[&str] = &["object", "oldObject", "request", "params", "namespaceObject"];

/// One compiled expression, or the error text upstream reports for it.
pub type Compiled = Result<Expression, String>;

fn compile(src: &str, vars: &[&str]) -> Compiled {
    compile_as(src, vars, false)
}

/// `src` compiled with `vars` (`request` and `namespaceObject` typed as upstream types
/// them, the others `dyn`) and `authorizer` declared; `construct`: with the object
/// construction of mutations (`Object{...}`, `JSONPatch{...}`) too.
pub(super) fn compile_as(src: &str, vars: &[&str], construct: bool) -> Compiled {
    let vars = admission_vars::vars(vars);
    match construct {
        true => Expression::compile_mutation(src, &vars),
        false => Expression::compile_with_authorizer(src, &vars),
    }
}

fn text(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

fn items(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_array).into_iter().flatten().take(MAX_ITEMS)
}

/// One `validations[]` entry.
#[derive(Debug)]
pub struct Validation {
    pub expression: String,
    pub compiled: Compiled,
    pub message: String,
    pub message_expression: Option<Compiled>,
    /// `reason` (None: `Invalid`).
    pub reason: Option<String>,
}

/// One named expression: a variable, a match condition or an audit annotation.
#[derive(Debug)]
pub struct Named {
    pub name: String,
    pub expression: String,
    pub compiled: Compiled,
}

/// `paramKind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamKind {
    pub api_version: String,
    pub kind: String,
}

/// One policy.
#[derive(Debug)]
pub struct Policy {
    pub name: String,
    pub param_kind: Option<ParamKind>,
    pub matcher: Matcher,
    /// failurePolicy `Ignore` (default `Fail`).
    pub ignore_failures: bool,
    pub validations: Vec<Validation>,
    pub variables: Vec<Named>,
    pub conditions: Vec<Named>,
    /// `auditAnnotations[]`: key as `name`, valueExpression as the expression.
    pub audit_annotations: Vec<Named>,
}

impl Policy {
    pub fn of(obj: &Value) -> Policy {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let param_kind = spec.get("paramKind").filter(|p| p.is_object()).map(|p| ParamKind {
            api_version: text(p.get("apiVersion")).to_string(),
            kind: text(p.get("kind")).to_string(),
        });
        Policy {
            name: text(obj.pointer("/metadata/name")).to_string(),
            param_kind,
            matcher: Matcher::of(spec.get("matchConstraints")),
            ignore_failures: text(spec.get("failurePolicy")) == "Ignore",
            validations: items(spec.get("validations")).map(validation).collect(),
            variables: named(spec.get("variables"), "name", "expression", VARS),
            conditions: named(spec.get("matchConditions"), "name", "expression", CONDITION_VARS),
            audit_annotations: named(spec.get("auditAnnotations"), "key", "valueExpression", VARS),
        }
    }
}

fn validation(v: &Value) -> Validation {
    let expression = text(v.get("expression")).to_string();
    let message_expression =
        v.get("messageExpression").and_then(Value::as_str).map(|m| compile(m, VARS));
    Validation {
        compiled: compile(&expression, VARS),
        expression,
        message: text(v.get("message")).to_string(),
        message_expression,
        reason: v.get("reason").and_then(Value::as_str).map(String::from),
    }
}

fn named(list: Option<&Value>, name: &str, expr: &str, vars: &[&str]) -> Vec<Named> {
    items(list)
        .map(|v| {
            let expression = text(v.get(expr)).to_string();
            Named {
                name: text(v.get(name)).to_string(),
                compiled: compile(&expression, vars),
                expression,
            }
        })
        .collect()
}

/// A validation action of a binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Deny,
    Warn,
    Audit,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deny => "Deny",
            Action::Warn => "Warn",
            Action::Audit => "Audit",
        }
    }
}

/// `paramRef`.
#[derive(Debug)]
pub struct ParamRef {
    pub name: Option<String>,
    pub namespace: Option<String>,
    /// A parsed `selector` (None: not set).
    pub selector: Option<Result<kapi_codec::selector::LabelSelector, String>>,
    /// parameterNotFoundAction `Deny` (default `Allow`).
    pub deny_when_missing: bool,
}

/// One binding.
#[derive(Debug)]
pub struct Binding {
    pub name: String,
    pub policy_name: String,
    pub param_ref: Option<ParamRef>,
    /// `matchResources` (None: the policy's constraints alone).
    pub matcher: Option<Matcher>,
    pub actions: Vec<Action>,
}

impl Binding {
    pub fn of(obj: &Value) -> Binding {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let actions = items(spec.get("validationActions"))
            .filter_map(|a| match a.as_str()? {
                "Deny" => Some(Action::Deny),
                "Warn" => Some(Action::Warn),
                "Audit" => Some(Action::Audit),
                _ => None,
            })
            .collect();
        Binding {
            name: text(obj.pointer("/metadata/name")).to_string(),
            policy_name: text(spec.get("policyName")).to_string(),
            param_ref: spec.get("paramRef").filter(|p| p.is_object()).map(param_ref),
            matcher: spec
                .get("matchResources")
                .filter(|m| m.is_object())
                .map(|m| Matcher::of(Some(m))),
            actions,
        }
    }
}

fn param_ref(p: &Value) -> ParamRef {
    let s = |k: &str| p.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from);
    ParamRef {
        name: s("name"),
        namespace: s("namespace"),
        selector: p.get("selector").filter(|s| s.is_object()).map(|s| {
            kapi_codec::selector::LabelSelector::from_object(s).map_err(|e| e.to_string())
        }),
        deny_when_missing: s("parameterNotFoundAction").as_deref() == Some("Deny"),
    }
}
