//! The sample table: buckets of (stack, size) with their allocated and freed counts, and
//! the map from each sampled, still-live block to its bucket.
//!
//! Invariants: every mutation happens under the spin lock with this thread's busy flag
//! set, and nothing under the lock allocates through the global allocator or blocks; the
//! memory is reserved once, directly from mimalloc. `may_be_sampled` is lock-free: a
//! counting filter over addresses that is raised before a sampled block is handed out
//! and lowered when it is forgotten, so a zero means "not sampled" for certain. A
//! snapshot copies the published buckets under the lock, into room made before it.

use super::sampler;
use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// Frames kept per stack (the innermost ones).
pub const MAX_DEPTH: usize = 64;
/// Distinct (stack, size) buckets; bucket 0 takes the rest.
pub const MAX_BUCKETS: usize = 1 << 13;
/// Sampled blocks tracked while live (half the address map's slots).
pub const MAX_LIVE: usize = LIVE_SLOTS / 2;

const LIVE_SLOTS: usize = 1 << 16;
const INDEX_SLOTS: usize = 1 << 14;
const FILTER_SLOTS: usize = 1 << 16;

/// One (stack, size) pair and its counts.
#[derive(Clone, Copy)]
struct Bucket {
    hash: u64,
    size: u64,
    depth: u32,
    frames: [usize; MAX_DEPTH],
    alloc_objects: u64,
    alloc_bytes: u64,
    free_objects: u64,
    free_bytes: u64,
}

/// A live sampled block: its address (0 = empty slot), size and bucket.
#[derive(Clone, Copy)]
struct Live {
    addr: usize,
    size: u64,
    bucket: u32,
}

struct Inner {
    buckets: *mut Bucket,
    count: usize,
    /// Open-addressing index: hash -> bucket + 1 (0 = empty).
    index: *mut u32,
    live: *mut Live,
    live_count: usize,
    dropped: u64,
    failed: bool,
}

/// A snapshot of one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketStats {
    /// Return addresses, innermost first; empty for the overflow bucket.
    pub frames: Vec<usize>,
    pub size: u64,
    pub alloc_objects: u64,
    pub alloc_bytes: u64,
    pub inuse_objects: u64,
    pub inuse_bytes: u64,
}

pub struct Table {
    lock: AtomicBool,
    inner: UnsafeCell<Inner>,
    filter: [AtomicU8; FILTER_SLOTS],
}

// SAFETY: `inner` is only touched under `lock`; `filter` is atomic.
unsafe impl Sync for Table {}

impl Default for Table {
    fn default() -> Self {
        Self::new()
    }
}

fn mix(x: u64) -> u64 {
    let x = (x ^ (x >> 31)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 29)
}

fn filter_slot(addr: usize) -> usize {
    (mix(addr as u64 ^ 0x5bd1_e995) >> (64 - 16)) as usize
}

fn live_slot(addr: usize) -> usize {
    (mix(addr as u64) as usize) & (LIVE_SLOTS - 1)
}

fn stack_hash(frames: &[usize], size: u64) -> u64 {
    frames.iter().fold(mix(size), |h, &f| mix(h ^ f as u64))
}

/// Zeroed memory for `n` values of `T`, straight from mimalloc.
fn reserve<T>(n: usize) -> *mut T {
    match Layout::array::<T>(n) {
        // SAFETY: the layout has a non-zero size.
        Ok(l) => unsafe { mimalloc::MiMalloc.alloc_zeroed(l) as *mut T },
        Err(_) => std::ptr::null_mut(),
    }
}

fn release<T>(p: *mut T, n: usize) {
    if let (false, Ok(l)) = (p.is_null(), Layout::array::<T>(n)) {
        // SAFETY: `p` came from `reserve::<T>(n)`.
        unsafe { mimalloc::MiMalloc.dealloc(p as *mut u8, l) }
    }
}

