//! CertificateApproval: approving or denying a CertificateSigningRequest (an update of
//! `certificatesigningrequests/approval`) needs the caller allowed to `approve` on the
//! signer the stored request names (the old object's: a write may not move a request
//! to a signer it may approve for). Else 403 with upstream's message.

use super::{may, signer_of, writes_subresource};
use crate::admission::{Attributes, Operation, Plugin, Step};
use crate::status::ApiError;
use serde_json::Value;

/// Upstream's CertificateApproval plugin.
pub struct CertificateApproval;

impl Plugin for CertificateApproval {
    fn name(&self) -> &'static str {
        "CertificateApproval"
    }

    fn handles(&self, a: &Attributes<'_>) -> bool {
        a.operation == Operation::Update && writes_subresource(a, "approval")
    }

    fn validates(&self) -> bool {
        true
    }

    fn validate<'a>(&'a self, a: &'a Attributes<'a>, obj: &'a Value) -> Step<'a> {
        Box::pin(validate(a, obj))
    }
}

async fn validate(a: &Attributes<'_>, csr: &Value) -> Result<(), ApiError> {
    let signer = signer_of(a.old.unwrap_or(csr));
    if may(a, "approve", signer).await {
        return Ok(());
    }
    Err(a.forbid(csr, refusal(signer)))
}

/// Upstream's refusal.
pub fn refusal(signer: &str) -> String {
    format!("user not permitted to approve requests with signerName {signer:?}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_refusal_quotes_the_signer() {
        assert_eq!(
            super::refusal("example.com/s"),
            r#"user not permitted to approve requests with signerName "example.com/s""#
        );
    }
}
