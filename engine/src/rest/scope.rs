//! `Scope`: the resource type, namespace and name a request addresses, checked against
//! the registry (unknown resources 404, scope mismatches 404/405 as upstream).

use super::Request;
use crate::app::App;
use crate::negotiation::Output;
use crate::request::RequestInfo;
use crate::status::{ApiError, Target};
use kapi_codec::ResourceType;
use kapi_codec::registry::Persistence;
use std::sync::Arc;

#[derive(Clone)]
pub struct Scope<'a> {
    pub app: &'a App,
    pub info: &'a RequestInfo,
    pub rt: Arc<ResourceType>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub output: Output,
    pub pretty: bool,
    /// The field manager of a write: `fieldManager`, else the User-Agent's product.
    pub manager: String,
    /// A PATCH with `application/apply-patch+yaml` (server-side apply).
    pub apply: bool,
    /// Who asks (None: the server itself, e.g. a controller or the bootstrap).
    pub user: Option<&'a crate::auth::UserInfo>,
    /// Where admission plugins' warnings and audit annotations go (None: the server's
    /// own writes, which have no answer to carry them).
    pub sink: Option<&'a crate::admission::Sink>,
}

/// Upstream's default manager: the User-Agent up to its first `/`.
fn manager_of(info: &RequestInfo, user_agent: Option<&str>) -> Result<String, ApiError> {
    if let Some(m) = info.param("fieldManager").filter(|m| !m.is_empty()) {
        if m.chars().count() > 128 {
            return Err(ApiError::BadRequest(
                "fieldManager: Too long: may not be more than 128 bytes".into(),
            ));
        }
        return Ok(m.to_string());
    }
    let product = user_agent.and_then(|ua| ua.split('/').next()).unwrap_or("").trim();
    Ok(if product.is_empty() { "unknown".into() } else { product.chars().take(128).collect() })
}

fn not_found_resource() -> ApiError {
    ApiError::NotFoundMessage(
        Target::default(),
        "the server could not find the requested resource".into(),
    )
}

impl<'a> Scope<'a> {
    pub fn resolve(req: &Request<'a>, output: Output) -> Result<Scope<'a>, ApiError> {
        let info = req.info;
        let rt = req
            .app
            .registry()
            .get(&info.group, &info.version, &info.resource)
            .cloned()
            .ok_or_else(not_found_resource)?;
        if !rt.namespaced && info.namespace.is_some() {
            return Err(not_found_resource());
        }
        let output = match output {
            // Custom resources have no protobuf form: JSON or YAML if the client takes
            // them, else 406, as upstream.
            Output::Protobuf | Output::MetadataProtobuf if rt.custom.is_some() => {
                let accept = req.header(http::header::ACCEPT);
                crate::negotiation::negotiate_without_protobuf(accept, true)?
            }
            other => other,
        };
        if let Some(sub) = &info.subresource
            && rt.subresource(sub).is_none()
        {
            return Err(not_found_resource());
        }
        let scope = Scope {
            app: req.app,
            info,
            rt,
            namespace: info.namespace.clone(),
            name: info.name.clone(),
            output,
            pretty: matches!(info.param("pretty"), Some("true" | "1")),
            manager: manager_of(info, req.header(http::header::USER_AGENT))?,
            apply: info.verb == "patch"
                && req
                    .header(http::header::CONTENT_TYPE)
                    .is_some_and(|c| c.starts_with("application/apply-patch")),
            user: Some(req.user),
            sink: Some(req.sink),
        };
        scope.check_verb()?;
        Ok(scope)
    }

    fn check_verb(&self) -> Result<(), ApiError> {
        let verb = self.info.verb.as_str();
        if self.info.subresource.is_some() {
            return Ok(());
        }
        let namespaced_needs_ns = self.rt.namespaced && self.namespace.is_none();
        if namespaced_needs_ns && matches!(verb, "create" | "update" | "patch" | "delete") {
            return Err(if self.name.is_some() {
                not_found_resource()
            } else {
                self.method_not_allowed()
            });
        }
        if namespaced_needs_ns && verb == "get" {
            return Err(not_found_resource());
        }
        let virtual_ok = self.rt.persistence == Persistence::Virtual && verb == "create";
        if !self.rt.supports(verb) && !virtual_ok {
            return Err(self.method_not_allowed());
        }
        Ok(())
    }

    pub fn method_not_allowed(&self) -> ApiError {
        ApiError::MethodNotAllowed(format!(
            "the server does not allow this method on the requested resource ({})",
            self.rt.plural
        ))
    }

    /// The error target for object `name`.
    pub fn target(&self, name: &str) -> Target {
        Target {
            group: self.rt.group.to_string(),
            resource: self.rt.plural.to_string(),
            kind: self.rt.kind.to_string(),
            name: name.to_string(),
        }
    }

    pub fn key(&self, name: &str) -> String {
        self.rt.storage_key(self.app.prefix(), self.namespace.as_deref(), name)
    }

    pub fn list_prefix(&self) -> String {
        self.rt.storage_prefix(self.app.prefix(), self.namespace.as_deref())
    }

    /// The name from the URL (present for single-object verbs).
    pub fn url_name(&self) -> Result<&str, ApiError> {
        self.name
            .as_deref()
            .ok_or_else(|| ApiError::BadRequest("resource name may not be empty".into()))
    }

    pub fn param(&self, key: &str) -> Option<&str> {
        self.info.param(key).filter(|v| !v.is_empty())
    }

    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.info.param("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "Invalid dryRun value: {other}; supported values: \"All\""
            ))),
        }
    }
}
