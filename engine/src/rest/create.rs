//! CREATE, in upstream's order: decode, default, the creator's managedFields, mutating
//! admission, stamp server-owned metadata (uid, creationTimestamp, generation,
//! generateName), prepare, validate, validating admission, allocate (hooks), store.

use super::object::{self, Decoded};
use super::{Request, Scope, hooks, view};
use crate::admission;
use crate::body::Response;
use crate::cache::written;
use crate::negotiation::body_format;
use crate::status::ApiError;
use crate::time;
use bytes::Bytes;
use kapi_codec::meta;
use kapi_codec::registry::Persistence;
use kapi_codec::validation;
use serde_json::{Value, json};

pub async fn create(req: &Request<'_>, scope: &Scope<'_>) -> Result<Response, ApiError> {
    let fmt = body_format(req.header(http::header::CONTENT_TYPE))?;
    let Decoded { obj, warnings } = object::decode_body(scope, &req.body, fmt, &scope.rt.kind)?;
    if scope.rt.persistence == Persistence::Virtual {
        let out = hooks::virtual_create(req, scope, obj).await?;
        return Ok(with_warnings(view::object(scope, 201, &out)?, &warnings));
    }
    let (out, json) = create_answered(scope, obj).await?;
    Ok(with_warnings(view::written(scope, 201, &out, json)?, &warnings))
}

/// Create a decoded object: default, mutating admission, prepare and validate,
/// validating admission, allocate, store.
pub async fn create_object(scope: &Scope<'_>, obj: Value) -> Result<Value, ApiError> {
    create_answered(scope, obj).await.map(|(out, _)| out)
}

/// [`create_object`], and the created object's JSON answer when the writer spliced it
/// (`Written::answer`: compact, `\n`-ended, byte for byte the object's).
pub async fn create_answered(
    scope: &Scope<'_>,
    mut obj: Value,
) -> Result<(Value, Option<Bytes>), ApiError> {
    let name = admit_new(scope, &mut obj).await?;
    let target = scope.target(&name);
    if scope.dry_run()? {
        kapi_codec::order::canonicalize_type(&scope.rt, &mut obj);
        return Ok((obj, None));
    }
    let allocated = hooks::before_create(scope, &mut obj)
        .map_err(|causes| ApiError::Invalid(target.clone(), causes))?;
    // Upstream's field order, once: the stored bytes, this answer and every cached
    // encoding are written from it.
    kapi_codec::order::canonicalize_type(&scope.rt, &mut obj);
    let key = scope.key(&name);
    // The cache's feed takes what this write made instead of decoding the value again.
    let written = match written::to_stored(scope.app, &scope.rt, &key, &obj).await {
        Ok(w) => w,
        Err(e) => {
            hooks::release(scope, &allocated);
            return Err(e);
        }
    };
    let store_start = std::time::Instant::now();
    let stored = scope.app.store.create(&key, written.bytes.clone()).await;
    crate::metrics::phase("storage", store_start.elapsed());
    match stored {
        Ok(kv) => {
            let rv = json!(kv.mod_revision.to_string());
            kapi_codec::order::set_meta(&mut obj, "resourceVersion", rv);
            let answer = written.answer(kv.mod_revision);
            if let Some(a) = &answer {
                written::check_answer(a, &obj);
            }
            Ok((obj, answer))
        }
        Err(e) => {
            written.withdraw(&key);
            hooks::release(scope, &allocated);
            Err(ApiError::from_storage(e, &target))
        }
    }
}

/// Upstream's create order up to the store: default and record the creator's
/// managedFields ([`decode_phase`]), mutating admission, the RBAC escalation check,
/// prepare and validate ([`prepare`]), validating admission. Returns the object's name.
async fn admit_new(scope: &Scope<'_>, obj: &mut Value) -> Result<String, ApiError> {
    decode_phase(scope, obj)?;
    admit_and_prepare(scope, obj).await?;
    Ok(meta::name(obj).unwrap_or("").to_string())
}

