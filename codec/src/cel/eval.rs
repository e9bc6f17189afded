//! The CEL interpreter: evaluates a checked AST with `self`/`oldSelf` bound to JSON
//! values typed by their schema [`Shape`].
//!
//! Invariants: every step charges the cost counter before it allocates or loops, so one
//! evaluation does at most `limit` units of work (a unit is a node, or ten bytes
//! scanned/copied, or one element compared/copied) and stops with [`EvalError::Cost`]
//! past it; recursion is bounded by the AST depth (parser-limited) and by
//! [`MAX_VALUE_DEPTH`] for deep values; no input panics (all arithmetic is checked).
//! JSON-backed lists and objects are viewed in place, never converted up front.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use cel::common::ast::{CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, LiteralValue};
use regex::Regex;
use serde_json::Value;

use super::authorizer::{self, AuthzVal, Called};
use super::check::compile_regex;
use super::shape::{Kind, Shape};

pub const MAX_VALUE_DEPTH: usize = 128;
const NANOS: i128 = 1_000_000_000;
/// CEL's timestamp range: 0001-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999999999Z.
const TS_MIN_SECS: i64 = -62_135_596_800;
const TS_MAX_SECS: i64 = 253_402_300_799;
/// CEL's duration range, about ±10000 years.
const DUR_MAX_SECS: i128 = 315_576_000_000;

#[derive(Debug, Clone)]
pub enum Val<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Double(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    /// Nanoseconds since the Unix epoch.
    Ts(i128),
    /// Nanoseconds.
    Dur(i128),
    Type(&'static str),
    List(Rc<Vec<Val<'a>>>),
    Map(Rc<Vec<(Val<'a>, Val<'a>)>>),
    /// A JSON array viewed in place, with its items' shape.
    JList(&'a [Value], &'a Shape),
    /// A JSON object viewed in place, with its shape (object, map or any).
    JObj(&'a serde_json::Map<String, Value>, &'a Shape),
    /// `oldSelf` of an `optionalOldSelf` rule.
    Opt(Option<Box<Val<'a>>>),
    /// A value of the authorizer library.
    Authz(AuthzVal<'a>),
}

#[derive(Debug)]
pub enum EvalError {
    /// A CEL runtime error (`no such key: x`, `division by zero`, ...).
    Msg(String),
    /// The per-call cost limit was exceeded.
    Cost,
}

type R<'a> = Result<Val<'a>, EvalError>;

fn msg<T>(m: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError::Msg(m.into()))
}

fn no_overload<T>() -> Result<T, EvalError> {
    msg("no such overload")
}

/// Converts one JSON value to a CEL value, typed by `shape`.
pub fn from_json<'a>(v: &'a Value, shape: &'a Shape) -> Val<'a> {
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => match shape.kind {
            Kind::Double => Val::Double(n.as_f64().unwrap_or(0.0)),
            _ => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Val::Int(i),
                (None, Some(u)) => Val::Uint(u),
                _ => Val::Double(n.as_f64().unwrap_or(0.0)),
            },
        },
        Value::String(s) => match shape.kind {
            Kind::Timestamp => match crate::time::parse_rfc3339(s) {
                Some((secs, nanos)) => Val::Ts(secs as i128 * NANOS + nanos as i128),
                None => Val::Str(Rc::from(s.as_str())),
            },
            Kind::Duration => match crate::time::parse_go_duration(s) {
                Some(n) => Val::Dur(n as i128),
                None => Val::Str(Rc::from(s.as_str())),
            },
            Kind::Bytes => {
                use base64::Engine;
                match base64::engine::general_purpose::STANDARD.decode(s) {
                    Ok(b) => Val::Bytes(Rc::from(b)),
                    Err(_) => Val::Str(Rc::from(s.as_str())),
                }
            }
            _ => Val::Str(Rc::from(s.as_str())),
        },
        Value::Array(a) => {
            let item: &Shape = match &shape.kind {
                Kind::List(e) => e,
                _ => any_shape(),
            };
            Val::JList(a, item)
        }
        Value::Object(o) => Val::JObj(o, shape),
    }
}

pub(crate) fn any_shape() -> &'static Shape {
    static ANY: std::sync::OnceLock<Shape> = std::sync::OnceLock::new();
    ANY.get_or_init(Shape::any)
}

impl<'a> Val<'a> {
    fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null_type",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Uint(_) => "uint",
            Val::Double(_) => "double",
            Val::Str(_) => "string",
            Val::Bytes(_) => "bytes",
            Val::Ts(_) => "google.protobuf.Timestamp",
            Val::Dur(_) => "google.protobuf.Duration",
            Val::Type(_) => "type",
            Val::List(_) | Val::JList(..) => "list",
            Val::Map(_) => "map",
            Val::Opt(_) => "optional_type",
            Val::Authz(a) => a.ty().name(),
            Val::JObj(_, s) => match s.kind {
                Kind::Object(_) => "object",
                _ => "map",
            },
        }
    }

    fn list_len(&self) -> Option<usize> {
        match self {
            Val::List(l) => Some(l.len()),
            Val::JList(a, _) => Some(a.len()),
            _ => None,
        }
    }

    fn list_get(&self, i: usize) -> Option<Val<'a>> {
        match self {
            Val::List(l) => l.get(i).cloned(),
            Val::JList(a, s) => a.get(i).map(|v| from_json(v, s)),
            _ => None,
        }
    }

    fn is_map(&self) -> bool {
        matches!(self, Val::Map(_) | Val::JObj(..))
    }

    fn map_len(&self) -> usize {
        match self {
            Val::Map(m) => m.len(),
            Val::JObj(o, s) => visible_fields(o, s).count(),
            _ => 0,
        }
    }
}

/// The fields of a JSON object CEL can see (as [`visible_fields`]), for converting a
/// result back to JSON.
pub(crate) fn visible<'a>(
    o: &'a serde_json::Map<String, Value>,
    s: &'a Shape,
) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
    visible_fields(o, s)
}

