//! Per-core connection I/O figures: accepted connections, open connections, and the
//! recv/send operations (with their bytes) that connections complete. Connections run in
//! monoio's poll-io mode: the core's io_uring driver watches an epoll instance for
//! readiness, then the recv or send is a plain non-blocking syscall (not an io_uring
//! submission); each completed recv or send (data, EOF or error) counts as one
//! operation, a would-block wait does not.
//!
//! Invariants: each worker thread owns one [`CoreIo`] (bound once by [`bind_core`]) and
//! is its only writer, so counting is a plain load and store on memory no other core
//! writes (no read-modify-write, no lock, no shared cache line); a scrape reads every
//! core's counters with relaxed loads. Threads that never bound a core count nothing.

use parking_lot::Mutex;
use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// One core's counters, on a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct CoreIo {
    pub core: usize,
    pub accepted: AtomicU64,
    pub open: AtomicI64,
    pub reads: AtomicU64,
    pub read_bytes: AtomicU64,
    pub writes: AtomicU64,
    pub written_bytes: AtomicU64,
}

/// A snapshot of one core's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoFigures {
    pub core: usize,
    pub accepted: u64,
    pub open: i64,
    pub reads: u64,
    pub read_bytes: u64,
    pub writes: u64,
    pub written_bytes: u64,
}

fn registry() -> &'static Mutex<Vec<&'static CoreIo>> {
    static CORES: OnceLock<Mutex<Vec<&'static CoreIo>>> = OnceLock::new();
    CORES.get_or_init(Mutex::default)
}

thread_local! {
    static CORE: Cell<Option<&'static CoreIo>> = const { Cell::new(None) };
}

/// Make this thread the writer of core `core`'s counters (workers call it once at start;
/// the counters live as long as the process).
pub fn bind_core(core: usize) {
    let io: &'static CoreIo = Box::leak(Box::new(CoreIo { core, ..Default::default() }));
    registry().lock().push(io);
    CORE.with(|c| c.set(Some(io)));
}

/// Add `n` to a counter only this thread writes.
#[inline]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

#[inline]
fn with_core(f: impl FnOnce(&CoreIo)) {
    if let Some(io) = CORE.with(|c| c.get()) {
        f(io)
    }
}

/// A connection was accepted.
pub fn accepted() {
    with_core(|io| bump(&io.accepted, 1));
}

/// A connection starts being served on this core (open until [`closed`]).
pub fn opened() {
    with_core(|io| io.open.store(io.open.load(Ordering::Relaxed) + 1, Ordering::Relaxed));
}

/// A connection accepted on this core was closed.
pub fn closed() {
    with_core(|io| io.open.store(io.open.load(Ordering::Relaxed) - 1, Ordering::Relaxed));
}

/// A recv completed with `bytes` (0 for EOF or an error).
#[inline]
pub fn read(bytes: usize) {
    with_core(|io| {
        bump(&io.reads, 1);
        bump(&io.read_bytes, bytes as u64);
    });
}

/// A send completed with `bytes` (0 for an error).
#[inline]
pub fn wrote(bytes: usize) {
    with_core(|io| {
        bump(&io.writes, 1);
        bump(&io.written_bytes, bytes as u64);
    });
}

/// Every bound core's counters, by core.
pub fn snapshot() -> Vec<IoFigures> {
    let cores = registry().lock().clone();
    let mut out: Vec<IoFigures> = cores
        .iter()
        .map(|io| IoFigures {
            core: io.core,
            accepted: io.accepted.load(Ordering::Relaxed),
            open: io.open.load(Ordering::Relaxed),
            reads: io.reads.load(Ordering::Relaxed),
            read_bytes: io.read_bytes.load(Ordering::Relaxed),
            writes: io.writes.load(Ordering::Relaxed),
            written_bytes: io.written_bytes.load(Ordering::Relaxed),
        })
        .collect();
    out.sort_by_key(|f| f.core);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_thread_counts_into_its_own_core() {
        read(5); // not bound yet: nothing is counted
        std::thread::spawn(|| {
            bind_core(1000);
            accepted();
            opened();
            read(100);
            read(0);
            wrote(7);
            closed();
        })
        .join()
        .unwrap();
        let mine = snapshot().into_iter().find(|f| f.core == 1000).expect("core 1000");
        assert_eq!(
            mine,
            IoFigures {
                core: 1000,
                accepted: 1,
                open: 0,
                reads: 2,
                read_bytes: 100,
                writes: 1,
                written_bytes: 7
            }
        );
    }
}
