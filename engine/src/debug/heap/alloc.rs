//! [`SamplingAlloc`]: the global allocator of the kapi binary. Every call goes to
//! mimalloc; about one allocation per sampling interval also records its stack in
//! [`TABLE`], and frees of sampled blocks remove them from it.
//!
//! Invariants: see the module above. In short: the fast paths take no lock and make no
//! call besides mimalloc's; the slow path runs at most once at a time per thread (busy
//! flag), walks the stack without symbols and never allocates through itself.

use super::sampler::{self, STATE};
use super::table::{MAX_DEPTH, Table};
use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout};

/// Every sample of the process.
pub static TABLE: Table = Table::new();

/// mimalloc with Go-style heap sampling.
#[derive(Debug, Default)]
pub struct SamplingAlloc;

impl SamplingAlloc {
    pub const fn new() -> Self {
        Self
    }
}

/// Count `size` bytes against this thread's countdown; sample when it runs out.
#[inline(always)]
fn allocated(ptr: *mut u8, size: usize) {
    if ptr.is_null() {
        return;
    }
    let expired = STATE
        .try_with(|s| {
            let left = s.countdown.get().saturating_sub(size as i64);
            s.countdown.set(left);
            left <= 0
        })
        .unwrap_or(false);
    if expired {
        sample(ptr, size);
    }
}

#[cold]
#[inline(never)]
fn sample(ptr: *mut u8, size: usize) {
    let take = sampler::exclusive(sampler::on_countdown_expired).unwrap_or(false);
    if !take {
        return;
    }
    let mut frames = [0usize; MAX_DEPTH];
    let depth = sampler::exclusive(|_| walk(&mut frames)).unwrap_or(0);
    TABLE.record_alloc(ptr, size, &frames[..depth]);
}

/// The return addresses of the current stack, innermost first.
fn walk(frames: &mut [usize; MAX_DEPTH]) -> usize {
    let mut n = 0;
    // SAFETY: the unwinder is thread-safe on our targets; we neither allocate nor panic
    // in the callback.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            frames[n] = frame.ip() as usize;
            n += 1;
            n < MAX_DEPTH
        })
    };
    n
}

/// Forget `ptr` if it was sampled (before mimalloc may reuse its address).
#[inline(always)]
fn freeing(ptr: *mut u8) {
    if TABLE.may_be_sampled(ptr) {
        forget(ptr);
    }
}

#[cold]
#[inline(never)]
fn forget(ptr: *mut u8) {
    TABLE.record_free(ptr);
}

// SAFETY: every method hands the call to mimalloc unchanged; the bookkeeping around it
// never touches the blocks themselves.
unsafe impl GlobalAlloc for SamplingAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { MiMalloc.alloc(layout) };
        allocated(ptr, layout.size());
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { MiMalloc.alloc_zeroed(layout) };
        allocated(ptr, layout.size());
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        freeing(ptr);
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as a free of the old block and an allocation of the new one.
        freeing(ptr);
        let out = unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        allocated(out, new_size);
        out
    }
}
