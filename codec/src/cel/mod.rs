//! CEL `x-kubernetes-validations` of CustomResourceDefinitions: compile the rules of one
//! version's `openAPIV3Schema` ([`compile`]) and check objects against them
//! ([`Rules::validate`]). Pure functions over `serde_json::Value`, no I/O.
//!
//! The `cel` crate is used only to parse expressions (its parser expands the standard
//! macros `has`, `all`, `exists`, `exists_one`, `map`, `filter` into comprehensions);
//! kapi type-checks ([`check`]) and evaluates ([`eval`]) the AST itself, so that every
//! evaluation is metered and no input can panic or run unbounded.
//!
//! Upstream behaviour reproduced (texts are upstream's, they are protocol):
//! - CRD-time errors at `<prefix>…x-kubernetes-validations[i].rule` (`rule is not
//!   specified`, `compilation failed: ERROR: <input>:l:c: …`, `cel expression must
//!   evaluate to a bool`, the estimated cost limit per rule of 10M and per schema of 100M,
//!   `oldSelf cannot be used on the uncorrelatable portion of the schema within …`,
//!   message/messageExpression/reason/fieldPath/optionalOldSelf checks).
//! - Runtime: `self` bound to the node's value typed by its schema, `oldSelf` to the
//!   correlated old value (object properties, map values and `x-kubernetes-list-type:
//!   map` items by key); transition rules are skipped on create unless `optionalOldSelf`;
//!   null values are not validated; errors `<path>: Invalid value: "<type>": <message>`,
//!   reasons, `fieldPath`, `messageExpression`; per-call cost limit 1M and per-object
//!   budget 10M with upstream's messages.
//!
//! The `authz` library (`authorizer`) is offered to admission expressions only
//! ([`Expression::compile_with_authorizer`], [`authorizer`]), whose `request` and
//! `namespaceObject` are typed as upstream types them ([`admission_vars`]); [`type_schema`] gives a
//! served kind's schema with its references inlined, for typing a variable by it.
//!
//! Not supported (a compile error, never a panic): the Kubernetes extension libraries
//! `quantity`, `url`, `ip`, `cidr`, `semver`, `format`, `authz` (in CRD rules), `lists.range`, the
//! `optional.*` constructors and `?.`/`[?]` syntax (an `optionalOldSelf` rule may call
//! `hasValue()`, `value()` and `orValue()` on `oldSelf`), protobuf message literals.
//! Approximations: the type checker accepts anything where a type is `dyn`; the cost
//! estimate is simpler than cel-go's (see [`check`]); runtime costs are kapi's own units.

pub mod admission_vars;
pub mod authorizer;
mod check;
mod condition;
mod construct;
mod eval;
mod expression;
mod shape;
pub mod type_schema;

pub use condition::Condition;
pub use expression::{Expression, Var};

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::ast::IdedExpr;
use regex::Regex;
use serde_json::Value;

use crate::error::{FieldError, FieldErrorType};
use check::{Checker, Info, Ty};
use eval::{Env, EvalError, Scope, Val, from_json};
use shape::{Kind, Shape};

/// Upstream's `PerCallLimit`: the most one rule evaluation may cost.
pub const PER_CALL_LIMIT: u64 = 1_000_000;
/// Upstream's `RuntimeCELCostBudget`: the most all rules may cost on one object.
pub const RUNTIME_CEL_COST_BUDGET: u64 = 10_000_000;
/// Upstream's `StaticEstimatedCostLimit`: the largest estimated cost of one rule times
/// the number of times it can run.
pub const STATIC_ESTIMATED_COST_LIMIT: u64 = 10_000_000;
/// Upstream's `StaticEstimatedCRDCostLimit`: the largest estimated total of a schema.
pub const STATIC_ESTIMATED_CRD_COST_LIMIT: u64 = 100_000_000;
/// Upstream's `MaxEvaluatedMessageExpressionSizeBytes`.
pub const MAX_EVALUATED_MESSAGE_EXPRESSION_SIZE_BYTES: usize = 5 * 1024;
/// Expressions longer than this are refused before parsing (keeps the parser bounded).
const MAX_EXPRESSION_LEN: usize = 100_000;
/// The parser's nesting limit (cel-go's default is deeper; CRD rules never come close).
const MAX_PARSE_DEPTH: u16 = 48;
/// Brackets nested deeper than this are refused before parsing.
const MAX_NESTING: usize = 48;
/// ASTs deeper than this (macro expansions included) are refused: the checker and the
/// interpreter recurse once per level on the caller's stack.
const MAX_AST_DEPTH: usize = 96;
/// The parser thread's stack.
const PARSE_STACK: usize = 256 << 20;

