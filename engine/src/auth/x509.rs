//! Client certificate authentication (upstream's x509 authenticator): a certificate
//! chain verified against a CA bundle (`--client-ca-file`, default the generated cluster
//! CA) names a user: CommonName is the user name, each Organization a group.
//!
//! Verification happens here, not in the TLS handshake (which accepts any certificate
//! whose key the client holds): the chain must lead to a CA of the bundle, every
//! certificate must be within its validity period and the leaf's extended key usage, when
//! present, must allow client authentication (rustls' WebPKI verifier). What upstream's Go
//! stack also accepts and WebPKI refuses is accepted too: X.509 **v1** leaves (what a plain
//! `openssl x509 -req` makes), when directly signed by a CA of the bundle (signature
//! checked with ring through x509-parser) and within their validity period.
//!
//! Invariant: a chain is judged once per connection ([`ClientCert`]); the leaf's expiry is
//! checked again on every request.

use super::UserInfo;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::{DistinguishedName, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use std::sync::Arc;
use x509_parser::prelude::{FromDer as _, X509Certificate, X509Version};

/// A bundle of trusted CA certificates and the verifier built from them.
pub struct CaBundle {
    verifier: Arc<dyn ClientCertVerifier>,
    /// The CA certificates (DER), for v1 leaves.
    cas: Vec<Vec<u8>>,
    /// The CAs' subjects (the handshake's certificate request names them).
    pub subjects: Vec<DistinguishedName>,
}

impl std::fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaBundle").field("cas", &self.cas.len()).finish_non_exhaustive()
    }
}

impl CaBundle {
    /// The bundle of every certificate in a PEM text (at least one).
    pub fn from_pem(pem: &str) -> Result<CaBundle, String> {
        let mut roots = RootCertStore::empty();
        let mut cas = Vec::new();
        for ca in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let ca = ca.map_err(|e| format!("CA certificate: {e}"))?;
            cas.push(ca.to_vec());
            roots.add(ca).map_err(|e| format!("CA certificate: {e}"))?;
        }
        if cas.is_empty() {
            return Err("no CA certificate found".into());
        }
        let subjects = roots.subjects();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("client verifier: {e}"))?;
        Ok(CaBundle { verifier, cas, subjects })
    }

    /// Whether a chain (leaf first) leads to a CA of the bundle at `now`.
    pub fn verifies(&self, chain: &[CertificateDer<'_>], now: UnixTime) -> bool {
        let Some((leaf, intermediates)) = chain.split_first() else { return false };
        self.verifier.verify_client_cert(leaf, intermediates, now).is_ok()
            || self.accept_v1(leaf, now)
    }

    /// Whether a certificate WebPKI refused is a v1 one a CA of the bundle signed.
    fn accept_v1(&self, der: &[u8], now: UnixTime) -> bool {
        let Ok((_, cert)) = X509Certificate::from_der(der) else { return false };
        if cert.version() != X509Version::V1 || !valid_at(&cert, now) {
            return false;
        }
        self.cas.iter().any(|ca| {
            X509Certificate::from_der(ca).is_ok_and(|(_, ca)| {
                ca.subject() == cert.issuer()
                    && valid_at(&ca, now)
                    && cert.verify_signature(Some(ca.public_key())).is_ok()
            })
        })
    }
}

fn valid_at(cert: &X509Certificate<'_>, now: UnixTime) -> bool {
    let t = now.as_secs() as i64;
    let v = cert.validity();
    v.not_before.timestamp() <= t && t <= v.not_after.timestamp()
}

/// What a connection's client certificate proves, judged once when it is accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCert {
    /// Whether the client CA bundle verified the chain.
    pub verified: bool,
    /// The user it names (None without a CommonName: a verified certificate naming no
    /// one is no credential, as upstream).
    pub user: Option<UserInfo>,
    /// Whether the front-proxy CA verified the chain and its CommonName is allowed.
    pub front_proxy: bool,
    /// The leaf's notAfter (unix seconds): past it, the certificate proves nothing.
    pub not_after: i64,
}

impl ClientCert {
    /// Whether the certificate is still within its validity period at `now`.
    pub fn live(&self, now: i64) -> bool {
        now <= self.not_after
    }
}

/// The notAfter (unix seconds) and CommonName of a DER certificate.
pub fn expiry_and_cn(der: &[u8]) -> Option<(i64, Option<String>)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next().and_then(|c| c.as_str().ok());
    Some((cert.validity().not_after.timestamp(), cn.map(String::from)))
}

/// The user a DER certificate names (verified elsewhere).
pub fn user_from_der(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?.to_string();
    let groups =
        subject.iter_organization().filter_map(|o| o.as_str().ok().map(String::from)).collect();
    Some(UserInfo { name, groups, ..Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };

    struct Ca {
        pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = p.self_signed(&key).unwrap();
        Ca { pem: cert.pem(), issuer: Issuer::new(p, key) }
    }

    fn leaf(ca: &Ca, cn: &str, eku: Option<ExtendedKeyUsagePurpose>, expired: bool) -> Vec<u8> {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.distinguished_name.push(DnType::OrganizationName, "team");
        p.extended_key_usages = eku.into_iter().collect();
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(if expired { 2001 } else { 2099 }, 1, 1);
        let key = KeyPair::generate().unwrap();
        p.signed_by(&key, &ca.issuer).unwrap().der().to_vec()
    }

    #[test]
    fn chains_verify_only_against_their_own_ca_within_validity_and_for_client_auth() {
        let (a, b) = (ca("a"), ca("b"));
        let bundle = CaBundle::from_pem(&a.pem).unwrap();
        let now = UnixTime::now();
        let good = leaf(&a, "alice", Some(ExtendedKeyUsagePurpose::ClientAuth), false);
        assert!(bundle.verifies(&[CertificateDer::from(good.clone())], now));
        let no_eku = leaf(&a, "alice", None, false);
        assert!(bundle.verifies(&[CertificateDer::from(no_eku)], now), "no EKU: any use");
        let server_only = leaf(&a, "alice", Some(ExtendedKeyUsagePurpose::ServerAuth), false);
        assert!(!bundle.verifies(&[CertificateDer::from(server_only)], now));
        let expired = leaf(&a, "alice", Some(ExtendedKeyUsagePurpose::ClientAuth), true);
        assert!(!bundle.verifies(&[CertificateDer::from(expired)], now));
        let other = leaf(&b, "alice", Some(ExtendedKeyUsagePurpose::ClientAuth), false);
        assert!(!bundle.verifies(&[CertificateDer::from(other)], now));
        assert!(!bundle.verifies(&[], now));
        let user = user_from_der(&good).unwrap();
        assert_eq!((user.name.as_str(), user.groups.as_slice()), ("alice", &["team".into()][..]));
        assert!(CaBundle::from_pem("no pem here").is_err());
    }
}
