//! ClusterTrustBundle (`certificates.k8s.io/v1beta1`): upstream's name rule (a bundle
//! naming a signer is named `<signerName with '/' as ':'>:<subdomain>`; one without a
//! signer has no `:` in its name and is a subdomain) and the immutable
//! `spec.signerName` (the ClusterTrustBundleAttest plugin relies on it: it checks the
//! new object's signer), and upstream's `spec.trustBundle` check: at most 1 MiB; every
//! PEM block (Go's `pem.Decode`: text around blocks is ignored) a `CERTIFICATE` without
//! headers that parses as an X.509 CA certificate; at least one, none twice. An update
//! that leaves the bundle as it was does not parse it again (as upstream, so a stricter
//! parser cannot strand stored bundles).

use super::{NameRule, Strategy};
use crate::error::FieldError;
use crate::validation::{dns1123_subdomain_errors, immutable};
use serde_json::Value;

/// Upstream's `MaxTrustBundleSize`.
pub const MAX_TRUST_BUNDLE_SIZE: usize = 1024 * 1024;
const TRUST_BUNDLE: &str = "spec.trustBundle";

/// The ClusterTrustBundle strategy.
#[derive(Debug, Default)]
pub struct ClusterTrustBundles;

impl Strategy for ClusterTrustBundles {
    fn name_rule(&self) -> NameRule {
        NameRule::ClusterTrustBundle
    }

    fn validate_create(&self, obj: &Value) -> Vec<FieldError> {
        trust_bundle_errors(bundle_of(obj))
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let signer = |v: &Value| {
            v.pointer("/spec/signerName").cloned().unwrap_or(Value::String(String::new()))
        };
        let mut errors: Vec<FieldError> =
            immutable("spec.signerName", Some(&signer(new)), Some(&signer(old)))
                .into_iter()
                .collect();
        if bundle_of(new) != bundle_of(old) {
            errors.extend(trust_bundle_errors(bundle_of(new)));
        }
        errors
    }
}

fn bundle_of(obj: &Value) -> &str {
    obj.pointer("/spec/trustBundle").and_then(Value::as_str).unwrap_or("")
}

/// Upstream's `validateTrustBundle`, messages and order included (duplicates reported
/// in the order of their first block).
pub fn trust_bundle_errors(bundle: &str) -> Vec<FieldError> {
    if bundle.len() > MAX_TRUST_BUNDLE_SIZE {
        return vec![FieldError::too_long(TRUST_BUNDLE, MAX_TRUST_BUNDLE_SIZE)];
    }
    let mut errors = Vec::new();
    let mut anchors: Vec<(Vec<u8>, Vec<usize>)> = Vec::new();
    for (i, block) in crate::pem::blocks(bundle.as_bytes()).into_iter().enumerate() {
        match anchor_problem(&block) {
            Some(why) => errors.push(invalid(&format!("entry {i} {why}"))),
            None => match anchors.iter_mut().find(|(der, _)| *der == block.bytes) {
                Some((_, at)) => at.push(i),
                None => anchors.push((block.bytes, vec![i])),
            },
        }
    }
    if !errors.is_empty() {
        return errors;
    }
    if anchors.is_empty() {
        errors.push(invalid("at least one trust anchor must be provided"));
    }
    for (_, at) in anchors.iter().filter(|(_, at)| at.len() > 1) {
        let list: Vec<String> = at.iter().map(usize::to_string).collect();
        errors.push(invalid(&format!("duplicate trust anchor (indices [{}])", list.join(" "))));
    }
    errors
}

/// Why a block is not a trust anchor (the rest of upstream's `entry N ...` message).
fn anchor_problem(block: &crate::pem::Block) -> Option<String> {
    if block.kind != "CERTIFICATE" {
        return Some(format!("has bad block type: {}", block.kind));
    }
    if !block.headers.is_empty() {
        return Some("has PEM block headers".into());
    }
    match is_ca(&block.bytes) {
        None => Some("does not parse as X.509".into()),
        Some(false) => Some("does not have the CA bit set".into()),
        Some(true) => None,
    }
}

/// Whether the DER certificate `der` is a CA's (None: it does not parse; as Go's
/// `x509.ParseCertificate`, trailing bytes and a duplicated extension are errors).
fn is_ca(der: &[u8]) -> Option<bool> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    if !rest.is_empty() {
        return None;
    }
    let constraints = cert.basic_constraints().ok()?;
    Some(constraints.is_some_and(|bc| bc.value.ca))
}

fn invalid(detail: &str) -> FieldError {
    FieldError::invalid(TRUST_BUNDLE, &Value::String("<value omitted>".into()), detail)
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

    fn cert(ca: bool) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["x.example".to_string()]).unwrap();
        if ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        params.self_signed(&key).unwrap().pem()
    }

    fn messages(bundle: &str) -> Vec<String> {
        trust_bundle_errors(bundle).into_iter().map(|e| e.message).collect()
    }

    const OMITTED: &str = "spec.trustBundle: Invalid value: \"<value omitted>\": ";

    #[test]
    fn ca_certificates_among_other_text_are_a_valid_bundle() {
        let bundle = format!("# roots\n{}\nsome comment\n{}", cert(true), cert(true));
        assert!(messages(&bundle).is_empty(), "{:?}", messages(&bundle));
    }

    #[test]
    fn every_bad_entry_is_named_with_upstreams_message() {
        let key = "-----BEGIN PRIVATE KEY-----\naGk=\n-----END PRIVATE KEY-----\n";
        let headers = "-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\naGk=\n-----END CERTIFICATE-----\n";
        let garbage = "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n";
        let bundle = format!("{}{key}{headers}{garbage}{}", cert(true), cert(false));
        assert_eq!(
            messages(&bundle),
            [
                format!("{OMITTED}entry 1 has bad block type: PRIVATE KEY"),
                format!("{OMITTED}entry 2 has PEM block headers"),
                format!("{OMITTED}entry 3 does not parse as X.509"),
                format!("{OMITTED}entry 4 does not have the CA bit set"),
            ]
        );
    }

    #[test]
    fn a_bundle_needs_one_anchor_and_no_duplicates() {
        let want = [format!("{OMITTED}at least one trust anchor must be provided")];
        assert_eq!(messages(""), want);
        assert_eq!(messages("no PEM here"), want);
        let (a, b) = (cert(true), cert(true));
        assert_eq!(
            messages(&format!("{a}{b}{a}{a}")),
            [format!("{OMITTED}duplicate trust anchor (indices [0 2 3])")]
        );
    }

    #[test]
    fn a_bundle_over_one_mebibyte_is_too_long() {
        let big = format!("{}{}", cert(true), " ".repeat(MAX_TRUST_BUNDLE_SIZE));
        assert_eq!(
            messages(&big),
            ["spec.trustBundle: Too long: may not be more than 1048576 bytes"]
        );
    }

    #[test]
    fn creates_check_the_bundle_and_updates_only_when_it_changes() {
        let s = ClusterTrustBundles;
        let b = |pem: &str| json!({"metadata": {"name": "b"}, "spec": {"trustBundle": pem}});
        assert_eq!(s.validate_create(&b("junk"))[0].field, "spec.trustBundle");
        assert!(s.validate_create(&b(&cert(true))).is_empty());
        let stored = b("junk");
        assert!(s.validate_update(&stored, &stored).is_empty(), "unchanged: not parsed again");
        let changed = s.validate_update(&b("other junk"), &stored);
        assert_eq!(changed[0].field, "spec.trustBundle");
        assert!(s.validate_update(&b(&cert(true)), &stored).is_empty());
    }
}
