//! The dispatcher: the priority levels (reconfigured live) and the way a request gets
//! its seats.
//!
//! [`Level::admit`] first tries the fast path: when nobody of the level waits anywhere,
//! it takes its seats from the level's atomic pool ([`crate::seats::Pool`]) and returns
//! at once, without a lock. Otherwise the request waits in its core's queue set for the
//! level (fair queuing, `queueset.rs`), kept in a thread-local map, so queues are never
//! shared between cores.
//!
//! Fair queuing is level-wide, across cores, without a lock: virtual time is the level's
//! (one atomic: the highest virtual start dispatched on any core), and each core
//! publishes in its own cache-line-padded atomic the virtual finish time of its head of
//! line (the request its queue set would dispatch next; none when nobody waits there).
//! Seats go to the least published head, ties to the lower core: a core dispatches its
//! own head only while no other core's is less, and otherwise wakes the core that is
//! owed the seats through that core's waker (the woken waiter dispatches its core's
//! queues). So seats that come back when a [`Seat`] is dropped go to the request that is
//! owed them, wherever it waits, and the dispatch that runs when a request queues, when
//! a woken waiter runs, and when a waiter gives up follows the same rule. A head that
//! does not fit the free seats holds the level's dispatching until enough come back.
//!
//! No wake-up is lost: a core publishes its head before it tries to take seats, and a
//! release gives its seats back before it reads the heads (both sequentially
//! consistent), so either the waiting core finds the seats or the releasing core finds
//! its head and wakes it; a waiter registers its core's waker and then dispatches once
//! more, so a wake that came before its registration is not missed.
//!
//! A level's current limit (its pool's limit) is set by the periodic borrowing
//! adjustment ([`Dispatcher::adjust`], `borrowing.rs`) from the seat demand the request
//! path records with one atomic `fetch_max` and the configuration thread samples
//! ([`Dispatcher::sample`]); a raised limit wakes every core's waiters.
//!
//! Invariants: every serving thread has its own core index below the dispatcher's core
//! count ([`set_core`]); a level's seats in use never exceed its limit except for one request
//! wider than the whole limit running alone; a request waits on the core it came in on;
//! a core's published head is the head of its first queue set holding waiters (sets
//! retired by a queuing change, oldest first, then the current one) whenever that core
//! is not inside a dispatch; a retired set is served until its last waiter is gone; a request is dispatched only when no other core publishes a lesser head;
//! a waiting request's future, when dropped (its client left or its wait timed out), is
//! taken out of its queue and passes the turn on; `waiting` counts exactly the queued
//! requests of the level on every core.

use crate::borrowing::{LevelDemand, rebalance};
use crate::config::{LevelConfig, Limits, Queuing, limits};
use crate::demand::{DemandStats, Integrator};
use crate::note::RequestNote;
use crate::queueset::{Full, Head, QueueSet, Slot};
use crate::seats::Pool;
use crate::timing::{Timing, TimingSnapshot};
use arc_swap::ArcSwap;
use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

/// Why a request gets no seat (the engine answers 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// A `Reject` level had no free seat.
    #[error("concurrency-limit")]
    ConcurrencyLimit,
    /// The request's queue was full.
    #[error("queue-full")]
    QueueFull,
}

impl Rejected {
    /// Upstream's `reason` label of `apiserver_flowcontrol_rejected_requests_total`.
    pub fn reason(self) -> &'static str {
        match self {
            Rejected::ConcurrencyLimit => "concurrency-limit",
            Rejected::QueueFull => "queue-full",
        }
    }
}

// What one core knows of the levels (the thread-local side): its index and its queue
// sets, by level id.
thread_local! {
    static CORE: Cell<usize> = const { Cell::new(0) };
    static SETS: RefCell<HashMap<u64, Rc<RefCell<QueueSet>>>> = RefCell::new(HashMap::new());
    /// Queue sets replaced by a queuing change that still hold waiters, oldest first:
    /// they are served before the current set until they drain.
    static RETIRED: RefCell<HashMap<u64, Vec<Rc<RefCell<QueueSet>>>>> =
        RefCell::new(HashMap::new());
}

/// Say which core this thread is (each serving thread calls it once at start).
pub fn set_core(core: usize) {
    CORE.with(|c| c.set(core));
}

