//! One core's queues of one Limited level, served by fair queuing.
//!
//! A waiting request sits in one queue of its flow's hand (the shortest). Each queue has
//! a virtual start time for its head; the next request dispatched is the head whose
//! virtual finish (`start + width × G`) is least, so flows share the level's seat-seconds
//! in proportion to their numbers of queues, not their request rates. Work is counted
//! in units of upstream's estimated service time G ([`ESTIMATED_SERVICE`], 3 ms): a
//! dispatched head moves its queue's start on by its width (width × G), and when it
//! finishes after serving S its queue's start is moved back by width × (G − S) / G
//! (upstream's correction), so a flow is charged the seat-seconds it really used: many
//! quick requests (a mouse's GETs) cost little beside a few long ones (an elephant's
//! LISTs). A queue's start never goes below its head's arrival (upstream's anti-windup).
//! Virtual time is the level's, shared by every
//! core (start-time fair queuing): the highest start of any request dispatched on any
//! core, which the dispatcher keeps in an atomic and hands in when a request is queued; a
//! queue that was empty starts at it, so an idle flow gains no credit and every core's
//! virtual finish times are comparable (the dispatcher serves the core whose head's is
//! least). A head that does not fit the free seats is not skipped (so wide requests are
//! not starved); dispatching stops until seats come back.
//!
//! Invariants: the queue set lives on its core only (no locking); every waiter is in
//! exactly one queue until it is granted or withdrawn; a queue never holds more than
//! `queue_length_limit` waiters; a queue's start goes back only by the correction of a
//! finished request, and never below its head's arrival.

use crate::config::Queuing;
use crate::note::RequestNote;
use crate::shuffle::Dealer;
use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::Waker;
use std::time::Duration;

/// Upstream's estimated service time of a request (G): the unit of virtual time, what a
/// request is charged per seat until it finishes and its real service time is known.
pub const ESTIMATED_SERVICE: Duration = Duration::from_millis(3);

/// A waiter's state, shared by its future and its queue.
pub struct Slot {
    pub width: u32,
    /// The level's virtual time when it was queued (its queue's start stays at or
    /// above it while it is the head).
    arrival: f64,
    /// The engine's description of the request (debug dumps).
    pub note: Option<Rc<RequestNote>>,
    granted: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("width", &self.width)
            .field("granted", &self.granted())
            .finish()
    }
}

impl Slot {
    fn new(width: u32, arrival: f64, note: Option<Rc<RequestNote>>) -> Slot {
        Slot { width, arrival, note, granted: Cell::new(false), waker: Cell::new(None) }
    }

    pub fn granted(&self) -> bool {
        self.granted.get()
    }

    pub fn set_waker(&self, w: &Waker) {
        self.waker.set(Some(w.clone()));
    }

    /// A clone of the waker last set (None before the first poll).
    pub fn waker(&self) -> Option<Waker> {
        let w = self.waker.take();
        self.waker.set(w.clone());
        w
    }

    fn grant(&self) {
        self.granted.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// One queue as the debug dumps show it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueDigest {
    pub pending: usize,
    pub executing: u32,
    pub seats_in_use: u32,
    /// Virtual time (in seats) at which its head may start.
    pub next_dispatch_r: f64,
    pub seats_waiting: u32,
}

#[derive(Debug, Default)]
struct Queue {
    waiters: VecDeque<Rc<Slot>>,
    /// Virtual time at which the head may start.
    next_start: f64,
    /// Seats this queue's dispatched requests still hold.
    executing: u32,
    /// Those requests.
    running: u32,
}

impl Queue {
    fn seats_waiting(&self) -> u32 {
        self.waiters.iter().map(|w| w.width).sum()
    }
}

/// Why a request was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Its queue already holds `queue_length_limit` requests.
    QueueFull,
}

/// The request a queue set would dispatch next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Head {
    pub queue: u32,
    /// Its virtual start (its queue's).
    pub start: f64,
    /// Its virtual finish: start + width (the fair order, comparable across cores).
    pub finish: f64,
    pub width: u32,
}

