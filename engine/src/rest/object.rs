//! Objects between the wire and the store: decoding request bodies (with field
//! validation), stored bytes <-> objects (resourceVersion comes from the store revision and
//! is never stored), and the metadata the server stamps on create.

use super::Scope;
use crate::status::ApiError;
use bytes::Bytes;
use kapi_codec::format::duplicates::Duplicate;
use kapi_codec::format::{self, Format};
use kapi_codec::schema::{self, FieldValidation};
use kapi_codec::stored::{self, StorageMediaType};
use kapi_codec::{ResourceType, meta};
use kapi_storage::KeyValue;
use serde_json::Value;

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

/// Decode a create/update body of the scope's kind: defaults and checks apiVersion and
/// kind, drops unknown fields and keeps the last value of a repeated key; both are
/// warnings or a 400 per `fieldValidation`.
pub fn decode_body(
    scope: &Scope<'_>,
    body: &[u8],
    fmt: Format,
    expect_kind: &str,
) -> Result<Decoded, ApiError> {
    let validation = field_validation(scope)?;
    let decoded = crate::metrics::timed("decode", || match validation {
        FieldValidation::Ignore => format::decode(body, fmt).map(|v| (v, Vec::new())),
        _ => format::decode_noting_duplicates(body, fmt),
    });
    let (mut obj, duplicates) = decoded.map_err(|e| unrecognized(scope, body, fmt, e))?;
    if !obj.is_object() {
        return Err(ApiError::BadRequest("the request body must be a JSON object".into()));
    }
    default_type_meta(scope, &mut obj, expect_kind)?;
    let unknown = match &scope.rt.custom {
        Some(custom) => custom.prune(&mut obj),
        None => schema::prune_unknown(&scope.rt.schema_name, &mut obj)
            .map_err(|e| cannot_handle(scope, e))?,
    };
    let warnings = field_warnings(scope, validation, &duplicates, &unknown)?;
    Ok(Decoded { obj, warnings })
}

/// The warnings of a body's repeated and unknown fields, or upstream's 400 for them.
fn field_warnings(
    scope: &Scope<'_>,
    validation: FieldValidation,
    duplicates: &[Duplicate],
    unknown: &[String],
) -> Result<Vec<String>, ApiError> {
    let mut warnings = Vec::new();
    let repeated = if scope.apply {
        warnings.extend(apply_repeats(validation, duplicates)?);
        &[]
    } else {
        duplicates
    };
    let errors = strict_errors(repeated, unknown);
    match validation {
        FieldValidation::Warn => warnings.extend(errors),
        FieldValidation::Strict if !errors.is_empty() => {
            let (kind, version) = (&*scope.rt.kind, &*scope.rt.version);
            return Err(ApiError::BadRequest(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                errors.join(", ")
            )));
        }
        FieldValidation::Strict | FieldValidation::Ignore => {}
    }
    Ok(warnings)
}

