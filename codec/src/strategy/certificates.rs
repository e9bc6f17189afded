//! ClusterTrustBundle (`certificates.k8s.io/v1beta1`): upstream's name rule (a bundle
//! naming a signer is named `<signerName with '/' as ':'>:<subdomain>`; one without a
//! signer has no `:` in its name and is a subdomain) and the immutable
//! `spec.signerName` (the ClusterTrustBundleAttest plugin relies on it: it checks the
//! new object's signer).

use super::{NameRule, Strategy};
use crate::error::FieldError;
use crate::validation::{dns1123_subdomain_errors, immutable};
use serde_json::Value;

/// The ClusterTrustBundle strategy.
#[derive(Debug, Default)]
pub struct ClusterTrustBundles;

impl Strategy for ClusterTrustBundles {
    fn name_rule(&self) -> NameRule {
        NameRule::ClusterTrustBundle
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let signer = |v: &Value| {
            v.pointer("/spec/signerName").cloned().unwrap_or(Value::String(String::new()))
        };
        immutable("spec.signerName", Some(&signer(new)), Some(&signer(old))).into_iter().collect()
    }
}

/// Upstream's `ValidateClusterTrustBundleName` for a bundle with `signer` (may be "").
pub fn name_errors(name: &str, signer: &str) -> Vec<String> {
    if signer.is_empty() {
        if name.contains(':') {
            return vec![
                "ClusterTrustBundle without signer name must not have \":\" in its name".into(),
            ];
        }
        return dns1123_subdomain_errors(name);
    }
    let prefix = format!("{}:", signer.replace('/', ":"));
    match name.strip_prefix(&prefix) {
        Some(rest) => dns1123_subdomain_errors(rest),
        None => vec![format!(
            "ClusterTrustBundle for signerName {signer} must be named with prefix {prefix}"
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_the_signer_as_upstream() {
        assert!(name_errors("example.com:signer:one", "example.com/signer").is_empty());
        assert_eq!(
            name_errors("one", "example.com/signer"),
            [
                "ClusterTrustBundle for signerName example.com/signer must be named with prefix example.com:signer:"
            ]
        );
        assert!(!name_errors("example.com:signer:Bad_", "example.com/signer").is_empty());
        assert!(name_errors("plain", "").is_empty());
        assert_eq!(
            name_errors("a:b", ""),
            ["ClusterTrustBundle without signer name must not have \":\" in its name"]
        );
    }

    #[test]
    fn the_signer_name_is_immutable() {
        let b = |s: &str| json!({"spec": {"signerName": s}});
        let s = ClusterTrustBundles;
        assert!(s.validate_update(&b("a.com/x"), &b("a.com/x")).is_empty());
        assert_eq!(s.validate_update(&b("a.com/y"), &b("a.com/x"))[0].field, "spec.signerName");
    }
}
