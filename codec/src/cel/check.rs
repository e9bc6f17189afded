//! Static checks of a parsed CEL expression against the schema it runs on: unknown
//! variables, fields and functions, the result type, regex literals, and a worst-case
//! cost estimate.
//!
//! The checker is deliberately lenient: where a type is not known statically (`dyn`,
//! int-or-string, preserve-unknown-fields) anything is accepted and the interpreter
//! decides at runtime. It only rejects what can never work: an undeclared identifier,
//! a field the schema does not declare on an object, a function kapi does not
//! implement, an operator applied to two known and incompatible types, a result that
//! is known not to be a bool (or a string for messageExpression).
//!
//! Cost estimate (an approximation of cel-go's estimator, documented so users can
//! predict it): every evaluated node costs 1; string scans (`contains`, `startsWith`,
//! `matches`, `==` on strings, ...) cost `ceil(len/10)` with the schema's `maxLength`
//! (or the request-size bound when undeclared); a comprehension (`all`, `exists`,
//! `exists_one`, `map`, `filter`) costs its range plus, per possible element
//! (`maxItems`/`maxProperties`, or the request-size bound), its condition and step; list
//! and map literals cost 10 and 30. Sizes flowing out of `map`/`filter` keep their range's
//! bound. All arithmetic saturates.
//!
//! Invariant: recursion is bounded by the AST depth, which the parser limits.

use std::collections::HashMap;
use std::sync::Arc;

use cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr, LiteralValue};
use regex::Regex;

use super::authorizer::{self, AuthzTy};
use super::shape::{Kind, MAX_REQUEST_SIZE_BYTES, Shape};

/// A static type, with the largest size a value of it can have.
#[derive(Debug, Clone)]
pub enum Ty {
    Dyn,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    Str,
    Bytes,
    Timestamp,
    Duration,
    Type,
    List(Box<Info>),
    Map(Box<Info>, Box<Info>),
    Obj(Arc<Shape>),
    /// A value of the authorizer library.
    Authz(AuthzTy),
    /// An object constructed by a mutation (`Object{...}`, `Object.spec{...}`,
    /// `JSONPatch{...}`), by its type name; a map of its fields at runtime.
    Struct(Arc<str>),
}

#[derive(Debug, Clone)]
pub struct Info {
    pub ty: Ty,
    /// Max length of a string/bytes, items of a list, entries of a map.
    pub size: u64,
}

impl Info {
    fn of(ty: Ty) -> Info {
        Info { ty, size: 1 }
    }
    pub(crate) fn dyn_() -> Info {
        Info { ty: Ty::Dyn, size: MAX_REQUEST_SIZE_BYTES }
    }
    pub fn from_shape(shape: &Arc<Shape>) -> Info {
        let size = shape.max_size();
        let ty = match &shape.kind {
            Kind::Any | Kind::IntOrString => Ty::Dyn,
            Kind::Bool => Ty::Bool,
            Kind::Int => Ty::Int,
            Kind::Double => Ty::Double,
            Kind::Str => Ty::Str,
            Kind::Bytes => Ty::Bytes,
            Kind::Timestamp => Ty::Timestamp,
            Kind::Duration => Ty::Duration,
            Kind::List(e) => Ty::List(Box::new(Info::from_shape(e))),
            Kind::Map(v) => Ty::Map(
                Box::new(Info { ty: Ty::Str, size: MAX_REQUEST_SIZE_BYTES }),
                Box::new(Info::from_shape(v)),
            ),
            Kind::Object(_) => Ty::Obj(shape.clone()),
        };
        Info { ty, size }
    }
}

/// The name cel-go prints for a type in overload errors.
pub(crate) fn ty_name(t: &Ty) -> String {
    match t {
        Ty::Dyn => "dyn".into(),
        Ty::Null => "null_type".into(),
        Ty::Bool => "bool".into(),
        Ty::Int => "int".into(),
        Ty::Uint => "uint".into(),
        Ty::Double => "double".into(),
        Ty::Str => "string".into(),
        Ty::Bytes => "bytes".into(),
        Ty::Timestamp => "google.protobuf.Timestamp".into(),
        Ty::Duration => "google.protobuf.Duration".into(),
        Ty::Type => "type".into(),
        Ty::List(e) => format!("list({})", ty_name(&e.ty)),
        Ty::Map(k, v) => format!("map({}, {})", ty_name(&k.ty), ty_name(&v.ty)),
        Ty::Obj(_) => "object".into(),
        Ty::Authz(a) => a.name().into(),
        Ty::Struct(name) => name.to_string(),
    }
}

