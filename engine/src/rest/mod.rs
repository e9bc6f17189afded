//! The generic REST verbs. Every resource is served by this one code path, driven by its
//! registry entry and strategy: there is no per-resource handler.
//!
//! Files: `scope` (what a request addresses), `object` (stored bytes <-> objects, metadata
//! stamping), `get`, `list`, `watch`, `create`, `update` (also status and patch),
//! `patch` (merge and JSON patch documents), `delete` (graceful deletion, finalizers,
//! collections), `fields` (field selector values), `table` (Table rendering),
//! `hooks` (per-resource side effects such as Service IP allocation), `view` (the
//! object, metadata or Table view of a verb's result), `component_status` (the probed
//! componentstatuses), `ephemeral`, `resize` and `approval` (what those
//! subresources write), `stages` (CREATE's stages one by one, for the create-path
//! benches; not an API).

mod admit;
mod approval;
mod binding;
mod component_status;
mod create;
mod custom_table;
mod delete;
pub mod encoded;
mod ephemeral;
mod eviction;
pub mod fields;
mod fields_managed;
#[doc(hidden)]
pub mod fuzz_api;
mod get;
pub(crate) mod hooks;
mod list;
pub(crate) mod object;
pub(crate) mod patch;
mod printers;
mod propagation;
mod resize;
mod scale;
mod scope;
#[doc(hidden)]
pub mod stages;
mod table;
mod token;
mod update;
mod view;
mod watch;

use crate::app::App;
use crate::auth::UserInfo;
use crate::body::Response;
use crate::negotiation::{self, Output};
use crate::request::RequestInfo;
use crate::status::ApiError;
use bytes::Bytes;
use kapi_codec::registry::Role;
pub use scope::Scope;

/// Everything the REST layer needs from one request.
pub struct Request<'a> {
    pub app: &'a App,
    pub info: &'a RequestInfo,
    pub headers: &'a http::HeaderMap,
    pub body: Bytes,
    pub user: &'a UserInfo,
    /// What admission plugins add to the answer (warnings) and the audit event.
    pub sink: &'a crate::admission::Sink,
}

impl Request<'_> {
    pub fn header(&self, name: http::header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Serve a resource request; errors become Status responses.
pub async fn handle(req: Request<'_>) -> Response {
    // Every verb renders Tables and PartialObjectMetadata, as upstream (`view`).
    let accept = req.header(http::header::ACCEPT);
    let output = match negotiation::negotiate(accept, true) {
        Ok(o) => o,
        Err(e) => return negotiation::error_response_for(&e, accept),
    };
    let resp = match dispatch(&req, output).await {
        Ok(resp) => resp,
        Err(e) => negotiation::error_response_for(&e, accept),
    };
    with_admission_notes(resp, req.sink)
}

/// The admission plugins' warnings as `Warning` headers (after the handler's own), and
/// their audit annotations in the response's extensions for the audit event.
fn with_admission_notes(resp: Response, sink: &crate::admission::Sink) -> Response {
    let mut resp = create::with_warnings(resp, &sink.take_warnings());
    let annotations = sink.take_annotations();
    if !annotations.is_empty() {
        resp.extensions_mut().insert(crate::admission::AuditAnnotations(annotations));
    }
    resp
}

async fn dispatch(req: &Request<'_>, output: Output) -> Result<Response, ApiError> {
    let scope = Scope::resolve(req, output)?;
    if let Some(sub) = req.info.subresource.as_deref() {
        return subresource(req, &scope, sub).await;
    }
    let named = req.info.name.is_some();
    if scope.rt.role == Role::ComponentStatuses {
        return match req.info.verb.as_str() {
            "get" => component_status::get(&scope).await,
            _ => component_status::list(&scope).await,
        };
    }
    match req.info.verb.as_str() {
        // Routes upstream does not have: PUT/PATCH of a collection, POST to an object.
        "update" | "patch" if !named => Err(scope.method_not_allowed()),
        "create" if named => Err(scope.method_not_allowed()),
        "get" => get::get(&scope).await,
        "list" => list::list(&scope).await,
        "watch" => watch::watch(&scope).await,
        "create" => create::create(req, &scope).await,
        "update" => update::update(req, &scope, update::Target::Main).await,
        "patch" => update::patch(req, &scope, update::Target::Main).await,
        "delete" => delete::delete(req, &scope).await,
        "deletecollection" => delete::delete_collection(req, &scope).await,
        _ => Err(scope.method_not_allowed()),
    }
}

fn internal_scope<'a>(app: &'a App, info: &'a RequestInfo) -> Result<Scope<'a>, ApiError> {
    internal_scope_as(app, info, "kube-apiserver")
}

fn internal_scope_as<'a>(
    app: &'a App,
    info: &'a RequestInfo,
    manager: &str,
) -> Result<Scope<'a>, ApiError> {
    let rt = app.registry().get(&info.group, &info.version, &info.resource).cloned().ok_or_else(
        || {
            ApiError::Internal(format!(
                "unknown resource {}/{}/{}",
                info.group, info.version, info.resource
            ))
        },
    )?;
    Ok(Scope {
        app,
        info,
        rt: rt.clone(),
        namespace: info.namespace.clone(),
        name: info.name.clone(),
        output: Output::Json,
        pretty: false,
        manager: manager.into(),
        apply: false,
        user: None,
        sink: None,
    })
}

