//! One etcd watch per `Store::watch`, with previous values, resumed after connection
//! loss and reporting progress.
//!
//! Invariants: events reach the channel in revision order, exactly once: after a lost
//! stream the watch resumes at the revision after the last event sent; if etcd has
//! compacted that revision meanwhile, the watch ends with `Compacted` (the watch cache
//! re-lists, its clients get 410 as upstream). The events of one response (whole
//! revisions) are counted in `sent` before the first is sent (`shared_revisions`), and
//! `progress.revision` rises after the last, on etcd's periodic progress notifications,
//! and, when a consistent read waits ([`WatchProgress::request`]), once two reads show
//! that nothing under the prefix changed since the last event sent.

use super::Shared;
use super::bridge::Bridge;
use super::read::{key_value, prefix_end};
use crate::error::StorageError;
use crate::store::{Event, EventKind, KeyValue, Revision, Watch, WatchProgress};
use etcd_client::WatchOptions;
use etcd_client::proto::PbWatchResponse;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

type Sender = flume::Sender<Result<Event, StorageError>>;

/// Start watching `prefix` after `from` (0 = from now).
pub fn start(bridge: &Bridge, shared: Arc<Shared>, prefix: &str, from: Revision) -> Watch {
    let (tx, rx) = flume::unbounded();
    let base = if from == 0 { shared.current.load(Ordering::Acquire) } else { from };
    let progress = Arc::new(WatchProgress::with_shared_revisions(base));
    let task = Task { shared, prefix: prefix.to_string(), tx, progress: progress.clone(), from };
    bridge.spawn(task.run());
    Watch { events: rx, progress }
}

struct Task {
    shared: Arc<Shared>,
    prefix: String,
    tx: Sender,
    progress: Arc<WatchProgress>,
    /// Every event after this revision has been sent (0: from whenever the watch starts).
    from: Revision,
}

/// What one watch response means for the loop.
enum Step {
    Go,
    Reconnect,
    End(StorageError),
}

impl Task {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(50);
        loop {
            if self.tx.is_disconnected() {
                return;
            }
            match self.stream().await {
                Ok(Some(err)) => {
                    let _ = self.tx.send(Err(err));
                    return;
                }
                Ok(None) => backoff = Duration::from_millis(50),
                Err(e) => {
                    tracing::debug!("etcd watch {}: {e}; retrying", self.prefix);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// One watch stream until it breaks (`Ok(None)`: reconnect) or must end.
    async fn stream(&mut self) -> Result<Option<StorageError>, etcd_client::Error> {
        let mut opts = WatchOptions::new()
            .with_range(prefix_end(&self.prefix))
            .with_prev_key()
            .with_progress_notify();
        if self.from > 0 {
            opts = opts.with_start_revision(self.from as i64 + 1);
        }
        let mut client = self.shared.watch.clone();
        let (_requests, mut responses) =
            client.watch(self.prefix.as_str(), Some(opts)).await?.split();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let progress = self.progress.clone();
        loop {
            tokio::select! {
                msg = responses.message() => {
                    let Ok(Some(resp)) = msg else { return Ok(None) };
                    match self.handle(resp.0) {
                        Step::Go => {}
                        Step::Reconnect => return Ok(None),
                        Step::End(e) => return Ok(Some(e)),
                    }
                }
                _ = progress.requested() => {
                    if let Some(now) = self.quiet_until().await {
                        self.progress.advance(now);
                    }
                }
                _ = tick.tick() => {
                    if self.tx.is_disconnected() {
                        return Ok(Some(StorageError::Closed));
                    }
                }
            }
        }
    }

    fn handle(&mut self, mut resp: PbWatchResponse) -> Step {
        let header_rev = resp.header.as_ref().map(|h| h.revision.max(0) as Revision).unwrap_or(0);
        self.shared.current.fetch_max(header_rev, Ordering::AcqRel);
        if resp.canceled {
            return self.canceled(&resp);
        }
        if resp.created {
            if self.from == 0 {
                // From now: nothing before the creation revision is owed.
                self.from = header_rev;
                self.progress.advance(header_rev);
            }
            return Step::Go;
        }
        let events = std::mem::take(&mut resp.events);
        if events.is_empty() {
            // A progress notification: every event up to the header was sent.
            self.progress.advance(header_rev);
            return Step::Go;
        }
        self.send(events)
    }

    /// The store's current revision when nothing under the prefix changed after the last
    /// event sent: no live key was modified since, and there are as many keys as then (a
    /// delete shows in the count; a key created and deleted again changes nothing). None
    /// when something may have changed (its events are on their way) or etcd cannot say.
    ///
    /// Progress is proven by reading instead of asking etcd for a progress notification:
    /// etcd 3.4 before 3.4.24 (Debian's is 3.4.23) answers a progress request out of band
    /// with its current revision, possibly ahead of events still queued for the watch
    /// (etcd issue 15220), which let a consistent read miss a write.
    async fn quiet_until(&self) -> Option<Revision> {
        use etcd_client::{GetOptions, SortOrder, SortTarget};
        if self.from == 0 {
            return None;
        }
        let mut kv = self.shared.kv.clone();
        let end = prefix_end(&self.prefix);
        let newest = GetOptions::new()
            .with_range(end.clone())
            .with_sort(SortTarget::Mod, SortOrder::Descend)
            .with_limit(1)
            .with_keys_only();
        let now = kv.get(self.prefix.as_str(), Some(newest)).await.ok()?;
        let revision = now.header()?.revision().max(0) as Revision;
        if now.kvs().first().is_some_and(|kv| kv.mod_revision().max(0) as Revision > self.from) {
            return None;
        }
        let then =
            GetOptions::new().with_range(end).with_count_only().with_revision(self.from as i64);
        let then = kv.get(self.prefix.as_str(), Some(then)).await.ok()?;
        (then.count() == now.count()).then_some(revision)
    }

    fn canceled(&self, resp: &PbWatchResponse) -> Step {
        if resp.compact_revision > 0 {
            let compacted = resp.compact_revision as Revision;
            self.shared.compacted.fetch_max(compacted, Ordering::AcqRel);
            return Step::End(StorageError::Compacted { requested: self.from, compacted });
        }
        tracing::debug!("etcd watch {} canceled: {}", self.prefix, resp.cancel_reason);
        Step::Reconnect
    }

    fn send(&mut self, events: Vec<etcd_client::proto::PbEvent>) -> Step {
        let n = events.len();
        if self.tx.len() + n > self.shared.opts.watch_buffer {
            return Step::End(StorageError::WatcherTooSlow);
        }
        self.progress.sent.fetch_add(n as u64, Ordering::AcqRel);
        let mut last = self.from;
        for ev in events {
            let ev = event(ev);
            last = ev.revision();
            if self.tx.send(Ok(ev)).is_err() {
                return Step::End(StorageError::Closed);
            }
        }
        self.from = last;
        self.progress.advance(last);
        Step::Go
    }
}

/// An etcd event as the store's. A delete carries the deleted value and its revision.
fn event(ev: etcd_client::proto::PbEvent) -> Event {
    let prev = ev.prev_kv.map(key_value);
    let kv = ev.kv.map(key_value).unwrap_or_else(|| KeyValue {
        key: String::new(),
        value: Default::default(),
        create_revision: 0,
        mod_revision: 0,
    });
    if ev.r#type == 1 {
        let deleted = KeyValue {
            value: prev.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
            create_revision: prev.as_ref().map(|p| p.create_revision).unwrap_or(0),
            ..kv
        };
        return Event { kind: EventKind::Delete, kv: deleted, prev };
    }
    Event { kind: EventKind::Put, kv, prev }
}
