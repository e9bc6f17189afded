//! Tolerant accessors over an object's JSON tree (missing or wrongly typed fields read as
//! Go's zero values) and the cell formats several printers share: ages, label sets,
//! label selectors, container lists, quantities, "a,b,c + N more..." lists.

use crate::rest::table::human_duration;
use crate::time;
use serde_json::{Map, Value};

/// `0001-01-01T00:00:00Z`, Go's zero `time.Time`, in Unix seconds.
pub const GO_ZERO_TIME: i64 = -62_135_596_800;

/// The value at `path` (object keys), if every step is an object holding the key.
pub fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.as_object()?.get(*key))
}

/// A string field, if it is a string.
pub fn opt_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path)?.as_str()
}

/// A string field, "" when missing.
pub fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    opt_str(v, path).unwrap_or("")
}

/// An integer field, if it is a number.
pub fn opt_int(v: &Value, path: &[&str]) -> Option<i64> {
    let n = at(v, path)?;
    n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))
}

/// An integer field, 0 when missing.
pub fn int_at(v: &Value, path: &[&str]) -> i64 {
    opt_int(v, path).unwrap_or(0)
}

/// A boolean field, if it is a boolean.
pub fn opt_bool(v: &Value, path: &[&str]) -> Option<bool> {
    at(v, path)?.as_bool()
}

/// An array field, empty when missing.
pub fn list_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// A map field, if it is an object.
pub fn map_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    at(v, path)?.as_object()
}

/// The number of entries of an array or map field.
pub fn len_at(v: &Value, path: &[&str]) -> i64 {
    match at(v, path) {
        Some(Value::Array(a)) => a.len() as i64,
        Some(Value::Object(m)) => m.len() as i64,
        _ => 0,
    }
}

/// `metadata.name`.
pub fn name(o: &Value) -> &str {
    str_at(o, &["metadata", "name"])
}

/// Whether `metadata.deletionTimestamp` is set.
pub fn deleting(o: &Value) -> bool {
    at(o, &["metadata", "deletionTimestamp"]).is_some_and(|t| !t.is_null())
}

/// An annotation's value.
pub fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    opt_str(o, &["metadata", "annotations", key])
}

/// A timestamp as (seconds, nanos); None when missing, unparsable or Go's zero time.
pub fn timestamp(ts: Option<&str>) -> Option<(i64, i32)> {
    kapi_codec::time::parse_rfc3339(ts?).filter(|(s, n)| (*s, *n) != (GO_ZERO_TIME, 0))
}

/// Upstream's `translateTimestampSince`: "<unknown>" for a zero time.
pub fn since(ts: Option<&str>) -> String {
    match timestamp(ts) {
        Some((secs, _)) => ago(secs),
        None => "<unknown>".into(),
    }
}

/// The human duration from `secs` (Unix seconds) until now.
pub fn ago(secs: i64) -> String {
    human_duration(time::now_unix() - secs)
}

/// The Age cell.
pub fn age(o: &Value) -> String {
    since(opt_str(o, &["metadata", "creationTimestamp"]))
}

/// `labels.FormatLabels`: `a=1,b=2` sorted by key, `<none>` when empty.
pub fn format_labels(m: Option<&Map<String, Value>>) -> String {
    let s = label_set(m);
    if s.is_empty() { "<none>".into() } else { s }
}

/// `labels.Set.String()`: `a=1,b=2` sorted by key.
fn label_set(m: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<(&str, &str)> =
        m.into_iter().flatten().map(|(k, v)| (k.as_str(), v.as_str().unwrap_or(""))).collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// `metav1.FormatLabelSelector`: the selector string, `<none>` when it selects everything
/// (or is absent), `<error>` when it is invalid.
pub fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".into(),
        Ok(s) => s,
        Err(()) => "<error>".into(),
    }
}

/// `LabelSelectorAsSelector(sel).String()`: requirements sorted by key, `k=v`,
/// `k in (a,b)`, `k notin (a,b)`, `k`, `!k`.
pub fn selector_string(sel: Option<&Value>) -> Result<String, ()> {
    let Some(sel) = sel.filter(|s| !s.is_null()) else { return Ok(String::new()) };
    let mut reqs: Vec<(String, String)> = Vec::new();
    for (k, v) in map_at(sel, &["matchLabels"]).into_iter().flatten() {
        let v = v.as_str().unwrap_or("");
        check_requirement(k, &[v])?;
        reqs.push((k.clone(), format!("{k}={v}")));
    }
    for expr in list_at(sel, &["matchExpressions"]) {
        reqs.push(expression(expr)?);
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs.into_iter().map(|(_, r)| r).collect::<Vec<_>>().join(","))
}

