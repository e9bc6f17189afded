//! The namespace controller: for every namespace with a deletionTimestamp, delete all the
//! namespaced objects in it (immediately; objects held by finalizers are marked and
//! waited for), then drop the `kubernetes` finalizer and remove the namespace.
//! Runs on its own thread, sweeping twice a second (each sweep also gives every active
//! namespace its `default` ServiceAccount, `service_accounts`); idempotent, so a
//! restart mid-deletion simply resumes.

use crate::app::App;
use crate::rest;
use kapi_codec::meta;
use kapi_codec::registry::Persistence;
use kapi_storage::Precondition;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const SWEEP_EVERY: Duration = Duration::from_millis(500);
/// How often the system objects are reconciled (upstream's endpoint reconciler: 10 s).
const RECONCILE_EVERY_SWEEPS: u32 = 20;

/// Start the controller thread; it also reconciles the system objects (see
/// `bootstrap::ensure_system_objects`) and compacts the store (`compaction`).
pub fn start(app: Arc<App>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("kapi-controllers".into()).spawn(move || {
        let mut sweeps = 0u32;
        let interval = app.options.compaction_interval();
        let mut compactor = super::compaction::Compactor::new(interval);
        while !app.is_shutting_down() {
            compactor.tick(app.store.as_ref(), std::time::Instant::now());
            if let Err(e) = futures_executor::block_on(sweep(&app)) {
                tracing::debug!("namespace controller: {e}");
            }
            let accounts = super::service_accounts::ensure_defaults(&app);
            if let Err(e) = futures_executor::block_on(accounts) {
                tracing::warn!("default ServiceAccounts: {e}");
            }
            sweeps += 1;
            if sweeps.is_multiple_of(RECONCILE_EVERY_SWEEPS) {
                let ensured = super::bootstrap::ensure_system_objects(&app);
                if let Err(e) = futures_executor::block_on(ensured) {
                    tracing::warn!("reconciling system objects: {e}");
                }
                if app.shared_store() {
                    let endpoints = super::endpoints::reconcile(&app);
                    if let Err(e) = futures_executor::block_on(endpoints) {
                        tracing::warn!("reconciling the kubernetes endpoints: {e}");
                    }
                }
            }
            std::thread::sleep(SWEEP_EVERY);
        }
    })
}

async fn sweep(app: &App) -> Result<(), String> {
    let Some(rt) = app.registry().get("", "v1", "namespaces").cloned() else { return Ok(()) };
    let page = app
        .store
        .range(&rt.storage_prefix(app.prefix(), None), None, 0, None)
        .await
        .map_err(|e| e.to_string())?;
    for kv in page.items {
        let Ok(ns) = rest::object::from_stored(&rt, &kv) else { continue };
        if meta::meta_str(&ns, "deletionTimestamp").is_some() {
            finalize(app, &kv.key, ns, kv.mod_revision).await?;
        }
    }
    Ok(())
}

/// Empty one terminating namespace; remove it once nothing is left.
async fn finalize(app: &App, key: &str, ns: Value, rev: u64) -> Result<(), String> {
    let name = meta::name(&ns).unwrap_or("").to_string();
    let mut remaining = 0usize;
    for rt in
        app.registry().all().iter().filter(|t| t.namespaced && t.persistence == Persistence::Stored)
    {
        let prefix = rt.storage_prefix(app.prefix(), Some(&name));
        let page = app.store.range(&prefix, None, 0, None).await.map_err(|e| e.to_string())?;
        for kv in page.items {
            let Some(obj_name) = kv.key.strip_prefix(&prefix) else { continue };
            match rest::delete_internal(app, rt, Some(&name), obj_name).await {
                Ok(obj) if meta::meta_str(&obj, "deletionTimestamp").is_some() => remaining += 1,
                _ => {}
            }
        }
    }
    if remaining > 0 {
        return Ok(());
    }
    let mut done = ns.clone();
    if let Some(spec) = done.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("finalizers".into(), json!([]));
    }
    let held = meta::metadata(&done)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    let result = if held {
        let Some(rt) = app.registry().get("", "v1", "namespaces").cloned() else { return Ok(()) };
        let bytes = rest::object::to_stored(&rt, &done, app.storage_media);
        app.store.update(key, bytes, Precondition::ModRevision(rev)).await.map(drop)
    } else {
        app.store.delete(key, Precondition::ModRevision(rev)).await.map(drop)
    };
    result.map_err(|e| e.to_string())
}
