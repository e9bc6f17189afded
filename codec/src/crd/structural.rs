//! The structural schema of one CRD version, parsed from `schema.openAPIV3Schema`.
//!
//! A [`Structural`] node holds every keyword the validation, pruning and defaulting of
//! custom objects use. Parsing is lenient about keywords of the wrong JSON type (they
//! are dropped; `validate_crd` reports them on the CRD itself) and strict about depth:
//! a schema nested deeper than [`MAX_DEPTH`] is rejected, so every walk that follows
//! the schema recurses at most that deep. `enum` items are kept as arbitrary JSON
//! values (strings, numbers, objects alike). Nodes are immutable once parsed; share a
//! parsed schema by wrapping it in an `Arc` ([`Structural::parse_arc`]).

use serde_json::{Map, Value};
use std::sync::Arc;

/// The deepest nesting of schema nodes accepted (properties, items, allOf, ... each
/// count one level).
pub const MAX_DEPTH: usize = 64;

/// `additionalProperties`: a bool or a schema.
#[derive(Debug, Clone, PartialEq)]
pub enum AdditionalProperties {
    Bool(bool),
    Schema(Box<Structural>),
}

/// One schema node. Absent keywords are `None`, empty or `false`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Structural {
    /// `type`, empty when absent.
    pub type_: String,
    /// `properties` in the order the CRD lists them.
    pub properties: Vec<(String, Structural)>,
    pub items: Option<Box<Structural>>,
    pub additional_properties: Option<AdditionalProperties>,
    pub nullable: bool,
    pub default: Option<Value>,
    pub enum_: Option<Vec<Value>>,
    pub format: String,
    pub maximum: Option<f64>,
    pub exclusive_maximum: bool,
    pub minimum: Option<f64>,
    pub exclusive_minimum: bool,
    pub multiple_of: Option<f64>,
    pub max_length: Option<i64>,
    pub min_length: Option<i64>,
    pub pattern: Option<String>,
    pub max_items: Option<i64>,
    pub min_items: Option<i64>,
    pub unique_items: bool,
    pub max_properties: Option<i64>,
    pub min_properties: Option<i64>,
    pub required: Vec<String>,
    pub preserve_unknown_fields: bool,
    pub embedded_resource: bool,
    pub int_or_string: bool,
    pub list_type: Option<String>,
    pub list_map_keys: Vec<String>,
    pub map_type: Option<String>,
    /// `x-kubernetes-validations`, raw, for the CEL module.
    pub validations: Option<Value>,
    pub all_of: Vec<Structural>,
    pub any_of: Vec<Structural>,
    pub one_of: Vec<Structural>,
    pub not: Option<Box<Structural>>,
    pub description: String,
}

impl Structural {
    /// Parse a schema node; `Err` with a reason when it is not an object or nests
    /// deeper than [`MAX_DEPTH`].
    pub fn parse(v: &Value) -> Result<Structural, String> {
        parse_node(v, 0)
    }

    /// [`Structural::parse`] into a shareable `Arc`.
    pub fn parse_arc(v: &Value) -> Result<Arc<Structural>, String> {
        Self::parse(v).map(Arc::new)
    }

    /// The schema of property `name`.
    pub fn property(&self, name: &str) -> Option<&Structural> {
        self.properties.iter().find(|(k, _)| k == name).map(|(_, s)| s)
    }

    /// The schema of `additionalProperties` when it is a schema.
    pub fn additional_schema(&self) -> Option<&Structural> {
        match &self.additional_properties {
            Some(AdditionalProperties::Schema(s)) => Some(s),
            _ => None,
        }
    }

    /// The schema applying to key `k` of an object value: its property, else the
    /// `additionalProperties` schema.
    pub fn child(&self, k: &str) -> Option<&Structural> {
        self.property(k).or_else(|| self.additional_schema())
    }

    /// Whether any node of this schema satisfies `pred` (bounded by [`MAX_DEPTH`]).
    pub fn any_node(&self, pred: &dyn Fn(&Structural) -> bool) -> bool {
        pred(self)
            || self.items.as_deref().is_some_and(|s| s.any_node(pred))
            || self.properties.iter().any(|(_, s)| s.any_node(pred))
            || self.additional_schema().is_some_and(|s| s.any_node(pred))
            || self.all_of.iter().chain(&self.any_of).chain(&self.one_of).any(|s| s.any_node(pred))
            || self.not.as_deref().is_some_and(|s| s.any_node(pred))
    }
}

/// Nesting depth of a raw schema, capped at `MAX_DEPTH + 1` (never recurses deeper).
pub fn raw_depth(v: &Value) -> usize {
    fn go(v: &Value, d: usize) -> usize {
        if d > MAX_DEPTH {
            return d;
        }
        let Some(m) = v.as_object() else { return d };
        let mut best = d;
        for (k, c) in m {
            let next = match k.as_str() {
                "properties" | "patternProperties" | "definitions" | "dependencies" => {
                    c.as_object().map_or(d, |o| o.values().map(|x| go(x, d + 1)).max().unwrap_or(d))
                }
                "allOf" | "anyOf" | "oneOf" => {
                    c.as_array().map_or(d, |a| a.iter().map(|x| go(x, d + 1)).max().unwrap_or(d))
                }
                "items" if c.is_array() => {
                    c.as_array().map_or(d, |a| a.iter().map(|x| go(x, d + 1)).max().unwrap_or(d))
                }
                "items" | "additionalProperties" | "additionalItems" | "not" => go(c, d + 1),
                _ => d,
            };
            best = best.max(next);
            if best > MAX_DEPTH {
                break;
            }
        }
        best
    }
    go(v, 0)
}

