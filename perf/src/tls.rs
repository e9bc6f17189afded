//! Builds the rustls client configuration for a kubeconfig target: the CA bundle to trust
//! (or no verification with `insecure-skip-tls-verify`), the client certificate, and ALPN
//! for the HTTP version asked for.

use crate::kubeconfig::Target;
use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::sync::Arc;

/// Errors building the TLS configuration.
#[derive(Debug, thiserror::Error)]
#[error("tls: {0}")]
pub struct TlsError(String);

fn err(e: impl std::fmt::Display) -> TlsError {
    TlsError(e.to_string())
}

/// The rustls configuration for `target`, offering `h2` or `http/1.1` by ALPN.
pub fn client_config(target: &Target, http2: bool) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(err)?;
    let builder = if target.insecure {
        let algs = provider.signature_verification_algorithms;
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerify(algs)))
    } else {
        builder.with_root_certificates(roots(target)?)
    };
    let mut config = match (&target.client_cert_pem, &target.client_key_pem) {
        (Some(cert), Some(key)) => {
            builder.with_client_auth_cert(certs(cert)?, key_der(key)?).map_err(err)?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![if http2 { b"h2".to_vec() } else { b"http/1.1".to_vec() }];
    Ok(Arc::new(config))
}

/// The name the server certificate is checked against.
pub fn server_name(target: &Target, host: &str) -> Result<ServerName<'static>, TlsError> {
    let name = target.tls_server_name.as_deref().unwrap_or(host);
    let name = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(name.to_owned()).map_err(err)
}

fn roots(target: &Target) -> Result<rustls::RootCertStore, TlsError> {
    let pem = target.ca_pem.as_deref().ok_or_else(|| {
        err("the kubeconfig gives no CA (certificate-authority[-data]) and is not insecure")
    })?;
    let mut store = rustls::RootCertStore::empty();
    for cert in certs(pem)? {
        store.add(cert).map_err(err)?;
    }
    Ok(store)
}

fn certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> =
        CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().map_err(err)?;
    if certs.is_empty() {
        return Err(err("no PEM certificate found"));
    }
    Ok(certs)
}

fn key_der(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(err)
}

/// `insecure-skip-tls-verify`: accept any server certificate, still check signatures.
#[derive(Debug)]
struct NoVerify(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_schemes()
    }
}