/// The compiled `x-kubernetes-validations` of one schema.
#[derive(Debug)]
pub struct Rules {
    root: Option<Node>,
    /// [`PER_CALL_LIMIT`] and [`RUNTIME_CEL_COST_BUDGET`]; lowered only by tests.
    per_call_limit: u64,
    budget: u64,
}

#[derive(Debug)]
struct Node {
    shape: Arc<Shape>,
    rules: Vec<Rule>,
    props: Vec<(String, Node)>,
    items: Option<Box<Node>>,
    additional: Option<Box<Node>>,
}

#[derive(Debug)]
struct Program {
    ast: IdedExpr,
    regexes: HashMap<u64, Arc<Regex>>,
}

#[derive(Debug)]
struct Rule {
    /// `ruleErrorString`: the trimmed message if any, else the trimmed rule.
    error_string: String,
    /// The default failure detail (`message`, or `failed rule: <rule>`).
    detail: String,
    program: Program,
    message_expression: Option<Program>,
    message_expression_src: String,
    reason: Option<FieldErrorType>,
    /// The normalized `fieldPath` (`a.b[key]`), appended to the node's path.
    field_path: Option<String>,
    uses_old_self: bool,
    optional_old_self: bool,
}

/// One compiled expression's static facts.
struct Compiled {
    program: Program,
    cost: u64,
    uses_old_self: bool,
}

/// Compiles every rule of `schema` (an `openAPIV3Schema`). `path_prefix` is the field
/// path of the schema in the CRD (`spec.validation.openAPIV3Schema` or
/// `spec.versions[0].schema.openAPIV3Schema`); errors are reported under it as upstream
/// does when a CRD is created or updated.
pub fn compile(schema: &Value, path_prefix: &str) -> Result<Rules, Vec<FieldError>> {
    let shape = Arc::new(Shape::from_schema(schema, true));
    let mut cx = CompileCx { schema_errs: Vec::new(), cel_errs: Vec::new(), costs: Vec::new() };
    let root = cx.node(schema, shape, path_prefix, 1, None);
    let total: u64 = cx.costs.iter().fold(0u64, |a, (_, c)| a.saturating_add(*c));
    if total > STATIC_ESTIMATED_CRD_COST_LIMIT {
        let mut expensive = cx.costs.clone();
        expensive.sort_by_key(|e| std::cmp::Reverse(e.1));
        for (path, _) in expensive.into_iter().take(4) {
            cx.cel_errs.push(FieldError::forbidden(
                path,
                "contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema",
            ));
        }
        cx.cel_errs.push(FieldError::forbidden(
            path_prefix,
            &cost_error_message(
                "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
                total,
                STATIC_ESTIMATED_CRD_COST_LIMIT,
            ),
        ));
    }
    let mut errs = cx.schema_errs;
    errs.extend(cx.cel_errs);
    if errs.is_empty() {
        Ok(Rules { root, per_call_limit: PER_CALL_LIMIT, budget: RUNTIME_CEL_COST_BUDGET })
    } else {
        Err(errs)
    }
}

