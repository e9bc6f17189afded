//! The one index of watchers behind every fan-out in storage: the embedded store's watch
//! hub (`embedded/watch.rs`), the watch cache's dispatch (`cache/dispatch.rs`) and each
//! core's fan-out hub (`cache/hub.rs`) keep their watchers in an [`Index`] and close slow
//! ones by the one [`SlowPolicy`].
//!
//! Index: a watcher is found by its filter ([`WatchFilter`]): by index value when it has
//! one (pods by `spec.nodeName`; its key prefix is checked per event), else by its key
//! prefix (a resource, a namespace, or one key for a watch of one name), looked up among
//! the prefixes that contain the event's key (the caller's routes); a watcher whose prefix
//! is no route (does not end in `/`) is checked against every event. An event costs
//! O(routes + interested watchers), not O(watchers).
//!
//! Close policy: each watcher has a bounded buffer of `capacity` events. One whose buffer
//! is full may take up to `capacity` more for the `grace` period; full for longer than
//! that, or holding twice its capacity, it is closed ([`CloseReason::TooSlow`]: it
//! resumes or re-lists), never delaying the others. A watcher whose receiver is gone is
//! closed as [`CloseReason::Gone`]. Fullness is judged when events are offered: a
//! watcher that took its buffer below `capacity` by the next offer starts afresh.
//!
//! Invariants: a watcher is in exactly one bucket while it is in the index; a closed
//! watcher is out of the index when `deliver` returns and is handed to the caller with
//! its reason exactly once; `len` is the number of watchers in the index.

use std::cell::Cell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Which events a watcher wants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct WatchFilter {
    /// Key prefix: the resource prefix, or one namespace's (`/registry/pods/ns/`); with
    /// `exact`, one object's key.
    pub prefix: String,
    /// `prefix` is one object's key (a watch of one name): only that key.
    pub exact: bool,
    /// Only events whose object (now or before) has this index value.
    pub index: Option<String>,
}

impl WatchFilter {
    /// Whether events of `key` are for this watcher (its index aside).
    pub fn wants_key(&self, key: &str) -> bool {
        if self.exact { key == self.prefix } else { key.starts_with(&self.prefix) }
    }

    /// Whether the watcher is found through its prefix among an event's routes.
    fn routed(&self) -> bool {
        self.exact || self.prefix.ends_with('/')
    }
}

/// Why a watcher was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Its buffer stayed full past the grace period, or held twice its capacity.
    TooSlow,
    /// Its receiver went away.
    Gone,
    /// What fed it ended (the cache re-listed, a hub fell behind or was left empty, the
    /// store closed).
    Ended,
}

/// A watcher's answer to one event: taken, or closed for this reason.
pub type Offer = Result<(), CloseReason>;

/// What the index needs of a watcher.
pub trait Watcher {
    fn id(&self) -> u64;
    fn filter(&self) -> &WatchFilter;
}

/// How slow a watcher may be (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct SlowPolicy {
    /// Events a watcher's buffer holds normally.
    pub capacity: usize,
    /// How long its buffer may stay full (holding up to twice `capacity`).
    pub grace: Duration,
}

/// The grace period of kapi's watchers. Upstream's cacher likewise blocks on a full
/// watcher for at most its dispatch budget (about 100 ms) before ending it.
pub const GRACE: Duration = Duration::from_millis(100);

impl SlowPolicy {
    pub fn new(capacity: usize) -> Self {
        SlowPolicy { capacity: capacity.max(1), grace: GRACE }
    }

    /// The most a watcher's buffer may hold (a channel's bound).
    pub fn hard_bound(&self) -> usize {
        self.capacity.saturating_mul(2)
    }

    /// Whether a watcher holding `queued` events may take one more.
    #[inline]
    pub fn admit(&self, queued: usize, full: &Fullness) -> Offer {
        if queued < self.capacity {
            if full.0.get().is_some() {
                full.0.set(None);
            }
            return Ok(());
        }
        self.admit_full(queued, full, Instant::now())
    }

    /// The full buffer's case, out of line so that `admit` stays small on the fan-out
    /// path.
    #[cold]
    #[inline(never)]
    fn admit_full(&self, queued: usize, full: &Fullness, now: Instant) -> Offer {
        if queued >= self.hard_bound() {
            return Err(CloseReason::TooSlow);
        }
        match full.0.get() {
            None => {
                full.0.set(Some(now));
                Ok(())
            }
            Some(since) if now.saturating_duration_since(since) > self.grace => {
                Err(CloseReason::TooSlow)
            }
            Some(_) => Ok(()),
        }
    }
}

/// Since when a watcher's buffer has been full, if it is.
#[derive(Debug, Default)]
pub struct Fullness(Cell<Option<Instant>>);

/// Watchers by prefix and index value.
pub struct Index<W> {
    by_prefix: HashMap<String, Vec<W>>,
    by_index: HashMap<String, Vec<W>>,
    /// Watchers whose prefix is no route: checked against every event.
    scan: Vec<W>,
    count: usize,
}