/// The fields of a JSON object CEL can see: with declared properties, only those
/// (null values are absent); maps and untyped objects show every key.
fn visible_fields<'a>(
    o: &'a serde_json::Map<String, Value>,
    s: &'a Shape,
) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
    o.iter().filter(move |(k, v)| match &s.kind {
        Kind::Object(fields) => fields.contains_key(k.as_str()) && !v.is_null(),
        _ => true,
    })
}

fn field_shape<'a>(s: &'a Shape, name: &str) -> Option<&'a Shape> {
    match &s.kind {
        Kind::Object(fields) => fields.get(name).map(|a| &**a),
        Kind::Map(v) => Some(v),
        _ => Some(any_shape()),
    }
}

pub struct Env<'e> {
    pub regexes: &'e HashMap<u64, Arc<Regex>>,
    pub cost: u64,
    pub limit: u64,
    /// Accumulator variables whose value the step may move out (referenced at most once).
    pub movable: Vec<String>,
}

pub struct Scope<'a> {
    vars: Vec<(Rc<str>, Val<'a>)>,
}

impl<'a> Scope<'a> {
    pub fn new() -> Self {
        Scope { vars: Vec::new() }
    }
    pub fn bind(&mut self, name: &str, v: Val<'a>) {
        self.vars.push((Rc::from(name), v));
    }
}

impl<'e> Env<'e> {
    fn charge(&mut self, n: u64) -> Result<(), EvalError> {
        self.cost = self.cost.saturating_add(n);
        if self.cost > self.limit { Err(EvalError::Cost) } else { Ok(()) }
    }

    fn charge_bytes(&mut self, n: usize) -> Result<(), EvalError> {
        self.charge((n as u64).div_ceil(10))
    }

