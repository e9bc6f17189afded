//! The one place where errors become Kubernetes `Status` objects: `ApiError` is the
//! engine's error enum; storage and codec errors are mapped onto it here (a compacted
//! revision becomes 410 Gone / Expired), and `ApiError::to_status` renders upstream's
//! reason, code, message and details.

use kapi_codec::{CodecError, FieldError};
use kapi_storage::StorageError;
use serde_json::{Map, Value, json};

/// Which object an error is about (for messages and `details`).
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub group: String,
    /// Plural resource (`pods`) — upstream's `details.kind` for most errors.
    pub resource: String,
    /// Kind (`Pod`) — used by `Invalid`.
    pub kind: String,
    pub name: String,
}

impl Target {
    fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not found")]
    NotFound(Target),
    #[error("already exists")]
    AlreadyExists(Target),
    #[error("conflict: {1}")]
    Conflict(Target, String),
    #[error("invalid")]
    Invalid(Target, Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    RequestEntityTooLarge(String),
    /// 410: a compacted revision or an expired continue token.
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    ServiceUnavailable(String),
    #[error("{0}")]
    Internal(String),
    /// 500 without a reason: an error upstream does not turn into a Status of its own
    /// (e.g. an applied configuration its field manager cannot convert).
    #[error("{0}")]
    Unknown(String),
    /// Namespace lifecycle and similar admission refusals (403 Forbidden with a reason).
    #[error("{1}")]
    ForbiddenTarget(Target, String),
    /// NotFound with a message of its own (e.g. a missing namespace on create).
    #[error("{1}")]
    NotFoundMessage(Target, String),
    /// Server-side apply conflicts: 409 with one `FieldManagerConflict` cause per field.
    #[error("apply conflicts")]
    ApplyConflict(Target, Vec<kapi_codec::managed::Conflict>),
    /// A Status whose code, reason and details are given whole (an admission webhook's
    /// refusal, an internal error with its cause): see [`ApiError::webhook_denied`] and
    /// [`ApiError::internal_cause`].
    #[error("{}", .0.message)]
    Whole(Box<WholeStatus>),
}

/// The parts of a Status passed on whole.
#[derive(Debug, Clone, PartialEq)]
pub struct WholeStatus {
    pub code: u16,
    /// Empty: none.
    pub reason: String,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    /// Upstream's `NewInternalError(err)`: 500 InternalError, `Internal error occurred:
    /// <err>`, the error as the one cause.
    pub fn internal_cause(err: impl Into<String>) -> ApiError {
        let err = err.into();
        ApiError::Whole(Box::new(WholeStatus {
            code: 500,
            reason: "InternalError".into(),
            message: format!("Internal error occurred: {err}"),
            details: Some(json!({"causes": [{"message": err}]})),
        }))
    }

    /// An admission webhook's refusal of a write of `t` (upstream's `ToStatusErr`):
    /// the webhook's `result` Status (code 403 when unset) with its message prefixed by
    /// `admission webhook "NAME" denied the request` and the resource's forbidden text
    /// (`Internal error occurred` for a 500).
    pub fn webhook_denied(t: &Target, webhook: &str, result: Option<&Value>) -> ApiError {
        let empty = Value::Null;
        let r = result.unwrap_or(&empty);
        let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let code = r.get("code").and_then(Value::as_u64).filter(|c| *c != 0).unwrap_or(403);
        let code = u16::try_from(code).unwrap_or(403);
        let denied = format!("admission webhook {webhook:?} denied the request");
        let (message, reason) = (text("message"), text("reason"));
        let message = if !message.is_empty() {
            format!("{denied}: {message}")
        } else if !reason.is_empty() {
            format!("{denied}: {reason}")
        } else {
            format!("{denied} without explanation")
        };
        let name = if t.name.is_empty() { "Unknown" } else { t.name.as_str() };
        let details = match r.get("details").filter(|d| d.is_object()) {
            Some(d) => d.clone(),
            None if code == 500 => json!({"causes": [{"message": message}]}),
            None => details_of(&Target { name: name.into(), ..t.clone() }, &t.resource, None),
        };
        let prefix = if code == 500 {
            "Internal error occurred".to_string()
        } else {
            format!("{} {name:?} is forbidden", t.qualified_resource())
        };
        let reason = match reason {
            r if !r.is_empty() => r,
            _ if code == 500 => "InternalError".into(),
            _ => "Forbidden".into(),
        };
        ApiError::Whole(Box::new(WholeStatus {
            code,
            reason,
            message: format!("{prefix}: {message}"),
            details: Some(details),
        }))
    }

