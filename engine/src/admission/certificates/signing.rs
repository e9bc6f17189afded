//! CertificateSigning: setting or changing a CertificateSigningRequest's
//! `status.certificate` (an update of `certificatesigningrequests/status`) needs the
//! caller allowed to `sign` on the signer the stored request names. Status writes that
//! leave the certificate as it was (conditions only) are not checked. Else 403 with
//! upstream's message.

use super::{may, signer_of, writes_subresource};
use crate::admission::{Attributes, Operation, Plugin, Step};
use crate::status::ApiError;
use kapi_codec::pointer::Pointer as _;
use serde_json::Value;

/// Upstream's CertificateSigning plugin.
pub struct CertificateSigning;

impl Plugin for CertificateSigning {
    fn name(&self) -> &'static str {
        "CertificateSigning"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        a.operation == Operation::Update && writes_subresource(a, "status")
    }

    fn validates(&self) -> bool {
        true
    }

    fn validate<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a Value) -> Step<'a> {
        Box::pin(validate(a, obj))
    }
}

async fn validate(a: &Attributes<'_>, csr: &Value) -> Result<(), ApiError> {
    let Some(old) = a.old else { return Ok(()) };
    if !certificate_changed(old, csr) {
        return Ok(());
    }
    let signer = signer_of(old);
    if may(a, "sign", signer).await {
        return Ok(());
    }
    Err(a.forbid(csr, refusal(signer)))
}

/// Whether the write changes `status.certificate` (absent, null and empty are alike).
pub fn certificate_changed(old: &Value, new: &Value) -> bool {
    let cert =
        |v: &Value| v.at("/status/certificate").and_then(Value::as_str).unwrap_or("").to_string();
    cert(old) != cert(new)
}

/// Upstream's refusal.
pub fn refusal(signer: &str) -> String {
    format!("user not permitted to sign requests with signerName {signer:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_changed_certificate_needs_the_sign_permission() {
        let old = json!({"status": {"conditions": []}});
        assert!(!certificate_changed(&old, &json!({"status": {"certificate": null}})));
        assert!(certificate_changed(&old, &json!({"status": {"certificate": "Y2VydA=="}})));
        let signed = json!({"status": {"certificate": "Y2VydA=="}});
        assert!(!certificate_changed(&signed, &signed.clone()));
        assert!(refusal("a/b").starts_with("user not permitted to sign requests"));
    }
}