/// Mutating admission, the RBAC escalation check, [`prepare`], validating admission.
pub(super) async fn admit_and_prepare(scope: &Scope<'_>, obj: &mut Value) -> Result<(), ApiError> {
    let requested = meta::name(obj).unwrap_or("").to_string();
    let attrs = admission::Attributes::new(scope, admission::Operation::Create, &requested, None);
    super::admit::mutating(scope, &attrs, obj).await?;
    crate::authz::escalation::check(scope, obj)?;
    prepare(scope, obj)?;
    super::admit::validating(scope, &attrs, obj).await
}

/// What decoding a new object does before admission: the request's namespace, the
/// type's defaults and the creator's managedFields. As upstream, the creator owns the
/// defaulted object, not what admission and PrepareForCreate add (a pod's service
/// account and tolerations, a namespace's finalizers).
fn decode_phase(scope: &Scope<'_>, obj: &mut Value) -> Result<(), ApiError> {
    default(scope, obj)?;
    super::fields_managed::on_create(scope, obj);
    Ok(())
}

/// The request's namespace and the type's defaults.
pub(super) fn default(scope: &Scope<'_>, obj: &mut Value) -> Result<(), ApiError> {
    set_namespace(scope, obj)?;
    scope.rt.strategy.default(obj);
    Ok(())
}

/// Upstream's BeforeCreate on an admitted object, in place: no resourceVersion, the
/// name generated from `generateName`, server-owned metadata stamped, the type's
/// PrepareForCreate, then validation.
pub(super) fn prepare(scope: &Scope<'_>, obj: &mut Value) -> Result<(), ApiError> {
    if meta::meta_str(obj, "resourceVersion").is_some_and(|rv| !rv.is_empty()) {
        return Err(ApiError::Internal(
            "resourceVersion should not be set on objects to be created".into(),
        ));
    }
    let name = meta::name(obj).unwrap_or("");
    if name.is_empty()
        && let Some(base) = meta::meta_str(obj, "generateName").filter(|g| !g.is_empty())
    {
        let generated = object::generate_name(base);
        meta::set_meta(obj, "name", json!(generated));
    }
    stamp(scope, obj);
    let strategy = &scope.rt.strategy;
    strategy.prepare_create(obj);
    let mut errors =
        validation::validate_object_meta(obj, scope.rt.namespaced, strategy.name_rule());
    if errors.is_empty() {
        errors.extend(strategy.validate(obj));
        errors.extend(strategy.validate_create(obj));
    }
    if !errors.is_empty() {
        let name = meta::name(obj).unwrap_or("").to_string();
        return Err(ApiError::Invalid(scope.target(&name), errors));
    }
    Ok(())
}

fn set_namespace(scope: &Scope<'_>, obj: &mut Value) -> Result<(), ApiError> {
    if !scope.rt.namespaced {
        meta::metadata_mut(obj).remove("namespace");
        return Ok(());
    }
    let url_ns = scope.namespace.clone().unwrap_or_default();
    match meta::namespace(obj) {
        Some(ns) if !ns.is_empty() && ns != url_ns => Err(ApiError::BadRequest(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        )),
        _ => {
            meta::set_meta(obj, "namespace", json!(url_ns));
            Ok(())
        }
    }
}

/// Server-owned metadata of a new object.
fn stamp(scope: &Scope<'_>, obj: &mut Value) {
    let tracks_generation = scope.rt.strategy.tracks_generation();
    let m = meta::metadata_mut(obj);
    m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    m.insert("creationTimestamp".into(), json!(time::now_rfc3339()));
    m.remove("deletionTimestamp");
    m.remove("deletionGracePeriodSeconds");
    m.remove("selfLink");
    if tracks_generation {
        m.insert("generation".into(), json!(1));
    } else {
        m.remove("generation");
    }
}

/// Add `Warning` headers (upstream: `299 - "message"`).
pub fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = http::HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
    resp
}
