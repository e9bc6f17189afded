//! DELETE and DELETECOLLECTION: DeleteOptions (body or query), preconditions, graceful
//! deletion of scheduled pods, finalizers (the object stays with a deletionTimestamp until
//! they are gone), namespaces (marked Terminating; the namespace controller empties and
//! removes them).

use super::fields::Selectors;
use super::{Request, Scope, hooks, list, propagation, view};
use crate::body::Response;
use crate::cache::written;
use crate::status::ApiError;
use crate::time;
use kapi_codec::meta;
use kapi_codec::registry::Role;
use kapi_storage::{Precondition, StorageError};
use serde_json::{Value, json};

/// The parts of DeleteOptions kapi acts on.
#[derive(Debug, Default, Clone)]
pub struct DeleteOptions {
    pub grace: Option<i64>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    /// propagationPolicy / orphanDependents: the garbage collector's finalizers.
    pub policy: propagation::Policy,
    /// The write was admitted already as another request (an eviction's delete of its
    /// pod, as upstream's EvictionREST deletes without admission).
    pub admitted: bool,
}

impl DeleteOptions {
    fn parse(scope: &Scope<'_>, body: &[u8]) -> Result<DeleteOptions, ApiError> {
        let mut o = DeleteOptions::default();
        if !body.iter().all(u8::is_ascii_whitespace) {
            let doc: Value = if body.starts_with(kapi_codec::protobuf::MAGIC) {
                kapi_codec::protobuf::decode_object(body)
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?
            } else {
                serde_json::from_slice(body)
                    .map_err(|e| ApiError::BadRequest(format!("invalid DeleteOptions: {e}")))?
            };
            o.grace = doc.get("gracePeriodSeconds").and_then(Value::as_i64);
            o.uid = doc.pointer("/preconditions/uid").and_then(Value::as_str).map(String::from);
            o.resource_version = doc
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(String::from);
            o.policy.propagation =
                doc.get("propagationPolicy").and_then(Value::as_str).map(String::from);
            o.policy.orphan_dependents = doc.get("orphanDependents").and_then(Value::as_bool);
            if let Some(dr) = doc.get("dryRun").and_then(Value::as_array)
                && dr.iter().any(|v| v != "All")
            {
                return Err(ApiError::BadRequest(
                    "Invalid dryRun value; supported values: \"All\"".into(),
                ));
            }
        }
        if let Some(g) = scope.param("gracePeriodSeconds") {
            o.grace =
                Some(g.parse().map_err(|_| {
                    ApiError::BadRequest(format!("invalid gracePeriodSeconds: {g}"))
                })?);
        }
        if let Some(p) = scope.param("propagationPolicy") {
            o.policy.propagation = Some(p.to_string());
        }
        if let Some(v) = scope.param("orphanDependents") {
            o.policy.orphan_dependents = Some(v == "true");
        }
        o.policy.validate()?;
        Ok(o)
    }
}

pub async fn delete(req: &Request<'_>, scope: &Scope<'_>) -> Result<Response, ApiError> {
    let name = scope.url_name()?;
    let opts = DeleteOptions::parse(scope, &req.body)?;
    let out = delete_one(scope, name, &opts).await?;
    if out.gone && !scope.rt.returns_deleted_object() {
        return Ok(deleted_status(scope, &out.obj));
    }
    view::object(scope, 200, &out.obj)
}

/// The admission chain on a delete of `current` (each attempt's object): the plugins
/// get the object being deleted, which is also `Attributes::old`.
async fn admit_delete(scope: &Scope<'_>, name: &str, current: &Value) -> Result<(), ApiError> {
    let attrs = crate::admission::Attributes::new(
        scope,
        crate::admission::Operation::Delete,
        name,
        Some(current),
    );
    let mut obj = current.clone();
    super::admit::both(scope, &attrs, &mut obj).await
}

