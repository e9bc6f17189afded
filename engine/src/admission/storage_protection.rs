//! StorageObjectInUseProtection: every new PersistentVolumeClaim gets the
//! `kubernetes.io/pvc-protection` finalizer and every new PersistentVolume the
//! `kubernetes.io/pv-protection` finalizer, so the protection controllers can hold
//! their deletion while a pod uses the claim or a claim is bound to the volume.
//!
//! As upstream: creates only, no subresource; a finalizer already present is not added
//! twice; the other finalizers keep their order.

use super::{Attributes, Operation, Plugin, Step};
use serde_json::{Value, json};

/// The finalizer of a claim in use (upstream's `PVCProtectionFinalizer`).
pub const PVC_FINALIZER: &str = "kubernetes.io/pvc-protection";
/// The finalizer of a volume bound to a claim (upstream's `PVProtectionFinalizer`).
pub const PV_FINALIZER: &str = "kubernetes.io/pv-protection";

/// Upstream's StorageObjectInUseProtection plugin.
pub struct StorageObjectInUseProtection;

impl Plugin for StorageObjectInUseProtection {
    fn name(&self) -> &'static str {
        "StorageObjectInUseProtection"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        a.operation == Operation::Create
            && (a.is("", "persistentvolumeclaims") || a.is("", "persistentvolumes"))
    }

    fn mutates(&self) -> bool {
        true
    }

    fn admit<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a mut Value) -> Step<'a> {
        let finalizer =
            if &*a.rt().plural == "persistentvolumes" { PV_FINALIZER } else { PVC_FINALIZER };
        add_finalizer(obj, finalizer);
        super::done(Ok(()))
    }
}

/// Append `finalizer` to the object's `metadata.finalizers` unless it is there.
pub fn add_finalizer(obj: &mut Value, finalizer: &str) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    let list = meta.entry("finalizers").or_insert_with(|| json!([]));
    if list.is_null() {
        *list = json!([]);
    }
    let Some(list) = list.as_array_mut() else { return };
    if !list.iter().any(|f| f.as_str() == Some(finalizer)) {
        list.push(json!(finalizer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_claim_gets_the_protection_finalizer_after_its_own() {
        let mut pvc = json!({"metadata": {"name": "c", "finalizers": ["example.com/keep"]}});
        add_finalizer(&mut pvc, PVC_FINALIZER);
        assert_eq!(pvc["metadata"]["finalizers"], json!(["example.com/keep", PVC_FINALIZER]));
        let mut pv = json!({"metadata": {"name": "v", "finalizers": null}});
        add_finalizer(&mut pv, PV_FINALIZER);
        assert_eq!(pv["metadata"]["finalizers"], json!([PV_FINALIZER]));
    }

    #[test]
    fn a_finalizer_already_present_is_not_added_twice() {
        let mut pvc = json!({"metadata": {"finalizers": [PVC_FINALIZER]}});
        add_finalizer(&mut pvc, PVC_FINALIZER);
        add_finalizer(&mut pvc, PVC_FINALIZER);
        assert_eq!(pvc["metadata"]["finalizers"], json!([PVC_FINALIZER]));
    }
}
