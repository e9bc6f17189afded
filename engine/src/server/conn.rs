//! One connection: TLS handshake (client certificate -> user), then hyper serving
//! HTTP/1.1 or HTTP/2 (by ALPN/preface) with every request handled on this core. On
//! shutdown the connection is drained gracefully.

use crate::app::App;
use crate::auth::{UserInfo, x509};
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// What the handler chain knows about the connection a request came on.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// The user of a verified client certificate.
    pub cert_user: Option<UserInfo>,
}

/// Counts this core's open connections so shutdown can wait for them.
#[derive(Clone, Default)]
pub struct Tracker(Rc<Cell<usize>>);

struct TrackGuard(Rc<Cell<usize>>);

impl Drop for TrackGuard {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl Tracker {
    fn enter(&self) -> TrackGuard {
        self.0.set(self.0.get() + 1);
        TrackGuard(self.0.clone())
    }

    pub async fn wait_idle(&self) {
        while self.0.get() > 0 {
            monoio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Spawns hyper's HTTP/2 stream tasks on this core's runtime (no `Send` needed).
#[derive(Clone, Copy, Debug)]
struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        monoio::spawn(fut);
    }
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Upstream's default (Go's http.DefaultMaxHeaderBytes).
const MAX_HEADER_BYTES: usize = 1 << 20;

pub async fn serve(
    app: Arc<App>,
    acceptor: tokio_rustls::TlsAcceptor,
    stream: monoio::net::TcpStream,
    peer: SocketAddr,
    tracker: Tracker,
) {
    let _guard = tracker.enter();
    let Ok(poll) = stream.try_into_poll_io().map_err(|(e, _)| e) else { return };
    let tls = match monoio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(poll)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!("TLS handshake with {peer} failed: {e}");
            return;
        }
        Err(_) => return,
    };
    let cert_user = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| x509::user_from_der(c));
    let info = Rc::new(ConnInfo { peer, cert_user });
    let service_app = app.clone();
    let service = hyper::service::service_fn(move |req| {
        let (app, info) = (service_app.clone(), info.clone());
        async move { Ok::<_, Infallible>(crate::handler::handle(&app, &info, req).await) }
    });
    let mut builder = auto::Builder::new(LocalExec);
    builder.http1().keep_alive(true).max_buf_size(MAX_HEADER_BYTES + 64 * 1024);
    builder
        .http2()
        .max_concurrent_streams(250)
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_pending_accept_reset_streams(50)
        .max_local_error_reset_streams(Some(1024));
    let conn = builder.serve_connection(TokioIo::new(tls), service);
    let mut conn = std::pin::pin!(conn);
    let shutdown = app.shutdown.clone();
    let drained = monoio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!("connection from {peer}: {e}");
            }
            true
        },
        _ = shutdown.recv_async() => false,
    };
    if !drained {
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    }
}