fn is_num(t: &Ty) -> bool {
    matches!(t, Ty::Int | Ty::Uint | Ty::Double)
}

/// Two known types that can never meet in `==`, `<`, `+`... (`dyn` meets anything).
fn incompatible(a: &Ty, b: &Ty) -> bool {
    use std::mem::discriminant;
    if matches!(a, Ty::Dyn) || matches!(b, Ty::Dyn) {
        return false;
    }
    if is_num(a) && is_num(b) {
        return false;
    }
    discriminant(a) != discriminant(b)
}

pub struct CheckError {
    pub id: u64,
    pub msg: String,
}

/// What a successful check found.
pub struct Checked {
    pub ty: Ty,
    pub cost: u64,
    pub uses_old_self: bool,
    /// Regex literals compiled once, by the id of their `matches` call.
    pub regexes: HashMap<u64, Arc<Regex>>,
}

pub struct Checker {
    scopes: Vec<(String, Info)>,
    uses_old_self: bool,
    regexes: HashMap<u64, Arc<Regex>>,
    /// Whether `Object{...}` / `JSONPatch{...}` literals and `jsonpatch.escapeKey` are
    /// declared (mutating admission policies; see `construct`).
    constructs: bool,
}

type R = Result<(Info, u64), CheckError>;

fn err(id: u64, msg: impl Into<String>) -> CheckError {
    CheckError { id, msg: msg.into() }
}

fn scan(size: u64) -> u64 {
    size.div_ceil(10).max(1)
}

/// Functions kapi implements (global `f(x)` or member `x.f()`); anything else is an
/// undeclared reference at compile time.
const FUNCTIONS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "lowerAscii",
    "upperAscii",
    "trim",
    "charAt",
    "indexOf",
    "lastIndexOf",
    "replace",
    "split",
    "substring",
    "join",
    "isSorted",
    "sum",
    "min",
    "max",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "dyn",
    "type",
    "duration",
    "timestamp",
    "getSeconds",
    "getMilliseconds",
    "getMinutes",
    "getHours",
    "getFullYear",
    "getMonth",
    "getDayOfMonth",
    "getDayOfYear",
    "getDayOfWeek",
    "hasValue",
    "value",
    "orValue",
];

impl Checker {
    pub fn new(self_info: Info, old_self: Info) -> Self {
        let scopes = vec![("self".to_string(), self_info), ("oldSelf".to_string(), old_self)];
        Checker { scopes, uses_old_self: false, regexes: HashMap::new(), constructs: false }
    }

    /// A checker whose variables are `vars` (admission expressions: `object`,
    /// `oldObject`, `request`, ... all `dyn`).
    pub fn with_vars(vars: &[&str]) -> Self {
        let scopes = vars.iter().map(|v| (v.to_string(), Info::dyn_())).collect();
        Checker { scopes, uses_old_self: false, regexes: HashMap::new(), constructs: false }
    }

    /// A checker whose variables have the given types (`dyn` or schema-typed).
    pub fn with_typed_vars(vars: Vec<(&str, Info)>) -> Self {
        let scopes = vars.into_iter().map(|(n, i)| (n.to_string(), i)).collect();
        Checker { scopes, uses_old_self: false, regexes: HashMap::new(), constructs: false }
    }

    /// Declare the object construction of mutating admission policies.
    pub fn with_construction(mut self) -> Self {
        self.constructs = true;
        self
    }

    pub fn run(mut self, e: &IdedExpr) -> Result<Checked, CheckError> {
        let (info, cost) = self.expr(e)?;
        Ok(Checked { ty: info.ty, cost, uses_old_self: self.uses_old_self, regexes: self.regexes })
    }

    fn lookup(&mut self, name: &str) -> Option<Info> {
        let found = self.scopes.iter().rev().find(|(n, _)| n == name).map(|(_, i)| i.clone());
        if found.is_some() && name == "oldSelf" {
            self.uses_old_self = true;
        }
        found
    }

