//! Response backpressure on HTTP/1.1: hyper queues what a body yields in its write
//! buffer until that holds about `max_buf_size` (1 MiB + 4 KiB here, as header reads need
//! it), so a client that does not read would pin that much per connection. The gate
//! counts the bytes bodies hand to hyper and the plaintext bytes TLS takes from hyper,
//! and stops polling the body while more than [`IN_FLIGHT`] bytes are between them.
//!
//! HTTP/2 bodies are not gated here: h2 bounds each stream's send buffer
//! (`max_send_buf_size`), and a gate per connection would let one stream whose window
//! the client keeps closed stall the others.
//!
//! [`ConnBody`] is every response body of a connection: the gated body and the guard
//! that counts its request as in flight until hyper drops it.

use super::watchdog::RequestGuard;
use crate::body::{Chunk, ResponseBody};
use http_body::{Body, Frame, SizeHint};
use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Bytes a response may have handed to hyper beyond what TLS has taken.
pub const IN_FLIGHT: u64 = 32 * 1024;

/// One HTTP/1.1 connection's count of response bytes in flight.
#[derive(Debug, Default)]
pub struct Gate {
    handed: Cell<u64>,
    taken: Cell<u64>,
    waker: RefCell<Option<Waker>>,
}

impl Gate {
    /// TLS took `n` plaintext bytes from hyper.
    pub fn taken(&self, n: usize) {
        self.taken.set(self.taken.get() + n as u64);
        if self.in_flight() <= IN_FLIGHT
            && let Some(w) = self.waker.borrow_mut().take()
        {
            w.wake();
        }
    }

    fn in_flight(&self) -> u64 {
        self.handed.get().saturating_sub(self.taken.get())
    }

    fn poll_open(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.in_flight() <= IN_FLIGHT {
            return Poll::Ready(());
        }
        *self.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A response body as this connection serves it.
pub struct ConnBody {
    inner: ResponseBody,
    gate: Option<Rc<Gate>>,
    _request: RequestGuard,
}

impl ConnBody {
    pub fn new(inner: ResponseBody, gate: Option<Rc<Gate>>, request: RequestGuard) -> Self {
        ConnBody { inner, gate, _request: request }
    }
}

impl Body for ConnBody {
    type Data = Chunk;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunk>, Infallible>>> {
        let me = self.get_mut();
        if let Some(g) = &me.gate {
            std::task::ready!(g.poll_open(cx));
        }
        let res = Pin::new(&mut me.inner).poll_frame(cx);
        if let (Some(g), Poll::Ready(Some(Ok(f)))) = (&me.gate, &res)
            && let Some(d) = f.data_ref()
        {
            g.handed.set(g.handed.get() + d.len() as u64);
        }
        res
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::task::noop_waker;

    #[test]
    fn the_gate_closes_beyond_its_bound_and_opens_as_tls_takes_bytes() {
        let g = Gate::default();
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        g.handed.set(IN_FLIGHT + 10);
        assert!(g.poll_open(&mut cx).is_pending());
        g.taken(5);
        assert!(g.poll_open(&mut cx).is_pending());
        g.taken(5);
        assert!(g.poll_open(&mut cx).is_ready());
    }
}