fn parse_node(v: &Value, depth: usize) -> Result<Structural, String> {
    if depth > MAX_DEPTH {
        return Err(format!("schema nests deeper than {MAX_DEPTH} levels"));
    }
    let Some(m) = v.as_object() else {
        return Err("a schema must be an object".to_string());
    };
    let mut s = scalars(m);
    let sub = |x: &Value| parse_node(x, depth + 1);
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        for (k, p) in props {
            s.properties.push((k.clone(), sub(p)?));
        }
    }
    if let Some(items) = m.get("items").filter(|i| i.is_object()) {
        s.items = Some(Box::new(sub(items)?));
    }
    s.additional_properties = match m.get("additionalProperties") {
        Some(Value::Bool(b)) => Some(AdditionalProperties::Bool(*b)),
        Some(x @ Value::Object(_)) => Some(AdditionalProperties::Schema(Box::new(sub(x)?))),
        _ => None,
    };
    for (key, out) in [("allOf", &mut s.all_of), ("anyOf", &mut s.any_of), ("oneOf", &mut s.one_of)]
    {
        for x in m.get(key).and_then(Value::as_array).into_iter().flatten() {
            out.push(sub(x)?);
        }
    }
    if let Some(n) = m.get("not").filter(|n| n.is_object()) {
        s.not = Some(Box::new(sub(n)?));
    }
    Ok(s)
}

fn string(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k).and_then(Value::as_str).map(str::to_string)
}

fn flag(m: &Map<String, Value>, k: &str) -> bool {
    m.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn int(m: &Map<String, Value>, k: &str) -> Option<i64> {
    let v = m.get(k)?;
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
}

fn strings(m: &Map<String, Value>, k: &str) -> Vec<String> {
    let items = m.get(k).and_then(Value::as_array).into_iter().flatten();
    items.filter_map(Value::as_str).map(str::to_string).collect()
}

/// Every keyword that is not a sub-schema.
fn scalars(m: &Map<String, Value>) -> Structural {
    Structural {
        type_: string(m, "type").unwrap_or_default(),
        nullable: flag(m, "nullable"),
        default: m.get("default").cloned(),
        enum_: m.get("enum").and_then(Value::as_array).cloned(),
        format: string(m, "format").unwrap_or_default(),
        maximum: m.get("maximum").and_then(Value::as_f64),
        exclusive_maximum: flag(m, "exclusiveMaximum"),
        minimum: m.get("minimum").and_then(Value::as_f64),
        exclusive_minimum: flag(m, "exclusiveMinimum"),
        multiple_of: m.get("multipleOf").and_then(Value::as_f64),
        max_length: int(m, "maxLength"),
        min_length: int(m, "minLength"),
        pattern: string(m, "pattern"),
        max_items: int(m, "maxItems"),
        min_items: int(m, "minItems"),
        unique_items: flag(m, "uniqueItems"),
        max_properties: int(m, "maxProperties"),
        min_properties: int(m, "minProperties"),
        required: strings(m, "required"),
        preserve_unknown_fields: flag(m, "x-kubernetes-preserve-unknown-fields"),
        embedded_resource: flag(m, "x-kubernetes-embedded-resource"),
        int_or_string: flag(m, "x-kubernetes-int-or-string"),
        list_type: string(m, "x-kubernetes-list-type"),
        list_map_keys: strings(m, "x-kubernetes-list-map-keys"),
        map_type: string(m, "x-kubernetes-map-type"),
        validations: m.get("x-kubernetes-validations").cloned(),
        description: string(m, "description").unwrap_or_default(),
        ..Structural::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_keywords_in_order() {
        let s = Structural::parse(&json!({"type": "object", "required": ["b"], "properties": {
            "b": {"type": "string", "enum": ["red", "blue"], "maxLength": 5},
            "a": {"type": "array", "items": {"type": "integer", "format": "int32"},
                  "x-kubernetes-list-type": "set"},
            "m": {"type": "object", "additionalProperties": {"type": "string"}},
            "x": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}
        }}))
        .unwrap();
        let names: Vec<&str> = s.properties.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["b", "a", "m", "x"]);
        let b = s.property("b").unwrap();
        assert_eq!(b.enum_, Some(vec![json!("red"), json!("blue")]));
        assert_eq!(b.max_length, Some(5));
        assert_eq!(s.property("a").unwrap().items.as_ref().unwrap().format, "int32");
        assert_eq!(s.property("a").unwrap().list_type.as_deref(), Some("set"));
        assert_eq!(s.property("m").unwrap().additional_schema().unwrap().type_, "string");
        assert!(s.property("x").unwrap().int_or_string);
        assert_eq!(s.property("x").unwrap().any_of.len(), 2);
        assert_eq!(s.required, ["b"]);
    }

    #[test]
    fn rejects_deep_schemas_without_overflowing() {
        let mut v = json!({"type": "string"});
        for _ in 0..300 {
            v = json!({"type": "array", "items": v});
        }
        assert!(Structural::parse(&v).is_err());
        assert!(raw_depth(&v) > MAX_DEPTH);
        // serde_json's own drop is recursive; keep the test value's drop shallow enough.
        std::mem::forget(v);
    }

    #[test]
    fn additional_properties_bool_and_non_objects() {
        let s = Structural::parse(&json!({"additionalProperties": false, "type": 5})).unwrap();
        assert_eq!(s.additional_properties, Some(AdditionalProperties::Bool(false)));
        assert_eq!(s.type_, "");
        assert!(Structural::parse(&json!("x")).is_err());
    }
}
