//! UPDATE and PATCH of a resource, its status subresource, namespaces' finalize,
//! pods' ephemeralcontainers and resize, and CSRs' approval subresources, through one
//! optimistic-concurrency loop (`guaranteed_update`): read,
//! compute the new object, run the admission phases around the strategy's prepare
//! and validation (on every attempt's object), carry over server-owned metadata, write with a
//! precondition on the read revision; retry on conflict unless the client pinned a
//! resourceVersion (then 409). A no-op update writes nothing.

use super::create::with_warnings;
use super::object::{self, Decoded};
use super::patch::{self, PatchType};
use super::{Request, Scope, hooks, view};
use crate::admission;
use crate::body::Response;
use crate::cache::written;
use crate::negotiation::body_format;
use crate::status::ApiError;
use bytes::Bytes;
use kapi_codec::meta;
use kapi_codec::validation;
use kapi_storage::{Precondition, Revision, StorageError};
use serde_json::{Value, json};

/// Which part of the object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Main,
    Status,
    Finalize,
    /// `pods/ephemeralcontainers`: only `spec.ephemeralContainers`.
    EphemeralContainers,
    /// `certificatesigningrequests/approval`: only `status.conditions`.
    Approval,
    /// `pods/resize`: only the containers' `resources` and `resizePolicy`.
    Resize,
}

const MAX_ATTEMPTS: usize = 16;

pub async fn update(
    req: &Request<'_>,
    scope: &Scope<'_>,
    target: Target,
) -> Result<Response, ApiError> {
    let name = scope.url_name()?;
    let fmt = body_format(req.header(http::header::CONTENT_TYPE))?;
    let Decoded { obj: new, warnings } =
        object::decode_body(scope, &req.body, fmt, &scope.rt.kind)?;
    check_identity(scope, &new, name)?;
    let pinned = object::resource_version(&new)?;
    let (out, json) = guaranteed_update_answered(scope, name, pinned, |current| {
        Ok(select(scope, target, new.clone(), current))
    })
    .await?;
    Ok(with_warnings(view::written(scope, 200, &out, json)?, &warnings))
}

pub async fn patch(
    req: &Request<'_>,
    scope: &Scope<'_>,
    target: Target,
) -> Result<Response, ApiError> {
    let name = scope.url_name()?;
    let kind: PatchType = patch::patch_type(req.header(http::header::CONTENT_TYPE))?;
    if kind == PatchType::Apply {
        return apply(req, scope, target).await;
    }
    let body = req.body.clone();
    let (out, json) = guaranteed_update_answered(scope, name, None, |current| {
        let mut patched = patch::apply(kind, current, &body, &scope.rt.schema_name)?;
        let pinned = meta::meta_str(&patched, "resourceVersion");
        if pinned.is_some_and(|rv| !rv.is_empty())
            && pinned != meta::meta_str(current, "resourceVersion")
        {
            return Err(ApiError::Conflict(scope.target(name), "the object has been modified; please apply your changes to the latest version and try again".into()));
        }
        kapi_codec::schema::prune_unknown(&scope.rt.schema_name, &mut patched).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        check_identity(scope, &patched, name)?;
        Ok(select(scope, target, patched, current))
    })
    .await?;
    view::written(scope, 200, &out, json)
}

/// Server-side apply: merge the applied configuration as its field manager, creating
/// the object when it does not exist; conflicts with other managers are 409 unless
/// `force=true`.
async fn apply(req: &Request<'_>, scope: &Scope<'_>, target: Target) -> Result<Response, ApiError> {
    let name = scope.url_name()?;
    if scope.info.param("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError::BadRequest(
            "PATCH, application/apply-patch+yaml: fieldManager is required for apply requests"
                .into(),
        ));
    }
    let force = matches!(scope.param("force"), Some("true" | "1"));
    let fmt = kapi_codec::format::Format::Yaml;
    check_apply_version(scope, &req.body)?;
    let Decoded { obj: applied, warnings } =
        object::decode_body(scope, &req.body, fmt, &scope.rt.kind)?;
    check_identity(scope, &applied, name)?;
    if meta::metadata(&applied).and_then(|m| m.get("managedFields")).is_some_and(|v| !v.is_null()) {
        return Err(ApiError::BadRequest("metadata.managedFields must be nil".into()));
    }
    kapi_codec::managed::typed::check(&applied, scope.rt.apply_type()).map_err(|e| {
        let rt = &scope.rt;
        let gvk = format!("{}/{}, Kind={}", rt.group, rt.version, rt.kind);
        ApiError::Unknown(format!("failed to create typed patch object ({gvk}): {e}"))
    })?;
    let err_target = scope.target(name);
    let updated = guaranteed_update_answered(scope, name, None, |current| {
        let out = super::fields_managed::apply(scope, Some(current), &applied, force, &err_target)?;
        Ok(select(scope, target, out, current))
    })
    .await;
    let (code, (out, json)) = match updated {
        Ok(answered) => (200, answered),
        Err(ApiError::NotFound(_)) if target == Target::Main => {
            let obj = super::fields_managed::apply(scope, None, &applied, force, &err_target)?;
            (201, super::create::create_answered(scope, obj).await?)
        }
        Err(e) => return Err(e),
    };
    Ok(with_warnings(view::written(scope, code, &out, json)?, &warnings))
}