impl Table {
    pub const fn new() -> Self {
        Self {
            lock: AtomicBool::new(false),
            inner: UnsafeCell::new(Inner {
                buckets: std::ptr::null_mut(),
                count: 0,
                index: std::ptr::null_mut(),
                live: std::ptr::null_mut(),
                live_count: 0,
                dropped: 0,
                failed: false,
            }),
            filter: [const { AtomicU8::new(0) }; FILTER_SLOTS],
        }
    }

    /// Run `f` under the lock, with this thread marked busy; `None` if it already was.
    fn locked<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> Option<R> {
        sampler::exclusive(|_| {
            let mut spins = 0u32;
            while self
                .lock
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                spins += 1;
                if spins < 64 { std::hint::spin_loop() } else { std::thread::yield_now() }
            }
            // SAFETY: we hold the lock.
            let out = f(unsafe { &mut *self.inner.get() });
            self.lock.store(false, Ordering::Release);
            out
        })
    }

    /// Whether `addr` may be a live sampled block (false: certainly not).
    #[inline]
    pub fn may_be_sampled(&self, addr: *mut u8) -> bool {
        self.filter[filter_slot(addr as usize)].load(Ordering::Relaxed) != 0
    }

    /// Record a sampled allocation of `size` bytes at `addr` made from `frames`.
    pub fn record_alloc(&self, addr: *mut u8, size: usize, frames: &[usize]) {
        let frames = &frames[..frames.len().min(MAX_DEPTH)];
        let hash = stack_hash(frames, size as u64);
        let addr = addr as usize;
        self.locked(|t| {
            if !t.ready() || t.live_count >= MAX_LIVE {
                t.dropped += 1;
                return;
            }
            let b = t.bucket_for(hash, size as u64, frames);
            t.count_alloc(b, size as u64);
            let live = Live { addr, size: size as u64, bucket: b as u32 };
            match t.insert_live(live) {
                // The block was freed unseen (a free during sampling): count it now.
                Some(stale) => t.count_free(stale),
                None => self.raise(addr),
            }
        });
    }

    /// Forget `addr` if it is a live sampled block (call before freeing it).
    pub fn record_free(&self, addr: *mut u8) {
        let addr = addr as usize;
        self.locked(|t| {
            if t.live.is_null() {
                return;
            }
            if let Some(gone) = t.remove_live(addr) {
                t.count_free(gone);
                self.lower(addr);
            }
        });
    }

    fn raise(&self, addr: usize) {
        let c = &self.filter[filter_slot(addr)];
        let v = c.load(Ordering::Relaxed);
        if v < u8::MAX {
            c.store(v + 1, Ordering::Relaxed);
        }
    }

    fn lower(&self, addr: usize) {
        let c = &self.filter[filter_slot(addr)];
        let v = c.load(Ordering::Relaxed);
        // A saturated counter stays up: it may stand for more blocks than it can count.
        if v > 0 && v < u8::MAX {
            c.store(v - 1, Ordering::Relaxed);
        }
    }

    /// Every bucket's figures, plus the count of samples dropped for lack of room.
    pub fn snapshot(&self) -> (Vec<BucketStats>, u64) {
        let n = self.locked(|t| t.count).unwrap_or(0);
        // Room is made before taking the lock: nothing under it allocates.
        let mut copy: Vec<Bucket> = Vec::with_capacity(n);
        let dropped = self.locked(|t| {
            let published = t.count.min(n);
            if published > 0 {
                // SAFETY: the first `count` buckets are initialized; we hold the lock.
                copy.extend_from_slice(unsafe { std::slice::from_raw_parts(t.buckets, published) });
            }
            t.dropped
        });
        let stats = copy
            .iter()
            .filter(|k| k.alloc_objects > 0)
            .map(|k| BucketStats {
                frames: k.frames[..k.depth as usize].to_vec(),
                size: k.size,
                alloc_objects: k.alloc_objects,
                alloc_bytes: k.alloc_bytes,
                inuse_objects: k.alloc_objects.saturating_sub(k.free_objects),
                inuse_bytes: k.alloc_bytes.saturating_sub(k.free_bytes),
            })
            .collect();
        (stats, dropped.unwrap_or(0))
    }
}

