//! The CertificateSigningRequest plugins: CertificateApproval (`approval.rs`: approving
//! or denying needs `approve` on the signer), CertificateSigning (`signing.rs`: setting
//! `status.certificate` needs `sign` on the signer) and CertificateSubjectRestriction
//! (`subject.rs`: no `system:masters` client certificates from the
//! `kubernetes.io/kube-apiserver-client` signer); and ClusterTrustBundleAttest
//! (`ctb_attest.rs`: a ClusterTrustBundle naming a signer needs `attest` on it).
//!
//! A signer permission is asked of the server's authorizer chain (the one that
//! authorizes requests, webhook included) as upstream's `IsAuthorizedForSignerName`:
//! the verb on the synthetic resource `signers` of `certificates.k8s.io` named by the
//! signer name, else by its domain wildcard (`example.com/*`). An authorizer error
//! counts as no permission. The server's own writes (no user) are allowed.

pub mod approval;
pub mod ctb_attest;
pub mod signing;
pub mod subject;

use super::Attributes;
use crate::auth::{Decision, UserInfo};
use crate::authz::Attributes as AuthzAttributes;
use kapi_codec::pointer::Pointer as _;
use serde_json::Value;

/// The group of CertificateSigningRequests and of the synthetic `signers` resource.
pub const GROUP: &str = "certificates.k8s.io";

/// Whether the request writes `certificatesigningrequests/<subresource>`.
fn writes_subresource(a: &Attributes<'_>, subresource: &str) -> bool {
    let rt = a.rt();
    &*rt.group == GROUP
        && &*rt.plural == "certificatesigningrequests"
        && a.subresource() == Some(subresource)
}

/// The CSR's `spec.signerName`.
fn signer_of(csr: &Value) -> &str {
    csr.at("/spec/signerName").and_then(Value::as_str).unwrap_or("")
}

/// The wildcard name covering every signer of `signer`'s domain (`example.com/*`).
pub fn domain_wildcard(signer: &str) -> String {
    let domain = signer.split('/').next().unwrap_or("");
    format!("{domain}/*")
}

/// Whether the request's user may `verb` (`approve`, `sign`) for `signer`.
async fn may(a: &Attributes<'_>, verb: &str, signer: &str) -> bool {
    let Some(user) = a.user() else { return true };
    let app = a.scope.app;
    for name in [signer.to_string(), domain_wildcard(signer)] {
        let attrs = signer_attributes(user, verb, &name);
        if let Ok(Decision::Allow) = app.authorizer.authorize_request(app, &attrs).await {
            return true;
        }
    }
    false
}

/// The authorizer's question: `verb` on `signers` named `name`.
fn signer_attributes<'a>(user: &'a UserInfo, verb: &'a str, name: &'a str) -> AuthzAttributes<'a> {
    AuthzAttributes {
        user,
        verb,
        resource_request: true,
        path: "",
        group: GROUP,
        version: "*",
        namespace: "",
        resource: "signers",
        subresource: "",
        name,
        field_selector: "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wildcard_is_the_domain_of_the_signer() {
        assert_eq!(domain_wildcard("example.com/my-signer"), "example.com/*");
        assert_eq!(domain_wildcard("kubernetes.io/kube-apiserver-client"), "kubernetes.io/*");
        assert_eq!(domain_wildcard("nodomain"), "nodomain/*");
    }

    #[test]
    fn the_question_is_the_verb_on_signers_in_the_certificates_group() {
        let user = UserInfo { name: "alice".into(), ..Default::default() };
        let q = signer_attributes(&user, "approve", "example.com/*");
        assert_eq!(
            (q.group, q.version, q.resource, q.name),
            (GROUP, "*", "signers", "example.com/*")
        );
        assert!(q.resource_request && q.namespace.is_empty());
    }
}
