//! The configuration thread (`kapi-apf`): follows the revisions of the FlowSchema and
//! PriorityLevelConfiguration watch caches and, when one moved, reads both, digests them
//! (`digest`), hands the levels to the dispatcher and swaps the classifier in (requests
//! never wait on it; they read the last snapshot), then writes the FlowSchemas'
//! `Dangling` conditions that changed, as upstream's config consumer does. It also keeps
//! the bootstrap configuration (`ensure`): after every change it sees and every minute
//! (upstream's period), so a deleted mandatory object comes back at once. Every tick it
//! also samples the levels' seat demand and the requests waiting and executing by kind
//! (`read_write`) and, every 10 s, adjusts their current limits (`borrowing`).
//!
//! Invariants: with `--enable-priority-and-fairness=false` the thread only keeps the
//! bootstrap objects (there is no consumer: no levels, no classifier, no conditions);
//! the first load happens in [`start`], before serving; a condition is written only when
//! its status, reason or message differ, so the thread's own writes settle.

use super::borrowing::{self, Adjuster};
use super::digest::{self, Dangling};
use super::ensure::{self, Current, GROUP, LEVELS, SCHEMAS};
use crate::app::App;
use crate::rest::{self, InternalTarget};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the thread looks at the caches' revisions.
const CHECK_EVERY: Duration = Duration::from_millis(20);
/// How often the bootstrap configuration is ensured without a change (upstream: 1 min).
const ENSURE_EVERY: Duration = Duration::from_secs(60);
/// How long the start waits for the caches' initial load.
const LOAD_WAIT: Duration = Duration::from_secs(60);
/// The field manager of the conditions (upstream's config consumer).
pub const CONSUMER: &str = "api-priority-and-fairness-config-consumer-v1";

/// Every object of one resource, from its cache.
fn read(app: &App, plural: &str) -> Vec<Value> {
    let reg = app.registry();
    let Some(rt) = reg.get(GROUP, "v1", plural) else { return Vec::new() };
    let Some(cache) = app.caches.get(app, rt) else { return Vec::new() };
    let (items, _, _) = cache.list(&rt.storage_prefix(app.prefix(), None), None, 0);
    items.iter().map(|e| e.data.obj()).collect()
}

/// Both caches' revision and load state (a resource not served counts as loaded).
fn revisions(app: &App) -> [(u64, bool); 2] {
    let reg = app.registry();
    [LEVELS, SCHEMAS].map(|plural| match reg.get(GROUP, "v1", plural) {
        None => (0, true),
        Some(rt) => app.caches.get(app, rt).map_or((0, false), |c| (c.revision(), c.is_loaded())),
    })
}

fn served(app: &App) -> bool {
    let reg = app.registry();
    reg.get(GROUP, "v1", LEVELS).is_some() && reg.get(GROUP, "v1", SCHEMAS).is_some()
}

/// One round: load the configuration (when enabled), write the conditions, keep the
/// bootstrap objects (when `ensure_too`).
fn sync(app: &App, ensure_too: bool) {
    let levels = read(app, LEVELS);
    let schemas = read(app, SCHEMAS);
    if app.flowcontrol.enabled {
        let digest = digest::digest(&levels, &schemas);
        app.flowcontrol.load(&digest);
        write_conditions(app, &schemas, &digest.dangling);
    }
    if ensure_too && served(app) {
        let (levels, schemas): (Current, Current) =
            (ensure::by_name(levels), ensure::by_name(schemas));
        if let Err(e) = futures_executor::block_on(ensure::ensure(app, &levels, &schemas)) {
            tracing::warn!("ensuring the API Priority and Fairness bootstrap configuration: {e}");
        }
    }
}

/// Write every `Dangling` condition that is not current, on the status subresource.
fn write_conditions(app: &App, schemas: &[Value], wanted: &[Dangling]) {
    let target = InternalTarget {
        group: GROUP,
        version: "v1",
        plural: SCHEMAS,
        ns: None,
        subresource: Some("status"),
        manager: CONSUMER,
    };
    for want in wanted {
        let stored = schemas.iter().find(|fs| fs["metadata"]["name"] == want.schema.as_str());
        if stored.is_none_or(|fs| want.is_current(fs)) {
            continue;
        }
        let now = crate::time::now_rfc3339();
        let write = rest::update_internal_as(app, target, &want.schema, |current| {
            Ok(if want.is_current(current) {
                current.clone()
            } else {
                want.written_into(current, &now)
            })
        });
        match futures_executor::block_on(write) {
            Ok(_) | Err(crate::status::ApiError::NotFound(_)) => {}
            Err(e) => tracing::debug!(
                "writing the Dangling condition of flowschema {}: {}",
                want.schema,
                e.to_status()["message"]
            ),
        }
    }
}

/// Load the configuration from the caches (once they are loaded, or after
/// [`LOAD_WAIT`]), then start the thread that keeps it current.
pub fn start(app: Arc<App>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let deadline = Instant::now() + LOAD_WAIT;
    while !revisions(&app).iter().all(|(_, loaded)| *loaded) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut seen = revisions(&app);
    sync(&app, false);
    std::thread::Builder::new().name("kapi-apf".into()).spawn(move || {
        let mut ensured = Instant::now();
        let mut adjuster = Adjuster::new(borrowing::PERIOD, Instant::now());
        while !app.is_shutting_down() {
            std::thread::sleep(CHECK_EVERY);
            if app.flowcontrol.enabled {
                let (fc, now) = (&app.flowcontrol, Instant::now());
                adjuster.tick(&fc.dispatcher, now);
                fc.read_write.sample(now, crate::metrics::apf_requests_now(), &fc.dispatcher);
            }
            let now = revisions(&app);
            let due = ensured.elapsed() >= ENSURE_EVERY;
            if now == seen && !due {
                continue;
            }
            seen = now;
            sync(&app, true);
            ensured = Instant::now();
        }
    })
}