impl Inner {
    /// Reserve the tables on first use; false if that failed.
    fn ready(&mut self) -> bool {
        if !self.buckets.is_null() {
            return true;
        }
        if self.failed {
            return false;
        }
        let b = reserve::<Bucket>(MAX_BUCKETS);
        let (i, l) = (reserve::<u32>(INDEX_SLOTS), reserve::<Live>(LIVE_SLOTS));
        if b.is_null() || i.is_null() || l.is_null() {
            release(b, MAX_BUCKETS);
            release(i, INDEX_SLOTS);
            release(l, LIVE_SLOTS);
            self.failed = true;
            return false;
        }
        (self.buckets, self.index, self.live) = (b, i, l);
        self.count = 1; // bucket 0: the overflow bucket (no stack, size 0)
        true
    }

    /// The bucket of (frames, size), created if there is room, else bucket 0.
    fn bucket_for(&mut self, hash: u64, size: u64, frames: &[usize]) -> usize {
        let mut slot = hash as usize & (INDEX_SLOTS - 1);
        for _ in 0..INDEX_SLOTS {
            // SAFETY: slot < INDEX_SLOTS; ids in the index are < count.
            let id = unsafe { *self.index.add(slot) } as usize;
            if id == 0 {
                return self.new_bucket(slot, hash, size, frames);
            }
            let b = unsafe { &*self.buckets.add(id - 1) };
            if b.hash == hash && b.size == size && &b.frames[..b.depth as usize] == frames {
                return id - 1;
            }
            slot = (slot + 1) & (INDEX_SLOTS - 1);
        }
        0
    }

    fn new_bucket(&mut self, slot: usize, hash: u64, size: u64, frames: &[usize]) -> usize {
        if self.count >= MAX_BUCKETS || self.count >= INDEX_SLOTS / 2 {
            return 0;
        }
        let id = self.count;
        // SAFETY: id < MAX_BUCKETS, slot < INDEX_SLOTS.
        let b = unsafe { &mut *self.buckets.add(id) };
        b.hash = hash;
        b.size = size;
        b.depth = frames.len() as u32;
        b.frames[..frames.len()].copy_from_slice(frames);
        unsafe { *self.index.add(slot) = id as u32 + 1 };
        self.count += 1;
        id
    }

    fn count_alloc(&mut self, b: usize, size: u64) {
        // SAFETY: bucket ids handed out are < count <= MAX_BUCKETS.
        let k = unsafe { &mut *self.buckets.add(b) };
        k.alloc_objects += 1;
        k.alloc_bytes += size;
    }

    fn count_free(&mut self, gone: Live) {
        // SAFETY: bucket ids in the live map are < count.
        let k = unsafe { &mut *self.buckets.add(gone.bucket as usize) };
        k.free_objects += 1;
        k.free_bytes += gone.size;
    }

    /// Map a block to its bucket; returns what its address was mapped to before, if any.
    fn insert_live(&mut self, live: Live) -> Option<Live> {
        let mut slot = live_slot(live.addr);
        loop {
            // SAFETY: slot < LIVE_SLOTS; the map is never full (live_count < MAX_LIVE).
            let l = unsafe { &mut *self.live.add(slot) };
            if l.addr == live.addr {
                return Some(std::mem::replace(l, live));
            }
            if l.addr == 0 {
                *l = live;
                self.live_count += 1;
                return None;
            }
            slot = (slot + 1) & (LIVE_SLOTS - 1);
        }
    }

    /// Unmap `addr` (linear probing with backward-shift deletion: no tombstones).
    fn remove_live(&mut self, addr: usize) -> Option<Live> {
        let mut slot = live_slot(addr);
        loop {
            // SAFETY: slot < LIVE_SLOTS.
            let l = unsafe { *self.live.add(slot) };
            if l.addr == 0 {
                return None;
            }
            if l.addr == addr {
                self.live_count -= 1;
                self.shift_back(slot);
                return Some(l);
            }
            slot = (slot + 1) & (LIVE_SLOTS - 1);
        }
    }

