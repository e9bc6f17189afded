//! Periodic store compaction, as upstream's compactor: every
//! `--compaction-interval-seconds`, compact the store to the revision recorded at the
//! previous tick. History (and the store's event log) therefore stays bounded to one or
//! two intervals; reads of older revisions (stale continue tokens, watches from an old
//! resourceVersion that the watch cache no longer holds) get 410 Gone.

use kapi_storage::{Revision, Store};
use std::time::{Duration, Instant};

pub struct Compactor {
    interval: Duration,
    next_at: Instant,
    recorded: Option<Revision>,
}

impl Compactor {
    /// A compactor ticking every `interval`; zero disables it.
    pub fn new(interval: Duration) -> Self {
        Compactor { interval, next_at: Instant::now() + interval, recorded: None }
    }

    /// Compact when an interval has passed; cheap otherwise.
    pub fn tick(&mut self, store: &dyn Store, now: Instant) {
        if self.interval.is_zero() || now < self.next_at {
            return;
        }
        self.next_at = now + self.interval;
        if let Some(rev) = self.recorded.take()
            && rev > store.compacted_revision()
        {
            match futures_executor::block_on(store.compact(rev)) {
                Ok(()) => tracing::debug!("compacted the store to revision {rev}"),
                Err(e) => tracing::warn!("compacting to revision {rev}: {e}"),
            }
        }
        self.recorded = Some(store.current_revision());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kapi_storage::embedded::{EmbeddedOptions, EmbeddedStore};

    #[test]
    fn compacts_to_the_revision_seen_one_interval_earlier() {
        let dir = tempfile::tempdir().unwrap();
        let opts = EmbeddedOptions { fsync: false, ..Default::default() };
        let store = EmbeddedStore::open(dir.path(), opts).unwrap();
        let put = |k: &str| futures_executor::block_on(store.create(k, "v".into())).unwrap();
        let mut c = Compactor::new(Duration::from_secs(300));
        let t0 = Instant::now();
        put("/a");
        c.tick(store.as_ref(), t0);
        assert_eq!(store.compacted_revision(), 0, "nothing before the first interval");
        c.tick(store.as_ref(), t0 + Duration::from_secs(301));
        let recorded = store.current_revision();
        put("/b");
        put("/c");
        assert!(store.compacted_revision() < recorded);
        c.tick(store.as_ref(), t0 + Duration::from_secs(602));
        assert_eq!(
            store.compacted_revision(),
            recorded,
            "compacted to the previous tick's revision"
        );
        let mut off = Compactor::new(Duration::ZERO);
        off.tick(store.as_ref(), t0 + Duration::from_secs(10_000));
        assert_eq!(store.compacted_revision(), recorded);
    }
}