/// An applied configuration names the group/version of the endpoint (upstream's field
/// manager checks this before anything else; a body it cannot read is left to decoding).
fn check_apply_version(scope: &Scope<'_>, body: &[u8]) -> Result<(), ApiError> {
    let Ok(doc) = kapi_codec::format::decode(body, kapi_codec::format::Format::Yaml) else {
        return Ok(());
    };
    let given = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let expected = scope.rt.api_version();
    if doc.is_object() && given != expected {
        return Err(ApiError::BadRequest(format!(
            "Incorrect version specified in apply patch. Specified patch version: {given}, expected: {expected}"
        )));
    }
    Ok(())
}

fn check_identity(scope: &Scope<'_>, obj: &Value, name: &str) -> Result<(), ApiError> {
    let body_name = meta::name(obj).unwrap_or("");
    if body_name.is_empty() && !scope.apply {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({name} based on URL) was undeterminable: name must be provided"
        )));
    }
    if body_name != name {
        return Err(ApiError::BadRequest(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if scope.rt.namespaced
        && let Some(ns) = meta::namespace(obj).filter(|ns| !ns.is_empty())
        && Some(ns) != scope.namespace.as_deref()
    {
        return Err(ApiError::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        ));
    }
    Ok(())
}

/// The object a write of `target` produces from the client's `new` and the `current` one.
pub fn select(scope: &Scope<'_>, target: Target, mut new: Value, current: &Value) -> Value {
    match target {
        Target::Main => {
            if scope.rt.has_status() {
                copy_field(&mut new, current, "status");
            }
            new
        }
        Target::Status => {
            let mut out = current.clone();
            copy_field(&mut out, &new, "status");
            out
        }
        Target::EphemeralContainers => super::ephemeral::select(&new, current),
        Target::Resize => super::resize::select(&new, current),
        Target::Approval => super::approval::select(&new, current, &crate::time::now_rfc3339()),
        Target::Finalize => {
            let mut out = current.clone();
            let fins = new.pointer("/spec/finalizers").cloned().unwrap_or_else(|| json!([]));
            if let Some(spec) = out.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("finalizers".into(), fins);
            } else if let Some(o) = out.as_object_mut() {
                o.insert("spec".into(), json!({"finalizers": fins}));
            }
            out
        }
    }
}

fn copy_field(to: &mut Value, from: &Value, field: &str) {
    let Some(o) = to.as_object_mut() else { return };
    match from.get(field) {
        Some(v) => {
            o.insert(field.into(), v.clone());
        }
        None => {
            o.remove(field);
        }
    }
}

/// Read-modify-write with optimistic concurrency. `pinned` is the client's
/// resourceVersion precondition.
pub async fn guaranteed_update<F>(
    scope: &Scope<'_>,
    name: &str,
    pinned: Option<Revision>,
    mutate: F,
) -> Result<Value, ApiError>
where
    F: Fn(&Value) -> Result<Value, ApiError>,
{
    guaranteed_update_answered(scope, name, pinned, mutate).await.map(|(out, _)| out)
}

/// [`guaranteed_update`], and the stored object's JSON answer when the writer spliced
/// it (`Written::answer`: compact, `\n`-ended, byte for byte the object's).
pub async fn guaranteed_update_answered<F>(
    scope: &Scope<'_>,
    name: &str,
    pinned: Option<Revision>,
    mutate: F,
) -> Result<(Value, Option<Bytes>), ApiError>
where
    F: Fn(&Value) -> Result<Value, ApiError>,
{
    let key = scope.key(name);
    let target = scope.target(name);
    for _ in 0..MAX_ATTEMPTS {
        let kv = scope.app.store.get(&key).await.map_err(|e| ApiError::from_storage(e, &target))?;
        let kv = kv.ok_or_else(|| ApiError::NotFound(target.clone()))?;
        if pinned.is_some_and(|rv| rv != kv.mod_revision) {
            return Err(ApiError::from_storage(
                StorageError::Conflict {
                    key,
                    expected: pinned.unwrap_or(0),
                    current: kv.mod_revision,
                },
                &target,
            ));
        }
        let current = crate::conversion::from_stored(scope.app, &scope.rt, &kv).await?;
        let mut new = mutate(&current)?;
        finish(scope, name, &mut new, &current).await?;
        // Upstream's field order, once, before the bytes and the answer are written.
        kapi_codec::order::canonicalize_type(&scope.rt, &mut new);
        if new == current {
            return Ok((current, None));
        }
        if scope.dry_run()? {
            return Ok((new, None));
        }
        let precondition = Precondition::ModRevision(kv.mod_revision);
        let written = if is_finalized(&new) {
            None
        } else {
            // The cache's feed takes what this write made instead of decoding it again.
            Some(written::to_stored(scope.app, &scope.rt, &key, &new).await?)
        };
        let store_start = std::time::Instant::now();
        let result = match &written {
            None => scope.app.store.delete(&key, precondition).await.map(|kv| (kv, true)),
            Some(w) => scope
                .app
                .store
                .update(&key, w.bytes.clone(), precondition)
                .await
                .map(|kv| (kv, false)),
        };
        crate::metrics::phase("storage", store_start.elapsed());
        if result.is_err()
            && let Some(w) = &written
        {
            w.withdraw(&key);
        }
        match result {
            Ok((kv, deleted)) => {
                meta::set_meta(&mut new, "resourceVersion", json!(kv.mod_revision.to_string()));
                if deleted {
                    hooks::after_delete(scope, &new);
                }
                let answer = written.and_then(|w| w.answer(kv.mod_revision));
                if let Some(a) = &answer {
                    written::check_answer(a, &new);
                }
                return Ok((new, answer));
            }
            Err(StorageError::Conflict { .. }) if pinned.is_none() => continue,
            Err(e) => return Err(ApiError::from_storage(e, &target)),
        }
    }
    Err(ApiError::Conflict(target, "the object has been modified; please apply your changes to the latest version and try again".into()))
}