/// Upstream's answer to a delete that removed the object at once, for the types that
/// do not return the deleted object: a Success Status naming it (`details.kind` is the
/// resource, as upstream sets it).
fn deleted_status(scope: &Scope<'_>, obj: &Value) -> Response {
    let mut details = serde_json::Map::new();
    details.insert("name".into(), json!(meta::name(obj).unwrap_or("")));
    if !scope.rt.group.is_empty() {
        details.insert("group".into(), json!(&*scope.rt.group));
    }
    details.insert("kind".into(), json!(&*scope.rt.plural));
    details.insert("uid".into(), json!(meta::meta_str(obj, "uid").unwrap_or("")));
    let ok = crate::status::success(Some(Value::Object(details)));
    crate::negotiation::respond(200, &ok, scope.output, scope.pretty)
}

/// What a delete did: the object as it was deleted or as it stays (marked), and whether
/// it is gone now.
#[derive(Debug)]
pub struct Deleted {
    pub obj: Value,
    pub gone: bool,
}

pub async fn delete_collection(req: &Request<'_>, scope: &Scope<'_>) -> Result<Response, ApiError> {
    let opts = DeleteOptions::parse(scope, &req.body)?;
    let selectors =
        Selectors::parse(&scope.rt, scope.param("labelSelector"), scope.param("fieldSelector"))?;
    let page = list::read_page(scope, &selectors, 0, None).await?;
    let items = page.items.values(&scope.rt);
    let mut deleted = Vec::with_capacity(items.len());
    for obj in items.iter() {
        let name = meta::name(obj).unwrap_or("");
        let ns_scope = Scope { namespace: meta::namespace(obj).map(String::from), ..scope.clone() };
        match delete_one(&ns_scope, name, &opts).await {
            Ok(o) => deleted.push(o.obj),
            Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let metadata = json!({"resourceVersion": scope.app.store.current_revision().to_string()});
    view::list(scope, deleted, metadata)
}

fn check_preconditions(
    scope: &Scope<'_>,
    name: &str,
    current: &Value,
    opts: &DeleteOptions,
) -> Result<(), ApiError> {
    let target = scope.target(name);
    let uid = meta::meta_str(current, "uid").unwrap_or("");
    if let Some(want) = opts.uid.as_deref().filter(|u| *u != uid) {
        return Err(ApiError::Conflict(
            target,
            format!("Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"),
        ));
    }
    let rv = meta::meta_str(current, "resourceVersion").unwrap_or("");
    if let Some(want) = opts.resource_version.as_deref().filter(|r| *r != rv) {
        return Err(ApiError::Conflict(
            target,
            format!(
                "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in meta: {rv}"
            ),
        ));
    }
    Ok(())
}

/// Grace period of a pod deletion: 0 for pods never scheduled or already terminal.
fn pod_grace(current: &Value, opts: &DeleteOptions) -> i64 {
    let scheduled =
        current.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
    let terminal = matches!(
        current.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    if !scheduled || terminal {
        return 0;
    }
    let default = current
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(30);
    opts.grace.unwrap_or(default).max(0)
}

pub async fn delete_one(
    scope: &Scope<'_>,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Deleted, ApiError> {
    let key = scope.key(name);
    let target = scope.target(name);
    loop {
        let kv = scope.app.store.get(&key).await.map_err(|e| ApiError::from_storage(e, &target))?;
        let kv = kv.ok_or_else(|| ApiError::NotFound(target.clone()))?;
        let current = crate::conversion::from_stored(scope.app, &scope.rt, &kv).await?;
        check_preconditions(scope, name, &current, opts)?;
        if !opts.admitted {
            admit_delete(scope, name, &current).await?;
        }
        let grace = if scope.rt.role == Role::Pods { pod_grace(&current, opts) } else { 0 };
        let current_fins = propagation::finalizers_of(&current);
        let mut new_fins = opts.policy.finalizers(&current_fins);
        if scope.rt.role == Role::CustomResourceDefinitions {
            // As upstream's CRD storage: the delete adds the cleanup finalizer, which the
            // CRD controller drops once the CRD's objects are gone.
            let mut fins = new_fins.clone().unwrap_or_else(|| current_fins.clone());
            if !fins.iter().any(|f| f == crate::controllers::crd::CLEANUP_FINALIZER) {
                fins.push(crate::controllers::crd::CLEANUP_FINALIZER.to_string());
                new_fins = Some(fins);
            }
        }
        let fins = !new_fins.as_ref().unwrap_or(&current_fins).is_empty();
        let is_namespace = scope.rt.role == Role::Namespaces;
        let marks = is_namespace || grace > 0 || fins || new_fins.is_some();
        if scope.dry_run()? {
            return Ok(Deleted { obj: current, gone: !marks });
        }
        let result = if marks {
            let mark = Marking { rev: kv.mod_revision, grace, is_namespace, finalizers: new_fins };
            mark_deleting(scope, &key, &current, mark).await?
        } else {
            scope.app.store.delete(&key, Precondition::ModRevision(kv.mod_revision)).await.map(
                |kv| {
                    let mut out = current.clone();
                    meta::set_meta(&mut out, "resourceVersion", json!(kv.mod_revision.to_string()));
                    hooks::after_delete(scope, &out);
                    Some(out)
                },
            )
        };
        match result {
            Ok(Some(out)) => {
                let gone = !marks || meta::meta_str(&out, "deletionTimestamp").is_none();
                return Ok(Deleted { obj: out, gone });
            }
            Ok(None) => return Ok(Deleted { obj: current, gone: false }),
            Err(StorageError::Conflict { .. }) => continue,
            Err(e) => return Err(ApiError::from_storage(e, &target)),
        }
    }
}

/// What a delete that keeps the object for now changes.
struct Marking {
    rev: u64,
    grace: i64,
    is_namespace: bool,
    /// The garbage collector's finalizers changed by the delete's policy.
    finalizers: Option<Vec<String>>,
}

/// Set deletionTimestamp (now + grace) and the policy's finalizers; namespaces also
/// become Terminating. Returns None when the object is already being deleted at least
/// as soon and its finalizers stay. The outer error is a failed conversion of the
/// object to its storage version (a webhook's), the inner one the store's.
async fn mark_deleting(
    scope: &Scope<'_>,
    key: &str,
    current: &Value,
    mark: Marking,
) -> Result<Result<Option<Value>, StorageError>, ApiError> {
    let Marking { rev, grace, is_namespace, finalizers } = mark;
    let existing = meta::metadata(current)
        .and_then(|m| m.get("deletionGracePeriodSeconds"))
        .and_then(Value::as_i64);
    let deleting = meta::meta_str(current, "deletionTimestamp").is_some();
    let sooner = existing.is_some_and(|g| grace < g);
    if deleting && !sooner && finalizers.is_none() {
        return Ok(Ok(None));
    }
    let no_finalizers = finalizers
        .as_ref()
        .map_or_else(|| propagation::finalizers_of(current).is_empty(), Vec::is_empty);
    if grace == 0 && no_finalizers && !is_namespace {
        let deleted = scope.app.store.delete(key, Precondition::ModRevision(rev)).await;
        return Ok(deleted.map(|kv| {
            let mut out = current.clone();
            meta::set_meta(&mut out, "resourceVersion", json!(kv.mod_revision.to_string()));
            hooks::after_delete(scope, &out);
            Some(out)
        }));
    }
    let mut out = current.clone();
    let m = meta::metadata_mut(&mut out);
    if let Some(f) = finalizers {
        m.insert("finalizers".into(), json!(f));
    }
    if !deleting || sooner {
        m.insert("deletionTimestamp".into(), json!(time::rfc3339(time::now_unix() + grace)));
        m.insert("deletionGracePeriodSeconds".into(), json!(grace));
    }
    if is_namespace {
        out["status"] = json!({"phase": "Terminating"});
    }
    // The fields set here go where upstream's field order has them.
    kapi_codec::order::canonicalize_type(&scope.rt, &mut out);
    // The cache's feed takes what this write made instead of decoding it again.
    let written = written::to_stored(scope.app, &scope.rt, key, &out).await?;
    let bytes = written.bytes.clone();
    let updated = scope.app.store.update(key, bytes, Precondition::ModRevision(rev)).await;
    if updated.is_err() {
        written.withdraw(key);
    }
    Ok(updated.map(|kv| {
        meta::set_meta(&mut out, "resourceVersion", json!(kv.mod_revision.to_string()));
        Some(out)
    }))
}
