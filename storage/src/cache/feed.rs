//! Keeping a cache current: the feeder lists the prefix, then follows the store's watch
//! one revision at a time; it re-lists whenever the watch ends.
//!
//! With one shard the feeder decodes, applies and publishes each revision itself. With
//! several, it hands each event (numbered in store order) to the worker of the event's
//! shard, which decodes it and applies it to its shard in parallel with the others; the
//! sequencer takes the applied events back in number order and publishes each revision
//! once all of its events are in, so watchers get events in revision order and readers
//! never see part of a revision. Before a re-list the feeder waits for the pipeline to
//! drain, so no event of the old watch lands after the new listing. When the decoder
//! asks for it ([`Relist`]: a value that did not decode, for now), the feeder re-lists a
//! while later (1 s, doubling to 30 s while the requests go on), so a skipped change is
//! not lost for good.

use super::{CacheEntry, CacheEvent, DecodeFn, Relist, WatchCache, shard_index};
use crate::error::StorageError;
use crate::signal::Signal;
use crate::store::{Event, Revision, Store, Watch};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// The first wait before a re-list the decoder asked for; it doubles up to [`RELIST_MAX`]
/// while every re-list is asked for again.
const RELIST_MIN: Duration = Duration::from_secs(1);
const RELIST_MAX: Duration = Duration::from_secs(30);
/// How often a feeder whose decoder may ask for a re-list looks, between events.
const RELIST_POLL: Duration = Duration::from_secs(1);

/// One event on its way through the pipeline.
struct Job {
    seq: u64,
    event: Event,
    /// Set on the last event of a revision: the revision and how many store events the
    /// revision consumed.
    ends: Option<(Revision, u64)>,
}

/// One event back from a shard worker (None: the value could not be decoded).
struct Done<T> {
    seq: u64,
    event: Option<Arc<CacheEvent<T>>>,
    ends: Option<(Revision, u64)>,
}

/// Start the feeder (and with several shards the workers and the sequencer).
pub(super) fn start<T: Send + Sync + 'static>(
    cache: &Arc<WatchCache<T>>,
    store: Arc<dyn Store>,
    decode: DecodeFn<T>,
    relist: Option<Relist>,
) -> std::io::Result<()> {
    let name = format!("kapi-cache{}", cache.prefix.trim_end_matches('/').replace('/', "-"));
    let sequenced = Arc::new(Sequenced::default());
    let sink = if cache.shards.len() == 1 {
        Sink::Inline
    } else {
        Sink::Workers(spawn_pipeline(cache, &name, decode.clone(), sequenced.clone())?)
    };
    let weak = Arc::downgrade(cache);
    let feeder = Feeder {
        cache: weak,
        store,
        decode,
        sink,
        next_seq: 0,
        sequenced,
        relist,
        backoff: RELIST_MIN,
    };
    std::thread::Builder::new().name(name).spawn(move || feeder.run())?;
    Ok(())
}

/// Where the feeder sends a revision's events.
enum Sink {
    /// Decode, apply and publish on the feeder thread.
    Inline,
    /// One queue per shard worker.
    Workers(Vec<flume::Sender<Job>>),
}

struct Feeder<T> {
    cache: Weak<WatchCache<T>>,
    store: Arc<dyn Store>,
    decode: DecodeFn<T>,
    sink: Sink,
    /// The number of the next event sent down the pipeline.
    next_seq: u64,
    /// Events the sequencer has published (= `next_seq` when the pipeline is empty).
    sequenced: Arc<Sequenced>,
    /// Set by the decoder when a value did not decode for now (None: it never asks).
    relist: Option<Relist>,
    /// How long after such a request the feeder re-lists.
    backoff: Duration,
}