/// A deleting object whose last finalizer is gone is deleted for real.
fn is_finalized(obj: &Value) -> bool {
    let deleting = meta::meta_str(obj, "deletionTimestamp").is_some();
    let fins = meta::metadata(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    deleting && fins == 0
}

/// Upstream's update order on one attempt's object: the uid precondition, default,
/// mutating admission (with `current` as the old object), the RBAC escalation check,
/// server-owned metadata carried over from `current`, prepare, the writer's
/// managedFields, validation, validating admission.
async fn finish(
    scope: &Scope<'_>,
    name: &str,
    new: &mut Value,
    current: &Value,
) -> Result<(), ApiError> {
    let target = scope.target(name);
    let cur_uid = meta::meta_str(current, "uid").unwrap_or("");
    if let Some(uid) = meta::meta_str(new, "uid").filter(|u| !u.is_empty() && *u != cur_uid) {
        let msg = format!(
            "Precondition failed: UID in precondition: {uid}, UID in object meta: {cur_uid}"
        );
        return Err(ApiError::Conflict(target, msg));
    }
    let strategy = &scope.rt.strategy;
    strategy.default(new);
    let attrs =
        admission::Attributes::new(scope, admission::Operation::Update, name, Some(current));
    super::admit::mutating(scope, &attrs, new).await?;
    crate::authz::escalation::check(scope, new)?;
    let deleting = meta::meta_str(current, "deletionTimestamp").is_some();
    let old_fins = finalizers(current);
    if deleting && finalizers(new).iter().any(|f| !old_fins.contains(f)) {
        let e = kapi_codec::FieldError::forbidden(
            "metadata.finalizers",
            "no new finalizers can be added if the object is being deleted",
        );
        return Err(ApiError::Invalid(target, vec![e]));
    }
    strategy.prepare_update(new, current);
    carry_metadata(scope, new, current);
    super::fields_managed::on_update(scope, current, new);
    hooks::before_update(scope, new, current);
    let mut errors =
        validation::validate_object_meta(new, scope.rt.namespaced, strategy.name_rule());
    errors.extend(validation::validate_object_meta_update(new, current));
    if errors.is_empty() {
        errors.extend(strategy.validate(new));
    }
    if errors.is_empty() {
        errors.extend(validate_update(scope, new, current));
    }
    if !errors.is_empty() {
        return Err(ApiError::Invalid(target, errors));
    }
    super::admit::validating(scope, &attrs, new).await
}

/// The update rules of what the request writes: a subresource's own, else the type's.
fn validate_update(scope: &Scope<'_>, new: &Value, current: &Value) -> Vec<kapi_codec::FieldError> {
    match scope.info.subresource.as_deref() {
        Some("ephemeralcontainers") => super::ephemeral::validate_update(new, current),
        Some("approval") => super::approval::validate_update(new, current),
        // What a resize may change is all its write takes over.
        Some("resize") => Vec::new(),
        _ => scope.rt.strategy.validate_update(new, current),
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    meta::metadata(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

fn carry_metadata(scope: &Scope<'_>, new: &mut Value, current: &Value) {
    let spec_changed = object::spec_part(new) != object::spec_part(current);
    let cur = meta::metadata(current).cloned().unwrap_or_default();
    let m = meta::metadata_mut(new);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "resourceVersion",
    ] {
        match cur.get(field) {
            Some(v) => m.insert(field.into(), v.clone()),
            None => m.remove(field),
        };
    }
    if scope.rt.namespaced
        && let Some(ns) = cur.get("namespace")
    {
        m.insert("namespace".into(), ns.clone());
    }
    if scope.rt.strategy.tracks_generation() {
        let generation = cur.get("generation").and_then(Value::as_i64).unwrap_or(1);
        m.insert(
            "generation".into(),
            json!(if spec_changed { generation + 1 } else { generation }),
        );
    } else {
        match cur.get("generation") {
            Some(v) => m.insert("generation".into(), v.clone()),
            None => m.remove("generation"),
        };
    }
}
