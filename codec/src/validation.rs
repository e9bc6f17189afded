//! Reusable validators with upstream's messages: DNS-1123 names, qualified names (label
//! and annotation keys), label values, annotation size, and `metadata` on create and
//! update.

use crate::error::FieldError;
use crate::meta;
use crate::strategy::NameRule;
use serde_json::{Value, json};

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
/// Upstream's limit on the total size of annotations.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

fn is_alnum_lower(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_alnum_lower(b[0])
        && is_alnum_lower(b[b.len() - 1])
        && b.iter().all(|&c| is_alnum_lower(c) || c == b'-')
}

/// Errors of a DNS-1123 label (max 63).
pub fn dns1123_label_errors(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    if !is_label(s) {
        out.push(format!("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{DNS1123_LABEL_FMT}')"));
    }
    out
}

/// Errors of a DNS-1123 subdomain (max 253).
pub fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 253 {
        out.push("must be no more than 253 characters".to_string());
    }
    if s.is_empty() || !s.split('.').all(is_label) {
        out.push(format!("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '{DNS1123_SUBDOMAIN_FMT}')"));
    }
    out
}

const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";

/// Errors of a ConfigMap or Secret key (upstream's `IsConfigMapKey`): at most 253
/// characters of `[-._a-zA-Z0-9]`, not `.` or `..` and not starting with `..`.
pub fn config_map_key_errors(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    if key.len() > 253 {
        out.push("must be no more than 253 characters".to_string());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if key.is_empty() || !key.chars().all(allowed) {
        out.push(format!("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '{CONFIG_MAP_KEY_FMT}')"));
    }
    match key {
        "." => out.push("must not be '.'".to_string()),
        ".." => out.push("must not be '..'".to_string()),
        k if k.starts_with("..") => out.push("must not start with '..'".to_string()),
        _ => {}
    }
    out
}

/// Errors of a name that must be a valid path segment.
pub fn path_segment_errors(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s == "." || s == ".." {
        out.push(format!("may not be '{s}'"));
    }
    for bad in ["/", "%"] {
        if s.contains(bad) {
            out.push(format!("may not contain '{bad}'"));
        }
    }
    out
}

fn qualified_part_ok(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Errors of a qualified name (`prefix/name`), used by label and annotation keys, as
/// upstream's `IsQualifiedName`: more than one `/` is one error; an empty name part
/// breaks both the emptiness and the pattern rule.
pub fn qualified_name_errors(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let pattern = format!(
        "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '{QUALIFIED_NAME_FMT}')"
    );
    let (prefix, name) = match s.split_once('/') {
        Some((_, n)) if n.contains('/') => {
            out.push(format!("a qualified name {pattern} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"));
            return out;
        }
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            out.push("prefix part must be non-empty".to_string());
        } else {
            out.extend(dns1123_subdomain_errors(p).into_iter().map(|e| format!("prefix part {e}")));
        }
    }
    if name.is_empty() {
        out.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        out.push("name part must be no more than 63 characters".to_string());
    }
    if name.is_empty() || !qualified_part_ok(name) {
        out.push(format!("name part {pattern}"));
    }
    out
}

/// Errors of a label value.
pub fn label_value_errors(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    if v.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    if !v.is_empty() && !qualified_part_ok(v) {
        out.push(format!("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '{LABEL_VALUE_FMT}')"));
    }
    out
}

fn name_errors(rule: NameRule, name: &str, obj: &Value) -> Vec<String> {
    match rule {
        NameRule::Subdomain => dns1123_subdomain_errors(name),
        NameRule::Label => dns1123_label_errors(name),
        NameRule::PathSegment => path_segment_errors(name),
        NameRule::ClusterTrustBundle => {
            let signer = obj.pointer("/spec/signerName").and_then(Value::as_str).unwrap_or("");
            crate::strategy::certificates::name_errors(name, signer)
        }
    }
}

fn validate_labels(obj: &Value, out: &mut Vec<FieldError>) {
    let Some(labels) = meta::metadata(obj).and_then(|m| m.get("labels")) else { return };
    let Some(map) = labels.as_object() else {
        out.push(FieldError::invalid("metadata.labels", labels, "must be a map of strings"));
        return;
    };
    for (k, v) in map {
        for e in qualified_name_errors(k) {
            out.push(FieldError::invalid("metadata.labels", &json!(k), &e));
        }
        match v.as_str() {
            Some(s) => {
                for e in label_value_errors(s) {
                    out.push(FieldError::invalid("metadata.labels".to_string(), v, &e));
                }
            }
            None => out.push(FieldError::invalid("metadata.labels", v, "must be a string")),
        }
    }
}

fn validate_annotations(obj: &Value, out: &mut Vec<FieldError>) {
    let Some(ann) = meta::metadata(obj).and_then(|m| m.get("annotations")) else { return };
    let Some(map) = ann.as_object() else {
        out.push(FieldError::invalid("metadata.annotations", ann, "must be a map of strings"));
        return;
    };
    let mut total = 0;
    for (k, v) in map {
        for e in qualified_name_errors(&k.to_lowercase()) {
            out.push(FieldError::invalid("metadata.annotations", &json!(k), &e));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        out.push(FieldError::too_long("metadata.annotations", TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

/// The errors of `obj`'s `metadata.labels` (upstream's `ValidateLabels`).
pub fn label_errors(obj: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    validate_labels(obj, &mut out);
    out
}

/// The errors of `obj`'s `metadata.annotations` (upstream's `ValidateAnnotations`).
pub fn annotation_errors(obj: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    validate_annotations(obj, &mut out);
    out
}

fn validate_finalizers(obj: &Value, out: &mut Vec<FieldError>) {
    let Some(fins) =
        meta::metadata(obj).and_then(|m| m.get("finalizers")).and_then(Value::as_array)
    else {
        return;
    };
    for (i, f) in fins.iter().enumerate() {
        let s = f.as_str().unwrap_or("");
        for e in qualified_name_errors(s) {
            out.push(FieldError::invalid(format!("metadata.finalizers[{i}]"), f, &e));
        }
    }
}

/// managedFields entries a client set (upstream's ValidateManagedFields): the operation
/// is Apply or Update, the fields type FieldsV1, the manager at most 128 printable
/// characters.
fn validate_managed_fields(obj: &Value, out: &mut Vec<FieldError>) {
    let entries =
        meta::metadata(obj).and_then(|m| m.get("managedFields")).and_then(Value::as_array);
    for (i, e) in entries.into_iter().flatten().enumerate() {
        let path = |f: &str| format!("metadata.managedFields[{i}].{f}");
        let op = e.get("operation").and_then(Value::as_str).unwrap_or("");
        if op != "Apply" && op != "Update" {
            out.push(FieldError::invalid(
                path("operation"),
                &json!(op),
                "must be `Apply` or `Update`",
            ));
        }
        let ty = e.get("fieldsType").and_then(Value::as_str).unwrap_or("");
        if !ty.is_empty() && ty != "FieldsV1" {
            out.push(FieldError::invalid(path("fieldsType"), &json!(ty), "must be `FieldsV1`"));
        }
        let manager = e.get("manager").and_then(Value::as_str).unwrap_or("");
        if manager.len() > 128 {
            out.push(FieldError::too_long(path("manager"), 128));
        }
        if let Some((at, c)) = manager.char_indices().find(|(_, c)| c.is_control()) {
            let detail = format!("invalid character U+{:04X} (at position {at})", c as u32);
            out.push(FieldError::invalid(path("manager"), &json!(manager), &detail));
        }
    }
}

fn validate_owner_references(obj: &Value, out: &mut Vec<FieldError>) {
    let Some(refs) =
        meta::metadata(obj).and_then(|m| m.get("ownerReferences")).and_then(Value::as_array)
    else {
        return;
    };
    for (i, r) in refs.iter().enumerate() {
        for f in ["apiVersion", "kind", "name", "uid"] {
            if r.get(f).and_then(Value::as_str).is_none_or(str::is_empty) {
                out.push(FieldError::required(format!("metadata.ownerReferences[{i}].{f}"), ""));
            }
        }
    }
}

/// Validate `metadata` of an object: name (or generateName) by `rule`, namespace presence
/// by scope, labels, annotations, finalizers, owner references.
pub fn validate_object_meta(obj: &Value, namespaced: bool, rule: NameRule) -> Vec<FieldError> {
    let mut out = Vec::new();
    let name = meta::name(obj).unwrap_or("");
    if name.is_empty() {
        out.push(FieldError::required("metadata.name", "name or generateName is required"));
    } else {
        for e in name_errors(rule, name, obj) {
            out.push(FieldError::invalid("metadata.name", &json!(name), &e));
        }
    }
    let ns = meta::namespace(obj).unwrap_or("");
    if namespaced {
        if ns.is_empty() {
            out.push(FieldError::required("metadata.namespace", ""));
        } else {
            for e in dns1123_label_errors(ns) {
                out.push(FieldError::invalid("metadata.namespace", &json!(ns), &e));
            }
        }
    } else if !ns.is_empty() {
        out.push(FieldError::forbidden("metadata.namespace", "not allowed on this type"));
    }
    validate_labels(obj, &mut out);
    validate_annotations(obj, &mut out);
    validate_finalizers(obj, &mut out);
    validate_owner_references(obj, &mut out);
    validate_managed_fields(obj, &mut out);
    out
}

/// Validate `metadata` changes on update: name, namespace, uid, creationTimestamp are
/// immutable.
pub fn validate_object_meta_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    for f in ["name", "namespace", "uid", "creationTimestamp"] {
        let (a, b) = (meta::meta_str(new, f), meta::meta_str(old, f));
        if a != b {
            let shown = a.map_or(Value::Null, |s| json!(s));
            out.push(FieldError::invalid(format!("metadata.{f}"), &shown, "field is immutable"));
        }
    }
    out
}

/// An immutable-field check: `field: Invalid value: ...: field is immutable`.
pub fn immutable(field: &str, new: Option<&Value>, old: Option<&Value>) -> Option<FieldError> {
    (new != old)
        .then(|| FieldError::invalid(field, new.unwrap_or(&Value::Null), "field is immutable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream v1.21's answers for these label keys (regression: an empty name part
    /// gave one error instead of two, and `a/b/c` was judged as prefix `a`).
    #[test]
    fn qualified_names_are_judged_as_upstream() {
        let name_rule = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        assert_eq!(
            qualified_name_errors("example.com/"),
            ["name part must be non-empty".to_string(), format!("name part {name_rule}")]
        );
        assert_eq!(
            qualified_name_errors("a/b/c"),
            [format!(
                "a qualified name {name_rule} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )]
        );
        assert_eq!(qualified_name_errors("/x"), ["prefix part must be non-empty"]);
        assert!(qualified_name_errors("example.com/x").is_empty());
    }

    #[test]
    fn managed_fields_a_client_sets_are_validated() {
        let obj = json!({"metadata": {"name": "a", "managedFields": [
            {"manager": "ok", "operation": "Apply", "fieldsType": "FieldsV1"},
            {"manager": "x", "operation": "Bogus", "fieldsType": "FieldsV2"},
            {"manager": "m".repeat(129), "operation": "Update"}]}});
        let errs: Vec<String> = validate_object_meta(&obj, false, NameRule::Subdomain)
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(
            errs,
            [
                "metadata.managedFields[1].operation: Invalid value: \"Bogus\": must be `Apply` or `Update`",
                "metadata.managedFields[1].fieldsType: Invalid value: \"FieldsV2\": must be `FieldsV1`",
                "metadata.managedFields[2].manager: Too long: may not be more than 128 bytes",
            ]
        );
    }

    #[test]
    fn names_follow_dns1123() {
        assert!(dns1123_subdomain_errors("web-1.example").is_empty());
        assert!(!dns1123_subdomain_errors("Bad_Name").is_empty());
        assert!(!dns1123_subdomain_errors("-a").is_empty());
        assert!(dns1123_label_errors("kube-system").is_empty());
        assert!(!dns1123_label_errors("a.b").is_empty());
        assert_eq!(dns1123_label_errors(&"a".repeat(64))[0], "must be no more than 63 characters");
        assert!(path_segment_errors("system:admin").is_empty());
        assert!(!path_segment_errors("a/b").is_empty());
    }

    #[test]
    fn label_keys_and_values() {
        assert!(qualified_name_errors("app.kubernetes.io/name").is_empty());
        assert!(!qualified_name_errors("/name").is_empty());
        assert!(!qualified_name_errors("a/b/c").is_empty());
        assert!(label_value_errors("").is_empty());
        assert!(!label_value_errors("-x").is_empty());
    }

    #[test]
    fn metadata_errors_name_their_fields() {
        let obj = json!({"metadata": {"name": "Bad_Name", "labels": {"ok": "-bad"}}});
        let errs = validate_object_meta(&obj, true, NameRule::Subdomain);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["metadata.name", "metadata.namespace", "metadata.labels"]);
        assert!(errs[0].message.starts_with(
            "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
        ));
        let big = json!({"metadata": {"name": "a", "annotations": {"k": "x".repeat(300 * 1024)}}});
        assert_eq!(
            validate_object_meta(&big, false, NameRule::Subdomain)[0].kind,
            crate::FieldErrorType::TooLong
        );
    }

    #[test]
    fn immutable_metadata_on_update() {
        let old = json!({"metadata": {"name": "a", "uid": "1"}});
        let new = json!({"metadata": {"name": "a", "uid": "2"}});
        assert_eq!(validate_object_meta_update(&new, &old)[0].field, "metadata.uid");
    }
}