    fn expr(&mut self, e: &IdedExpr) -> R {
        match &e.expr {
            Expr::Unspecified => Err(err(e.id, "unsupported expression")),
            Expr::Literal(l) => Ok((
                match l {
                    LiteralValue::Boolean(_) => Info::of(Ty::Bool),
                    LiteralValue::Int(_) => Info::of(Ty::Int),
                    LiteralValue::UInt(_) => Info::of(Ty::Uint),
                    LiteralValue::Double(_) => Info::of(Ty::Double),
                    LiteralValue::Null => Info::of(Ty::Null),
                    LiteralValue::String(s) => Info { ty: Ty::Str, size: s.inner().len() as u64 },
                    LiteralValue::Bytes(b) => Info { ty: Ty::Bytes, size: b.inner().len() as u64 },
                },
                0,
            )),
            Expr::Ident(name) => match self.lookup(name) {
                Some(i) => Ok((i, 1)),
                None => {
                    Err(err(e.id, format!("undeclared reference to '{name}' (in container '')")))
                }
            },
            Expr::Select(s) => {
                let (operand, c) = self.expr(&s.operand)?;
                let field = self.field(e.id, &operand, &s.field)?;
                if s.test {
                    Ok((Info::of(Ty::Bool), c.saturating_add(1)))
                } else {
                    Ok((field, c.saturating_add(1)))
                }
            }
            Expr::List(l) => {
                if !l.optional_indices.is_empty() {
                    return Err(err(e.id, "optional list elements are not supported"));
                }
                let mut cost: u64 = 10;
                let mut elem: Option<Info> = None;
                for el in &l.elements {
                    let (i, c) = self.expr(el)?;
                    cost = cost.saturating_add(c);
                    elem = Some(match elem {
                        None => i,
                        Some(prev) if incompatible(&prev.ty, &i.ty) => Info::dyn_(),
                        Some(prev) => {
                            if prev.size >= i.size {
                                prev
                            } else {
                                i
                            }
                        }
                    });
                }
                let n = l.elements.len() as u64;
                Ok((
                    Info { ty: Ty::List(Box::new(elem.unwrap_or_else(Info::dyn_))), size: n },
                    cost,
                ))
            }
            Expr::Map(m) => {
                let mut cost: u64 = 30;
                let mut kv: Option<(Info, Info)> = None;
                for entry in &m.entries {
                    let EntryExpr::MapEntry(me) = &entry.expr else {
                        return Err(err(entry.id, "unsupported map entry"));
                    };
                    if me.optional {
                        return Err(err(entry.id, "optional map entries are not supported"));
                    }
                    let (k, c1) = self.expr(&me.key)?;
                    let (v, c2) = self.expr(&me.value)?;
                    if !matches!(k.ty, Ty::Dyn | Ty::Str | Ty::Int | Ty::Uint | Ty::Bool) {
                        return Err(err(
                            me.key.id,
                            format!("unsupported map key type: {}", ty_name(&k.ty)),
                        ));
                    }
                    cost = cost.saturating_add(c1).saturating_add(c2);
                    kv = Some(match kv {
                        None => (k, v),
                        Some((pk, pv)) => (
                            if incompatible(&pk.ty, &k.ty) { Info::dyn_() } else { pk },
                            if incompatible(&pv.ty, &v.ty) { Info::dyn_() } else { pv },
                        ),
                    });
                }
                let n = m.entries.len() as u64;
                let (k, v) = kv.unwrap_or_else(|| (Info::dyn_(), Info::dyn_()));
                Ok((Info { ty: Ty::Map(Box::new(k), Box::new(v)), size: n }, cost))
            }
            Expr::Struct(s) if self.constructs && super::construct::declared(&s.type_name) => {
                let mut cost: u64 = 40;
                for entry in &s.entries {
                    let EntryExpr::StructField(sf) = &entry.expr else {
                        return Err(err(entry.id, "unsupported struct entry"));
                    };
                    if sf.optional {
                        return Err(err(entry.id, "optional fields are not supported"));
                    }
                    cost = cost.saturating_add(self.expr(&sf.value)?.1);
                }
                let name = s.type_name.strip_prefix('.').unwrap_or(&s.type_name);
                let ty = Ty::Struct(name.into());
                Ok((Info { ty, size: s.entries.len() as u64 }, cost))
            }
            Expr::Struct(s) => Err(err(
                e.id,
                format!("undeclared reference to '{}' (in container '')", s.type_name),
            )),
            Expr::Comprehension(c) => {
                let (range, rc) = self.expr(&c.iter_range)?;
                let (v1, v2) = match &range.ty {
                    Ty::List(el) => (Info::of(Ty::Int), (**el).clone()),
                    Ty::Map(k, v) => ((**k).clone(), (**v).clone()),
                    Ty::Dyn => (Info::dyn_(), Info::dyn_()),
                    Ty::Obj(_) => {
                        return Err(err(
                            c.iter_range.id,
                            format!(
                                "expression of type '{}' cannot be range of a comprehension (must be list, map, or dynamic)",
                                ty_name(&range.ty)
                            ),
                        ));
                    }
                    other => {
                        return Err(err(
                            c.iter_range.id,
                            format!(
                                "expression of type '{}' cannot be range of a comprehension (must be list, map, or dynamic)",
                                ty_name(other)
                            ),
                        ));
                    }
                };
                let n = range.size;
                let (init, ic) = self.expr(&c.accu_init)?;
                let depth = self.scopes.len();
                self.scopes.push((c.accu_var.clone(), init.clone()));
                match &c.iter_var2 {
                    Some(second) => {
                        self.scopes.push((c.iter_var.clone(), v1));
                        self.scopes.push((second.clone(), v2));
                    }
                    None => {
                        let single = if matches!(range.ty, Ty::List(_)) { v2 } else { v1 };
                        self.scopes.push((c.iter_var.clone(), single));
                    }
                }
                let cond = self.expr(&c.loop_cond);
                let step = self.expr(&c.loop_step);
                self.scopes.truncate(depth + 1);
                let (cond, cc) = cond?;
                let (mut step, sc) = step?;
                let _ = cond;
                // map/filter grow the accumulator list up to the range's size.
                if let Ty::List(_) = step.ty {
                    step.size = n;
                }
                if matches!(step.ty, Ty::Dyn) {
                    step = init;
                }
                self.scopes.truncate(depth);
                self.scopes.push((c.accu_var.clone(), step));
                let res = self.expr(&c.result);
                self.scopes.truncate(depth);
                let (res, resc) = res?;
                let per = cc.saturating_add(sc).saturating_add(1);
                let cost = rc
                    .saturating_add(ic)
                    .saturating_add(n.saturating_mul(per))
                    .saturating_add(resc);
                Ok((res, cost))
            }
            Expr::Call(call) => self.call(e.id, call),
        }
    }