/// Upstream's `getCostErrorMessage`.
fn cost_error_message(name: &str, cost: u64, limit: u64) -> String {
    let factor = cost as f64 / limit as f64;
    let shown = if factor > 100.0 {
        "more than 100x".to_string()
    } else if factor < 1.5 {
        format!("{factor:.6}x")
    } else {
        format!("{factor:.1}x")
    };
    format!(
        "{name} exceeds budget by factor of {shown} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )
}

struct CompileCx {
    schema_errs: Vec<FieldError>,
    cel_errs: Vec<FieldError>,
    /// (field path, estimated cost) of every expression, for the schema total.
    costs: Vec<(String, u64)>,
}

fn has_newlines(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

impl CompileCx {
    /// Compiles the rules at `schema` and below. `cardinality`: how many times a rule at
    /// this node can run per object. `no_old_self`: the path of the nearest ancestor whose
    /// elements cannot be correlated with old ones (non-map lists).
    fn node(
        &mut self,
        schema: &Value,
        shape: Arc<Shape>,
        path: &str,
        cardinality: u64,
        no_old_self: Option<&str>,
    ) -> Option<Node> {
        let mut props = Vec::new();
        let mut items = None;
        let mut additional = None;
        let schema_errs_before = self.schema_errs.len();
        if let Some(p) = schema.get("properties").and_then(Value::as_object) {
            for (name, sub) in p {
                let child = match &shape.kind {
                    Kind::Object(f) => f.get(name).cloned(),
                    _ => None,
                };
                let child = child.unwrap_or_else(|| Arc::new(Shape::from_schema(sub, false)));
                let sub_path = format!("{path}.properties[{name}]");
                if let Some(n) = self.node(sub, child, &sub_path, cardinality, no_old_self) {
                    props.push((name.clone(), n));
                }
            }
        }
        if let Some(sub) = schema.get("additionalProperties").filter(|a| a.is_object()) {
            let child = match &shape.kind {
                Kind::Map(v) => v.clone(),
                _ => Arc::new(Shape::from_schema(sub, false)),
            };
            let card = cardinality.saturating_mul(shape.max_size().max(1));
            let sub_path = format!("{path}.additionalProperties");
            additional = self.node(sub, child, &sub_path, card, no_old_self).map(Box::new);
        }
        if let Some(sub) = schema.get("items").filter(|a| a.is_object()) {
            let child = match &shape.kind {
                Kind::List(e) => e.clone(),
                _ => Arc::new(Shape::from_schema(sub, false)),
            };
            let card = cardinality.saturating_mul(shape.max_size().max(1));
            let sub_path = format!("{path}.items");
            let map_list =
                schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map");
            let forbid = if map_list { no_old_self } else { no_old_self.or(Some(path)) };
            items = self.node(sub, child, &sub_path, card, forbid).map(Box::new);
        }
        let rules = match schema.get("x-kubernetes-validations").and_then(Value::as_array) {
            Some(list) => {
                self.rules(list, &shape, path, cardinality, no_old_self, schema_errs_before)
            }
            None => Vec::new(),
        };
        if rules.is_empty() && props.is_empty() && items.is_none() && additional.is_none() {
            return None;
        }
        Some(Node { shape, rules, props, items, additional })
    }

    fn rules(
        &mut self,
        list: &[Value],
        shape: &Arc<Shape>,
        path: &str,
        cardinality: u64,
        no_old_self: Option<&str>,
        schema_errs_before: usize,
    ) -> Vec<Rule> {
        let mut out = Vec::new();
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        // Schema checks of every rule first, as upstream.
        for (i, r) in list.iter().enumerate() {
            let at = |field: &str| format!("{path}.x-kubernetes-validations[{i}].{field}");
            let (rule, message, msg_expr) =
                (s(r, "rule"), s(r, "message"), s(r, "messageExpression"));
            let field_path = s(r, "fieldPath");
            if rule.trim().is_empty() {
                self.schema_errs.push(FieldError::required(at("rule"), "rule is not specified"));
            } else if !message.is_empty() && message.trim().is_empty() {
                self.schema_errs.push(FieldError::invalid(
                    at("message"),
                    &Value::String(message.clone()),
                    "message must be non-empty if specified",
                ));
            } else if has_newlines(message.trim()) {
                self.schema_errs.push(FieldError::invalid(
                    at("message"),
                    &Value::String(message.clone()),
                    "message must not contain line breaks",
                ));
            } else if has_newlines(rule.trim()) && message.trim().is_empty() {
                self.schema_errs.push(FieldError::required(
                    at("message"),
                    "message must be specified if rule contains line breaks",
                ));
            }
            if !msg_expr.is_empty() && msg_expr.trim().is_empty() {
                self.schema_errs.push(FieldError::required(
                    at("messageExpression"),
                    "messageExpression must be non-empty if specified",
                ));
            }
            if let Some(reason) = r.get("reason").and_then(Value::as_str)
                && reason_type(reason).is_none()
            {
                self.schema_errs.push(FieldError::not_supported(
                    at("reason"),
                    &Value::String(reason.to_string()),
                    &[
                        "FieldValueDuplicate",
                        "FieldValueForbidden",
                        "FieldValueInvalid",
                        "FieldValueRequired",
                    ],
                ));
            }
            if !field_path.is_empty() {
                let fp = Value::String(field_path.clone());
                if field_path.trim().is_empty() {
                    self.schema_errs.push(FieldError::invalid(
                        at("fieldPath"),
                        &fp,
                        "fieldPath must be non-empty if specified",
                    ));
                } else if has_newlines(&field_path) {
                    self.schema_errs.push(FieldError::invalid(
                        at("fieldPath"),
                        &fp,
                        "fieldPath must not contain line breaks",
                    ));
                } else if normalize_field_path(&field_path, shape).is_none() {
                    self.schema_errs.push(FieldError::invalid(
                        at("fieldPath"),
                        &fp,
                        "fieldPath must be a valid path",
                    ));
                }
            }
        }
        // Invalid schemas are not compiled (their errors would not be actionable).
        if self.schema_errs.len() > schema_errs_before {
            return out;
        }
        for (i, r) in list.iter().enumerate() {
            let at = |field: &str| format!("{path}.x-kubernetes-validations[{i}].{field}");
            let (rule, message, msg_expr) =
                (s(r, "rule"), s(r, "message"), s(r, "messageExpression"));
            let optional_old_self = r.get("optionalOldSelf").and_then(Value::as_bool);
            let shown = go_validation_rule(r);
            let self_info = Info::from_shape(shape);
            let compiled =
                compile_expr(&rule, self_info.clone(), optional_old_self == Some(true), false);
            let mut rule_ok = None;
            match compiled {
                Ok(c) => {
                    let cost = c.cost.saturating_mul(cardinality);
                    if cost > STATIC_ESTIMATED_COST_LIMIT {
                        self.cel_errs.push(FieldError::forbidden(
                            at("rule"),
                            &cost_error_message(
                                "estimated rule cost",
                                cost,
                                STATIC_ESTIMATED_COST_LIMIT,
                            ),
                        ));
                    }
                    self.costs.push((at("rule"), cost));
                    rule_ok = Some(c);
                }
                Err(detail) => self.cel_errs.push(invalid_shown(at("rule"), &shown, &detail)),
            }
            let mut msg_program = None;
            if !msg_expr.trim().is_empty() {
                match compile_expr(&msg_expr, self_info, optional_old_self == Some(true), true) {
                    Ok(c) => {
                        if c.cost > STATIC_ESTIMATED_COST_LIMIT {
                            self.cel_errs.push(FieldError::forbidden(
                                at("messageExpression"),
                                &cost_error_message(
                                    "estimated messageExpression cost",
                                    c.cost,
                                    STATIC_ESTIMATED_COST_LIMIT,
                                ),
                            ));
                        }
                        self.costs.push((at("messageExpression"), c.cost));
                        msg_program = Some(c.program);
                    }
                    Err(detail) => {
                        self.cel_errs.push(invalid_shown(at("messageExpression"), &shown, &detail))
                    }
                }
            }
            let Some(c) = rule_ok else { continue };
            if c.uses_old_self {
                if let Some(p) = no_old_self {
                    self.cel_errs.push(FieldError::invalid(
                        at("rule"),
                        &Value::String(rule.clone()),
                        &format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {p}"),
                    ));
                }
            } else if let Some(b) = optional_old_self {
                self.cel_errs.push(FieldError::invalid(
                    at("optionalOldSelf"),
                    &Value::Bool(b),
                    "may not be set if oldSelf is not used in rule",
                ));
            }
            let error_string = if message.trim().is_empty() {
                rule.trim().to_string()
            } else {
                message.trim().to_string()
            };
            let detail = if message.is_empty() {
                format!("failed rule: {error_string}")
            } else {
                message.trim().to_string()
            };
            let field_path = Some(s(r, "fieldPath"))
                .filter(|p| !p.is_empty())
                .and_then(|p| normalize_field_path(&p, shape))
                .filter(|p| !p.is_empty());
            out.push(Rule {
                error_string,
                detail,
                program: c.program,
                message_expression: msg_program,
                message_expression_src: msg_expr.trim().to_string(),
                reason: r.get("reason").and_then(Value::as_str).and_then(reason_type),
                field_path,
                uses_old_self: c.uses_old_self,
                optional_old_self: optional_old_self == Some(true),
            });
        }
        out
    }
}

fn reason_type(r: &str) -> Option<FieldErrorType> {
    Some(match r {
        "FieldValueRequired" => FieldErrorType::Required,
        "FieldValueForbidden" => FieldErrorType::Forbidden,
        "FieldValueDuplicate" => FieldErrorType::Duplicate,
        "FieldValueInvalid" => FieldErrorType::Invalid,
        _ => return None,
    })
}

/// An Invalid error whose value is shown verbatim (a Go `%#v` rendering).
fn invalid_shown(field: String, shown: &str, detail: &str) -> FieldError {
    let message = format!("{field}: Invalid value: {shown}: {detail}");
    FieldError { kind: FieldErrorType::Invalid, field, message }
}

/// The rule as upstream's field error prints the internal `apiextensions.ValidationRule`
/// (`%#v`). Go would print set pointers as addresses; kapi shows the pointee instead.
fn go_validation_rule(r: &Value) -> String {
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
    let reason = match r.get("reason").and_then(Value::as_str) {
        Some(x) => format!("(*apiextensions.FieldValueErrorReason)({x:?})"),
        None => "(*apiextensions.FieldValueErrorReason)(nil)".to_string(),
    };
    let optional = match r.get("optionalOldSelf").and_then(Value::as_bool) {
        Some(b) => format!("(*bool)({b})"),
        None => "(*bool)(nil)".to_string(),
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{:?}, Message:{:?}, MessageExpression:{:?}, Reason:{reason}, FieldPath:{:?}, OptionalOldSelf:{optional}}}",
        s("rule"),
        s("message"),
        s("messageExpression"),
        s("fieldPath"),
    )
}

