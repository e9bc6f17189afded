//! A connection's timers: what the connection is doing (waiting for a request's headers,
//! idle between requests, serving requests) and whether its socket has stopped taking
//! bytes, and the watchdog that ends the connection when a limit runs out:
//!
//! - header read (HTTP/1.1): from the TLS handshake, or from a keep-alive request's first
//!   byte, until the request reaches the handler (Go's `ReadHeaderTimeout`);
//! - idle: no request in flight (Go's `IdleTimeout`, HTTP/1.1 and HTTP/2 alike; on
//!   HTTP/2 pings and settings do not count as activity, as in Go's server);
//! - write stall: the socket has taken no byte for this long while there are bytes to
//!   send (a client that stopped reading);
//! - closed: the server ends the connection (a watch on it whose client stopped reading,
//!   `super::current`).
//!
//! Everything is on the connection's core: plain cells, no atomics. The watchdog sleeps
//! until the earliest running deadline, at most `cap` (the smallest of the header and idle
//! timeouts); a write stall, whose timeout may be shorter, wakes it when it begins.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The connection limits in effect.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub read_header: Duration,
    pub idle: Duration,
    pub write_stall: Duration,
}

/// Why the watchdog ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// A request's headers did not arrive in time (HTTP/1.1).
    ReadHeader,
    /// No request in flight for the idle timeout.
    Idle,
    /// The socket took no byte for the write-stall timeout.
    WriteStall,
    /// The server closes it (a watch on it whose client stopped reading).
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request's headers since then (HTTP/1.1 only).
    Reading(Instant),
    /// No request in flight since then.
    Idle(Instant),
    /// This many requests in flight.
    Active(usize),
}

/// What one connection is doing; shared by its I/O adapters, its request guards and its
/// watchdog.
#[derive(Debug)]
pub struct ConnState {
    phase: Cell<Phase>,
    http2: Cell<bool>,
    /// Since when the socket refuses bytes we have to send.
    stalled_since: Cell<Option<Instant>>,
    /// When the watchdog will look next.
    armed: Cell<Option<Instant>>,
    watchdog: RefCell<Option<Waker>>,
    notified: Cell<bool>,
    closing: Cell<bool>,
}

impl ConnState {
    /// A connection whose TLS handshake just finished: its first request's headers are
    /// awaited from now.
    pub fn new(http2: bool) -> Rc<ConnState> {
        let now = Instant::now();
        let phase = if http2 { Phase::Idle(now) } else { Phase::Reading(now) };
        Rc::new(ConnState {
            phase: Cell::new(phase),
            http2: Cell::new(http2),
            stalled_since: Cell::new(None),
            armed: Cell::new(None),
            watchdog: RefCell::new(None),
            notified: Cell::new(false),
            closing: Cell::new(false),
        })
    }

    /// The connection speaks HTTP/2 (known from ALPN, or from its first request).
    pub fn set_http2(&self) {
        if !self.http2.replace(true)
            && let Phase::Reading(t) = self.phase.get()
        {
            self.phase.set(Phase::Idle(t));
        }
    }

    pub fn is_http2(&self) -> bool {
        self.http2.get()
    }

    /// A request of the connection is being served (reached the handler, its response
    /// body not yet handed over).
    pub fn serving(&self) -> bool {
        matches!(self.phase.get(), Phase::Active(_))
    }

    /// Bytes arrived: on an idle HTTP/1.1 connection, a request's headers begin.
    pub fn bytes_read(&self) {
        if let Phase::Idle(_) = self.phase.get()
            && !self.http2.get()
        {
            self.phase.set(Phase::Reading(Instant::now()));
        }
    }

    /// A request reached the handler; it counts as in flight until the guard is dropped
    /// (its response body handed over, or the request abandoned).
    pub fn request_started(self: &Rc<Self>) -> RequestGuard {
        let n = match self.phase.get() {
            Phase::Active(n) => n + 1,
            _ => 1,
        };
        self.phase.set(Phase::Active(n));
        RequestGuard(self.clone())
    }

    fn request_done(&self) {
        match self.phase.get() {
            Phase::Active(n) if n > 1 => self.phase.set(Phase::Active(n - 1)),
            _ => self.phase.set(Phase::Idle(Instant::now())),
        }
    }

    /// The socket took `n` bytes (`n > 0`) or refused them for now (`None`).
    pub fn wrote(&self, n: Option<usize>) {
        match n {
            Some(0) => {}
            Some(_) => self.stalled_since.set(None),
            None if self.stalled_since.get().is_none() => {
                let now = Instant::now();
                self.stalled_since.set(Some(now));
                self.wake_if_later_than(now);
            }
            None => {}
        }
    }

