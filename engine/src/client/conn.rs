//! Opening one HTTP/1.1-over-TLS connection to a remote server, bounded in time, with
//! Go's words for what failed (callers show them in upstream-shaped errors). Runs on the
//! client runtime (`runtime.rs`); one connection per call, no pooling.

use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;

/// Where to connect and whom to expect there.
#[derive(Clone, Copy, Debug)]
pub struct Peer<'a> {
    pub host: &'a str,
    pub port: u16,
    /// The name the server's certificate must carry.
    pub server_name: &'a str,
}

impl Peer<'_> {
    /// `HOST:PORT` (IPv6 hosts bracketed), as a Host header and in errors.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Dial `peer`, shake hands with `tls` (each step bounded by `dial_timeout`) and start an
/// HTTP/1.1 connection; the connection's driver runs as a task on the current runtime.
pub async fn connect<B>(
    peer: Peer<'_>,
    tls: Arc<rustls::ClientConfig>,
    dial_timeout: Duration,
) -> Result<hyper::client::conn::http1::SendRequest<B>, String>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let addr = peer.authority();
    let dial = tokio::net::TcpStream::connect((peer.host, peer.port));
    let tcp = tokio::time::timeout(dial_timeout, dial)
        .await
        .map_err(|_| format!("dial tcp {addr}: i/o timeout"))?
        .map_err(|e| dial_error(&addr, &e))?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(peer.server_name.to_string())
        .map_err(|e| format!("invalid server name {:?}: {e}", peer.server_name))?;
    let connector = tokio_rustls::TlsConnector::from(tls);
    let stream = tokio::time::timeout(dial_timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| "net/http: TLS handshake timeout".to_string())?
        .map_err(|e| format!("tls: {e}"))?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (sender, conn) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn dial_error(addr: &str, e: &std::io::Error) -> String {
    let why = match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        std::io::ErrorKind::TimedOut => "i/o timeout".to_string(),
        _ => e.to_string(),
    };
    format!("dial tcp {addr}: {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_bracket_ipv6_hosts() {
        let p = Peer { host: "::1", port: 9, server_name: "::1" };
        assert_eq!(p.authority(), "[::1]:9");
        let p = Peer { host: "h", port: 443, server_name: "h" };
        assert_eq!(p.authority(), "h:443");
    }

    #[test]
    fn a_refused_dial_is_told_in_gos_words() {
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(dial_error("h:1", &e), "dial tcp h:1: connect: connection refused");
    }
}
