//! Patch documents: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic
//! merge patch (`kapi_codec::strategic`). Server-side apply is `update::apply`.

use crate::status::ApiError;
use serde_json::Value;

/// The patch types kapi knows by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    Strategic,
    /// Server-side apply (`application/apply-patch+yaml`): handled by `update::apply`.
    Apply,
}

pub fn patch_type(content_type: Option<&str>) -> Result<PatchType, ApiError> {
    let essence = content_type.unwrap_or("").split(';').next().unwrap_or("").trim();
    match essence {
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
        "application/apply-patch+yaml" => Ok(PatchType::Apply),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {other:?})"
        ))),
    }
}

/// Apply a patch document to `target`, an object of the OpenAPI type `definition`.
pub fn apply(
    kind: PatchType,
    target: &Value,
    patch: &[u8],
    definition: &str,
) -> Result<Value, ApiError> {
    let doc: Value = serde_json::from_slice(patch)
        .map_err(|e| ApiError::BadRequest(format!("error decoding patch: {e}")))?;
    match kind {
        PatchType::Merge if !doc.is_object() && !doc.is_array() => {
            Err(ApiError::BadRequest("Invalid JSON Patch".into()))
        }
        PatchType::Merge => {
            let mut out = target.clone();
            merge(&mut out, &doc);
            Ok(out)
        }
        PatchType::Json => json_patch(target, &doc),
        PatchType::Strategic => kapi_codec::strategic::apply(target, &doc, definition)
            .map_err(|e| ApiError::from_codec(e, &Default::default())),
        PatchType::Apply => Err(ApiError::UnsupportedMediaType(
            "apply patches are not JSON documents to merge".into(),
        )),
    }
}

/// RFC 7386: objects merge recursively, `null` deletes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

fn invalid(msg: String) -> ApiError {
    ApiError::Invalid(
        Default::default(),
        vec![kapi_codec::FieldError {
            kind: kapi_codec::FieldErrorType::Invalid,
            field: String::new(),
            message: msg,
        }],
    )
}

fn json_patch(target: &Value, doc: &Value) -> Result<Value, ApiError> {
    let ops = doc
        .as_array()
        .ok_or_else(|| ApiError::BadRequest("json patch must be an array of operations".into()))?;
    let mut out = target.clone();
    for op in ops {
        apply_op(&mut out, op)?;
    }
    Ok(out)
}

