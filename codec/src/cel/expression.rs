//! One CEL expression of any result type over named JSON variables, as the structured
//! authentication configuration uses them (`claims` for claim mappings and claim
//! validation rules, `user` for user validation rules): compiled once
//! ([`Expression::compile`]), evaluated per token ([`Expression::eval`]) to a JSON value.
//!
//! The same parser, checker and metered interpreter as CRD validation rules and
//! [`super::Condition`]. A variable is `dyn`, or typed by an OpenAPI schema (then the
//! checker refuses fields the schema does not declare, as cel-go refuses fields of a
//! declared object type). Invariants: no input panics; one evaluation costs at most
//! [`super::PER_CALL_LIMIT`]; the result's conversion to JSON is bounded by
//! [`MAX_VALUE_DEPTH`]; texts are cel-go's (`ERROR: <input>:l:c: ...`).

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::ast::{Expr, IdedExpr};
use regex::Regex;
use serde_json::Value;

use super::authorizer::{AuthzTy, AuthzVal, Context};
use super::check::{Checker, Info, Ty, walk};
use super::eval::{Env, EvalError, MAX_VALUE_DEPTH, Scope, Val, any_shape, from_json, visible};
use super::shape::Shape;
use super::{MAX_EXPRESSION_LEN, PER_CALL_LIMIT, display_error, line_col, parse};

/// The authorizer library's variable.
const AUTHORIZER: &str = "authorizer";

/// A variable an expression may name: `dyn`, or typed by an OpenAPI schema.
#[derive(Debug, Clone, Copy)]
pub struct Var<'s> {
    pub name: &'s str,
    pub schema: Option<&'s Value>,
}

/// A compiled expression.
#[derive(Debug)]
pub struct Expression {
    ast: IdedExpr,
    regexes: HashMap<u64, Arc<Regex>>,
    /// The shapes of schema-typed variables, by name.
    shapes: Vec<(String, Arc<Shape>)>,
    /// The static result type as cel-go prints it (`bool`, `string`, `dyn`, ...).
    output: String,
    limit: u64,
}

