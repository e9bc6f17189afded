//! What the server does with the bootstrap policy at start, as upstream's RBAC
//! reconciliation (the `rbac/bootstrap-roles` post-start hook): a missing object is
//! created; an existing one whose `rbac.authorization.kubernetes.io/autoupdate`
//! annotation is `"false"` is left alone; any other existing object gets what the policy
//! has and it lacks — labels and annotations it does not set, aggregation selectors,
//! rules (as the atomic rules its own rules do not cover) and subjects — and keeps all it
//! has (union, never removal). A binding whose roleRef differs from the policy's is
//! deleted and created again (a roleRef cannot be changed in place).
//!
//! Writes go through the client path on the server's own behalf (defaults, validation,
//! managed fields), one read per object of the policy; a failing object does not stop the
//! others, and the failures are returned together.

use super::{AUTOUPDATE, GROUP};
use crate::app::App;
use crate::authz::covers;
use crate::rest;
use crate::status::ApiError;
use kapi_codec::ResourceType;
use serde_json::{Map, Value};

/// What reconciling one existing object needs.
#[derive(Debug, PartialEq)]
pub(super) enum Plan {
    Keep,
    Update(Value),
    Recreate,
}

/// Create or complete every object of the bootstrap policy.
pub async fn reconcile(app: &App) -> Result<(), String> {
    let kinds = [
        ("clusterroles", super::cluster_roles(), true),
        ("roles", super::roles(), true),
        ("clusterrolebindings", super::cluster_role_bindings(), false),
        ("rolebindings", super::role_bindings(), false),
    ];
    let mut failures = Vec::new();
    for (plural, expected, is_role) in kinds {
        // Not served (`--runtime-config` turned the API off): nothing to reconcile, as
        // upstream installs no RBAC hook then.
        let Some(rt) = app.registry().get(GROUP, "v1", plural).cloned() else { continue };
        for want in expected {
            let current = read(app, &rt, &want).await?;
            if let Err(e) = one(app, plural, is_role, current.as_ref(), want).await {
                failures.push(e);
            }
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) }
}

fn key(obj: &Value) -> (String, String) {
    let meta = &obj["metadata"];
    let s = |f: &str| meta[f].as_str().unwrap_or_default().to_string();
    (s("namespace"), s("name"))
}

/// The stored object of the policy's `want`, if any (one read per object: the policy's
/// size bounds the work, whatever else the cluster stores).
async fn read(app: &App, rt: &ResourceType, want: &Value) -> Result<Option<Value>, String> {
    let (ns, name) = key(want);
    let ns = (!ns.is_empty()).then_some(ns.as_str());
    let kv = app.store.get(&rt.storage_key(app.prefix(), ns, &name)).await;
    let kv = kv.map_err(|e| format!("reading {} {name}: {e}", rt.plural))?;
    Ok(kv.and_then(|kv| rest::object::from_stored(rt, &kv).ok()))
}

async fn one(
    app: &App,
    plural: &str,
    is_role: bool,
    current: Option<&Value>,
    want: Value,
) -> Result<(), String> {
    let (ns, name) = key(&want);
    let ns = (!ns.is_empty()).then_some(ns.as_str());
    let failed = |e: ApiError| format!("{plural} {name}: {}", e.to_status()["message"]);
    let Some(current) = current else { return create(app, plural, ns, want).await.map_err(failed) };
    match plan(is_role, current, &want) {
        Plan::Keep => Ok(()),
        Plan::Update(_) => {
            let mutate = |cur: &Value| match plan(is_role, cur, &want) {
                Plan::Update(next) => Ok(next),
                Plan::Keep | Plan::Recreate => Ok(cur.clone()),
            };
            rest::update_internal(app, GROUP, "v1", plural, ns, &name, mutate)
                .await
                .map(drop)
                .map_err(failed)
        }
        Plan::Recreate => recreate(app, plural, ns, &name, want).await.map_err(failed),
    }
}