fn this_core() -> usize {
    CORE.with(Cell::get)
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A core's published head when nobody waits there.
const NO_HEAD: u64 = u64::MAX;

/// One core's shared side of a level: how many wait there, the virtual finish of its head
/// of line, and how to wake it. Padded to its own cache lines (cores write their own).
#[derive(Debug)]
#[repr(align(128))]
struct CoreSide {
    waiting: AtomicU32,
    /// The head's virtual finish as `f64` bits (a non-negative f64's bits order as the
    /// numbers do), or [`NO_HEAD`].
    head: AtomicU64,
    waker: AtomicWaker,
}

impl Default for CoreSide {
    fn default() -> CoreSide {
        CoreSide {
            waiting: AtomicU32::new(0),
            head: AtomicU64::new(NO_HEAD),
            waker: AtomicWaker::new(),
        }
    }
}

/// Counters of a level (upstream's `apiserver_flowcontrol_*`).
#[derive(Debug, Default)]
pub struct Counters {
    pub dispatched: AtomicU64,
    pub rejected_concurrency_limit: AtomicU64,
    pub rejected_queue_full: AtomicU64,
    /// Requests that waited (queued) before being dispatched.
    pub queued: AtomicU64,
    /// Requests that gave up waiting (the engine's wait limit, or their client left).
    pub timed_out: AtomicU64,
    /// Requests executing now (holding seats).
    pub executing: AtomicU32,
    /// Dispatch attempts that found free seats, but fewer than the next request's
    /// (upstream's `request_dispatch_no_accommodation_total`, here per level; the
    /// request's note counts them per request).
    pub no_accommodation: AtomicU64,
    /// The `Retry-After` of this level's 429s.
    pub retry_after: crate::retry::RetryAfter,
}

/// The changing part of a level's settings.
#[derive(Debug, Clone)]
struct Settings {
    config: LevelConfig,
    uid: Arc<str>,
    limits: Limits,
    /// Bumped when `queuing` changes: the cores rebuild their queue sets.
    generation: u64,
}

/// Upstream's `apiserver_flowcontrol_demand_seats` buckets (demand / nominal seats).
pub const DEMAND_BUCKETS: &[f64] = &[0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.7, 2.0, 2.8, 4.0, 6.0];
/// Upstream's `apiserver_flowcontrol_priority_level_seat_utilization` buckets (seats in use
/// / current limit).
pub const UTILIZATION_BUCKETS: &[f64] =
    &[0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0];

/// A level's borrowing state, touched only by the configuration thread (sampling and
/// adjusting) and metric scrapes, never by requests.
#[derive(Debug)]
struct Borrowing {
    integrator: Integrator,
    stats: DemandStats,
    /// The last adjustment's target (upstream's `target_seats`).
    target: f64,
    /// Seat demand / nominal seats over time (as sampled).
    demand: Timing,
    /// Seats in use / current limit over time (as sampled).
    utilization: Timing,
}

/// One priority level.
#[derive(Debug)]
pub struct Level {
    id: u64,
    /// Fixed for the level's life (the dispatcher keys levels by name).
    name: Arc<str>,
    settings: ArcSwap<Settings>,
    pool: Pool,
    waiting: AtomicU32,
    /// Seats the queued requests ask for, on every core.
    waiting_seats: AtomicU32,
    /// The highest seat demand since the last adjustment (raised by requests).
    peak: AtomicU32,
    borrowing: Mutex<Borrowing>,
    cores: Box<[CoreSide]>,
    /// The level's virtual time (`f64` bits): the highest virtual start dispatched.
    vtime: AtomicU64,
    pub counters: Counters,
}

impl Level {
    fn new(config: LevelConfig, limits: Limits, cores: usize) -> Level {
        // Upstream starts a new level half way into what it may lend.
        let limit = limits.nominal - limits.lendable / 2;
        let (name, uid) = (config.name.as_str().into(), config.uid.as_str().into());
        Level {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            name,
            settings: ArcSwap::from_pointee(Settings { config, uid, limits, generation: 0 }),
            pool: Pool::new(limit),
            waiting: AtomicU32::new(0),
            waiting_seats: AtomicU32::new(0),
            peak: AtomicU32::new(0),
            borrowing: Mutex::new(Borrowing {
                integrator: Integrator::new(Instant::now()),
                stats: DemandStats::default(),
                target: f64::from(limit),
                demand: Timing::new(DEMAND_BUCKETS, Instant::now()),
                utilization: Timing::new(UTILIZATION_BUCKETS, Instant::now()),
            }),
            cores: (0..cores.max(1)).map(|_| CoreSide::default()).collect(),
            vtime: AtomicU64::new(0f64.to_bits()),
            counters: Counters::default(),
        }
    }

    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The uid of the level's PriorityLevelConfiguration (it may be recreated).
    pub fn uid(&self) -> Arc<str> {
        self.settings.load().uid.clone()
    }

    pub fn is_exempt(&self) -> bool {
        self.settings.load().config.exempt
    }

    pub fn limits(&self) -> Limits {
        self.settings.load().limits
    }

    /// The most seats one request of the level may take (upstream's max seats tracker;
    /// None: the estimator's own maximum).
    pub fn max_seats(&self) -> Option<u32> {
        let s = self.settings.load();
        if s.config.exempt {
            return None;
        }
        crate::config::max_seats(s.limits.nominal, s.config.queuing)
    }

    /// The seats the level may use now.
    pub fn current_limit(&self) -> u32 {
        self.pool.limit()
    }

    pub fn seats_in_use(&self) -> u32 {
        self.pool.in_use()
    }

    /// Requests waiting in the level's queues on every core.
    pub fn waiting(&self) -> u32 {
        // Sequentially consistent with the pool and the heads (no lost wake-up).
        self.waiting.load(Ordering::SeqCst)
    }

    /// Seats the level's requests hold or wait for (upstream's seat demand).
    pub fn seat_demand(&self) -> u32 {
        self.pool.in_use().saturating_add(self.waiting_seats.load(Ordering::Acquire))
    }

    /// Raise the period's peak to the demand now (one atomic, no lock).
    fn note_demand(&self) {
        self.peak.fetch_max(self.seat_demand(), Ordering::AcqRel);
    }

    /// The demand statistics and target of the last adjustment.
    pub fn demand_stats(&self) -> (DemandStats, f64) {
        let b = self.borrowing.lock();
        (b.stats, b.target)
    }

    /// The time the level's seat demand spent at each ratio to its nominal seats
    /// (None for a level without nominal seats).
    pub fn demand_timing(&self, now: Instant) -> Option<TimingSnapshot> {
        let nominal = self.limits().nominal;
        (nominal > 0).then(|| self.borrowing.lock().demand.snapshot(now))
    }

    /// The time the level spent at each ratio of seats in use to its current limit.
    pub fn utilization_timing(&self, now: Instant) -> TimingSnapshot {
        self.borrowing.lock().utilization.snapshot(now)
    }

    /// Sample the demand at `now` (the configuration thread, between adjustments).
    fn sample(&self, now: Instant) {
        let demand = self.seat_demand();
        let mut b = self.borrowing.lock();
        b.integrator.observe(now, f64::from(demand));
        self.sample_ratios(&mut b, now, demand);
    }

    /// The demand and utilization ratios at `now`.
    fn sample_ratios(&self, b: &mut Borrowing, now: Instant, demand: u32) {
        let ratio = |x: u32, of: u32| if of == 0 { 0.0 } else { f64::from(x) / f64::from(of) };
        b.demand.set(now, ratio(demand, self.limits().nominal));
        b.utilization.set(now, ratio(self.pool.in_use(), self.pool.limit()));
    }

    /// End the adjustment period at `now`: the period's statistics.
    fn end_period(&self, now: Instant) -> DemandStats {
        let demand = self.seat_demand();
        let peak = self.peak.swap(demand, Ordering::AcqRel).max(demand);
        let mut b = self.borrowing.lock();
        b.integrator.observe(now, f64::from(demand));
        self.sample_ratios(&mut b, now, demand);
        let period = b.integrator.reset(now, f64::from(peak));
        b.stats.update(period);
        b.stats
    }

    /// Take an adjustment's outcome: the new current limit, live.
    fn set_current_limit(&self, limit: u32, target: f64) {
        self.borrowing.lock().target = target;
        if self.pool.limit() == limit {
            return;
        }
        self.pool.set_limit(limit);
        // More seats: every core looks at its waiters again.
        for side in self.cores.iter() {
            side.waker.wake();
        }
    }

    /// The level's queuing settings (None: exempt, or `limitResponse: Reject`).
    pub fn queuing(&self) -> Option<Queuing> {
        let s = self.settings.load();
        if s.config.exempt { None } else { s.config.queuing }
    }

    /// Whether the level is exempt or has no queues (`limitResponse: Reject`).
    pub fn has_queues(&self) -> bool {
        let s = self.settings.load();
        !s.config.exempt && s.config.queuing.is_some()
    }

    /// This core's queues of the level (debug dumps).
    pub fn local_queues(&self) -> Vec<crate::queueset::QueueDigest> {
        SETS.with(|s| s.borrow().get(&self.id).map(|qs| qs.borrow().digest()).unwrap_or_default())
    }

    /// This core's waiting requests of the level: queue, place and slot (debug dumps).
    pub fn local_requests(&self) -> Vec<(usize, usize, Rc<Slot>)> {
        SETS.with(|s| s.borrow().get(&self.id).map(|qs| qs.borrow().requests()).unwrap_or_default())
    }

    /// The lengths of this core's queues of the level (debug dumps).
    pub fn local_queue_lengths(&self) -> Vec<usize> {
        SETS.with(|s| {
            s.borrow()
                .get(&self.id)
                .map(|qs| qs.borrow().queue_lengths().collect())
                .unwrap_or_default()
        })
    }

    fn reconfigure(&self, config: LevelConfig, limits: Limits) {
        let cur = self.settings.load();
        let generation = cur.generation + u64::from(cur.config.queuing != config.queuing);
        // The current limit stays until the adjustment that follows every configuration.
        let uid = config.uid.as_str().into();
        self.settings.store(Arc::new(Settings { config, uid, limits, generation }));
        // More seats, or queues rebuilt: every core looks at its waiters again.
        for side in self.cores.iter() {
            side.waker.wake();
        }
    }

    /// Get `width` seats for a request of `flow` (its FlowSchema and distinguisher,
    /// hashed). Resolves at once on the fast path; otherwise when fair queuing reaches it.
    /// The engine bounds the wait (dropping the future withdraws the request).
    pub fn admit(self: &Arc<Self>, flow: u64, width: u32) -> Admit {
        self.admit_noted(flow, width, || None)
    }

    /// [`Level::admit`], with the request's description for the debug dumps, made only
    /// if the request has to wait.
    pub fn admit_noted(
        self: &Arc<Self>,
        flow: u64,
        width: u32,
        note: impl FnOnce() -> Option<Rc<RequestNote>>,
    ) -> Admit {
        let width = width.max(1);
        let settings = self.settings.load_full();
        if settings.config.exempt {
            self.pool.take_unlimited(width);
            self.note_demand();
            return self.ready(Ok(width), None);
        }
        if self.waiting() == 0 && self.pool.try_take(width) {
            self.note_demand();
            return self.ready(Ok(width), None);
        }
        let Some(queuing) = settings.config.queuing else {
            self.counters.rejected_concurrency_limit.fetch_add(1, Ordering::Relaxed);
            return self.ready(Err(Rejected::ConcurrencyLimit), None);
        };
        let core = this_core() % self.cores.len();
        let qs = self.queue_set(queuing, settings.generation);
        let vtime = f64::from_bits(self.vtime.load(Ordering::Acquire));
        let queued = qs.borrow_mut().enqueue(flow, width, vtime, note());
        match queued {
            Err(Full::QueueFull) => {
                self.counters.rejected_queue_full.fetch_add(1, Ordering::Relaxed);
                self.ready(Err(Rejected::QueueFull), None)
            }
            Ok((slot, queue)) => {
                let length = qs.borrow().queue_len(queue);
                self.waiting.fetch_add(1, Ordering::SeqCst);
                self.waiting_seats.fetch_add(width, Ordering::AcqRel);
                self.note_demand();
                self.cores[core].waiting.fetch_add(1, Ordering::AcqRel);
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
                let waiting = Waiting { slot, queue, qs, core, length };
                let admit = Admit { level: self.clone(), state: State::Waiting(waiting) };
                admit.dispatch_here();
                admit
            }
        }
    }

    fn ready(self: &Arc<Self>, r: Result<u32, Rejected>, from: Option<Served>) -> Admit {
        Admit { level: self.clone(), state: State::Ready(r, from) }
    }

    /// This core's queue set of the level, made (or rebuilt after a queuing change).
    fn queue_set(&self, queuing: Queuing, generation: u64) -> Rc<RefCell<QueueSet>> {
        SETS.with(|sets| {
            let mut sets = sets.borrow_mut();
            let current = sets.get(&self.id).filter(|qs| {
                let qs = qs.borrow();
                qs.config == queuing && qs.generation == generation
            });
            if let Some(qs) = current {
                return qs.clone();
            }
            // Old waiters keep their (old) set through their own handle, and the set is
            // served until they are gone (see `dispatch_local`).
            if let Some(old) = sets.get(&self.id).filter(|qs| qs.borrow().waiting() > 0) {
                RETIRED.with(|r| r.borrow_mut().entry(self.id).or_default().push(old.clone()));
            }
            let mut fresh = QueueSet::new(queuing).unwrap_or_else(|| {
                QueueSet::new(Queuing { queues: 1, hand_size: 1, ..queuing }).expect("1/1")
            });
            fresh.generation = generation;
            let qs = Rc::new(RefCell::new(fresh));
            sets.insert(self.id, qs.clone());
            qs
        })
    }

    /// Seats came back on this core: serve the core they are owed to (this one's queues,
    /// or another core woken).
    fn released(&self, width: u32, from: Option<&Served>) {
        self.pool.give(width);
        if let Some(s) = from {
            s.qs.borrow_mut().finished(s.queue, width, s.since.elapsed());
        }
        if self.waiting() == 0 {
            return;
        }
        self.dispatch_local(this_core() % self.cores.len());
    }

    /// Publish `core`'s head of line.
    fn publish(&self, core: usize, head: Option<&Head>) {
        let key = head.map_or(NO_HEAD, |h| h.finish.max(0.0).to_bits());
        self.cores[core].head.store(key, Ordering::SeqCst);
    }

    /// The core other than `core` whose published head is least and comes before `key`
    /// of `core` (ties go to the lower core); any other core's least head when `key` is
    /// [`NO_HEAD`].
    fn owed_elsewhere(&self, core: usize, key: u64) -> Option<usize> {
        let mut best: Option<(u64, usize)> = None;
        for (c, side) in self.cores.iter().enumerate() {
            let head = side.head.load(Ordering::SeqCst);
            if c == core || head == NO_HEAD {
                continue;
            }
            if best.is_none_or(|b| (head, c) < b) {
                best = Some((head, c));
            }
        }
        best.filter(|b| key == NO_HEAD || *b < (key, core)).map(|(_, c)| c)
    }

    /// Whether a waiter could take seats now (at least one free, or a wide request could
    /// run alone).
    fn seats_free(&self) -> bool {
        let used = self.pool.in_use();
        used < self.pool.limit() || used == 0
    }

    /// This core's queue sets of the level in the order they are served: sets retired
    /// by a queuing change that still hold waiters (dropping drained ones), then the
    /// current one.
    fn local_sets(&self) -> Vec<Rc<RefCell<QueueSet>>> {
        let mut out = RETIRED.with(|r| {
            let mut r = r.borrow_mut();
            let Some(retired) = r.get_mut(&self.id) else { return Vec::new() };
            retired.retain(|qs| qs.borrow().waiting() > 0);
            let out = retired.clone();
            if retired.is_empty() {
                r.remove(&self.id);
            }
            out
        });
        out.extend(SETS.with(|s| s.borrow().get(&self.id).cloned()));
        out
    }

    /// Dispatch this core's waiters of the level in fair order while they are owed the
    /// seats and seats last; wake the core owed them when it is another. A retired set
    /// (its waiters queued before a queuing change) goes before the current one.
    fn dispatch_local(&self, core: usize) {
        let mut owed = None;
        let mut local_head = false;
        for qs in self.local_sets() {
            let (head, o) = self.dispatch_set(core, &qs);
            owed = o;
            if head {
                local_head = true;
                break;
            }
        }
        if !local_head {
            self.publish(core, None);
            owed = self.owed_elsewhere(core, NO_HEAD);
        }
        if let Some(other) = owed.filter(|_| self.seats_free()) {
            self.cores[other].waker.wake();
        }
    }

    /// Dispatch one of this core's queue sets (see [`Level::dispatch_local`]): whether a
    /// head still waits in it (then published), and the core owed the seats instead.
    fn dispatch_set(&self, core: usize, qs: &Rc<RefCell<QueueSet>>) -> (bool, Option<usize>) {
        let mut set = qs.borrow_mut();
        let mut owed = None;
        let mut unfit = None;
        let out = set.dispatch(|head| {
            self.publish(core, Some(head));
            owed = self.owed_elsewhere(core, head.finish.max(0.0).to_bits());
            if owed.is_some() {
                return false;
            }
            let taken = self.pool.try_take(head.width);
            if taken {
                self.waiting_seats.fetch_sub(head.width, Ordering::AcqRel);
            } else if self.pool.in_use() < self.pool.limit() {
                unfit = Some(head.queue);
            }
            taken
        });
        if let Some(queue) = unfit {
            self.counters.no_accommodation.fetch_add(1, Ordering::Relaxed);
            set.no_accommodation(queue);
        }
        let head = set.head();
        if head.is_some() {
            self.publish(core, head.as_ref());
        }
        if out.granted > 0 {
            self.waiting.fetch_sub(out.granted, Ordering::AcqRel);
            self.cores[core].waiting.fetch_sub(out.granted, Ordering::AcqRel);
            self.counters.dispatched.fetch_add(u64::from(out.granted), Ordering::Relaxed);
        }
        if let Some(start) = out.start {
            self.vtime.fetch_max(start.max(0.0).to_bits(), Ordering::AcqRel);
        }
        // Someone who still waits here is the one a release elsewhere wakes.
        if let Some(w) = set.any_waker() {
            self.cores[core].waker.register(&w);
        }
        (head.is_some(), owed)
    }
}

/// A request waiting in a queue.
struct Waiting {
    slot: Rc<Slot>,
    queue: u32,
    qs: Rc<RefCell<QueueSet>>,
    core: usize,
    /// Its queue's length once it was queued.
    length: usize,
}

impl Waiting {
    /// The request is dispatched: served from its queue from now on.
    fn served(&self) -> Served {
        Served { queue: self.queue, qs: self.qs.clone(), since: Instant::now() }
    }
}

/// Where a queued request was dispatched from, and when: its service time corrects its
/// queue's virtual start when it finishes ([`QueueSet::finished`]).
struct Served {
    queue: u32,
    qs: Rc<RefCell<QueueSet>>,
    since: Instant,
}

enum State {
    Ready(Result<u32, Rejected>, Option<Served>),
    Waiting(Waiting),
    Done,
}

/// The future [`Level::admit`] returns.
pub struct Admit {
    level: Arc<Level>,
    state: State,
}

impl Admit {
    /// The length of the request's queue once it was queued (upstream's
    /// `request_queue_length_after_enqueue`); None when it did not queue.
    pub fn queue_length(&self) -> Option<usize> {
        match &self.state {
            State::Waiting(w) => Some(w.length),
            _ => None,
        }
    }

    fn dispatch_here(&self) {
        if let State::Waiting(w) = &self.state {
            self.level.dispatch_local(w.core);
        }
    }
}

impl Future for Admit {
    type Output = Result<Seat, Rejected>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let seat = |width, from| {
            this.level.counters.executing.fetch_add(1, Ordering::AcqRel);
            Seat { level: this.level.clone(), width, from }
        };
        match std::mem::replace(&mut this.state, State::Done) {
            State::Ready(Ok(width), from) => {
                if from.is_none() {
                    this.level.counters.dispatched.fetch_add(1, Ordering::Relaxed);
                }
                Poll::Ready(Ok(seat(width, from)))
            }
            State::Ready(Err(e), _) => Poll::Ready(Err(e)),
            State::Waiting(w) => {
                if !w.slot.granted() {
                    // Woken by a release elsewhere: serve this core's queues.
                    this.level.dispatch_local(w.core);
                }
                if w.slot.granted() {
                    let width = w.slot.width;
                    return Poll::Ready(Ok(seat(width, Some(w.served()))));
                }
                w.slot.set_waker(cx.waker());
                this.level.cores[w.core].waker.register(cx.waker());
                // Seats given back elsewhere between the dispatch above and this
                // registration woke nobody: look once more.
                this.level.dispatch_local(w.core);
                if w.slot.granted() {
                    let width = w.slot.width;
                    return Poll::Ready(Ok(seat(width, Some(w.served()))));
                }
                this.state = State::Waiting(w);
                Poll::Pending
            }
            State::Done => Poll::Pending,
        }
    }
}

