//! Watchers of one cache, indexed so an event reaches only the watchers that may want it:
//! by key prefix (the whole resource, or one namespace) and optionally by an index value
//! (pods by `spec.nodeName`). Each watcher has a bounded queue; one that is full when an
//! event arrives is dropped (its stream ends, the client re-lists), so a slow watcher
//! never blocks the others or grows memory.
//!
//! A watcher is either one client's channel, or a core's [`EventQueue`] through which a
//! fan-out hub serves all watchers of the resource on that core (it is registered for
//! the whole prefix and filters locally).

use super::CacheEvent;
use super::queue::EventQueue;
use std::collections::HashMap;
use std::sync::Arc;

/// Which events a watcher wants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct WatchFilter {
    /// Key prefix: the resource prefix, or one namespace's (`/registry/pods/ns/`); with
    /// `exact`, one object's key.
    pub prefix: String,
    /// `prefix` is one object's key (a watch of one name): only that key.
    pub exact: bool,
    /// Only events whose object (now or before) has this index value.
    pub index: Option<String>,
}

impl WatchFilter {
    /// Whether events of `key` are for this watcher (its index aside).
    pub fn wants_key(&self, key: &str) -> bool {
        if self.exact { key == self.prefix } else { key.starts_with(&self.prefix) }
    }
}

/// Where a watcher's events go.
pub enum Sink<T> {
    /// One client's bounded channel.
    Channel(flume::Sender<Arc<CacheEvent<T>>>),
    /// A core's hub queue.
    Queue(Arc<EventQueue<T>>),
}

impl<T> Sink<T> {
    /// Hand `event` over; false when the receiver is full or gone.
    fn offer(&self, event: &Arc<CacheEvent<T>>) -> bool {
        match self {
            Sink::Channel(tx) => tx.try_send(event.clone()).is_ok(),
            Sink::Queue(q) => q.push(event.clone()),
        }
    }

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
}

impl<T> Drop for Watcher<T> {
    fn drop(&mut self) {
        self.sink.close();
    }
}

pub struct Dispatch<T> {
    next_id: u64,
    /// Watchers without an index filter, by prefix.
    by_prefix: HashMap<String, Vec<Watcher<T>>>,
    /// Watchers with an index filter, by index value.
    by_index: HashMap<String, Vec<Watcher<T>>>,
    count: usize,
}

impl<T> Default for Dispatch<T> {
    fn default() -> Self {
        Dispatch { next_id: 0, by_prefix: HashMap::new(), by_index: HashMap::new(), count: 0 }
    }
}

impl<T> Dispatch<T> {
    pub fn add(&mut self, filter: WatchFilter, sink: Sink<T>) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let bucket = match &filter.index {
            Some(v) => self.by_index.entry(v.clone()).or_default(),
            None => self.by_prefix.entry(filter.prefix.clone()).or_default(),
        };
        bucket.push(Watcher { id, filter, sink });
        self.count += 1;
        id
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Watchers that are one client's channel (not a hub's queue).
    pub fn channels(&self) -> usize {
        let all = self.by_prefix.values().chain(self.by_index.values()).flatten();
        all.filter(|w| matches!(w.sink, Sink::Channel(_))).count()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// End every watch (their receivers see the channel close).
    pub fn clear(&mut self) {
        self.by_prefix.clear();
        self.by_index.clear();
        self.count = 0;
    }

    /// Deliver `event` to interested watchers. `prefixes` are the key prefixes that
    /// contain the event's key (resource and namespace); `indexes` the index values of
    /// the object now and before.
    pub fn deliver(&mut self, event: &Arc<CacheEvent<T>>, prefixes: &[&str], indexes: &[&str]) {
        let key = event.cur.kv.key.as_str();
        let mut dropped = 0;
        for p in prefixes {
            if let Some(ws) = self.by_prefix.get_mut(*p) {
                dropped += send_all(ws, event, |_| true);
            }
        }
        let mut seen_index: Vec<&str> = Vec::with_capacity(2);
        for v in indexes {
            if seen_index.contains(v) {
                continue;
            }
            seen_index.push(v);
            if let Some(ws) = self.by_index.get_mut(*v) {
                dropped += send_all(ws, event, |w| w.filter.wants_key(key));
            }
        }
        self.count -= dropped;
        self.by_prefix.retain(|_, ws| !ws.is_empty());
        self.by_index.retain(|_, ws| !ws.is_empty());
    }

    /// Remove a watcher (its client went away).
    pub fn remove(&mut self, id: u64) {
        for ws in self.by_prefix.values_mut().chain(self.by_index.values_mut()) {
            let before = ws.len();
            ws.retain(|w| w.id != id);
            self.count -= before - ws.len();
        }
    }
}

/// Send to each watcher that `wants` the event; drop those that are full or gone.
/// Returns how many were dropped.
fn send_all<T>(
    ws: &mut Vec<Watcher<T>>,
    event: &Arc<CacheEvent<T>>,
    wants: impl Fn(&Watcher<T>) -> bool,
) -> usize {
    let before = ws.len();
    ws.retain(|w| !wants(w) || w.sink.offer(event));
    before - ws.len()
}
