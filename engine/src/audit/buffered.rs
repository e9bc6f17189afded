//! The queue between serving cores and a backend's thread, with upstream's three modes
//! (`--audit-*-mode`) and the batching of its buffered backend.
//!
//! - `batch`: a core puts the event in a bounded buffer (`--audit-*-batch-buffer-size`)
//!   and goes on; when the buffer is full the event is dropped and counted
//!   (`apiserver_audit_error_total{plugin="buffered"}`), never waiting. The backend's
//!   thread sends batches of at most `max_size` events, each at most `max_wait` after its
//!   first event, at most `qps` batches a second (burst `burst`) when throttled.
//! - `blocking`: the request waits (asynchronously: the core serves others meanwhile)
//!   for room in the buffer; events are sent one at a time; errors are counted only.
//! - `blocking-strict`: as `blocking`, and the request waits for the write itself; a
//!   failure at `RequestReceived` fails the request (500).
//!
//! Invariants: the buffer is bounded by count; nothing here holds a lock a core takes.

use super::event::Event;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `--audit-*-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Batch,
    Blocking,
    BlockingStrict,
}

impl Mode {
    pub fn parse(s: &str, flag: &str) -> Result<Mode, String> {
        match s {
            "batch" => Ok(Mode::Batch),
            "blocking" => Ok(Mode::Blocking),
            "blocking-strict" => Ok(Mode::BlockingStrict),
            other => Err(format!(
                "invalid {flag} {other:?}: must be one of batch, blocking, blocking-strict"
            )),
        }
    }
}

/// Batching of one backend (upstream's `BatchConfig`).
#[derive(Debug, Clone)]
pub struct BatchConfig {
    pub buffer_size: usize,
    pub max_size: usize,
    pub max_wait: Duration,
    /// (qps, burst) when throttling is on.
    pub throttle: Option<(f64, usize)>,
}

/// What a core hands a backend's thread.
pub enum Msg {
    /// An event, with where to say whether it was written (blocking-strict).
    Event(Arc<Event>, Option<futures_channel::oneshot::Sender<bool>>),
    /// Everything sent before is written; then answer (shutdown).
    Flush(std::sync::mpsc::Sender<()>),
}

/// The core's end of one backend.
pub struct Queue {
    pub plugin: &'static str,
    pub mode: Mode,
    tx: flume::Sender<Msg>,
}

impl Queue {
    /// A queue for `plugin` and its receiving end.
    pub fn new(plugin: &'static str, mode: Mode, buffer: usize) -> (Queue, flume::Receiver<Msg>) {
        let (tx, rx) = flume::bounded(buffer.max(1));
        (Queue { plugin, mode, tx }, rx)
    }

    /// Hand `ev` over as the mode says; false only when blocking-strict and it was not
    /// written.
    pub async fn process(&self, ev: Arc<Event>) -> bool {
        match self.mode {
            Mode::Batch => {
                self.offer(ev);
                true
            }
            Mode::Blocking => {
                if self.tx.send_async(Msg::Event(ev, None)).await.is_err() {
                    crate::metrics::audit_error(self.plugin, 1);
                }
                true
            }
            Mode::BlockingStrict => {
                let (tx, rx) = futures_channel::oneshot::channel();
                if self.tx.send_async(Msg::Event(ev, Some(tx))).await.is_err() {
                    crate::metrics::audit_error(self.plugin, 1);
                    return false;
                }
                rx.await.unwrap_or(false)
            }
        }
    }

    /// Hand `ev` over without waiting (events written when a response body ends): a full
    /// buffer drops it, counted.
    pub fn offer(&self, ev: Arc<Event>) {
        if self.tx.try_send(Msg::Event(ev, None)).is_err() {
            crate::metrics::audit_error("buffered", 1);
        }
    }

    /// Wait (at most `limit`) until everything queued so far is written.
    pub fn flush(&self, limit: Duration) {
        let (tx, rx) = std::sync::mpsc::channel();
        let deadline = Instant::now() + limit;
        let mut msg = Msg::Flush(tx);
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(flume::TrySendError::Full(m)) if Instant::now() < deadline => {
                    msg = m;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => return,
            }
        }
        let _ = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

/// Upstream's token bucket: `burst` tokens, refilled at `qps` a second.
#[derive(Debug)]
pub struct Throttle {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Throttle {
    pub fn new(qps: f64, burst: usize) -> Throttle {
        let burst = burst.max(1) as f64;
        Throttle { qps: qps.max(0.001), burst, tokens: burst, last: Instant::now() }
    }

    /// How long to wait before the next batch may go (taking its token).
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst) - 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.qps)
        }
    }
}

/// A batch taken from the queue: events with their acknowledgements, and the flushes
/// to answer once it is written.
#[derive(Default)]
pub struct Batch {
    pub events: Vec<Arc<Event>>,
    pub acks: Vec<futures_channel::oneshot::Sender<bool>>,
    pub flushes: Vec<std::sync::mpsc::Sender<()>>,
}

impl Batch {
    fn add(&mut self, msg: Msg) {
        match msg {
            Msg::Event(ev, ack) => {
                self.events.push(ev);
                self.acks.extend(ack);
            }
            Msg::Flush(tx) => self.flushes.push(tx),
        }
    }

    /// Add what `rx` already holds, up to `max` events in all (never waiting).
    pub fn take_ready(&mut self, rx: &flume::Receiver<Msg>, max: usize) {
        while self.events.len() < max && self.flushes.is_empty() {
            match rx.try_recv() {
                Ok(m) => self.add(m),
                Err(_) => return,
            }
        }
    }

    /// Tell the waiters how the write went.
    pub fn done(self, ok: bool) {
        for a in self.acks {
            let _ = a.send(ok);
        }
        for f in self.flushes {
            let _ = f.send(());
        }
    }
}

/// The next batch (blocking the backend's own thread): the first message, then more
/// until `max_size` events or `max_wait` after the first; None once every sender is
/// gone and the queue is empty.
pub fn next_batch(rx: &flume::Receiver<Msg>, cfg: &BatchConfig) -> Option<Batch> {
    let mut batch = Batch::default();
    batch.add(rx.recv().ok()?);
    let deadline = Instant::now() + cfg.max_wait;
    while batch.events.len() < cfg.max_size.max(1) && batch.flushes.is_empty() {
        match rx.recv_deadline(deadline) {
            Ok(m) => batch.add(m),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// As [`next_batch`], awaiting on a tokio runtime.
pub async fn next_batch_async(rx: &flume::Receiver<Msg>, cfg: &BatchConfig) -> Option<Batch> {
    let mut batch = Batch::default();
    batch.add(rx.recv_async().await.ok()?);
    let deadline = tokio::time::Instant::now() + cfg.max_wait;
    while batch.events.len() < cfg.max_size.max(1) && batch.flushes.is_empty() {
        match tokio::time::timeout_at(deadline, rx.recv_async()).await {
            Ok(Ok(m)) => batch.add(m),
            _ => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_bucket_allows_a_burst_then_paces() {
        let mut t = Throttle::new(10.0, 2);
        let now = Instant::now();
        assert_eq!(t.reserve(now), Duration::ZERO);
        assert_eq!(t.reserve(now), Duration::ZERO);
        let wait = t.reserve(now);
        assert!(wait > Duration::from_millis(90) && wait <= Duration::from_millis(100), "{wait:?}");
    }

    #[test]
    fn modes_parse_as_upstream_flags() {
        assert_eq!(Mode::parse("batch", "--audit-log-mode").unwrap(), Mode::Batch);
        assert_eq!(Mode::parse("blocking-strict", "x").unwrap(), Mode::BlockingStrict);
        assert!(Mode::parse("sync", "--audit-log-mode").unwrap_err().contains("batch"));
    }

    #[test]
    fn a_full_batch_buffer_drops_instead_of_waiting() {
        let (q, rx) = Queue::new("log", Mode::Batch, 1);
        let ev = Arc::new(super::super::event::tests::event(super::super::policy::Level::Metadata));
        q.offer(ev.clone());
        q.offer(ev.clone()); // full: dropped and counted, not waited for
        assert_eq!(rx.len(), 1);
        let cfg =
            BatchConfig { buffer_size: 1, max_size: 10, max_wait: Duration::ZERO, throttle: None };
        let batch = next_batch(&rx, &cfg).unwrap();
        assert_eq!(batch.events.len(), 1);
    }
}
