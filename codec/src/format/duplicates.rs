//! Keys a body repeats in one object, found while the body is parsed (not by a second
//! full parse), for `fieldValidation` Warn and Strict as upstream reports them:
//!
//! - JSON: each repeated field by its path, as upstream's strict JSON decoder words it
//!   (`duplicate field "metadata.name"`, `spec.containers[0].name`); the last value wins,
//!   as before;
//! - YAML: the repeated keys with the line of their value, as upstream's YAML library
//!   words its strict error (`yaml: unmarshal errors:\n  line 3: key "name" already set
//!   in map`). The tree is built in one pass that counts repeats; only a body that has
//!   some is parsed again, once per reported repeat, to learn its line.

use super::yaml::{self, Counted, Repeats};
use crate::error::CodecError;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};
use std::cell::{Cell, RefCell};
use std::fmt;

/// Upstream's strict decoders keep at most 100 distinct errors.
pub const MAX_REPORTED: usize = 100;

/// YAML repeats whose lines are looked up (each costs one more parse of the body); past
/// it the rest are left out of the message.
pub const MAX_YAML_LINES: usize = 16;

/// A key repeated in one object of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Duplicate {
    /// JSON: the field's path (`metadata.name`, `spec.containers[0].name`).
    Field(String),
    /// YAML: upstream's one strict error for all the repeats of a document.
    Yaml(String),
}

impl Duplicate {
    /// Upstream's text of the strict error (a warning or part of a 400's message).
    pub fn message(&self) -> String {
        match self {
            Duplicate::Field(path) => format!("duplicate field {path:?}"),
            Duplicate::Yaml(text) => text.clone(),
        }
    }
}

/// One step of a path, kept from the repeated key up to the root.
enum Step {
    Key(String),
    Index(usize),
}

/// Repeats found so far: each path is built in reverse as the parse returns through the
/// objects and arrays around it; `count` is compared around every value, so the common
/// body (no repeats) only pays that comparison.
#[derive(Default)]
struct Found {
    count: Cell<usize>,
    paths: RefCell<Vec<Vec<Step>>>,
}

impl Found {
    /// Put `step` in front of the paths found since there were `since`.
    fn prefix(&self, since: usize, step: impl Fn() -> Step) {
        self.paths.borrow_mut()[since..].iter_mut().for_each(|p| p.push(step()));
    }

    /// A repeated `key` in the object whose value ended at `since` paths: listed before
    /// those found inside its value, as upstream reports a repeat on reading the key.
    fn repeat(&self, since: usize, key: &str) {
        self.paths.borrow_mut().insert(since, vec![Step::Key(key.to_owned())]);
        self.count.set(self.count.get() + 1);
    }

    fn into_duplicates(self) -> Vec<Duplicate> {
        let mut out: Vec<Duplicate> = Vec::new();
        for steps in self.paths.into_inner() {
            let d = Duplicate::Field(render(&steps));
            if !out.contains(&d) {
                out.push(d);
            }
            if out.len() == MAX_REPORTED {
                break;
            }
        }
        out
    }
}