impl Expression {
    /// Parse and check `src` with `vars` declared. `Err` is cel-go's error text.
    pub fn compile(src: &str, vars: &[Var<'_>]) -> Result<Expression, String> {
        Expression::compile_in(src, vars, false, false)
    }

    /// [`Expression::compile_with_authorizer`] with the object construction of mutating
    /// admission policies declared (`Object{...}`, `JSONPatch{...}`,
    /// `jsonpatch.escapeKey`), as upstream compiles a mutation (authorizer included).
    pub fn compile_mutation(src: &str, vars: &[Var<'_>]) -> Result<Expression, String> {
        Expression::compile_in(src, vars, true, true)
    }

    /// As [`Expression::compile`], with the authorizer library's `authorizer` variable
    /// declared too (admission expressions); bind it with [`Expression::eval_authorized`].
    pub fn compile_with_authorizer(src: &str, vars: &[Var<'_>]) -> Result<Expression, String> {
        Expression::compile_in(src, vars, false, true)
    }

    fn compile_in(
        src: &str,
        vars: &[Var<'_>],
        constructs: bool,
        authorizer: bool,
    ) -> Result<Expression, String> {
        if src.len() > MAX_EXPRESSION_LEN {
            return Err(format!(
                "ERROR: <input>:1:1: expression size exceeds the limit of {MAX_EXPRESSION_LEN} code points"
            ));
        }
        let (ast, info) = parse(src)?;
        let shapes: Vec<(String, Arc<Shape>)> = vars
            .iter()
            .filter_map(|v| {
                Some((v.name.to_string(), Arc::new(Shape::from_schema(v.schema?, false))))
            })
            .collect();
        let mut typed: Vec<(&str, Info)> = vars
            .iter()
            .map(|v| match shapes.iter().find(|(n, _)| n == v.name) {
                Some((_, s)) => (v.name, Info::from_shape(s)),
                None => (v.name, Info::dyn_()),
            })
            .collect();
        if authorizer {
            typed.push((AUTHORIZER, Info { ty: Ty::Authz(AuthzTy::Authorizer), size: 1 }));
        }
        let mut checker = Checker::with_typed_vars(typed);
        if constructs {
            checker = checker.with_construction();
        }
        let checked = checker.precompile_regexes(&ast).and_then(|()| checker.run(&ast));
        let checked = checked.map_err(|e| {
            let (line, col) = match info.offset_for(e.id) {
                Some((start, _)) => line_col(src, start as usize),
                None => (1, 0),
            };
            display_error(src, line, col, &e.msg)
        })?;
        Ok(Expression {
            ast,
            regexes: checked.regexes,
            shapes,
            output: super::check::ty_name(&checked.ty),
            limit: PER_CALL_LIMIT,
        })
    }

    /// The static result type as cel-go names it (`dyn` when only runtime knows).
    pub fn output_type(&self) -> &str {
        &self.output
    }

    /// Whether the result may be a bool (the static type is `bool` or `dyn`).
    pub fn may_be_bool(&self) -> bool {
        matches!(self.output.as_str(), "bool" | "dyn")
    }

    /// Whether the expression selects `operand.field` anywhere (`claims.email`).
    pub fn selects(&self, operand: &str, field: &str) -> bool {
        let mut found = false;
        let _ = walk(&self.ast, &mut |e: &IdedExpr| {
            if let Expr::Select(s) = &e.expr
                && s.field == field
                && matches!(&s.operand.expr, Expr::Ident(n) if n == operand)
            {
                found = true;
            }
            Ok(())
        });
        found
    }

    /// Evaluate with `bindings` (name, JSON value). `Err`: cel-go's runtime error text,
    /// or a result JSON cannot hold (bytes, timestamps, durations, types, NaN).
    pub fn eval(&self, bindings: &[(&str, &Value)]) -> Result<Value, String> {
        self.eval_authorized(bindings, None)
    }

    /// [`Expression::eval`] with `authorizer` bound to `authz` (None: unbound, an
    /// expression naming it fails at runtime).
    pub fn eval_authorized(
        &self,
        bindings: &[(&str, &Value)],
        authz: Option<&Context<'_>>,
    ) -> Result<Value, String> {
        self.eval_costed(bindings, authz).0
    }

    /// [`Expression::eval_authorized`] with what the evaluation cost (kapi's units; at
    /// least the per-call limit when it ran out), for a caller's own budget.
    pub fn eval_costed(
        &self,
        bindings: &[(&str, &Value)],
        authz: Option<&Context<'_>>,
    ) -> (Result<Value, String>, u64) {
        let mut scope = Scope::new();
        if let Some(cx) = authz {
            scope.bind(AUTHORIZER, Val::Authz(AuthzVal::root(cx)));
        }
        for (name, v) in bindings {
            let shape = self.shapes.iter().find(|(n, _)| n == name).map(|(_, s)| &**s);
            scope.bind(name, from_json(v, shape.unwrap_or_else(|| any_shape())));
        }
        let mut env =
            Env { regexes: &self.regexes, cost: 0, limit: self.limit, movable: Vec::new() };
        let result = match env.eval(&self.ast, &mut scope) {
            Ok(v) => to_json(&v, 0),
            Err(EvalError::Msg(m)) => Err(m),
            Err(EvalError::Cost) => {
                env.cost = env.cost.max(self.limit);
                Err("operation cancelled: actual cost limit exceeded".into())
            }
        };
        (result, env.cost)
    }

    /// The same expression with a lower per-call cost limit (tests).
    pub fn with_limit(mut self, limit: u64) -> Expression {
        self.limit = limit;
        self
    }
}

/// A CEL value as JSON (maps need string keys).
fn to_json(v: &Val<'_>, depth: usize) -> Result<Value, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err("value is nested too deeply".into());
    }
    let unsupported = |t: &str| Err(format!("a {t} result cannot be used here"));
    Ok(match v {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Int(i) => Value::from(*i),
        Val::Uint(u) => Value::from(*u),
        Val::Double(d) => match serde_json::Number::from_f64(*d) {
            Some(n) => Value::Number(n),
            None => return unsupported("non-finite double"),
        },
        Val::Str(s) => Value::String(s.to_string()),
        Val::List(l) => {
            Value::Array(l.iter().map(|x| to_json(x, depth + 1)).collect::<Result<_, _>>()?)
        }
        Val::JList(a, _) => Value::Array(a.to_vec()),
        Val::Map(m) => {
            let mut out = serde_json::Map::new();
            for (k, x) in m.iter() {
                let Val::Str(k) = k else { return unsupported("map with non-string keys") };
                out.insert(k.to_string(), to_json(x, depth + 1)?);
            }
            Value::Object(out)
        }
        Val::JObj(o, s) => {
            Value::Object(visible(o, s).map(|(k, x)| (k.clone(), x.clone())).collect())
        }
        Val::Bytes(_) => return unsupported("bytes"),
        Val::Ts(_) => return unsupported("timestamp"),
        Val::Dur(_) => return unsupported("duration"),
        Val::Type(_) => return unsupported("type"),
        Val::Opt(_) => return unsupported("optional"),
        Val::Authz(a) => return unsupported(a.ty().name()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims() -> Vec<Var<'static>> {
        vec![Var { name: "claims", schema: None }]
    }

    #[test]
    fn expressions_return_json_values_of_any_type() {
        let c = json!({"sub": "u1", "groups": ["a", "b"], "n": 3, "org": {"id": "x"}});
        let eval = |src: &str| Expression::compile(src, &claims()).unwrap().eval(&[("claims", &c)]);
        assert_eq!(eval("'user:' + claims.sub"), Ok(json!("user:u1")));
        assert_eq!(eval("claims.groups.map(g, 'g:' + g)"), Ok(json!(["g:a", "g:b"])));
        assert_eq!(eval("claims.groups"), Ok(json!(["a", "b"])));
        assert_eq!(eval("claims.n + 1"), Ok(json!(4)));
        assert_eq!(eval("claims.org"), Ok(json!({"id": "x"})));
        assert_eq!(eval("{'k': [claims.sub]}"), Ok(json!({"k": ["u1"]})));
        assert_eq!(eval("has(claims.nope) ? claims.nope : null"), Ok(Value::Null));
        assert_eq!(eval("claims.nope"), Err("no such key: nope".into()));
        assert!(eval("b'x'").is_err());
    }

    #[test]
    fn output_types_and_selects_are_reported() {
        let e = Expression::compile("claims.email_verified == true", &claims()).unwrap();
        assert_eq!(e.output_type(), "bool");
        assert!(e.selects("claims", "email_verified"));
        assert!(!e.selects("claims", "email"));
        let e = Expression::compile("claims.email", &claims()).unwrap();
        assert!(e.may_be_bool() && e.selects("claims", "email"));
        assert!(!Expression::compile("'x'", &claims()).unwrap().may_be_bool());
        let e = Expression::compile("nope", &claims()).unwrap_err();
        assert!(e.starts_with("ERROR: <input>:1:1: undeclared reference to 'nope'"), "{e}");
    }

    #[test]
    fn schema_typed_variables_refuse_undeclared_fields() {
        let schema = json!({"type": "object", "properties": {
            "username": {"type": "string"},
            "groups": {"type": "array", "items": {"type": "string"}}}});
        let vars = [Var { name: "user", schema: Some(&schema) }];
        let e = Expression::compile("user.nope == 'x'", &vars).unwrap_err();
        assert!(e.contains("undefined field 'nope'"), "{e}");
        let e = Expression::compile("user.groups.exists(g, g == 'admins')", &vars).unwrap();
        assert_eq!(e.output_type(), "bool");
        let u = json!({"username": "bob", "groups": ["admins"]});
        assert_eq!(e.eval(&[("user", &u)]), Ok(json!(true)));
    }

    #[test]
    fn evaluation_reports_its_cost() {
        let c = json!({"items": [1, 2, 3, 4, 5, 6, 7, 8]});
        let cheap = Expression::compile("claims.items[0]", &claims()).unwrap();
        let dear = Expression::compile("claims.items.map(i, i + 1)", &claims()).unwrap();
        let (r, low) = cheap.eval_costed(&[("claims", &c)], None);
        let (_, high) = dear.eval_costed(&[("claims", &c)], None);
        assert_eq!(r, Ok(json!(1)));
        assert!(0 < low && low < high, "{low} {high}");
        let (r, spent) = dear.with_limit(5).eval_costed(&[("claims", &c)], None);
        assert!(r.is_err() && spent >= 5, "{spent}");
    }

    #[test]
    fn evaluation_is_metered() {
        let e = Expression::compile("claims.items.map(i, i + 1)", &claims()).unwrap().with_limit(5);
        let c = json!({"items": [1, 2, 3, 4, 5, 6, 7, 8]});
        assert_eq!(
            e.eval(&[("claims", &c)]),
            Err("operation cancelled: actual cost limit exceeded".into())
        );
    }
}
