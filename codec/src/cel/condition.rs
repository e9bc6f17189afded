//! One boolean CEL expression over named JSON variables, as admission uses them
//! (a webhook's `matchConditions`: `object`, `oldObject`, `request`, ...): compiled once
//! ([`Condition::compile`]), evaluated per request ([`Condition::eval`]).
//!
//! The same parser, checker and metered interpreter as CRD validation rules; every
//! variable is `dyn` (the checker accepts any field on it, the interpreter decides at
//! runtime). Invariants: no input panics; one evaluation costs at most
//! [`super::PER_CALL_LIMIT`]; texts are cel-go's (`ERROR: <input>:l:c: ...`).

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::ast::IdedExpr;
use regex::Regex;
use serde_json::Value;

use super::check::{Checker, Ty};
use super::eval::{Env, EvalError, Scope, Val, any_shape, from_json};
use super::{MAX_EXPRESSION_LEN, PER_CALL_LIMIT, display_error, line_col, parse};

/// A compiled expression and the variables it may name.
#[derive(Debug)]
pub struct Condition {
    ast: IdedExpr,
    regexes: HashMap<u64, Arc<Regex>>,
    limit: u64,
}

impl Condition {
    /// Parse and check `src` with `vars` declared. `Err` is cel-go's error text.
    pub fn compile(src: &str, vars: &[&str]) -> Result<Condition, String> {
        if src.len() > MAX_EXPRESSION_LEN {
            return Err(format!(
                "ERROR: <input>:1:1: expression size exceeds the limit of {MAX_EXPRESSION_LEN} code points"
            ));
        }
        let (ast, info) = parse(src)?;
        let mut checker = Checker::with_vars(vars);
        let checked = checker.precompile_regexes(&ast).and_then(|()| checker.run(&ast));
        let checked = checked.map_err(|e| {
            let (line, col) = match info.offset_for(e.id) {
                Some((start, _)) => line_col(src, start as usize),
                None => (1, 0),
            };
            display_error(src, line, col, &e.msg)
        })?;
        if !matches!(checked.ty, Ty::Bool | Ty::Dyn) {
            return Err("cel expression must evaluate to a bool".into());
        }
        Ok(Condition { ast, regexes: checked.regexes, limit: PER_CALL_LIMIT })
    }

    /// Evaluate with `bindings` (name, JSON value; a null value is CEL's `null`).
    /// `Ok(None)`: the result is not a bool. `Err`: cel-go's runtime error text.
    pub fn eval(&self, bindings: &[(&str, &Value)]) -> Result<Option<bool>, String> {
        let mut scope = Scope::new();
        for (name, v) in bindings {
            scope.bind(name, from_json(v, any_shape()));
        }
        let mut env =
            Env { regexes: &self.regexes, cost: 0, limit: self.limit, movable: Vec::new() };
        match env.eval(&self.ast, &mut scope) {
            Ok(Val::Bool(b)) => Ok(Some(b)),
            Ok(_) => Ok(None),
            Err(EvalError::Msg(m)) => Err(m),
            Err(EvalError::Cost) => Err("operation cancelled: actual cost limit exceeded".into()),
        }
    }

    /// The same expression with a lower per-call cost limit (tests).
    pub fn with_limit(mut self, limit: u64) -> Condition {
        self.limit = limit;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const VARS: &[&str] = &["object", "oldObject", "request"];

    #[test]
    fn conditions_see_object_old_object_and_request() {
        let obj = json!({"metadata": {"name": "a", "labels": {"team": "x"}}});
        let req = json!({"operation": "CREATE", "userInfo": {"username": "bob"}});
        let c = Condition::compile(
            "object.metadata.labels.team == 'x' && request.userInfo.username.startsWith('b') && oldObject == null",
            VARS,
        )
        .unwrap();
        let b = [("object", &obj), ("oldObject", &Value::Null), ("request", &req)];
        assert_eq!(c.eval(&b), Ok(Some(true)));
        let c = Condition::compile("has(object.metadata.annotations)", VARS).unwrap();
        assert_eq!(c.eval(&b), Ok(Some(false)));
    }

    #[test]
    fn errors_are_cel_go_texts() {
        let e = Condition::compile("nope == 1", VARS).unwrap_err();
        assert!(e.starts_with("ERROR: <input>:1:1: undeclared reference to 'nope'"), "{e}");
        assert_eq!(
            Condition::compile("1 + 1", VARS).unwrap_err(),
            "cel expression must evaluate to a bool"
        );
        let c = Condition::compile("object.spec.x == 1", VARS).unwrap();
        let obj = json!({"metadata": {}});
        assert_eq!(c.eval(&[("object", &obj)]), Err("no such key: spec".into()));
    }

    #[test]
    fn evaluation_is_metered() {
        let c = Condition::compile("object.items.all(i, i > 0)", VARS).unwrap().with_limit(5);
        let obj = json!({"items": [1, 2, 3, 4, 5, 6, 7, 8]});
        assert_eq!(
            c.eval(&[("object", &obj)]),
            Err("operation cancelled: actual cost limit exceeded".into())
        );
    }
}