impl Drop for Admit {
    fn drop(&mut self) {
        let State::Waiting(w) = std::mem::replace(&mut self.state, State::Done) else { return };
        let level = &self.level;
        let withdrawn = w.qs.borrow_mut().withdraw(&w.slot, w.queue);
        if withdrawn {
            level.counters.timed_out.fetch_add(1, Ordering::Relaxed);
            level.waiting.fetch_sub(1, Ordering::AcqRel);
            level.waiting_seats.fetch_sub(w.slot.width, Ordering::AcqRel);
            level.cores[w.core].waiting.fetch_sub(1, Ordering::AcqRel);
            // It may have been its core's head (the one owed the next seats) and the
            // request its core's waker would wake: publish the new head and pass the turn.
            level.dispatch_local(w.core);
        } else if w.slot.granted() {
            // Granted but never polled again: give the seats straight back.
            level.released(w.slot.width, Some(&w.served()));
        }
    }
}

/// Seats held by an executing request; given back when dropped.
pub struct Seat {
    level: Arc<Level>,
    width: u32,
    from: Option<Served>,
}

impl std::fmt::Debug for Seat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seat").field("width", &self.width).finish_non_exhaustive()
    }
}

impl Seat {
    pub fn level(&self) -> &Arc<Level> {
        &self.level
    }