    pub fn eval<'a>(&mut self, e: &IdedExpr, sc: &mut Scope<'a>) -> R<'a> {
        self.charge(1)?;
        match &e.expr {
            Expr::Literal(l) => Ok(match l {
                LiteralValue::Boolean(b) => Val::Bool(*b.inner()),
                LiteralValue::Int(i) => Val::Int(*i.inner()),
                LiteralValue::UInt(u) => Val::Uint(*u.inner()),
                LiteralValue::Double(d) => Val::Double(*d.inner()),
                LiteralValue::Null => Val::Null,
                LiteralValue::String(s) => Val::Str(Rc::from(s.inner())),
                LiteralValue::Bytes(b) => Val::Bytes(Rc::from(b.inner())),
            }),
            Expr::Ident(name) => {
                let Some(pos) = sc.vars.iter().rposition(|(n, _)| &**n == name.as_str()) else {
                    return msg(format!("no such attribute: {name}"));
                };
                if self.movable.last().is_some_and(|m| m == name) {
                    return Ok(std::mem::replace(&mut sc.vars[pos].1, Val::Null));
                }
                Ok(sc.vars[pos].1.clone())
            }
            Expr::Select(s) => {
                let operand = self.eval(&s.operand, sc)?;
                self.select(operand, &s.field, s.test)
            }
            Expr::List(l) => {
                self.charge(10)?;
                let mut out = Vec::with_capacity(l.elements.len());
                for el in &l.elements {
                    out.push(self.eval(el, sc)?);
                }
                Ok(Val::List(Rc::new(out)))
            }
            Expr::Map(m) => {
                self.charge(30)?;
                let mut out: Vec<(Val<'a>, Val<'a>)> = Vec::with_capacity(m.entries.len());
                for en in &m.entries {
                    let EntryExpr::MapEntry(me) = &en.expr else { return no_overload() };
                    let k = self.eval(&me.key, sc)?;
                    if !matches!(k, Val::Str(_) | Val::Int(_) | Val::Uint(_) | Val::Bool(_)) {
                        return msg(format!("unsupported key type: {}", k.type_name()));
                    }
                    let v = self.eval(&me.value, sc)?;
                    for (pk, _) in &out {
                        if self.equal(pk, &k, 0)? {
                            return msg(format!("Failed with repeated key: {}", show_key(&k)));
                        }
                    }
                    out.push((k, v));
                }
                Ok(Val::Map(Rc::new(out)))
            }
            Expr::Comprehension(c) => self.comprehension(c, sc),
            Expr::Call(c) => self.call(e.id, c, sc),
            // Only checked ASTs get here: the checker declares literals for mutations.
            Expr::Struct(s) => {
                self.charge(40)?;
                let mut out: Vec<(Val<'a>, Val<'a>)> = Vec::with_capacity(s.entries.len());
                for en in &s.entries {
                    let EntryExpr::StructField(sf) = &en.expr else { return no_overload() };
                    let v = self.eval(&sf.value, sc)?;
                    if out.iter().any(|(k, _)| matches!(k, Val::Str(k) if **k == *sf.field)) {
                        return msg(format!("Failed with repeated key: {}", sf.field));
                    }
                    out.push((Val::Str(Rc::from(sf.field.as_str())), v));
                }
                Ok(Val::Map(Rc::new(out)))
            }
            Expr::Unspecified => no_overload(),
        }
    }

    fn select<'a>(&mut self, operand: Val<'a>, field: &str, test: bool) -> R<'a> {
        match operand {
            Val::JObj(o, s) => {
                let present = o.get(field).filter(|v| !v.is_null());
                let declared = field_shape(s, field);
                match (present, declared) {
                    (Some(v), Some(fs)) => {
                        if test {
                            Ok(Val::Bool(true))
                        } else {
                            Ok(from_json(v, fs))
                        }
                    }
                    _ if test => Ok(Val::Bool(false)),
                    _ => msg(format!("no such key: {field}")),
                }
            }
            Val::Map(m) => {
                let found = m.iter().find(|(k, _)| matches!(k, Val::Str(s) if &**s == field));
                match found {
                    Some(_) if test => Ok(Val::Bool(true)),
                    Some((_, v)) => Ok(v.clone()),
                    None if test => Ok(Val::Bool(false)),
                    None => msg(format!("no such key: {field}")),
                }
            }
            Val::Authz(a) => match a.select(field) {
                Some(v) => Ok(Val::Authz(v)),
                None => msg(format!("no such key: {field}")),
            },
            _ => no_overload(),
        }
    }

    /// A member function of the authorizer library on `target`.
    fn authz<'a>(&mut self, f: &str, target: &AuthzVal<'a>, args: &[Val<'a>]) -> R<'a> {
        let mut strs = Vec::with_capacity(args.len());
        for a in args {
            let Val::Str(s) = a else { return no_overload() };
            strs.push(&**s);
        }
        if f == "check" {
            self.charge(authorizer::CHECK_COST)?;
        }
        match target.call(f, &strs) {
            Ok(Some(Called::Authz(v))) => Ok(Val::Authz(v)),
            Ok(Some(Called::Bool(b))) => Ok(Val::Bool(b)),
            Ok(Some(Called::Str(s))) => Ok(Val::Str(Rc::from(s))),
            Ok(None) => no_overload(),
            Err(e) => msg(e),
        }
    }

    fn comprehension<'a>(&mut self, c: &ComprehensionExpr, sc: &mut Scope<'a>) -> R<'a> {
        let range = self.eval(&c.iter_range, sc)?;
        let items: Vec<(Val<'a>, Val<'a>)> = match &range {
            Val::List(_) | Val::JList(..) => {
                let n = range.list_len().unwrap_or(0);
                self.charge(n as u64)?;
                (0..n).filter_map(|i| Some((Val::Int(i as i64), range.list_get(i)?))).collect()
            }
            Val::Map(m) => {
                self.charge(m.len() as u64)?;
                m.iter().cloned().collect()
            }
            Val::JObj(o, s) => {
                let mut out = Vec::new();
                for (k, v) in visible_fields(o, s) {
                    self.charge(1)?;
                    let fs = field_shape(s, k).unwrap_or(any_shape());
                    out.push((Val::Str(Rc::from(k.as_str())), from_json(v, fs)));
                }
                out
            }
            _ => return no_overload(),
        };
        let is_list = range.list_len().is_some();
        let init = self.eval(&c.accu_init, sc)?;
        let base = sc.vars.len();
        sc.bind(&c.accu_var, init);
        let movable = accu_refs(&c.loop_step, &c.accu_var) <= 1;
        let result = (|| {
            for (k, v) in items {
                let depth = sc.vars.len();
                match &c.iter_var2 {
                    Some(second) => {
                        sc.bind(&c.iter_var, k);
                        sc.bind(second, v);
                    }
                    None => sc.bind(&c.iter_var, if is_list { v } else { k }),
                }
                let cond = self.eval(&c.loop_cond, sc)?;
                if matches!(cond, Val::Bool(false)) {
                    sc.vars.truncate(depth);
                    break;
                }
                if movable {
                    self.movable.push(c.accu_var.clone());
                }
                let step = self.eval(&c.loop_step, sc);
                if movable {
                    self.movable.pop();
                }
                let step = step?;
                sc.vars.truncate(depth);
                sc.vars[base].1 = step;
            }
            self.eval(&c.result, sc)
        })();
        sc.vars.truncate(base);
        result
    }

    fn call<'a>(&mut self, id: u64, c: &CallExpr, sc: &mut Scope<'a>) -> R<'a> {
        let f = c.func_name.as_str();
        // Short-circuiting operators first: their operands may fail.
        match f {
            "_&&_" | "_||_" => {
                let short = f == "_||_";
                let mut first_err = None;
                for a in &c.args {
                    match self.eval(a, sc) {
                        Ok(Val::Bool(b)) if b == short => return Ok(Val::Bool(short)),
                        Ok(Val::Bool(_)) => {}
                        Ok(_) => {
                            first_err.get_or_insert(EvalError::Msg("no such overload".into()));
                        }
                        Err(EvalError::Cost) => return Err(EvalError::Cost),
                        Err(e) => {
                            first_err.get_or_insert(e);
                        }
                    }
                }
                return match first_err {
                    Some(e) => Err(e),
                    None => Ok(Val::Bool(!short)),
                };
            }
            "_?_:_" => {
                let [cond, a, b] = c.args.as_slice() else { return no_overload() };
                return match self.eval(cond, sc)? {
                    Val::Bool(true) => self.eval(a, sc),
                    Val::Bool(false) => self.eval(b, sc),
                    _ => no_overload(),
                };
            }
            "@not_strictly_false" => {
                let [a] = c.args.as_slice() else { return no_overload() };
                return match self.eval(a, sc) {
                    Ok(Val::Bool(b)) => Ok(Val::Bool(b)),
                    Err(EvalError::Cost) => Err(EvalError::Cost),
                    _ => Ok(Val::Bool(true)),
                };
            }
            "escapeKey" if super::construct::is_escape_key(c) => {
                let Val::Str(k) = self.eval(&c.args[0], sc)? else { return no_overload() };
                self.charge_bytes(k.len())?;
                return Ok(Val::Str(Rc::from(super::construct::escape_key(&k))));
            }
            _ => {}
        }
        let mut args: Vec<Val<'a>> = Vec::with_capacity(c.args.len() + 1);
        if let Some(t) = &c.target {
            args.push(self.eval(t, sc)?);
        }
        for a in &c.args {
            args.push(self.eval(a, sc)?);
        }
        self.apply(id, f, args)
    }

    fn apply<'a>(&mut self, id: u64, f: &str, mut args: Vec<Val<'a>>) -> R<'a> {
        match (f, args.as_mut_slice()) {
            ("!_", [Val::Bool(b)]) => Ok(Val::Bool(!*b)),
            ("-_", [Val::Int(i)]) => i.checked_neg().map(Val::Int).ok_or_else(overflow),
            ("-_", [Val::Double(d)]) => Ok(Val::Double(-*d)),
            ("_==_", [a, b]) => Ok(Val::Bool(self.equal(a, b, 0)?)),
            ("_!=_", [a, b]) => Ok(Val::Bool(!self.equal(a, b, 0)?)),
            ("_<_" | "_<=_" | "_>_" | "_>=_", [a, b]) => {
                let o = self.compare(a, b)?;
                Ok(Val::Bool(match f {
                    "_<_" => o.is_lt(),
                    "_<=_" => o.is_le(),
                    "_>_" => o.is_gt(),
                    _ => o.is_ge(),
                }))
            }
            ("_+_", [a, b]) => self.add(a, b),
            ("_-_" | "_*_" | "_/_" | "_%_", [a, b]) => arith(f, a, b),
            ("_[_]", [a, b]) => self.index(a, b),
            ("@in", [a, b]) => self.contains_elem(b, a),
            _ => self.library(id, f, args),
        }
    }

    fn add<'a>(&mut self, a: &mut Val<'a>, b: &mut Val<'a>) -> R<'a> {
        match (a, b) {
            (Val::Int(x), Val::Int(y)) => x.checked_add(*y).map(Val::Int).ok_or_else(overflow),
            (Val::Uint(x), Val::Uint(y)) => x.checked_add(*y).map(Val::Uint).ok_or_else(overflow),
            (Val::Double(x), Val::Double(y)) => Ok(Val::Double(*x + *y)),
            (Val::Str(x), Val::Str(y)) => {
                self.charge_bytes(x.len() + y.len())?;
                Ok(Val::Str(Rc::from(format!("{x}{y}"))))
            }
            (Val::Bytes(x), Val::Bytes(y)) => {
                self.charge_bytes(x.len() + y.len())?;
                Ok(Val::Bytes(Rc::from([&x[..], &y[..]].concat())))
            }
            (Val::Ts(t), Val::Dur(d)) | (Val::Dur(d), Val::Ts(t)) => ts(*t + *d),
            (Val::Dur(x), Val::Dur(y)) => dur(*x + *y),
            (a @ (Val::List(_) | Val::JList(..)), b @ (Val::List(_) | Val::JList(..))) => {
                let blen = b.list_len().unwrap_or(0);
                let mut left = match std::mem::replace(a, Val::Null) {
                    Val::List(l) => l,
                    other => {
                        let n = other.list_len().unwrap_or(0);
                        self.charge(n as u64)?;
                        Rc::new((0..n).filter_map(|i| other.list_get(i)).collect())
                    }
                };
                if Rc::strong_count(&left) > 1 {
                    self.charge(left.len() as u64)?;
                }
                self.charge(blen as u64)?;
                let v = Rc::make_mut(&mut left);
                for i in 0..blen {
                    if let Some(x) = b.list_get(i) {
                        v.push(x);
                    }
                }
                Ok(Val::List(left))
            }
            _ => no_overload(),
        }
    }

    fn index<'a>(&mut self, a: &Val<'a>, b: &Val<'a>) -> R<'a> {
        if a.list_len().is_some() {
            let i = match b {
                Val::Int(i) => *i,
                Val::Uint(u) => i64::try_from(*u).unwrap_or(i64::MAX),
                Val::Double(d) if d.fract() == 0.0 => *d as i64,
                _ => return no_overload(),
            };
            return match usize::try_from(i).ok().and_then(|i| a.list_get(i)) {
                Some(v) => Ok(v),
                None => msg(format!("index out of bounds: {i}")),
            };
        }
        match (a, b) {
            (Val::JObj(..), Val::Str(k)) => self.select(a.clone(), k, false),
            (Val::Map(m), k) => {
                for (mk, mv) in m.iter() {
                    self.charge(1)?;
                    if self.equal(mk, k, 0)? {
                        return Ok(mv.clone());
                    }
                }
                msg(format!("no such key: {}", show_key(k)))
            }
            (Val::JObj(..), k) => msg(format!("no such key: {}", show_key(k))),
            _ => no_overload(),
        }
    }

    fn contains_elem<'a>(&mut self, container: &Val<'a>, x: &Val<'a>) -> R<'a> {
        if let Some(n) = container.list_len() {
            for i in 0..n {
                self.charge(1)?;
                if let Some(el) = container.list_get(i)
                    && self.equal(&el, x, 0)?
                {
                    return Ok(Val::Bool(true));
                }
            }
            return Ok(Val::Bool(false));
        }
        match (container, x) {
            (Val::JObj(o, s), Val::Str(k)) => Ok(Val::Bool(
                o.get(&**k).is_some_and(|v| !v.is_null()) && field_shape(s, k).is_some(),
            )),
            (Val::JObj(..), _) => Ok(Val::Bool(false)),
            (Val::Map(m), k) => {
                for (mk, _) in m.iter() {
                    self.charge(1)?;
                    if self.equal(mk, k, 0)? {
                        return Ok(Val::Bool(true));
                    }
                }
                Ok(Val::Bool(false))
            }
            _ => no_overload(),
        }
    }

    /// CEL equality: numbers compare across int/uint/double; lists and maps deeply;
    /// values of different types are unequal.
    pub fn equal(&mut self, a: &Val<'_>, b: &Val<'_>, depth: usize) -> Result<bool, EvalError> {
        if depth > MAX_VALUE_DEPTH {
            return msg("value nesting too deep");
        }
        self.charge(1)?;
        Ok(match (a, b) {
            (Val::Null, Val::Null) => true,
            (Val::Bool(x), Val::Bool(y)) => x == y,
            (Val::Str(x), Val::Str(y)) => {
                self.charge_bytes(x.len().min(y.len()))?;
                x == y
            }
            (Val::Bytes(x), Val::Bytes(y)) => {
                self.charge_bytes(x.len().min(y.len()))?;
                x == y
            }
            (Val::Ts(x), Val::Ts(y)) | (Val::Dur(x), Val::Dur(y)) => x == y,
            (Val::Type(x), Val::Type(y)) => x == y,
            (x, y) if num(x).is_some() && num(y).is_some() => {
                num_cmp(x, y).is_some_and(|o| o.is_eq())
            }
            (x, y) if x.list_len().is_some() && y.list_len().is_some() => {
                let n = x.list_len().unwrap_or(0);
                if n != y.list_len().unwrap_or(0) {
                    return Ok(false);
                }
                for i in 0..n {
                    match (x.list_get(i), y.list_get(i)) {
                        (Some(p), Some(q)) => {
                            if !self.equal(&p, &q, depth + 1)? {
                                return Ok(false);
                            }
                        }
                        _ => return Ok(false),
                    }
                }
                true
            }
            (x, y) if x.is_map() && y.is_map() => {
                if x.map_len() != y.map_len() {
                    return Ok(false);
                }
                let entries = self.entries(x)?;
                for (k, v) in entries {
                    let other = match self.index(y, &k) {
                        Ok(o) => o,
                        Err(EvalError::Cost) => return Err(EvalError::Cost),
                        Err(_) => return Ok(false),
                    };
                    if !self.equal(&v, &other, depth + 1)? {
                        return Ok(false);
                    }
                }
                true
            }
            _ => false,
        })
    }

    fn entries<'a>(&mut self, m: &Val<'a>) -> Result<Vec<(Val<'a>, Val<'a>)>, EvalError> {
        match m {
            Val::Map(m) => {
                self.charge(m.len() as u64)?;
                Ok(m.iter().cloned().collect())
            }
            Val::JObj(o, s) => {
                let mut out = Vec::new();
                for (k, v) in visible_fields(o, s) {
                    self.charge(1)?;
                    let fs = field_shape(s, k).unwrap_or(any_shape());
                    out.push((Val::Str(Rc::from(k.as_str())), from_json(v, fs)));
                }
                Ok(out)
            }
            _ => Ok(Vec::new()),
        }
    }

    fn compare(&mut self, a: &Val<'_>, b: &Val<'_>) -> Result<std::cmp::Ordering, EvalError> {
        if let Some(o) = num_cmp(a, b) {
            return Ok(o);
        }
        match (a, b) {
            (Val::Str(x), Val::Str(y)) => {
                self.charge_bytes(x.len().min(y.len()))?;
                Ok(x.cmp(y))
            }
            (Val::Bytes(x), Val::Bytes(y)) => Ok(x.cmp(y)),
            (Val::Bool(x), Val::Bool(y)) => Ok(x.cmp(y)),
            (Val::Ts(x), Val::Ts(y)) | (Val::Dur(x), Val::Dur(y)) => Ok(x.cmp(y)),
            _ => no_overload(),
        }
    }

    fn library<'a>(&mut self, id: u64, f: &str, args: Vec<Val<'a>>) -> R<'a> {
        use Val::*;
        if let Some(Authz(target)) = args.first() {
            return self.authz(f, target, &args[1..]);
        }
        match (f, args.as_slice()) {
            ("size", [Str(s)]) => Ok(Int(s.chars().count() as i64)),
            ("size", [Bytes(b)]) => Ok(Int(b.len() as i64)),
            ("size", [x]) if x.list_len().is_some() => Ok(Int(x.list_len().unwrap_or(0) as i64)),
            ("size", [x]) if x.is_map() => Ok(Int(x.map_len() as i64)),
            ("contains", [Str(s), Str(t)]) => {
                self.charge_bytes(s.len())?;
                Ok(Bool(s.contains(&**t)))
            }
            ("startsWith", [Str(s), Str(t)]) => {
                self.charge_bytes(t.len())?;
                Ok(Bool(s.starts_with(&**t)))
            }
            ("endsWith", [Str(s), Str(t)]) => {
                self.charge_bytes(t.len())?;
                Ok(Bool(s.ends_with(&**t)))
            }
            ("matches", [Str(s), Str(p)]) => {
                self.charge_bytes(s.len())?;
                let re = match self.regexes.get(&id) {
                    Some(r) => r.clone(),
                    None => {
                        self.charge_bytes(p.len().saturating_mul(10))?;
                        Arc::new(compile_regex(p).map_err(EvalError::Msg)?)
                    }
                };
                // The regex engine is linear in the input; charge by input and pattern.
                self.charge_bytes(s.len().saturating_mul(p.len().div_ceil(10)))?;
                Ok(Bool(re.is_match(s)))
            }
            ("lowerAscii", [Str(s)]) => {
                self.charge_bytes(s.len())?;
                Ok(Str(Rc::from(s.to_ascii_lowercase())))
            }
            ("upperAscii", [Str(s)]) => {
                self.charge_bytes(s.len())?;
                Ok(Str(Rc::from(s.to_ascii_uppercase())))
            }
            ("trim", [Str(s)]) => {
                self.charge_bytes(s.len())?;
                Ok(Str(Rc::from(s.trim())))
            }
            ("charAt", [Str(s), Int(i)]) => {
                self.charge_bytes(s.len())?;
                let n = s.chars().count() as i64;
                if *i < 0 || *i > n {
                    return msg(format!("index out of range: {i}"));
                }
                Ok(Str(Rc::from(s.chars().nth(*i as usize).map(String::from).unwrap_or_default())))
            }
            ("indexOf" | "lastIndexOf", [Str(s), Str(t), rest @ ..]) => {
                self.charge_bytes(s.len())?;
                let chars: Vec<char> = s.chars().collect();
                let needle: Vec<char> = t.chars().collect();
                let start = match rest {
                    [] => None,
                    [Int(i)] => Some(*i),
                    _ => return no_overload(),
                };
                if let Some(i) = start
                    && (i < 0 || i as usize > chars.len())
                {
                    return msg(format!("index out of range: {i}"));
                }
                self.charge_bytes(chars.len().saturating_mul(needle.len()))?;
                let fits = |at: usize| {
                    at + needle.len() <= chars.len() && chars[at..at + needle.len()] == needle[..]
                };
                let found = if f == "indexOf" {
                    let from = start.unwrap_or(0) as usize;
                    (from..=chars.len()).find(|&at| fits(at))
                } else {
                    let to = start.map(|i| i as usize).unwrap_or(chars.len());
                    (0..=to.min(chars.len())).rev().find(|&at| fits(at))
                };
                Ok(Int(found.map(|i| i as i64).unwrap_or(-1)))
            }
            ("indexOf" | "lastIndexOf", [l, x]) if l.list_len().is_some() => {
                let n = l.list_len().unwrap_or(0);
                let order: Box<dyn Iterator<Item = usize>> =
                    if f == "indexOf" { Box::new(0..n) } else { Box::new((0..n).rev()) };
                for i in order {
                    if let Some(el) = l.list_get(i)
                        && self.equal(&el, x, 0)?
                    {
                        return Ok(Int(i as i64));
                    }
                }
                Ok(Int(-1))
            }
            ("replace", [Str(s), Str(from), Str(to), rest @ ..]) => {
                let limit = match rest {
                    [] => -1,
                    [Int(n)] => *n,
                    _ => return no_overload(),
                };
                self.charge_bytes(s.len())?;
                let count = if from.is_empty() {
                    s.chars().count() + 1
                } else {
                    s.matches(&**from).count()
                };
                let count = if limit < 0 { count } else { count.min(limit as usize) };
                let out_len = s.len().saturating_add(count.saturating_mul(to.len()));
                self.charge_bytes(out_len)?;
                let out =
                    if limit < 0 { s.replace(&**from, to) } else { s.replacen(&**from, to, count) };
                Ok(Str(Rc::from(out)))
            }
            ("split", [Str(s), Str(sep), rest @ ..]) => {
                let limit = match rest {
                    [] => -1,
                    [Int(n)] => *n,
                    _ => return no_overload(),
                };
                self.charge_bytes(s.len())?;
                self.charge(s.len() as u64)?;
                let parts: Vec<Val<'a>> = match limit {
                    0 => Vec::new(),
                    n if n < 0 => split_all(s, sep),
                    n => {
                        if sep.is_empty() {
                            let mut v = split_all(s, sep);
                            if v.len() > n as usize {
                                let rest: String = s.chars().skip(n as usize - 1).collect();
                                v.truncate(n as usize - 1);
                                v.push(Str(Rc::from(rest)));
                            }
                            v
                        } else {
                            s.splitn(n as usize, &**sep).map(|p| Str(Rc::from(p))).collect()
                        }
                    }
                };
                Ok(List(Rc::new(parts)))
            }
            ("substring", [Str(s), Int(start), rest @ ..]) => {
                self.charge_bytes(s.len())?;
                let chars: Vec<char> = s.chars().collect();
                let end = match rest {
                    [] => chars.len() as i64,
                    [Int(e)] => *e,
                    _ => return no_overload(),
                };
                if *start < 0 || *start as usize > chars.len() {
                    return msg(format!("index out of range: {start}"));
                }
                if end < 0 || end as usize > chars.len() {
                    return msg(format!("index out of range: {end}"));
                }
                if *start > end {
                    return msg(format!("invalid substring range. start: {start}, end: {end}"));
                }
                Ok(Str(Rc::from(chars[*start as usize..end as usize].iter().collect::<String>())))
            }
            ("join", [l, rest @ ..]) if l.list_len().is_some() => {
                let sep = match rest {
                    [] => "",
                    [Str(s)] => s,
                    _ => return no_overload(),
                };
                let n = l.list_len().unwrap_or(0);
                let mut out = String::new();
                for i in 0..n {
                    let Some(Str(part)) = l.list_get(i) else { return no_overload() };
                    self.charge_bytes(part.len() + sep.len())?;
                    if i > 0 {
                        out.push_str(sep);
                    }
                    out.push_str(&part);
                }
                Ok(Str(Rc::from(out)))
            }
            ("isSorted" | "sum" | "min" | "max", [l]) if l.list_len().is_some() => {
                let n = l.list_len().unwrap_or(0);
                let items: Vec<Val<'a>> = (0..n).filter_map(|i| l.list_get(i)).collect();
                self.charge(n as u64)?;
                match f {
                    "isSorted" => {
                        for w in items.windows(2) {
                            if self.compare(&w[0], &w[1])?.is_gt() {
                                return Ok(Bool(false));
                            }
                        }
                        Ok(Bool(true))
                    }
                    "sum" => {
                        let mut acc = match items.first() {
                            Some(Double(_)) => Double(0.0),
                            Some(Uint(_)) => Uint(0),
                            Some(Dur(_)) => Dur(0),
                            _ => Int(0),
                        };
                        for mut x in items {
                            acc = self.add(&mut acc, &mut x)?;
                        }
                        Ok(acc)
                    }
                    _ => {
                        let mut best: Option<Val<'a>> = None;
                        for x in items {
                            best = Some(match best {
                                None => x,
                                Some(b) => {
                                    let o = self.compare(&x, &b)?;
                                    if (f == "min" && o.is_lt()) || (f == "max" && o.is_gt()) {
                                        x
                                    } else {
                                        b
                                    }
                                }
                            });
                        }
                        best.map(Ok)
                            .unwrap_or_else(|| msg(format!("{f}(list) argument must not be empty")))
                    }
                }
            }
            ("hasValue", [Opt(o)]) => Ok(Bool(o.is_some())),
            ("value", [Opt(o)]) => match o {
                Some(v) => Ok((**v).clone()),
                None => msg("optional.none() dereference"),
            },
            ("orValue", [Opt(o), alt]) => Ok(o.as_deref().cloned().unwrap_or_else(|| alt.clone())),
            ("dyn", [x]) => Ok(x.clone()),
            ("type", [x]) => Ok(Type(x.type_name())),
            ("int", [x]) => match x {
                Int(i) => Ok(Int(*i)),
                Uint(u) => i64::try_from(*u).map(Int).map_err(|_| overflow()),
                Double(d) => {
                    if d.is_finite() && *d > -9.223372036854776e18 && *d < 9.223372036854776e18 {
                        Ok(Int(*d as i64))
                    } else {
                        msg("integer overflow")
                    }
                }
                Str(s) => s
                    .parse::<i64>()
                    .map(Int)
                    .or_else(|_| msg(format!("cannot convert '{s}' to int"))),
                Ts(t) => Ok(Int(t.div_euclid(NANOS) as i64)),
                Dur(d) => i64::try_from(*d).map(Int).map_err(|_| overflow()),
                _ => no_overload(),
            },
            ("uint", [x]) => match x {
                Uint(u) => Ok(Uint(*u)),
                Int(i) => u64::try_from(*i).map(Uint).map_err(|_| overflow()),
                Double(d) => {
                    if d.is_finite() && *d >= 0.0 && *d < 1.8446744073709552e19 {
                        Ok(Uint(*d as u64))
                    } else {
                        msg("unsigned integer overflow")
                    }
                }
                Str(s) => s
                    .parse::<u64>()
                    .map(Uint)
                    .or_else(|_| msg(format!("cannot convert '{s}' to uint"))),
                _ => no_overload(),
            },
            ("double", [x]) => match x {
                Double(d) => Ok(Double(*d)),
                Int(i) => Ok(Double(*i as f64)),
                Uint(u) => Ok(Double(*u as f64)),
                Str(s) => s
                    .parse::<f64>()
                    .map(Double)
                    .or_else(|_| msg(format!("cannot convert '{s}' to double"))),
                _ => no_overload(),
            },
            ("string", [x]) => match x {
                Str(s) => Ok(Str(s.clone())),
                Int(i) => Ok(Str(Rc::from(i.to_string()))),
                Uint(u) => Ok(Str(Rc::from(u.to_string()))),
                Double(d) => Ok(Str(Rc::from(d.to_string()))),
                Bool(b) => Ok(Str(Rc::from(b.to_string()))),
                Bytes(b) => match std::str::from_utf8(b) {
                    Ok(s) => Ok(Str(Rc::from(s))),
                    Err(_) => msg("invalid UTF-8 in bytes, cannot convert to string"),
                },
                Ts(t) => {
                    let secs = t.div_euclid(NANOS) as i64;
                    let nanos = t.rem_euclid(NANOS) as i32;
                    Ok(Str(Rc::from(if nanos == 0 {
                        crate::time::rfc3339(secs)
                    } else {
                        crate::time::rfc3339_micros(secs, nanos)
                    })))
                }
                Dur(d) => Ok(Str(Rc::from(format_duration(*d)))),
                _ => no_overload(),
            },
            ("bytes", [Str(s)]) => Ok(Bytes(Rc::from(s.as_bytes()))),
            ("bytes", [Bytes(b)]) => Ok(Bytes(b.clone())),
            ("bool", [Bool(b)]) => Ok(Bool(*b)),
            ("bool", [Str(s)]) => match &**s {
                "true" | "True" | "TRUE" | "t" | "1" => Ok(Bool(true)),
                "false" | "False" | "FALSE" | "f" | "0" => Ok(Bool(false)),
                _ => msg("type conversion error from 'string' to 'bool'"),
            },
            ("duration", [Dur(d)]) => Ok(Dur(*d)),
            ("duration", [Str(s)]) => match crate::time::parse_go_duration(s) {
                Some(n) => Ok(Dur(n as i128)),
                None => msg("type conversion error from 'string' to 'google.protobuf.Duration'"),
            },
            ("timestamp", [Ts(t)]) => Ok(Ts(*t)),
            ("timestamp", [Int(secs)]) => ts(*secs as i128 * NANOS),
            ("timestamp", [Str(s)]) => match crate::time::parse_rfc3339(s) {
                Some((secs, nanos)) => ts(secs as i128 * NANOS + nanos as i128),
                None => msg("type conversion error from 'string' to 'google.protobuf.Timestamp'"),
            },
            ("getSeconds", [Dur(d)]) => Ok(Int((d / NANOS) as i64)),
            ("getMilliseconds", [Dur(d)]) => Ok(Int((d / 1_000_000) as i64)),
            ("getMinutes", [Dur(d)]) => Ok(Int((d / (60 * NANOS)) as i64)),
            ("getHours", [Dur(d)]) => Ok(Int((d / (3600 * NANOS)) as i64)),
            (g, [Ts(t)]) => timestamp_getter(g, *t),
            _ => no_overload(),
        }
    }
}