    /// A ValidatingAdmissionPolicy's refusal of a write of `t` (upstream:
    /// `NewForbidden` with the policy's message, then the validation's reason and its
    /// code: Invalid 422 (the default), Forbidden 403, Unauthorized 401,
    /// RequestEntityTooLarge 413; the message as one more cause).
    pub fn policy_denied(t: &Target, message: String, reason: Option<&str>) -> ApiError {
        let reason = reason.unwrap_or("Invalid");
        let code = match reason {
            "Forbidden" => 403,
            "Unauthorized" => 401,
            "RequestEntityTooLarge" => 413,
            _ => 422,
        };
        let causes = json!([{"message": message}]);
        ApiError::Whole(Box::new(WholeStatus {
            code,
            reason: reason.to_string(),
            message: format!("{} {:?} is forbidden: {message}", t.qualified_resource(), t.name),
            details: Some(details_of(t, &t.resource, Some(causes))),
        }))
    }

    /// Map a storage error about `target`.
    pub fn from_storage(e: StorageError, target: &Target) -> ApiError {
        match e {
            StorageError::AlreadyExists { .. } => ApiError::AlreadyExists(target.clone()),
            StorageError::NotFound { .. } => ApiError::NotFound(target.clone()),
            StorageError::Conflict { .. } => ApiError::Conflict(
                target.clone(),
                "the object has been modified; please apply your changes to the latest version and try again".into(),
            ),
            StorageError::Compacted { requested, compacted } => {
                ApiError::Gone(format!("too old resource version: {requested} ({compacted})"))
            }
            StorageError::FutureRevision { requested, current } => ApiError::Timeout(format!(
                "Too large resource version: {requested}, current: {current}"
            )),
            StorageError::WatcherTooSlow => ApiError::Gone("watch closed: client too slow".into()),
            StorageError::Closed => ApiError::ServiceUnavailable("apiserver is shutting down".into()),
            StorageError::Unavailable(m) => ApiError::ServiceUnavailable(m),
            StorageError::Io(m) => ApiError::Internal(m),
            // As upstream answers etcd's NOSPACE: 500, no reason, the error as the message.
            StorageError::NoSpace(m) => ApiError::Unknown(m),
        }
    }

    /// Map a codec error about `target`.
    pub fn from_codec(e: CodecError, target: &Target) -> ApiError {
        match e {
            CodecError::Invalid(causes) => ApiError::Invalid(target.clone(), causes),
            CodecError::Unclassified(m) | CodecError::Conversion(m) => ApiError::Unknown(m),
            other => ApiError::BadRequest(other.to_string()),
        }
    }

