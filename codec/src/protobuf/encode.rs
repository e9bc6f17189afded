//! JSON object tree -> protobuf bytes, the inverse of `decode`, byte for byte what
//! upstream's Go (gogo) marshallers write for the same object: fields in field-number
//! order, map entries sorted by key, repeated scalars unpacked (proto2), and every Go
//! non-pointer field (`go_facts.rs`) written even when the JSON leaves it out — its zero
//! value, an empty message for a zero `Time`, the zero struct's own non-pointer fields
//! for a struct. A `Time` is seconds and nanos 0, an IntOrString all three fields.
//! JSON values of the wrong type for a field are errors (the object was validated
//! against the schema before).

use super::table::{Go, Message, Special, Tables, Ty, tables};
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
    encode_root(name, value, out, None)
}

/// [`encode_message`] of an object as if its `metadata.resourceVersion` were absent (a
/// stored value: the revision is the store's), without copying the object.
pub fn encode_message_without_revision(
    name: &str,
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let t = tables();
    let meta = t.by_name("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
    encode_root(name, value, out, meta)
}

fn encode_root(
    name: &str,
    value: &Value,
    out: &mut Vec<u8>,
    omit_revision_of: Option<usize>,
) -> Result<(), CodecError> {
    let t = tables();
    let idx = t.by_name(name).ok_or_else(|| invalid(format!("no protobuf message {name}")))?;
    let omit_revision_of = omit_revision_of.map(|i| &t.messages[i] as *const Message);
    Encoder { t, omit_revision_of }.message(idx, value, out, 0)
}

struct Encoder {
    t: &'static Tables,
    /// The ObjectMeta message when the root object's `metadata.resourceVersion` is left
    /// out (only at depth 1: the root's own metadata).
    omit_revision_of: Option<*const Message>,
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
            let omitted = depth == 1
                && self.omit_revision_of.is_some_and(|o| std::ptr::eq(o, m))
                && f.json == "resourceVersion";
            let Some(v) = obj.get(&f.json).filter(|v| !v.is_null() && !omitted) else {
                if matches!(f.go, Go::Value { .. }) {
                    self.zero(f.ty, f.tag, out, depth)?;
                }
                continue;
            };
            if f.map {
                let Value::Object(map) = v else { return Err(invalid(&f.json)) };
                self.map(f.ty, f.tag, map, out, depth)?;
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

    /// Map entries in Go's order: sorted by key (bytewise, as `sort.Strings`).
    fn map(
        &self,
        ty: Ty,
        tag: u32,
        map: &Map<String, Value>,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), CodecError> {
        let entry = |o: &mut Vec<u8>, k: &String, item: &Value| {
            put_nested(o, tag, |e| {
                put_bytes(e, 1, k.as_bytes());
                self.single(ty, 2, item, e, depth)
            })
        };
        if map.keys().is_sorted() {
            return map.iter().try_for_each(|(k, item)| entry(out, k, item));
        }
        let mut entries: Vec<(&String, &Value)> = map.iter().collect();
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
        entries.into_iter().try_for_each(|(k, item)| entry(out, k, item))
    }

    /// The Go zero value of a non-pointer field (a nil `[]byte` is not written).
    fn zero(&self, ty: Ty, tag: u32, out: &mut Vec<u8>, depth: usize) -> Result<(), CodecError> {
        match ty {
            Ty::String => put_bytes(out, tag, b""),
            Ty::Bytes => {}
            Ty::Int32 | Ty::Int64 | Ty::Bool => {
                put_key(out, tag, wire::VARINT);
                put_varint(out, 0);
            }
            Ty::Double => {
                put_key(out, tag, wire::FIXED64);
                out.extend_from_slice(&[0; 8]);
            }
            Ty::Message(c) => put_nested(out, tag, |o| self.zero_message(c, o, depth + 1))?,
        }
        Ok(())
    }

    /// The fields of a zero struct: its own non-pointer fields' zeros.
    fn zero_message(&self, idx: usize, out: &mut Vec<u8>, depth: usize) -> Result<(), CodecError> {
        if depth > MAX_DEPTH {
            return Err(invalid("nesting too deep"));
        }
        let m = &self.t.messages[idx];
        let tag_of = |json: &str| m.fields.iter().find(|f| f.json == json).map(|f| f.tag);
        let put_zero = |out: &mut Vec<u8>, json: &str| {
            if let Some(tag) = tag_of(json) {
                put_key(out, tag, wire::VARINT);
                put_varint(out, 0);
            }
        };
        match m.special {
            None => self.fields(m, &Map::new(), out, depth)?,
            Some(Special::Duration) => put_zero(out, "duration"),
            Some(Special::IntOrString) => {
                put_zero(out, "type");
                put_zero(out, "intVal");
                put_bytes(out, tag_of("strVal").unwrap_or(3), b"");
            }
            Some(Special::Quantity) => put_bytes(out, 1, b"0"),
            // A zero Time is an empty message; the others hold nothing when zero.
            Some(_) => {}
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
                // Go's Time keeps whole seconds (nanos written as 0); MicroTime keeps both.
                put_int(out, "seconds", secs);
                let nanos = if s == Special::MicroTime { i64::from(nanos) } else { 0 };
                put_int(out, "nanos", nanos);
            }
            (Special::Duration, Value::String(d)) => {
                let n =
                    time::parse_go_duration(d).ok_or_else(|| invalid(format!("duration {d:?}")))?;
                put_int(out, "duration", n);
            }
            (Special::IntOrString, Value::Number(n)) => {
                put_int(out, "type", 0);
                put_int(out, "intVal", n.as_i64().unwrap_or(0));
                put_bytes(out, tag_of("strVal").unwrap_or(3), b"");
            }
            (Special::IntOrString, Value::String(sv)) => {
                put_int(out, "type", 1);
                put_int(out, "intVal", 0);
                put_bytes(out, tag_of("strVal").unwrap_or(3), sv.as_bytes());
            }
            (Special::Quantity, Value::String(q)) => put_bytes(out, 1, q.as_bytes()),
            (Special::Quantity, Value::Number(n)) => put_bytes(out, 1, n.to_string().as_bytes()),
            (Special::RawJson, v) => put_bytes(out, 1, &serde_json::to_vec(v).unwrap_or_default()),
            (Special::PropsOrBool, Value::Bool(b)) => put_int(out, "allows", i64::from(*b)),
            (Special::StringList, Value::Array(items)) => {
                for item in items {
                    let Value::String(v) = item else { return Err(invalid("string list item")) };
                    put_bytes(out, tag_of("items").unwrap_or(1), v.as_bytes());
                }
            }
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
                if s == Special::PropsOrBool {
                    // Go reads a schema here as `allows: true` with that schema.
                    put_int(out, "allows", 1);
                }
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
