//! Heap profiling: a sampling global allocator around mimalloc, and
//! `/debug/pprof/heap`, its samples as a gzipped pprof `Profile` (Go's heap profile:
//! alloc_objects, alloc_space, inuse_objects, inuse_space, unsampled as Go does).
//!
//! How it samples (as Go's runtime does): every thread counts down the bytes it
//! allocates; when the countdown crosses zero the allocation is sampled and a new
//! countdown is drawn from an exponential distribution with a mean of 512 KiB
//! ([`sampler::DEFAULT_RATE`], `KAPI_MEM_PROFILE_RATE` overrides it, 0 turns sampling
//! off). Every byte is thus equally likely to be sampled, and an allocation of `s` bytes
//! is sampled with probability `1 - exp(-s/rate)`; the profile divides by that.
//!
//! Invariants of the allocator (it must never panic, deadlock or allocate through
//! itself):
//! - The fast path of `alloc` is one thread-local subtraction and a branch; of `free`,
//!   one hash and a relaxed load from a 64 KiB counting filter of sampled addresses.
//! - A sample walks the stack (raw return addresses, no symbols) before it takes the
//!   table's spin lock; under the lock it only updates fixed-size tables that were
//!   reserved directly from mimalloc, never through the global allocator.
//! - A per-thread busy flag stops re-entry: an allocation made while this thread is
//!   sampling (the unwinder, a signal handler) passes straight to mimalloc.
//! - A sampled block is forgotten before mimalloc may hand its address out again.
//! - Symbols are resolved only when a profile is served, on the serving thread.
//!
//! Overhead trade-offs (estimates, not yet measured on a release build): with the
//! default rate a sample costs a stack walk through the DWARF unwinder (release builds
//! keep no frame pointers; expect microseconds for deep stacks) about every 512 KiB
//! allocated, i.e. about 2000 walks a second at 1 GB/s of allocation, on the order of 1%
//! of a core; a lower rate buys resolution with more walks. Every free pays a hash and a
//! load from the shared, read-mostly filter; a filter hit (a sampled block, or another
//! block whose counter it shares) takes the spin lock. Memory: the tables are
//! reserved at the first sample (about 6 MiB of address space, touched as used). The
//! tables are bounded: at most [`table::MAX_LIVE`] sampled blocks are tracked in use
//! (later samples are dropped and counted) and at most [`table::MAX_BUCKETS`] distinct
//! (stack, size) pairs (later ones are folded into one overflow bucket); stacks are cut
//! at [`table::MAX_DEPTH`] frames.

pub mod alloc;
pub mod profile;
pub mod sampler;
pub mod table;

pub use alloc::SamplingAlloc;
