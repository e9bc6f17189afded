//! Upstream's HTTP health prober, for `componentstatuses`: a GET of
//! `https://127.0.0.1:PORT/healthz` that does not verify the server's certificate (as
//! upstream's `InsecureSkipVerify` probe), made on a thread of its own so no serving core
//! blocks on it. The outcome reads as upstream's prober reports it: a 2xx/3xx answer is a
//! success with the body as message; an error status or a failed connection is a failure
//! whose message says why (`Get "URL": dial tcp ...: connect: connection refused`).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Upstream's probe timeout.
const TIMEOUT: Duration = Duration::from_secs(20);
/// Upstream's prober reads at most this much of a body.
const MAX_BODY: usize = 10 * 1024;

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered 2xx or 3xx; the body.
    Success(String),
    /// The server answered an error status, or could not be reached; why.
    Failure(String),
}

/// Probe `https://127.0.0.1:{port}{path}` off the calling thread.
pub async fn https_get(port: u16, path: &'static str) -> Outcome {
    let (tx, rx) = futures_channel::oneshot::channel();
    let spawned = std::thread::Builder::new().name("kapi-probe".into()).spawn(move || {
        let _ = tx.send(probe(port, path));
    });
    if let Err(e) = spawned {
        return Outcome::Failure(e.to_string());
    }
    rx.await.unwrap_or_else(|_| Outcome::Failure("probe thread ended".into()))
}

fn probe(port: u16, path: &str) -> Outcome {
    let url = format!("https://127.0.0.1:{port}{path}");
    match fetch(port, path) {
        Ok((code, body)) if (200..400).contains(&code) => Outcome::Success(body),
        Ok((code, _)) => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
        Err(why) => Outcome::Failure(format!("Get \"{url}\": {why}")),
    }
}

/// The status code and body of the GET, or why it failed (in Go's words where they are
/// known: a refused connection).
fn fetch(port: u16, path: &str) -> Result<(u16, String), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let tcp = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| dial_error(&addr, &e))?;
    let _ = tcp.set_read_timeout(Some(TIMEOUT));
    let _ = tcp.set_write_timeout(Some(TIMEOUT));
    let server = ServerName::IpAddress(addr.ip().into());
    let conn =
        rustls::ClientConnection::new(client_config()?, server).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: kube-probe/1.35\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    if let Err(e) = tls.read_to_end(&mut raw)
        && raw.is_empty()
    {
        return Err(e.to_string());
    }
    parse_response(&raw).ok_or_else(|| "malformed HTTP response".to_string())
}

fn dial_error(addr: &SocketAddr, e: &std::io::Error) -> String {
    let why = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        std::io::ErrorKind::TimedOut => "i/o timeout".to_string(),
        _ => e.to_string(),
    };
    format!("dial tcp {addr}: {why}")
}

/// Status code and body (de-chunked, at most `MAX_BODY` bytes) of an HTTP/1.1 answer.
fn parse_response(raw: &[u8]) -> Option<(u16, String)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let code = head.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = &raw[split + 4..];
    let body = if chunked { dechunk(body) } else { body.to_vec() };
    let body = &body[..body.len().min(MAX_BODY)];
    Some((code, String::from_utf8_lossy(body).into_owned()))
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(size) = size.filter(|s| *s > 0) else { break };
        let start = eol + 2;
        let end = (start + size).min(body.len());
        out.extend_from_slice(&body[start..end]);
        body = body.get(end + 2..).unwrap_or(&[]);
    }
    out
}

fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts any server certificate (upstream probes its components with
/// `InsecureSkipVerify`); handshake signatures are still checked.
#[derive(Debug)]
pub(crate) struct AnyCertificate(pub(crate) Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
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
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_with_and_without_chunks() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(parse_response(plain), Some((200, "ok".into())));
        let chunked =
            b"HTTP/1.1 500 Internal\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nbad\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Some((500, "bad".into())));
        assert_eq!(parse_response(b"garbage"), None);
    }

    #[test]
    fn a_closed_port_fails_as_upstreams_prober_says() {
        // Bind and drop a listener: its port is (for a moment) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let outcome = probe(port, "/healthz");
        assert_eq!(
            outcome,
            Outcome::Failure(format!(
                "Get \"https://127.0.0.1:{port}/healthz\": dial tcp 127.0.0.1:{port}: connect: connection refused"
            ))
        );
    }
}
