//! The AdmissionReview a webhook receives and what kapi accepts back (upstream's
//! `webhook/request`): the request in v1 or v1beta1 (the first of the webhook's
//! `admissionReviewVersions` kapi speaks), and the answer verified as upstream verifies
//! it (uid, apiVersion/kind for v1, patch and patchType rules per webhook kind).
//!
//! Invariants: pure functions (no I/O); the request's fields come in upstream's order;
//! every refusal of an answer is upstream's text (the caller prefixes it with
//! `received invalid webhook response: `).

use crate::auth::UserInfo;
use serde_json::{Map, Value, json};

/// The AdmissionReview versions kapi speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewVersion {
    V1,
    V1beta1,
}

impl ReviewVersion {
    /// The first of `versions` kapi speaks (upstream's `CreateAdmissionObjects`).
    pub fn pick(versions: &[String]) -> Result<ReviewVersion, String> {
        versions
            .iter()
            .find_map(|v| match v.as_str() {
                "v1" => Some(ReviewVersion::V1),
                "v1beta1" => Some(ReviewVersion::V1beta1),
                _ => None,
            })
            .ok_or_else(|| {
                "could not create admission objects: webhook does not accept known AdmissionReview versions (v1, v1beta1)".into()
            })
    }

    fn api_version(self) -> &'static str {
        match self {
            ReviewVersion::V1 => "admission.k8s.io/v1",
            ReviewVersion::V1beta1 => "admission.k8s.io/v1beta1",
        }
    }
}

/// A group, version and a kind or resource name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Gvx {
    pub group: String,
    pub version: String,
    /// The kind (`ConfigMap`) or the resource (`configmaps`).
    pub name: String,
}

impl Gvx {
    fn kind_json(&self) -> Value {
        json!({"group": self.group, "version": self.version, "kind": self.name})
    }
    fn resource_json(&self) -> Value {
        json!({"group": self.group, "version": self.version, "resource": self.name})
    }
}

/// Everything the review's `request` says, but the objects.
#[derive(Debug, Clone)]
pub struct RequestFacts<'a> {
    pub uid: &'a str,
    /// The kind and resource the webhook is called for (an equivalent one's with
    /// matchPolicy Equivalent).
    pub kind: &'a Gvx,
    pub resource: &'a Gvx,
    pub subresource: &'a str,
    /// The kind and resource of the request itself.
    pub request_kind: &'a Gvx,
    pub request_resource: &'a Gvx,
    pub name: &'a str,
    pub namespace: &'a str,
    pub operation: &'a str,
    pub user: Option<&'a UserInfo>,
    pub dry_run: bool,
    /// `CreateOptions`, `UpdateOptions`, `DeleteOptions`, ... (null when none).
    pub options: &'a Value,
}

/// The user as the review shows it (the server's own requests as the loopback user).
pub fn user_json(user: Option<&UserInfo>) -> Value {
    let mut u = Map::new();
    let Some(user) = user else {
        u.insert("username".into(), json!("system:apiserver"));
        u.insert("groups".into(), json!(["system:authenticated", "system:masters"]));
        return Value::Object(u);
    };
    if !user.name.is_empty() {
        u.insert("username".into(), json!(user.name));
    }
    if !user.uid.is_empty() {
        u.insert("uid".into(), json!(user.uid));
    }
    if !user.groups.is_empty() {
        u.insert("groups".into(), json!(user.groups));
    }
    if !user.extra.is_empty() {
        u.insert("extra".into(), json!(user.extra));
    }
    Value::Object(u)
}

