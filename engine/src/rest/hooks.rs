//! Per-resource side effects the generic verbs call at fixed points — the only place a
//! resource name is matched in the REST layer:
//! - Services: ClusterIP and NodePort allocation on create, carry-over of allocated values
//!   on update (upstream's patchAllocatedValues), release on delete;
//! - create-only review types (SelfSubjectReview, TokenReview, *SubjectAccessReview,
//!   SelfSubjectRulesReview): answered from the authenticator/authorizer, never stored.

use super::{Request, Scope};
use crate::alloc::AllocError;
use crate::status::ApiError;
use kapi_codec::FieldError;
use kapi_codec::registry::{Review, Role};
use serde_json::{Value, json};

/// What `before_create` reserved, to release if the write fails.
#[derive(Debug, Default)]
pub struct Allocated {
    ips: Vec<String>,
    ports: Vec<i64>,
}

fn is_service(scope: &Scope<'_>) -> bool {
    scope.rt.role == Role::Services
}

fn alloc_error(field: &str, value: Value, e: AllocError) -> FieldError {
    FieldError::invalid(
        field,
        &value,
        &format!("failed to allocate IP {}: {e}", value.as_str().unwrap_or("")),
    )
}

/// Allocate ClusterIPs and NodePorts for a new Service.
pub fn before_create(scope: &Scope<'_>, obj: &mut Value) -> Result<Allocated, Vec<FieldError>> {
    let mut got = Allocated::default();
    if !is_service(scope) {
        return Ok(got);
    }
    let app = scope.app;
    let svc_type =
        obj.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP").to_string();
    if svc_type == "ExternalName" {
        return Ok(got);
    }
    let requested =
        obj.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or("").to_string();
    let ip = match requested.as_str() {
        "None" => "None".to_string(),
        "" => match app.cluster_ips.allocate_next() {
            Ok(ip) => ip.to_string(),
            Err(e) => return Err(vec![alloc_error("spec.clusterIPs", json!(""), e)]),
        },
        want => match app.cluster_ips.allocate(want) {
            Ok(()) => want.to_string(),
            Err(e) => {
                return Err(vec![FieldError::invalid(
                    "spec.clusterIPs",
                    &json!([want]),
                    &format!("failed to allocate IP {want}: {e}"),
                )]);
            }
        },
    };
    if ip != "None" {
        got.ips.push(ip.clone());
    }
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("clusterIP".into(), json!(ip));
        spec.insert("clusterIPs".into(), json!([ip]));
    }
    if matches!(svc_type.as_str(), "NodePort" | "LoadBalancer") {
        allocate_node_ports(scope, obj, &mut got)?;
    }
    Ok(got)
}

fn allocate_node_ports(
    scope: &Scope<'_>,
    obj: &mut Value,
    got: &mut Allocated,
) -> Result<(), Vec<FieldError>> {
    let Some(ports) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for (i, port) in ports.iter_mut().enumerate() {
        let field = format!("spec.ports[{i}].nodePort");
        let requested = port.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
        let assigned = if requested == 0 {
            scope.app.node_ports.allocate_next().map(i64::from)
        } else {
            scope.app.node_ports.allocate(requested).map(|()| requested)
        };
        match assigned {
            Ok(p) => {
                got.ports.push(p);
                port["nodePort"] = json!(p);
            }
            Err(e) => {
                release(scope, got);
                return Err(vec![FieldError::invalid(field, &json!(requested), &e.to_string())]);
            }
        }
    }
    Ok(())
}

/// Give back what `before_create` reserved.
pub fn release(scope: &Scope<'_>, got: &Allocated) {
    for ip in &got.ips {
        scope.app.cluster_ips.release(ip);
    }
    for p in &got.ports {
        scope.app.node_ports.release(*p);
    }
}

/// Keep allocated values a client left out of an update (upstream patchAllocatedValues).
pub fn before_update(scope: &Scope<'_>, new: &mut Value, old: &Value) {
    if !is_service(scope) {
        return;
    }
    for field in ["clusterIP", "clusterIPs"] {
        let unset = new
            .pointer(&format!("/spec/{field}"))
            .is_none_or(|v| v.is_null() || v == "" || v == &json!([]));
        if unset
            && let Some(v) = old.pointer(&format!("/spec/{field}")).cloned()
            && let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.insert(field.into(), v);
        }
    }
    let old_ports: Vec<Value> =
        old.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut().filter(|p| p.get("nodePort").is_none()) {
            let same = old_ports
                .iter()
                .find(|o| o.get("port") == p.get("port") && o.get("protocol") == p.get("protocol"));
            if let Some(np) = same.and_then(|o| o.get("nodePort")) {
                p["nodePort"] = np.clone();
            }
        }
    }
}

