//! Protobuf bytes -> JSON object tree, driven by the message tables.
//!
//! Go's JSON view of a decoded object is reproduced where clients can tell: gogo writes
//! every non-pointer field even when zero, so the zero scalars of non-pointer fields
//! whose JSON tag is `omitempty` are dropped (`go_facts.rs`; for messages without facts,
//! empty strings), while pointer fields keep any value they hold. Structs stay, even
//! empty, as Go's encoding/json never omits a struct (`"resources": {}`). A zero `Time`
//! is absent, embedded structs are inlined, `bytes` are base64 and the JSON-carrying
//! messages are parsed. Nesting is bounded, so hostile input cannot exhaust the stack.

use super::table::{Field, Go, Message, Special, Tables, Ty, tables};
use super::wire::{self, Reader};
use crate::error::CodecError;
use crate::time;
use base64::Engine as _;
use serde_json::{Map, Value};

const MAX_DEPTH: usize = 100;

fn malformed(what: impl std::fmt::Display) -> CodecError {
    CodecError::Malformed(format!("the object provided is unrecognized: {what}"))
}

/// Decode the message with OpenAPI definition `name` from `bytes`.
pub fn decode_message(name: &str, bytes: &[u8]) -> Result<Value, CodecError> {
    let t = tables();
    let idx = t.by_name(name).ok_or_else(|| malformed(format!("no protobuf message {name}")))?;
    let v = Decoder { t }.message(idx, bytes, 0)?;
    Ok(v.unwrap_or_else(|| Value::Object(Map::new())))
}

struct Decoder {
    t: &'static Tables,
}

impl Decoder {
    /// `None` when the JSON form is absent (a zero Time, an empty RawExtension).
    fn message(&self, idx: usize, bytes: &[u8], depth: usize) -> Result<Option<Value>, CodecError> {
        if depth > MAX_DEPTH {
            return Err(malformed("nesting too deep"));
        }
        let m = &self.t.messages[idx];
        if let Some(s) = m.special {
            return self.special(s, m, bytes, depth);
        }
        let mut obj = Map::new();
        self.fields_into(m, bytes, depth, &mut obj)?;
        Ok(Some(Value::Object(obj)))
    }

