//! Reusable validators with upstream's messages: DNS-1123 names, label keys and values,
//! annotation sizes, and `metadata` on create and update.

use crate::error::FieldError;
use crate::strategy::NameRule;
use serde_json::Value;

/// Validate `metadata` of a new object: name (or generateName) by `rule`, namespace
/// presence by scope, labels and annotations.
pub fn validate_object_meta(_obj: &Value, _namespaced: bool, _rule: NameRule) -> Vec<FieldError> {
    Vec::new()
}

/// Validate `metadata` changes on update (immutable name, namespace, uid,
/// creationTimestamp; labels and annotations syntax).
pub fn validate_object_meta_update(_new: &Value, _old: &Value) -> Vec<FieldError> {
    Vec::new()
}
