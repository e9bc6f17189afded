//! Response bodies: a whole buffer, or a stream of chunks (watches, streamed lists)
//! produced by a task on the same core, each chunk a few shared `Bytes` ([`Chunk`]). Implements `http_body::Body` without requiring
//! `Send`, so it stays on its core. A body can be timed ([`ResponseBody::timed`]): from
//! hyper's first poll until hyper drops it (the body fully handed to the connection),
//! recorded as the request phase `write`.

mod chunk;

pub use chunk::{Chunk, MAX_PIECES};

use bytes::Bytes;
use futures_util::stream::{LocalBoxStream, StreamExt};
use http_body::{Body, Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

pub enum ResponseBody {
    Full(Option<Bytes>),
    Stream(LocalBoxStream<'static, Chunk>),
    Timed(Box<ResponseBody>, WriteTimer),
}

/// Records the `write` phase when dropped, if the body was polled.
#[derive(Debug, Default)]
pub struct WriteTimer {
    started: Option<Instant>,
}

impl Drop for WriteTimer {
    fn drop(&mut self) {
        if let Some(t) = self.started {
            crate::metrics::phase("write", t.elapsed());
        }
    }
}

impl ResponseBody {
    pub fn full(b: impl Into<Bytes>) -> Self {
        Self::Full(Some(b.into()))
    }

    pub fn empty() -> Self {
        Self::Full(None)
    }

    /// This body, with the time hyper takes to send it recorded as phase `write`.
    pub fn timed(self) -> Self {
        Self::Timed(Box::new(self), WriteTimer::default())
    }
}

impl Body for ResponseBody {
    type Data = Chunk;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunk>, Infallible>>> {
        match self.get_mut() {
            Self::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(Chunk::from(b))))),
            Self::Stream(s) => s.poll_next_unpin(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
            Self::Timed(inner, timer) => {
                timer.started.get_or_insert_with(Instant::now);
                Pin::new(inner.as_mut()).poll_frame(cx)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Timed(inner, _) => inner.is_end_stream(),
            other => matches!(other, Self::Full(None)),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Self::Full(None) => SizeHint::with_exact(0),
            Self::Stream(_) => SizeHint::default(),
            Self::Timed(inner, _) => inner.size_hint(),
        }
    }
}

pub type Response = http::Response<ResponseBody>;