fn internal_info(
    verb: &str,
    group: &str,
    version: &str,
    plural: &str,
    ns: Option<&str>,
    name: Option<&str>,
) -> RequestInfo {
    RequestInfo {
        is_resource: true,
        verb: verb.into(),
        group: group.into(),
        version: version.into(),
        resource: plural.into(),
        namespace: ns.map(String::from),
        name: name.map(String::from),
        ..Default::default()
    }
}

/// Create an object on the server's own behalf (bootstrap), through the client path.
pub async fn create_internal(
    app: &App,
    group: &str,
    version: &str,
    plural: &str,
    ns: Option<&str>,
    obj: serde_json::Value,
) -> Result<serde_json::Value, ApiError> {
    let info = internal_info("create", group, version, plural, ns, None);
    let scope = internal_scope(app, &info)?;
    create::create_object(&scope, obj).await
}

/// Update an object on the server's own behalf (RBAC bootstrap reconciliation), through
/// the client path's optimistic-concurrency loop: `mutate` maps the current object to the
/// new one (returning it unchanged writes nothing) and runs again on a conflict.
pub async fn update_internal<F>(
    app: &App,
    group: &str,
    version: &str,
    plural: &str,
    ns: Option<&str>,
    name: &str,
    mutate: F,
) -> Result<serde_json::Value, ApiError>
where
    F: Fn(&serde_json::Value) -> Result<serde_json::Value, ApiError>,
{
    let info = internal_info("update", group, version, plural, ns, Some(name));
    let scope = internal_scope(app, &info)?;
    update::guaranteed_update(&scope, name, None, mutate).await
}

/// Which object an internal write is about, and on whose behalf (its field manager).
#[derive(Debug, Clone, Copy)]
pub struct InternalTarget<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub plural: &'a str,
    pub ns: Option<&'a str>,
    /// `status` to write the status subresource (as its managed-fields entry says).
    pub subresource: Option<&'a str>,
    pub manager: &'a str,
}

/// [`create_internal`] as `target.manager`.
pub async fn create_internal_as(
    app: &App,
    target: InternalTarget<'_>,
    obj: serde_json::Value,
) -> Result<serde_json::Value, ApiError> {
    let info =
        internal_info("create", target.group, target.version, target.plural, target.ns, None);
    let scope = internal_scope_as(app, &info, target.manager)?;
    create::create_object(&scope, obj).await
}

