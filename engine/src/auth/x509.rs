//! Users from verified client certificates: CommonName is the user name, each
//! Organization a group (upstream's x509 authenticator). Chain verification against the
//! cluster CA happens in the TLS handshake (rustls client verifier).

use super::UserInfo;

/// The user of a DER certificate already verified by the TLS layer.
pub fn user_from_der(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?.to_string();
    let groups =
        subject.iter_organization().filter_map(|o| o.as_str().ok().map(String::from)).collect();
    Some(UserInfo { name, groups, ..Default::default() })
}
