//! What writers hand the cache: a writer about to store a value at a key leaves with the
//! cache what it already made of the object (its encodings, its selector values), so
//! the feeder takes that instead of decoding the value again when the write's event
//! comes (encode-once, issue #20).
//!
//! An event takes a hand-off left for its key whose value is byte for byte the event's
//! value. The hand-off's maker is the engine's promise that it gives, for those bytes and
//! the event's revision, exactly what the decoder would, so which write left it, and
//! whether that write was the one committed, does not matter: only equal bytes do.
//! Events that find none (other writers' on a shared etcd, listings, writes that left
//! nothing) are decoded as before. A hand-off whose event never comes (the write failed
//! and was not withdrawn, the cache re-listed) is dropped after [`MAX_AGE`] or when its
//! stripe holds [`MAX_PER_STRIPE`] newer ones.

use super::shard_index;
use crate::store::KeyValue;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Makes the cache's data for a stored key-value whose bytes are the ones handed over;
/// `None` sends the event to the decoder.
pub type MakeFn<T> = Box<dyn FnOnce(&KeyValue) -> Option<T> + Send>;

/// Hand-offs are striped by key so writers of different keys rarely meet on a lock.
const STRIPES: usize = 16;
/// Hand-offs kept per stripe (writes in flight, and on etcd those whose events are on
/// their way); the oldest goes first.
const MAX_PER_STRIPE: usize = 256;
/// How long a hand-off waits for its event.
const MAX_AGE: Duration = Duration::from_secs(60);

struct Pending<T> {
    key: String,
    value: Bytes,
    make: MakeFn<T>,
    born: Instant,
}

pub(super) struct Prepared<T> {
    stripes: Box<[Mutex<VecDeque<Pending<T>>>]>,
    /// Hand-offs held (the feeder skips the lock when there are none).
    held: AtomicUsize,
}

impl<T> Prepared<T> {
    pub(super) fn new() -> Self {
        Prepared {
            stripes: (0..STRIPES).map(|_| Mutex::new(VecDeque::new())).collect(),
            held: AtomicUsize::new(0),
        }
    }

    fn stripe(&self, key: &str) -> &Mutex<VecDeque<Pending<T>>> {
        &self.stripes[shard_index(key, STRIPES)]
    }

    /// Keep `make` for the event of `key` whose value is `value`.
    pub(super) fn offer(&self, key: &str, value: Bytes, make: MakeFn<T>) {
        let now = Instant::now();
        let mut s = self.stripe(key).lock();
        let before = s.len();
        while s.front().is_some_and(|p| now.duration_since(p.born) > MAX_AGE)
            || s.len() >= MAX_PER_STRIPE
        {
            s.pop_front();
        }
        s.push_back(Pending { key: key.to_string(), value, make, born: now });
        self.account(before, s.len());
    }

    /// Drop the hand-off of `key` with this very `value` (its write failed).
    pub(super) fn withdraw(&self, key: &str, value: &Bytes) {
        let mut s = self.stripe(key).lock();
        let before = s.len();
        s.retain(|p| !(p.key == key && same_bytes(&p.value, value)));
        self.account(before, s.len());
    }

    /// The hand-off for `kv`, if a writer left one for its key and bytes.
    pub(super) fn take(&self, kv: &KeyValue) -> Option<MakeFn<T>> {
        if self.held.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut s = self.stripe(&kv.key).lock();
        let at = s.iter().position(|p| p.key == kv.key && same_bytes(&p.value, &kv.value))?;
        let p = s.remove(at)?;
        self.held.fetch_sub(1, Ordering::AcqRel);
        Some(p.make)
    }

    /// Hand-offs held (for tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    fn account(&self, before: usize, after: usize) {
        if after > before {
            self.held.fetch_add(after - before, Ordering::AcqRel);
        } else {
            self.held.fetch_sub(before - after, Ordering::AcqRel);
        }
    }
}

/// Equal bytes (the same allocation on the embedded store, an equal copy from etcd).
fn same_bytes(a: &Bytes, b: &Bytes) -> bool {
    (a.as_ptr() == b.as_ptr() && a.len() == b.len()) || a == b
}