    /// Refill the hole at `hole` with later entries of its probe run.
    fn shift_back(&mut self, mut hole: usize) {
        let mut next = (hole + 1) & (LIVE_SLOTS - 1);
        loop {
            // SAFETY: indices are masked to LIVE_SLOTS.
            let l = unsafe { *self.live.add(next) };
            if l.addr == 0 {
                break;
            }
            let home = live_slot(l.addr);
            // Move `l` into the hole unless its home lies cyclically in (hole, next].
            let dist_next = next.wrapping_sub(home) & (LIVE_SLOTS - 1);
            let dist_hole = hole.wrapping_sub(home) & (LIVE_SLOTS - 1);
            if dist_hole < dist_next {
                unsafe { *self.live.add(hole) = l };
                hole = next;
            }
            next = (next + 1) & (LIVE_SLOTS - 1);
        }
        unsafe { *self.live.add(hole) = Live { addr: 0, size: 0, bucket: 0 } };
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        let t = self.inner.get_mut();
        release(t.buckets, MAX_BUCKETS);
        release(t.index, INDEX_SLOTS);
        release(t.live, LIVE_SLOTS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: usize) -> *mut u8 {
        (n * 16) as *mut u8
    }

    #[test]
    fn allocations_and_frees_move_the_buckets() {
        let t = Box::new(Table::new());
        assert!(!t.may_be_sampled(addr(1)));
        t.record_alloc(addr(1), 100, &[1, 2, 3]);
        t.record_alloc(addr(2), 100, &[1, 2, 3]);
        t.record_alloc(addr(3), 200, &[1, 2, 3]);
        t.record_alloc(addr(4), 100, &[9]);
        assert!(t.may_be_sampled(addr(2)));
        t.record_free(addr(2));
        t.record_free(addr(5)); // never sampled: no effect
        let (mut stats, dropped) = t.snapshot();
        stats.sort_by_key(|s| (s.frames.clone(), s.size));
        assert_eq!(dropped, 0);
        let got: Vec<_> = stats
            .iter()
            .map(|s| (s.frames.clone(), s.size, s.alloc_objects, s.inuse_objects, s.inuse_bytes))
            .collect();
        assert_eq!(
            got,
            vec![
                (vec![1, 2, 3], 100, 2, 1, 100),
                (vec![1, 2, 3], 200, 1, 1, 200),
                (vec![9], 100, 1, 1, 100)
            ]
        );
        assert_eq!(stats[0].alloc_bytes, 200);
    }

    #[test]
    fn many_live_blocks_survive_removals_in_any_order() {
        let t = Box::new(Table::new());
        let n = 20_000;
        for i in 1..=n {
            t.record_alloc(addr(i), 8, &[i % 7]);
        }
        for i in (1..=n).filter(|i| i % 3 == 0) {
            t.record_free(addr(i));
        }
        for i in 1..=n {
            // Every still-live block is found (the filter never says no for one).
            assert!(i % 3 == 0 || t.may_be_sampled(addr(i)));
        }
        for i in (1..=n).filter(|i| i % 3 != 0) {
            t.record_free(addr(i));
        }
        let (stats, _) = t.snapshot();
        assert_eq!(stats.iter().map(|s| s.alloc_objects).sum::<u64>(), n as u64);
        assert_eq!(stats.iter().map(|s| s.inuse_objects).sum::<u64>(), 0);
        let lit = t.filter.iter().filter(|c| c.load(Ordering::Relaxed) != 0).count();
        assert_eq!(lit, 0, "every filter counter is back to zero");
    }

    #[test]
    fn stacks_are_cut_and_full_tables_fold_into_the_overflow_bucket() {
        let t = Box::new(Table::new());
        let deep: Vec<usize> = (0..100).collect();
        t.record_alloc(addr(1), 1, &deep);
        for i in 0..MAX_BUCKETS + 10 {
            t.record_alloc(addr(10 + i), 1, &[1000 + i]);
        }
        let (stats, _) = t.snapshot();
        assert!(stats.iter().any(|s| s.frames.len() == MAX_DEPTH));
        let overflow = stats.iter().find(|s| s.frames.is_empty()).expect("overflow bucket");
        assert!(overflow.alloc_objects >= 10);
    }
}
