//! Table rendering (`application/json;as=Table;v=v1;g=meta.k8s.io`), the format kubectl
//! asks for on `get`: the column definitions and one row (cells, conditions, object per
//! `includeObject`) per object, with upstream's per-type columns from `printers`.

use super::Scope;
use super::printers::{self, Printer};
use crate::status::ApiError;
use kapi_codec::ResourceType;
use serde_json::{Map, Value, json};

/// Seconds as upstream's `duration.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let (m, h) = (s / 60, s / 3600);
    match () {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 => {
            if s % 60 == 0 {
                format!("{m}m")
            } else {
                format!("{m}m{}s", s % 60)
            }
        }
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 => {
            if m % 60 == 0 {
                format!("{h}h")
            } else {
                format!("{h}h{}m", m % 60)
            }
        }
        _ if h < 48 => format!("{h}h"),
        _ if h < 24 * 8 => {
            if h % 24 == 0 {
                format!("{}d", h / 24)
            } else {
                format!("{}d{}h", h / 24, h % 24)
            }
        }
        _ if h < 24 * 365 * 2 => format!("{}d", h / 24),
        _ if h < 24 * 365 * 8 => {
            let (y, d) = (h / 24 / 365, (h / 24) % 365);
            if d == 0 { format!("{y}y") } else { format!("{y}y{d}d") }
        }
        _ => format!("{}y", h / 24 / 365),
    }
}

/// The row object per `includeObject` (None, Metadata (default), Object).
pub(super) fn row_object(obj: &Value, include: &str) -> Value {
    match include {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => {
            json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
            })
        }
    }
}

/// The printer of a resource type: upstream's per-type columns for built-in types, Name
/// and Age otherwise (custom resources).
fn printer_for(rt: &ResourceType) -> &'static Printer {
    printers::lookup(&rt.group, &rt.plural).unwrap_or(&printers::NAME_AGE)
}

fn row(printer: &Printer, obj: &Value, include: &str) -> Value {
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array((printer.cells)(obj)));
    if let Some(conditions) = (printer.conditions)(obj) {
        row.insert("conditions".into(), conditions);
    }
    row.insert("object".into(), row_object(obj, include));
    Value::Object(row)
}

/// A Table of `items` of type `rt`; `with_headers` false omits column definitions (later
/// watch events).
pub fn render_rows(rt: &ResourceType, include: &str, items: &[Value], with_headers: bool) -> Value {
    if let Some(c) = rt.custom.as_ref().filter(|c| !c.printer_columns.is_empty()) {
        return super::custom_table::render_rows(&c.printer_columns, include, items, with_headers);
    }
    let printer = printer_for(rt);
    let mut ordered: Vec<&Value> = items.iter().collect();
    if let Some(order) = printer.order {
        ordered.sort_by(|a, b| order(a, b));
    }
    let rows: Vec<Value> = ordered.into_iter().map(|o| row(printer, o, include)).collect();
    let cols = if with_headers { printer.column_definitions() } else { json!([]) };
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": cols, "rows": rows})
}

/// A Table response for a get or list.
pub fn render(
    scope: &Scope<'_>,
    items: &[Value],
    rv: &str,
    cont: Option<&str>,
) -> Result<Value, ApiError> {
    let include = scope.info.param("includeObject").unwrap_or("Metadata");
    let mut t = render_rows(&scope.rt, include, items, true);
    t["metadata"]["resourceVersion"] = json!(rv);
    if let Some(c) = cont {
        t["metadata"]["continue"] = json!(c);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_upstream() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 120), "3h2m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(40 * 86400), "40d");
    }
}
