//! Small helpers for strategies: setting defaults into JSON trees.

use serde_json::{Map, Value};

/// The object at `path` (created as `{}` along the way unless a non-object is there).
pub fn obj_at<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Map<String, Value>> {
    let mut cur = v;
    for p in path {
        let m = cur.as_object_mut()?;
        cur = m.entry((*p).to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
    cur.as_object_mut()
}

/// Insert `value` under `key` when absent (or null).
pub fn default(m: &mut Map<String, Value>, key: &str, value: Value) {
    match m.get(key) {
        None | Some(Value::Null) => {
            m.insert(key.to_string(), value);
        }
        _ => {}
    }
}

/// Each object element of the array at `key`.
pub fn each<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// A string at a JSON pointer, "" when missing.
pub fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Render a field value as upstream's field sets do.
pub fn field_string(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(other) => other.to_string(),
    }
}