fn overflow() -> EvalError {
    EvalError::Msg("integer overflow".into())
}

fn ts<'a>(nanos: i128) -> R<'a> {
    let secs = nanos.div_euclid(NANOS);
    if secs < TS_MIN_SECS as i128 || secs > TS_MAX_SECS as i128 {
        return msg("timestamp out of range");
    }
    Ok(Val::Ts(nanos))
}

fn dur<'a>(nanos: i128) -> R<'a> {
    if (nanos / NANOS).abs() > DUR_MAX_SECS {
        return msg("duration out of range");
    }
    Ok(Val::Dur(nanos))
}

fn format_duration(d: i128) -> String {
    let secs = d / NANOS;
    let frac = (d % NANOS).abs();
    if frac == 0 {
        format!("{secs}s")
    } else {
        let sign = if d < 0 && secs == 0 { "-" } else { "" };
        let f = format!("{frac:09}");
        format!("{sign}{secs}.{}s", f.trim_end_matches('0'))
    }
}

/// UTC civil date of a day count since the epoch.
fn civil(days: i64) -> (i64, u32, u32) {
    crate::time::civil_from_days(days)
}

fn timestamp_getter<'a>(g: &str, t: i128) -> R<'a> {
    let secs = t.div_euclid(NANOS) as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    let jan1 = {
        // days from epoch to Jan 1 of year y
        let mut lo = days - 366;
        while civil(lo + 1).0 < y {
            lo += 1;
        }
        lo + 1
    };
    Ok(Val::Int(match g {
        "getFullYear" => y,
        "getMonth" => m as i64 - 1,
        "getDayOfMonth" => d as i64 - 1,
        "getDayOfYear" => days - jan1,
        "getDayOfWeek" => (days + 4).rem_euclid(7),
        "getHours" => sod / 3600,
        "getMinutes" => sod % 3600 / 60,
        "getSeconds" => sod % 60,
        "getMilliseconds" => (t.rem_euclid(NANOS) / 1_000_000) as i64,
        _ => return no_overload(),
    }))
}

