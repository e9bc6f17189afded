//! rustls server configuration: the serving certificate, optional client certificates
//! (any certificate whose key the client holds; the x509 authenticator judges its
//! chain), ALPN `h2` then `http/1.1`.

use super::client_cert;
use crate::pki::Pki;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// `hints`: the subjects of the trusted client CAs, named in the certificate request.
pub fn server_config(
    pki: &Pki,
    hints: Arc<client_cert::Hints>,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.serving_cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| format!("serving certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(pki.serving_key_pem.as_bytes())
        .map_err(|e| format!("serving key: {e}"))?;
    let algorithms = provider.signature_verification_algorithms;
    let verifier = Arc::new(client_cert::Verifier::new(hints, algorithms));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| format!("serving certificate: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