/// `a.b[0].c` from steps kept in reverse.
fn render(reversed: &[Step]) -> String {
    let mut out = String::new();
    for step in reversed.iter().rev() {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Parse one JSON document as [`super::parse_json`] does, noting repeated keys.
pub fn parse_json(body: &[u8]) -> Result<(Value, Vec<Duplicate>), serde_json::Error> {
    let found = Found::default();
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Noting { found: &found }.deserialize(&mut de)?;
    de.end()?;
    Ok((value, found.into_duplicates()))
}

/// Builds a `serde_json::Value` as serde_json's own visitor does, noting repeats.
#[derive(Clone, Copy)]
struct Noting<'f> {
    found: &'f Found,
}

impl<'de> DeserializeSeed<'de> for Noting<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Noting<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            let since = self.found.count.get();
            let Some(item) = seq.next_element_seed(self)? else { break };
            if self.found.count.get() != since {
                let i = items.len();
                self.found.prefix(since, || Step::Index(i));
            }
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let since = self.found.count.get();
            let value = map.next_value_seed(self)?;
            if self.found.count.get() != since {
                self.found.prefix(since, || Step::Key(key.clone()));
            }
            match out.entry(key) {
                Entry::Vacant(e) => {
                    e.insert(value);
                }
                Entry::Occupied(mut e) => {
                    self.found.repeat(since, e.key());
                    e.insert(value);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// Decode one YAML document as [`yaml::decode`] does, noting repeated keys.
pub fn decode_yaml(body: &[u8]) -> Result<(Value, Vec<Duplicate>), CodecError> {
    let repeats = Repeats::default();
    let value = yaml::decode_with(body, Some(&repeats))?;
    let reported = repeats.reported.into_inner();
    if reported.is_empty() {
        return Ok((value, Vec::new()));
    }
    let lines: Vec<String> =
        reported.iter().take(MAX_YAML_LINES).filter_map(|&n| yaml_repeat_line(body, n)).collect();
    let text = format!("yaml: unmarshal errors:\n  {}", lines.join("\n  "));
    Ok((value, vec![Duplicate::Yaml(text)]))
}

/// `line N: key "k" already set in map` for the repeat read `n`th (from 0) in `body`:
/// a parse that stops at that repeat's value, whose error carries the value's line.
fn yaml_repeat_line(body: &[u8], n: usize) -> Option<String> {
    let repeats = Repeats { stop_at: Some(n), ..Default::default() };
    let budget = Cell::new(yaml::node_budget(body));
    let de = serde_norway::Deserializer::from_slice(body);
    let err = Counted::new(&budget, Some(&repeats)).deserialize(de).err()?;
    let key = repeats.stopped_key.take()?;
    let line = err.location()?.line();
    Some(format!("line {line}: key {key:?} already set in map"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn json_dups(body: &str) -> Vec<String> {
        let (_, d) = parse_json(body.as_bytes()).unwrap();
        d.iter().map(Duplicate::message).collect()
    }

    #[test]
    fn json_repeats_are_named_by_path_as_upstream() {
        assert_eq!(
            json_dups(r#"{"metadata":{"name":"a","name":"b"}}"#),
            [r#"duplicate field "metadata.name""#]
        );
        assert_eq!(json_dups(r#"{"kind":"A","kind":"A"}"#), [r#"duplicate field "kind""#]);
        let containers =
            r#"{"spec":{"containers":[{"name":"a"},{"name":"b","image":"x","name":"c"}]}}"#;
        assert_eq!(json_dups(containers), [r#"duplicate field "spec.containers[1].name""#]);
        assert_eq!(json_dups(r#"[{"a":1,"a":2}]"#), [r#"duplicate field "[0].a""#]);
        // A repeated key is reported before repeats inside its value; the same path once.
        let nested = r#"{"s":{"x":1},"s":{"y":1,"y":2},"t":1,"t":2,"t":3}"#;
        assert_eq!(
            json_dups(nested),
            [r#"duplicate field "s""#, r#"duplicate field "s.y""#, r#"duplicate field "t""#]
        );
        assert!(json_dups(r#"{"a":{"b":[1,{"c":2}]},"d":"e"}"#).is_empty());
    }

    #[test]
    fn json_trees_are_serde_jsons_with_the_last_value_of_a_repeat() {
        for body in [
            r#"{"z":1,"a":{"y":[1,2.5,-3,"x",null,true],"b":{}},"m":[]}"#,
            r#"{"a":1,"b":2,"a":3}"#,
            r#"18446744073709551615"#,
        ] {
            let want: Value = serde_json::from_slice(body.as_bytes()).unwrap();
            let (got, _) = parse_json(body.as_bytes()).unwrap();
            assert_eq!(serde_json::to_string(&got).unwrap(), serde_json::to_string(&want).unwrap());
        }
        assert_eq!(parse_json(br#"{"a":1,"a":2}"#).unwrap().0, json!({"a": 2}));
        let e = parse_json(b"{\"a\":1}x").unwrap_err();
        assert_eq!(e.to_string(), "trailing characters at line 1 column 8");
    }

    #[test]
    fn json_repeats_are_capped_at_upstreams_hundred() {
        let keys: Vec<String> = (0..150).map(|i| format!("\"k{i}\":1,\"k{i}\":2")).collect();
        let body = format!("{{{}}}", keys.join(","));
        assert_eq!(json_dups(&body).len(), MAX_REPORTED);
    }

    fn yaml_dups(body: &str) -> (Value, Vec<String>) {
        let (v, d) = decode_yaml(body.as_bytes()).unwrap();
        (v, d.iter().map(Duplicate::message).collect())
    }

    #[test]
    fn yaml_repeats_carry_the_line_of_their_value_as_upstream() {
        let body = "kind: A\nmetadata:\n  name: a\n  labels: {x: 1}\n  name: b\n";
        let (v, d) = yaml_dups(body);
        assert_eq!(v["metadata"]["name"], "b", "the last value wins");
        assert_eq!(d, ["yaml: unmarshal errors:\n  line 5: key \"name\" already set in map"]);
        // Upstream's YAML library reports a repeat inside a repeated key's value first.
        let two = "a: 1\nb:\n  c: 1\nb:\n  c: 2\n  c: 3\na: [1]\n";
        assert_eq!(
            yaml_dups(two).1,
            [
                "yaml: unmarshal errors:\n  line 6: key \"c\" already set in map\n  line 5: key \"b\" already set in map\n  line 7: key \"a\" already set in map"
            ]
        );
        assert_eq!(
            yaml_dups("{\"a\": 1, \"a\": 2}").1,
            ["yaml: unmarshal errors:\n  line 1: key \"a\" already set in map"]
        );
        assert!(yaml_dups("a: 1\nb: {a: 1}\n").1.is_empty());
    }

    #[test]
    fn yaml_lines_are_looked_up_for_the_first_repeats_only() {
        let body: String = (0..20).map(|i| format!("a: {i}\n")).collect();
        let (v, d) = yaml_dups(&body);
        assert_eq!(v["a"], 19);
        assert_eq!(d[0].matches("already set in map").count(), MAX_YAML_LINES);
        assert!(d[0].ends_with("\n  line 17: key \"a\" already set in map"), "{}", d[0]);
    }
}
