//! CertificateSubjectRestriction: a new CertificateSigningRequest for the
//! `kubernetes.io/kube-apiserver-client` signer whose subject names the organization
//! (group) `system:masters` is refused with upstream's 403, so no approver can hand out
//! a client certificate that bypasses authorization. A request for that signer whose
//! `spec.request` is not a PEM `CERTIFICATE REQUEST` is refused too ("failed to parse
//! CSR"); other signers are not looked at.
//!
//! As upstream: creates only, no subresource; a validating plugin.

use super::GROUP;
use crate::admission::{Attributes, Operation, Plugin, Step};
use base64::Engine as _;
use kapi_codec::pointer::Pointer as _;
use serde_json::Value;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer as _;

/// The signer of client certificates the server itself accepts.
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";

/// The group no such certificate may carry.
const MASTERS: &str = "system:masters";

/// Upstream's CertificateSubjectRestriction plugin.
pub struct CertificateSubjectRestriction;

impl Plugin for CertificateSubjectRestriction {
    fn name(&self) -> &'static str {
        "CertificateSubjectRestriction"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        a.operation == Operation::Create && a.is(GROUP, "certificatesigningrequests")
    }

    fn validates(&self) -> bool {
        true
    }

    fn validate<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a Value) -> Step<'a> {
        crate::admission::done(check(obj).map_err(|why| a.forbid(obj, why)))
    }
}

/// Refuse a client-signer request for `system:masters` (upstream's messages).
pub fn check(csr: &Value) -> Result<(), String> {
    if super::signer_of(csr) != CLIENT_SIGNER {
        return Ok(());
    }
    let request = csr.at("/spec/request").and_then(Value::as_str).unwrap_or("");
    let orgs = organizations(request).map_err(|e| format!("failed to parse CSR: {e}"))?;
    if orgs.iter().any(|o| o == MASTERS) {
        return Err(format!("use of {CLIENT_SIGNER} signer with {MASTERS} group is not allowed"));
    }
    Ok(())
}

/// The subject organizations of the PEM request `request` (base64, as the JSON holds
/// `spec.request`).
pub fn organizations(request: &str) -> Result<Vec<String>, String> {
    let pem = base64::engine::general_purpose::STANDARD
        .decode(request)
        .map_err(|e| format!("illegal base64 data: {e}"))?;
    let block = x509_parser::pem::parse_x509_pem(&pem).ok().map(|(_, p)| p);
    let Some(block) = block.filter(|p| p.label == "CERTIFICATE REQUEST") else {
        return Err("PEM block type must be CERTIFICATE REQUEST".into());
    };
    let (_, csr) = X509CertificationRequest::from_der(&block.contents)
        .map_err(|e| format!("x509: malformed certificate request: {e}"))?;
    let subject = &csr.certification_request_info.subject;
    Ok(subject.iter_organization().filter_map(|o| o.as_str().ok().map(String::from)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A CSR (base64 of its PEM) with `orgs` as the subject's organizations.
    fn request(orgs: &[&str]) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, "alice");
        for o in orgs {
            params.distinguished_name.push(rcgen::DnType::OrganizationName, *o);
        }
        let pem = params.serialize_request(&key).unwrap().pem().unwrap();
        base64::engine::general_purpose::STANDARD.encode(pem)
    }

    fn csr(signer: &str, request: &str) -> Value {
        json!({"spec": {"signerName": signer, "request": request}})
    }

    #[test]
    fn a_client_certificate_for_system_masters_is_refused_with_upstreams_message() {
        let err = check(&csr(CLIENT_SIGNER, &request(&[MASTERS]))).unwrap_err();
        assert_eq!(
            err,
            "use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed"
        );
    }

    #[test]
    fn other_groups_and_other_signers_pass() {
        check(&csr(CLIENT_SIGNER, &request(&["dev"]))).unwrap();
        check(&csr("example.com/s", &request(&[MASTERS]))).unwrap();
        check(&csr("example.com/s", "not a csr")).unwrap();
    }

    #[test]
    fn an_unparsable_request_for_the_client_signer_is_refused() {
        let cert = base64::engine::general_purpose::STANDARD
            .encode("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        let err = check(&csr(CLIENT_SIGNER, &cert)).unwrap_err();
        assert_eq!(err, "failed to parse CSR: PEM block type must be CERTIFICATE REQUEST");
    }
}
