//! JSON object tree -> protobuf bytes, the inverse of `decode`. Fields are written in
//! field-number order, as Go's generated marshallers do; JSON values of the wrong type
//! for a field are errors (the object was validated against the schema before).

use super::table::{Message, Special, Tables, Ty, tables};
use super::wire::{self, put_bytes, put_key, put_nested, put_varint};
use crate::error::CodecError;
use crate::time;
use base64::Engine as _;
use serde_json::{Map, Value};

const MAX_DEPTH: usize = 100;

fn invalid(what: impl std::fmt::Display) -> CodecError {
    CodecError::Malformed(format!("cannot encode as protobuf: {what}"))
}

/// Encode `value` as the message with OpenAPI definition `name`, appending to `out`.
pub fn encode_message(name: &str, value: &Value, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let t = tables();
    let idx = t.by_name(name).ok_or_else(|| invalid(format!("no protobuf message {name}")))?;
    Encoder { t }.message(idx, value, out, 0)
}

struct Encoder {
    t: &'static Tables,
}

impl Encoder {
    fn message(
        &self,
        idx: usize,
        v: &Value,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), CodecError> {
        if depth > MAX_DEPTH {
            return Err(invalid("nesting too deep"));
        }
        let m = &self.t.messages[idx];
        if let Some(s) = m.special {
            return self.special(s, m, v, out, depth);
        }
        match v {
            Value::Object(obj) => self.fields(m, obj, out, depth),
            Value::Null => Ok(()),
            other => Err(invalid(format!("{} is not an object", crate::schema::type_name(other)))),
        }
    }

    fn fields(
        &self,
        m: &Message,
        obj: &Map<String, Value>,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), CodecError> {
        for f in &m.fields {
            if f.inline {
                let Ty::Message(c) = f.ty else { continue };
                let child = &self.t.messages[c];
                put_nested(out, f.tag, |o| self.fields(child, obj, o, depth + 1))?;
                continue;
            }
            let Some(v) = obj.get(&f.json).filter(|v| !v.is_null()) else { continue };
            if f.map {
                let Value::Object(map) = v else { return Err(invalid(&f.json)) };
                for (k, item) in map {
                    put_nested(out, f.tag, |o| {
                        put_bytes(o, 1, k.as_bytes());
                        self.single(f.ty, 2, item, o, depth)
                    })?;
                }
            } else if f.repeated {
                let Value::Array(items) = v else { return Err(invalid(&f.json)) };
                for item in items {
                    self.single(f.ty, f.tag, item, out, depth)?;
                }
            } else {
                self.single(f.ty, f.tag, v, out, depth)?;
            }
        }
        Ok(())
    }

    fn single(
        &self,
        ty: Ty,
        tag: u32,
        v: &Value,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), CodecError> {
        match (ty, v) {
            (Ty::String, Value::String(s)) => put_bytes(out, tag, s.as_bytes()),
            (Ty::Bytes, Value::String(s)) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| invalid(format!("bytes field: {e}")))?;
                put_bytes(out, tag, &raw);
            }
            (Ty::Int32 | Ty::Int64, Value::Number(n)) => {
                let i = n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).unwrap_or(0);
                put_key(out, tag, wire::VARINT);
                put_varint(out, i as u64);
            }
            (Ty::Bool, Value::Bool(b)) => {
                put_key(out, tag, wire::VARINT);
                put_varint(out, u64::from(*b));
            }
            (Ty::Double, Value::Number(n)) => {
                put_key(out, tag, wire::FIXED64);
                out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_bits().to_le_bytes());
            }
            (Ty::Message(c), v) => put_nested(out, tag, |o| self.message(c, v, o, depth + 1))?,
            (_, Value::Null) => {}
            (_, other) => {
                return Err(invalid(format!("unexpected {}", crate::schema::type_name(other))));
            }
        }
        Ok(())
    }

    fn special(
        &self,
        s: Special,
        m: &Message,
        v: &Value,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), CodecError> {
        let tag_of = |json: &str| m.fields.iter().find(|f| f.json == json).map(|f| f.tag);
        let put_int = |out: &mut Vec<u8>, json: &str, i: i64| {
            if let Some(tag) = tag_of(json) {
                put_key(out, tag, wire::VARINT);
                put_varint(out, i as u64);
            }
        };
        match (s, v) {
            (Special::Time | Special::MicroTime, Value::String(t)) => {
                let (secs, nanos) =
                    time::parse_rfc3339(t).ok_or_else(|| invalid(format!("time {t:?}")))?;
                put_int(out, "seconds", secs);
                if nanos != 0 && s == Special::MicroTime {
                    put_int(out, "nanos", i64::from(nanos));
                }
            }
            (Special::Duration, Value::String(d)) => {
                let n =
                    time::parse_go_duration(d).ok_or_else(|| invalid(format!("duration {d:?}")))?;
                put_int(out, "duration", n);
            }
            (Special::IntOrString, Value::Number(n)) => {
                put_int(out, "type", 0);
                put_int(out, "intVal", n.as_i64().unwrap_or(0));
            }
            (Special::IntOrString, Value::String(sv)) => {
                put_int(out, "type", 1);
                put_bytes(out, tag_of("strVal").unwrap_or(3), sv.as_bytes());
            }
            (Special::Quantity, Value::String(q)) => put_bytes(out, 1, q.as_bytes()),
            (Special::Quantity, Value::Number(n)) => put_bytes(out, 1, n.to_string().as_bytes()),
            (Special::RawJson, v) => put_bytes(out, 1, &serde_json::to_vec(v).unwrap_or_default()),
            (Special::PropsOrBool, Value::Bool(b)) => put_int(out, "allows", i64::from(*b)),
            (Special::PropsOrStringArray, Value::Array(items)) => {
                for item in items {
                    let Value::String(p) = item else { return Err(invalid("property")) };
                    put_bytes(out, tag_of("property").unwrap_or(2), p.as_bytes());
                }
            }
            (Special::PropsOrArray, Value::Array(items)) => {
                let f = m
                    .fields
                    .iter()
                    .find(|f| f.json == "jsonSchemas")
                    .ok_or_else(|| invalid("jsonSchemas"))?;
                for item in items {
                    self.single(f.ty, f.tag, item, out, depth)?;
                }
            }
            (Special::PropsOrArray | Special::PropsOrBool | Special::PropsOrStringArray, obj) => {
                let f = m
                    .fields
                    .iter()
                    .find(|f| f.json == "schema")
                    .ok_or_else(|| invalid("schema"))?;
                self.single(f.ty, f.tag, obj, out, depth)?;
            }
            (_, Value::Null) => {}
            (_, other) => {
                return Err(invalid(format!(
                    "unexpected {} in {}",
                    crate::schema::type_name(other),
                    m.name
                )));
            }
        }
        Ok(())
    }
}
