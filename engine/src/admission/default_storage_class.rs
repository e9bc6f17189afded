//! DefaultStorageClass: a new PersistentVolumeClaim that names no class gets the
//! default StorageClass (annotated `storageclass.kubernetes.io/is-default-class: "true"`,
//! or the beta annotation; with several, the newest, as `default_class`), read from the
//! StorageClass cache. Without a default class the claim is left as it is.
//!
//! As upstream: creates only, no subresource. A claim "names a class" when
//! `spec.storageClassName` is set, even to `""` (no class, on purpose), or when it has
//! the beta `volume.beta.kubernetes.io/storage-class` annotation.

use super::cached::{self, STORAGE_CLASSES};
use super::{Attributes, Operation, Plugin, Step, default_class};
use crate::status::ApiError;
use kapi_codec::pointer::Pointer as _;
use serde_json::{Value, json};

/// The annotations that mark a default StorageClass (GA and beta).
pub const DEFAULT_MARKS: &[&str] = &[
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

/// The beta annotation naming a claim's class (it wins over `spec.storageClassName`).
pub const BETA_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

/// The bytes a default class's JSON holds (the other classes are not parsed).
const MARK_BYTES: &[u8] = b"is-default-class\":\"true\"";

/// Upstream's DefaultStorageClass plugin.
pub struct DefaultStorageClass;

impl Plugin for DefaultStorageClass {
    fn name(&self) -> &'static str {
        "DefaultStorageClass"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        a.operation == Operation::Create && a.is("", "persistentvolumeclaims")
    }

    fn mutates(&self) -> bool {
        true
    }

    fn admit<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a mut Value) -> Step<'a> {
        Box::pin(admit(a, obj))
    }
}

async fn admit(a: &Attributes<'_>, pvc: &mut Value) -> Result<(), ApiError> {
    if has_class(pvc) {
        return Ok(());
    }
    let classes = cached::list_holding(a.scope.app, STORAGE_CLASSES, MARK_BYTES).await;
    if let Some(name) =
        default_class::newest(&classes, DEFAULT_MARKS).and_then(kapi_codec::meta::name)
    {
        set_class(pvc, name);
    }
    Ok(())
}

/// Whether the claim names a class (upstream's `PersistentVolumeClaimHasClass`).
pub fn has_class(pvc: &Value) -> bool {
    let beta = pvc.at("/metadata/annotations").and_then(|a| a.get(BETA_CLASS));
    beta.is_some() || pvc.at("/spec/storageClassName").is_some_and(|c| !c.is_null())
}

/// Set the claim's `spec.storageClassName`.
pub fn set_class(pvc: &mut Value, name: &str) {
    let Some(o) = pvc.as_object_mut() else { return };
    let spec = o.entry("spec").or_insert_with(|| json!({}));
    if let Some(spec) = spec.as_object_mut() {
        spec.insert("storageClassName".into(), json!(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_without_a_class_field_has_none_but_an_empty_class_is_a_choice() {
        assert!(!has_class(&json!({"spec": {}})));
        assert!(!has_class(&json!({"spec": {"storageClassName": null}})));
        assert!(has_class(&json!({"spec": {"storageClassName": ""}})));
        assert!(has_class(&json!({"spec": {"storageClassName": "fast"}})));
        assert!(has_class(&json!({"metadata": {"annotations": {BETA_CLASS: ""}}, "spec": {}})));
    }

    #[test]
    fn the_default_class_is_written_to_the_spec() {
        let classes = [
            json!({"metadata": {"name": "std", "creationTimestamp": "2025-01-01T00:00:00Z",
                "annotations": {DEFAULT_MARKS[1]: "true"}}}),
            json!({"metadata": {"name": "fast", "creationTimestamp": "2026-01-01T00:00:00Z",
                "annotations": {DEFAULT_MARKS[0]: "true"}}}),
        ];
        let chosen = default_class::newest(&classes, DEFAULT_MARKS).unwrap();
        let mut pvc =
            json!({"metadata": {"name": "c"}, "spec": {"accessModes": ["ReadWriteOnce"]}});
        set_class(&mut pvc, kapi_codec::meta::name(chosen).unwrap());
        assert_eq!(pvc["spec"]["storageClassName"], "fast");
        assert_eq!(pvc["spec"]["accessModes"][0], "ReadWriteOnce");
    }
}
