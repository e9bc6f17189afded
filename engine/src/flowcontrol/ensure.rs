//! Keeping the bootstrap configuration, as upstream's ensurer
//! (`pkg/registry/flowcontrol/ensurer`): a missing bootstrap object, mandatory or
//! suggested, is created; an existing mandatory object gets the bootstrap spec back
//! whenever it differs (the `exempt` level keeps its own nominalConcurrencyShares and
//! lendablePercent); an existing suggested object gets it back only while its
//! `apf.kubernetes.io/autoupdate-spec` annotation says true (a missing or unparsable
//! annotation counts as true while `metadata.generation` is 1, i.e. nobody edited the
//! spec), and the annotation is then written to say what was decided; an object that is
//! not of the bootstrap set but says `autoupdate-spec: "true"` is deleted (a bootstrap
//! object upstream no longer ships).
//!
//! Writes go through the client path as `api-priority-and-fairness-config-producer-v1`;
//! a conflict or a concurrent create is left for the next round; a failing object does
//! not stop the others, and the failures are returned together. Levels are ensured before
//! FlowSchemas, suggested objects before mandatory ones, as upstream.

use super::bootstrap::{self, AUTOUPDATE, EXEMPT};
use crate::app::App;
use crate::rest::{self, InternalTarget};
use crate::status::ApiError;
use serde_json::{Map, Value};
use std::collections::HashMap;

pub const FIELD_MANAGER: &str = "api-priority-and-fairness-config-producer-v1";
pub const GROUP: &str = "flowcontrol.apiserver.k8s.io";
pub const LEVELS: &str = "prioritylevelconfigurations";
pub const SCHEMAS: &str = "flowschemas";

/// How a bootstrap object is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Mandatory,
    Suggested,
}

/// What keeping one existing object needs.
#[derive(Debug, PartialEq)]
pub enum Plan {
    Keep,
    Update(Value),
}

/// The stored objects of one kind, by name.
pub type Current = HashMap<String, Value>;

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn annotation(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/annotations").and_then(|a| a.get(AUTOUPDATE)).and_then(Value::as_str)
}

/// Whether the spec of a suggested object is the server's to keep.
fn should_update_spec(obj: &Value) -> bool {
    match annotation(obj).and_then(parse_bool) {
        Some(b) => b,
        None => obj.pointer("/metadata/generation").and_then(Value::as_i64) == Some(1),
    }
}

/// A spec with the fields Go leaves out when empty left out, so stored and bootstrap
/// specs compare as upstream's semantic equality does (nil and empty alike).
fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), normalized(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Whether `current`'s spec is the bootstrap spec (for `exempt`, but for the two fields
/// an operator may tune).
fn spec_equalish(bootstrap: &Value, current: &Value) -> bool {
    let mut want = bootstrap["spec"].clone();
    let have = &current["spec"];
    if bootstrap["metadata"]["name"] == EXEMPT && bootstrap["kind"] == "PriorityLevelConfiguration"
    {
        let Some(exempt) = have.get("exempt").filter(|e| e.is_object()) else { return false };
        for field in ["nominalConcurrencyShares", "lendablePercent"] {
            want["exempt"][field] = exempt.get(field).cloned().unwrap_or(Value::Null);
        }
    }
    normalized(&want) == normalized(have)
}

/// What keeping `current` as `bootstrap` under `strategy` needs.
pub fn plan(strategy: Strategy, current: &Value, bootstrap: &Value) -> Plan {
    let auto = strategy == Strategy::Mandatory || should_update_spec(current);
    let update_annotation = annotation(current).and_then(parse_bool) != Some(auto);
    let spec_changed = auto && !spec_equalish(bootstrap, current);
    if !update_annotation && !spec_changed {
        return Plan::Keep;
    }
    let mut revised = current.clone();
    if spec_changed {
        revised["spec"] = bootstrap["spec"].clone();
    }
    if update_annotation {
        let meta = &mut revised["metadata"];
        if !meta.get("annotations").is_some_and(Value::is_object) {
            meta["annotations"] = Value::Object(Map::new());
        }
        meta["annotations"][AUTOUPDATE] = Value::String(auto.to_string());
    }
    Plan::Update(revised)
}

/// The names of stored objects to delete: not of the bootstrap set, and annotated
/// `autoupdate-spec` true.
pub fn unwanted(current: &Current, bootstrap: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = current
        .iter()
        .filter(|(name, _)| !bootstrap.iter().any(|b| b["metadata"]["name"] == name.as_str()))
        .filter(|(_, obj)| annotation(obj).and_then(parse_bool) == Some(true))
        .map(|(name, _)| name.clone())
        .collect();
    names.sort();
    names
}

fn target(plural: &str) -> InternalTarget<'_> {
    InternalTarget {
        group: GROUP,
        version: "v1",
        plural,
        ns: None,
        subresource: None,
        manager: FIELD_MANAGER,
    }
}

