//! Client certificate verification: rustls' WebPKI verifier against the cluster CA, plus
//! what upstream's Go stack also accepts and WebPKI refuses: X.509 **v1** certificates
//! (what a plain `openssl x509 -req` makes). A v1 certificate is accepted only when it
//! is directly signed by a CA certificate of the trust store (signature checked with
//! ring through x509-parser) and is within its validity period; v3 certificates are
//! never judged here, only by WebPKI.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer, UnixTime};
use std::sync::Arc;
use x509_parser::prelude::{FromDer as _, X509Certificate, X509Version};

#[derive(Debug)]
pub struct Verifier {
    inner: Arc<dyn ClientCertVerifier>,
    /// The trust store's CA certificates (DER), for v1 leaves.
    cas: Vec<Vec<u8>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Verifier {
    pub fn new(
        inner: Arc<dyn ClientCertVerifier>,
        cas: Vec<Vec<u8>>,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> Verifier {
        Verifier { inner, cas, algorithms }
    }

    /// Whether a certificate that WebPKI refused is a v1 one a CA of ours signed.
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

fn is_v1(der: &[u8]) -> bool {
    X509Certificate::from_der(der).is_ok_and(|(_, c)| c.version() == X509Version::V1)
}

/// The SubjectPublicKeyInfo of a certificate, for checking its handshake signature.
fn spki(der: &[u8]) -> Result<SubjectPublicKeyInfoDer<'static>, Error> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|_| Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    Ok(SubjectPublicKeyInfoDer::from(cert.public_key().raw.to_vec()))
}

impl ClientCertVerifier for Verifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        match self.inner.verify_client_cert(end_entity, intermediates, now) {
            Err(_) if self.accept_v1(end_entity, now) => Ok(ClientCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        if !is_v1(cert) {
            return self.inner.verify_tls12_signature(message, cert, dss);
        }
        // TLS 1.2 schemes name no curve: try each algorithm the scheme maps to.
        let key = public_key_bits(cert)?;
        let algs = self.algorithms.mapping.iter().filter(|(s, _)| *s == dss.scheme);
        for alg in algs.flat_map(|(_, algs)| algs.iter()) {
            if alg.verify_signature(&key, message, dss.signature()).is_ok() {
                return Ok(HandshakeSignatureValid::assertion());
            }
        }
        Err(Error::InvalidCertificate(rustls::CertificateError::BadSignature))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        if !is_v1(cert) {
            return self.inner.verify_tls13_signature(message, cert, dss);
        }
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &spki(cert)?,
            dss,
            &self.algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The subjectPublicKey bits of a certificate (what the algorithms verify with).
fn public_key_bits(der: &[u8]) -> Result<Vec<u8>, Error> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|_| Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}