/// Parses, checks and estimates one expression. `Err` is upstream's detail text.
fn compile_expr(
    src: &str,
    self_info: Info,
    optional_old_self: bool,
    message: bool,
) -> Result<Compiled, String> {
    let prefix =
        if message { "messageExpression compilation failed: " } else { "compilation failed: " };
    if src.len() > MAX_EXPRESSION_LEN {
        return Err(format!(
            "{prefix}ERROR: <input>:1:1: expression size exceeds the limit of {MAX_EXPRESSION_LEN} code points"
        ));
    }
    let (ast, info) = parse(src).map_err(|e| format!("{prefix}{e}"))?;
    let old_info = if optional_old_self {
        Info { ty: Ty::Dyn, size: self_info.size }
    } else {
        self_info.clone()
    };
    let mut checker = Checker::new(self_info, old_info);
    let checked = checker.precompile_regexes(&ast).and_then(|()| checker.run(&ast));
    let checked = match checked {
        Ok(c) => c,
        Err(e) => {
            let (line, col) = match info.offset_for(e.id) {
                Some((start, _)) => line_col(src, start as usize),
                None => (1, 0),
            };
            return Err(format!("{prefix}{}", display_error(src, line, col, &e.msg)));
        }
    };
    match (&checked.ty, message) {
        (Ty::Bool | Ty::Dyn, false) | (Ty::Str | Ty::Dyn, true) => {}
        (_, false) => return Err("cel expression must evaluate to a bool".into()),
        (_, true) => return Err("messageExpression must evaluate to a string".into()),
    }
    Ok(Compiled {
        program: Program { ast, regexes: checked.regexes },
        cost: checked.cost,
        uses_old_self: checked.uses_old_self,
    })
}