fn expression(expr: &Value) -> Result<(String, String), ()> {
    let key = str_at(expr, &["key"]);
    let mut values: Vec<&str> =
        list_at(expr, &["values"]).iter().filter_map(Value::as_str).collect();
    check_requirement(key, &values)?;
    values.sort_unstable();
    let text = match (str_at(expr, &["operator"]), values.is_empty()) {
        ("In", false) => format!("{key} in ({})", values.join(",")),
        ("NotIn", false) => format!("{key} notin ({})", values.join(",")),
        ("Exists", true) => key.to_string(),
        ("DoesNotExist", true) => format!("!{key}"),
        _ => return Err(()),
    };
    Ok((key.to_string(), text))
}

/// The label key and value syntax `labels.NewRequirement` enforces.
fn check_requirement(key: &str, values: &[&str]) -> Result<(), ()> {
    let (prefix, name) = key.rsplit_once('/').map_or(("", key), |(p, n)| (p, n));
    let prefix_ok = prefix.is_empty() && !key.contains('/') || valid_subdomain(prefix);
    let values_ok = values.iter().all(|v| v.is_empty() || valid_label_value(v));
    if prefix_ok && valid_label_value(name) && values_ok { Ok(()) } else { Err(()) }
}

fn valid_label_value(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn valid_subdomain(p: &str) -> bool {
    p.len() <= 253
        && p.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// `layoutContainerCells`: container names and images, comma separated.
pub fn containers(list: &[Value]) -> (String, String) {
    let names: Vec<&str> = list.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = list.iter().map(|c| str_at(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

/// A resource quantity as text ("0" when missing, like Go's zero Quantity).
pub fn quantity(q: Option<&Value>) -> String {
    match q {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".into(),
    }
}

/// An IntOrString as text.
pub fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "0".into(),
    }
}

/// `listWithMoreString`: the first `max` entries, "+ N more..." past them, `<unset>` when
/// there are none.
pub fn list_with_more(items: &[String], max: usize) -> String {
    let shown = items.iter().take(max).cloned().collect::<Vec<_>>().join(",");
    if items.len() > max {
        format!("{shown} + {} more...", items.len() - max)
    } else if shown.is_empty() {
        "<unset>".into()
    } else {
        shown
    }
}

/// `net.JoinHostPort`.
pub fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// `printBoolPtr`: "True", "False" or "<unset>".
pub fn bool_ptr(b: Option<bool>) -> String {
    match b {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => "<unset>".into(),
    }
}

/// The status of the first condition of `type` in a `conditions` list.
pub fn condition_status<'a>(conditions: &'a [Value], ty: &str) -> Option<&'a str> {
    conditions.iter().find(|c| str_at(c, &["type"]) == ty).map(|c| str_at(c, &["status"]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_like_upstream() {
        let sel = json!({"matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [{"key": "c", "operator": "In", "values": ["y", "x"]},
                                 {"key": "aa", "operator": "DoesNotExist"}]});
        assert_eq!(format_label_selector(Some(&sel)), "a=1,!aa,b=2,c in (x,y)");
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
        assert_eq!(format_label_selector(None), "<none>");
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "Near"}]});
        assert_eq!(format_label_selector(Some(&bad)), "<error>");
        let bad_key = json!({"matchLabels": {"-x": "1"}});
        assert_eq!(format_label_selector(Some(&bad_key)), "<error>");
        let prefixed = json!({"matchLabels": {"app.kubernetes.io/name": "web"}});
        assert_eq!(format_label_selector(Some(&prefixed)), "app.kubernetes.io/name=web");
    }

    #[test]
    fn labels_and_lists() {
        let m = json!({"z": "1", "a": "2"});
        assert_eq!(format_labels(m.as_object()), "a=2,z=1");
        assert_eq!(format_labels(None), "<none>");
        let items: Vec<String> = (1..=5).map(|i| i.to_string()).collect();
        assert_eq!(list_with_more(&items, 3), "1,2,3 + 2 more...");
        assert_eq!(list_with_more(&[], 3), "<unset>");
        assert_eq!(join_host_port("fd00::1", 80), "[fd00::1]:80");
    }

    #[test]
    fn ages() {
        assert_eq!(since(None), "<unknown>");
        assert_eq!(since(Some("0001-01-01T00:00:00Z")), "<unknown>");
        let t = kapi_codec::time::rfc3339(time::now_unix() - 90);
        assert_eq!(since(Some(&t)), "90s");
    }
}
