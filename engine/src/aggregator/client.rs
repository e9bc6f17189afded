//! The HTTPS client kapi reaches extension API servers with, on the shared outbound
//! thread (`crate::client::runtime`, a current-thread tokio runtime with hyper's HTTP/1.1
//! client over tokio-rustls). Serving cores never do network I/O to extension servers
//! themselves: they hand a request to the runtime (tokio's cross-thread spawn queue)
//! and await its response head on a oneshot channel; the body comes back through a
//! bounded channel (a few chunks in flight), so a slow reader slows the extension
//! server down instead of growing a buffer, and a reader that goes away (the client
//! disconnected, the watch ended) closes the upstream connection at once. CRD
//! conversion webhooks are called through the same thread ([`Client::fetch`], with
//! [`webhook_tls`]: the CRD's caBundle, no client certificate; `engine/src/conversion.rs`).
//!
//! Invariants: every call resolves (an error once the runtime is gone); dialing and the
//! TLS handshake are bounded by [`DIAL_TIMEOUT`]; non-watch requests wait for the
//! response head at most their request timeout; probes are bounded whole, body
//! included ([`PROBE_TIMEOUT`], [`MAX_PROBE_BODY`]). One connection per request (no
//! pooling): simple, and what the extension server sees is one request per connection.

use super::Target;
use crate::client::Trust;
use crate::client::conn::{Peer, connect};
use bytes::Bytes;
use futures_channel::oneshot;
use http_body_util::BodyExt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// An outgoing request body (a client's streamed body, or empty).
pub type OutBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// Longest time to connect and finish the TLS handshake.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// Upstream's availability check: the request should happen quickly.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a discovery document a probe reads.
pub const MAX_PROBE_BODY: usize = 4 * 1024 * 1024;
/// Body chunks in flight between the client thread and the serving core.
const CHUNKS_IN_FLIGHT: usize = 8;

/// The client certificate and key kapi presents to extension servers (PEM, checked
/// when read).
pub struct ProxyIdentity {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl ProxyIdentity {
    pub fn from_pem(cert: &str, key: &str) -> Result<ProxyIdentity, String> {
        let id =
            ProxyIdentity { cert_pem: cert.as_bytes().to_vec(), key_pem: key.as_bytes().to_vec() };
        crate::client::client_config(Trust::Anything, Some(id.pem()))
            .map_err(|e| format!("proxy {e}"))?;
        Ok(id)
    }