/// Parses on a thread with a large stack: the generated parser recurses per nesting
/// level and per operator, and so do the AST's visitors and its drop. Nesting is
/// limited before parsing and the AST's depth after, so that the checker and the
/// interpreter (which recurse on the AST on the caller's stack) stay shallow.
fn parse(src: &str) -> Result<(IdedExpr, cel::common::ast::SourceInfo), String> {
    let mut depth = 0usize;
    for (i, c) in src.chars().enumerate() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_NESTING {
            return Err(display_error(
                src,
                line_col(src, i).0,
                line_col(src, i).1,
                &format!("expression nesting exceeds the limit of {MAX_NESTING}"),
            ));
        }
    }
    let owned = src.to_string();
    let job = move || -> Result<(IdedExpr, cel::common::ast::SourceInfo), String> {
        let parsed = std::panic::catch_unwind(|| {
            cel::parser::Parser::new()
                .max_recursion_depth(MAX_PARSE_DEPTH)
                .parse_with_source_info(&owned)
        });
        match parsed {
            Ok(Ok((ast, info))) => {
                if ast_depth(&ast, 0) > MAX_AST_DEPTH {
                    return Err(display_error(
                        &owned,
                        1,
                        0,
                        &format!("expression nesting exceeds the limit of {MAX_AST_DEPTH}"),
                    ));
                }
                Ok((ast, info))
            }
            Ok(Err(errs)) => {
                let text: Vec<String> = errs
                    .errors
                    .iter()
                    .map(|e| {
                        display_error(
                            &owned,
                            e.pos.0.max(1) as usize,
                            (e.pos.1.max(1) - 1) as usize,
                            &e.msg,
                        )
                    })
                    .collect();
                Err(text.join("\n"))
            }
            Err(_) => Err(display_error(&owned, 1, 0, "unparseable expression")),
        }
    };
    let handle =
        std::thread::Builder::new().name("cel-parse".into()).stack_size(PARSE_STACK).spawn(job);
    match handle {
        Ok(h) => {
            h.join().unwrap_or_else(|_| Err(display_error(src, 1, 0, "unparseable expression")))
        }
        Err(e) => Err(format!("ERROR: <input>:1:1: cannot start the parser: {e}")),
    }
}

