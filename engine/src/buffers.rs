//! Pooled per-core encode buffers for responses that are not served from cached
//! encodings (single-object write responses, Status errors, Tables,
//! PartialObjectMetadata, YAML, pretty JSON).
//!
//! Each thread (kapi runs one monoio runtime per core) keeps a small stack of `Vec<u8>`s.
//! [`encode`] takes one, lets the caller write into it and hands the filled vector out as
//! `Bytes` whose owner is a guard: the vector goes back to the pool of the thread that
//! drops the last `Bytes` handle, i.e. only once hyper (or anything else) is done with the
//! bytes. A buffer in flight is therefore never reused, by construction.
//!
//! Invariants: the pool of a thread holds at most [`MAX_POOLED`] buffers, and a buffer
//! whose capacity grew past [`MAX_RETAINED`] is freed rather than kept, so retained memory
//! per core is bounded by their product. Counters are per core and written only by their
//! own thread; [`stats`] reads every core's, [`local_stats`] the calling thread's.

use bytes::Bytes;
use parking_lot::Mutex;
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Buffers kept per core.
pub const MAX_POOLED: usize = 32;
/// Largest capacity a returned buffer may have and still be kept (bytes).
pub const MAX_RETAINED: usize = 256 * 1024;
/// Capacity of a freshly allocated buffer (most single objects fit).
const INITIAL: usize = 8 * 1024;

/// One core's pool counters.
#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    returned: AtomicU64,
    discarded: AtomicU64,
}

/// A snapshot of one core's pool counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Encodes that reused a pooled buffer.
    pub hits: u64,
    /// Encodes that found the pool empty and allocated a buffer.
    pub misses: u64,
    /// Buffers put back after their bytes were released.
    pub returned: u64,
    /// Buffers freed on release (pool full or capacity over `MAX_RETAINED`).
    pub discarded: u64,
}

impl Counters {
    fn snapshot(&self) -> PoolStats {
        PoolStats {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            returned: self.returned.load(Relaxed),
            discarded: self.discarded.load(Relaxed),
        }
    }
}

fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed) + 1, Relaxed);
}

/// Every core's counters, registered on the core's first use of the pool.
static REGISTRY: Mutex<Vec<Arc<Counters>>> = Mutex::new(Vec::new());

struct Pool {
    free: Vec<Vec<u8>>,
    counters: Arc<Counters>,
}

impl Pool {
    fn new() -> Pool {
        let counters = Arc::new(Counters::default());
        REGISTRY.lock().push(counters.clone());
        Pool { free: Vec::with_capacity(MAX_POOLED), counters }
    }

    fn take(&mut self) -> Vec<u8> {
        match self.free.pop() {
            Some(buf) => {
                bump(&self.counters.hits);
                buf
            }
            None => {
                bump(&self.counters.misses);
                Vec::with_capacity(INITIAL)
            }
        }
    }

    fn give(&mut self, mut buf: Vec<u8>) {
        if self.free.len() >= MAX_POOLED || buf.capacity() > MAX_RETAINED {
            bump(&self.counters.discarded);
            return;
        }
        buf.clear();
        bump(&self.counters.returned);
        self.free.push(buf);
    }
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool::new());
}

/// A filled buffer lent out as `Bytes`; returns to its pool when the last handle drops.
struct Lent(Vec<u8>);

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        // During thread teardown the pool may be gone; the buffer is then just freed.
        let _ = POOL.try_with(|p| p.try_borrow_mut().map(|mut p| p.give(buf)));
    }
}

fn take() -> Vec<u8> {
    POOL.try_with(|p| p.try_borrow_mut().ok().map(|mut p| p.take()))
        .ok()
        .flatten()
        .unwrap_or_else(|| Vec::with_capacity(INITIAL))
}

/// Write a response body with `write` into a pooled buffer and hand it out as `Bytes`.
/// An empty result is a static empty `Bytes` (the buffer goes straight back).
pub fn encode(write: impl FnOnce(&mut Vec<u8>)) -> Bytes {
    let mut buf = take();
    write(&mut buf);
    if buf.is_empty() {
        drop(Lent(buf));
        return Bytes::new();
    }
    Bytes::from_owner(Lent(buf))
}

/// The calling thread's (core's) pool counters.
pub fn local_stats() -> PoolStats {
    POOL.try_with(|p| p.try_borrow().map(|p| p.counters.snapshot()).unwrap_or_default())
        .unwrap_or_default()
}

/// Every core's pool counters, one entry per thread that has used the pool.
pub fn stats() -> Vec<PoolStats> {
    REGISTRY.lock().iter().map(|c| c.snapshot()).collect()
}

/// Buffers currently pooled on the calling thread.
pub fn local_pooled() -> usize {
    POOL.try_with(|p| p.try_borrow().map(|p| p.free.len()).unwrap_or(0)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_is_reused_only_after_its_bytes_are_dropped() {
        let before = local_stats();
        let a = encode(|b| b.extend_from_slice(b"first"));
        let a_ptr = a.as_ptr();
        let b = encode(|b| b.extend_from_slice(b"second"));
        assert_ne!(a_ptr, b.as_ptr(), "a buffer in flight was handed out again");
        assert_eq!((&a[..], &b[..]), (&b"first"[..], &b"second"[..]));
        let clone = a.clone();
        drop(a);
        let c = encode(|b| b.extend_from_slice(b"third"));
        assert_ne!(c.as_ptr(), a_ptr, "reused while a clone was still alive");
        assert_eq!(&clone[..], b"first");
        drop((clone, b, c));
        let d = encode(|b| b.extend_from_slice(b"fourth"));
        let after = local_stats();
        assert!(after.hits > before.hits, "no reuse: {before:?} -> {after:?}");
        assert_eq!(&d[..], b"fourth");
    }

    #[test]
    fn retained_memory_is_bounded() {
        let big: Vec<Bytes> =
            (0..MAX_POOLED + 8).map(|_| encode(|b| b.resize(MAX_RETAINED + 1, 7))).collect();
        drop(big);
        assert_eq!(local_pooled(), 0, "oversized buffers must not be kept");
        let small: Vec<Bytes> = (0..MAX_POOLED + 8).map(|_| encode(|b| b.push(1))).collect();
        drop(small);
        assert_eq!(local_pooled(), MAX_POOLED);
        assert!(stats().iter().any(|s| s.discarded > 0));
    }

    #[test]
    fn empty_output_is_empty_bytes() {
        assert!(encode(|_| {}).is_empty());
    }
}
