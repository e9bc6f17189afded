//! YAML bodies to object trees, in bounded work: the nesting scan
//! ([`super::nesting::scan_yaml`]) runs first, so libyaml only sees bodies nested at
//! most [`MAX_TREE_DEPTH`] deep, and the tree is built by a visitor that counts every
//! node it makes, so aliases (`*a`, expanded each time they appear: "billion laughs")
//! cannot make a tree larger than [`node_budget`] of the body.

use super::nesting::{self, DepthError, MAX_TREE_DEPTH, UPSTREAM_MAX_DEPTH};
use crate::error::CodecError;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::cell::{Cell, RefCell};
use std::fmt;

/// Upstream's YAML library refuses documents whose alias expansions make up nearly all
/// of a large decoded tree (`document contains excessive aliasing`); kapi's equivalent
/// is a cap on the nodes a document may expand to.
pub const EXCESSIVE_ALIASING: &str = "yaml: document contains excessive aliasing";

/// Nodes a tree decoded from `body` may hold: the 400,000 upstream's YAML library lets
/// any document expand to, plus one per byte (a body without aliases never reaches it).
pub fn node_budget(body: &[u8]) -> usize {
    400_000 + body.len()
}

/// Decode one YAML document into a JSON tree.
pub fn decode(body: &[u8]) -> Result<Value, CodecError> {
    decode_with(body, None)
}

/// Decode one YAML document, noting repeated keys in `repeats` when given.
pub(super) fn decode_with(body: &[u8], repeats: Option<&Repeats>) -> Result<Value, CodecError> {
    nesting::scan_yaml(body).map_err(depth_error)?;
    let budget = Cell::new(node_budget(body));
    let de = serde_norway::Deserializer::from_slice(body);
    Counted::new(&budget, repeats).deserialize(de).map_err(|e| {
        let msg = e.to_string();
        if budget.get() == 0 || msg.starts_with("repetition limit exceeded") {
            CodecError::Malformed(EXCESSIVE_ALIASING.into())
        } else {
            CodecError::Malformed(format!("error converting YAML to JSON: {msg}"))
        }
    })
}

/// The message of a nesting limit, as upstream words its own two.
pub fn depth_error(e: DepthError) -> CodecError {
    CodecError::Malformed(match e {
        DepthError::Yaml { line } => {
            format!("yaml: line {line}: exceeded max depth of {UPSTREAM_MAX_DEPTH}")
        }
        DepthError::Json { opener } => super::json_depth_message(opener),
        DepthError::Tree { line, column } => format!(
            "error converting YAML to JSON: recursion limit exceeded at line {line} column {column} (at most {MAX_TREE_DEPTH} levels)"
        ),
    })
}

/// Keys repeated in one mapping (upstream's strict YAML error), numbered in the order
/// they are read (`read`), kept in the order upstream reports them (a repeat inside a
/// repeated key's value first: `reported`). A parse with `stop_at` fails at the value of
/// that repeat (its error carries the value's line) and keeps its key in `stopped_key`.
#[derive(Default)]
pub(super) struct Repeats {
    pub(super) read: Cell<usize>,
    pub(super) reported: RefCell<Vec<usize>>,
    pub(super) stop_at: Option<usize>,
    pub(super) stopped_key: RefCell<Option<String>>,
}

/// Builds a `serde_json::Value` as serde_json's own visitor does, taking one node of the
/// budget per value it makes (and noting repeated keys when asked).
#[derive(Clone, Copy)]
pub(super) struct Counted<'b> {
    budget: &'b Cell<usize>,
    repeats: Option<&'b Repeats>,
}

impl<'b> Counted<'b> {
    pub(super) fn new(budget: &'b Cell<usize>, repeats: Option<&'b Repeats>) -> Self {
        Counted { budget, repeats }
    }

