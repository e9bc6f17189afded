//! A byte-bounded pipe from a producer task to a response body on the same core (a
//! watch's frames, each a [`Chunk`] of shared pieces): the producer waits while `limit` bytes are queued (a frame is always
//! taken when the pipe is empty, so one frame may exceed it), the body takes them in
//! order. The producer may abort: what is queued is dropped at once and the body ends.
//!
//! Invariants: at most `limit` bytes plus one frame are queued; a send fails once the
//! body is gone; the body ends after the producer is dropped and the queue is drained.

use crate::body::Chunk;
use futures_util::Stream;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
struct Shared {
    queue: RefCell<VecDeque<Chunk>>,
    bytes: Cell<usize>,
    sender_gone: Cell<bool>,
    receiver_gone: Cell<bool>,
    send_waker: RefCell<Option<Waker>>,
    recv_waker: RefCell<Option<Waker>>,
}

impl Shared {
    fn wake(slot: &RefCell<Option<Waker>>) {
        if let Some(w) = slot.borrow_mut().take() {
            w.wake();
        }
    }
}

/// The body's end is gone: nothing more can be sent.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed;

/// The producer's end.
#[derive(Debug)]
pub struct PipeSender {
    shared: Rc<Shared>,
    limit: usize,
}

/// The body's end: a stream of the frames sent.
#[derive(Debug)]
pub struct PipeReceiver {
    shared: Rc<Shared>,
}

/// A pipe holding at most `limit` bytes (plus one frame).
pub fn pipe(limit: usize) -> (PipeSender, PipeReceiver) {
    let shared = Rc::new(Shared::default());
    (PipeSender { shared: shared.clone(), limit }, PipeReceiver { shared })
}

impl PipeSender {
    /// Queue `frame`, waiting while the pipe is full; `Closed` once the body is gone.
    pub async fn send(&self, frame: Chunk) -> Result<(), Closed> {
        std::future::poll_fn(|cx| self.poll_ready(cx)).await?;
        let s = &self.shared;
        s.bytes.set(s.bytes.get() + frame.len());
        s.queue.borrow_mut().push_back(frame);
        Shared::wake(&s.recv_waker);
        Ok(())
    }

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Closed>> {
        let s = &self.shared;
        if s.receiver_gone.get() {
            return Poll::Ready(Err(Closed));
        }
        if s.bytes.get() < self.limit || s.queue.borrow().is_empty() {
            return Poll::Ready(Ok(()));
        }
        *s.send_waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Bytes queued and not taken yet.
    pub fn queued(&self) -> usize {
        self.shared.bytes.get()
    }

    /// Drop what is queued and end the body now.
    pub fn abort(self) {
        self.shared.queue.borrow_mut().clear();
        self.shared.bytes.set(0);
    }
}

impl Drop for PipeSender {
    fn drop(&mut self) {
        self.shared.sender_gone.set(true);
        Shared::wake(&self.shared.recv_waker);
    }
}

impl Stream for PipeReceiver {
    type Item = Chunk;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        let s = &self.shared;
        if let Some(frame) = s.queue.borrow_mut().pop_front() {
            s.bytes.set(s.bytes.get() - frame.len());
            Shared::wake(&s.send_waker);
            return Poll::Ready(Some(frame));
        }
        if s.sender_gone.get() {
            return Poll::Ready(None);
        }
        *s.recv_waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for PipeReceiver {
    fn drop(&mut self) {
        self.shared.receiver_gone.set(true);
        self.shared.queue.borrow_mut().clear();
        self.shared.bytes.set(0);
        Shared::wake(&self.shared.send_waker);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use futures_util::task::noop_waker;

    fn frame(n: usize) -> Chunk {
        Chunk::from(vec![b'x'; n])
    }

    fn try_send(tx: &PipeSender, f: Chunk) -> Poll<Result<(), Closed>> {
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut fut = std::pin::pin!(tx.send(f));
        fut.as_mut().poll(&mut cx)
    }

    use std::future::Future;

    #[test]
    fn a_full_pipe_holds_at_most_its_limit_plus_one_frame() {
        let (tx, mut rx) = pipe(100);
        assert!(try_send(&tx, frame(60)).is_ready());
        assert!(try_send(&tx, frame(60)).is_ready());
        assert!(try_send(&tx, frame(60)).is_pending(), "120 bytes queued: full");
        assert_eq!(tx.queued(), 120);
        let got = futures_executor::block_on(rx.next()).map(|b| b.len());
        assert_eq!(got, Some(60));
        assert!(try_send(&tx, frame(60)).is_ready());
    }

    #[test]
    fn one_frame_larger_than_the_limit_passes_an_empty_pipe() {
        let (tx, _rx) = pipe(10);
        assert!(try_send(&tx, frame(1000)).is_ready());
        assert!(try_send(&tx, frame(1)).is_pending());
    }

    #[test]
    fn abort_drops_what_is_queued_and_ends_the_body() {
        let (tx, mut rx) = pipe(1 << 20);
        assert!(try_send(&tx, frame(500)).is_ready());
        tx.abort();
        assert!(futures_executor::block_on(rx.next()).is_none());
    }

    #[test]
    fn sends_fail_once_the_body_is_gone() {
        let (tx, rx) = pipe(10);
        assert!(try_send(&tx, frame(100)).is_ready());
        drop(rx);
        assert_eq!(tx.queued(), 0, "the queued frames are freed with the body");
        assert_eq!(futures_executor::block_on(tx.send(frame(1))), Err(Closed));
    }
}