impl<W> Default for Index<W> {
    fn default() -> Self {
        Index { by_prefix: HashMap::new(), by_index: HashMap::new(), scan: Vec::new(), count: 0 }
    }
}

impl<W: Watcher> Index<W> {
    pub fn add(&mut self, w: W) {
        let f = w.filter();
        let bucket = match &f.index {
            Some(v) => self.by_index.entry(v.clone()).or_default(),
            None if f.routed() => self.by_prefix.entry(f.prefix.clone()).or_default(),
            None => &mut self.scan,
        };
        bucket.push(w);
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every watcher.
    pub fn iter(&self) -> impl Iterator<Item = &W> {
        self.by_prefix.values().chain(self.by_index.values()).flatten().chain(&self.scan)
    }

    /// Take a watcher out (its client went away).
    pub fn remove(&mut self, id: u64) -> Option<W> {
        let f = |ws: &mut Vec<W>| ws.iter().position(|w| w.id() == id).map(|i| ws.swap_remove(i));
        let found = self
            .by_prefix
            .values_mut()
            .chain(self.by_index.values_mut())
            .chain(std::iter::once(&mut self.scan))
            .find_map(f);
        if found.is_some() {
            self.count -= 1;
            self.by_prefix.retain(|_, ws| !ws.is_empty());
            self.by_index.retain(|_, ws| !ws.is_empty());
        }
        found
    }

    /// Take every watcher out.
    pub fn drain(&mut self) -> Vec<W> {
        self.count = 0;
        let mut all: Vec<W> = std::mem::take(&mut self.scan);
        all.extend(self.by_prefix.drain().flat_map(|(_, ws)| ws));
        all.extend(self.by_index.drain().flat_map(|(_, ws)| ws));
        all
    }

    /// Take out the watchers `keep` refuses, handing each to `closed` with its reason.
    pub fn sweep(
        &mut self,
        mut keep: impl FnMut(&W) -> Offer,
        mut closed: impl FnMut(W, CloseReason),
    ) {
        let buckets = self.by_prefix.values_mut().chain(self.by_index.values_mut());
        let mut removed = 0;
        for ws in buckets.chain(std::iter::once(&mut self.scan)) {
            removed += offer_all(ws, |w| keep(w), &mut closed);
        }
        if removed > 0 {
            self.count -= removed;
            self.by_prefix.retain(|_, ws| !ws.is_empty());
            self.by_index.retain(|_, ws| !ws.is_empty());
        }
    }

    /// Offer an event of `key` to every watcher that may want it: those under one of
    /// `prefixes` (the routes containing `key`, each once), those with one of `indexes`
    /// (the object's index values now and before) whose prefix contains `key`, and the
    /// unrouted ones whose prefix contains `key`. A watcher that refuses it is taken out
    /// and handed to `closed` with its reason.
    pub fn deliver(
        &mut self,
        key: &str,
        prefixes: &[&str],
        indexes: &[&str],
        mut offer: impl FnMut(&W) -> Offer,
        mut closed: impl FnMut(W, CloseReason),
    ) {
        let mut removed = 0;
        for p in prefixes {
            if let Some(ws) = self.by_prefix.get_mut(*p) {
                let n = offer_all(ws, &mut offer, &mut closed);
                if n > 0 {
                    removed += n;
                    if ws.is_empty() {
                        self.by_prefix.remove(*p);
                    }
                }
            }
        }
        for (i, v) in indexes.iter().enumerate() {
            if indexes[..i].contains(v) {
                continue;
            }
            if let Some(ws) = self.by_index.get_mut(*v) {
                let wanted = |w: &W| if w.filter().wants_key(key) { offer(w) } else { Ok(()) };
                let n = offer_all(ws, wanted, &mut closed);
                if n > 0 {
                    removed += n;
                    if ws.is_empty() {
                        self.by_index.remove(*v);
                    }
                }
            }
        }
        if !self.scan.is_empty() {
            let wanted = |w: &W| if w.filter().wants_key(key) { offer(w) } else { Ok(()) };
            removed += offer_all(&mut self.scan, wanted, &mut closed);
        }
        self.count -= removed;
    }
}

/// Offer to each of `ws`; take out those that refuse. Returns how many were taken out.
#[inline]
fn offer_all<W>(
    ws: &mut Vec<W>,
    mut offer: impl FnMut(&W) -> Offer,
    closed: &mut impl FnMut(W, CloseReason),
) -> usize {
    let before = ws.len();
    let mut i = 0;
    while i < ws.len() {
        match offer(&ws[i]) {
            Ok(()) => i += 1,
            Err(reason) => closed(ws.swap_remove(i), reason),
        }
    }
    before - ws.len()
}

/// The routes of `key` for watchers of arbitrary prefixes: every prefix of it ending in
/// `/`, and the key itself (unless it ends in `/`).
pub fn slash_routes(key: &str) -> Vec<&str> {
    let mut routes: Vec<&str> = key.match_indices('/').map(|(i, _)| &key[..=i]).collect();
    if !key.ends_with('/') {
        routes.push(key);
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::*;

    struct W(u64, WatchFilter);

    impl Watcher for W {
        fn id(&self) -> u64 {
            self.0
        }
        fn filter(&self) -> &WatchFilter {
            &self.1
        }
    }

    fn filter(prefix: &str, exact: bool, index: Option<&str>) -> WatchFilter {
        WatchFilter { prefix: prefix.into(), exact, index: index.map(Into::into) }
    }

    fn got(index: &mut Index<W>, key: &str, indexes: &[&str]) -> Vec<u64> {
        let mut ids = Vec::new();
        let routes = slash_routes(key);
        index.deliver(
            key,
            &routes,
            indexes,
            |w| {
                ids.push(w.0);
                Ok(())
            },
            |_, _| {},
        );
        ids.sort();
        ids
    }

    #[test]
    fn events_reach_exactly_the_watchers_whose_filter_wants_them() {
        let mut index = Index::default();
        index.add(W(1, filter("/registry/pods/", false, None)));
        index.add(W(2, filter("/registry/pods/a/", false, None)));
        index.add(W(3, filter("/registry/pods/a/x", true, None)));
        index.add(W(4, filter("/registry/pods/", false, Some("node1"))));
        index.add(W(5, filter("/registry/pods/b/", false, Some("node1"))));
        index.add(W(6, filter("/registry/po", false, None)));
        index.add(W(7, filter("/registry/pods/a/xy", false, None)));
        assert_eq!(index.len(), 7);
        assert_eq!(got(&mut index, "/registry/pods/a/x", &[]), [1, 2, 3, 6]);
        assert_eq!(got(&mut index, "/registry/pods/a/x", &["node1", "node1"]), [1, 2, 3, 4, 6]);
        assert_eq!(got(&mut index, "/registry/pods/a/xyz", &[]), [1, 2, 6, 7]);
        assert_eq!(got(&mut index, "/registry/pods/b/y", &["node1"]), [1, 4, 5, 6]);
        assert_eq!(got(&mut index, "/registry/services/a/x", &[]), Vec::<u64>::new());
        assert!(index.remove(3).is_some());
        assert!(index.remove(3).is_none());
        assert_eq!(got(&mut index, "/registry/pods/a/x", &[]), [1, 2, 6]);
        assert_eq!(index.len(), 6);
        assert_eq!(index.drain().len(), 6);
        assert!(index.is_empty());
    }

    #[test]
    fn refused_events_close_their_watchers_with_the_reason_once() {
        let mut index = Index::default();
        for id in 1..=4 {
            index.add(W(id, filter("/r/", false, None)));
        }
        let mut closed = Vec::new();
        let refuse = |w: &W| match w.0 {
            2 => Err(CloseReason::TooSlow),
            3 => Err(CloseReason::Gone),
            _ => Ok(()),
        };
        index.deliver("/r/k", &["/r/"], &[], refuse, |w, r| closed.push((w.0, r)));
        closed.sort_by_key(|c| c.0);
        assert_eq!(closed, [(2, CloseReason::TooSlow), (3, CloseReason::Gone)]);
        assert_eq!(index.len(), 2);
        let mut closed = 0;
        index.sweep(|w| if w.0 == 4 { Err(CloseReason::Gone) } else { Ok(()) }, |_, _| closed += 1);
        assert_eq!((closed, index.len()), (1, 1));
    }

    #[test]
    fn a_full_watcher_is_closed_after_the_grace_or_at_twice_its_capacity() {
        let policy = SlowPolicy { capacity: 4, grace: Duration::from_millis(50) };
        let full = Fullness::default();
        let t0 = Instant::now();
        assert_eq!(policy.admit(3, &full), Ok(()));
        // Full: admitted for the grace period, up to twice the capacity.
        assert_eq!(policy.admit_full(4, &full, t0), Ok(()));
        assert_eq!(policy.admit_full(7, &full, t0 + Duration::from_millis(50)), Ok(()));
        assert_eq!(policy.admit_full(8, &full, t0), Err(CloseReason::TooSlow));
        assert_eq!(
            policy.admit_full(5, &full, t0 + Duration::from_millis(51)),
            Err(CloseReason::TooSlow)
        );
        // Drained below capacity in between: the grace starts again.
        assert_eq!(policy.admit(2, &full), Ok(()));
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(policy.admit_full(4, &full, t1), Ok(()));
        assert_eq!(policy.admit_full(5, &full, t1 + Duration::from_millis(10)), Ok(()));
    }

    #[test]
    fn slash_routes_are_every_directory_and_the_key() {
        assert_eq!(slash_routes("/a/b/c"), ["/", "/a/", "/a/b/", "/a/b/c"]);
        assert_eq!(slash_routes("/a/"), ["/", "/a/"]);
        assert_eq!(slash_routes("k"), ["k"]);
    }
}
