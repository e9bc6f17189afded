//! The webhook backend (`--audit-webhook-config-file`, a kubeconfig): batches of events
//! POSTed as an audit.k8s.io/v1 `EventList` (JSON) to the current context's cluster
//! `server` over HTTPS, trusting its `certificate-authority(-data)` and presenting the
//! user's `client-certificate(-data)`/`client-key(-data)` (or its `token`).
//!
//! A task on the shared outbound thread (`crate::client::runtime`, `kapi-client`) takes
//! batches from the queue (upstream's defaults: 400 events, 30 s, 10 batches/s burst 15)
//! and sends each in its own task; a failed send is retried with upstream's backoff
//! (`--audit-webhook-initial-backoff`, factor 1.5, jitter 0.2, 5 tries), then its events
//! are counted as errors (`apiserver_audit_error_total{plugin="webhook"}`).
//!
//! Invariants: serving cores never do webhook I/O; a send is bounded by
//! [`SEND_TIMEOUT`] per try; tasks in flight are bounded by [`MAX_IN_FLIGHT`].

use super::buffered::{Batch, BatchConfig, Mode, Msg, Throttle, next_batch_async};
use super::event::event_list;
use crate::client::conn::{Peer, connect};
use bytes::Bytes;
use http_body_util::BodyExt;
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

/// The target the kubeconfig at `path` names.
pub fn load_kubeconfig(path: &std::path::Path) -> Result<Target, String> {
    let k = crate::client::WebhookKubeconfig::load(path)
        .map_err(|e| format!("audit webhook config {e}"))?;
    let tls = k.tls().map_err(|e| format!("audit webhook config {}: {e}", path.display()))?;
    Ok(Target { host: k.host, port: k.port, path: k.path, tls, token: k.token })
}

/// Start the backend's thread.
pub fn start(
    target: Target,
    mode: Mode,
    batching: BatchConfig,
    initial_backoff: Duration,
    rx: flume::Receiver<Msg>,
) -> Result<(), String> {
    let runtime = crate::client::runtime::handle().map_err(|e| e.to_string())?;
    let batching = if mode == Mode::Batch {
        batching
    } else {
        // Blocking modes send each event as it comes, unthrottled.
        BatchConfig { max_size: 1, max_wait: Duration::ZERO, throttle: None, ..batching }
    };
    runtime.spawn(run(target, batching, initial_backoff, rx));
    Ok(())
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
    let peer = Peer { host: &target.host, port: target.port, server_name: &target.host };
    let mut sender = connect(peer, target.tls.clone(), SEND_TIMEOUT).await.map_err(retry)?;
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
