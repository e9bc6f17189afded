//! The CustomResourceDefinition controller: keeps the served registry in step with the
//! stored CRDs. For every CRD it decides the names (`NamesAccepted`), marks it
//! `Established` and keeps `storedVersions` current; a CRD being deleted (the delete
//! adds the cleanup finalizer, as upstream's CRD storage does) gets `Terminating`, its
//! objects are deleted, then the finalizer is dropped (and the CRD goes). Then the registry snapshot is rebuilt from the built-in
//! types `--runtime-config` serves (`App::base_registry`) plus one entry per served version of every established CRD, and swapped in when
//! that set changed (entries of unchanged CRDs are kept, with their caches).
//!
//! Invariants: a CRD's types are served only once it is Established and stop being
//! served once it is gone; built-in names always win a conflict; the registry is only
//! ever replaced whole.

use crate::app::App;
use crate::rest;
use kapi_codec::registry::Registry;
use kapi_codec::{ResourceType, custom, meta};
use kapi_storage::Precondition;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

/// The finalizer a CRD's delete adds so its objects are removed first.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
const GROUP: &str = "apiextensions.k8s.io";

/// What the controller keeps between sweeps: the entries it made, per CRD, with the
/// CRD's uid and generation they were made from.
#[derive(Default)]
pub struct State {
    served: HashMap<String, (String, i64, Vec<Arc<ResourceType>>)>,
}

/// One pass: reconcile every CRD and swap the registry when what is served changed.
pub async fn sweep(app: &App, state: &mut State) -> Result<(), String> {
    let builtin = app.base_registry().clone();
    let builtin = &*builtin;
    let crds = Registry::builtin().get(GROUP, "v1", "customresourcedefinitions").cloned();
    let Some(crd_rt) = crds else {
        return Ok(());
    };
    let prefix = crd_rt.storage_prefix(app.prefix(), None);
    let page = app.store.range(&prefix, None, 0, None).await.map_err(|e| e.to_string())?;
    let mut established = Vec::new();
    let mut accepted: Vec<Value> = Vec::new();
    let mut writes = Vec::new();
    for kv in page.items {
        let Ok(crd) = rest::object::from_stored(&crd_rt, &kv) else { continue };
        if meta::meta_str(&crd, "deletionTimestamp").is_some() {
            terminate(app, &crd_rt, &kv.key, kv.mod_revision, crd).await?;
            continue;
        }
        let next = with_status(&crd, builtin, &accepted);
        if condition_true(&next, "Established") {
            accepted.push(next.clone());
            established.push(next.clone());
        }
        if next != crd {
            writes.push((kv.key, kv.mod_revision, next));
        }
    }
    // Serve first, then say so: a client that sees Established can use the type at once.
    publish(app, builtin, &established, state);
    for (key, rev, next) in writes {
        let bytes = rest::object::to_stored(&crd_rt, &next, app.storage_media);
        // A conflict means the CRD changed meanwhile: the next sweep sees the new one.
        let _ = app.store.update(&key, bytes, Precondition::ModRevision(rev)).await;
    }
    Ok(())
}

fn condition_true(crd: &Value, kind: &str) -> bool {
    conditions(crd).iter().any(|c| c["type"] == kind && c["status"] == "True")
}

fn conditions(crd: &Value) -> Vec<Value> {
    crd.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default()
}

/// Set (or keep) a condition, with a new transition time only when its status changes.
fn set_condition(conds: &mut Vec<Value>, kind: &str, status: &str, reason: &str, msg: &str) {
    let now = crate::time::now_rfc3339();
    match conds.iter_mut().find(|c| c["type"] == kind) {
        Some(c) if c["status"] == status && c["reason"] == reason && c["message"] == msg => {}
        Some(c) => {
            let moved = c["status"] != status;
            c["status"] = json!(status);
            c["reason"] = json!(reason);
            c["message"] = json!(msg);
            if moved {
                c["lastTransitionTime"] = json!(now);
            }
        }
        None => conds.push(json!({"type": kind, "status": status, "lastTransitionTime": now,
                                  "reason": reason, "message": msg})),
    }
}

/// Why `crd`'s names cannot be served: a built-in resource of its group has its plural,
/// or a CRD accepted before it in the same group has its plural or kind.
fn name_conflict(crd: &Value, builtin: &Registry, accepted: &[Value]) -> Option<String> {
    let group = crd.pointer("/spec/group").and_then(Value::as_str).unwrap_or("");
    let plural = crd.pointer("/spec/names/plural").and_then(Value::as_str).unwrap_or("");
    let kind = crd.pointer("/spec/names/kind").and_then(Value::as_str).unwrap_or("");
    if builtin.all().iter().any(|t| t.group == group && t.plural == plural) {
        return Some(format!("\"{plural}\" is already in use"));
    }
    for other in accepted.iter().filter(|o| o.pointer("/spec/group") == crd.pointer("/spec/group"))
    {
        if other.pointer("/status/acceptedNames/plural").and_then(Value::as_str) == Some(plural) {
            return Some(format!("\"{plural}\" is already in use"));
        }
        if other.pointer("/status/acceptedNames/kind").and_then(Value::as_str) == Some(kind) {
            return Some(format!("\"{kind}\" is already in use"));
        }
    }
    None
}