fn str_field<'a>(op: &'a Value, f: &str) -> Result<&'a str, ApiError> {
    op.get(f).and_then(Value::as_str).ok_or_else(|| {
        ApiError::BadRequest(format!("json patch operation is missing \"{f}\": {op}"))
    })
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), ApiError> {
    let name = str_field(op, "op")?;
    let path = str_field(op, "path")?;
    let value = || {
        op.get("value").cloned().ok_or_else(|| {
            ApiError::BadRequest(format!("json patch operation {name} needs a value"))
        })
    };
    match name {
        "add" => add(doc, path, value()?),
        "remove" => remove(doc, path).map(drop),
        "replace" => {
            remove(doc, path)?;
            add(doc, path, value()?)
        }
        "move" => {
            let from = str_field(op, "from")?;
            let v = remove(doc, from)?;
            add(doc, path, v)
        }
        "copy" => {
            let from = str_field(op, "from")?;
            let v = doc
                .pointer(from)
                .cloned()
                .ok_or_else(|| invalid(format!("copy from missing path {from}")))?;
            add(doc, path, v)
        }
        "test" => {
            let v = doc.pointer(path);
            if v != Some(&value()?) {
                return Err(invalid(format!("testing value {path} failed: test failed")));
            }
            Ok(())
        }
        other => Err(ApiError::BadRequest(format!("unexpected json patch operation: {other}"))),
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn split(path: &str) -> Result<(&str, String), ApiError> {
    let idx = path
        .rfind('/')
        .ok_or_else(|| ApiError::BadRequest(format!("invalid json pointer {path:?}")))?;
    Ok((&path[..idx], unescape(&path[idx + 1..])))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), ApiError> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split(path)?;
    let container = doc.pointer_mut(parent).ok_or_else(|| {
        invalid(format!("add operation does not apply: doc is missing path: \"{path}\""))
    })?;
    match container {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            let idx = if last == "-" {
                a.len()
            } else {
                last.parse::<usize>()
                    .map_err(|_| invalid(format!("invalid array index in {path}")))?
            };
            if idx > a.len() {
                return Err(invalid(format!(
                    "add operation does not apply: index out of range in {path}"
                )));
            }
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(invalid(format!("add operation does not apply: doc is missing path: \"{path}\""))),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, ApiError> {
    let missing =
        || invalid(format!("remove operation does not apply: doc is missing path: \"{path}\""));
    let (parent, last) = split(path)?;
    match doc.pointer_mut(parent).ok_or_else(missing)? {
        Value::Object(m) => m.remove(&last).ok_or_else(missing),
        Value::Array(a) => {
            let idx = last.parse::<usize>().map_err(|_| missing())?;
            if idx >= a.len() {
                return Err(missing());
            }
            Ok(a.remove(idx))
        }
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386_examples() {
        let t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        let out = apply(PatchType::Merge, &t, br#"{"a":"z","c":{"f":null}}"#, "x").unwrap();
        assert_eq!(out, json!({"a": "z", "c": {"d": "e"}}));
        let out = apply(PatchType::Merge, &json!({"a": [1]}), br#"{"a":[2,3]}"#, "x").unwrap();
        assert_eq!(out, json!({"a": [2, 3]}));
    }

    #[test]
    fn json_patch_operations() {
        let t = json!({"metadata": {"labels": {"a": "1"}}, "l": [1, 2]});
        let p = br#"[{"op":"add","path":"/metadata/labels/b","value":"2"},{"op":"remove","path":"/metadata/labels/a"},{"op":"add","path":"/l/-","value":3},{"op":"replace","path":"/l/0","value":9},{"op":"test","path":"/l/1","value":2}]"#;
        let out = apply(PatchType::Json, &t, p, "x").unwrap();
        assert_eq!(out, json!({"metadata": {"labels": {"b": "2"}}, "l": [9, 2, 3]}));
        let bad = br#"[{"op":"test","path":"/l/0","value":5}]"#;
        assert_eq!(apply(PatchType::Json, &t, bad, "x").unwrap_err().code(), 422);
        assert_eq!(apply(PatchType::Json, &t, b"{", "x").unwrap_err().code(), 400);
        let missing = br#"[{"op":"remove","path":"/nope/x"}]"#;
        assert_eq!(apply(PatchType::Json, &t, missing, "x").unwrap_err().code(), 422);
    }

    /// Regression (issue #14): a merge patch that is not an object replaced the whole
    /// object and was answered 409 Conflict; upstream refuses it as a bad patch.
    #[test]
    fn merge_patch_of_a_scalar_is_a_bad_request() {
        let t = json!({"metadata": {"name": "x", "resourceVersion": "5"}});
        for p in [&b"42"[..], b"null", b"\"s\""] {
            let e = apply(PatchType::Merge, &t, p, "x").unwrap_err();
            assert_eq!((e.code(), e.to_string()), (400, "Invalid JSON Patch".into()));
        }
    }

    #[test]
    fn content_types_select_the_patch_type() {
        let t = |ct: &str| patch_type(Some(ct));
        assert_eq!(t("application/strategic-merge-patch+json").unwrap(), PatchType::Strategic);
        assert_eq!(t("application/merge-patch+json; charset=utf-8").unwrap(), PatchType::Merge);
        assert_eq!(t("application/json-patch+json").unwrap(), PatchType::Json);
        assert_eq!(t("application/apply-patch+yaml").unwrap(), PatchType::Apply);
        assert_eq!(t("text/plain").unwrap_err().code(), 415);
    }
}
