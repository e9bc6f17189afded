//! One connection: TLS handshake (client certificate judged by the x509 authenticator), then hyper serving
//! HTTP/1.1 or HTTP/2 (by ALPN/preface) with every request handled on this core. On
//! shutdown the connection is drained gracefully. Every recv and send on the socket is
//! counted into this core's I/O figures (`crate::metrics::io`) and into the connection's
//! timers (`watchdog`): a connection whose headers do not arrive, that stays idle, or
//! whose client stops reading is closed. HTTP/1.1 response bytes in flight are bounded
//! by the `gate`, HTTP/2 ones by h2's per-stream send buffer.

use super::current::InConn;
use super::gate::{ConnBody, Gate};
use super::head;
use super::watchdog::{ConnState, Expired, Limits};
use crate::app::App;
use crate::auth::x509::ClientCert;
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
    /// What the client certificate proves (judged once, by the x509 authenticator).
    pub cert: Option<ClientCert>,
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

    /// Connections open on this core.
    pub fn len(&self) -> usize {
        self.0.get()
    }

    pub async fn wait_idle(&self) {
        while self.0.get() > 0 {
            monoio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// The socket: completed recv and send operations are counted per core and tell the
/// connection's timers about reads and about a socket that takes no more bytes.
struct Counted<S>(S, Rc<ConnState>);

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.0).poll_read(cx, buf);
        if res.is_ready() {
            let n = buf.filled().len().saturating_sub(before);
            crate::metrics::io::read(n);
            if n > 0 {
                self.1.bytes_read();
            }
        }
        res
    }
}