    pub fn width(&self) -> u32 {
        self.width
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.level.counters.executing.fetch_sub(1, Ordering::AcqRel);
        self.level.released(self.width, self.from.as_ref());
    }
}

/// The priority levels, by name.
#[derive(Debug)]
pub struct Dispatcher {
    server_seats: u32,
    cores: usize,
    levels: ArcSwap<HashMap<String, Arc<Level>>>,
    /// The last adjustment's fair fraction (upstream's `seat_fair_frac`), as f64 bits.
    fair_frac: AtomicU64,
}

impl Dispatcher {
    /// A dispatcher sharing `server_seats` among its levels, for `cores` serving threads.
    pub fn new(server_seats: u32, cores: usize) -> Dispatcher {
        Dispatcher {
            server_seats,
            cores: cores.max(1),
            levels: ArcSwap::from_pointee(HashMap::new()),
            fair_frac: AtomicU64::new(0),
        }
    }

    pub fn server_seats(&self) -> u32 {
        self.server_seats
    }

    /// Serve `levels` from now on: a level whose name is kept keeps its seats, queues and
    /// counters and takes the new settings; a dropped level ends when its last request
    /// does.
    pub fn configure(&self, levels: &[LevelConfig]) {
        let limits = limits(levels, self.server_seats);
        let old = self.levels.load();
        let mut next = HashMap::with_capacity(levels.len());
        for (config, lim) in levels.iter().zip(limits) {
            let level = match old.get(&config.name) {
                Some(l) => {
                    l.reconfigure(config.clone(), lim);
                    l.clone()
                }
                None => Arc::new(Level::new(config.clone(), lim, self.cores)),
            };
            next.insert(config.name.clone(), level);
        }
        self.levels.store(Arc::new(next));
        // As upstream, every configuration is followed by an adjustment.
        self.adjust(Instant::now());
    }

