//! Table rendering (`application/json;as=Table;v=v1;g=meta.k8s.io`), the format kubectl
//! asks for on `get`. This is upstream's default convertor (Name, Age); per-type printer
//! columns come with the wire-formats issue.

use super::Scope;
use crate::status::ApiError;
use crate::time;
use kapi_codec::meta;
use serde_json::{Value, json};

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

fn parse_rfc3339(ts: &str) -> Option<i64> {
    let b = ts.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let n = |r: std::ops::Range<usize>| ts.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, s) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    let (y2, m2) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

fn age(obj: &Value) -> String {
    match meta::meta_str(obj, "creationTimestamp").and_then(parse_rfc3339) {
        Some(t) => human_duration(time::now_unix() - t),
        None => "<unknown>".into(),
    }
}

/// The row object per `includeObject` (None, Metadata (default), Object).
fn row_object(obj: &Value, include: &str) -> Value {
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

fn columns() -> Value {
    json!([
        {"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names", "priority": 0},
        {"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata", "priority": 0},
    ])
}

/// A Table of `items`; `with_headers` false omits column definitions (later watch events).
pub fn render_rows(include: &str, items: &[Value], with_headers: bool) -> Value {
    let rows: Vec<Value> = items
        .iter()
        .map(|o| json!({"cells": [meta::name(o).unwrap_or(""), age(o)], "object": row_object(o, include)}))
        .collect();
    let cols = if with_headers { columns() } else { json!([]) };
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
    let mut t = render_rows(include, items, true);
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

    #[test]
    fn parses_timestamps() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
    }
}