    pub fn code(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) | Self::ForbiddenTarget(..) => 403,
            Self::NotFound(_) | Self::NotFoundMessage(..) => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::NotAcceptable(_) => 406,
            Self::AlreadyExists(_) | Self::Conflict(..) | Self::ApplyConflict(..) => 409,
            Self::Gone(_) => 410,
            Self::RequestEntityTooLarge(_) => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::Invalid(..) => 422,
            Self::TooManyRequests(_) => 429,
            Self::Internal(_) | Self::Unknown(_) => 500,
            Self::ServiceUnavailable(_) => 503,
            Self::Timeout(_) => 504,
            Self::Whole(w) => w.code,
        }
    }

    fn reason(&self) -> &str {
        match self {
            Self::Whole(w) => &w.reason,
            Self::BadRequest(_) => "BadRequest",
            Self::Unauthorized(_) => "Unauthorized",
            Self::Forbidden(_) | Self::ForbiddenTarget(..) => "Forbidden",
            Self::NotFound(_) | Self::NotFoundMessage(..) => "NotFound",
            Self::MethodNotAllowed(_) => "MethodNotAllowed",
            Self::NotAcceptable(_) => "NotAcceptable",
            Self::AlreadyExists(_) => "AlreadyExists",
            Self::Conflict(..) | Self::ApplyConflict(..) => "Conflict",
            Self::Gone(_) => "Expired",
            Self::RequestEntityTooLarge(_) => "RequestEntityTooLarge",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::Invalid(..) => "Invalid",
            Self::TooManyRequests(_) => "TooManyRequests",
            Self::Internal(_) => "InternalError",
            Self::Unknown(_) => "",
            Self::ServiceUnavailable(_) => "ServiceUnavailable",
            Self::Timeout(_) => "Timeout",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::NotFound(t) => format!("{} \"{}\" not found", t.qualified_resource(), t.name),
            Self::AlreadyExists(t) => {
                format!("{} \"{}\" already exists", t.qualified_resource(), t.name)
            }
            Self::Conflict(t, why) => format!(
                "Operation cannot be fulfilled on {} \"{}\": {why}",
                t.qualified_resource(),
                t.name
            ),
            Self::Invalid(t, causes) => {
                let list: Vec<&str> = causes.iter().map(|c| c.message.as_str()).collect();
                let joined = if list.len() == 1 {
                    list[0].to_string()
                } else {
                    format!("[{}]", list.join(", "))
                };
                format!("{} \"{}\" is invalid: {joined}", t.qualified_kind(), t.name)
            }
            // Upstream's NewForbidden: the resource and name when it has them.
            Self::ForbiddenTarget(t, why) if t.resource.is_empty() => format!("forbidden: {why}"),
            Self::ForbiddenTarget(t, why) if t.name.is_empty() => {
                format!("{} is forbidden: {why}", t.qualified_resource())
            }
            Self::ForbiddenTarget(t, why) => {
                format!("{} \"{}\" is forbidden: {why}", t.qualified_resource(), t.name)
            }
            Self::ApplyConflict(_, cs) => kapi_codec::managed::conflicts_message(cs),
            // Upstream's one 405 text, whatever the route (kapi's reason stays in logs).
            Self::MethodNotAllowed(_) => {
                "the server does not allow this method on the requested resource".into()
            }
            other => other.to_string(),
        }
    }

    fn details(&self) -> Option<Value> {
        match self {
            Self::NotFound(t)
            | Self::AlreadyExists(t)
            | Self::Conflict(t, _)
            | Self::ForbiddenTarget(t, _)
            | Self::NotFoundMessage(t, _) => {
                if t.name.is_empty() && t.resource.is_empty() {
                    Some(json!({}))
                } else {
                    Some(details_of(t, &t.resource, None))
                }
            }
            Self::Invalid(t, causes) => {
                let causes = causes
                    .iter()
                    .map(|c| json!({"reason": c.kind.reason(), "message": cause_message(c), "field": c.field}))
                    .collect();
                Some(details_of(t, &t.kind, Some(causes)))
            }
            Self::ApplyConflict(_, cs) => {
                // Upstream's NewApplyConflict: causes only, no name or kind.
                let causes: Vec<Value> = cs
                    .iter()
                    .map(|c| {
                        json!({"reason": "FieldManagerConflict",
                            "message": format!("conflict with {}", c.manager_shown()),
                            "field": c.field})
                    })
                    .collect();
                Some(json!({"causes": causes}))
            }
            Self::Timeout(_) | Self::TooManyRequests(_) => Some(json!({"retryAfterSeconds": 1})),
            Self::MethodNotAllowed(_) => Some(json!({})),
            Self::Whole(w) => w.details.clone(),
            _ => None,
        }
    }

    /// The `Status` object, its fields in upstream's order (Go struct order of
    /// `metav1.Status`: kind, apiVersion, metadata, status, message, reason, details, code).
    pub fn to_status(&self) -> Value {
        let mut s = Map::with_capacity(8);
        s.insert("kind".into(), json!("Status"));
        s.insert("apiVersion".into(), json!("v1"));
        s.insert("metadata".into(), json!({}));
        s.insert("status".into(), json!("Failure"));
        s.insert("message".into(), json!(self.message()));
        if !self.reason().is_empty() {
            s.insert("reason".into(), json!(self.reason()));
        }
        if let Some(d) = self.details() {
            s.insert("details".into(), d);
        }
        s.insert("code".into(), json!(self.code()));
        Value::Object(s)
    }
}

