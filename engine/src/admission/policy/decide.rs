//! One policy evaluated for one binding and one parameter object (upstream's
//! validator): the match conditions (any false: the policy does not apply; errors
//! follow the failure policy), the variables in order (each sees those before it),
//! every validation with its message, then the audit annotations.
//!
//! Invariants: every expression is metered (cel's per-call limit) and charged to a
//! budget ([`Scope`]): upstream's `RuntimeCELCostBudget` per decision (the
//! validations; the audit annotations have their own) and per mutation, and
//! `RuntimeCELCostBudgetMatchConditions` for the match conditions; a variable's cost is
//! charged once, to the first expression that names it, as upstream's lazy variables
//! are; past the budget an evaluation fails with upstream's `validation failed due to
//! running out of cost budget, ...` and a decision stops there. A variable is
//! evaluated once per decision and an expression that names a variable that failed
//! fails with that variable's error, as upstream's lazy variables do; texts are
//! upstream's (`failed expression: ...`, `expression '...' resulted in error: ...`).

use super::compile::{Compiled, Named, Policy, Validation};
use kapi_codec::cel::RUNTIME_CEL_COST_BUDGET;
use kapi_codec::cel::authorizer::Context;
use serde_json::{Map, Value};
use std::cell::Cell;

/// Upstream's `RuntimeCELCostBudgetMatchConditions`: what the match conditions of one
/// evaluation may cost together.
pub const MATCH_CONDITIONS_BUDGET: u64 = 2_500_000;
/// Upstream's error once a budget is spent (a cel `ErrOutOfBudget`).
pub const OUT_OF_BUDGET: &str =
    "validation failed due to running out of cost budget, no further validation rules will be run";

/// The longest message a messageExpression may produce (upstream's 5 KiB).
const MAX_MESSAGE: usize = 5 * 1024;

/// The variables every expression of one decision sees.
pub struct Input<'a> {
    pub object: &'a Value,
    pub old: &'a Value,
    pub request: &'a Value,
    pub params: &'a Value,
    pub namespace: &'a Value,
    /// What `authorizer` is bound to (None: unbound; naming it is a runtime error).
    pub authorizer: Option<&'a Context<'a>>,
}

/// A failed validation (or an error under failurePolicy Fail).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The validation's index (0 for a match-condition error).
    pub index: usize,
    pub message: String,
    /// The validation's `reason` (None: `Invalid`).
    pub reason: Option<String>,
}

/// What one decision produced.
#[derive(Debug, Default)]
pub struct Decided {
    pub decisions: Vec<Decision>,
    /// Audit annotations by key: a value to publish, or an error (failurePolicy decides).
    pub annotations: Vec<(String, Result<String, String>)>,
}

/// The evaluation context: the input as bindings, plus `variables`, and what is left
/// of the cost budget.
pub(super) struct Scope<'a> {
    input: &'a Input<'a>,
    variables: Value,
    /// Variables that failed, with the error an expression naming them reports.
    failed: Vec<(String, String)>,
    /// Each evaluated variable's cost, and whether it was charged yet.
    costs: Vec<(String, u64, Cell<bool>)>,
    /// What evaluations may still cost.
    budget: Cell<u64>,
    /// Whether an evaluation ran out of budget.
    spent: Cell<bool>,
}

