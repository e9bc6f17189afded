//! A core's fan-out hub for one cache: one subscription to the cache (a lock-free
//! [`EventQueue`] the publisher pushes each event into once), and the watchers of that
//! core in the shared watcher [`Index`] (key prefix, namespace, index value), each with
//! a bounded local buffer. An event crosses threads once per core, however many watchers
//! the core serves; handing it to them is thread-local (no atomics, no locks).
//!
//! Invariants: the hub is used from one thread only (`!Send`); a watcher gets exactly
//! the events newer than its start revision that its filter wants, in order; a watcher
//! is closed by the shared [`SlowPolicy`] (its buffer full past the grace period, or at
//! twice its capacity), the events it had not taken dropped (its client resumes or
//! re-lists), and never delays the others; when the queue closes (the core fell behind,
//! or the cache re-listed) every watcher of the hub is closed. A closed watcher keeps the
//! reason ([`HubWatch::closed_reason`]). A hub left without watchers unsubscribes at its
//! next event.

use super::queue::EventQueue;
use super::{CacheEntry, CacheEvent, Start, WatchCache, WatchFilter};
use crate::error::StorageError;
use crate::store::Revision;
use crate::watchers::{CloseReason, Fullness, Index, Offer, SlowPolicy};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};

pub struct Hub<T> {
    cache: Arc<WatchCache<T>>,
    queue: Arc<EventQueue<T>>,
    subscription: u64,
    locals: RefCell<Locals<T>>,
    closed: Cell<bool>,
}

/// One watcher on this core.
struct Local<T> {
    id: u64,
    filter: WatchFilter,
    /// Events up to this revision reached the watcher in its start point.
    from: Revision,
    buffer: RefCell<VecDeque<Arc<CacheEvent<T>>>>,
    policy: SlowPolicy,
    full: Fullness,
    waker: RefCell<Option<Waker>>,
    closed: Cell<Option<CloseReason>>,
}

impl<T> crate::watchers::Watcher for Rc<Local<T>> {
    fn id(&self) -> u64 {
        self.id
    }
    fn filter(&self) -> &WatchFilter {
        &self.filter
    }
}

impl<T> Local<T> {
    /// Queue `event` unless it is older than the start, or say why the watcher is closed.
    fn offer(&self, event: &Arc<CacheEvent<T>>) -> Offer {
        if event.revision <= self.from {
            return Ok(());
        }
        let mut buffer = self.buffer.borrow_mut();
        self.policy.admit(buffer.len(), &self.full)?;
        buffer.push_back(event.clone());
        drop(buffer);
        self.wake();
        Ok(())
    }

    /// Closed by the hub: too slow (what it had not taken dropped, so it pins no more
    /// events; it resumes or re-lists) or the hub ended (it gets what was buffered).
    /// Out of line, so that `offer`, the fan-out's hot path, stays small.
    #[cold]
    #[inline(never)]
    fn close(&self, reason: CloseReason) {
        if reason == CloseReason::TooSlow {
            *self.buffer.borrow_mut() = VecDeque::new();
        }
        if self.closed.get().is_none() {
            self.closed.set(Some(reason));
        }
        self.wake();
    }

    fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

struct Locals<T> {
    next_id: u64,
    index: Index<Rc<Local<T>>>,
}

/// A watch served by a hub. Dropping it removes the watcher.
pub struct HubWatch<T> {
    /// The cache contents at `revision` (for `Start::Now`).
    pub initial: Vec<Arc<CacheEntry<T>>>,
    /// Events from the window after the requested revision (for `Start::After`).
    pub replay: Vec<Arc<CacheEvent<T>>>,
    /// The revision `initial`/`replay` bring the watcher to.
    pub revision: Revision,
    local: Rc<Local<T>>,
    hub: Rc<Hub<T>>,
}

impl<T> HubWatch<T> {
    /// The next live event; `Ready(None)` once the watcher is closed and its buffer
    /// drained (a watcher closed for being too slow has none left; one closed because
    /// the hub ended gets what was buffered first).
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Arc<CacheEvent<T>>>> {
        if let Some(e) = self.local.buffer.borrow_mut().pop_front() {
            return Poll::Ready(Some(e));
        }
        if self.local.closed.get().is_some() {
            return Poll::Ready(None);
        }
        *self.local.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }

