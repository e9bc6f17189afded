//! The webhook backend (`--audit-webhook-config-file`, a kubeconfig): batches of events
//! POSTed as an audit.k8s.io/v1 `EventList` (JSON) to the current context's cluster
//! `server` over HTTPS, trusting its `certificate-authority(-data)` and presenting the
//! user's `client-certificate(-data)`/`client-key(-data)` (or its `token`).
//!
//! Its thread (`kapi-audit-webhook`) runs a current-thread tokio runtime: it takes
//! batches from the queue (upstream's defaults: 400 events, 30 s, 10 batches/s burst 15)
//! and sends each in its own task; a failed send is retried with upstream's backoff
//! (`--audit-webhook-initial-backoff`, factor 1.5, jitter 0.2, 5 tries), then its events
//! are counted as errors (`apiserver_audit_error_total{plugin="webhook"}`).
//!
//! Invariants: serving cores never do webhook I/O; a send is bounded by
//! [`SEND_TIMEOUT`] per try; tasks in flight are bounded by [`MAX_IN_FLIGHT`].

use super::buffered::{Batch, BatchConfig, Mode, Msg, Throttle, next_batch_async};
use super::event::event_list;
use bytes::Bytes;
use http_body_util::BodyExt;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Longest time one POST may take (connect, handshake, answer).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Batches being sent at once.
const MAX_IN_FLIGHT: usize = 16;
/// Tries per batch (upstream's backoff steps).
const TRIES: u32 = 5;

/// Where and how to send.
#[derive(Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// Origin-form path and query of the server URL.
    pub path: String,
    pub tls: Arc<rustls::ClientConfig>,
    pub token: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({}:{}{})", self.host, self.port, self.path)
    }
}

/// Read a kubeconfig's current context (or its only cluster and user).
pub fn load_kubeconfig(path: &std::path::Path) -> Result<Target, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("audit webhook config {}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    parse_kubeconfig(&text, base)
        .map_err(|e| format!("audit webhook config {}: {e}", path.display()))
}

fn named<'a>(list: &'a Value, key: &str, name: Option<&str>) -> Option<&'a Value> {
    let items = list.as_array()?;
    let item = match name {
        Some(n) => items.iter().find(|i| i.get("name").and_then(Value::as_str) == Some(n))?,
        None => items.first()?,
    };
    item.get(key)
}

/// PEM bytes of `FIELD-data` (base64) or `FIELD` (a file, relative to the config).
fn pem(section: &Value, field: &str, base: &std::path::Path) -> Result<Option<Vec<u8>>, String> {
    use base64::Engine as _;
    if let Some(d) = section.get(format!("{field}-data")).and_then(Value::as_str) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(d.trim())
            .map_err(|e| format!("{field}-data: {e}"))?;
        return Ok(Some(bytes));
    }
    match section.get(field).and_then(Value::as_str) {
        Some(p) => std::fs::read(base.join(p)).map(Some).map_err(|e| format!("{field} {p}: {e}")),
        None => Ok(None),
    }
}

/// The target a kubeconfig names.
pub fn parse_kubeconfig(text: &str, base: &std::path::Path) -> Result<Target, String> {
    let cfg: Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    let current = cfg.get("current-context").and_then(Value::as_str).filter(|s| !s.is_empty());
    let context = current.and_then(|c| named(&cfg["contexts"], "context", Some(c)));
    let cluster_name = context.and_then(|c| c.get("cluster")).and_then(Value::as_str);
    let user_name = context.and_then(|c| c.get("user")).and_then(Value::as_str);
    let cluster = named(&cfg["clusters"], "cluster", cluster_name).ok_or("no cluster")?;
    let empty = Value::Null;
    let user = named(&cfg["users"], "user", user_name).unwrap_or(&empty);
    let server = cluster.get("server").and_then(Value::as_str).ok_or("cluster has no server")?;
    let uri: http::Uri = server.parse().map_err(|e| format!("server {server:?}: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("server {server:?}: only https is supported"));
    }
    let host = uri.host().ok_or("server has no host")?.trim_matches(['[', ']']).to_string();
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let insecure = cluster.get("insecure-skip-tls-verify").and_then(Value::as_bool) == Some(true);
    let ca = pem(cluster, "certificate-authority", base)?;
    let cert = pem(user, "client-certificate", base)?;
    let key = pem(user, "client-key", base)?;
    let tls = tls_config(ca.as_deref(), insecure, cert.as_deref().zip(key.as_deref()))?;
    let token = user.get("token").and_then(Value::as_str).map(str::to_string);
    Ok(Target { host, port: uri.port_u16().unwrap_or(443), path, tls, token })
}

fn tls_config(
    ca: Option<&[u8]>,
    insecure: bool,
    identity: Option<(&[u8], &[u8])>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::probe::AnyCertificate(provider)))
    } else {
        let ca = ca.ok_or("the cluster has no certificate-authority")?;
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca) {
            roots
                .add(c.map_err(|e| format!("certificate-authority: {e}"))?)
                .map_err(|e| e.to_string())?;
        }
        builder.with_root_certificates(roots)
    };
    let mut config = match identity {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client-certificate: {e}"))?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| format!("client-key: {e}"))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Start the backend's thread.
pub fn start(
    target: Target,
    mode: Mode,
    batching: BatchConfig,
    initial_backoff: Duration,
    rx: flume::Receiver<Msg>,
) -> Result<std::thread::JoinHandle<()>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let batching = if mode == Mode::Batch {
        batching
    } else {
        // Blocking modes send each event as it comes, unthrottled.
        BatchConfig { max_size: 1, max_wait: Duration::ZERO, throttle: None, ..batching }
    };
    std::thread::Builder::new()
        .name("kapi-audit-webhook".into())
        .spawn(move || runtime.block_on(run(target, batching, initial_backoff, rx)))
        .map_err(|e| e.to_string())
}