/// The review's `request` (without `object` and `oldObject` when they are None; the
/// match conditions' `request` variable is this).
pub fn request_json(f: &RequestFacts<'_>, object: &Value, old: Option<&Value>) -> Value {
    let mut r = Map::with_capacity(16);
    r.insert("uid".into(), json!(f.uid));
    r.insert("kind".into(), f.kind.kind_json());
    r.insert("resource".into(), f.resource.resource_json());
    if !f.subresource.is_empty() {
        r.insert("subResource".into(), json!(f.subresource));
    }
    r.insert("requestKind".into(), f.request_kind.kind_json());
    r.insert("requestResource".into(), f.request_resource.resource_json());
    if !f.subresource.is_empty() {
        r.insert("requestSubResource".into(), json!(f.subresource));
    }
    if !f.name.is_empty() {
        r.insert("name".into(), json!(f.name));
    }
    if !f.namespace.is_empty() {
        r.insert("namespace".into(), json!(f.namespace));
    }
    r.insert("operation".into(), json!(f.operation));
    r.insert("userInfo".into(), user_json(f.user));
    r.insert("object".into(), object.clone());
    r.insert("oldObject".into(), old.cloned().unwrap_or(Value::Null));
    r.insert("dryRun".into(), json!(f.dry_run));
    r.insert("options".into(), f.options.clone());
    Value::Object(r)
}

/// The AdmissionReview body to POST.
pub fn body(version: ReviewVersion, request: Value) -> Vec<u8> {
    let review =
        json!({"kind": "AdmissionReview", "apiVersion": version.api_version(), "request": request});
    serde_json::to_vec(&review).unwrap_or_default()
}

/// What a webhook answered, verified.
#[derive(Debug, Default, PartialEq)]
pub struct Answer {
    pub allowed: bool,
    /// The JSON patch document (mutating webhooks; empty: none).
    pub patch: Vec<u8>,
    /// `JSONPatch` (v1beta1 answers with a patch are taken as one), else what was said.
    pub patch_type: String,
    pub result: Option<Value>,
    pub warnings: Vec<String>,
    pub audit_annotations: Vec<(String, String)>,
}

/// Read and verify an answer to a review with `uid`. `Err((decoding, text))`: `decoding`
/// when the body is not an AdmissionReview at all (client-go's decode error, reported
/// as a failed call), else upstream's verification text.
pub fn verify(
    body: &[u8],
    version: ReviewVersion,
    uid: &str,
    mutating: bool,
) -> Result<Answer, (bool, String)> {
    let review: Value = serde_json::from_slice(body).map_err(|e| (true, e.to_string()))?;
    let Some(resp) = review.get("response").filter(|r| r.is_object()) else {
        return Err((false, "webhook response was absent".into()));
    };
    let text = |k: &str| resp.get(k).and_then(Value::as_str);
    let patch = match text("patch") {
        None => Vec::new(),
        Some(p) => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(p)
                .map_err(|e| (true, e.to_string()))?
        }
    };
    let patch_type = resp.get("patchType").filter(|p| !p.is_null());
    if version == ReviewVersion::V1 {
        check_v1(&review, text("uid").unwrap_or(""), uid)?;
        check_patch(mutating, &patch, patch_type)?;
    }
    let patch = if mutating { patch } else { Vec::new() };
    let patch_type = match version {
        ReviewVersion::V1beta1 => "JSONPatch".to_string(),
        ReviewVersion::V1 => patch_type.and_then(Value::as_str).unwrap_or("").to_string(),
    };
    Ok(Answer {
        allowed: resp.get("allowed").and_then(Value::as_bool).unwrap_or(false),
        patch,
        patch_type,
        result: resp.get("status").filter(|s| s.is_object()).cloned(),
        warnings: resp
            .get("warnings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        audit_annotations: resp
            .get("auditAnnotations")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
    })
}

fn check_v1(review: &Value, got_uid: &str, uid: &str) -> Result<(), (bool, String)> {
    if got_uid != uid {
        return Err((false, format!("expected response.uid={uid:?}, got {got_uid:?}")));
    }
    let s = |k: &str| review.get(k).and_then(Value::as_str).unwrap_or("");
    if s("apiVersion") != "admission.k8s.io/v1" || s("kind") != "AdmissionReview" {
        let (group, version) = s("apiVersion").rsplit_once('/').unwrap_or(("", s("apiVersion")));
        let got = format!("{group}/{version}, Kind={}", s("kind"));
        let got = got.strip_prefix('/').unwrap_or(&got).to_string();
        return Err((
            false,
            format!(
                "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {got}"
            ),
        ));
    }
    Ok(())
}