    /// The next live event; None once the watcher is closed.
    pub async fn next(&self) -> Option<Arc<CacheEvent<T>>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Whether no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.local.buffer.borrow().is_empty()
    }

    /// Why the watcher was closed, once it is.
    pub fn closed_reason(&self) -> Option<CloseReason> {
        self.local.closed.get()
    }
}

impl<T> Drop for HubWatch<T> {
    fn drop(&mut self) {
        self.hub.forget(self.local.id);
    }
}

impl<T> Hub<T> {
    /// Subscribe a new hub to `cache`, with a queue of `capacity` events. Run it with
    /// [`Hub::run`] on the thread that will use it.
    pub fn new(cache: Arc<WatchCache<T>>, capacity: usize) -> Rc<Self> {
        let queue = EventQueue::new(capacity);
        let subscription = cache.subscribe(queue.clone());
        Rc::new(Hub {
            cache,
            queue,
            subscription,
            locals: RefCell::new(Locals { next_id: 0, index: Index::default() }),
            closed: Cell::new(false),
        })
    }

    /// Whether the hub ended (a new one must serve new watches).
    pub fn is_closed(&self) -> bool {
        self.closed.get() || self.queue.is_closed()
    }

    /// Remove a watcher (its client went away, or it fell behind).
    fn forget(&self, id: u64) {
        if self.locals.borrow_mut().index.remove(id).is_some() {
            self.cache.hub_watchers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Watchers on this hub.
    pub fn len(&self) -> usize {
        self.locals.borrow().index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Start a watch on this core. A revision older than the window is `Compacted`.
    pub fn watch(
        self: &Rc<Self>,
        start: Start,
        filter: WatchFilter,
    ) -> Result<HubWatch<T>, StorageError> {
        let (initial, replay, revision) = self.cache.start_point(start, &filter)?;
        let mut locals = self.locals.borrow_mut();
        locals.next_id += 1;
        let local = Rc::new(Local {
            id: locals.next_id,
            filter,
            from: revision,
            buffer: RefCell::new(VecDeque::new()),
            policy: SlowPolicy::new(self.cache.watcher_buffer()),
            full: Fullness::default(),
            waker: RefCell::new(None),
            closed: Cell::new(self.is_closed().then_some(CloseReason::Ended)),
        });
        locals.index.add(local.clone());
        drop(locals);
        self.cache.hub_watchers.fetch_add(1, Ordering::Relaxed);
        Ok(HubWatch { initial, replay, revision, local, hub: self.clone() })
    }

    /// Hand queued events to the watchers until the queue ends or no watcher is left;
    /// then unsubscribe and close every watcher.
    pub async fn run(self: Rc<Self>) {
        while let Some(event) = std::future::poll_fn(|cx| self.queue.poll_next(cx)).await {
            self.deliver(&event);
            while let Some(event) = self.queue.try_pop() {
                self.deliver(&event);
            }
            if self.is_empty() {
                break;
            }
        }
        self.closed.set(true);
        self.cache.unsubscribe(self.subscription);
        let closed = self.locals.borrow_mut().index.drain();
        for w in &closed {
            w.close(CloseReason::Ended);
        }
        self.cache.hub_watchers.fetch_sub(closed.len(), Ordering::Relaxed);
    }

    /// Give `event` to every watcher whose prefix or index value it falls under.
    fn deliver(&self, event: &Arc<CacheEvent<T>>) {
        let (prefixes, indexes) = self.cache.routes(event);
        let indexes: Vec<&str> = indexes.iter().map(String::as_str).collect();
        let key = event.cur.kv.key.as_str();
        let mut closed = 0;
        self.locals.borrow_mut().index.deliver(
            key,
            &prefixes,
            &indexes,
            |w| w.offer(event),
            |w, reason| {
                w.close(reason);
                closed += 1;
            },
        );
        if closed > 0 {
            self.cache.hub_watchers.fetch_sub(closed, Ordering::Relaxed);
        }
    }
}
