//! A bounded lock-free queue of cache events from the cache's publisher to one consumer
//! on another thread (a core's fan-out hub): one push per event per core, whatever the
//! number of watchers there.
//!
//! Invariants: a push never blocks; a full queue closes itself (its consumer fell behind
//! and must end its watchers, which resume or re-list); once closed, nothing more is
//! queued, and the consumer sees the end after taking what was queued before. Memory
//! grows with what is queued, not with the bound (a core may hold one queue per watched
//! resource).

use super::CacheEvent;
use crossbeam_queue::SegQueue;
use futures_util::task::AtomicWaker;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

pub struct EventQueue<T> {
    ring: SegQueue<Arc<CacheEvent<T>>>,
    /// Events queued and not taken yet.
    queued: AtomicUsize,
    capacity: usize,
    waker: AtomicWaker,
    closed: AtomicBool,
}

impl<T> EventQueue<T> {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(EventQueue {
            ring: SegQueue::new(),
            queued: AtomicUsize::new(0),
            capacity: capacity.max(1),
            waker: AtomicWaker::new(),
            closed: AtomicBool::new(false),
        })
    }

    /// Queue `event` and wake the consumer; false (and the queue closes) when it is full
    /// or already closed.
    pub fn push(&self, event: Arc<CacheEvent<T>>) -> bool {
        if self.is_closed() {
            return false;
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.close();
            return false;
        }
        self.ring.push(event);
        self.waker.wake();
        true
    }

    /// End the queue: the consumer takes what is queued, then sees the end.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.waker.wake();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// The next event; `Ready(None)` once the queue is closed and drained.
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Arc<CacheEvent<T>>>> {
        if let Some(e) = self.try_pop() {
            return Poll::Ready(Some(e));
        }
        self.waker.register(cx.waker());
        if let Some(e) = self.try_pop() {
            return Poll::Ready(Some(e));
        }
        if self.is_closed() {
            return Poll::Ready(self.try_pop());
        }
        Poll::Pending
    }

    /// The next event without waiting.
    pub fn try_pop(&self) -> Option<Arc<CacheEvent<T>>> {
        let e = self.ring.pop()?;
        self.queued.fetch_sub(1, Ordering::AcqRel);
        Some(e)
    }
}