impl<T: Send + Sync + 'static> Feeder<T> {
    /// List, then apply the watch; re-list whenever the watch ends; stop when the store
    /// is closed or the cache is gone.
    fn run(mut self) {
        loop {
            let Some(prefix) = self.cache.upgrade().map(|c| c.prefix.clone()) else { return };
            let page = match futures_executor::block_on(self.store.range(&prefix, None, 0, None)) {
                Ok(p) => p,
                Err(StorageError::Closed) => return,
                Err(e) => {
                    tracing::warn!("watch cache {prefix}: listing failed: {e}");
                    std::thread::sleep(Duration::from_millis(200));
                    continue;
                }
            };
            let items = self.decode_all(&page.items);
            if !self.drained() {
                return;
            }
            // A listing some values of which did not decode (and will, later) is not a
            // complete one: reads go to the store until a re-list is.
            let listed_clean = !self.relist.as_ref().is_some_and(Relist::take);
            let Some(c) = self.cache.upgrade() else { return };
            c.reset(items, page.revision, listed_clean);
            drop(c);
            let watch = match self.store.watch(&prefix, page.revision) {
                Ok(w) => w,
                Err(StorageError::Closed) => return,
                Err(e) => {
                    tracing::warn!("watch cache {prefix}: watch failed: {e}");
                    continue;
                }
            };
            match self.cache.upgrade() {
                Some(c) => c.follow(watch.progress.clone()),
                None => return,
            }
            let mut reader = GroupReader {
                cache: self.cache.clone(),
                watch: &watch,
                pending: None,
                ended: false,
                taken: 0,
                relist: self.relist.clone(),
                backoff: self.backoff,
                relist_at: (!listed_clean).then(|| Instant::now() + self.backoff),
            };
            while let Some(group) = reader.next_group() {
                if !self.submit(group) {
                    return;
                }
            }
            self.backoff = match reader.relist_at {
                Some(_) if !listed_clean => (self.backoff * 2).min(RELIST_MAX),
                _ => RELIST_MIN,
            };
            tracing::debug!(
                "watch cache {prefix}: store watch ended or re-list asked for; re-listing"
            );
        }
    }

    fn decode_all(&self, kvs: &[crate::store::KeyValue]) -> Vec<Arc<CacheEntry<T>>> {
        let decode = &self.decode;
        kvs.iter()
            .filter_map(|kv| decode(kv).map(|data| Arc::new(CacheEntry { kv: kv.clone(), data })))
            .collect()
    }

    /// Wait until every event sent down the pipeline is published (woken by the
    /// sequencer, no polling); false when the pipeline is gone.
    fn drained(&self) -> bool {
        let done = || self.sequenced.seq.load(Ordering::Acquire) >= self.next_seq;
        let wait = self.sequenced.moved.wait_until(|| done() || self.cache.strong_count() == 0);
        futures_executor::block_on(wait);
        done()
    }

    /// Send one revision's events on; false when the cache is gone.
    fn submit(&mut self, group: Vec<Event>) -> bool {
        let revision = group.last().map_or(0, Event::revision);
        let consumed = group.len() as u64;
        match &self.sink {
            Sink::Inline => {
                let Some(c) = self.cache.upgrade() else { return false };
                let decode = &self.decode;
                let mut applied = Vec::with_capacity(group.len());
                for ev in group {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    applied.extend(apply(&c, decode, ev, seq));
                }
                c.publish(&applied, revision, consumed);
                self.sequenced.seq.store(self.next_seq, Ordering::Release);
                true
            }
            Sink::Workers(queues) => {
                let last = group.len() - 1;
                for (i, event) in group.into_iter().enumerate() {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    let shard = shard_index(&event.kv.key, queues.len());
                    let ends = (i == last).then_some((revision, consumed));
                    if queues[shard].send(Job { seq, event, ends }).is_err() {
                        return false;
                    }
                }
                true
            }
        }
    }
}

/// Decode one event (or take what its writer handed over) and apply it to its shard.
fn apply<T>(
    cache: &WatchCache<T>,
    decode: &DecodeFn<T>,
    event: Event,
    seq: u64,
) -> Option<Arc<CacheEvent<T>>> {
    let handed = cache.prepared.take(&event.kv).and_then(|make| make(&event.kv));
    if handed.is_some() {
        cache.stats.handed.fetch_add(1, Ordering::Relaxed);
    }
    let data = match handed {
        Some(data) => data,
        None => decode(&event.kv)?,
    };
    let shard = &cache.shards[cache.shard_of(&event.kv.key)];
    let entry = Arc::new(CacheEntry { kv: event.kv, data });
    Some(shard.write().apply(event.kind, entry, seq))
}

/// Start one worker per shard and the sequencer; returns the workers' queues.
fn spawn_pipeline<T: Send + Sync + 'static>(
    cache: &Arc<WatchCache<T>>,
    name: &str,
    decode: DecodeFn<T>,
    sequenced: Arc<Sequenced>,
) -> std::io::Result<Vec<flume::Sender<Job>>> {
    let (done_tx, done_rx) = flume::unbounded::<Done<T>>();
    let mut queues = Vec::with_capacity(cache.shards.len());
    for i in 0..cache.shards.len() {
        let (tx, rx) = flume::unbounded::<Job>();
        let (weak, decode, done) = (Arc::downgrade(cache), decode.clone(), done_tx.clone());
        std::thread::Builder::new()
            .name(format!("{name}-{i}"))
            .spawn(move || work(weak, decode, rx, done))?;
        queues.push(tx);
    }
    let weak = Arc::downgrade(cache);
    std::thread::Builder::new()
        .name(format!("{name}-seq"))
        .spawn(move || sequence(weak, done_rx, sequenced))?;
    Ok(queues)
}

