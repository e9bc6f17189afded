//! ClusterTrustBundleAttest: creating or updating a `certificates.k8s.io`
//! ClusterTrustBundle that names a `spec.signerName` needs the caller allowed to
//! `attest` on that signer (or its domain wildcard). Skipped: a bundle without a signer
//! name, and an update that changes nothing but the fields the garbage collector writes
//! (`metadata.ownerReferences`, `metadata.finalizers`; upstream's
//! `IsOnlyMutatingGCFields`, so storage migration and GC keep working). The new object's
//! signer is checked (validation refuses changing it). Else 403 with upstream's message.
//!
//! Upstream gates the plugin on the `ClusterTrustBundle` feature; kapi has no feature
//! gates: the plugin checks whenever the API is served (`--runtime-config`).

use super::{GROUP, may};
use crate::admission::{Attributes, Operation, Plugin, Step};
use crate::status::ApiError;
use kapi_codec::pointer::Pointer as _;
use serde_json::Value;

/// Upstream's ClusterTrustBundleAttest plugin.
pub struct ClusterTrustBundleAttest;

impl Plugin for ClusterTrustBundleAttest {
    fn name(&self) -> &'static str {
        "ClusterTrustBundleAttest"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        let rt = a.rt();
        matches!(a.operation, Operation::Create | Operation::Update)
            && &*rt.group == GROUP
            && &*rt.plural == "clustertrustbundles"
    }

    fn validates(&self) -> bool {
        true
    }

    fn validate<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a Value) -> Step<'a> {
        Box::pin(validate(a, obj))
    }
}

async fn validate(a: &Attributes<'_>, bundle: &Value) -> Result<(), ApiError> {
    let signer = bundle.at("/spec/signerName").and_then(Value::as_str).unwrap_or("");
    if signer.is_empty() {
        return Ok(());
    }
    if a.operation == Operation::Update && a.old.is_some_and(|old| only_gc_fields(bundle, old)) {
        return Ok(());
    }
    if may(a, "attest", signer).await {
        return Ok(());
    }
    Err(a.forbid(bundle, refusal(signer)))
}

/// Upstream's refusal.
pub fn refusal(signer: &str) -> String {
    format!("user not permitted to attest for signerName {signer:?}")
}

/// Whether `new` differs from `old` only in the fields the garbage collector writes
/// (compared as Go's semantic equality: absent, null and zero values are alike).
pub fn only_gc_fields(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in ["ownerReferences", "finalizers", "selfLink"] {
                meta.remove(field);
            }
        }
        v
    };
    kapi_codec::semantic::equal(&strip(new), &strip(old))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle(labels: Value, finalizers: Value) -> Value {
        json!({"metadata": {"name": "example.com:signer:b", "labels": labels,
            "finalizers": finalizers, "resourceVersion": "5"},
            "spec": {"signerName": "example.com/signer", "trustBundle": "PEM"}})
    }

    #[test]
    fn only_changes_to_gc_fields_skip_the_check() {
        let old = bundle(json!({"a": "1"}), json!([]));
        assert!(only_gc_fields(&bundle(json!({"a": "1"}), json!(["x/y"])), &old));
        let mut owned = old.clone();
        owned["metadata"]["ownerReferences"] = json!([{"name": "o"}]);
        assert!(only_gc_fields(&owned, &old));
        assert!(!only_gc_fields(&bundle(json!({"a": "2"}), json!([])), &old));
        let mut other = old.clone();
        other["spec"]["trustBundle"] = json!("PEM2");
        assert!(!only_gc_fields(&other, &old));
        // Absent and empty are alike, as Go's semantic equality says.
        let mut bare = old.clone();
        bare["metadata"].as_object_mut().unwrap().remove("finalizers");
        bare["metadata"]["annotations"] = json!({});
        assert!(only_gc_fields(&bare, &old));
    }

    #[test]
    fn the_refusal_is_upstreams() {
        assert_eq!(
            refusal("example.com/signer"),
            "user not permitted to attest for signerName \"example.com/signer\""
        );
    }
}