    /// Close the connection now (the watchdog ends it).
    pub fn close(&self) {
        self.closing.set(true);
        self.notified.set(true);
        if let Some(w) = self.watchdog.borrow_mut().take() {
            w.wake();
        }
    }

    /// Wake the watchdog if it sleeps past a deadline that starts at `start`.
    fn wake_if_later_than(&self, start: Instant) {
        if self.armed.get().is_none_or(|a| a > start) {
            self.notified.set(true);
            if let Some(w) = self.watchdog.borrow_mut().take() {
                w.wake();
            }
        }
    }

    /// The limit that ran out by `now`, if any.
    fn expired(&self, now: Instant, l: &Limits) -> Option<Expired> {
        if self.closing.get() {
            return Some(Expired::Closed);
        }
        if self.stalled_since.get().is_some_and(|t| now >= t + l.write_stall) {
            return Some(Expired::WriteStall);
        }
        match self.phase.get() {
            Phase::Reading(t) if now >= t + l.read_header => Some(Expired::ReadHeader),
            Phase::Idle(t) if now >= t + l.idle => Some(Expired::Idle),
            _ => None,
        }
    }

    /// The earliest running deadline, if any.
    fn next_deadline(&self, l: &Limits) -> Option<Instant> {
        let phase = match self.phase.get() {
            Phase::Reading(t) => Some(t + l.read_header),
            Phase::Idle(t) => Some(t + l.idle),
            Phase::Active(_) => None,
        };
        let stall = self.stalled_since.get().map(|t| t + l.write_stall);
        match (phase, stall) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn poll_notified(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.notified.replace(false) {
            return Poll::Ready(());
        }
        *self.watchdog.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Run until a limit runs out; returns which.
    pub async fn watchdog(&self, limits: Limits) -> Expired {
        let cap = limits.read_header.min(limits.idle);
        loop {
            let now = Instant::now();
            if let Some(e) = self.expired(now, &limits) {
                return e;
            }
            let wake = self.next_deadline(&limits).map_or(now + cap, |d| d.min(now + cap));
            self.armed.set(Some(wake));
            let sleep = monoio::time::sleep(wake.saturating_duration_since(now));
            monoio::select! {
                _ = sleep => {},
                _ = std::future::poll_fn(|cx| self.poll_notified(cx)) => {},
            }
        }
    }
}

/// One request in flight on a connection.
#[derive(Debug)]
pub struct RequestGuard(Rc<ConnState>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.request_done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits {
        read_header: Duration::from_secs(32),
        idle: Duration::from_secs(90),
        write_stall: Duration::from_secs(10),
    };

    #[test]
    fn headers_are_awaited_from_the_handshake_and_from_a_keep_alive_requests_first_byte() {
        let s = ConnState::new(false);
        let t0 = Instant::now();
        assert_eq!(s.expired(t0 + Duration::from_secs(33), &L), Some(Expired::ReadHeader));
        let g = s.request_started();
        assert_eq!(s.expired(t0 + Duration::from_secs(1000), &L), None);
        drop(g);
        let t1 = Instant::now();
        assert_eq!(s.expired(t1 + Duration::from_secs(60), &L), None);
        assert_eq!(s.expired(t1 + Duration::from_secs(91), &L), Some(Expired::Idle));
        s.bytes_read();
        assert_eq!(
            s.expired(Instant::now() + Duration::from_secs(33), &L),
            Some(Expired::ReadHeader)
        );
    }

    #[test]
    fn http2_connections_are_idle_not_reading_between_streams() {
        let s = ConnState::new(true);
        s.bytes_read();
        let t = Instant::now();
        assert_eq!(s.expired(t + Duration::from_secs(60), &L), None);
        assert_eq!(s.expired(t + Duration::from_secs(91), &L), Some(Expired::Idle));
        let (a, b) = (s.request_started(), s.request_started());
        drop(a);
        assert_eq!(s.expired(t + Duration::from_secs(1000), &L), None);
        drop(b);
        assert_eq!(s.next_deadline(&L).map(|d| d > t + L.idle), Some(true));
    }

    #[test]
    fn a_socket_that_takes_no_byte_expires_the_write_stall_even_mid_request() {
        let s = ConnState::new(false);
        let _g = s.request_started();
        s.wrote(None);
        let t = Instant::now();
        assert_eq!(s.expired(t + Duration::from_secs(11), &L), Some(Expired::WriteStall));
        s.wrote(Some(5));
        assert_eq!(s.expired(t + Duration::from_secs(11), &L), None);
        assert_eq!(s.stalled_since.get(), None);
        s.close();
        assert_eq!(s.expired(t, &L), Some(Expired::Closed));
    }
}
