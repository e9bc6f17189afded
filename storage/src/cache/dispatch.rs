//! Watchers of one cache: client channels and the queues of the cores' fan-out hubs, in
//! the shared watcher [`Index`] (by key prefix, namespace and index value), so an event
//! reaches only the watchers that may want it. Each client channel is bounded and closed
//! by the shared [`SlowPolicy`] (full past the grace period, or at twice the capacity),
//! so a slow watcher never blocks the others or grows memory; its client re-lists.
//!
//! A hub's queue is registered for the whole prefix (the hub filters locally) and is
//! bounded by itself: a full queue closes itself and its hub ends its watchers.

use super::CacheEvent;
use super::queue::EventQueue;
pub use crate::watchers::WatchFilter;
use crate::watchers::{CloseReason, Fullness, Index, Offer, SlowPolicy};
use std::sync::Arc;

/// Where a watcher's events go.
pub enum Sink<T> {
    /// One client's channel, bounded by the policy's hard bound.
    Channel(flume::Sender<Arc<CacheEvent<T>>>),
    /// A core's hub queue.
    Queue(Arc<EventQueue<T>>),
}

impl<T> Sink<T> {
    /// Tell the receiver its watch ended (channels see it when dropped).
    fn close(&self) {
        if let Sink::Queue(q) = self {
            q.close();
        }
    }
}

struct Watcher<T> {
    id: u64,
    filter: WatchFilter,
    sink: Sink<T>,
    full: Fullness,
}

impl<T> Watcher<T> {
    /// Hand `event` over, or say why the watcher is closed.
    fn offer(&self, event: &Arc<CacheEvent<T>>, policy: &SlowPolicy) -> Offer {
        match &self.sink {
            Sink::Channel(tx) => {
                policy.admit(tx.len(), &self.full)?;
                tx.try_send(event.clone()).map_err(|e| match e {
                    flume::TrySendError::Full(_) => CloseReason::TooSlow,
                    flume::TrySendError::Disconnected(_) => CloseReason::Gone,
                })
            }
            Sink::Queue(q) => q.push(event.clone()).then_some(()).ok_or(CloseReason::TooSlow),
        }
    }
}

impl<T> crate::watchers::Watcher for Watcher<T> {
    fn id(&self) -> u64 {
        self.id
    }
    fn filter(&self) -> &WatchFilter {
        &self.filter
    }
}

impl<T> Drop for Watcher<T> {
    fn drop(&mut self) {
        self.sink.close();
    }
}

pub struct Dispatch<T> {
    next_id: u64,
    watchers: Index<Watcher<T>>,
    policy: SlowPolicy,
}

impl<T> Dispatch<T> {
    /// Client channels hold `buffer` events normally (`SlowPolicy`).
    pub fn new(buffer: usize) -> Self {
        Dispatch { next_id: 0, watchers: Index::default(), policy: SlowPolicy::new(buffer) }
    }

    /// The bound of a client channel.
    pub fn channel_bound(&self) -> usize {
        self.policy.hard_bound()
    }

    pub fn add(&mut self, filter: WatchFilter, sink: Sink<T>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.watchers.add(Watcher { id, filter, sink, full: Fullness::default() });
        id
    }

    pub fn len(&self) -> usize {
        self.watchers.len()
    }

    /// Watchers that are one client's channel (not a hub's queue).
    pub fn channels(&self) -> usize {
        self.watchers.iter().filter(|w| matches!(w.sink, Sink::Channel(_))).count()
    }

    pub fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }

    /// End every watch (their receivers see the channel close).
    pub fn clear(&mut self) {
        drop(self.watchers.drain());
    }

    /// Deliver `event` to interested watchers. `prefixes` are the key prefixes that
    /// contain the event's key (resource, namespace, the key); `indexes` the index values
    /// of the object now and before.
    pub fn deliver(&mut self, event: &Arc<CacheEvent<T>>, prefixes: &[&str], indexes: &[&str]) {
        let key = event.cur.kv.key.as_str();
        let policy = self.policy;
        self.watchers.deliver(key, prefixes, indexes, |w| w.offer(event, &policy), |_, _| {});
    }

    /// Remove a watcher (its client went away).
    pub fn remove(&mut self, id: u64) {
        self.watchers.remove(id);
    }
}