fn split_all<'a>(s: &str, sep: &str) -> Vec<Val<'a>> {
    if sep.is_empty() {
        s.chars().map(|c| Val::Str(Rc::from(c.to_string()))).collect()
    } else {
        s.split(sep).map(|p| Val::Str(Rc::from(p))).collect()
    }
}

fn show_key(k: &Val<'_>) -> String {
    match k {
        Val::Str(s) => s.to_string(),
        Val::Int(i) => i.to_string(),
        Val::Uint(u) => u.to_string(),
        Val::Bool(b) => b.to_string(),
        other => other.type_name().to_string(),
    }
}

enum Num {
    I(i64),
    U(u64),
    D(f64),
}

fn num(v: &Val<'_>) -> Option<Num> {
    match v {
        Val::Int(i) => Some(Num::I(*i)),
        Val::Uint(u) => Some(Num::U(*u)),
        Val::Double(d) => Some(Num::D(*d)),
        _ => None,
    }
}

/// Cross-type numeric ordering (None for NaN or non-numbers).
fn num_cmp(a: &Val<'_>, b: &Val<'_>) -> Option<std::cmp::Ordering> {
    use Num::*;
    match (num(a)?, num(b)?) {
        (I(x), I(y)) => Some(x.cmp(&y)),
        (U(x), U(y)) => Some(x.cmp(&y)),
        (I(x), U(y)) => Some((x as i128).cmp(&(y as i128))),
        (U(x), I(y)) => Some((x as i128).cmp(&(y as i128))),
        (D(x), D(y)) => x.partial_cmp(&y),
        (D(x), I(y)) => x.partial_cmp(&(y as f64)),
        (I(x), D(y)) => (x as f64).partial_cmp(&y),
        (D(x), U(y)) => x.partial_cmp(&(y as f64)),
        (U(x), D(y)) => (x as f64).partial_cmp(&y),
    }
}

