//! The resource quota controller, in process (kapi runs no controller manager of its
//! own): a thread (`kapi-quota`) watches the revisions of the ResourceQuota cache and of
//! the caches of what quotas count and, when one moved (and every 30 s, for pods whose
//! deletion grace period ran out), recalculates each quota's `status` from the caches
//! (`hard` from `spec.hard`, `used` by upstream's evaluators) and writes it when it
//! differs by value, as upstream's controller does. A new quota gets its status at once.
//!
//! Invariants:
//! - Admission charges `status.used` before the object is stored; a quota whose
//!   revision moved less than a second ago is left alone when only `used` differs, so an
//!   in-flight create is not undone before the caches see it.
//! - A write is a compare-and-swap on the revision the usage was computed against:
//!   a charge that landed meanwhile wins and the quota is looked at again.
//! - Values are compared by value, so kube-controller-manager's quota controller, if it
//!   runs too, converges on the same status without the two rewriting each other.

use crate::admission::lister;
use crate::admission::quota::evaluate::{Evaluator, now_seconds};
use crate::admission::quota::resources_json::with_status;
use crate::admission::quota::usage::{self, Source};
use crate::admission::resources::{self, ResourceList};
use crate::app::App;
use kapi_codec::ResourceType;
use kapi_codec::meta;
use kapi_codec::registry::Persistence;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the thread looks at the caches' revisions.
const CHECK_EVERY: Duration = Duration::from_millis(50);
/// How long a quota's revision must stand before a recalculation may change `used`.
const SETTLE: Duration = Duration::from_secs(1);
/// How often every quota is recalculated whatever moved.
const RESYNC: Duration = Duration::from_secs(30);
/// The most quotas one pass recalculates (the rest wait for the next pass).
const MAX_PER_PASS: usize = 10_000;

/// The stored type `group`/`plural` (any served version).
fn resource(app: &App, group: &str, plural: &str) -> Option<Arc<ResourceType>> {
    let reg = app.registry();
    reg.all()
        .iter()
        .find(|t| {
            &*t.group == group && &*t.plural == plural && t.persistence == Persistence::Stored
        })
        .cloned()
}

/// Objects read from the watch caches.
struct Caches<'a>(&'a App);

impl Source for Caches<'_> {
    fn objects(&self, ev: &Evaluator, ns: &str) -> Vec<Value> {
        let (group, plural) = ev.resource();
        resource(self.0, &group, &plural)
            .map(|rt| lister::objects(self.0, &rt, ns))
            .unwrap_or_default()
    }

    fn count(&self, ev: &Evaluator, ns: &str) -> usize {
        let (group, plural) = ev.resource();
        resource(self.0, &group, &plural).map_or(0, |rt| lister::count(self.0, &rt, ns))
    }
}

/// What the thread remembers between passes.
#[derive(Default)]
struct State {
    /// The revisions of the tracked caches at the last pass.
    seen: Vec<u64>,
    /// The (group, plural) of what the quotas count.
    tracked: BTreeSet<(String, String)>,
    /// Per quota (`ns/name`): its resourceVersion and when this thread first saw it.
    since: HashMap<String, (String, Instant)>,
    /// A quota waits for its revision to settle: look again next pass.
    pending: bool,
    last_full: Option<Instant>,
}

/// Start the controller thread.
pub fn start(app: Arc<App>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("kapi-quota".into()).spawn(move || {
        let mut state = State::default();
        while !app.is_shutting_down() {
            std::thread::sleep(CHECK_EVERY);
            pass(&app, &mut state);
        }
    })
}

/// The revisions of the ResourceQuota cache and the tracked ones.
fn revisions(app: &App, tracked: &BTreeSet<(String, String)>) -> Vec<u64> {
    let quotas = (String::new(), "resourcequotas".to_string());
    std::iter::once(&quotas)
        .chain(tracked)
        .map(|(g, p)| {
            resource(app, g, p).and_then(|rt| app.caches.get(app, &rt)).map_or(0, |c| c.revision())
        })
        .collect()
}

fn pass(app: &App, state: &mut State) {
    let revs = revisions(app, &state.tracked);
    let full = state.last_full.is_none_or(|t| t.elapsed() >= RESYNC);
    if revs == state.seen && !state.pending && !full {
        return;
    }
    let Some(rt) = resource(app, "", "resourcequotas") else { return };
    let Some(cache) = app.caches.get(app, &rt) else { return };
    if !cache.is_loaded() {
        return;
    }
    let (items, _, _) = cache.list(&rt.storage_prefix(app.prefix(), None), None, MAX_PER_PASS);
    let quotas: Vec<Value> = items.iter().map(|e| e.data.obj()).collect();
    state.seen = revs;
    state.pending = false;
    if full {
        state.last_full = Some(Instant::now());
    }
    state.tracked = tracked(&quotas);
    let live: BTreeSet<String> = quotas.iter().map(key).collect();
    state.since.retain(|k, _| live.contains(k));
    for q in &quotas {
        state.pending |= sync(app, q, &mut state.since);
    }
}

/// The (group, plural) of every resource the quotas count.
fn tracked(quotas: &[Value]) -> BTreeSet<(String, String)> {
    let hard: BTreeSet<String> =
        quotas.iter().flat_map(|q| resources::list(q.pointer("/spec/hard")).into_keys()).collect();
    usage::evaluators(&hard).iter().map(Evaluator::resource).collect()
}

fn key(q: &Value) -> String {
    format!("{}/{}", meta::namespace(q).unwrap_or(""), meta::name(q).unwrap_or(""))
}

/// Recalculate one quota and write its status if it differs; true when it must wait for
/// its revision to settle.
fn sync(app: &App, q: &Value, since: &mut HashMap<String, (String, Instant)>) -> bool {
    let rv = meta::meta_str(q, "resourceVersion").unwrap_or("").to_string();
    let entry = since.entry(key(q)).or_insert_with(|| (rv.clone(), Instant::now()));
    if entry.0 != rv {
        *entry = (rv.clone(), Instant::now());
    }
    let settled = entry.1.elapsed() >= SETTLE;
    let (hard, used) = usage::status(q, usage::calculate(&Caches(app), q, now_seconds()));
    if !usage::dirty(q, &hard, &used) {
        return false;
    }
    if !limits_dirty(q, &hard) && !settled {
        return true;
    }
    write(app, q, &rv, &hard, &used);
    false
}

/// Whether the status lacks `hard` or `used`, or its `hard` is not `spec.hard`.
fn limits_dirty(q: &Value, hard: &ResourceList) -> bool {
    let stored = q.pointer("/status/hard");
    stored.is_none()
        || q.pointer("/status/used").is_none()
        || !resources::equal(&resources::list(stored), hard)
}

/// Write the status, unless the quota moved since `rv` (a charge landed: look again).
fn write(app: &App, q: &Value, rv: &str, hard: &ResourceList, used: &ResourceList) {
    let (ns, name) = (meta::namespace(q).unwrap_or(""), meta::name(q).unwrap_or(""));
    let result = futures_executor::block_on(crate::rest::update_internal(
        app,
        "",
        "v1",
        "resourcequotas",
        Some(ns),
        name,
        |current| {
            if meta::meta_str(current, "resourceVersion") != Some(rv) {
                return Ok(current.clone());
            }
            Ok(with_status(current, hard, used))
        },
    ));
    if let Err(e) = result {
        tracing::debug!("quota {ns}/{name}: {}", e.to_status()["message"]);
    }
}