/// [`update_internal`] as `target.manager`, of the object or its `target.subresource`.
pub async fn update_internal_as<F>(
    app: &App,
    target: InternalTarget<'_>,
    name: &str,
    mutate: F,
) -> Result<serde_json::Value, ApiError>
where
    F: Fn(&serde_json::Value) -> Result<serde_json::Value, ApiError>,
{
    let mut info =
        internal_info("update", target.group, target.version, target.plural, target.ns, Some(name));
    info.subresource = target.subresource.map(String::from);
    let scope = internal_scope_as(app, &info, target.manager)?;
    update::guaranteed_update(&scope, name, None, mutate).await
}

/// Delete an object on the server's own behalf (namespace controller), immediately
/// (grace period 0) unless finalizers hold it.
pub async fn delete_internal(
    app: &App,
    rt: &kapi_codec::ResourceType,
    ns: Option<&str>,
    name: &str,
) -> Result<serde_json::Value, ApiError> {
    let info = internal_info("delete", &rt.group, &rt.version, &rt.plural, ns, Some(name));
    let scope = internal_scope(app, &info)?;
    let opts = delete::DeleteOptions { grace: Some(0), ..Default::default() };
    delete::delete_one(&scope, name, &opts).await.map(|d| d.obj)
}

/// Route a subresource request by the subresource's name: `Scope::resolve` has already
/// refused (404) any subresource the type's registry entry does not declare.
async fn subresource(
    req: &Request<'_>,
    scope: &Scope<'_>,
    sub: &str,
) -> Result<Response, ApiError> {
    match (sub, req.info.verb.as_str()) {
        ("status", "get") => get::get(scope).await,
        ("status", "update") => update::update(req, scope, update::Target::Status).await,
        ("status", "patch") => update::patch(req, scope, update::Target::Status).await,
        ("ephemeralcontainers" | "approval" | "resize", "get") => get::get(scope).await,
        ("resize", "update") => update::update(req, scope, update::Target::Resize).await,
        ("resize", "patch") => update::patch(req, scope, update::Target::Resize).await,
        ("ephemeralcontainers", "update") => {
            update::update(req, scope, update::Target::EphemeralContainers).await
        }
        ("ephemeralcontainers", "patch") => {
            update::patch(req, scope, update::Target::EphemeralContainers).await
        }
        ("approval", "update") => update::update(req, scope, update::Target::Approval).await,
        ("approval", "patch") => update::patch(req, scope, update::Target::Approval).await,
        ("scale", "get") => scale::get(scope).await,
        ("scale", "update") => scale::update(req, scope).await,
        ("scale", "patch") => scale::patch(req, scope).await,
        ("binding", "create") => binding::create(req, scope).await,
        ("eviction", "create") => eviction::create(req, scope).await,
        ("token", "create") => token::create(req, scope).await,
        ("finalize", "update") => update::update(req, scope, update::Target::Finalize).await,
        ("log" | "exec" | "attach" | "portforward" | "proxy", _) => Err(ApiError::BadRequest(
            format!("the {sub} subresource needs a kubelet to talk to, and kapi runs none"),
        )),
        _ => Err(ApiError::MethodNotAllowed(format!(
            "the server does not allow this method on the requested resource ({}/{sub}) yet",
            scope.rt.plural
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_warnings_become_warning_headers_and_annotations_go_to_the_audit() {
        let sink = crate::admission::Sink::default();
        sink.warn("first \"quoted\"".into());
        sink.annotate("example.com/key".into(), "v".into());
        let resp = negotiation::respond(403, &serde_json::json!({}), Output::Json, false);
        let resp = with_admission_notes(resp, &sink);
        let warnings: Vec<&str> = resp
            .headers()
            .get_all(http::header::WARNING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(warnings, [r#"299 - "first \"quoted\"""#]);
        let notes = resp.extensions().get::<crate::admission::AuditAnnotations>().unwrap();
        assert_eq!(notes.0, [("example.com/key".to_string(), "v".to_string())]);
    }
}