/// A shard worker: decode and apply its shard's events, in the order they come.
fn work<T>(
    cache: Weak<WatchCache<T>>,
    decode: DecodeFn<T>,
    jobs: flume::Receiver<Job>,
    done: flume::Sender<Done<T>>,
) {
    for job in jobs.iter() {
        let Some(c) = cache.upgrade() else { return };
        let event = apply(&c, &decode, job.event, job.seq);
        drop(c);
        if done.send(Done { seq: job.seq, event, ends: job.ends }).is_err() {
            return;
        }
    }
}

/// How many pipeline events are published, and a signal when that moves or the
/// sequencer stops.
#[derive(Default)]
struct Sequenced {
    seq: AtomicU64,
    moved: Signal,
}

struct NotifyOnDrop(Arc<Sequenced>);

impl Drop for NotifyOnDrop {
    fn drop(&mut self) {
        self.0.moved.notify();
    }
}

/// The sequencer: put applied events back in store order and publish each revision
/// once all of its events are applied.
fn sequence<T>(
    cache: Weak<WatchCache<T>>,
    done: flume::Receiver<Done<T>>,
    sequenced: Arc<Sequenced>,
) {
    // However it ends, a feeder waiting for the pipeline to drain looks again.
    let _stopped = NotifyOnDrop(sequenced.clone());
    let mut next = 0u64;
    let mut waiting: BTreeMap<u64, Done<T>> = BTreeMap::new();
    let mut revision_events = Vec::new();
    for d in done.iter() {
        waiting.insert(d.seq, d);
        while let Some(d) = waiting.remove(&next) {
            next += 1;
            revision_events.extend(d.event);
            if let Some((revision, consumed)) = d.ends {
                let Some(c) = cache.upgrade() else { return };
                c.publish(&revision_events, revision, consumed);
                revision_events.clear();
                sequenced.seq.store(next, Ordering::Release);
                sequenced.moved.notify();
            }
        }
    }
}

/// Reads a store watch one revision at a time. Where one revision can carry several
/// events, the store counts all of them in `sent` before sending the first, so while
/// fewer than `sent` are taken, the rest of the revision is on its way and waiting for
/// it is safe.
struct GroupReader<'w, T> {
    /// Marked incomplete when the decoder asks for a re-list.
    cache: Weak<WatchCache<T>>,
    watch: &'w Watch,
    pending: Option<Event>,
    ended: bool,
    /// Events taken from the watch so far.
    taken: u64,
    /// The decoder's re-list requests, looked at between events and every
    /// [`RELIST_POLL`] (a shard worker may ask after the feeder handed its event on).
    relist: Option<Relist>,
    backoff: Duration,
    /// When to stop reading and re-list (the decoder asked for it).
    relist_at: Option<Instant>,
}

impl<T> GroupReader<'_, T> {
    fn next_group(&mut self) -> Option<Vec<Event>> {
        let first = match self.pending.take() {
            Some(ev) => ev,
            None => self.recv_first()?,
        };
        let mut group = vec![first];
        while self.watch.progress.shared_revisions && self.more_announced() {
            let Some(next) = self.recv() else { break };
            if next.revision() != group[0].revision() {
                self.pending = Some(next);
                break;
            }
            group.push(next);
        }
        Some(group)
    }

    /// Whether the store announced more events than taken so far.
    fn more_announced(&self) -> bool {
        self.taken < self.watch.progress.sent.load(Ordering::Acquire)
    }

    /// The next event of the watch.
    fn recv(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        let received = self.watch.events.recv().map_err(drop);
        self.take(received)
    }

    /// The first event of the next revision; None once the watch ended or a re-list the
    /// decoder asked for is due (so a revision is never cut short by a re-list).
    fn recv_first(&mut self) -> Option<Event> {
        let Some(relist) = self.relist.clone() else { return self.recv() };
        while !self.ended {
            let now = Instant::now();
            if self.relist_at.is_none() && relist.take() {
                self.relist_at = Some(now + self.backoff);
                // A change was skipped: what the cache holds is no longer complete.
                if let Some(c) = self.cache.upgrade() {
                    c.mark_incomplete();
                }
            }
            if self.relist_at.is_some_and(|at| now >= at) {
                self.ended = true;
                return None;
            }
            let until = self.relist_at.unwrap_or(now + RELIST_POLL);
            match self.watch.events.recv_deadline(until) {
                Err(flume::RecvTimeoutError::Timeout) => continue,
                received => return self.take(received.map_err(drop)),
            }
        }
        None
    }

    /// Count an event taken from the watch, or mark the watch ended.
    fn take(&mut self, received: Result<Result<Event, StorageError>, ()>) -> Option<Event> {
        if self.ended {
            return None;
        }
        match received {
            Ok(Ok(ev)) => {
                self.taken += 1;
                Some(ev)
            }
            _ => {
                self.ended = true;
                None
            }
        }
    }
}