impl<'a> Scope<'a> {
    fn new(input: &'a Input<'a>) -> Scope<'a> {
        Scope {
            input,
            variables: Value::Object(Map::new()),
            failed: Vec::new(),
            costs: Vec::new(),
            budget: Cell::new(RUNTIME_CEL_COST_BUDGET),
            spent: Cell::new(false),
        }
    }

    /// The scope of `input` with `policy`'s variables evaluated and a whole budget (the
    /// mutating plugin's, once per mutation: each sees the object as the mutations
    /// before it left it, and has upstream's per-patch budget).
    pub(super) fn with_variables(policy: &Policy, input: &'a Input<'a>) -> Scope<'a> {
        let mut scope = Scope::new(input);
        for v in &policy.variables {
            variable(&mut scope, v);
        }
        scope
    }

    /// Whether an evaluation ran out of budget (nothing more is evaluated upstream).
    pub(super) fn out_of_budget(&self) -> bool {
        self.spent.get()
    }

    /// `f` run with `budget` instead of what is left (restored after).
    fn budgeted<T>(&self, budget: u64, f: impl FnOnce() -> T) -> T {
        let (left, spent) = (self.budget.replace(budget), self.spent.replace(false));
        let out = f();
        self.budget.set(left);
        self.spent.set(spent);
        out
    }

    /// Charge `cost` (plus the not yet charged variables `expr` names); false: over.
    fn charge(&self, expr: &kapi_codec::cel::Expression, cost: u64) -> bool {
        let mut total = cost;
        for (name, c, charged) in &self.costs {
            if !charged.get() && expr.selects("variables", name) {
                charged.set(true);
                total = total.saturating_add(*c);
            }
        }
        match self.budget.get().checked_sub(total) {
            Some(left) => {
                self.budget.set(left);
                true
            }
            None => {
                self.spent.set(true);
                false
            }
        }
    }

    pub(super) fn eval(&self, src: &str, compiled: &Compiled) -> Result<Value, String> {
        if self.spent.get() {
            return Err(OUT_OF_BUDGET.into());
        }
        let expr = compiled.as_ref().map_err(|e| format!("compilation error: {e}"))?;
        if let Some((_, e)) = self.failed.iter().find(|(n, _)| expr.selects("variables", n)) {
            return Err(format!("expression '{src}' resulted in error: {e}"));
        }
        let (result, cost) = self.run(expr);
        if !self.charge(expr, cost) {
            return Err(OUT_OF_BUDGET.into());
        }
        result.map_err(|e| format!("expression '{src}' resulted in error: {e}"))
    }

    /// One evaluation with the input bound, and its cost.
    fn run(&self, expr: &kapi_codec::cel::Expression) -> (Result<Value, String>, u64) {
        let i = self.input;
        let bindings = [
            ("object", i.object),
            ("oldObject", i.old),
            ("request", i.request),
            ("params", i.params),
            ("namespaceObject", i.namespace),
            ("variables", &self.variables),
        ];
        expr.eval_costed(&bindings, i.authorizer)
    }
}

/// Decide `policy` for `input`.
pub fn decide(policy: &Policy, input: &Input<'_>) -> Decided {
    let mut scope = Scope::new(input);
    match conditions_hold(&scope, &policy.conditions) {
        Ok(true) => {}
        Ok(false) => return Decided::default(),
        Err(_) if policy.ignore_failures => return Decided::default(),
        Err(message) => {
            let decisions = vec![Decision { index: 0, message, reason: None }];
            return Decided { decisions, annotations: Vec::new() };
        }
    }
    for v in &policy.variables {
        variable(&mut scope, v);
    }
    let mut decisions = Vec::new();
    for (index, v) in policy.validations.iter().enumerate() {
        match validation(&scope, v) {
            Ok(None) => {}
            Ok(Some((message, reason))) => decisions.push(Decision { index, message, reason }),
            // Out of budget: upstream's one decision for the whole evaluation.
            Err(_) if scope.out_of_budget() && policy.ignore_failures => {
                return Decided::default();
            }
            Err(message) if scope.out_of_budget() => {
                let decisions = vec![Decision { index: 0, message, reason: None }];
                return Decided { decisions, annotations: Vec::new() };
            }
            Err(_) if policy.ignore_failures => {}
            Err(message) => decisions.push(Decision { index, message, reason: None }),
        }
    }
    // The audit annotations have a budget of their own, as upstream's.
    let annotations = scope.budgeted(RUNTIME_CEL_COST_BUDGET, || {
        let all = policy.audit_annotations.iter();
        all.filter_map(|a| annotation(&scope, a).map(|v| (a.name.clone(), v))).collect()
    });
    Decided { decisions, annotations }
}

/// Upstream's match-condition verdict: any false skips the policy; else errors
/// (one, or several in brackets) are the decision's error. The conditions have their
/// own budget.
pub(super) fn conditions_hold(scope: &Scope<'_>, conditions: &[Named]) -> Result<bool, String> {
    scope.budgeted(MATCH_CONDITIONS_BUDGET, || conditions_in(scope, conditions))
}

