//! The HTTPS client authenticators reach remote services with (the token webhook, OIDC
//! issuers' discovery documents and key sets), on the shared outbound thread
//! (`crate::client::runtime`, `kapi-client`). Serving cores never do this I/O: they hand
//! a request to the runtime and await its answer on a oneshot channel.
//!
//! Invariants: every call resolves (an error once the runtime is gone); a whole call,
//! dial to last body byte, is bounded by [`CALL_TIMEOUT`] and a body by [`MAX_BODY`];
//! one connection per call.

use crate::client::conn::{Peer, connect};
use bytes::Bytes;
use futures_channel::oneshot;
use http_body_util::BodyExt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Longest time one call may take, connection and body included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response body read.
pub const MAX_BODY: usize = 1024 * 1024;

/// An `https://host[:port][/path]` URL, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Origin-form path and query (`/` at least).
    pub path: String,
}

impl Url {
    pub fn parse(url: &str) -> Result<Url, String> {
        let rest =
            url.strip_prefix("https://").ok_or_else(|| format!("{url:?} is not an https URL"))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let path = if path.starts_with('?') { format!("/{path}") } else { path };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => {
                (h, p.parse().map_err(|_| format!("{url:?}: invalid port"))?)
            }
            _ => (authority, 443),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        if host.is_empty() {
            return Err(format!("{url:?} names no host"));
        }
        Ok(Url { host, port, path })
    }

    /// The same server with another path.
    pub fn with_path(&self, path: &str) -> Url {
        Url { path: path.to_string(), ..self.clone() }
    }

    fn authority(&self) -> String {
        match self.host.contains(':') {
            true => format!("[{}]:{}", self.host, self.port),
            false => format!("{}:{}", self.host, self.port),
        }
    }
}

/// A TLS client configuration trusting `ca_pem` (or the system's bundle when None),
/// presenting `identity` (certificate and key PEM) when given.
pub fn tls_config(
    ca_pem: Option<&[u8]>,
    identity: Option<(&[u8], &[u8])>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    crate::client::client_config(crate::client::Trust::ca(ca_pem), identity)
}

/// The client: a handle on its runtime thread.
#[derive(Clone)]
pub struct Remote {
    handle: tokio::runtime::Handle,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote").finish_non_exhaustive()
    }
}

/// One call: method, URL, extra headers and body.
pub struct Call {
    pub method: http::Method,
    pub url: Url,
    pub headers: Vec<(http::HeaderName, String)>,
    pub body: Option<Vec<u8>>,
}

impl Remote {
    /// Start the client thread.
    pub fn start() -> std::io::Result<Remote> {
        Ok(Remote { handle: crate::client::runtime::handle()? })
    }

    /// Run `fut` on the client thread (background refreshes).
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.handle.spawn(fut);
    }

    /// Make `call`; resolves to the status and body, or why there is none.
    pub fn call(
        &self,
        tls: Arc<rustls::ClientConfig>,
        call: Call,
    ) -> impl Future<Output = Result<(u16, Bytes), String>> + 'static {
        let (tx, rx) = oneshot::channel();
        self.handle.spawn(async move {
            let out = tokio::time::timeout(CALL_TIMEOUT, fetch(tls, call))
                .await
                .unwrap_or_else(|_| Err("timed out".into()));
            let _ = tx.send(out);
        });
        async move { rx.await.unwrap_or_else(|_| Err("the authentication client stopped".into())) }
    }
}

/// One call on the runtime thread (usable directly from other tasks on it).
pub async fn fetch(tls: Arc<rustls::ClientConfig>, call: Call) -> Result<(u16, Bytes), String> {
    let url = &call.url;
    let peer = Peer { host: &url.host, port: url.port, server_name: &url.host };
    let mut sender = connect(peer, tls, CALL_TIMEOUT).await?;
    let body = http_body_util::Full::new(Bytes::from(call.body.unwrap_or_default()));
    let mut req = http::Request::builder().method(call.method).uri(url.path.as_str());
    req = req.header(http::header::HOST, url.authority());
    for (k, v) in &call.headers {
        req = req.header(k, v);
    }
    let req = req.body(body).map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((status, body.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_urls_split_into_host_port_and_path() {
        let u = Url::parse("https://127.0.0.1:8443/authn?x=1").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("127.0.0.1", 8443, "/authn?x=1"));
        let u = Url::parse("https://issuer.example").unwrap();
        assert_eq!((u.port, u.path.as_str()), (443, "/"));
        let u = Url::parse("https://[::1]:9000/a").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.authority()), ("::1", 9000, "[::1]:9000".into()));
        assert!(Url::parse("http://insecure").is_err());
        assert!(Url::parse("https://:1/").is_err());
        assert!(Url::parse("https://h:x/").is_err());
    }
}