fn arith<'a>(f: &str, a: &Val<'a>, b: &Val<'a>) -> R<'a> {
    use Val::*;
    match (a, b) {
        (Int(x), Int(y)) => {
            let r = match f {
                "_-_" => x.checked_sub(*y),
                "_*_" => x.checked_mul(*y),
                "_/_" if *y == 0 => return msg("division by zero"),
                "_%_" if *y == 0 => return msg("modulus by zero"),
                "_/_" => x.checked_div(*y),
                _ => x.checked_rem(*y),
            };
            r.map(Int).ok_or_else(overflow)
        }
        (Uint(x), Uint(y)) => {
            let r = match f {
                "_-_" => x.checked_sub(*y),
                "_*_" => x.checked_mul(*y),
                "_/_" if *y == 0 => return msg("division by zero"),
                "_%_" if *y == 0 => return msg("modulus by zero"),
                "_/_" => x.checked_div(*y),
                _ => x.checked_rem(*y),
            };
            r.map(Uint).ok_or_else(|| EvalError::Msg("unsigned integer overflow".into()))
        }
        (Double(x), Double(y)) => Ok(Double(match f {
            "_-_" => x - y,
            "_*_" => x * y,
            "_/_" => x / y,
            _ => return no_overload(),
        })),
        (Ts(x), Ts(y)) if f == "_-_" => dur(x - y),
        (Ts(x), Dur(y)) if f == "_-_" => ts(x - y),
        (Dur(x), Dur(y)) if f == "_-_" => dur(x - y),
        _ => no_overload(),
    }
}

