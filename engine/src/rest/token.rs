//! The `token` subresource of serviceaccounts (authentication.k8s.io/v1 TokenRequest;
//! what `kubectl create token` and kubelets POST), as upstream's TokenREST: defaults
//! (one hour, the API audiences), upstream's validation of the expiry, a bound object
//! (Pod, Secret or Node) that must exist with the given uid (and a pod must run as this
//! ServiceAccount), then a signed token in `status`. Answers 201 with the TokenRequest.

use super::{Request, Scope};
use crate::admission::{Attributes, Operation};
use crate::auth::objects::CachedObjects;
use crate::auth::serviceaccount::{self, Bound, Issue, Kind, Objects};
use crate::body::Response;
use crate::negotiation::{self, body_format};
use crate::status::{ApiError, Target};
use kapi_codec::{FieldError, format, meta};
use serde_json::{Value, json};

const DEFAULT_EXPIRATION: i64 = 3600;

pub async fn create(req: &Request<'_>, scope: &Scope<'_>) -> Result<Response, ApiError> {
    let name = scope.url_name()?;
    let fmt = body_format(req.header(http::header::CONTENT_TYPE))?;
    let mut tr = format::decode(&req.body, fmt).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if !tr.is_object() {
        return Err(ApiError::BadRequest("the body of a token request must be an object".into()));
    }
    let tokens = scope.app.authenticator.service_accounts.as_ref().ok_or_else(|| {
        ApiError::MethodNotAllowed("this server signs no service account tokens".into())
    })?;
    let sa = super::get::read(scope, name).await?;
    let ns = scope.namespace.clone().unwrap_or_default();
    defaults(&mut tr, &tokens.audiences);
    let attrs = Attributes::new(scope, Operation::Create, name, None);
    super::admit::mutating(scope, &attrs, &mut tr).await?;
    validate(&tr, name)?;
    super::admit::validating(scope, &attrs, &tr).await?;
    let bound = bound_object(scope, &tr, name, &ns).await?;
    let now = crate::time::now_unix();
    let issue = Issue {
        namespace: &ns,
        name,
        uid: meta::meta_str(&sa, "uid").unwrap_or(""),
        audiences: strings(&tr["spec"]["audiences"]),
        expiration_seconds: tr["spec"]["expirationSeconds"].as_i64().unwrap_or(DEFAULT_EXPIRATION),
        bound,
        now,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    tr["kind"] = json!("TokenRequest");
    tr["apiVersion"] = json!("authentication.k8s.io/v1");
    tr["metadata"] =
        json!({"name": name, "namespace": ns, "creationTimestamp": crate::time::rfc3339(now)});
    if !scope.dry_run()? {
        let (token, exp) =
            tokens.issue(&issue).map_err(|e| ApiError::Internal(format!("signing: {e}")))?;
        tr["status"] = json!({"token": token, "expirationTimestamp": crate::time::rfc3339(exp)});
    }
    Ok(negotiation::respond(201, &tr, scope.output, scope.pretty))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect()
}

/// Upstream's defaults: one hour, and the API's audiences when none are asked for.
fn defaults(tr: &mut Value, audiences: &[String]) {
    if !tr.get("spec").is_some_and(Value::is_object) {
        tr["spec"] = json!({});
    }
    let spec = &mut tr["spec"];
    if !spec.get("expirationSeconds").is_some_and(Value::is_i64) {
        spec["expirationSeconds"] = json!(DEFAULT_EXPIRATION);
    }
    if strings(&spec["audiences"]).is_empty() {
        spec["audiences"] = json!(audiences);
    }
}

fn validate(tr: &Value, name: &str) -> Result<(), ApiError> {
    let exp = tr["spec"]["expirationSeconds"].as_i64().unwrap_or(DEFAULT_EXPIRATION);
    let field = "spec.expirationSeconds";
    let mut errs = Vec::new();
    if exp < serviceaccount::MIN_EXPIRATION {
        errs.push(FieldError::invalid(
            field,
            &json!(exp),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if exp > serviceaccount::MAX_EXPIRATION {
        errs.push(FieldError::invalid(
            field,
            &json!(exp),
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if errs.is_empty() {
        return Ok(());
    }
    let target = Target {
        group: "authentication.k8s.io".into(),
        resource: "tokenrequests".into(),
        kind: "TokenRequest".into(),
        name: name.into(),
    };
    Err(ApiError::Invalid(target, errs))
}

/// The object `spec.boundObjectRef` names, checked as upstream.
async fn bound_object(
    scope: &Scope<'_>,
    tr: &Value,
    sa: &str,
    ns: &str,
) -> Result<Option<Bound>, ApiError> {
    let Some(r) = tr["spec"].get("boundObjectRef").filter(|r| r.is_object()) else {
        return Ok(None);
    };
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (kind_name, name, uid) = (s("kind"), s("name"), s("uid"));
    let (kind, resource, namespace) = match (kind_name.as_str(), s("apiVersion").as_str()) {
        ("Pod", "v1") => (Kind::Pod, "pods", Some(ns)),
        ("Secret", "v1") => (Kind::Secret, "secrets", Some(ns)),
        ("Node", "v1") => (Kind::Node, "nodes", None),
        (k, v) => {
            return Err(ApiError::BadRequest(format!(
                "cannot bind token to object of type {}",
                if v.is_empty() { k.to_string() } else { format!("{v}, Kind={k}") }
            )));
        }
    };
    let objects = CachedObjects(scope.app);
    let mut obj = objects.get(kind, namespace, &name);
    if obj.is_none() {
        objects.settle().await;
        obj = objects.get(kind, namespace, &name);
    }
    let target = Target {
        resource: resource.into(),
        kind: kind_name.clone(),
        name: name.clone(),
        ..Default::default()
    };
    let obj = obj.ok_or_else(|| ApiError::NotFound(target.clone()))?;
    let actual = meta::meta_str(&obj, "uid").unwrap_or("").to_string();
    if !uid.is_empty() && uid != actual {
        return Err(ApiError::Conflict(
            target,
            format!(
                "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        ));
    }
    let mut node = None;
    if kind == Kind::Pod {
        let runs_as =
            obj.pointer("/spec/serviceAccountName").and_then(Value::as_str).unwrap_or("default");
        if runs_as != sa {
            return Err(ApiError::BadRequest(format!(
                "cannot bind token for serviceaccount {sa:?} to pod running with different serviceaccount name."
            )));
        }
        if let Some(n) =
            obj.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty())
        {
            let node_uid = objects
                .get(Kind::Node, None, n)
                .and_then(|o| meta::meta_str(&o, "uid").map(String::from))
                .unwrap_or_default();
            node = Some((n.to_string(), node_uid));
        }
    }
    Ok(Some(Bound { kind, name, uid: actual, node }))
}