/// A cause's message as upstream's (`ErrorBody`): the error without its field path,
/// which the cause carries in `field`.
fn cause_message(c: &FieldError) -> &str {
    c.message
        .strip_prefix(c.field.as_str())
        .and_then(|m| m.strip_prefix(": "))
        .filter(|_| !c.field.is_empty())
        .unwrap_or(&c.message)
}

/// `StatusDetails` about `t` in upstream's field order: name, group, kind, causes (the
/// empty ones left out, as Go's `omitempty`).
fn details_of(t: &Target, kind: &str, causes: Option<Value>) -> Value {
    let mut d = Map::with_capacity(4);
    for (key, value) in [("name", &t.name[..]), ("group", &t.group), ("kind", kind)] {
        if !value.is_empty() {
            d.insert(key.into(), json!(value));
        }
    }
    if let Some(c) = causes {
        d.insert("causes".into(), c);
    }
    Value::Object(d)
}

/// A `Status` of success (delete of a collection, some deletes).
pub fn success(details: Option<Value>) -> Value {
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    if let Some(d) = details {
        s["details"] = d;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str) -> Target {
        Target { group: "".into(), resource: "pods".into(), kind: "Pod".into(), name: name.into() }
    }

    #[test]
    fn webhook_refusals_read_as_upstreams_to_status_err() {
        let t = Target {
            resource: "configmaps".into(),
            kind: "ConfigMap".into(),
            name: "c".into(),
            ..Default::default()
        };
        let s = ApiError::webhook_denied(&t, "deny.example.com", Some(&json!({"message": "no"})))
            .to_status();
        assert_eq!(s["code"], 403);
        assert_eq!(s["reason"], "Forbidden");
        assert_eq!(
            s["message"],
            "configmaps \"c\" is forbidden: admission webhook \"deny.example.com\" denied the request: no"
        );
        assert_eq!(s["details"], json!({"name": "c", "kind": "configmaps"}));
        let s = ApiError::webhook_denied(&Target { name: String::new(), ..t.clone() }, "w", None)
            .to_status();
        assert_eq!(
            s["message"],
            "configmaps \"Unknown\" is forbidden: admission webhook \"w\" denied the request without explanation"
        );
        let s = ApiError::webhook_denied(&t, "w", Some(&json!({"code": 500, "reason": "Boom"})))
            .to_status();
        assert_eq!((s["code"].clone(), s["reason"].clone()), (json!(500), json!("Boom")));
        assert_eq!(
            s["message"],
            "Internal error occurred: admission webhook \"w\" denied the request: Boom"
        );
        let s = ApiError::internal_cause("failed calling webhook \"w\": x").to_status();
        assert_eq!(s["message"], "Internal error occurred: failed calling webhook \"w\": x");
        assert_eq!(s["details"]["causes"][0]["message"], "failed calling webhook \"w\": x");
    }

    #[test]
    fn not_found_matches_upstream_shape() {
        let s = ApiError::NotFound(pod("web")).to_status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["message"], "pods \"web\" not found");
        assert_eq!(s["details"], json!({"name": "web", "kind": "pods"}));
    }

    #[test]
    fn group_qualified_conflict() {
        let t = Target {
            group: "apps".into(),
            resource: "deployments".into(),
            kind: "Deployment".into(),
            name: "d".into(),
        };
        let s = ApiError::Conflict(t, "x".into()).to_status();
        assert_eq!(s["message"], "Operation cannot be fulfilled on deployments.apps \"d\": x");
        assert_eq!(s["details"]["group"], "apps");
    }

    #[test]
    fn apply_conflicts_are_409_with_causes_only() {
        let c = kapi_codec::managed::Conflict {
            manager: "hpa".into(),
            operation: "Update".into(),
            api_version: "autoscaling/v2".into(),
            subresource: None,
            field: ".spec.replicas".into(),
        };
        let s = ApiError::ApplyConflict(pod("p"), vec![c]).to_status();
        assert_eq!((s["code"].as_i64(), s["reason"].as_str()), (Some(409), Some("Conflict")));
        assert_eq!(
            s["details"],
            json!({"causes": [{"reason": "FieldManagerConflict",
                "message": "conflict with \"hpa\" using autoscaling/v2", "field": ".spec.replicas"}]})
        );
        assert_eq!(
            s["message"],
            "Apply failed with 1 conflict: conflict with \"hpa\" using autoscaling/v2: .spec.replicas"
        );
    }

    #[test]
    fn unknown_errors_are_500_without_a_reason() {
        let s = ApiError::Unknown("failed to create typed patch object".into()).to_status();
        assert_eq!(s["code"], 500);
        assert!(s.get("reason").is_none(), "{s}");
        assert_eq!(s["message"], "failed to create typed patch object");
    }

    #[test]
    fn compaction_is_410_expired() {
        let e = ApiError::from_storage(
            StorageError::Compacted { requested: 3, compacted: 9 },
            &pod("p"),
        );
        let s = e.to_status();
        assert_eq!((s["code"].as_u64(), s["reason"].as_str()), (Some(410), Some("Expired")));
    }

    /// Regression: kapi wrote `code` before `details` and `kind` before `group` in
    /// `details`, and causes' messages began with their field path; clients comparing bodies with upstream's (the Python client's tests) saw
    /// different bytes. These are upstream's bytes for the same errors.
    #[test]
    fn status_bytes_are_upstreams() {
        let t = Target {
            group: "apps".into(),
            resource: "deployments".into(),
            kind: "Deployment".into(),
            name: "d".into(),
        };
        let causes = vec![FieldError::required("spec.template.spec.containers", "")];
        let bytes = |e: ApiError| serde_json::to_string(&e.to_status()).unwrap();
        assert_eq!(
            bytes(ApiError::Invalid(t, causes)),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Deployment.apps \"d\" is invalid: spec.template.spec.containers: Required value","reason":"Invalid","details":{"name":"d","group":"apps","kind":"Deployment","causes":[{"reason":"FieldValueRequired","message":"Required value","field":"spec.template.spec.containers"}]},"code":422}"#
        );
        assert_eq!(
            bytes(ApiError::NotFound(pod("nope"))),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"nope\" not found","reason":"NotFound","details":{"name":"nope","kind":"pods"},"code":404}"#
        );
        assert_eq!(
            bytes(ApiError::MethodNotAllowed("PUT on the pods collection".into())),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server does not allow this method on the requested resource","reason":"MethodNotAllowed","details":{},"code":405}"#
        );
        assert_eq!(
            bytes(ApiError::Unauthorized("Unauthorized".into())),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
        );
    }

    #[test]
    fn invalid_lists_causes() {
        let causes = vec![FieldError::required("spec.containers", "")];
        let s = ApiError::Invalid(pod("p"), causes).to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["message"], "Pod \"p\" is invalid: spec.containers: Required value");
        assert_eq!(s["details"]["causes"][0]["reason"], "FieldValueRequired");
    }
}
