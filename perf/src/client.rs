//! A plain HTTP client for API servers: HTTPS over rustls (or plain HTTP), HTTP/1.1 or
//! HTTP/2 chosen up front, JSON or protobuf `Accept`, and a pool of N connections.
//!
//! The pool is a queue of connection slots. A request takes a slot, connects it if it is
//! empty or closed, and gives it back: at once for HTTP/2 (the connection multiplexes),
//! after the whole response body has been read for HTTP/1.1 (one request at a time per
//! connection). A slot whose request failed or was cancelled comes back empty, so a broken
//! connection is replaced by the next request rather than reused.

use crate::kubeconfig::Target;
use base64::Engine;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, USER_AGENT};
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Media type of the Kubernetes protobuf encoding.
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
/// JSON.
pub const JSON: &str = "application/json";
/// Pause after a failed connection attempt.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// JSON merge patch.
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// Errors of one request. Responses with any status are not errors.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad server URL: {0}")]
    Url(String),
    #[error("connect: {0}")]
    Connect(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("http: {0}")]
    Http(String),
    #[error("timed out")]
    Timeout,
}

impl ClientError {
    /// A short label to count errors by.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Url(_) => "url",
            ClientError::Connect(_) => "connect",
            ClientError::Tls(_) => "tls",
            ClientError::Http(_) => "http",
            ClientError::Timeout => "timeout",
        }
    }
}

fn http_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Http(e.to_string())
}

