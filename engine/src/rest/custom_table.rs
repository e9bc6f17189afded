//! Tables of custom resources from their CRD's `additionalPrinterColumns`: the Name
//! column, then each column's value at its JSONPath (`date` columns as a human age, as
//! upstream's CRD table convertor prints them). JSONPaths are the simple form CRDs use:
//! fields, `[n]` indexes and `[?(@.f=="v")]` filters; anything else prints nothing.

use super::table::{human_duration, row_object};
use kapi_codec::custom::PrinterColumn;
use serde_json::{Map, Value, json};

const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

pub fn render_rows(cols: &[PrinterColumn], include: &str, items: &[Value], headers: bool) -> Value {
    let rows: Vec<Value> = items.iter().map(|o| row(cols, o, include)).collect();
    let defs = if headers { definitions(cols) } else { json!([]) };
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": defs, "rows": rows})
}

fn definitions(cols: &[PrinterColumn]) -> Value {
    let mut out = vec![json!({"name": "Name", "type": "string", "format": "name",
                              "description": NAME_DOC, "priority": 0})];
    out.extend(cols.iter().map(|c| {
        json!({"name": c.name, "type": c.type_, "format": c.format,
               "description": c.description, "priority": c.priority})
    }));
    Value::Array(out)
}

fn row(cols: &[PrinterColumn], obj: &Value, include: &str) -> Value {
    let name = obj.pointer("/metadata/name").cloned().unwrap_or(Value::Null);
    let mut cells = vec![name];
    cells.extend(cols.iter().map(|c| cell(c, obj)));
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(cells));
    row.insert("object".into(), row_object(obj, include));
    Value::Object(row)
}

fn cell(c: &PrinterColumn, obj: &Value) -> Value {
    let Some(v) = lookup(obj, &c.json_path) else { return Value::Null };
    match (c.type_.as_str(), v) {
        ("date", Value::String(s)) => match kapi_codec::time::parse_rfc3339(s) {
            Some((t, _)) => json!(human_duration(crate::time::now_unix() - t)),
            None => json!(s),
        },
        ("string", Value::String(_)) | ("integer" | "number", Value::Number(_)) => v.clone(),
        ("boolean", Value::Bool(_)) => v.clone(),
        ("string", other) => json!(other.to_string()),
        _ => v.clone(),
    }
}

/// The value at a simple JSONPath (`.spec.x`, `.items[0]`, `.conditions[?(@.type=="Ready")].status`).
pub fn lookup<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut cur = obj;
    let mut rest = path.strip_prefix('.').unwrap_or(path);
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            cur = index(cur, &after[..end])?;
            rest = after[end + 1..].strip_prefix('.').unwrap_or(&after[end + 1..]);
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        cur = cur.get(&rest[..end])?;
        rest = rest[end..].strip_prefix('.').unwrap_or(&rest[end..]);
    }
    Some(cur)
}

fn index<'a>(cur: &'a Value, inner: &str) -> Option<&'a Value> {
    let list = cur.as_array()?;
    if let Ok(i) = inner.parse::<usize>() {
        return list.get(i);
    }
    let cond = inner.strip_prefix("?(@.")?.strip_suffix(')')?;
    let (field, want) = cond.split_once("==")?;
    let want = want.trim().trim_matches(['"', '\'']);
    list.iter().find(|item| {
        item.get(field.trim()).is_some_and(|v| v.as_str().map_or(*v == *want, |s| s == want))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_jsonpaths_as_crds_use_them() {
        let o = json!({"spec": {"replicas": 3, "ports": [{"port": 80}]},
                       "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(lookup(&o, ".spec.replicas"), Some(&json!(3)));
        assert_eq!(lookup(&o, ".spec.ports[0].port"), Some(&json!(80)));
        assert_eq!(
            lookup(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(&json!("True"))
        );
        assert_eq!(lookup(&o, ".spec.missing"), None);
    }
}