    fn field(&mut self, id: u64, operand: &Info, name: &str) -> Result<Info, CheckError> {
        match &operand.ty {
            Ty::Obj(shape) => match &shape.kind {
                Kind::Object(fields) => match fields.get(name) {
                    Some(f) => Ok(Info::from_shape(f)),
                    None => Err(err(id, format!("undefined field '{name}'"))),
                },
                _ => Ok(Info::dyn_()),
            },
            Ty::Map(_, v) => Ok((**v).clone()),
            Ty::Dyn | Ty::Struct(_) => Ok(Info::dyn_()),
            Ty::Authz(AuthzTy::Authorizer) if name == "requestResource" => {
                Ok(Info::of(Ty::Authz(AuthzTy::ResourceCheck)))
            }
            other => {
                Err(err(id, format!("type '{}' does not support field selection", ty_name(other))))
            }
        }
    }

    fn call(&mut self, id: u64, call: &CallExpr) -> R {
        let f = call.func_name.as_str();
        if self.constructs && super::construct::is_escape_key(call) {
            let (arg, c) = self.expr(&call.args[0])?;
            if !matches!(arg.ty, Ty::Str | Ty::Dyn) {
                let found = ty_name(&arg.ty);
                return Err(err(
                    id,
                    format!(
                        "found no matching overload for 'jsonpatch.escapeKey' applied to '({found})'"
                    ),
                ));
            }
            return Ok((
                Info { ty: Ty::Str, size: arg.size.saturating_mul(2) },
                c.saturating_add(1),
            ));
        }
        let mut cost: u64 = 1;
        let mut args: Vec<Info> = Vec::with_capacity(call.args.len() + 1);
        if let Some(t) = &call.target {
            let (i, c) = self.expr(t)?;
            cost = cost.saturating_add(c);
            args.push(i);
        }
        for a in &call.args {
            let (i, c) = self.expr(a)?;
            cost = cost.saturating_add(c);
            args.push(i);
        }
        let member = call.target.is_some();
        let no_overload = |args: &[Info]| {
            let names: Vec<String> = args.iter().map(|a| ty_name(&a.ty)).collect();
            let sig = if member && !names.is_empty() {
                format!("{}.({})", names[0], names[1..].join(", "))
            } else {
                format!("({})", names.join(", "))
            };
            err(id, format!("found no matching overload for '{f}' applied to '{sig}'"))
        };
        let bool_ = || Info::of(Ty::Bool);
        let n = args.len();
        if member && authorizer::FUNCTIONS.contains(&f) {
            match &args[0].ty {
                Ty::Authz(t) => {
                    let out = authorizer::check_member(*t, f, &args[1..]);
                    if f == "check" {
                        cost = cost.saturating_add(authorizer::CHECK_COST);
                    }
                    return out.map(|i| (i, cost)).ok_or_else(|| no_overload(&args));
                }
                Ty::Dyn if !FUNCTIONS.contains(&f) => return Ok((Info::dyn_(), cost)),
                _ => {}
            }
        }
        let info = match f {
            "_&&_" | "_||_" => {
                for a in &args {
                    if !matches!(a.ty, Ty::Bool | Ty::Dyn) {
                        return Err(no_overload(&args));
                    }
                }
                bool_()
            }
            "!_" | "@not_strictly_false" => {
                if n != 1 || !matches!(args[0].ty, Ty::Bool | Ty::Dyn) {
                    return Err(no_overload(&args));
                }
                bool_()
            }
            "_?_:_" => {
                if n != 3 || !matches!(args[0].ty, Ty::Bool | Ty::Dyn) {
                    return Err(no_overload(&args));
                }
                if incompatible(&args[1].ty, &args[2].ty)
                    && !matches!(args[1].ty, Ty::Null)
                    && !matches!(args[2].ty, Ty::Null)
                {
                    return Err(no_overload(&args));
                }
                let (a, b) = (args[1].clone(), args[2].clone());
                // A list of `dyn` (`[]`) meets a typed list as cel-go's type parameter
                // of an empty literal does: the typed one.
                let vague = |i: &Info| matches!(&i.ty, Ty::List(e) if matches!(e.ty, Ty::Dyn));
                let typed_list = |i: &Info| matches!(i.ty, Ty::List(_)) && !vague(i);
                if matches!(a.ty, Ty::Dyn | Ty::Null) {
                    b
                } else if vague(&a) && typed_list(&b) {
                    Info { size: a.size.max(b.size), ..b }
                } else if a.size >= b.size {
                    a
                } else {
                    Info { ty: a.ty, size: b.size }
                }
            }
            "_==_" | "_!=_" => {
                if n != 2 {
                    return Err(no_overload(&args));
                }
                let (a, b) = (&args[0].ty, &args[1].ty);
                if incompatible(a, b) && !matches!(a, Ty::Null) && !matches!(b, Ty::Null) {
                    return Err(no_overload(&args));
                }
                cost = cost.saturating_add(eq_cost(&args[0], &args[1]));
                bool_()
            }
            "_<_" | "_<=_" | "_>_" | "_>=_" => {
                if n != 2 {
                    return Err(no_overload(&args));
                }
                let (a, b) = (&args[0].ty, &args[1].ty);
                let orderable = |t: &Ty| {
                    matches!(
                        t,
                        Ty::Dyn
                            | Ty::Int
                            | Ty::Uint
                            | Ty::Double
                            | Ty::Str
                            | Ty::Bytes
                            | Ty::Bool
                            | Ty::Timestamp
                            | Ty::Duration
                    )
                };
                if !orderable(a) || !orderable(b) || incompatible(a, b) {
                    return Err(no_overload(&args));
                }
                cost = cost.saturating_add(scan(args[0].size.min(args[1].size)));
                bool_()
            }
            "_+_" => {
                if n != 2 {
                    return Err(no_overload(&args));
                }
                let (a, b) = (&args[0], &args[1]);
                match (&a.ty, &b.ty) {
                    (Ty::Timestamp, Ty::Duration) | (Ty::Duration, Ty::Timestamp) => {
                        Info::of(Ty::Timestamp)
                    }
                    (Ty::Duration, Ty::Duration) => Info::of(Ty::Duration),
                    (Ty::Str, Ty::Str) | (Ty::Bytes, Ty::Bytes) => {
                        let size = a.size.saturating_add(b.size);
                        cost = cost.saturating_add(scan(size));
                        Info { ty: a.ty.clone(), size }
                    }
                    (Ty::List(ea), Ty::List(eb)) => {
                        let el = if matches!(ea.ty, Ty::Dyn) { eb.clone() } else { ea.clone() };
                        Info { ty: Ty::List(el), size: a.size.saturating_add(b.size) }
                    }
                    (Ty::Int, Ty::Int) | (Ty::Uint, Ty::Uint) | (Ty::Double, Ty::Double) => {
                        a.clone()
                    }
                    (Ty::Dyn, _) => Info { ty: Ty::Dyn, size: a.size.saturating_add(b.size) },
                    (_, Ty::Dyn) => Info { ty: a.ty.clone(), size: a.size.saturating_add(b.size) },
                    _ => return Err(no_overload(&args)),
                }
            }
            "_-_" => {
                if n != 2 {
                    return Err(no_overload(&args));
                }
                match (&args[0].ty, &args[1].ty) {
                    (Ty::Timestamp, Ty::Timestamp) => Info::of(Ty::Duration),
                    (Ty::Timestamp, Ty::Duration) => Info::of(Ty::Timestamp),
                    (Ty::Duration, Ty::Duration) => Info::of(Ty::Duration),
                    (Ty::Int, Ty::Int) | (Ty::Uint, Ty::Uint) | (Ty::Double, Ty::Double) => {
                        args[0].clone()
                    }
                    (Ty::Dyn, _) | (_, Ty::Dyn) => Info::dyn_(),
                    _ => return Err(no_overload(&args)),
                }
            }
            "_*_" | "_/_" | "_%_" => {
                if n != 2 {
                    return Err(no_overload(&args));
                }
                match (&args[0].ty, &args[1].ty) {
                    (Ty::Int, Ty::Int) | (Ty::Uint, Ty::Uint) => args[0].clone(),
                    (Ty::Double, Ty::Double) if f != "_%_" => args[0].clone(),
                    (Ty::Dyn, t) | (t, Ty::Dyn)
                        if matches!(t, Ty::Dyn | Ty::Int | Ty::Uint | Ty::Double) =>
                    {
                        Info::dyn_()
                    }
                    _ => return Err(no_overload(&args)),
                }
            }
            "-_" => match args.first().map(|a| &a.ty) {
                Some(Ty::Int | Ty::Double | Ty::Dyn) if n == 1 => args[0].clone(),
                _ => return Err(no_overload(&args)),
            },
            "_[_]" => {
                if n != 2 {
                    return Err(no_overload(&args));
                }
                match &args[0].ty {
                    Ty::List(e) => {
                        if !matches!(args[1].ty, Ty::Int | Ty::Uint | Ty::Dyn) {
                            return Err(no_overload(&args));
                        }
                        (**e).clone()
                    }
                    Ty::Map(k, v) => {
                        if incompatible(&k.ty, &args[1].ty) {
                            return Err(no_overload(&args));
                        }
                        (**v).clone()
                    }
                    Ty::Obj(_) => {
                        // self['field'] on an object with a literal name.
                        Info::dyn_()
                    }
                    Ty::Dyn => Info::dyn_(),
                    _ => return Err(no_overload(&args)),
                }
            }
            "@in" => {
                if n != 2 {
                    return Err(no_overload(&args));
                }
                match &args[1].ty {
                    Ty::List(e) => {
                        if incompatible(&e.ty, &args[0].ty) {
                            return Err(no_overload(&args));
                        }
                        cost =
                            cost.saturating_add(args[1].size.saturating_mul(eq_cost(&args[0], e)));
                    }
                    Ty::Map(k, _) => {
                        if incompatible(&k.ty, &args[0].ty) {
                            return Err(no_overload(&args));
                        }
                    }
                    Ty::Dyn => {}
                    _ => return Err(no_overload(&args)),
                }
                bool_()
            }
            _ => {
                if !FUNCTIONS.contains(&f) {
                    return Err(err(
                        id,
                        format!("undeclared reference to '{f}' (in container '')"),
                    ));
                }
                self.library(f, member, &args, &mut cost, &no_overload)?
            }
        };
        Ok((info, cost))
    }