/// Keep one bootstrap object.
async fn one(
    app: &App,
    plural: &str,
    strategy: Strategy,
    current: Option<&Value>,
    want: &Value,
) -> Result<(), ApiError> {
    let Some(current) = current else {
        return match rest::create_internal_as(app, target(plural), want.clone()).await {
            Ok(_) | Err(ApiError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        };
    };
    if plan(strategy, current, want) == Plan::Keep {
        return Ok(());
    }
    let name = want["metadata"]["name"].as_str().unwrap_or_default();
    let mutate = |cur: &Value| match plan(strategy, cur, want) {
        Plan::Update(next) => Ok(next),
        Plan::Keep => Ok(cur.clone()),
    };
    match rest::update_internal_as(app, target(plural), name, mutate).await {
        Ok(_) | Err(ApiError::Conflict(..)) | Err(ApiError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Keep the whole bootstrap configuration against the stored `levels` and `schemas`.
pub async fn ensure(app: &App, levels: &Current, schemas: &Current) -> Result<(), String> {
    let rounds = [
        (LEVELS, Strategy::Suggested, bootstrap::suggested_levels(), levels),
        (SCHEMAS, Strategy::Suggested, bootstrap::suggested_schemas(), schemas),
        (LEVELS, Strategy::Mandatory, bootstrap::mandatory_levels(), levels),
        (SCHEMAS, Strategy::Mandatory, bootstrap::mandatory_schemas(), schemas),
    ];
    let mut failures = Vec::new();
    for (plural, strategy, wanted, current) in &rounds {
        for want in wanted {
            let name = want["metadata"]["name"].as_str().unwrap_or_default();
            if let Err(e) = one(app, plural, *strategy, current.get(name), want).await {
                failures.push(format!("{plural} {name}: {}", e.to_status()["message"]));
            }
        }
    }
    for (plural, current) in [(LEVELS, levels), (SCHEMAS, schemas)] {
        let all = match plural {
            LEVELS => [bootstrap::suggested_levels(), bootstrap::mandatory_levels()].concat(),
            _ => [bootstrap::suggested_schemas(), bootstrap::mandatory_schemas()].concat(),
        };
        for name in unwanted(current, &all) {
            if let Err(e) = delete(app, plural, &name).await {
                failures.push(format!("{plural} {name}: {}", e.to_status()["message"]));
            }
        }
    }
    if failures.is_empty() { Ok(()) } else { Err(failures.join("; ")) }
}

async fn delete(app: &App, plural: &str, name: &str) -> Result<(), ApiError> {
    let rt = app.registry().get(GROUP, "v1", plural).cloned();
    let rt = rt.ok_or_else(|| ApiError::Internal(format!("no {plural}")))?;
    match rest::delete_internal(app, &rt, None, name).await {
        Ok(_) | Err(ApiError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The stored objects of `plural`, read from the store (at start, before the caches).
pub async fn read_store(app: &App, plural: &str) -> Result<Current, String> {
    let Some(rt) = app.registry().get(GROUP, "v1", plural).cloned() else {
        return Ok(Current::new());
    };
    let prefix = rt.storage_prefix(app.prefix(), None);
    let page = app.store.range(&prefix, None, 0, None).await.map_err(|e| e.to_string())?;
    let objects = page.items.iter().filter_map(|kv| rest::object::from_stored(&rt, kv).ok());
    Ok(by_name(objects))
}

pub fn by_name(objects: impl IntoIterator<Item = Value>) -> Current {
    objects
        .into_iter()
        .filter_map(|o| Some((o.pointer("/metadata/name")?.as_str()?.to_string(), o)))
        .collect()
}

/// At start, before serving: create or restore the bootstrap configuration from what the
/// store holds (nothing when the API is not served).
pub async fn at_start(app: &App) -> Result<(), String> {
    if app.registry().get(GROUP, "v1", LEVELS).is_none()
        || app.registry().get(GROUP, "v1", SCHEMAS).is_none()
    {
        return Ok(());
    }
    let levels = read_store(app, LEVELS).await?;
    let schemas = read_store(app, SCHEMAS).await?;
    ensure(app, &levels, &schemas).await
}

#[cfg(test)]
#[path = "ensure_tests.rs"]
mod tests;