    /// Sample every level's seat demand at `now` (between adjustments).
    pub fn sample(&self, now: Instant) {
        for level in self.levels.load().values() {
            level.sample(now);
        }
    }

    /// One borrowing adjustment at `now`: end every level's demand period and share the
    /// seats out again as current limits (`borrowing::rebalance`), applied live.
    pub fn adjust(&self, now: Instant) {
        let levels = self.levels();
        let demands: Vec<LevelDemand> = levels
            .iter()
            .map(|l| {
                let s = l.settings.load();
                LevelDemand {
                    exempt: s.config.exempt,
                    nominal: s.limits.nominal,
                    min: s.limits.min(),
                    max: s.limits.max(self.server_seats),
                    stats: l.end_period(now),
                }
            })
            .collect();
        let seats = demands.iter().map(|d| d.nominal).sum();
        let alloc = rebalance(seats, &demands);
        for ((level, limit), target) in levels.iter().zip(&alloc.limits).zip(&alloc.targets) {
            level.set_current_limit(*limit, *target);
        }
        self.fair_frac.store(alloc.fair_frac.to_bits(), Ordering::Relaxed);
    }

    /// The last adjustment's fair fraction.
    pub fn fair_frac(&self) -> f64 {
        f64::from_bits(self.fair_frac.load(Ordering::Relaxed))
    }