impl<S> Counted<S> {
    fn count_write(&self, res: Poll<std::io::Result<usize>>) -> Poll<std::io::Result<usize>> {
        match &res {
            Poll::Ready(Ok(n)) => {
                crate::metrics::io::wrote(*n);
                self.1.wrote(Some(*n));
            }
            Poll::Ready(Err(_)) => crate::metrics::io::wrote(0),
            Poll::Pending => self.1.wrote(None),
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.0).poll_write(cx, buf);
        self.count_write(res)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.0).poll_write_vectored(cx, bufs);
        self.count_write(res)
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

/// The TLS stream as hyper sees it: the plaintext bytes TLS takes open the HTTP/1.1
/// response [`Gate`]; hyper's bare answer to an HTTP/1.1 head it refused is replaced by
/// upstream's (`super::head`).
struct Plain<S> {
    io: S,
    gate: Rc<Gate>,
    state: Rc<ConnState>,
    /// An answer to a refused head being written in place of hyper's, and how much of it
    /// the socket took.
    answer: Option<(&'static [u8], usize)>,
}

impl<S: AsyncWrite + Unpin> Plain<S> {
    /// Write `answer` (instead of hyper's `len` bytes, which count as written once it is).
    fn poll_answer(
        &mut self,
        cx: &mut Context<'_>,
        answer: &'static [u8],
        len: usize,
    ) -> Poll<std::io::Result<usize>> {
        let mut done = match self.answer {
            Some((a, done)) if std::ptr::eq(a, answer) => done,
            _ => 0,
        };
        while done < answer.len() {
            self.answer = Some((answer, done));
            match Pin::new(&mut self.io).poll_write(cx, &answer[done..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => done += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.answer = None;
        self.gate.taken(len);
        Poll::Ready(Ok(len))
    }

    /// Upstream's answer to write instead of `written`, if that is hyper's answer to a
    /// refused HTTP/1.1 head: no request of the connection is being served (hyper answers
    /// before any handler saw the request).
    fn replacing(&self, written: &[u8]) -> Option<&'static [u8]> {
        if let Some((a, _)) = self.answer {
            return Some(a);
        }
        if self.state.is_http2() || self.state.serving() {
            return None;
        }
        super::head::h1_answer(written)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Plain<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Plain<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(answer) = self.replacing(buf) {
            return self.poll_answer(cx, answer, buf.len());
        }
        let res = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &res {
            self.gate.taken(*n);
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        // hyper's answer to a refused head is its only buffer.
        let mut filled = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next())
            && let Some(answer) = self.replacing(only)
        {
            return self.poll_answer(cx, answer, only.len());
        }
        let res = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &res {
            self.gate.taken(*n);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
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

/// Upstream's HTTP/2 figure (`resourceBody99Percentile`): each stream's receive window
/// (upstream also takes frames this large).
const H2_WINDOW: u32 = 256 * 1024;
/// The largest frame a client may send: HTTP/2's initial 16 KiB, not upstream's 256 KiB.
/// h2 refuses a header block of more CONTINUATION frames than the header list limit
/// needs in frames of this size (GOAWAY); clients send their first request in 16 KiB
/// frames, before they see our SETTINGS, so at 256 KiB a first request could carry only
/// about 160 KiB of headers instead of upstream's 1 MiB.
const H2_MAX_FRAME: u32 = 16 * 1024;
/// Response bytes h2 buffers per stream beyond what the client's window lets through.
const H2_SEND_BUFFER: usize = 128 * 1024;
/// Bytes of TLS records rustls queues for the socket (its default is 64 KiB).
const TLS_BUFFER: usize = 32 * 1024;
/// How long an idle connection's graceful close (HTTP/2 GOAWAY) may take.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The timers of the options.
fn limits(app: &App) -> Limits {
    // A year at most, so no deadline overflows.
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    let o = &app.options;
    Limits {
        read_header: o.read_header_timeout.min(YEAR),
        idle: o.idle_connection_timeout.min(YEAR),
        write_stall: o.write_stall_timeout.min(YEAR),
    }
}

fn builder(app: &App) -> auto::Builder<LocalExec> {
    let mut builder = auto::Builder::new(LocalExec);
    // A head that does not fit the read buffer is refused (431), as Go refuses one past
    // its read limit.
    builder.http1().keep_alive(true).max_buf_size(head::H1_HEAD_LIMIT);
    let streams = app.options.http2_max_streams();
    builder
        .http2()
        .max_concurrent_streams(streams)
        .max_header_list_size(head::H2_HEADER_LIST_CAP as u32)
        .max_pending_accept_reset_streams(50)
        .max_local_error_reset_streams(Some(1024))
        .max_frame_size(H2_MAX_FRAME)
        .initial_stream_window_size(H2_WINDOW)
        .initial_connection_window_size(H2_WINDOW.saturating_mul(streams).min(i32::MAX as u32))
        .max_send_buf_size(H2_SEND_BUFFER);
    builder
}

pub async fn serve(
    app: Arc<App>,
    acceptor: tokio_rustls::TlsAcceptor,
    stream: monoio::net::TcpStream,
    peer: SocketAddr,
    tracker: Tracker,
) {
    let _guard = tracker.enter();
    let limits = limits(&app);
    let state = ConnState::new(false);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let Ok(poll) = stream.try_into_poll_io().map_err(|(e, _)| e) else { return };
    let accept = acceptor.accept(Counted(poll, state.clone()));
    let mut tls = match monoio::time::timeout(limits.read_header, accept).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!("TLS handshake with {peer} failed: {e}");
            return;
        }
        Err(_) => return,
    };
    tls.get_mut().1.set_buffer_limit(Some(TLS_BUFFER));
    let session = tls.get_ref().1;
    if session.alpn_protocol() == Some(b"h2") {
        state.set_http2();
    }
    let now = rustls_pki_types::UnixTime::now();
    let cert = session.peer_certificates().and_then(|c| app.authenticator.client_cert(c, now));
    let info = Rc::new(ConnInfo { peer, cert });
    let gate = Rc::new(Gate::default());
    let (service_app, service_state, service_gate) = (app.clone(), state.clone(), gate.clone());
    let service = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        if req.version() == http::Version::HTTP_2 {
            service_state.set_http2();
        }
        if let Some(resp) = head::too_large(&req) {
            let resp = resp.map(crate::body::ResponseBody::full);
            return futures_util::future::Either::Left(std::future::ready(Ok::<_, Infallible>(
                resp.map(|b| ConnBody::new(b, None, service_state.request_started())),
            )));
        }
        let request = service_state.request_started();
        let gate = (!service_state.is_http2()).then(|| service_gate.clone());
        let (app, info) = (service_app.clone(), info.clone());
        let handled = async move { crate::handler::handle(&app, &info, req).await };
        let handled = InConn::new(service_state.clone(), handled);
        futures_util::future::Either::Right(async move {
            Ok::<_, Infallible>(handled.await.map(|b| ConnBody::new(b, gate, request)))
        })
    });
    let builder = builder(&app);
    let conn = builder.serve_connection(
        TokioIo::new(Plain { io: tls, gate, state: state.clone(), answer: None }),
        service,
    );
    let mut conn = std::pin::pin!(conn);
    let shutdown = app.shutdown.clone();
    let graceful = monoio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::debug!("connection from {peer}: {e}");
            }
            return;
        },
        _ = shutdown.recv_async() => None,
        expired = state.watchdog(limits) => Some(expired),
    };
    match graceful {
        None => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
        Some(Expired::Idle) => {
            conn.as_mut().graceful_shutdown();
            let graceful = monoio::time::timeout(CLOSE_GRACE, conn).await.is_ok();
            if !graceful || unsent_bytes(fd) > 0 {
                reset_on_close(fd);
            }
        }
        Some(Expired::ReadHeader) => {
            tracing::debug!("{peer} sent no request headers in time");
            if unsent_bytes(fd) > 0 {
                reset_on_close(fd);
            }
        }
        Some(e) => {
            tracing::debug!("resetting the connection from {peer}: {e:?}");
            reset_on_close(fd);
        }
    }
}

/// Bytes the kernel holds for the peer that it has not taken yet (`SIOCOUTQ`). A plain
/// close queues its FIN behind them: a client that stopped reading never sees the
/// close, so a connection closed with bytes unsent is reset instead.
fn unsent_bytes(fd: std::os::fd::RawFd) -> libc::c_int {
    let mut queued: libc::c_int = 0;
    // SAFETY: `fd` is the connection's open socket; the ioctl writes one c_int.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) };
    if rc != 0 { 0 } else { queued }
}

/// Make the socket's close a reset (SO_LINGER 0): a client that stopped reading would
/// never take what the kernel still holds for it, which a plain close keeps and retries.
fn reset_on_close(fd: std::os::fd::RawFd) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    let len = std::mem::size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: `fd` is the connection's socket, still open (the connection owning it is
    // dropped after this returns); `linger` is a live value of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            len,
        )
    };
    if rc != 0 {
        tracing::debug!("SO_LINGER: {}", std::io::Error::last_os_error());
    }
}