    fn library(
        &mut self,
        f: &str,
        member: bool,
        args: &[Info],
        cost: &mut u64,
        no_overload: &dyn Fn(&[Info]) -> CheckError,
    ) -> Result<Info, CheckError> {
        let t = |i: usize| args.get(i).map(|a| &a.ty);
        let is = |i: usize, want: &Ty| match t(i) {
            Some(Ty::Dyn) => true,
            Some(x) => std::mem::discriminant(x) == std::mem::discriminant(want),
            None => false,
        };
        let n = args.len();
        let int = Info::of(Ty::Int);
        let s0 = args.first().map(|a| a.size).unwrap_or(1);
        let out = match f {
            "size" => {
                if n != 1
                    || !matches!(
                        t(0),
                        Some(
                            Ty::Str | Ty::Bytes | Ty::List(_) | Ty::Map(..) | Ty::Obj(_) | Ty::Dyn
                        )
                    )
                {
                    return Err(no_overload(args));
                }
                int
            }
            "contains" | "startsWith" | "endsWith" => {
                if !member || n != 2 || !is(0, &Ty::Str) || !is(1, &Ty::Str) {
                    return Err(no_overload(args));
                }
                *cost = cost.saturating_add(scan(s0));
                Info::of(Ty::Bool)
            }
            "matches" => {
                if n != 2 || !is(0, &Ty::Str) || !is(1, &Ty::Str) {
                    return Err(no_overload(args));
                }
                *cost = cost.saturating_add(scan(s0).saturating_mul(scan(args[1].size)));
                Info::of(Ty::Bool)
            }
            "lowerAscii" | "upperAscii" | "trim" => {
                if !member || n != 1 || !is(0, &Ty::Str) {
                    return Err(no_overload(args));
                }
                *cost = cost.saturating_add(scan(s0));
                Info { ty: Ty::Str, size: s0 }
            }
            "charAt" => {
                if !member || n != 2 || !is(0, &Ty::Str) || !is(1, &Ty::Int) {
                    return Err(no_overload(args));
                }
                Info { ty: Ty::Str, size: 1 }
            }
            "indexOf" | "lastIndexOf" => {
                if !member || !(2..=3).contains(&n) {
                    return Err(no_overload(args));
                }
                match t(0) {
                    Some(Ty::Str) if is(1, &Ty::Str) && (n == 2 || is(2, &Ty::Int)) => {}
                    Some(Ty::List(_)) if n == 2 => {}
                    Some(Ty::Dyn) => {}
                    _ => return Err(no_overload(args)),
                }
                *cost = cost.saturating_add(scan(s0));
                int
            }
            "replace" => {
                if !member
                    || !(3..=4).contains(&n)
                    || !is(0, &Ty::Str)
                    || !is(1, &Ty::Str)
                    || !is(2, &Ty::Str)
                {
                    return Err(no_overload(args));
                }
                *cost = cost.saturating_add(scan(s0));
                Info { ty: Ty::Str, size: s0.saturating_mul(args[2].size.max(1)) }
            }
            "split" => {
                if !member || !(2..=3).contains(&n) || !is(0, &Ty::Str) || !is(1, &Ty::Str) {
                    return Err(no_overload(args));
                }
                *cost = cost.saturating_add(scan(s0));
                Info { ty: Ty::List(Box::new(Info { ty: Ty::Str, size: s0 })), size: s0 }
            }
            "substring" => {
                if !member || !(2..=3).contains(&n) || !is(0, &Ty::Str) || !is(1, &Ty::Int) {
                    return Err(no_overload(args));
                }
                Info { ty: Ty::Str, size: s0 }
            }
            "join" => {
                if !member || !(1..=2).contains(&n) || !matches!(t(0), Some(Ty::List(_) | Ty::Dyn))
                {
                    return Err(no_overload(args));
                }
                let el = match t(0) {
                    Some(Ty::List(e)) => e.size,
                    _ => MAX_REQUEST_SIZE_BYTES,
                };
                let size = s0.saturating_mul(el);
                *cost = cost.saturating_add(scan(size));
                Info { ty: Ty::Str, size }
            }
            "isSorted" | "sum" | "min" | "max" => {
                if !member || n != 1 || !matches!(t(0), Some(Ty::List(_) | Ty::Dyn)) {
                    return Err(no_overload(args));
                }
                *cost = cost.saturating_add(s0);
                match (f, t(0)) {
                    ("isSorted", _) => Info::of(Ty::Bool),
                    (_, Some(Ty::List(e))) => (**e).clone(),
                    _ => Info::dyn_(),
                }
            }
            "int" | "uint" | "double" | "string" | "bytes" | "bool" | "dyn" | "type"
            | "duration" | "timestamp" => {
                if member || n != 1 {
                    return Err(no_overload(args));
                }
                let ty = match f {
                    "int" => Ty::Int,
                    "uint" => Ty::Uint,
                    "double" => Ty::Double,
                    "string" => Ty::Str,
                    "bytes" => Ty::Bytes,
                    "bool" => Ty::Bool,
                    "type" => Ty::Type,
                    "duration" => Ty::Duration,
                    "timestamp" => Ty::Timestamp,
                    _ => return Ok(args[0].clone()),
                };
                *cost = cost.saturating_add(scan(s0));
                Info { ty, size: s0 }
            }
            // optionalOldSelf: oldSelf is an optional (typed dyn here).
            "hasValue" | "value" | "orValue" => {
                if !member || !matches!(t(0), Some(Ty::Dyn)) {
                    return Err(no_overload(args));
                }
                match f {
                    "hasValue" => Info::of(Ty::Bool),
                    "orValue" if n == 2 => args[1].clone(),
                    "value" if n == 1 => Info::dyn_(),
                    _ => return Err(no_overload(args)),
                }
            }
            // timestamp and duration getters
            _ => {
                if !member || n > 2 || !matches!(t(0), Some(Ty::Timestamp | Ty::Duration | Ty::Dyn))
                {
                    return Err(no_overload(args));
                }
                int
            }
        };
        Ok(out)
    }