    fn pem(&self) -> (&[u8], &[u8]) {
        (&self.cert_pem, &self.key_pem)
    }
}

/// The TLS configuration for one APIService: trust `ca_bundle` (PEM), or anything when
/// `insecure`; present `identity`.
pub fn tls_config(
    identity: &ProxyIdentity,
    ca_bundle: &[u8],
    insecure: bool,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let trust = if insecure { Trust::Anything } else { Trust::Bundle(ca_bundle) };
    crate::client::client_config(trust, Some(identity.pem()))
}

/// A response head, and its body as it arrives.
pub struct Head {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: tokio::sync::mpsc::Receiver<Bytes>,
}

/// A whole response of [`Client::get`].
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Fetched {
    /// A header's value, when it is text.
    pub fn header(&self, name: http::header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The client: a handle on its runtime thread.
pub struct Client {
    handle: tokio::runtime::Handle,
    pub identity: ProxyIdentity,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// Start the client thread.
    pub fn start(identity: ProxyIdentity) -> std::io::Result<Client> {
        Ok(Client { handle: crate::client::runtime::handle()?, identity })
    }

    /// Send `req` (origin-form URI, Host set) to `target`; resolves to the response
    /// head, or why there is none (Go's words for dial errors).
    pub fn send(
        &self,
        target: Target,
        req: http::Request<OutBody>,
        head_timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Head, String>> + 'static {
        let (tx, rx) = oneshot::channel();
        self.handle.spawn(async move {
            let sent = round_trip(&target, req);
            let result = match head_timeout {
                Some(t) => tokio::time::timeout(t, sent)
                    .await
                    .unwrap_or_else(|_| Err("timeout awaiting response headers".into())),
                None => sent.await,
            };
            let resp = match result {
                Ok(resp) => resp,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let (parts, mut body) = resp.into_parts();
            let (btx, brx) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
            let head = Head { status: parts.status, headers: parts.headers, body: brx };
            if tx.send(Ok(head)).is_err() {
                return;
            }
            loop {
                let frame = tokio::select! {
                    f = body.frame() => f,
                    () = btx.closed() => return,
                };
                match frame {
                    Some(Ok(f)) => {
                        if let Ok(data) = f.into_data()
                            && !data.is_empty()
                            && btx.send(data).await.is_err()
                        {
                            return;
                        }
                    }
                    Some(Err(_)) | None => return,
                }
            }
        });
        async move { rx.await.unwrap_or_else(|_| Err("the aggregator client stopped".into())) }
    }

    /// A whole GET of `path` (probes and discovery): status, headers and body, bounded
    /// by [`PROBE_TIMEOUT`] and [`MAX_PROBE_BODY`].
    pub fn get(
        &self,
        target: Target,
        path: &str,
        headers: http::HeaderMap,
    ) -> impl Future<Output = Result<Fetched, String>> + 'static {
        let req = request(&target, path, headers);
        let fetched = req.map(|req| self.fetch(target, req, PROBE_TIMEOUT, MAX_PROBE_BODY));
        async move { fetched?.await }
    }

    /// One whole exchange (webhooks, probes): status, headers and body, the whole of it
    /// bounded by `timeout` and the body by `max_body` bytes. Resolves on the caller's
    /// executor, or blocks a thread that may wait (`futures_executor`).
    pub fn fetch(
        &self,
        target: Target,
        req: http::Request<OutBody>,
        timeout: Duration,
        max_body: usize,
    ) -> impl Future<Output = Result<Fetched, String>> + 'static {
        let (tx, rx) = oneshot::channel();
        self.handle.spawn(async move {
            let fetched = async {
                let resp = round_trip(&target, req).await?;
                let (parts, body) = resp.into_parts();
                let body = http_body_util::Limited::new(body, max_body)
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Fetched {
                    status: parts.status.as_u16(),
                    headers: parts.headers,
                    body: body.to_bytes(),
                })
            };
            let out = tokio::time::timeout(timeout, fetched)
                .await
                .unwrap_or_else(|_| Err("context deadline exceeded".into()));
            let _ = tx.send(out);
        });
        async move { rx.await.unwrap_or_else(|_| Err("the aggregator client stopped".into())) }
    }
}

/// The TLS configuration of a webhook call: trust `ca_bundle` (PEM), present no client
/// certificate (as upstream without a webhook kubeconfig).
pub fn webhook_tls(ca_bundle: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    crate::client::client_config(Trust::Bundle(ca_bundle), None)
}

fn request(
    target: &Target,
    path: &str,
    headers: http::HeaderMap,
) -> Result<http::Request<OutBody>, String> {
    let empty = http_body_util::Empty::<Bytes>::new().map_err(|e| match e {}).boxed_unsync();
    let mut req = http::Request::get(path).body(empty).map_err(|e| e.to_string())?;
    *req.headers_mut() = headers;
    set_host(target, req.headers_mut());
    Ok(req)
}

/// `Host: HOST:PORT` of `target`.
pub fn set_host(target: &Target, headers: &mut http::HeaderMap) {
    let host = target.base_url().trim_start_matches("https://").to_string();
    if let Ok(v) = http::HeaderValue::from_str(&host) {
        headers.insert(http::header::HOST, v);
    }
}

async fn round_trip(
    target: &Target,
    req: http::Request<OutBody>,
) -> Result<http::Response<hyper::body::Incoming>, String> {
    let peer = Peer { host: &target.host, port: target.port, server_name: &target.server_name };
    let mut sender = connect(peer, target.tls.clone(), DIAL_TIMEOUT).await?;
    sender.send_request(req).await.map_err(|e| e.to_string())
}
