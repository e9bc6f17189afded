//! Go's semantic equality on JSON trees: a field absent, `null` or holding its type's
//! zero value (`false`, `0`, `""`, `[]`, `{}`) is alike, as a decoded Go struct cannot
//! tell them apart (`apiequality.Semantic.DeepEqual` of upstream's typed objects).
//!
//! Invariant: array elements are compared in place (never dropped), only object
//! fields with a zero value are left out.

use serde_json::{Map, Value};

/// `v` with every object field that holds a zero value left out, recursively.
pub fn zeroless(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), zeroless(x)))
                .filter(|(_, x)| !is_zero(x))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(zeroless).collect()),
        other => other.clone(),
    }
}

/// Whether `v` is its type's zero value (or `null`).
pub fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

/// Whether `a` and `b` are equal as Go's semantic equality says.
pub fn equal(a: &Value, b: &Value) -> bool {
    zeroless(a) == zeroless(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_null_and_zero_fields_are_alike() {
        let a = json!({"spec": {"n": 0, "s": "", "b": false, "l": [], "m": {}, "x": null}, "k": 1});
        assert!(equal(&a, &json!({"k": 1})));
        assert!(!equal(&a, &json!({"k": 2})));
        assert!(!equal(&json!({"l": [0]}), &json!({"l": []})), "array elements are kept");
        assert_eq!(zeroless(&json!({"a": {"b": {"c": 0}}})), json!({}));
    }
}
