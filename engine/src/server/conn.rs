//! One connection: TLS handshake (client certificate -> user), then hyper serving
//! HTTP/1.1 or HTTP/2 (by ALPN/preface) with every request handled on this core. On
//! shutdown the connection is drained gracefully. Every recv and send on the socket is
//! counted into this core's I/O figures (`crate::metrics::io`).

use crate::app::App;
use crate::auth::{UserInfo, x509};
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use std::cell::Cell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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
        crate::metrics::io::closed();
    }
}

impl Tracker {
    fn enter(&self) -> TrackGuard {
        self.0.set(self.0.get() + 1);
        crate::metrics::io::opened();
        TrackGuard(self.0.clone())
    }

    pub async fn wait_idle(&self) {
        while self.0.get() > 0 {
            monoio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A socket whose completed recv and send operations are counted per core.
struct Counted<S>(S);

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.0).poll_read(cx, buf);
        if res.is_ready() {
            crate::metrics::io::read(buf.filled().len().saturating_sub(before));
        }
        res
    }
}

fn count_write(res: Poll<std::io::Result<usize>>) -> Poll<std::io::Result<usize>> {
    match &res {
        Poll::Ready(Ok(n)) => crate::metrics::io::wrote(*n),
        Poll::Ready(Err(_)) => crate::metrics::io::wrote(0),
        Poll::Pending => {}
    }
    res
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        count_write(Pin::new(&mut self.0).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        count_write(Pin::new(&mut self.0).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
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
    let tls = match monoio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(Counted(poll))).await {
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
