//! Conversion strategy `Webhook` of a CustomResourceDefinition: the policy, as upstream's
//! apiextensions-apiserver decides it (its `webhook_converter.go` and the delegating
//! converter around it), without any I/O. The engine sends the review this module
//! builds and hands back what the webhook answered.
//!
//! - [`Webhook::from_crd`] reads `spec.conversion` (strategy, `clientConfig`,
//!   `conversionReviewVersions`) once, when the CRD's registry entries are made.
//! - [`Webhook::plan`] picks the review version (the first of the CRD's
//!   `conversionReviewVersions` that kapi speaks, as upstream) and writes the
//!   `ConversionReview` request for one object; an object already in the desired
//!   version is not sent (upstream skips it).
//! - [`Plan::finish`] validates the answer as upstream: for v1 the review's
//!   apiVersion/kind and `response.uid`; the result status (the webhook's message when it
//!   is not `Success`); the number of converted objects; each object's apiVersion, kind,
//!   name, namespace and uid; then the original metadata is restored with only the
//!   webhook's labels and annotations kept (validated when they changed).
//!
//! Invariants: never panics on any answer; every failure is a
//! `conversion webhook for GROUP/VERSION, Kind=KIND failed: ...`-style message naming
//! the object's group/version/kind as upstream words it; the objects sent carry no
//! `resourceVersion` (upstream converts what it stores and what it decodes, before the
//! revision is set), and what comes back is the original metadata.

use crate::error::CodecError;
use serde_json::{Map, Value, json};

/// Upstream's timeout of a conversion webhook call (also sent as `?timeout=30s`).
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// The most of a webhook's answer kapi reads (objects are converted one per review).
pub const MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;

/// The `service` of a webhook's `clientConfig`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRef {
    pub namespace: String,
    pub name: String,
    /// The URL path (`/` when not given).
    pub path: String,
    pub port: i64,
}

/// Where the webhook is: `url`, or a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Url(String),
    Service(ServiceRef),
}

/// A CRD's conversion webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// The CRD's name (`widgets.example.com`).
    pub crd_name: String,
    pub endpoint: Endpoint,
    /// The PEM bundle to trust (decoded from the base64 of `caBundle`); empty: none given.
    pub ca_bundle: Vec<u8>,
    pub review_versions: Vec<String>,
}

/// A webhook `clientConfig` (CRD conversion and admission webhooks share its shape):
/// where the webhook is (`url`, else `service` with upstream's defaults: path `/`, port
/// 443) and the PEM bundle to trust (the decoded `caBundle`; empty when none or not
/// base64). None without either.
pub fn client_config(cc: &Value) -> Option<(Endpoint, Vec<u8>)> {
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    let endpoint = match (text(cc, "url"), cc.get("service")) {
        (Some(url), _) => Endpoint::Url(url),
        (None, Some(svc)) => Endpoint::Service(ServiceRef {
            namespace: text(svc, "namespace").unwrap_or_default(),
            name: text(svc, "name").unwrap_or_default(),
            path: text(svc, "path").unwrap_or_else(|| "/".into()),
            port: svc.get("port").and_then(Value::as_i64).unwrap_or(443),
        }),
        (None, None) => return None,
    };
    let ca_bundle = text(cc, "caBundle")
        .and_then(|b| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.decode(b).ok()
        })
        .unwrap_or_default();
    Some((endpoint, ca_bundle))
}

/// The ConversionReview version a review is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewVersion {
    V1,
    V1beta1,
}

impl ReviewVersion {
    fn api_version(self) -> &'static str {
        match self {
            ReviewVersion::V1 => "apiextensions.k8s.io/v1",
            ReviewVersion::V1beta1 => "apiextensions.k8s.io/v1beta1",
        }
    }
}

/// One review to send: its body and what checking the answer needs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub uid: String,
    pub version: ReviewVersion,
    /// `GROUP/VERSION`
    pub desired: String,
    /// The JSON body to POST.
    pub body: Vec<u8>,
    /// The object sent (without resourceVersion); its metadata is restored on the answer.
    original: Value,
}

impl Webhook {
    /// The webhook of a CRD whose conversion strategy is `Webhook` (None otherwise).
    pub fn from_crd(crd: &Value) -> Option<Webhook> {
        let conv = crd.pointer("/spec/conversion")?;
        if conv.get("strategy").and_then(Value::as_str) != Some("Webhook") {
            return None;
        }
        let webhook = conv.get("webhook")?;
        let (endpoint, ca_bundle) = client_config(webhook.get("clientConfig")?)?;
        let versions = webhook.get("conversionReviewVersions").and_then(Value::as_array);
        let review_versions =
            versions.into_iter().flatten().filter_map(Value::as_str).map(String::from).collect();
        let crd_name = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").into();
        Some(Webhook { crd_name, endpoint, ca_bundle, review_versions })
    }