async fn run(target: Target, batching: BatchConfig, backoff: Duration, rx: flume::Receiver<Msg>) {
    let mut throttle = batching.throttle.map(|(q, b)| Throttle::new(q, b));
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let target = Arc::new(target);
    while let Some(batch) = next_batch_async(&rx, &batching).await {
        if let Some(t) = throttle.as_mut() {
            tokio::time::sleep(t.reserve(std::time::Instant::now())).await;
        }
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let target = target.clone();
        let flushing = !batch.flushes.is_empty();
        let task = tokio::spawn(async move {
            send_batch(&target, batch, backoff).await;
            drop(slot);
        });
        if flushing {
            // A flush answers once everything before it is sent.
            let _ = task.await;
            let _ = slots.acquire_many(MAX_IN_FLIGHT as u32).await;
        }
    }
    let _ = slots.acquire_many(MAX_IN_FLIGHT as u32).await;
}

async fn send_batch(target: &Target, batch: Batch, initial_backoff: Duration) {
    if batch.events.is_empty() {
        batch.done(true);
        return;
    }
    let body = Bytes::from(event_list(&batch.events));
    let mut wait = initial_backoff;
    let mut last = String::new();
    for attempt in 0..TRIES {
        if attempt > 0 {
            let jitter = 1.0 + rand::random::<f64>() * 0.2;
            tokio::time::sleep(wait.mul_f64(jitter)).await;
            wait = wait.mul_f64(1.5);
        }
        match tokio::time::timeout(SEND_TIMEOUT, post(target, body.clone())).await {
            Ok(Ok(())) => {
                batch.done(true);
                return;
            }
            Ok(Err(Failure::Final(e))) => {
                last = e;
                break;
            }
            Ok(Err(Failure::Retry(e))) => last = e,
            Err(_) => last = "timeout".into(),
        }
    }
    tracing::error!("audit webhook: sending {} events: {last}", batch.events.len());
    crate::metrics::audit_error("webhook", batch.events.len() as u64);
    batch.done(false);
}

enum Failure {
    /// Connection errors, 429 and 5xx answers.
    Retry(String),
    Final(String),
}

async fn post(target: &Target, body: Bytes) -> Result<(), Failure> {
    let retry = |e: String| Failure::Retry(e);
    let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| retry(format!("dial tcp {}:{}: {e}", target.host, target.port)))?;
    let _ = tcp.set_nodelay(true);
    let name =
        ServerName::try_from(target.host.clone()).map_err(|e| Failure::Final(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(target.tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| retry(format!("tls: {e}")))?;
    let io = hyper_util::rt::TokioIo::new(tls);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(io).await.map_err(|e| retry(e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = http::Request::post(target.path.as_str())
        .header(http::header::HOST, format!("{}:{}", target.host, target.port))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json, */*")
        .header(http::header::USER_AGENT, "kapi-audit-webhook")
        .body(http_body_util::Full::new(body))
        .map_err(|e| Failure::Final(e.to_string()))?;
    if let Some(t) = &target.token
        && let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {t}"))
    {
        req.headers_mut().insert(http::header::AUTHORIZATION, v);
    }
    let resp = sender.send_request(req).await.map_err(|e| retry(e.to_string()))?;
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    match status.as_u16() {
        200..=299 => Ok(()),
        429 | 500..=599 => Err(retry(format!("the server answered {status}"))),
        _ => Err(Failure::Final(format!("the server answered {status}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfigs_name_the_current_contexts_cluster() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let text = "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: https://10.0.0.1:1\n    insecure-skip-tls-verify: true\n- name: sink\n  cluster:\n    server: https://127.0.0.1:9443/audit?x=1\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user:\n    token: abc\ncontexts:\n- name: c\n  context:\n    cluster: sink\n    user: u\ncurrent-context: c\n";
        let t = parse_kubeconfig(text, std::path::Path::new("/")).unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("127.0.0.1", 9443, "/audit?x=1"));
        assert_eq!(t.token.as_deref(), Some("abc"));
        let plain = text.replace("https://127.0.0.1:9443", "http://127.0.0.1:9443");
        assert!(parse_kubeconfig(&plain, std::path::Path::new("/")).unwrap_err().contains("https"));
        let no_ca = "clusters:\n- name: s\n  cluster:\n    server: https://h:1\n";
        assert!(
            parse_kubeconfig(no_ca, std::path::Path::new("/"))
                .unwrap_err()
                .contains("certificate-authority")
        );
    }
}
