//! The handshake's client certificate verifier, as upstream's Go server runs it
//! (`RequestClientCert`): it asks for a client certificate, naming the trusted CAs
//! (client and front-proxy bundles) as hints, and accepts any well-formed certificate.
//! The handshake only proves the client holds the certificate's private key (its
//! signature is checked against the certificate's public key, for v1 and v3 alike);
//! whether a trusted CA signed the certificate is judged by the x509 authenticator
//! (`auth::x509`), so a certificate no trusted CA signed completes the handshake and
//! its requests get 401.

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer, UnixTime};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use x509_parser::prelude::{FromDer as _, X509Certificate};

#[derive(Debug)]
pub struct Verifier {
    hints: Arc<Hints>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Verifier {
    pub fn new(hints: Arc<Hints>, algorithms: WebPkiSupportedAlgorithms) -> Verifier {
        Verifier { hints, algorithms }
    }
}

/// The CA subjects the handshake names, replaced when a CA file is reloaded (Go clients
/// send only a certificate whose issuer is named). rustls borrows them for the
/// verifier's lifetime, so each list set is kept for good: at most [`MAX_HINT_SETS`]
/// (later reloads keep verifying with the new bundles; the hints stay the last set).
#[derive(Debug)]
pub struct Hints {
    current: ArcSwap<&'static [DistinguishedName]>,
    sets: AtomicUsize,
}

/// Most hint lists ever set (each is a reload of a CA file).
pub const MAX_HINT_SETS: usize = 1024;

impl Hints {
    pub fn new(hints: Vec<DistinguishedName>) -> Hints {
        Hints { current: ArcSwap::from_pointee(hints.leak()), sets: AtomicUsize::new(1) }
    }

    /// Name these subjects from now on (ignored past [`MAX_HINT_SETS`]).
    pub fn set(&self, hints: Vec<DistinguishedName>) {
        if self.sets.fetch_add(1, Ordering::Relaxed) < MAX_HINT_SETS {
            self.current.store(Arc::new(hints.leak()));
        }
    }

    fn get(&self) -> &'static [DistinguishedName] {
        **self.current.load()
    }
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>, Error> {
    X509Certificate::from_der(der)
        .map(|(_, c)| c)
        .map_err(|_| Error::InvalidCertificate(rustls::CertificateError::BadEncoding))
}

impl ClientCertVerifier for Verifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.hints.get()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        parse(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        // TLS 1.2 schemes name no curve: try each algorithm the scheme maps to.
        let key = parse(cert)?.public_key().subject_public_key.data.to_vec();
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
        let spki = SubjectPublicKeyInfoDer::from(parse(cert)?.public_key().raw.to_vec());
        rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