/// How many times `name` can be read along one evaluation path of `e` (branches of a
/// conditional count as alternatives). At most one read lets the step move the
/// accumulator instead of copying it.
fn accu_refs(e: &IdedExpr, name: &str) -> usize {
    match &e.expr {
        Expr::Ident(n) => usize::from(n == name),
        Expr::Call(c) if c.func_name == "_?_:_" && c.args.len() == 3 => {
            accu_refs(&c.args[0], name)
                + accu_refs(&c.args[1], name).max(accu_refs(&c.args[2], name))
        }
        Expr::Call(c) => {
            c.target.as_deref().map_or(0, |t| accu_refs(t, name))
                + c.args.iter().map(|a| accu_refs(a, name)).sum::<usize>()
        }
        Expr::Select(s) => accu_refs(&s.operand, name),
        Expr::List(l) => l.elements.iter().map(|a| accu_refs(a, name)).sum(),
        Expr::Map(m) => m
            .entries
            .iter()
            .map(|en| match &en.expr {
                EntryExpr::MapEntry(me) => accu_refs(&me.key, name) + accu_refs(&me.value, name),
                EntryExpr::StructField(sf) => accu_refs(&sf.value, name),
            })
            .sum(),
        // A nested comprehension may read it once per iteration: never move.
        Expr::Comprehension(_) => 2,
        _ => 0,
    }
}