/// The depth of an AST, counting at most `MAX_AST_DEPTH + 1` (stops descending there).
fn ast_depth(e: &IdedExpr, at: usize) -> usize {
    use cel::common::ast::{EntryExpr, Expr};
    if at > MAX_AST_DEPTH {
        return at;
    }
    let sub = |x: &IdedExpr| ast_depth(x, at + 1);
    match &e.expr {
        Expr::Call(c) => {
            c.target.iter().map(|t| sub(t)).chain(c.args.iter().map(sub)).max().unwrap_or(at)
        }
        Expr::Select(s) => sub(&s.operand),
        Expr::List(l) => l.elements.iter().map(sub).max().unwrap_or(at),
        Expr::Map(m) => m
            .entries
            .iter()
            .map(|en| match &en.expr {
                EntryExpr::MapEntry(me) => sub(&me.key).max(sub(&me.value)),
                EntryExpr::StructField(sf) => sub(&sf.value),
            })
            .max()
            .unwrap_or(at),
        Expr::Struct(s) => s
            .entries
            .iter()
            .map(|en| match &en.expr {
                EntryExpr::MapEntry(me) => sub(&me.key).max(sub(&me.value)),
                EntryExpr::StructField(sf) => sub(&sf.value),
            })
            .max()
            .unwrap_or(at),
        Expr::Comprehension(c) => {
            [&c.iter_range, &c.accu_init, &c.loop_cond, &c.loop_step, &c.result]
                .into_iter()
                .map(sub)
                .max()
                .unwrap_or(at)
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => at,
    }
}

/// (1-based line, 0-based column in chars) of a char offset.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 0;
    for (i, c) in src.chars().enumerate() {
        if i == offset {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 0;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// cel-go's `ToDisplayString`: the message, the source line and a `^` under the column.
fn display_error(src: &str, line: usize, col: usize, msg: &str) -> String {
    let mut out = format!("ERROR: <input>:{line}:{}: {msg}", col + 1);
    if let Some(snippet) = src.split('\n').nth(line - 1) {
        let snippet = snippet.replace('\t', " ");
        out.push_str("\n | ");
        out.push_str(&snippet);
        out.push_str("\n | ");
        for c in snippet.chars().take(col) {
            out.push(if c.len_utf8() > 1 { '\u{ff0e}' } else { '.' });
        }
        out.push('^');
    }
    out
}

/// Upstream's `ValidFieldPath`: `.a.b`, `['a.b']` (properties or map keys) to the field
/// path it names (`a.b`, `a[key]`); `None` when it does not name a declared field.
fn normalize_field_path(p: &str, shape: &Shape) -> Option<String> {
    let mut out = String::new();
    let mut cur = shape;
    let b = p.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let name: String;
        match b[i] {
            b'.' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && !matches!(b[j], b'.' | b'[' | b']') {
                    j += 1;
                }
                if j == start {
                    return None;
                }
                name = p[start..j].to_string();
                i = j;
            }
            b'[' => {
                let rest = &p[i + 1..];
                if !rest.starts_with('\'') {
                    return None;
                }
                let mut j = 1;
                let rb = rest.as_bytes();
                while j < rb.len() && !(rb[j] == b'\'' && rb[j - 1] != b'\\') {
                    j += 1;
                }
                if j >= rb.len() || rb.get(j + 1) != Some(&b']') {
                    return None;
                }
                name = unescape_single_quote(&rest[1..j])?;
                i += 1 + j + 2;
            }
            _ => return None,
        }
        match &cur.kind {
            Kind::Object(fields) => {
                cur = fields.get(&name)?;
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&name);
            }
            Kind::Map(v) => {
                cur = v;
                out.push('[');
                out.push_str(&name);
                out.push(']');
            }
            _ => return None,
        }
    }
    Some(out)
}

