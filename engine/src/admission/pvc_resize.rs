//! PersistentVolumeClaimResize: growing a claim's `spec.resources.requests.storage` is
//! allowed only for a bound claim whose StorageClass (read from the StorageClass cache)
//! sets `allowVolumeExpansion: true`; anything else is refused with upstream's 403
//! messages. Keeping or shrinking the request is left to the claim's validation.
//!
//! As upstream: a validating plugin, updates only, no subresource. The class is the
//! beta `volume.beta.kubernetes.io/storage-class` annotation, else
//! `spec.storageClassName`; it must be set and the same before and after.

use super::cached::{self, STORAGE_CLASSES};
use super::default_storage_class::BETA_CLASS;
use super::{Attributes, Operation, Plugin, Step};
use crate::status::ApiError;
use kapi_codec::pointer::Pointer as _;
use kapi_codec::quantity::Quantity;
use serde_json::Value;

/// Upstream's refusal of an unbound claim's growth.
pub const NOT_BOUND: &str = "Only bound persistent volume claims can be expanded";
/// Upstream's refusal when the class does not allow expansion.
pub const NOT_EXPANDABLE: &str = "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize";

/// Upstream's PersistentVolumeClaimResize plugin.
pub struct PersistentVolumeClaimResize;

impl Plugin for PersistentVolumeClaimResize {
    fn name(&self) -> &'static str {
        "PersistentVolumeClaimResize"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        a.operation == Operation::Update && a.is("", "persistentvolumeclaims")
    }

    fn validates(&self) -> bool {
        true
    }

    fn validate<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a Value) -> Step<'a> {
        Box::pin(validate(a, obj))
    }
}

async fn validate(a: &Attributes<'_>, pvc: &Value) -> Result<(), ApiError> {
    let Some(old) = a.old else { return Ok(()) };
    if !grows(old, pvc) {
        return Ok(());
    }
    if old.at("/status/phase").and_then(Value::as_str) != Some("Bound") {
        return Err(a.forbid(pvc, NOT_BOUND));
    }
    let Some(class) = same_class(old, pvc) else { return Err(a.forbid(pvc, NOT_EXPANDABLE)) };
    let sc = cached::get(a.scope.app, STORAGE_CLASSES, None, class).await;
    if sc.as_ref().and_then(|sc| sc.get("allowVolumeExpansion")).and_then(Value::as_bool)
        == Some(true)
    {
        return Ok(());
    }
    Err(a.forbid(pvc, NOT_EXPANDABLE))
}

/// The claim's storage request (none or unparsable: zero, as upstream's empty quantity).
fn storage(pvc: &Value) -> Quantity {
    pvc.at("/spec/resources/requests/storage")
        .and_then(Quantity::from_json)
        .unwrap_or_else(Quantity::zero)
}

/// Whether the update asks for more storage than the claim had.
pub fn grows(old: &Value, new: &Value) -> bool {
    storage(new) > storage(old)
}

/// The claim's class (upstream's `GetPersistentVolumeClaimClass`; empty: none).
pub fn class_of(pvc: &Value) -> &str {
    let beta = pvc.at("/metadata/annotations").and_then(|a| a.get(BETA_CLASS));
    beta.or_else(|| pvc.at("/spec/storageClassName")).and_then(Value::as_str).unwrap_or("")
}

/// The class both versions of the claim name, if they name the same non-empty one.
pub fn same_class<'v>(old: &Value, new: &'v Value) -> Option<&'v str> {
    let (was, is) = (class_of(old), class_of(new));
    (!is.is_empty() && was == is).then_some(is)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim(size: &str, class: Option<&str>) -> Value {
        json!({"spec": {"storageClassName": class, "resources": {"requests": {"storage": size}}},
            "status": {"phase": "Bound"}})
    }

    #[test]
    fn only_a_larger_request_is_growth() {
        assert!(grows(&claim("1Gi", None), &claim("2Gi", None)));
        assert!(!grows(&claim("1Gi", None), &claim("1024Mi", None)));
        assert!(!grows(&claim("2Gi", None), &claim("1Gi", None)));
        assert!(grows(&json!({"spec": {}}), &claim("1", None)));
    }

    #[test]
    fn the_class_must_be_set_and_unchanged() {
        let (fast, slow) = (claim("1Gi", Some("fast")), claim("2Gi", Some("slow")));
        assert_eq!(same_class(&fast, &claim("2Gi", Some("fast"))), Some("fast"));
        assert_eq!(same_class(&fast, &slow), None);
        assert_eq!(same_class(&claim("1Gi", None), &claim("2Gi", None)), None);
        assert_eq!(same_class(&claim("1Gi", Some("")), &claim("2Gi", Some(""))), None);
    }

    #[test]
    fn the_beta_annotation_wins_over_the_field() {
        let mut pvc = claim("1Gi", Some("field"));
        pvc["metadata"] = json!({"annotations": {BETA_CLASS: "beta"}});
        assert_eq!(class_of(&pvc), "beta");
    }
}