    /// The review version to speak: the first of `conversionReviewVersions` kapi knows.
    pub fn review_version(&self) -> Option<ReviewVersion> {
        self.review_versions.iter().find_map(|v| match v.as_str() {
            "v1" => Some(ReviewVersion::V1),
            "v1beta1" => Some(ReviewVersion::V1beta1),
            _ => None,
        })
    }

    /// The review converting `obj` to `desired` (`GROUP/VERSION`) under request `uid`;
    /// None when `obj` is already in that version.
    pub fn plan(&self, obj: &Value, desired: &str, uid: &str) -> Result<Option<Plan>, CodecError> {
        if api_version(obj) == desired {
            return Ok(None);
        }
        let Some(version) = self.review_version() else {
            return Err(CodecError::Conversion("no supported conversion review versions".into()));
        };
        let mut original = obj.clone();
        if let Some(m) = original.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        let review = json!({
            "kind": "ConversionReview",
            "apiVersion": version.api_version(),
            "request": {"uid": uid, "desiredAPIVersion": desired, "objects": [&original]},
            "response": {"uid": "", "convertedObjects": null, "result": {"metadata": {}}},
        });
        let body = serde_json::to_vec(&review).unwrap_or_default();
        Ok(Some(Plan { uid: uid.into(), version, desired: desired.into(), body, original }))
    }
}

fn api_version(obj: &Value) -> &str {
    obj.get("apiVersion").and_then(Value::as_str).unwrap_or("")
}

fn kind(obj: &Value) -> &str {
    obj.get("kind").and_then(Value::as_str).unwrap_or("")
}

/// Upstream's `GroupVersionKind.String()` of an object: `group/version, Kind=Kind`.
pub fn gvk(obj: &Value) -> String {
    let av = api_version(obj);
    let (g, v) = av.split_once('/').unwrap_or(("", av));
    format!("{g}/{v}, Kind={}", kind(obj))
}

impl Plan {
    /// `conversion webhook for GVK failed: why`, for failures the transport meets.
    pub fn failed(&self, why: &str) -> CodecError {
        CodecError::Conversion(format!(
            "conversion webhook for {} failed: {why}",
            gvk(&self.original)
        ))
    }

    /// The converted object from the webhook's answer (a 2xx body), validated and with
    /// the original metadata restored, as upstream.
    pub fn finish(&self, body: &[u8]) -> Result<Value, CodecError> {
        let gvk = gvk(&self.original);
        let converted = self.converted_objects(body).map_err(|e| self.failed(&e))?;
        let n = converted.len();
        let Some(converted) = converted.into_iter().next().filter(|_| n == 1) else {
            return Err(CodecError::Conversion(format!(
                "conversion webhook for {gvk} returned {n} objects, expected 1"
            )));
        };
        let invalid = |why: String| {
            CodecError::Conversion(format!(
                "conversion webhook for {gvk} returned invalid converted object at index 0: {why}"
            ))
        };
        if !converted.is_object() {
            return Err(invalid("Object 'Kind' is missing in the converted object".into()));
        }
        let got = api_version(&converted);
        if got != self.desired {
            return Err(invalid(format!(
                "invalid groupVersion (expected {}, received {})",
                self.desired,
                group_version(got)
            )));
        }
        if kind(&converted) != kind(&self.original) {
            return Err(invalid(format!(
                "invalid kind (expected {}, received {})",
                kind(&self.original),
                kind(&converted)
            )));
        }
        validate_converted(&self.original, &converted).map_err(invalid)?;
        restore_meta(&self.original, converted).map_err(|e| {
            CodecError::Conversion(format!(
                "conversion webhook for {gvk} returned invalid metadata in object at index 0: {e}"
            ))
        })
    }

