//! Objects between the wire and the store: decoding request bodies (with field
//! validation), stored bytes <-> objects (resourceVersion comes from the store revision and
//! is never stored), and the metadata the server stamps on create.

use super::Scope;
use crate::status::ApiError;
use bytes::Bytes;
use kapi_codec::format::{self, Format};
use kapi_codec::schema::{self, FieldValidation};
use kapi_codec::stored::{self, StorageMediaType};
use kapi_codec::{ResourceType, convert, meta};
use kapi_storage::KeyValue;
use serde_json::{Value, json};

/// A decoded request body with the warnings it produced.
pub struct Decoded {
    pub obj: Value,
    pub warnings: Vec<String>,
}

fn field_validation(scope: &Scope<'_>) -> Result<FieldValidation, ApiError> {
    match scope.info.param("fieldValidation") {
        None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
        Some("Ignore") => Ok(FieldValidation::Ignore),
        Some("Strict") => Ok(FieldValidation::Strict),
        Some(other) => Err(ApiError::BadRequest(format!(
            "fieldValidation parameter unsupported: {other}; supported values: Ignore, Warn, Strict"
        ))),
    }
}

/// Decode a create/update body of the scope's kind: checks apiVersion and kind, drops
/// unknown fields (warning or 400 per `fieldValidation`).
pub fn decode_body(
    scope: &Scope<'_>,
    body: &[u8],
    fmt: Format,
    expect_kind: &str,
) -> Result<Decoded, ApiError> {
    let validation = field_validation(scope)?;
    let decoded = crate::metrics::timed("decode", || format::decode(body, fmt));
    let mut obj = decoded.map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if !obj.is_object() {
        return Err(ApiError::BadRequest("the request body must be a JSON object".into()));
    }
    check_type_meta(scope, &obj, expect_kind)?;
    let unknown = schema::prune_unknown(scope.rt.schema_name, &mut obj)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let warnings = match validation {
        FieldValidation::Ignore => Vec::new(),
        FieldValidation::Warn => unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect(),
        FieldValidation::Strict if !unknown.is_empty() => {
            let list: Vec<String> =
                unknown.iter().map(|f| format!("unknown field \"{f}\"")).collect();
            let (kind, version) = (scope.rt.kind, scope.rt.version);
            return Err(ApiError::BadRequest(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                list.join(", ")
            )));
        }
        FieldValidation::Strict => Vec::new(),
    };
    Ok(Decoded { obj, warnings })
}

fn check_type_meta(scope: &Scope<'_>, obj: &Value, expect_kind: &str) -> Result<(), ApiError> {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() {
        let shown: String =
            String::from_utf8_lossy(&format::encode_json(obj)).chars().take(200).collect();
        return Err(ApiError::BadRequest(format!("Object 'Kind' is missing in '{shown}'")));
    }
    let expected_av = scope.rt.api_version();
    if api_version != expected_av {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({expected_av})"
        )));
    }
    if kind != expect_kind {
        return Err(ApiError::BadRequest(format!(
            "the kind in the data ({kind}) does not match the expected kind ({expect_kind})"
        )));
    }
    Ok(())
}

/// An object from its stored bytes, with `metadata.resourceVersion` set from the revision.
pub fn from_stored(rt: &ResourceType, kv: &KeyValue) -> Result<Value, ApiError> {
    let obj: Value = stored::decode(&kv.value)
        .map_err(|e| ApiError::Internal(format!("decoding stored object {}: {e}", kv.key)))?;
    let mut obj = convert::from_storage(rt, obj);
    meta::set_meta(&mut obj, "resourceVersion", json!(kv.mod_revision.to_string()));
    Ok(obj)
}

/// The bytes to store for `obj`, in `media`: without `metadata.resourceVersion`.
pub fn to_stored(rt: &ResourceType, obj: &Value, media: StorageMediaType) -> Bytes {
    if convert::storage_type(rt).0.is_empty() {
        // Stored as served: no copy of the object.
        return Bytes::from(stored::encode_without_revision(obj, media));
    }
    let mut copy = convert::to_storage(rt, obj.clone());
    if let Some(m) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    Bytes::from(stored::encode(&copy, media))
}

/// Random suffix alphabet of generateName (upstream's: no vowels, no confusable digits).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub fn generate_name(base: &str) -> String {
    let base: String = base.chars().take(63 - 5).collect();
    let suffix: String = (0..5)
        .map(|_| ALPHANUMS[rand::random::<u32>() as usize % ALPHANUMS.len()] as char)
        .collect();
    format!("{base}{suffix}")
}

/// `metadata.resourceVersion` of an object as a revision; "" is None; junk is 400.
pub fn resource_version(obj: &Value) -> Result<Option<u64>, ApiError> {
    match meta::meta_str(obj, "resourceVersion") {
        None | Some("") => Ok(None),
        Some(rv) => rv
            .parse()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {rv}"))),
    }
}

/// Everything of `obj` but metadata and status (what a generation bump compares).
pub fn spec_part(obj: &Value) -> Value {
    let mut copy = obj.clone();
    if let Some(m) = copy.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    copy
}
