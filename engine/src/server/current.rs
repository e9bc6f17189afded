//! The connection of the request being handled, for the few handlers that must act on
//! it (a watch whose client stopped reading closes its connection). The connection's
//! service polls each request's future inside [`InConn`], which names the connection in
//! a thread-local for the length of the poll; [`closer`] takes a weak handle to it.
//! Everything is on the connection's core.

use super::watchdog::ConnState;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};

thread_local! {
    static CURRENT: RefCell<Option<Rc<ConnState>>> = const { RefCell::new(None) };
}

/// Closes the connection a request came on (nothing once it is gone).
#[derive(Debug, Clone)]
pub struct Closer(Weak<ConnState>);

impl Closer {
    pub fn close(&self) {
        if let Some(c) = self.0.upgrade() {
            c.close();
        }
    }
}

/// The connection of the request being polled; None outside a connection's service.
pub fn closer() -> Option<Closer> {
    CURRENT.with(|c| c.borrow().as_ref().map(|c| Closer(Rc::downgrade(c))))
}

/// A request's future, polled with its connection named.
pub struct InConn<F> {
    conn: Rc<ConnState>,
    inner: Pin<Box<F>>,
}

impl<F> InConn<F> {
    pub fn new(conn: Rc<ConnState>, inner: F) -> Self {
        InConn { conn, inner: Box::pin(inner) }
    }
}

impl<F: Future> Future for InConn<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let me = self.get_mut();
        let _named = Named(CURRENT.with(|c| c.replace(Some(me.conn.clone()))));
        me.inner.as_mut().poll(cx)
    }
}

/// Puts the previously named connection back when the poll ends, however it ends.
struct Named(Option<Rc<ConnState>>);

impl Drop for Named {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}
