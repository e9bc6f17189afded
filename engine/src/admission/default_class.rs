//! Choosing the default class (StorageClass for DefaultStorageClass, IngressClass for
//! DefaultIngressClass) among the classes an annotation marks as default, as upstream
//! v1.35: with several, the newest by `creationTimestamp` wins, and among equally new
//! ones the first by name. Only the value `"true"` marks a class.

use kapi_codec::meta::{meta_str, name};
use kapi_codec::pointer::Pointer as _;
use serde_json::Value;
use std::cmp::Reverse;

/// Whether `class` carries one of `annotations` with the value `"true"`.
pub fn marked(class: &Value, annotations: &[&str]) -> bool {
    let Some(all) = class.at("/metadata/annotations").and_then(Value::as_object) else {
        return false;
    };
    annotations.iter().any(|k| all.get(*k).and_then(Value::as_str) == Some("true"))
}

/// The default class among `classes`: of those `marked`, the newest, then by name.
pub fn newest<'c>(classes: &'c [Value], annotations: &[&str]) -> Option<&'c Value> {
    let created = |c: &Value| {
        meta_str(c, "creationTimestamp").and_then(kapi_codec::time::parse_rfc3339).unwrap_or((0, 0))
    };
    classes
        .iter()
        .filter(|c| marked(c, annotations))
        .min_by_key(|c| (Reverse(created(c)), name(c).unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MARK: &str = "example.com/is-default";

    fn class(name: &str, created: &str, mark: &str) -> Value {
        json!({"metadata": {"name": name, "creationTimestamp": created,
            "annotations": {MARK: mark}}})
    }

    #[test]
    fn the_newest_marked_class_wins_then_the_first_by_name() {
        let classes = [
            class("old", "2024-01-01T00:00:00Z", "true"),
            class("b", "2025-01-01T00:00:00Z", "true"),
            class("a", "2025-01-01T00:00:00Z", "true"),
            class("newest-unmarked", "2026-01-01T00:00:00Z", "false"),
        ];
        assert_eq!(newest(&classes, &[MARK]).unwrap()["metadata"]["name"], "a");
        assert_eq!(newest(&classes[..1], &[MARK]).unwrap()["metadata"]["name"], "old");
    }

    #[test]
    fn only_the_value_true_marks_a_class() {
        let classes = [class("x", "2024-01-01T00:00:00Z", "True"), json!({"metadata": {}})];
        assert!(newest(&classes, &[MARK]).is_none());
        assert!(!marked(&classes[0], &["other"]));
    }
}