async fn create(app: &App, plural: &str, ns: Option<&str>, obj: Value) -> Result<(), ApiError> {
    match rest::create_internal(app, GROUP, "v1", plural, ns, obj).await {
        Ok(_) | Err(ApiError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

async fn recreate(
    app: &App,
    plural: &str,
    ns: Option<&str>,
    name: &str,
    obj: Value,
) -> Result<(), ApiError> {
    let rt = app.registry().get(GROUP, "v1", plural).cloned();
    let rt = rt.ok_or_else(|| ApiError::Internal(format!("no {plural}")))?;
    match rest::delete_internal(app, &rt, ns, name).await {
        Ok(_) | Err(ApiError::NotFound(_)) => create(app, plural, ns, obj).await,
        Err(e) => Err(e),
    }
}

/// Whether the owner of `obj` switched reconciliation off.
fn protected(obj: &Value) -> bool {
    obj.pointer("/metadata/annotations").and_then(|a| a.get(AUTOUPDATE)).and_then(Value::as_str)
        == Some("false")
}

/// What reconciling `existing` against the policy's `expected` needs.
pub(super) fn plan(is_role: bool, existing: &Value, expected: &Value) -> Plan {
    if protected(existing) {
        return Plan::Keep;
    }
    if !is_role && role_ref(existing) != role_ref(expected) {
        return Plan::Recreate;
    }
    let mut out = existing.clone();
    let mut changed = merge_map(&mut out, expected, "labels");
    changed |= merge_map(&mut out, expected, "annotations");
    changed |= if is_role {
        merge_aggregation(&mut out, expected) | merge_rules(&mut out, expected)
    } else {
        merge_subjects(&mut out, expected)
    };
    if changed { Plan::Update(out) } else { Plan::Keep }
}

fn array<'a>(obj: &'a Value, field: &str) -> &'a [Value] {
    obj.get(field).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// Append `extra` to `obj[field]` (made an array if it was absent or null).
fn append(obj: &mut Value, field: &str, extra: Vec<Value>) -> bool {
    if extra.is_empty() {
        return false;
    }
    let mut all = array(obj, field).to_vec();
    all.extend(extra);
    obj[field] = Value::Array(all);
    true
}

/// Add the metadata map entries of `expected` that `out` lacks; `out`'s own values win.
fn merge_map(out: &mut Value, expected: &Value, field: &str) -> bool {
    let Some(want) = expected["metadata"].get(field).and_then(Value::as_object) else {
        return false;
    };
    let meta = &mut out["metadata"];
    if !meta.get(field).is_some_and(Value::is_object) {
        meta[field] = Value::Object(Map::new());
    }
    let Some(have) = meta[field].as_object_mut() else { return false };
    let mut changed = false;
    for (k, v) in want {
        if !have.contains_key(k) {
            have.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    changed
}

fn merge_rules(out: &mut Value, expected: &Value) -> bool {
    let missing = covers::uncovered(array(out, "rules"), array(expected, "rules"));
    append(out, "rules", missing)
}

/// Add the policy's missing aggregation selectors; drop an aggregation rule the policy
/// does not have (upstream does so even when it only adds).
fn merge_aggregation(out: &mut Value, expected: &Value) -> bool {
    let want = expected.get("aggregationRule").filter(|a| !a.is_null());
    let have = out.get("aggregationRule").filter(|a| !a.is_null()).cloned();
    match (want, have) {
        (None, None) => false,
        (None, Some(_)) => {
            if let Some(o) = out.as_object_mut() {
                o.remove("aggregationRule");
            }
            true
        }
        (Some(want), have) => {
            let have = have.unwrap_or_else(|| Value::Object(Map::new()));
            let field = "clusterRoleSelectors";
            let present = array(&have, field);
            let missing: Vec<Value> =
                array(want, field).iter().filter(|s| !present.contains(s)).cloned().collect();
            let mut rule = have.clone();
            let changed = append(&mut rule, field, missing);
            out["aggregationRule"] = rule;
            changed
        }
    }
}

/// A subject as upstream compares them: apiGroup defaulted per kind.
fn subject_key(s: &Value) -> (String, String, String, String) {
    let f = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    let kind = f("kind");
    let group = match (f("apiGroup"), kind.as_str()) {
        (g, "User" | "Group") if g.is_empty() => GROUP.to_string(),
        (g, _) => g,
    };
    (kind, group, f("name"), f("namespace"))
}

fn merge_subjects(out: &mut Value, expected: &Value) -> bool {
    let have: Vec<_> = array(out, "subjects").iter().map(subject_key).collect();
    let missing: Vec<Value> = array(expected, "subjects")
        .iter()
        .filter(|s| !have.contains(&subject_key(s)))
        .cloned()
        .collect();
    append(out, "subjects", missing)
}

fn role_ref(obj: &Value) -> (String, String, String) {
    let r = &obj["roleRef"];
    let f = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    (f("apiGroup"), f("kind"), f("name"))
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
