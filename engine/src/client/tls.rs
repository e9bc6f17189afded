//! The one TLS client configuration builder: whom to trust, and which certificate to
//! present.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// Where the system's CA bundle may be (Debian, then Red Hat layouts).
const SYSTEM_BUNDLES: &[&str] =
    &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"];

/// Whom a client trusts.
#[derive(Clone, Copy, Debug)]
pub enum Trust<'a> {
    /// The CAs of this PEM bundle; an empty bundle means the system's, as upstream's
    /// clients treat an empty `caBundle` or a kubeconfig without a CA.
    Bundle(&'a [u8]),
    /// Any certificate (`insecure-skip-tls-verify`).
    Anything,
}

impl<'a> Trust<'a> {
    /// The bundle given, or the system's when there is none.
    pub fn ca(pem: Option<&'a [u8]>) -> Trust<'a> {
        Trust::Bundle(pem.unwrap_or_default())
    }
}

/// The roots of `pem`; the system's when `pem` holds nothing.
fn roots(pem: &[u8]) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    if pem.iter().all(u8::is_ascii_whitespace) {
        let system = SYSTEM_BUNDLES.iter().find_map(|p| std::fs::read(p).ok()).unwrap_or_default();
        // The system bundle may hold certificates rustls refuses: those are skipped.
        for ca in CertificateDer::pem_slice_iter(&system).flatten() {
            let _ = roots.add(ca);
        }
        return Ok(roots);
    }
    for ca in CertificateDer::pem_slice_iter(pem) {
        let ca = ca.map_err(|e| format!("CA bundle: {e}"))?;
        roots.add(ca).map_err(|e| format!("CA bundle: {e}"))?;
    }
    Ok(roots)
}

/// A client configuration trusting `trust` and presenting `identity` (certificate chain
/// and key, PEM) when given.
pub fn client_config(
    trust: Trust<'_>,
    identity: Option<(&[u8], &[u8])>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match trust {
        Trust::Anything => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::probe::AnyCertificate(provider))),
        Trust::Bundle(pem) => builder.with_root_certificates(roots(pem)?),
    };
    let mut config = match identity {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client certificate: {e}"))?;
            if certs.is_empty() {
                return Err("client certificate: no certificate found".into());
            }
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("client key: {e}"))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_bundle_or_identity_is_refused_with_what_is_wrong() {
        let bad = b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        assert!(client_config(Trust::Bundle(bad), None).unwrap_err().contains("CA bundle"));
        let err = client_config(Trust::Anything, Some((b"", b""))).unwrap_err();
        assert!(err.contains("client certificate"), "{err}");
    }

    /// Regression: an empty caBundle (a conversion or admission webhook that names none)
    /// trusted nothing at all; upstream's clients then use the system's roots.
    #[test]
    fn an_empty_bundle_means_the_system_roots() {
        let cfg = client_config(Trust::Bundle(b""), None).unwrap();
        assert_eq!(cfg.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let system = SYSTEM_BUNDLES.iter().any(|p| std::path::Path::new(p).exists());
        let roots = roots(b"").unwrap();
        assert_eq!(roots.is_empty(), !system);
    }
}