/// The CRD with its status as the controllers leave it.
fn with_status(crd: &Value, builtin: &Registry, accepted: &[Value]) -> Value {
    let mut next = crd.clone();
    let mut conds = conditions(crd);
    match name_conflict(crd, builtin, accepted) {
        Some(why) => {
            set_condition(&mut conds, "NamesAccepted", "False", "NameConflict", &why);
            set_condition(
                &mut conds,
                "Established",
                "False",
                "NotAccepted",
                "not all names are accepted",
            );
        }
        None => {
            set_condition(&mut conds, "NamesAccepted", "True", "NoConflicts", "no conflicts found");
            set_condition(
                &mut conds,
                "Established",
                "True",
                "InitialNamesAccepted",
                "the initial names have been accepted",
            );
            next["status"]["acceptedNames"] = accepted_names(crd);
        }
    }
    next["status"]["conditions"] = json!(conds);
    next["status"]["storedVersions"] = stored_versions(crd);
    next
}

fn accepted_names(crd: &Value) -> Value {
    let mut names = crd.pointer("/spec/names").cloned().unwrap_or_else(|| json!({}));
    let kind = names["kind"].as_str().unwrap_or("").to_string();
    if names.get("listKind").is_none() {
        names["listKind"] = json!(format!("{kind}List"));
    }
    if names.get("singular").is_none() {
        names["singular"] = json!(kind.to_lowercase());
    }
    names
}

/// `status.storedVersions` with the current storage version added (never removed: only
/// a user removes versions from it, once they are migrated).
fn stored_versions(crd: &Value) -> Value {
    let mut stored: Vec<Value> = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
    if let Some(v) = versions.into_iter().flatten().find(|v| v["storage"] == true)
        && !stored.contains(&v["name"])
    {
        stored.push(v["name"].clone());
    }
    json!(stored)
}

/// A CRD being deleted: mark it Terminating, delete its objects, then drop the
/// finalizer (the CRD goes when no other finalizer holds it).
async fn terminate(
    app: &App,
    crd_rt: &ResourceType,
    key: &str,
    rev: u64,
    crd: Value,
) -> Result<(), String> {
    let held = meta::metadata(&crd)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|f| f == CLEANUP_FINALIZER));
    if !held {
        return Ok(());
    }
    let mut next = crd.clone();
    let mut conds = conditions(&crd);
    set_condition(
        &mut conds,
        "Terminating",
        "True",
        "InstanceDeletionInProgress",
        "CustomResource deletion is in progress",
    );
    next["status"]["conditions"] = json!(conds);
    let types = custom::types_from_crd(&crd);
    if let Some(t) = types.first() {
        let prefix = t.storage_prefix(app.prefix(), None);
        let page = app.store.range(&prefix, None, 0, None).await.map_err(|e| e.to_string())?;
        for kv in page.items {
            let _ = app.store.delete(&kv.key, Precondition::None).await;
        }
    }
    if let Some(list) = next.pointer_mut("/metadata/finalizers").and_then(Value::as_array_mut) {
        list.retain(|f| f != CLEANUP_FINALIZER);
    }
    let gone =
        next.pointer("/metadata/finalizers").and_then(Value::as_array).is_none_or(Vec::is_empty);
    let result = if gone {
        app.store.delete(key, Precondition::ModRevision(rev)).await.map(drop)
    } else {
        let bytes = rest::object::to_stored(crd_rt, &next, app.storage_media);
        app.store.update(key, bytes, Precondition::ModRevision(rev)).await.map(drop)
    };
    result.map_err(|e| e.to_string())
}

/// Rebuild the served registry when the set of established CRDs (by uid and
/// generation) changed.
fn publish(app: &App, builtin: &Registry, established: &[Value], state: &mut State) {
    let mut changed = false;
    let mut next: HashMap<String, (String, i64, Vec<Arc<ResourceType>>)> = HashMap::new();
    for crd in established {
        let name = meta::name(crd).unwrap_or("").to_string();
        let uid = meta::meta_str(crd, "uid").unwrap_or("").to_string();
        let generation = crd.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
        let entry = match state.served.remove(&name) {
            Some(e) if e.0 == uid && e.1 == generation => e,
            _ => {
                changed = true;
                let types = custom::types_from_crd(crd).into_iter().map(Arc::new).collect();
                (uid, generation, types)
            }
        };
        next.insert(name, entry);
    }
    changed |= !state.served.is_empty();
    state.served = next;
    if !changed {
        return;
    }
    let mut names: Vec<&String> = state.served.keys().collect();
    names.sort();
    let mut types: Vec<Arc<ResourceType>> = builtin.all().to_vec();
    for n in names {
        types.extend(state.served[n].2.iter().cloned());
    }
    app.set_registry(Arc::new(Registry::new(types)));
}

/// How often the stored CRDs are looked at.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Serve the stored CRDs now (at start, before requests are taken), then keep following
/// them on the controller's own thread.
pub fn start(app: Arc<App>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let mut state = State::default();
    if let Err(e) = futures_executor::block_on(sweep(&app, &mut state)) {
        tracing::warn!("custom resource definitions: {e}");
    }
    std::thread::Builder::new().name("kapi-crd".into()).spawn(move || {
        while !app.is_shutting_down() {
            std::thread::sleep(SWEEP_EVERY);
            if let Err(e) = futures_executor::block_on(sweep(&app, &mut state)) {
                tracing::debug!("custom resource definitions: {e}");
            }
        }
    })
}
