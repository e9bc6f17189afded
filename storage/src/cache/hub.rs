//! A core's fan-out hub for one cache: one subscription to the cache (a lock-free
//! [`EventQueue`] the publisher pushes each event into once), and the watchers of that
//! core, indexed by key prefix and index value as the cache's own dispatch is, each with
//! a bounded local buffer. An event crosses threads once per core, however many watchers
//! the core serves; handing it to them is thread-local (no atomics, no locks).
//!
//! Invariants: the hub is used from one thread only (`!Send`); a watcher gets exactly
//! the events newer than its start revision that its filter wants, in order; a watcher
//! whose buffer is full is closed at once, the events it had not taken dropped (its
//! client resumes or re-lists), and never delays the others; when the queue closes (the core fell behind, or the cache re-listed) every
//! watcher of the hub is closed. A hub left without watchers unsubscribes at its next
//! event.

use super::queue::EventQueue;
use super::{CacheEntry, CacheEvent, Start, WatchCache, WatchFilter};
use crate::error::StorageError;
use crate::store::Revision;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
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
    capacity: usize,
    waker: RefCell<Option<Waker>>,
    closed: Cell<bool>,
}

impl<T> Local<T> {
    /// Queue `event` unless it is older than the start; false when the watcher is full
    /// (it is closed then).
    fn offer(&self, event: &Arc<CacheEvent<T>>) -> bool {
        if event.revision <= self.from {
            return true;
        }
        let mut buffer = self.buffer.borrow_mut();
        if buffer.len() >= self.capacity {
            drop(buffer);
            self.overflow();
            return false;
        }
        buffer.push_back(event.clone());
        self.wake();
        true
    }

    /// Too slow: ended now, what it had not taken dropped (it resumes or re-lists), so it
    /// pins no more events. Out of line, so that `offer`, the fan-out's hot path, stays
    /// small.
    #[cold]
    #[inline(never)]
    fn overflow(&self) {
        *self.buffer.borrow_mut() = VecDeque::new();
        self.close();
    }

    fn close(&self) {
        self.closed.set(true);
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
    by_prefix: HashMap<String, Vec<Rc<Local<T>>>>,
    by_index: HashMap<String, Vec<Rc<Local<T>>>>,
    count: usize,
}

impl<T> Locals<T> {
    fn add(&mut self, local: Rc<Local<T>>) {
        let bucket = match &local.filter.index {
            Some(v) => self.by_index.entry(v.clone()).or_default(),
            None => self.by_prefix.entry(local.filter.prefix.clone()).or_default(),
        };
        bucket.push(local);
        self.count += 1;
    }

    /// Remove a watcher; returns how many were removed (0 or 1).
    fn remove(&mut self, id: u64) -> usize {
        let mut removed = 0;
        for ws in self.by_prefix.values_mut().chain(self.by_index.values_mut()) {
            let before = ws.len();
            ws.retain(|w| w.id != id);
            removed += before - ws.len();
        }
        self.count -= removed;
        self.by_prefix.retain(|_, ws| !ws.is_empty());
        self.by_index.retain(|_, ws| !ws.is_empty());
        removed
    }

    /// Close and remove every watcher; returns how many there were.
    fn close_all(&mut self) -> usize {
        for w in self.by_prefix.values().chain(self.by_index.values()).flatten() {
            w.close();
        }
        self.by_prefix.clear();
        self.by_index.clear();
        std::mem::take(&mut self.count)
    }
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
        if self.local.closed.get() {
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
            locals: RefCell::new(Locals {
                next_id: 0,
                by_prefix: HashMap::new(),
                by_index: HashMap::new(),
                count: 0,
            }),
            closed: Cell::new(false),
        })
    }

    /// Whether the hub ended (a new one must serve new watches).
    pub fn is_closed(&self) -> bool {
        self.closed.get() || self.queue.is_closed()
    }

    /// Remove a watcher (its client went away, or it fell behind).
    fn forget(&self, id: u64) {
        let removed = self.locals.borrow_mut().remove(id);
        self.cache.hub_watchers.fetch_sub(removed, Ordering::Relaxed);
    }

    /// Watchers on this hub.
    pub fn len(&self) -> usize {
        self.locals.borrow().count
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
            capacity: self.cache.watcher_buffer(),
            waker: RefCell::new(None),
            closed: Cell::new(self.is_closed()),
        });
        locals.add(local.clone());
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
        let closed = self.locals.borrow_mut().close_all();
        self.cache.hub_watchers.fetch_sub(closed, Ordering::Relaxed);
    }

    /// Give `event` to every watcher whose prefix or index value it falls under.
    fn deliver(&self, event: &Arc<CacheEvent<T>>) {
        let (prefixes, indexes) = self.cache.routes(event);
        let key = event.cur.kv.key.as_str();
        let locals = self.locals.borrow_mut();
        let mut dropped = Vec::new();
        for p in prefixes {
            if let Some(ws) = locals.by_prefix.get(p) {
                dropped.extend(ws.iter().filter(|w| !w.offer(event)).map(|w| w.id));
            }
        }
        let mut seen: Vec<&str> = Vec::with_capacity(2);
        for v in &indexes {
            if seen.contains(&v.as_str()) {
                continue;
            }
            seen.push(v);
            if let Some(ws) = locals.by_index.get(v) {
                let wanted = ws.iter().filter(|w| w.filter.wants_key(key));
                dropped.extend(wanted.filter(|w| !w.offer(event)).map(|w| w.id));
            }
        }
        drop(locals);
        for id in dropped {
            self.forget(id);
        }
    }
}