/// Release a deleted Service's addresses and ports.
pub fn after_delete(scope: &Scope<'_>, obj: &Value) {
    if !is_service(scope) {
        return;
    }
    for ip in obj.pointer("/spec/clusterIPs").and_then(Value::as_array).into_iter().flatten() {
        if let Some(ip) = ip.as_str() {
            scope.app.cluster_ips.release(ip);
        }
    }
    for p in obj.pointer("/spec/ports").and_then(Value::as_array).into_iter().flatten() {
        if let Some(np) = p.get("nodePort").and_then(Value::as_i64) {
            scope.app.node_ports.release(np);
        }
    }
}

/// A TokenReview's status, as upstream: the token reviewed for `spec.audiences`
/// (default: the API's), the audiences it is good for, or why it is not.
/// A token only the webhook may know is sent to it (uncached tokens included).
async fn token_review(scope: &Scope<'_>, obj: &Value) -> Result<Value, ApiError> {
    let token = obj.pointer("/spec/token").and_then(Value::as_str).unwrap_or("");
    if token.is_empty() {
        return Err(ApiError::BadRequest(
            "token is required for TokenReview in authentication".into(),
        ));
    }
    let requested: Vec<String> = obj
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default();
    let authenticator = &scope.app.authenticator;
    let reviewing = {
        let objects = crate::auth::objects::CachedObjects(scope.app);
        authenticator.review(token, &requested, &objects)
    };
    let reviewed = match reviewing {
        Ok(r) => Ok(authenticator.finish_review(token, r).await),
        Err(e) => Err(e),
    };
    Ok(match reviewed {
        Ok(Some((u, auds))) => {
            let u = u.with_authenticated_group();
            let mut user = json!({"username": u.name, "uid": u.uid, "groups": u.groups});
            if !u.extra.is_empty() {
                user["extra"] = json!(u.extra);
            }
            json!({"authenticated": true, "user": user, "audiences": auds})
        }
        Ok(None) => json!({"user": {}, "error": "invalid bearer token"}),
        Err(r) => json!({"user": {}, "error": r.message}),
    })
}

/// Answer a create-only review object (TokenReview and the access reviews ask the
/// webhooks when their caches have no answer, as the request path does).
pub async fn virtual_create(
    req: &Request<'_>,
    scope: &Scope<'_>,
    mut obj: Value,
) -> Result<Value, ApiError> {
    let user = req.user;
    let mut user_info = json!({"username": user.name, "uid": user.uid, "groups": user.groups});
    if !user.extra.is_empty() {
        user_info["extra"] = json!(user.extra);
    }
    let status = match scope.rt.role {
        Role::Review(Review::SelfSubject) => json!({"userInfo": user_info}),
        Role::Review(Review::Token) => token_review(scope, &obj).await?,
        Role::Review(Review::Access) => {
            use crate::authz::review::{self, AccessKind};
            let kind = AccessKind::of_kind(&scope.rt.kind);
            let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
            let errs = review::validate(kind, &spec, scope.namespace.as_deref());
            if !errs.is_empty() {
                return Err(ApiError::Invalid(scope.target(""), errs));
            }
            review::access_status(&scope.app.authorizer, Some(scope.app), kind, &spec, user).await
        }
        Role::Review(Review::Rules) => {
            let ns = obj.pointer("/spec/namespace").and_then(Value::as_str).unwrap_or("");
            crate::authz::review::rules_status(&scope.app.authorizer, ns, user)
        }
        _ => {
            return Err(ApiError::MethodNotAllowed(format!(
                "creating {} is not supported yet",
                scope.rt.plural
            )));
        }
    };
    obj["status"] = status;
    if obj.get("metadata").is_none() {
        obj["metadata"] = json!({"creationTimestamp": null});
    }
    Ok(obj)
}