    /// The value of `key` in a mapping that has `out` so far: a repeat is numbered, and
    /// the one to stop at fails at its value.
    fn value<'de, A: MapAccess<'de>>(
        self,
        map: &mut A,
        out: &Map<String, Value>,
        key: &str,
    ) -> Result<Value, A::Error> {
        let Some(r) = self.repeats.filter(|_| out.contains_key(key)) else {
            return map.next_value_seed(self);
        };
        let n = r.read.get();
        r.read.set(n + 1);
        if r.stop_at == Some(n) {
            *r.stopped_key.borrow_mut() = Some(key.to_owned());
            return map.next_value_seed(Stop);
        }
        let v = map.next_value_seed(self)?;
        r.reported.borrow_mut().push(n);
        Ok(v)
    }

    fn take<E: de::Error>(self) -> Result<(), E> {
        match self.budget.get().checked_sub(1) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => Err(E::custom(EXCESSIVE_ALIASING)),
        }
    }

    fn number<E: de::Error>(self, n: Option<Number>) -> Result<Value, E> {
        self.take()?;
        Ok(n.map_or(Value::Null, Value::Number))
    }
}

impl<'de> DeserializeSeed<'de> for Counted<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Counted<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.number(Some(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.number(Some(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        let n = i64::try_from(v).map(Number::from).map_err(|_| E::custom("number out of range"));
        self.number(Some(n?))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        let n = u64::try_from(v).map(Number::from).map_err(|_| E::custom("number out of range"));
        self.number(Some(n?))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.number(Number::from_f64(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.take()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.take()?;
        Ok(Value::String(v))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.take()?;
        Ok(Value::Null)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.visit_none()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.take()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.take()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            self.take()?;
            let value = self.value(&mut map, &out, &key)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// A value that fails as soon as it starts, so the error carries the value's mark.
struct Stop;

impl<'de> DeserializeSeed<'de> for Stop {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Stop {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("nothing: the parse stops at this repeated key's value")
    }
}

/// A mapping key as serde_json reads one: any scalar, as its text.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Key {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &str) -> String {
        decode(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn trees_equal_serde_norways_own() {
        for doc in [
            "a: 1\nb: [x, 2.5, true, null, ~]\nc: {d: -3}\n",
            "1: one\ntrue: yes\nnull: n\n'q': \"r\"\n",
            "x: &a {k: v}\ny: *a\nz: [*a, *a]\n",
            "big: 18446744073709551615\nneg: -9223372036854775808\nf: .inf\n",
            "s: |\n  line\n  two\n",
        ] {
            let ours = decode(doc.as_bytes()).unwrap();
            let theirs: Value = serde_norway::from_str(doc).unwrap();
            assert_eq!(ours, theirs, "{doc}");
        }
    }

    /// Regression (issue #14): a few hundred bytes of nested aliases expanded into a
    /// tree of ~10^9 nodes.
    #[test]
    fn billion_laughs_is_refused_within_the_node_budget() {
        let mut doc = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            doc.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        assert_eq!(msg(&doc), EXCESSIVE_ALIASING);
    }

    /// One large anchor referenced many times: few alias jumps (serde_norway's own
    /// repetition limit counts jumps, not nodes), a huge tree.
    #[test]
    fn wide_alias_fan_out_is_bounded_by_nodes_not_jumps() {
        let items = vec!["x"; 5_000].join(", ");
        let refs = vec!["*a"; 2_000].join(", ");
        let doc = format!("a: &a [{items}]\nb: [{refs}]\n");
        let budget = node_budget(doc.as_bytes());
        assert!(5_000 * 2_000 > budget, "the expansion would pass the budget");
        assert_eq!(msg(&doc), EXCESSIVE_ALIASING);
    }

    /// Regression (issue #14): a 40,000-level flow mapping took half a minute of CPU
    /// in libyaml before the recursion limit refused it; the scan refuses it first.
    #[test]
    fn deep_flow_is_refused_by_the_scan_with_upstreams_message() {
        let deep = format!("a: {}1{}\n", "{b: ".repeat(40_000), "}".repeat(40_000));
        assert_eq!(msg(&deep), "yaml: line 1: exceeded max depth of 10000");
        let seq = format!("a: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(
            msg(&seq),
            "couldn't get version/kind; json parse error: invalid character '[' exceeded max depth"
        );
        let tree = format!("a: {}{}\n", "[".repeat(500), "]".repeat(500));
        assert!(msg(&tree).contains("recursion limit exceeded at line 1 column 131"));
    }
}