/// Upstream's strict decoding errors of a body, in its order: the YAML library's
/// repeated keys, then JSON fields repeated in known fields (a field the type does not
/// know is reported as unknown, nothing inside it), then unknown fields.
fn strict_errors(duplicates: &[Duplicate], unknown: &[String]) -> Vec<String> {
    let inside_unknown = |path: &str| {
        unknown.iter().any(|u| {
            path.strip_prefix(u.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    };
    let repeated = duplicates.iter().filter(|d| match d {
        Duplicate::Field(path) => !inside_unknown(path),
        Duplicate::Yaml(_) => true,
    });
    let mut out: Vec<String> = repeated.map(Duplicate::message).collect();
    out.extend(unknown.iter().map(|f| format!("unknown field \"{f}\"")));
    out
}

/// An apply body's repeated keys, as upstream's apply checks them with its strict YAML
/// decoder: a 400 `error strict decoding YAML: ...` (Strict) or a warning (Warn).
fn apply_repeats(
    validation: FieldValidation,
    duplicates: &[Duplicate],
) -> Result<Option<String>, ApiError> {
    let Some(d) = duplicates.first() else { return Ok(None) };
    let error = format!("error converting YAML to JSON: {}", d.message());
    match validation {
        FieldValidation::Strict => {
            Err(ApiError::BadRequest(format!("error strict decoding YAML: {error}")))
        }
        FieldValidation::Warn => Ok(Some(error)),
        FieldValidation::Ignore => Ok(None),
    }
}

/// A body that does not decode, as upstream's create and update handlers word it: the
/// kind expected, the decoder's error, and the body's first 30 bytes (as text when it
/// starts with `{`, else hex). Apply patches and protobuf keep the decoder's message.
fn unrecognized(
    scope: &Scope<'_>,
    body: &[u8],
    fmt: Format,
    e: kapi_codec::CodecError,
) -> ApiError {
    if fmt == Format::Protobuf || scope.apply {
        return ApiError::BadRequest(e.to_string());
    }
    let kind = &scope.rt.kind;
    ApiError::BadRequest(format!(
        "the object provided is unrecognized (must be of type {kind}): {e} ({})",
        summarize(body)
    ))
}

/// A body of the right kind whose fields do not decode (a wrong type, a `[]byte` field
/// that is not base64), as upstream's handlers word it once the kind is known.
fn cannot_handle(scope: &Scope<'_>, e: kapi_codec::CodecError) -> ApiError {
    if scope.apply {
        return ApiError::BadRequest(e.to_string());
    }
    let (kind, version) = (&*scope.rt.kind, &*scope.rt.version);
    ApiError::BadRequest(format!(
        "{kind} in version \"{version}\" cannot be handled as a {kind}: {e}"
    ))
}

/// Upstream's `summarizeData(body, 30)`.
fn summarize(body: &[u8]) -> String {
    let head = &body[..body.len().min(30)];
    let more = if body.len() > 30 { " ..." } else { "" };
    match body.first() {
        None => "<empty>".into(),
        Some(b'{') => format!("{}{more}", String::from_utf8_lossy(head)),
        Some(_) => {
            let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
            format!("{hex}{more}")
        }
    }
}

/// The body's kind and apiVersion as upstream's decoder reads them: what the body leaves
/// out (or sends empty) is the endpoint's, then each is written into the object so it
/// starts with `kind` and `apiVersion`. A body of another type is refused with upstream's
/// messages: an unregistered group/version/kind, a kind that does not convert, a
/// registered group/version the endpoint does not serve.
fn default_type_meta(
    scope: &Scope<'_>,
    obj: &mut Value,
    expect_kind: &str,
) -> Result<(), ApiError> {
    let text = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (mut kind, api_version) = (text("kind"), text("apiVersion"));
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), api_version),
    };
    let rt = &scope.rt;
    if kind.is_empty() && scope.apply {
        // An applied configuration is not defaulted: its field manager finds no type.
        let gvk = format!("{}/{}, Kind=", rt.group, rt.version);
        return Err(ApiError::Unknown(format!(
            "failed to create typed patch object ({gvk}): no corresponding type for {gvk}"
        )));
    }
    if kind.is_empty() {
        kind = expect_kind.to_string();
    }
    let (group, version) = match (group.is_empty(), version.is_empty()) {
        (true, true) => (rt.group.to_string(), rt.version.to_string()),
        (false, true) if *group == *rt.group => (group, rt.version.to_string()),
        _ => (group, version),
    };
    check_type(&scope.app.registry(), rt, expect_kind, &kind, &group, &version)?;
    if let Some(m) = obj.as_object_mut() {
        m.shift_remove("kind");
        m.shift_remove("apiVersion");
        m.shift_insert(0, "kind".into(), Value::from(kind));
        m.shift_insert(1, "apiVersion".into(), Value::from(rt.api_version()));
    }
    Ok(())
}