    /// `response.convertedObjects` of a valid, successful review answer.
    fn converted_objects(&self, body: &[u8]) -> Result<Vec<Value>, String> {
        let review: Value = serde_json::from_slice(body)
            .map_err(|e| format!("couldn't get version/kind; json parse error: {e}"))?;
        if !review.is_object() {
            return Err("couldn't get version/kind; json parse error: not an object".into());
        }
        if self.version == ReviewVersion::V1 {
            let want = "apiextensions.k8s.io/v1, Kind=ConversionReview";
            let got = gvk(&review);
            if got != want {
                return Err(format!("expected webhook response of {want}, got {got}"));
            }
        }
        let Some(response) = review.get("response").filter(|r| r.is_object()) else {
            return Err("no response provided".into());
        };
        let uid = response.get("uid").and_then(Value::as_str).unwrap_or("");
        if self.version == ReviewVersion::V1 && uid != self.uid {
            return Err(format!("expected response.uid={:?}, got {uid:?}", self.uid));
        }
        let result = response.get("result");
        let status = result.and_then(|r| r.get("status")).and_then(Value::as_str).unwrap_or("");
        if status != "Success" {
            let message = result.and_then(|r| r.get("message")).and_then(Value::as_str);
            return Err(match message.filter(|m| !m.is_empty()) {
                Some(m) => m.to_string(),
                None => format!("response.result.status was '{status}', not 'Success'"),
            });
        }
        match response.get("convertedObjects") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items.clone()),
            Some(_) => Err("json: cannot unmarshal into Go struct field ConversionResponse.response.convertedObjects of type []runtime.RawExtension".into()),
        }
    }
}

/// `group/version` as Go prints a GroupVersion (`v1` for the core group).
fn group_version(api_version: &str) -> &str {
    api_version
}

fn meta_text<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.pointer(&format!("/metadata/{field}")).and_then(Value::as_str).unwrap_or("")
}

/// Upstream's `validateConvertedObject`: kind, name, namespace and uid must not change.
fn validate_converted(original: &Value, converted: &Value) -> Result<(), String> {
    if kind(original) != kind(converted) {
        return Err(format!("must have the same kind: {} != {}", kind(original), kind(converted)));
    }
    for (field, label) in [("name", "name"), ("namespace", "namespace"), ("uid", "UID")] {
        let (e, a) = (meta_text(original, field), meta_text(converted, field));
        if e != a {
            return Err(format!("must have the same {label}: {e} != {a}"));
        }
    }
    Ok(())
}

/// Upstream's `restoreObjectMeta`: the original metadata, with the converted object's
/// labels and annotations (string maps; validated as upstream when they changed).
fn restore_meta(original: &Value, mut converted: Value) -> Result<Value, String> {
    let response_meta = match converted.get("metadata") {
        None => return Err("missing metadata in converted object".into()),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(format!("invalid metadata of type {} in converted object", go_type(other)));
        }
    };
    let mut restored = match original.get("metadata") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    for field in ["labels", "annotations"] {
        restore_map(&mut restored, &response_meta, field)?;
    }
    if let Some(o) = converted.as_object_mut() {
        o.insert("metadata".into(), Value::Object(restored));
    }
    Ok(converted)
}

fn restore_map(
    restored: &mut Map<String, Value>,
    response: &Map<String, Value>,
    field: &str,
) -> Result<(), String> {
    let answer = match response.get(field) {
        None | Some(Value::Null) => {
            restored.remove(field);
            return Ok(());
        }
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(format!(
                "invalid metadata.{field} of type {} in converted object",
                go_type(other)
            ));
        }
    };
    let before = match restored.get(field) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(format!(
                "invalid metadata.{field} of type {} in original object",
                go_type(other)
            ));
        }
    };
    let mut changed = before.len() != answer.len();
    for (k, v) in answer {
        if !v.is_string() {
            return Err(format!(
                "metadata.{field}[{k}] must be a string, but is {} in converted object",
                go_type(v)
            ));
        }
        changed |= before.get(k) != Some(v);
    }
    if changed {
        check_map(field, answer)?;
    }
    restored.insert(field.into(), Value::Object(answer.clone()));
    Ok(())
}

/// Upstream's label/annotation validation of a map the webhook changed, as an aggregate.
fn check_map(field: &str, map: &Map<String, Value>) -> Result<(), String> {
    let probe = json!({"metadata": {field: map}});
    let errs = if field == "labels" {
        crate::validation::label_errors(&probe)
    } else {
        crate::validation::annotation_errors(&probe)
    };
    // Upstream validates annotations under the path `metadata.annotation`.
    let msgs: Vec<String> = errs
        .iter()
        .map(|e| e.message.replacen("metadata.annotations", "metadata.annotation", 1))
        .collect();
    match msgs.len() {
        0 => Ok(()),
        1 => Err(msgs[0].clone()),
        _ => Err(format!("[{}]", msgs.join(", "))),
    }
}

/// Go's name of the type a JSON value decodes to in an unstructured object.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

#[cfg(test)]
#[path = "webhook_conversion/tests.rs"]
mod tests;