fn conditions_in(scope: &Scope<'_>, conditions: &[Named]) -> Result<bool, String> {
    if conditions.is_empty() {
        return Ok(true);
    }
    let mut errors = Vec::new();
    for c in conditions {
        match scope.eval(&c.expression, &c.compiled) {
            Ok(Value::Bool(false)) => return Ok(false),
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Ok(true),
        1 => Err(errors.remove(0)),
        _ => Err(format!("[{}]", errors.join(", "))),
    }
}

/// Evaluate one variable: its value, or the error who names it reports; its cost is
/// kept, to be charged to the first expression that names it.
fn variable(scope: &mut Scope<'_>, v: &Named) {
    let result = match &v.compiled {
        Err(e) => Err(format!("composited variable \"{}\" fails to compile: {e}", v.name)),
        Ok(expr) => match scope.failed.iter().find(|(n, _)| expr.selects("variables", n)) {
            Some((_, e)) => Err(e.clone()),
            None => {
                let (result, cost) = scope.run(expr);
                scope.costs.push((v.name.clone(), cost, Cell::new(false)));
                result
            }
        },
    };
    match result {
        Ok(value) => {
            if let Value::Object(vars) = &mut scope.variables {
                vars.insert(v.name.clone(), value);
            }
        }
        Err(e) => scope.failed.push((v.name.clone(), e)),
    }
}

/// A failed validation's message and reason (None: it passed). `Err`: an error.
fn validation(
    scope: &Scope<'_>,
    v: &Validation,
) -> Result<Option<(String, Option<String>)>, String> {
    if scope.eval(&v.expression, &v.compiled)? == Value::Bool(true) {
        return Ok(None);
    }
    let from_expression = v
        .message_expression
        .as_ref()
        .and_then(|m| scope.eval("", m).ok())
        .and_then(|m| m.as_str().map(|s| s.trim().to_string()))
        .filter(|m| m.len() <= MAX_MESSAGE && !m.contains('\n'))
        .unwrap_or_default();
    let message = match (from_expression, v.message.trim()) {
        (m, _) if !m.is_empty() => m,
        (_, m) if !m.is_empty() => m.to_string(),
        _ => format!("failed expression: {}", v.expression.trim()),
    };
    Ok(Some((message, v.reason.clone())))
}

/// An audit annotation's value (None: excluded: empty or null).
fn annotation(scope: &Scope<'_>, a: &Named) -> Option<Result<String, String>> {
    match scope.eval(&a.expression, &a.compiled) {
        Err(e) => Some(Err(e)),
        Ok(Value::Null) => None,
        Ok(Value::String(s)) => {
            Some(Ok(s.trim().to_string())).filter(|v| v.as_ref().is_ok_and(|s| !s.is_empty()))
        }
        Ok(other) => Some(Err(format!(
            "valueExpression '{}' resulted in unsupported return type: {}. Return type must be either string or null.",
            a.expression,
            cel_type(&other)
        ))),
    }
}

fn cel_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null_type",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int",
        Value::Number(n) if n.is_u64() => "uint",
        Value::Number(_) => "double",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kapi_codec::cel::authorizer::{Authorizer, Decision as AuthzDecision, Question, User};
    use serde_json::json;

    /// How many variables, each splitting [`big`] (about 550k), cost more than upstream's
    /// budget together while each stays under the per-call limit.
    const DEAR_VARIABLES: usize = 20;

    /// An object with a 500 kB string.
    fn big() -> Value {
        json!({"data": {"big": "a".repeat(500_000)}})
    }

    fn policy(spec: Value) -> Policy {
        Policy::of(&json!({"metadata": {"name": "p"}, "spec": spec}))
    }

    fn run(p: &Policy, object: Value, params: Value) -> Decided {
        let request = json!({"operation": "CREATE", "userInfo": {"username": "bob"}});
        let null = Value::Null;
        let input = Input {
            object: &object,
            old: &null,
            request: &request,
            params: &params,
            namespace: &null,
            authorizer: None,
        };
        decide(p, &input)
    }

    /// Allows only `alice` (and no ServiceAccount).
    struct OnlyAlice;

    impl Authorizer for OnlyAlice {
        fn decide(&self, user: &User, _: &Question) -> AuthzDecision {
            let allowed = user.name == "alice";
            AuthzDecision { allowed, reason: "only alice".into(), error: None }
        }
    }

    fn run_as(p: &Policy, user: &str) -> Decided {
        let null = Value::Null;
        let cx = Context {
            authorizer: &OnlyAlice,
            user: User { name: user.into(), ..User::default() },
            request_resource: None,
        };
        let input = Input {
            object: &null,
            old: &null,
            request: &null,
            params: &null,
            namespace: &null,
            authorizer: Some(&cx),
        };
        decide(p, &input)
    }

    #[test]
    fn validations_and_match_conditions_ask_the_authorizer_as_the_requests_user() {
        let p = policy(json!({"validations": [{
            "expression": "authorizer.group('').resource('secrets').namespace('ns').check('get').allowed()",
            "messageExpression": "authorizer.group('').resource('secrets').check('get').reason()"}]}));
        assert_eq!(run_as(&p, "alice").decisions, []);
        let d = run_as(&p, "bob").decisions;
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].message, "only alice");
        let p = policy(json!({
            "matchConditions": [{"name": "sa-may", "expression":
                "authorizer.serviceAccount('ns', 'sa').group('').resource('pods').check('create').allowed()"}],
            "validations": [{"expression": "false"}]}));
        assert_eq!(run_as(&p, "alice").decisions, [], "the condition is false: not applied");
        let e = run(&p, json!({}), Value::Null).decisions;
        assert!(e[0].message.contains("no such attribute: authorizer"), "{e:?}");
    }

    #[test]
    fn a_failed_validation_says_its_message_in_upstreams_order_of_preference() {
        let p = policy(json!({"validations": [
            {"expression": "object.spec.replicas <= 5"},
            {"expression": "object.spec.replicas <= 4", "message": " too many "},
            {"expression": "object.spec.replicas <= 3", "message": "m",
             "messageExpression": "'replicas: ' + string(object.spec.replicas)", "reason": "Forbidden"},
            {"expression": "object.spec.replicas <= 2", "message": "fallback",
             "messageExpression": "'two\\nlines'"},
            {"expression": "object.spec.replicas <= 50"},
        ]}));
        let d = run(&p, json!({"spec": {"replicas": 6}}), Value::Null).decisions;
        let got: Vec<(usize, &str, Option<&str>)> =
            d.iter().map(|d| (d.index, d.message.as_str(), d.reason.as_deref())).collect();
        assert_eq!(
            got,
            [
                (0, "failed expression: object.spec.replicas <= 5", None),
                (1, "too many", None),
                (2, "replicas: 6", Some("Forbidden")),
                (3, "fallback", None),
            ]
        );
    }

    #[test]
    fn params_and_variables_are_seen_and_a_failed_variable_fails_who_names_it() {
        let p = policy(json!({
        "variables": [
            {"name": "limit", "expression": "params.max"},
            {"name": "over", "expression": "object.spec.replicas > variables.limit"},
            {"name": "broken", "expression": "object.nope"},
        ],
        "validations": [
            {"expression": "!variables.over"},
            {"expression": "variables.broken == 1"},
        ]}));
        let d = run(&p, json!({"spec": {"replicas": 6}}), json!({"max": 5})).decisions;
        assert_eq!(d[0].message, "failed expression: !variables.over");
        assert_eq!(
            d[1].message,
            "expression 'variables.broken == 1' resulted in error: no such key: nope"
        );
        assert_eq!(run(&p, json!({"spec": {"replicas": 6}}), json!({"max": 9})).decisions.len(), 1);
    }

    #[test]
    fn errors_follow_the_failure_policy() {
        let spec = json!({"validations": [{"expression": "object.missing > 1"}]});
        let d = run(&policy(spec.clone()), json!({}), Value::Null).decisions;
        assert_eq!(
            d[0].message,
            "expression 'object.missing > 1' resulted in error: no such key: missing"
        );
        let mut ignore = spec;
        ignore["failurePolicy"] = json!("Ignore");
        assert!(run(&policy(ignore), json!({}), Value::Null).decisions.is_empty());
    }

    #[test]
    fn match_conditions_skip_the_policy_when_false() {
        let p = policy(json!({
            "matchConditions": [{"name": "only-bob", "expression": "request.userInfo.username == 'alice'"}],
            "validations": [{"expression": "false"}]}));
        assert!(run(&p, json!({}), Value::Null).decisions.is_empty());
    }

    /// `[0, ..., 9]` comprehended `depth` times.
    fn nested(depth: usize) -> String {
        let mut e = "0".to_string();
        for i in 0..depth {
            e = format!("[0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map(x{i}, {e})");
        }
        e
    }

    /// Variables each under the per-call limit, together over the budget.
    fn dear_variables() -> Vec<Value> {
        (0..DEAR_VARIABLES)
            .map(|i| json!({"name": format!("v{i}"), "expression": "object.data.big.split('x')"}))
            .collect()
    }

    fn sum_of_variables() -> String {
        let all: Vec<String> =
            (0..DEAR_VARIABLES).map(|i| format!("size(variables.v{i})")).collect();
        all.join(" + ")
    }

    #[test]
    fn validations_past_the_budget_make_one_decision_under_the_failure_policy() {
        let spec = json!({"variables": dear_variables(), "validations": [
            {"expression": "variables.v0.size() == 1"},
            {"expression": format!("{} > 0", sum_of_variables())},
            {"expression": "false"},
        ]});
        let d = run(&policy(spec.clone()), big(), Value::Null).decisions;
        assert_eq!(d, [Decision { index: 0, message: OUT_OF_BUDGET.into(), reason: None }]);
        let mut ignore = spec;
        ignore["failurePolicy"] = json!("Ignore");
        assert_eq!(run(&policy(ignore), big(), Value::Null).decisions, []);
    }

    #[test]
    fn unnamed_variables_cost_nothing_and_each_is_charged_once() {
        // Half the variables, named twice: within the budget only if each is charged
        // once and the other half not at all.
        let half: Vec<String> =
            (0..DEAR_VARIABLES / 2).map(|i| format!("size(variables.v{i})")).collect();
        let half = half.join(" + ");
        let spec = json!({"variables": dear_variables(), "validations": [
            {"expression": format!("{half} > 0")},
            {"expression": format!("{half} > 0")},
            {"expression": "false", "message": "reached"},
        ]});
        let d = run(&policy(spec), big(), Value::Null).decisions;
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].message, "reached");
    }

    #[test]
    fn an_expression_past_the_per_call_limit_is_a_runtime_error() {
        let src = format!("size({}) > 0", nested(5));
        let d = run(&policy(json!({"validations": [{"expression": src}]})), json!({}), Value::Null);
        assert_eq!(
            d.decisions[0].message,
            format!(
                "expression '{src}' resulted in error: operation cancelled: actual cost limit exceeded"
            )
        );
    }

    #[test]
    fn each_mutation_scope_has_a_budget_of_its_own() {
        let p = policy(json!({"variables": dear_variables()}));
        let (null, object) = (Value::Null, big());
        let input = Input {
            object: &object,
            old: &null,
            request: &null,
            params: &null,
            namespace: &null,
            authorizer: None,
        };
        let over = format!("{} > 0", sum_of_variables());
        let compiled = super::super::compile::compile_as(&over, super::super::compile::VARS, true);
        let scope = Scope::with_variables(&p, &input);
        assert_eq!(scope.eval(&over, &compiled), Err(OUT_OF_BUDGET.to_string()));
        assert!(scope.out_of_budget());
        let half = "variables.v0.size() == 1";
        let compiled = super::super::compile::compile_as(half, super::super::compile::VARS, true);
        let fresh = Scope::with_variables(&p, &input);
        assert_eq!(fresh.eval(half, &compiled), Ok(json!(true)));
    }

    #[test]
    fn audit_annotations_publish_strings_exclude_null_and_refuse_other_types() {
        let p = policy(json!({"auditAnnotations": [
            {"key": "replicas", "valueExpression": "'n=' + string(object.spec.replicas)"},
            {"key": "none", "valueExpression": "null"},
            {"key": "bad", "valueExpression": "1"},
        ]}));
        let a = run(&p, json!({"spec": {"replicas": 2}}), Value::Null).annotations;
        assert_eq!(a[0], ("replicas".to_string(), Ok("n=2".to_string())));
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].0, "bad");
        assert!(a[1].1.as_ref().unwrap_err().contains("unsupported return type: int"), "{a:?}");
    }
}