/// How the client talks to the server.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub http2: bool,
    pub protobuf: bool,
    /// Connections in the pool (at least 1).
    pub connections: usize,
    /// Default time limit of a request, headers and body.
    pub timeout: Duration,
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub body: Option<(Bytes, &'static str)>,
    /// Ask for JSON whatever the client's encoding (setup and checks).
    pub json: bool,
    pub timeout: Option<Duration>,
    /// Extra request headers (e.g. `Impersonate-User`).
    pub headers: Vec<(&'static str, HeaderValue)>,
}

impl Req {
    pub fn new(method: Method, path: impl Into<String>) -> Req {
        Req {
            method,
            path: path.into(),
            body: None,
            json: false,
            timeout: None,
            headers: Vec::new(),
        }
    }
    /// Add a header (repeatable: `Impersonate-Group` once per group).
    pub fn header(mut self, name: &'static str, value: HeaderValue) -> Req {
        self.headers.push((name, value));
        self
    }
    pub fn get(path: impl Into<String>) -> Req {
        Req::new(Method::GET, path)
    }
    pub fn body(mut self, body: impl Into<Bytes>, content_type: &'static str) -> Req {
        self.body = Some((body.into(), content_type));
        self
    }
    pub fn json(mut self) -> Req {
        self.json = true;
        self
    }
    pub fn timeout(mut self, limit: Duration) -> Req {
        self.timeout = Some(limit);
        self
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

impl Response {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A streaming response (watch); holds its HTTP/1.1 connection until dropped.
pub struct Stream {
    pub status: u16,
    pub content_type: String,
    pub body: hyper::body::Incoming,
    _lease: Option<Lease>,
}

/// Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    addr: String,
    authority: String,
    scheme: &'static str,
    tls: Option<(tokio_rustls::TlsConnector, rustls_pki_types::ServerName<'static>)>,
    http2: bool,
    accept: HeaderValue,
    auth: Option<HeaderValue>,
    timeout: Duration,
    idle_tx: flume::Sender<Option<Conn>>,
    idle_rx: flume::Receiver<Option<Conn>>,
}

enum Conn {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Conn {
    fn is_closed(&self) -> bool {
        match self {
            Conn::H1(s) => s.is_closed(),
            Conn::H2(s) => s.is_closed(),
        }
    }
}

/// A slot taken from the pool; given back when dropped (empty if `dirty`).
struct Lease {
    tx: flume::Sender<Option<Conn>>,
    conn: Option<Conn>,
    dirty: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let conn = if self.dirty { None } else { self.conn.take() };
        let _ = self.tx.send(conn);
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

impl Client {
    /// A client for `target`; connections are opened lazily.
    pub fn new(target: &Target, opts: &ClientOptions) -> Result<Client, ClientError> {
        let uri: http::Uri = target.server.parse().map_err(|e| ClientError::Url(format!("{e}")))?;
        let (scheme, default_port) = match uri.scheme_str() {
            Some("https") => ("https", 443),
            Some("http") => ("http", 80),
            other => return Err(ClientError::Url(format!("unsupported scheme {other:?}"))),
        };
        let host = uri.host().ok_or_else(|| ClientError::Url("no host".into()))?.to_owned();
        let port = uri.port_u16().unwrap_or(default_port);
        let tls =
            if scheme == "https" { Some(tls_connector(target, &host, opts.http2)?) } else { None };
        let (idle_tx, idle_rx) = flume::unbounded();
        for _ in 0..opts.connections.max(1) {
            let _ = idle_tx.send(None);
        }
        let inner = Inner {
            addr: format!("{}:{port}", host.trim_start_matches('[').trim_end_matches(']')),
            authority: format!("{host}:{port}"),
            scheme,
            tls,
            http2: opts.http2,
            accept: HeaderValue::from_static(if opts.protobuf {
                "application/vnd.kubernetes.protobuf,application/json"
            } else {
                JSON
            }),
            auth: auth_header(target),
            timeout: opts.timeout,
            idle_tx,
            idle_rx,
        };
        Ok(Client { inner: Arc::new(inner) })
    }

    /// Send `req` and read the whole response, within the request's time limit.
    pub async fn send(&self, req: Req) -> Result<Response, ClientError> {
        let limit = req.timeout.unwrap_or(self.inner.timeout);
        let request = self.build(&req)?;
        match tokio::time::timeout(limit, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout),
        }
    }

    /// Open a streaming request (a watch); the time limit covers the response headers.
    pub async fn stream(&self, req: Req) -> Result<Stream, ClientError> {
        let limit = req.timeout.unwrap_or(self.inner.timeout);
        let request = self.build(&req)?;
        match tokio::time::timeout(limit, self.open_stream(request)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout),
        }
    }

    fn build(&self, req: &Req) -> Result<Request<Full<Bytes>>, ClientError> {
        let inner = &self.inner;
        let uri = if inner.http2 {
            format!("{}://{}{}", inner.scheme, inner.authority, req.path)
        } else {
            req.path.clone()
        };
        let accept = if req.json { HeaderValue::from_static(JSON) } else { inner.accept.clone() };
        let mut b = Request::builder()
            .method(req.method.clone())
            .uri(uri)
            .header(ACCEPT, accept)
            .header(USER_AGENT, concat!("kapi-perf/", env!("CARGO_PKG_VERSION")));
        if !inner.http2 {
            b = b.header(HOST, inner.authority.as_str());
        }
        if let Some(auth) = &inner.auth {
            b = b.header(AUTHORIZATION, auth.clone());
        }
        for (name, value) in &req.headers {
            b = b.header(*name, value.clone());
        }
        let body = match &req.body {
            Some((bytes, content_type)) => {
                b = b.header(CONTENT_TYPE, *content_type);
                bytes.clone()
            }
            None => Bytes::new(),
        };
        b.body(Full::new(body)).map_err(|e| ClientError::Url(e.to_string()))
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<Response, ClientError> {
        let mut lease = self.lease().await?;
        lease.dirty = true;
        let response = match lease.conn.as_mut() {
            Some(Conn::H2(s)) => {
                let mut sender = s.clone();
                lease.dirty = false;
                drop(lease);
                return collect(sender.send_request(request).await.map_err(http_err)?).await;
            }
            Some(Conn::H1(s)) => {
                s.ready().await.map_err(http_err)?;
                s.send_request(request).await.map_err(http_err)?
            }
            None => return Err(ClientError::Connect("no connection".into())),
        };
        let response = collect(response).await?;
        lease.dirty = false;
        Ok(response)
    }

    async fn open_stream(&self, request: Request<Full<Bytes>>) -> Result<Stream, ClientError> {
        let mut lease = self.lease().await?;
        lease.dirty = true;
        let (response, lease) = match lease.conn.as_mut() {
            Some(Conn::H2(s)) => {
                let mut sender = s.clone();
                lease.dirty = false;
                drop(lease);
                (sender.send_request(request).await.map_err(http_err)?, None)
            }
            Some(Conn::H1(s)) => {
                s.ready().await.map_err(http_err)?;
                (s.send_request(request).await.map_err(http_err)?, Some(lease))
            }
            None => return Err(ClientError::Connect("no connection".into())),
        };
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(Stream { status, content_type, body: response.into_body(), _lease: lease })
    }

    async fn lease(&self) -> Result<Lease, ClientError> {
        let slot = self.inner.idle_rx.recv_async().await.map_err(http_err)?;
        let mut lease = Lease { tx: self.inner.idle_tx.clone(), conn: None, dirty: false };
        match slot {
            Some(conn) if !conn.is_closed() => lease.conn = Some(conn),
            _ => match self.connect().await {
                Ok(conn) => lease.conn = Some(conn),
                Err(e) => {
                    // A server that is down must not turn the clients into a busy loop.
                    tokio::time::sleep(CONNECT_BACKOFF).await;
                    return Err(e);
                }
            },
        }
        Ok(lease)
    }

    async fn connect(&self) -> Result<Conn, ClientError> {
        let inner = &self.inner;
        let tcp = TcpStream::connect(&inner.addr)
            .await
            .map_err(|e| ClientError::Connect(format!("{}: {e}", inner.addr)))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match &inner.tls {
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| ClientError::Tls(e.to_string()))?;
                if inner.http2 && tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                    return Err(ClientError::Tls("the server did not agree to HTTP/2".into()));
                }
                Box::new(tls)
            }
            None => Box::new(tcp),
        };
        handshake(TokioIo::new(io), inner.http2).await
    }
}

async fn handshake(io: TokioIo<Box<dyn Io>>, h2: bool) -> Result<Conn, ClientError> {
    if h2 {
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .adaptive_window(true)
            .max_frame_size(1 << 20)
            .handshake(io)
            .await
            .map_err(http_err)?;
        tokio::spawn(conn);
        Ok(Conn::H2(sender))
    } else {
        let (sender, conn) = http1::handshake(io).await.map_err(http_err)?;
        tokio::spawn(conn);
        Ok(Conn::H1(sender))
    }
}

async fn collect(response: http::Response<hyper::body::Incoming>) -> Result<Response, ClientError> {
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.map_err(http_err)?.to_bytes();
    Ok(Response { status, body })
}

fn tls_connector(
    target: &Target,
    host: &str,
    http2: bool,
) -> Result<(tokio_rustls::TlsConnector, rustls_pki_types::ServerName<'static>), ClientError> {
    let tls_err = |e: crate::tls::TlsError| ClientError::Tls(e.to_string());
    let config = crate::tls::client_config(target, http2).map_err(tls_err)?;
    let name = crate::tls::server_name(target, host).map_err(tls_err)?;
    Ok((tokio_rustls::TlsConnector::from(config), name))
}

fn auth_header(target: &Target) -> Option<HeaderValue> {
    let value = if let Some(token) = &target.token {
        format!("Bearer {token}")
    } else if let Some((user, pass)) = &target.basic {
        let creds = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!("Basic {creds}")
    } else {
        return None;
    };
    HeaderValue::from_str(&value).ok()
}