/// What one [`QueueSet::dispatch`] granted.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Dispatched {
    pub granted: u32,
    /// The highest virtual start of the granted requests (the level's virtual time moves
    /// up to it).
    pub start: Option<f64>,
}

/// The queues of one level on one core.
#[derive(Debug)]
pub struct QueueSet {
    pub config: Queuing,
    dealer: Dealer,
    queues: Vec<Queue>,
    waiting: u32,
    hand: Vec<u32>,
    /// The level's queuing generation this set was made for (the dispatcher's).
    pub generation: u64,
}

impl QueueSet {
    /// None when the sizes are invalid (the engine validates them before).
    pub fn new(config: Queuing) -> Option<QueueSet> {
        let dealer = Dealer::new(config.queues, config.hand_size)?;
        let queues = (0..config.queues).map(|_| Queue::default()).collect();
        Some(QueueSet { config, dealer, queues, waiting: 0, hand: Vec::new(), generation: 0 })
    }

    /// Requests waiting here.
    pub fn waiting(&self) -> u32 {
        self.waiting
    }

    /// Queues with a waiter (for dumps and metrics).
    pub fn queue_lengths(&self) -> impl Iterator<Item = usize> + '_ {
        self.queues.iter().map(|q| q.waiters.len())
    }

    /// The number of requests waiting in queue `queue`.
    pub fn queue_len(&self, queue: u32) -> usize {
        self.queues.get(queue as usize).map_or(0, |q| q.waiters.len())
    }

    /// Every waiting request: its queue, its place in the queue and its slot (debug
    /// dumps).
    pub fn requests(&self) -> Vec<(usize, usize, Rc<Slot>)> {
        let mut out = Vec::with_capacity(self.waiting as usize);
        for (qi, q) in self.queues.iter().enumerate() {
            out.extend(q.waiters.iter().enumerate().map(|(i, s)| (qi, i, s.clone())));
        }
        out
    }

    /// Each queue's state (debug dumps).
    pub fn digest(&self) -> Vec<QueueDigest> {
        self.queues
            .iter()
            .map(|q| QueueDigest {
                pending: q.waiters.len(),
                executing: q.running,
                seats_in_use: q.executing,
                next_dispatch_r: q.next_start,
                seats_waiting: q.seats_waiting(),
            })
            .collect()
    }

    /// Queue a request of `flow` needing `width` seats: in the least loaded queue of the
    /// flow's hand, at the level's virtual time `vtime` if that queue was empty. Returns
    /// its slot and queue index.
    pub fn enqueue(
        &mut self,
        flow: u64,
        width: u32,
        vtime: f64,
        note: Option<Rc<RequestNote>>,
    ) -> Result<(Rc<Slot>, u32), Full> {
        self.dealer.deal(flow, &mut self.hand);
        let best = self
            .hand
            .iter()
            .copied()
            .min_by_key(|i| {
                let q = &self.queues[*i as usize];
                q.seats_waiting() + q.executing
            })
            .unwrap_or(0);
        let q = &mut self.queues[best as usize];
        if q.waiters.len() >= self.config.queue_length_limit as usize {
            return Err(Full::QueueFull);
        }
        if q.waiters.is_empty() {
            q.next_start = q.next_start.max(vtime);
        }
        let slot = Rc::new(Slot::new(width, vtime, note));
        q.waiters.push_back(slot.clone());
        self.waiting += 1;
        Ok((slot, best))
    }

    /// Take a slot out of its queue (its request gave up waiting). False when it was no
    /// longer queued (granted meanwhile).
    pub fn withdraw(&mut self, slot: &Rc<Slot>, queue: u32) -> bool {
        let Some(q) = self.queues.get_mut(queue as usize) else { return false };
        let Some(i) = q.waiters.iter().position(|w| Rc::ptr_eq(w, slot)) else { return false };
        q.waiters.remove(i);
        self.waiting -= 1;
        true
    }

    /// The request fair queuing would dispatch next: the head of least virtual finish.
    pub fn head(&self) -> Option<Head> {
        self.queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| {
                let head = q.waiters.front()?;
                let finish = q.next_start + f64::from(head.width);
                Some(Head { queue: i as u32, start: q.next_start, finish, width: head.width })
            })
            .min_by(|a, b| a.finish.total_cmp(&b.finish))
    }

    /// Dispatch heads in fair order while `take` agrees (it finds seats for the head);
    /// returns how many were granted and the highest virtual start among them.
    pub fn dispatch(&mut self, mut take: impl FnMut(&Head) -> bool) -> Dispatched {
        let mut out = Dispatched::default();
        while let Some(head) = self.head() {
            if !take(&head) {
                break;
            }
            let q = &mut self.queues[head.queue as usize];
            let slot = q.waiters.pop_front().expect("head");
            q.next_start += f64::from(head.width);
            q.executing += head.width;
            q.running += 1;
            self.waiting -= 1;
            out.granted += 1;
            out.start = Some(out.start.map_or(head.start, |s: f64| s.max(head.start)));
            slot.grant();
        }
        out
    }

    /// A request dispatched from `queue` finished after serving `served`, giving back
    /// `width` seats: its queue is charged what it really used instead of the estimate.
    pub fn finished(&mut self, queue: u32, width: u32, served: Duration) {
        let Some(q) = self.queues.get_mut(queue as usize) else { return };
        q.executing = q.executing.saturating_sub(width);
        q.running = q.running.saturating_sub(1);
        let used = served.as_secs_f64() / ESTIMATED_SERVICE.as_secs_f64();
        q.next_start -= f64::from(width) * (1.0 - used);
        if let Some(head) = q.waiters.front() {
            q.next_start = q.next_start.max(head.arrival);
        }
    }

    /// The head of `queue` was the next to go, and some seats were free but not enough:
    /// count it on its note.
    pub fn no_accommodation(&self, queue: u32) {
        let head = self.queues.get(queue as usize).and_then(|q| q.waiters.front());
        if let Some(note) = head.and_then(|s| s.note.as_ref()) {
            note.no_accommodation.set(note.no_accommodation.get().saturating_add(1));
        }
    }

    /// A waker of some waiter, to be woken when seats free up elsewhere.
    pub fn any_waker(&self) -> Option<Waker> {
        self.queues.iter().find_map(|q| q.waiters.front().and_then(|s| s.waker()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(queues: u32, hand: u32, limit: u32) -> QueueSet {
        QueueSet::new(Queuing { queues, hand_size: hand, queue_length_limit: limit }).unwrap()
    }

    #[test]
    fn a_full_queue_refuses_more() {
        let mut qs = set(1, 1, 2);
        let now = 0.0;
        qs.enqueue(1, 1, now, None).unwrap();
        qs.enqueue(1, 1, now, None).unwrap();
        assert_eq!(qs.enqueue(1, 1, now, None).unwrap_err(), Full::QueueFull);
        assert_eq!(qs.waiting(), 2);
    }

    #[test]
    fn one_seat_at_a_time_alternates_between_flows() {
        let mut qs = set(8, 1, 100);
        let now = 0.0;
        let b = (1..64).find(|f| f % 8 != 0).unwrap();
        let heavy: Vec<_> = (0..10).map(|_| qs.enqueue(0, 1, now, None).unwrap().0).collect();
        let light: Vec<_> = (0..3).map(|_| qs.enqueue(b, 1, now, None).unwrap().0).collect();
        let mut order = Vec::new();
        for _ in 0..6 {
            let mut once = true;
            qs.dispatch(|_| std::mem::take(&mut once));
            let h = heavy.iter().filter(|s| s.granted()).count();
            let l = light.iter().filter(|s| s.granted()).count();
            order.push((h, l));
        }
        assert_eq!(order.last(), Some(&(3, 3)), "{order:?}");
    }

    /// A flow is charged the service time it used, not its number of requests (upstream's
    /// correction by G − S): after a request of 300 ms against one of no time, the quick
    /// flow's next five requests all go before the slow flow's next one. Regression: kapi
    /// charged every request its width alone, so a mouse's many quick GETs counted as
    /// much as an elephant's long LISTs and the mice waited seconds behind them.
    #[test]
    fn flows_are_charged_the_service_time_they_used() {
        let queue_of = |flow| set(8, 1, 100).enqueue(flow, 1, 0.0, None).unwrap().1;
        let (slow, quick) = (0, (1..64).find(|f| queue_of(*f) != queue_of(0)).unwrap());
        let mut qs = set(8, 1, 100);
        let (_, slow_q) = qs.enqueue(slow, 1, 0.0, None).unwrap();
        let (_, quick_q) = qs.enqueue(quick, 1, 0.0, None).unwrap();
        assert_eq!(qs.dispatch(|_| true).granted, 2);
        qs.finished(slow_q, 1, Duration::from_millis(300));
        qs.finished(quick_q, 1, Duration::ZERO);
        let vtime = 1.0;
        let slow_next = qs.enqueue(slow, 1, vtime, None).unwrap().0;
        let quick_next: Vec<_> =
            (0..5).map(|_| qs.enqueue(quick, 1, vtime, None).unwrap().0).collect();
        for i in 1..=5 {
            let mut once = true;
            qs.dispatch(|_| std::mem::take(&mut once));
            assert_eq!(quick_next.iter().filter(|s| s.granted()).count(), i);
            assert!(!slow_next.granted(), "the slow flow waits its turn");
        }
        qs.dispatch(|_| true);
        assert!(slow_next.granted());
    }

    #[test]
    fn a_head_that_does_not_fit_is_not_skipped() {
        let mut qs = set(1, 1, 10);
        let now = 0.0;
        let wide = qs.enqueue(1, 5, now, None).unwrap().0;
        let narrow = qs.enqueue(1, 1, now, None).unwrap().0;
        let mut free = 3;
        let out = qs.dispatch(|h| {
            let ok = h.width <= free;
            if ok {
                free -= h.width;
            }
            ok
        });
        assert_eq!(out.granted, 0);
        assert!(!wide.granted() && !narrow.granted());
    }

    #[test]
    fn waiting_requests_are_listed_by_queue_and_place_with_their_notes() {
        let mut qs = set(1, 1, 10);
        let now = 0.0;
        let note = |v: &str| Some(Rc::new(RequestNote { verb: v.into(), ..Default::default() }));
        qs.enqueue(1, 1, now, note("get")).unwrap();
        qs.enqueue(1, 2, now, note("list")).unwrap();
        let listed: Vec<_> = qs
            .requests()
            .into_iter()
            .map(|(q, i, s)| (q, i, s.width, s.note.as_ref().unwrap().verb.clone()))
            .collect();
        assert_eq!(listed, [(0, 0, 1, "get".to_string()), (0, 1, 2, "list".to_string())]);
    }

    #[test]
    fn a_withdrawn_waiter_leaves_its_queue() {
        let mut qs = set(4, 2, 10);
        let now = 0.0;
        let (slot, q) = qs.enqueue(9, 1, now, None).unwrap();
        assert!(qs.withdraw(&slot, q));
        assert!(!qs.withdraw(&slot, q));
        assert_eq!(qs.waiting(), 0);
        assert_eq!(qs.dispatch(|_| true).granted, 0);
    }

    /// A flow that arrives when virtual time has moved on starts there, not behind the
    /// flow that was served meanwhile, and not ahead of it by credit it never used; the
    /// highest start dispatched is reported (the level's virtual time).
    #[test]
    fn an_empty_queue_starts_at_the_levels_virtual_time() {
        let mut qs = set(8, 1, 100);
        let b = (1..64).find(|f| f % 8 != 0).unwrap();
        for _ in 0..4 {
            qs.enqueue(0, 10, 0.0, None).unwrap();
        }
        let out = qs.dispatch(|_| true);
        assert_eq!((out.granted, out.start), (4, Some(30.0)));
        let heavy = qs.enqueue(0, 10, 30.0, None).unwrap().0;
        let light = qs.enqueue(b, 1, 30.0, None).unwrap().0;
        // The heavy flow's queue starts at 40 (four served), the light one's at 30.
        assert_eq!(qs.head().map(|h| (h.start, h.finish, h.width)), Some((30.0, 31.0, 1)));
        let mut once = true;
        qs.dispatch(|_| std::mem::take(&mut once));
        assert!(light.granted() && !heavy.granted());
    }
}