    /// The level named `name`.
    pub fn level(&self, name: &str) -> Option<Arc<Level>> {
        self.levels.load().get(name).cloned()
    }

    /// Every level (metrics, dumps), by name.
    pub fn levels(&self) -> Vec<Arc<Level>> {
        let mut all: Vec<_> = self.levels.load().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt as _;
    use std::time::Duration;

    fn limited(name: &str, queuing: Option<Queuing>) -> LevelConfig {
        LevelConfig {
            name: name.into(),
            uid: format!("uid-{name}"),
            exempt: false,
            nominal_concurrency_shares: 1,
            lendable_percent: 0,
            borrowing_limit_percent: None,
            queuing,
        }
    }

    fn queuing(queues: u32, hand: u32, limit: u32) -> Option<Queuing> {
        Some(Queuing { queues, hand_size: hand, queue_length_limit: limit })
    }

    /// One level with `seats` seats.
    fn one(seats: u32, q: Option<Queuing>) -> (Dispatcher, Arc<Level>) {
        let d = Dispatcher::new(seats, 2);
        d.configure(&[limited("l", q)]);
        let l = d.level("l").unwrap();
        (d, l)
    }

    #[test]
    fn free_seats_are_taken_at_once_and_a_reject_level_refuses_past_its_limit() {
        let (_d, l) = one(2, None);
        let a = l.admit(1, 1).now_or_never().unwrap().unwrap();
        let _b = l.admit(2, 1).now_or_never().unwrap().unwrap();
        let err = l.admit(3, 1).now_or_never().unwrap().unwrap_err();
        assert_eq!(err, Rejected::ConcurrencyLimit);
        drop(a);
        assert!(l.admit(3, 1).now_or_never().unwrap().is_ok());
        assert_eq!(l.counters.rejected_concurrency_limit.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_waiter_gets_the_seat_given_back_and_a_full_queue_refuses() {
        let (_d, l) = one(1, queuing(1, 1, 1));
        let first = l.admit(1, 1).now_or_never().unwrap().unwrap();
        let mut second = Box::pin(l.admit(1, 1));
        assert!((&mut second).now_or_never().is_none());
        assert_eq!(l.waiting(), 1);
        let third = l.admit(1, 1).now_or_never().unwrap().unwrap_err();
        assert_eq!(third, Rejected::QueueFull);
        drop(first);
        let seat = second.now_or_never().unwrap().unwrap();
        assert_eq!((l.waiting(), l.seats_in_use()), (0, 1));
        drop(seat);
        assert_eq!(l.seats_in_use(), 0);
    }

    #[test]
    fn a_waiter_that_gives_up_leaves_no_trace() {
        let (_d, l) = one(1, queuing(4, 2, 10));
        let held = l.admit(1, 1).now_or_never().unwrap().unwrap();
        let mut w = Box::pin(l.admit(2, 1));
        assert!((&mut w).now_or_never().is_none());
        drop(w);
        assert_eq!(l.waiting(), 0);
        drop(held);
        assert_eq!(l.seats_in_use(), 0);
        // The fast path is open again.
        assert!(l.admit(3, 1).now_or_never().unwrap().is_ok());
    }

    #[test]
    fn exempt_levels_never_wait() {
        let d = Dispatcher::new(1, 1);
        let mut exempt = limited("exempt", None);
        exempt.exempt = true;
        exempt.nominal_concurrency_shares = 0;
        d.configure(&[exempt, limited("other", None)]);
        let l = d.level("exempt").unwrap();
        let seats: Vec<_> =
            (0..50).map(|i| l.admit(i, 1).now_or_never().unwrap().unwrap()).collect();
        assert_eq!(l.seats_in_use(), 50);
        drop(seats);
        assert_eq!(l.seats_in_use(), 0);
    }

    #[test]
    fn raising_a_limit_live_lets_waiters_in() {
        let d = Dispatcher::new(4, 2);
        let shares = |l: u32, m: u32| {
            let mut a = limited("l", queuing(1, 1, 10));
            a.nominal_concurrency_shares = l;
            let mut b = limited("m", None);
            b.nominal_concurrency_shares = m;
            [a, b]
        };
        d.configure(&shares(1, 3));
        let l = d.level("l").unwrap();
        assert_eq!(l.current_limit(), 1);
        let _held = l.admit(1, 1).now_or_never().unwrap().unwrap();
        let mut w = Box::pin(l.admit(1, 1));
        assert!((&mut w).now_or_never().is_none());
        d.configure(&shares(3, 1));
        assert_eq!(l.current_limit(), 3);
        assert!(w.now_or_never().unwrap().is_ok());
    }

    /// Regression: a queuing change (here 1 queue to 4) made the next request's core
    /// build a fresh queue set, and the waiters of the old set were never dispatched
    /// again: they waited until their timeout although seats came back.
    #[test]
    fn waiters_queued_before_a_queuing_change_are_still_dispatched() {
        let d = Dispatcher::new(1, 1);
        let config = |q| [limited("l", q)];
        d.configure(&config(queuing(1, 1, 10)));
        let l = d.level("l").unwrap();
        let held = l.admit(1, 1).now_or_never().unwrap().unwrap();
        let mut old = Box::pin(l.admit(2, 1));
        assert!((&mut old).now_or_never().is_none());
        d.configure(&config(queuing(4, 2, 10)));
        let mut new = Box::pin(l.admit(3, 1));
        assert!((&mut new).now_or_never().is_none());
        assert_eq!(l.waiting(), 2);
        drop(held);
        let first = (&mut old).now_or_never().expect("the old waiter goes first").unwrap();
        assert!((&mut new).now_or_never().is_none(), "one seat");
        drop(first);
        let second = new.now_or_never().expect("then the new one").unwrap();
        assert_eq!(l.waiting(), 0);
        drop(second);
        assert_eq!(l.seats_in_use(), 0);
        assert!(l.admit(4, 1).now_or_never().unwrap().is_ok(), "the fast path is open again");
    }

    /// A busy level borrows what an idle one may lend at the next adjustment, and its
    /// waiter gets in without anyone giving seats back.
    #[test]
    fn an_adjustment_lends_an_idle_levels_seats_to_a_waiting_one() {
        let d = Dispatcher::new(4, 2);
        let mut idle = limited("idle", None);
        idle.lendable_percent = 50;
        let mut busy = limited("busy", queuing(1, 1, 10));
        busy.lendable_percent = 50;
        d.configure(&[idle, busy]);
        let (i, b) = (d.level("idle").unwrap(), d.level("busy").unwrap());
        assert_eq!((i.limits().nominal, b.limits().min()), (2, 1));
        assert_eq!((i.current_limit(), b.current_limit()), (2, 2));
        let held: Vec<_> = (0..2).map(|f| b.admit(f, 1).now_or_never().unwrap().unwrap()).collect();
        let mut w = Box::pin(b.admit(9, 1));
        assert!((&mut w).now_or_never().is_none());
        assert_eq!(b.seat_demand(), 3);
        let t = Instant::now();
        d.sample(t);
        d.adjust(t + Duration::from_secs(10));
        assert_eq!((i.current_limit(), b.current_limit()), (1, 3));
        assert_eq!(b.demand_stats().0.high_watermark, 3.0);
        assert!(w.now_or_never().unwrap().is_ok());
        drop(held);
    }

    /// The sampled demand (seats held and asked for, over the nominal seats) and the
    /// seat utilization are timed in their buckets; a queued request knows its queue's
    /// length.
    #[test]
    fn demand_and_utilization_are_timed_by_ratio() {
        let (d, l) = one(2, queuing(1, 1, 10));
        let held: Vec<_> = (0..2).map(|f| l.admit(f, 1).now_or_never().unwrap().unwrap()).collect();
        let w = Box::pin(l.admit(9, 1));
        assert_eq!(w.queue_length(), Some(1));
        assert_eq!(l.admit(1, 1).queue_length(), Some(2));
        let t = Instant::now() + Duration::from_secs(1);
        d.sample(t);
        d.sample(t + Duration::from_secs(2));
        // From t on: demand 3 (2 held, 1 waiting) of 2 nominal seats, in bucket 1.7; 2
        // of 2 seats in use, in bucket 1.
        let demand = l.demand_timing(t + Duration::from_secs(2)).unwrap();
        let at = |b: f64| demand.buckets.iter().find(|(x, _)| *x == b).unwrap().1;
        assert!(at(1.7) - at(1.4) >= 2e9, "{demand:?}");
        let used = l.utilization_timing(t + Duration::from_secs(2));
        assert!(used.count - used.buckets[11].1 >= 2e9, "{used:?}");
        drop((held, w));
    }

    /// With one seat and two flows, one sending ten requests and one three, the second
    /// flow's requests are all served among the first six.
    #[test]
    fn a_light_flow_is_not_starved_by_a_heavy_one() {
        let (_d, l) = one(1, queuing(64, 1, 100));
        let held = l.admit(0, 1).now_or_never().unwrap().unwrap();
        let (heavy, light) = (0u64, 5u64);
        let mut waiters: Vec<(bool, _)> = Vec::new();
        for _ in 0..10 {
            waiters.push((false, Box::pin(l.admit(heavy, 1))));
        }
        for _ in 0..3 {
            waiters.push((true, Box::pin(l.admit(light, 1))));
        }
        for (_, w) in waiters.iter_mut() {
            assert!(w.as_mut().now_or_never().is_none());
        }
        drop(held);
        let mut served = Vec::new();
        for _ in 0..6 {
            let i = waiters
                .iter_mut()
                .position(|(_, w)| w.as_mut().now_or_never().is_some_and(|r| r.is_ok()))
                .expect("one granted");
            let (is_light, _) = waiters.remove(i);
            served.push(is_light);
            // Each served request finishes at once (its seat was dropped by now_or_never).
        }
        assert_eq!(served.iter().filter(|l| **l).count(), 3, "{served:?}");
    }

    /// Seats given back on one core reach a request waiting on another.
    #[test]
    fn a_release_on_one_core_wakes_a_waiter_on_another() {
        let (d, l) = one(1, queuing(8, 2, 10));
        let _d = d;
        set_core(0);
        let held = l.admit(1, 1).now_or_never().unwrap().unwrap();
        let l2 = l.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            set_core(1);
            let fut = l2.admit(7, 1);
            tx.send(()).unwrap();
            let seat = futures_executor::block_on(fut).unwrap();
            drop(seat);
        });
        rx.recv().unwrap();
        while l.waiting() == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(held);
        waiter.join().unwrap();
        assert_eq!((l.waiting(), l.seats_in_use()), (0, 0));
    }

    /// Fair queuing is level-wide, not per core (issue #19's mice behind an elephant on
    /// another core): core 0 holds the level's two seats and has queued three wide
    /// requests of one flow; core 1 then queues one narrow request of another flow. When
    /// core 0 gives its seats back, the narrow request (the least virtual finish) gets a
    /// seat before core 0's second wide request, although every release happens on
    /// core 0.
    #[test]
    fn a_release_serves_the_core_owed_the_seats_not_its_own_queue_first() {
        let (d, l) = one(2, queuing(8, 1, 10));
        let _d = d;
        set_core(0);
        let held = l.admit(1, 2).now_or_never().unwrap().unwrap();
        let elephant = 0u64;
        let mut wide: Vec<_> = (0..3).map(|_| Box::pin(l.admit(elephant, 2))).collect();
        for w in wide.iter_mut() {
            assert!(w.as_mut().now_or_never().is_none());
        }
        let (l2, (tx, rx)) = (l.clone(), std::sync::mpsc::channel());
        let mouse = std::thread::spawn(move || {
            set_core(1);
            futures_executor::block_on(async {
                let seat = l2.admit(5, 1).await.unwrap();
                tx.send(()).unwrap();
                drop(seat);
            })
        });
        while l.waiting() < 4 {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(held);
        // Core 0 runs its wide requests one after the other as they are granted, and
        // counts how many it ran before the narrow one was served.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut wide_before = 0;
        loop {
            if rx.try_recv().is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "the narrow request was never served");
            if let Some(i) = wide.iter_mut().position(|w| w.as_mut().now_or_never().is_some()) {
                drop(wide.remove(i));
                wide_before += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        mouse.join().unwrap();
        assert!(wide_before <= 1, "{wide_before} wide requests of core 0 went first");
        for w in wide {
            futures_executor::block_on(w).unwrap();
        }
        assert_eq!((l.waiting(), l.seats_in_use()), (0, 0));
    }

    /// A head that finds some seats free but not enough is counted (upstream's
    /// `request_dispatch_no_accommodation_total`), on the level and on its note; a full
    /// level is not an attempt.
    #[test]
    fn a_head_that_finds_too_few_free_seats_is_counted_on_its_note() {
        let (_d, l) = one(3, queuing(4, 1, 10));
        let held: Vec<_> = (0..3).map(|f| l.admit(f, 1).now_or_never().unwrap().unwrap()).collect();
        let note = Rc::new(RequestNote::default());
        let mut wide = Box::pin(l.admit_noted(9, 3, || Some(note.clone())));
        assert!(wide.as_mut().now_or_never().is_none());
        assert_eq!(note.no_accommodation.get(), 0, "no seat was free");
        let mut held = held.into_iter();
        drop(held.next());
        assert!(wide.as_mut().now_or_never().is_none());
        // Every attempt counts: the release's, and the waiter's own when it is polled.
        let once = note.no_accommodation.get();
        assert!(once >= 1);
        drop(held.next());
        assert!(wide.as_mut().now_or_never().is_none());
        let counted = note.no_accommodation.get();
        assert!(counted > once, "{counted}");
        assert_eq!(l.counters.no_accommodation.load(Ordering::Relaxed), u64::from(counted));
        drop(held);
        assert!(wide.now_or_never().unwrap().is_ok());
    }

    /// Regression guard for lost wake-ups: threads contending for one seat, each request
    /// queued behind the others, all finish (a waiter nobody wakes would hang the run).
    #[test]
    fn contending_threads_all_get_their_turn() {
        // One core index per thread (the engine gives each serving thread its own).
        let d = Dispatcher::new(1, 4);
        d.configure(&[limited("l", queuing(16, 2, 1000))]);
        let l = d.level("l").unwrap();
        // Held until every thread's first request waits, so the queued path is taken.
        set_core(3);
        let first = l.admit(99, 1).now_or_never().unwrap().unwrap();
        let threads: Vec<_> = (0..3)
            .map(|core| {
                let l = l.clone();
                std::thread::spawn(move || {
                    set_core(core);
                    futures_executor::block_on(async {
                        for i in 0..3000u64 {
                            let seat = l.admit(i.wrapping_mul(31) ^ core as u64, 1).await.unwrap();
                            drop(seat);
                        }
                    })
                })
            })
            .collect();
        while l.waiting() < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(first);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for t in threads {
                t.join().unwrap();
            }
            tx.send(()).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(60)).expect("a waiter was never woken");
        assert_eq!((l.waiting(), l.seats_in_use()), (0, 0));
        assert!(l.counters.queued.load(Ordering::Relaxed) >= 3);
    }

    /// The same with several requests of mixed widths in flight on every core: wide heads
    /// hold the level's dispatching, cores hand the turn to each other, and everyone
    /// finishes with every seat given back.
    #[test]
    fn concurrent_requests_of_mixed_widths_on_every_core_all_finish() {
        let d = Dispatcher::new(3, 3);
        d.configure(&[limited("l", queuing(16, 2, 1000))]);
        let l = d.level("l").unwrap();
        let threads: Vec<_> = (0..3)
            .map(|core| {
                let l = l.clone();
                std::thread::spawn(move || {
                    set_core(core);
                    let tasks = (0..4u64).map(|t| {
                        let l = l.clone();
                        async move {
                            for i in 0..500u64 {
                                let width = (i % 3 + 1) as u32;
                                let flow = t * 7 + core as u64;
                                let seat = l.admit(flow, width).await.unwrap();
                                if i % 2 == 0 {
                                    // Hold the seats over a yield to the other tasks.
                                    let mut yielded = false;
                                    std::future::poll_fn(|cx| {
                                        if std::mem::replace(&mut yielded, true) {
                                            return Poll::Ready(());
                                        }
                                        cx.waker().wake_by_ref();
                                        Poll::Pending
                                    })
                                    .await;
                                }
                                drop(seat);
                            }
                        }
                    });
                    futures_executor::block_on(futures_util::future::join_all(tasks));
                })
            })
            .collect();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for t in threads {
                t.join().unwrap();
            }
            tx.send(()).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(60)).expect("a waiter was never woken");
        assert_eq!((l.waiting(), l.seats_in_use()), (0, 0));
    }
}