/// Whether a body of `kind` in `group`/`version` can be written at `rt`'s endpoint
/// (serving `expect_kind`), as upstream's decoder and create/update handlers decide.
fn check_type(
    registry: &kapi_codec::Registry,
    rt: &ResourceType,
    expect_kind: &str,
    kind: &str,
    group: &str,
    version: &str,
) -> Result<(), ApiError> {
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    let handled = |why: String| {
        ApiError::BadRequest(format!(
            "{kind} in version \"{version}\" cannot be handled as a {expect_kind}: {why}"
        ))
    };
    if version.is_empty() {
        return Err(handled(format!("Object 'apiVersion' is missing in '{gv}'")));
    }
    if !registered(registry, group, version, kind) {
        return Err(handled(format!(
            "no kind \"{kind}\" is registered for version \"{gv}\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        )));
    }
    if kind != expect_kind {
        return Err(handled(format!(
            "converting ({version}.{kind}) to ({}.{expect_kind}): unknown conversion",
            internal_package(&rt.group)
        )));
    }
    if group != rt.group || version != rt.version {
        return Err(ApiError::BadRequest(format!(
            "the API version in the data ({gv}) does not match the expected API version ({})",
            rt.api_version()
        )));
    }
    Ok(())
}

/// Whether upstream's scheme knows `kind` in `group`/`version`: a served kind or the kind
/// of a served subresource (Scale, Binding, Eviction, ...).
fn registered(registry: &kapi_codec::Registry, group: &str, version: &str, kind: &str) -> bool {
    registry.by_kind(group, version, kind).is_some()
        || registry.all().iter().any(|t| {
            t.subresources.iter().any(|s| {
                let (g, v) = if s.version.is_empty() {
                    (&*t.group, &*t.version)
                } else {
                    (s.group, s.version)
                };
                s.kind == kind && g == group && v == version
            })
        })
}

/// The Go package of a group's internal types, as upstream's conversion errors name it.
fn internal_package(group: &str) -> &str {
    match group {
        "" | "events.k8s.io" => "core",
        "internal.apiserver.k8s.io" => "apiserverinternal",
        g => g.split('.').next().unwrap_or(g),
    }
}

/// An object from its stored bytes, with `metadata.resourceVersion` set from the revision
/// (`kapi_codec::stored::decode_object`).
pub fn from_stored(rt: &ResourceType, kv: &KeyValue) -> Result<Value, ApiError> {
    stored::decode_object(rt, &kv.value, kv.mod_revision)
        .map_err(|e| ApiError::Internal(format!("decoding stored object {}: {e}", kv.key)))
}

/// The bytes to store for `obj`, in `media`: without `metadata.resourceVersion`.
pub fn to_stored(rt: &ResourceType, obj: &Value, media: StorageMediaType) -> Bytes {
    Bytes::from(stored::encode_object(rt, obj, media))
}

/// Random suffix alphabet of generateName (upstream's: no vowels, no confusable digits).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub fn generate_name(base: &str) -> String {
    let mut name = String::with_capacity(base.len().min(63 - 5) + 5);
    name.extend(base.chars().take(63 - 5));
    name.extend(
        (0..5).map(|_| ALPHANUMS[rand::random::<u32>() as usize % ALPHANUMS.len()] as char),
    );
    name
}

/// `metadata.resourceVersion` of an object as a revision; "" is None; junk is 400.
pub fn resource_version(obj: &Value) -> Result<Option<u64>, ApiError> {
    match meta::meta_str(obj, "resourceVersion") {
        None | Some("") => Ok(None),
        Some(rv) => crate::cache::parse_revision(rv)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest(format!("invalid resource version: {rv}"))),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(plural: &str, group: &str, version: &str, kind: &str) -> Result<(), String> {
        let registry = kapi_codec::Registry::builtin();
        let (g, v) = if plural == "deployments" { ("apps", "v1") } else { ("", "v1") };
        let rt = registry.get(g, v, plural).unwrap();
        check_type(registry, rt, &rt.kind, kind, group, version)
            .map_err(|e| e.to_status()["message"].as_str().unwrap().to_string())
    }

    /// Regression: bodies of another type were refused with kapi's own words; these are
    /// upstream's messages for the same bodies.
    #[test]
    fn bodies_of_another_type_are_refused_as_upstream() {
        assert_eq!(check("configmaps", "", "v1", "ConfigMap"), Ok(()));
        assert_eq!(
            check("configmaps", "", "v1", "Secret").unwrap_err(),
            "Secret in version \"v1\" cannot be handled as a ConfigMap: converting (v1.Secret) to (core.ConfigMap): unknown conversion"
        );
        assert_eq!(
            check("configmaps", "", "v2", "ConfigMap").unwrap_err(),
            "ConfigMap in version \"v2\" cannot be handled as a ConfigMap: no kind \"ConfigMap\" is registered for version \"v2\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        );
        assert_eq!(
            check("deployments", "apps", "v1", "Pod").unwrap_err(),
            "Pod in version \"v1\" cannot be handled as a Deployment: no kind \"Pod\" is registered for version \"apps/v1\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        );
        assert_eq!(
            check("deployments", "", "v1", "Pod").unwrap_err(),
            "Pod in version \"v1\" cannot be handled as a Deployment: converting (v1.Pod) to (apps.Deployment): unknown conversion"
        );
    }
}