    fn fields_into(
        &self,
        m: &Message,
        bytes: &[u8],
        depth: usize,
        obj: &mut Map<String, Value>,
    ) -> Result<(), CodecError> {
        let mut r = Reader::new(bytes);
        while !r.done() {
            let (tag, wt) = r.key()?;
            let Some(f) = m.field(tag) else {
                r.skip(wt)?;
                continue;
            };
            if f.map {
                let (k, v) = self.map_entry(f.ty, r.bytes()?, depth)?;
                let entry = obj.entry(f.json.clone()).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = entry {
                    map.insert(k, v);
                }
            } else if f.inline {
                let Ty::Message(c) = f.ty else { continue };
                self.fields_into(&self.t.messages[c], r.bytes()?, depth + 1, obj)?;
            } else if f.repeated {
                let entry = obj.entry(f.json.clone()).or_insert_with(|| Value::Array(Vec::new()));
                let Value::Array(items) = entry else { continue };
                self.repeated(f.ty, wt, &mut r, depth, items)?;
            } else {
                match self.single(f.ty, wt, &mut r, depth)? {
                    Some(v) if !omitted(f, &v) => {
                        obj.insert(f.json.clone(), v);
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn single(
        &self,
        ty: Ty,
        wt: u8,
        r: &mut Reader<'_>,
        depth: usize,
    ) -> Result<Option<Value>, CodecError> {
        Ok(Some(match (ty, wt) {
            (Ty::String, wire::LEN) => {
                Value::String(String::from_utf8_lossy(r.bytes()?).into_owned())
            }
            (Ty::Bytes, wire::LEN) => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(r.bytes()?))
            }
            (Ty::Int32, wire::VARINT) => Value::from(r.varint()? as i64 as i32),
            (Ty::Int64, wire::VARINT) => Value::from(r.varint()? as i64),
            (Ty::Bool, wire::VARINT) => Value::Bool(r.varint()? != 0),
            (Ty::Double, wire::FIXED64) => {
                let f = f64::from_bits(r.fixed64()?);
                serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)
            }
            (Ty::Message(c), wire::LEN) => return self.message(c, r.bytes()?, depth + 1),
            _ => return Err(malformed("wire type does not match the field")),
        }))
    }

    fn repeated(
        &self,
        ty: Ty,
        wt: u8,
        r: &mut Reader<'_>,
        depth: usize,
        items: &mut Vec<Value>,
    ) -> Result<(), CodecError> {
        let packable = matches!(ty, Ty::Int32 | Ty::Int64 | Ty::Bool | Ty::Double);
        if packable && wt == wire::LEN {
            let mut inner = Reader::new(r.bytes()?);
            let elem_wt = if ty == Ty::Double { wire::FIXED64 } else { wire::VARINT };
            while !inner.done() {
                items.extend(self.single(ty, elem_wt, &mut inner, depth)?);
            }
            return Ok(());
        }
        let v = self.single(ty, wt, r, depth)?;
        items.push(v.unwrap_or(Value::Null));
        Ok(())
    }

    fn map_entry(&self, ty: Ty, bytes: &[u8], depth: usize) -> Result<(String, Value), CodecError> {
        let mut r = Reader::new(bytes);
        let (mut key, mut value) = (String::new(), None);
        while !r.done() {
            match r.key()? {
                (1, wire::LEN) => key = String::from_utf8_lossy(r.bytes()?).into_owned(),
                (2, wt) => value = self.single(ty, wt, &mut r, depth)?,
                (_, wt) => r.skip(wt)?,
            }
        }
        let empty = || match ty {
            Ty::String | Ty::Bytes => Value::String(String::new()),
            Ty::Message(_) => Value::Object(Map::new()),
            _ => Value::Null,
        };
        Ok((key, value.unwrap_or_else(empty)))
    }

    fn special(
        &self,
        s: Special,
        m: &Message,
        bytes: &[u8],
        depth: usize,
    ) -> Result<Option<Value>, CodecError> {
        let mut fields = Map::new();
        self.fields_into(m, bytes, depth, &mut fields)?;
        let int = |k: &str| fields.get(k).and_then(Value::as_i64).unwrap_or(0);
        let take = |k: &str| fields.get(k).cloned();
        Ok(match s {
            Special::Time | Special::MicroTime => {
                let (secs, nanos) = (int("seconds"), int("nanos") as i32);
                if secs == 0 && nanos == 0 {
                    None
                } else if s == Special::Time {
                    Some(Value::String(time::rfc3339(secs)))
                } else {
                    Some(Value::String(time::rfc3339_micros(secs, nanos)))
                }
            }
            Special::Duration => Some(Value::String(time::go_duration(int("duration")))),
            Special::IntOrString => match int("type") {
                1 => Some(take("strVal").unwrap_or_else(|| Value::String(String::new()))),
                _ => Some(Value::from(int("intVal"))),
            },
            Special::Quantity => Some(take("string").unwrap_or_else(|| Value::String("0".into()))),
            Special::RawJson => raw_json(bytes)?,
            Special::PropsOrArray => take("schema").or_else(|| take("jsonSchemas")),
            Special::PropsOrBool => match take("schema") {
                Some(schema) => Some(schema),
                None => Some(Value::Bool(
                    fields.get("allows").and_then(Value::as_bool).unwrap_or(false),
                )),
            },
            Special::PropsOrStringArray => take("schema").or_else(|| take("property")),
            Special::StringList => Some(take("items").unwrap_or_else(|| Value::Array(Vec::new()))),
        })
    }
}

/// `bytes raw = 1` holding a JSON document; empty is absent.
fn raw_json(bytes: &[u8]) -> Result<Option<Value>, CodecError> {
    let mut r = Reader::new(bytes);
    let mut raw: &[u8] = &[];
    while !r.done() {
        match r.key()? {
            (1, wire::LEN) => raw = r.bytes()?,
            (_, wt) => r.skip(wt)?,
        }
    }
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.starts_with(super::MAGIC) {
        // An embedded protobuf object (a WatchEvent's object): its JSON form.
        return super::decode_object(raw).map(Some);
    }
    serde_json::from_slice(raw).map(Some).map_err(|e| malformed(format!("embedded JSON: {e}")))
}

/// Whether upstream's JSON leaves out the decoded value `v` of singular field `f`.
pub(super) fn omitted(f: &Field, v: &Value) -> bool {
    match f.go {
        Go::Pointer | Go::Value { omitempty: false } => false,
        Go::Value { omitempty: true } => !matches!(f.ty, Ty::Message(_)) && is_zero(v),
        Go::Unknown => v.as_str().is_some_and(str::is_empty) && !keeps_empty(&f.json),
    }
}

/// A Go zero scalar as JSON: "", 0 or false.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        _ => false,
    }
}

/// Pointer-to-string fields where `""` means something (`storageClassName: ""` turns off
/// dynamic provisioning); every other empty singular string is Go's omitted zero value.
fn keeps_empty(json: &str) -> bool {
    json == "storageClassName"
}