fn check_patch(
    mutating: bool,
    patch: &[u8],
    patch_type: Option<&Value>,
) -> Result<(), (bool, String)> {
    let fail = |m: &str| Err((false, m.to_string()));
    if !mutating {
        if !patch.is_empty() {
            return fail("validating webhook may not return response.patch");
        }
        if patch_type.is_some() {
            return fail("validating webhook may not return response.patchType");
        }
        return Ok(());
    }
    match (patch.is_empty(), patch_type) {
        (false, None) => fail("webhook returned response.patch but not response.patchType"),
        (true, Some(_)) => fail("webhook returned response.patchType but not response.patch"),
        (_, Some(t)) if t.as_str().is_none_or(str::is_empty) => Err((
            false,
            format!(
                "webhook returned invalid response.patchType of {:?}",
                t.as_str().unwrap_or("")
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gvx(g: &str, v: &str, n: &str) -> Gvx {
        Gvx { group: g.into(), version: v.into(), name: n.into() }
    }

    #[test]
    fn the_request_carries_upstreams_fields_in_order() {
        let (kind, res) = (gvx("", "v1", "ConfigMap"), gvx("", "v1", "configmaps"));
        let user =
            UserInfo { name: "alice".into(), groups: vec!["g".into()], ..Default::default() };
        let options = json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"});
        let facts = RequestFacts {
            uid: "u1",
            kind: &kind,
            resource: &res,
            subresource: "",
            request_kind: &kind,
            request_resource: &res,
            name: "c",
            namespace: "ns",
            operation: "CREATE",
            user: Some(&user),
            dry_run: false,
            options: &options,
        };
        let r = request_json(&facts, &json!({"kind": "ConfigMap"}), None);
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "uid",
                "kind",
                "resource",
                "requestKind",
                "requestResource",
                "name",
                "namespace",
                "operation",
                "userInfo",
                "object",
                "oldObject",
                "dryRun",
                "options"
            ]
        );
        assert_eq!(r["userInfo"], json!({"username": "alice", "groups": ["g"]}));
        assert_eq!(r["resource"], json!({"group": "", "version": "v1", "resource": "configmaps"}));
        let b: Value = serde_json::from_slice(&body(ReviewVersion::V1beta1, r)).unwrap();
        assert_eq!(b["apiVersion"], "admission.k8s.io/v1beta1");
    }

    #[test]
    fn review_versions_pick_the_first_known() {
        let v =
            |s: &[&str]| ReviewVersion::pick(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(v(&["v2", "v1beta1", "v1"]), Ok(ReviewVersion::V1beta1));
        assert!(v(&["v2"]).unwrap_err().contains("(v1, v1beta1)"));
    }

    #[test]
    fn answers_are_verified_as_upstream() {
        let ok = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u","allowed":false,"status":{"message":"no"},"warnings":["w"],"auditAnnotations":{"k":"v"}}}"#;
        let a = verify(ok, ReviewVersion::V1, "u", false).unwrap();
        assert!(!a.allowed);
        assert_eq!(a.result.unwrap()["message"], "no");
        assert_eq!(
            (a.warnings, a.audit_annotations),
            (vec!["w".to_string()], vec![("k".into(), "v".into())])
        );
        let err = |b: &[u8], m: bool| verify(b, ReviewVersion::V1, "u", m).unwrap_err();
        assert_eq!(err(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"x"}}"#, false).1, "expected response.uid=\"u\", got \"x\"");
        assert_eq!(
            err(br#"{"response":{"uid":"u"}}"#, false).1,
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got , Kind="
        );
        assert_eq!(err(br#"{"kind":"AdmissionReview"}"#, false).1, "webhook response was absent");
        let patched = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u","allowed":true,"patch":"W10="}}"#;
        assert_eq!(
            err(patched, true).1,
            "webhook returned response.patch but not response.patchType"
        );
        assert_eq!(err(patched, false).1, "validating webhook may not return response.patch");
        assert!(err(b"nope", false).0);
        let v1beta1 = br#"{"response":{"allowed":true,"patch":"W10="}}"#;
        let a = verify(v1beta1, ReviewVersion::V1beta1, "u", true).unwrap();
        assert_eq!(a.patch, b"[]");
    }
}
