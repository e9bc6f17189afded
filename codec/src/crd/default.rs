//! Structural defaulting of a custom object, as upstream's defaulting algorithm.
//!
//! For every object node, each property whose schema has a `default` is set (a deep
//! copy) when absent, or when it is `null` and the property is not nullable. For every
//! element of an array and every value of an `additionalProperties` map that is `null`
//! while its schema is not nullable, the element's default (or `null`) is set. Then the
//! walk descends into every value that has a schema. The walk follows the schema,
//! whose depth parsing bounds.

use super::structural::Structural;
use serde_json::Value;

/// Apply the schema's defaults to `obj` in place.
pub fn apply_defaults(schema: &Structural, obj: &mut Value) {
    default(obj, schema);
}

fn non_nullable_null(x: &Value, s: &Structural) -> bool {
    x.is_null() && !s.nullable
}

fn default(x: &mut Value, s: &Structural) {
    match x {
        Value::Object(m) => {
            for (k, prop) in &s.properties {
                let Some(d) = &prop.default else { continue };
                if m.get(k).is_none_or(|v| non_nullable_null(v, prop)) {
                    m.insert(k.clone(), d.clone());
                }
            }
            for (k, v) in m.iter_mut() {
                if let Some(prop) = s.property(k) {
                    default(v, prop);
                } else if let Some(a) = s.additional_schema() {
                    if non_nullable_null(v, a) {
                        *v = a.default.clone().unwrap_or(Value::Null);
                    }
                    default(v, a);
                }
            }
        }
        Value::Array(items) => {
            let Some(is) = s.items.as_deref() else { return };
            for v in items.iter_mut() {
                if non_nullable_null(v, is) {
                    *v = is.default.clone().unwrap_or(Value::Null);
                }
                default(v, is);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Structural {
        Structural::parse(&json!({"type": "object", "properties": {"spec": {"type": "object",
            "default": {},
            "properties": {
                "replicas": {"type": "integer", "default": 1},
                "opt": {"type": "string", "nullable": true, "default": "d"},
                "obj": {"type": "object", "default": {"a": [1]}, "properties": {"a": {"type": "array", "items": {"type": "integer"}}}},
                "list": {"type": "array", "items": {"type": "object", "default": {"z": 0},
                         "properties": {"z": {"type": "integer"}, "w": {"type": "string", "default": "w"}}}},
                "map": {"type": "object", "additionalProperties": {"type": "string", "default": "m"}}
            }}}}))
        .unwrap()
    }

    #[test]
    fn absent_and_null_properties_get_defaults() {
        let mut obj = json!({});
        apply_defaults(&schema(), &mut obj);
        assert_eq!(obj["spec"]["replicas"], json!(1));
        assert_eq!(obj["spec"]["opt"], json!("d"));
        assert_eq!(obj["spec"]["obj"], json!({"a": [1]}));

        let mut obj = json!({"spec": {"replicas": null, "opt": null}});
        apply_defaults(&schema(), &mut obj);
        assert_eq!(obj["spec"]["replicas"], json!(1));
        assert_eq!(obj["spec"]["opt"], Value::Null, "nullable null stays");
    }

    #[test]
    fn items_and_additional_properties() {
        let mut obj = json!({"spec": {"list": [null, {"z": 5}], "map": {"a": null, "b": "x"}}});
        apply_defaults(&schema(), &mut obj);
        assert_eq!(obj["spec"]["list"], json!([{"z": 0, "w": "w"}, {"z": 5, "w": "w"}]));
        assert_eq!(obj["spec"]["map"], json!({"a": "m", "b": "x"}));
    }

    #[test]
    fn defaults_are_deep_copies() {
        let s = schema();
        let mut a = json!({"spec": {}});
        apply_defaults(&s, &mut a);
        a["spec"]["obj"]["a"][0] = json!(9);
        let mut b = json!({"spec": {}});
        apply_defaults(&s, &mut b);
        assert_eq!(b["spec"]["obj"]["a"], json!([1]));
    }
}