fn unescape_single_quote(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match it.next()? {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\'' => '\'',
            '\\' => '\\',
            _ => return None,
        });
    }
    Some(out)
}

fn child_path(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

fn shown_path(path: &str) -> &str {
    if path.is_empty() { "<nil>" } else { path }
}

/// An Invalid error whose value is the schema type, quoted (`Invalid value: "object"`).
fn invalid_type(path: &str, ty: &str, detail: &str) -> FieldError {
    FieldError::invalid(shown_path(path), &Value::String(ty.to_string()), detail)
}

const OUT_OF_BUDGET: &str =
    "validation failed due to running out of cost budget, no further validation rules will be run";

impl Rules {
    /// True when the schema has no rules at all.
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// Checks `new` (and, on update, `old`) against every rule. Returns upstream's field
    /// errors; stops early (with an error saying so) when the cost budget runs out.
    pub fn validate(&self, new: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if let Some(root) = &self.root {
            let mut run = Run { budget: self.budget as i64, per_call_limit: self.per_call_limit };
            root.validate("", new, old, &mut run, &mut errs, 0);
        }
        errs
    }
}

/// The state of one `validate` call.
struct Run {
    /// What is left of the per-object budget.
    budget: i64,
    per_call_limit: u64,
}

impl Node {
    /// The variables of one evaluation at this node: `self`, and `oldSelf` when the rule
    /// uses it (an optional when `optional_old_self`, null when there is no old value).
    fn scope<'a>(
        &'a self,
        v: &'a Value,
        old: Option<&'a Value>,
        with_old: bool,
        optional_old_self: bool,
    ) -> Scope<'a> {
        let mut scope = Scope::new();
        scope.bind("self", from_json(v, &self.shape));
        if with_old {
            let o = old.map(|o| from_json(o, &self.shape));
            let bound =
                if optional_old_self { Val::Opt(o.map(Box::new)) } else { o.unwrap_or(Val::Null) };
            scope.bind("oldSelf", bound);
        }
        scope
    }

    /// Returns false when validation must stop (budget exhausted).
    fn validate(
        &self,
        path: &str,
        v: &Value,
        old: Option<&Value>,
        run: &mut Run,
        errs: &mut Vec<FieldError>,
        depth: usize,
    ) -> bool {
        if v.is_null() || depth > shape::MAX_SCHEMA_DEPTH + 1 {
            return true;
        }
        let old = old.filter(|o| !o.is_null());
        if !self.rules.is_empty() && !self.run_rules(path, v, old, run, errs) {
            return false;
        }
        match v {
            Value::Array(a) => {
                if let Some(items) = &self.items {
                    let old_items = correlate_list(&self.shape, old);
                    for (i, item) in a.iter().enumerate() {
                        let o = old_items
                            .as_ref()
                            .and_then(|m| m.get(&item_key(&self.shape, item)?).copied());
                        if !items.validate(&format!("{path}[{i}]"), item, o, run, errs, depth + 1) {
                            return false;
                        }
                    }
                }
            }
            Value::Object(m) => {
                let old_map = old.and_then(Value::as_object);
                if let Some(additional) = &self.additional {
                    for (k, val) in m {
                        let o = old_map.and_then(|om| om.get(k));
                        if !additional.validate(
                            &format!("{path}[{k}]"),
                            val,
                            o,
                            run,
                            errs,
                            depth + 1,
                        ) {
                            return false;
                        }
                    }
                }
                for (k, node) in &self.props {
                    if let Some(val) = m.get(k) {
                        let o = old_map.and_then(|om| om.get(k));
                        if !node.validate(&child_path(path, k), val, o, run, errs, depth + 1) {
                            return false;
                        }
                    }
                }
            }
            _ => {}
        }
        true
    }

    fn run_rules(
        &self,
        path: &str,
        v: &Value,
        old: Option<&Value>,
        run: &mut Run,
        errs: &mut Vec<FieldError>,
    ) -> bool {
        let ty = self.shape.type_name.as_str();
        if run.budget <= 0 {
            errs.push(invalid_type(path, ty, OUT_OF_BUDGET));
            return false;
        }
        for rule in &self.rules {
            if rule.uses_old_self && old.is_none() && !rule.optional_old_self {
                continue;
            }
            let mut scope = self.scope(v, old, rule.uses_old_self, rule.optional_old_self);
            let mut env = Env {
                regexes: &rule.program.regexes,
                cost: 0,
                limit: run.per_call_limit,
                movable: Vec::new(),
            };
            let result = env.eval(&rule.program.ast, &mut scope);
            if env.cost as i64 > run.budget && !matches!(result, Err(EvalError::Cost)) {
                errs.push(invalid_type(path, ty, OUT_OF_BUDGET));
                return false;
            }
            run.budget -= env.cost as i64;
            let overload = |errs: &mut Vec<FieldError>| {
                errs.push(invalid_type(path, ty, &format!(
                    "'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {}",
                    rule.error_string
                )));
            };
            match result {
                Ok(Val::Bool(true)) => continue,
                Ok(Val::Bool(false)) => {}
                Err(EvalError::Cost) => {
                    errs.push(invalid_type(path, ty, &format!(
                        "'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: {}",
                        rule.error_string
                    )));
                    return false;
                }
                Err(EvalError::Msg(m)) if m.starts_with("no such overload") => {
                    overload(errs);
                    continue;
                }
                Ok(_) => {
                    overload(errs);
                    continue;
                }
                Err(EvalError::Msg(m)) => {
                    errs.push(invalid_type(
                        path,
                        ty,
                        &format!("{m} evaluating rule: {}", rule.error_string),
                    ));
                    continue;
                }
            }
            let fpath = match &rule.field_path {
                Some(fp) if fp.starts_with('[') => format!("{}{fp}", shown_path(path)),
                Some(fp) => child_path(path, fp),
                None => path.to_string(),
            };
            let mut detail = rule.detail.clone();
            if let Some(me) = &rule.message_expression {
                let mut scope = self.scope(v, old, true, rule.optional_old_self);
                let mut env = Env {
                    regexes: &me.regexes,
                    cost: 0,
                    limit: run.per_call_limit,
                    movable: Vec::new(),
                };
                let result = env.eval(&me.ast, &mut scope);
                if matches!(result, Err(EvalError::Cost)) {
                    errs.push(invalid_type(&fpath, ty, &format!(
                        "no further validation rules will be run due to call cost exceeds limit for messageExpression: {:?}",
                        rule.message_expression_src
                    )));
                    return false;
                }
                if env.cost as i64 > run.budget {
                    errs.push(invalid_type(
                        &fpath,
                        ty,
                        "messageExpression evaluation failed due to running out of cost budget, no further validation rules will be run",
                    ));
                    return false;
                }
                run.budget -= env.cost as i64;
                if let Ok(Val::Str(s)) = result {
                    let t = s.trim();
                    if !t.is_empty()
                        && t.len() <= MAX_EVALUATED_MESSAGE_EXPRESSION_SIZE_BYTES
                        && !t.contains('\n')
                    {
                        detail = t.to_string();
                    }
                }
            }
            let shown = shown_path(&fpath).to_string();
            errs.push(match rule.reason {
                Some(FieldErrorType::Forbidden) => FieldError::forbidden(shown, &detail),
                Some(FieldErrorType::Required) => FieldError::required(shown, &detail),
                Some(FieldErrorType::Duplicate) => {
                    FieldError::duplicate(shown, &Value::String(ty.to_string()))
                }
                _ => FieldError::invalid(shown, &Value::String(ty.to_string()), &detail),
            });
        }
        true
    }
}

/// The key tuple of a `x-kubernetes-list-type: map` item, as text.
fn item_key(shape: &Shape, item: &Value) -> Option<String> {
    let keys = shape.list_map_keys.as_ref()?;
    let obj = item.as_object()?;
    let mut out = String::new();
    for k in keys {
        out.push_str(&obj.get(k).map(Value::to_string).unwrap_or_else(|| "null".into()));
        out.push('\u{0}');
    }
    Some(out)
}

/// Old items of a map-list by key; None for lists whose items cannot be correlated.
fn correlate_list<'v>(shape: &Shape, old: Option<&'v Value>) -> Option<HashMap<String, &'v Value>> {
    shape.list_map_keys.as_ref()?;
    let old = old?.as_array()?;
    Some(old.iter().filter_map(|o| Some((item_key(shape, o)?, o))).collect())
}

#[cfg(test)]
mod tests;