    pub fn precompile_regexes(&mut self, e: &IdedExpr) -> Result<(), CheckError> {
        walk(e, &mut |node| {
            if let Expr::Call(c) = &node.expr
                && c.func_name == "matches"
            {
                let pat = match (&c.target, c.args.as_slice()) {
                    (Some(_), [p]) | (None, [_, p]) => p,
                    _ => return Ok(()),
                };
                if let Expr::Literal(LiteralValue::String(s)) = &pat.expr {
                    match compile_regex(s.inner()) {
                        Ok(r) => {
                            self.regexes.insert(node.id, Arc::new(r));
                        }
                        Err(m) => return Err(err(pat.id, m)),
                    }
                }
            }
            Ok(())
        })
    }
}

/// Compiles a CEL (RE2) pattern with bounded program size.
pub fn compile_regex(pattern: &str) -> Result<Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .nest_limit(64)
        .build()
        .map_err(|e| {
            let first = e.to_string().lines().last().unwrap_or("").trim().to_string();
            format!("invalid matches argument: error parsing regexp: {first}")
        })
}

fn eq_cost(a: &Info, b: &Info) -> u64 {
    match (&a.ty, &b.ty) {
        (Ty::Str | Ty::Bytes, _) | (_, Ty::Str | Ty::Bytes) => scan(a.size.min(b.size)),
        (Ty::List(_) | Ty::Map(..), _) | (_, Ty::List(_) | Ty::Map(..)) => {
            a.size.min(b.size).max(1)
        }
        _ => 1,
    }
}

/// Visits every node (pre-order).
pub fn walk(
    e: &IdedExpr,
    f: &mut dyn FnMut(&IdedExpr) -> Result<(), CheckError>,
) -> Result<(), CheckError> {
    f(e)?;
    match &e.expr {
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                walk(t, f)?;
            }
            for a in &c.args {
                walk(a, f)?;
            }
        }
        Expr::Select(s) => walk(&s.operand, f)?,
        Expr::List(l) => {
            for el in &l.elements {
                walk(el, f)?;
            }
        }
        Expr::Map(m) => {
            for en in &m.entries {
                if let EntryExpr::MapEntry(me) = &en.expr {
                    walk(&me.key, f)?;
                    walk(&me.value, f)?;
                }
            }
        }
        Expr::Struct(s) => {
            for en in &s.entries {
                if let EntryExpr::StructField(sf) = &en.expr {
                    walk(&sf.value, f)?;
                }
            }
        }
        Expr::Comprehension(c) => {
            walk(&c.iter_range, f)?;
            walk(&c.accu_init, f)?;
            walk(&c.loop_cond, f)?;
            walk(&c.loop_step, f)?;
            walk(&c.result, f)?;
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
    Ok(())
}
