//! Content negotiation: which format a response is written in (from `Accept`) and which
//! format a request body is in (from `Content-Type`), as upstream's negotiator.

use crate::body::{Response, ResponseBody};
use crate::buffers;
use crate::status::ApiError;
use bytes::Bytes;
use kapi_codec::format::{self, Format};
use serde_json::Value;

/// A response format kapi can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// `application/json;as=Table;v=v1;g=meta.k8s.io`.
    Table,
    /// `application/vnd.kubernetes.protobuf`.
    Protobuf,
    /// `application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1`.
    MetadataJson,
    /// The same view in protobuf.
    MetadataProtobuf,
}

impl Output {
    pub fn content_type(self) -> &'static str {
        match self {
            Output::Json => "application/json",
            Output::Yaml => "application/yaml",
            // Upstream labels a Table with its serializer's type only.
            Output::Table => "application/json",
            Output::Protobuf | Output::MetadataProtobuf => kapi_codec::protobuf::MEDIA_TYPE,
            Output::MetadataJson => "application/json",
        }
    }

    /// Whether objects are shown as PartialObjectMetadata.
    pub fn is_metadata(self) -> bool {
        matches!(self, Output::MetadataJson | Output::MetadataProtobuf)
    }

    /// The wire encoding (Table and metadata views are JSON or protobuf documents).
    pub fn encoding(self) -> Output {
        match self {
            Output::MetadataJson | Output::Table => Output::Json,
            Output::MetadataProtobuf => Output::Protobuf,
            other => other,
        }
    }
}

/// One media range of an Accept header, lower-cased.
struct MediaRange<'a> {
    essence: &'a str,
    params: Vec<(&'a str, &'a str)>,
}

fn media_ranges(accept: &str) -> impl Iterator<Item = MediaRange<'_>> {
    accept.split(',').map(|r| {
        let mut parts = r.split(';').map(str::trim);
        let essence = parts.next().unwrap_or("");
        let params =
            parts.filter_map(|p| p.split_once('=')).map(|(k, v)| (k.trim(), v.trim())).collect();
        MediaRange { essence, params }
    })
}

/// Choose the response format. `table_ok` says whether the endpoint can render a Table.
pub fn negotiate(accept: Option<&str>, table_ok: bool) -> Result<Output, ApiError> {
    negotiate_with(accept, table_ok, true)
}

/// As [`negotiate`] for a type without a protobuf message (custom resources, which
/// upstream serves in JSON and YAML only): protobuf ranges are passed over, and an
/// Accept that leaves nothing else is 406.
pub fn negotiate_without_protobuf(
    accept: Option<&str>,
    table_ok: bool,
) -> Result<Output, ApiError> {
    negotiate_with(accept, table_ok, false)
}

fn negotiate_with(
    accept: Option<&str>,
    table_ok: bool,
    protobuf_ok: bool,
) -> Result<Output, ApiError> {
    let accept = match accept.map(str::trim) {
        None | Some("") => return Ok(Output::Json),
        Some(a) => a,
    };
    for range in media_ranges(accept) {
        let param = |k: &str| range.params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
        let as_kind = param("as");
        match (range.essence, as_kind) {
            ("application/json", Some("Table")) if table_ok && param("v") == Some("v1") => {
                return Ok(Output::Table);
            }
            (essence, Some("PartialObjectMetadata" | "PartialObjectMetadataList"))
                if param("g") == Some("meta.k8s.io") && param("v") == Some("v1") =>
            {
                match essence {
                    "application/json" => return Ok(Output::MetadataJson),
                    "application/vnd.kubernetes.protobuf" if protobuf_ok => {
                        return Ok(Output::MetadataProtobuf);
                    }
                    _ => continue,
                }
            }
            (_, Some(_)) => continue,
            ("application/json" | "application/*" | "*/*" | "*", None) => return Ok(Output::Json),
            ("application/yaml", None) => return Ok(Output::Yaml),
            ("application/vnd.kubernetes.protobuf", None) if protobuf_ok => {
                return Ok(Output::Protobuf);
            }
            _ => continue,
        }
    }
    Err(not_acceptable())
}

/// Upstream's 406: the serializer's media types, whatever was asked. Custom resources
/// list protobuf too: their serializer has it (for Status and PartialObjectMetadata),
/// only the object itself is refused in it.
fn not_acceptable() -> ApiError {
    ApiError::NotAcceptable(
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf".into(),
    )
}

/// The format of a request body for create/update, from `Content-Type`.
pub fn body_format(content_type: Option<&str>) -> Result<Format, ApiError> {
    let essence = content_type.unwrap_or("application/json").split(';').next().unwrap_or("").trim();
    match essence {
        "application/json" | "" => Ok(Format::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" => Ok(Format::Yaml),
        "application/vnd.kubernetes.protobuf" => Ok(Format::Protobuf),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other})"
        ))),
    }
}

/// Encode `value` in `output` (`pretty` indents JSON), with the content type written. An
/// object without a protobuf message (none of the built-in kinds) falls back to JSON.
/// Bodies are written into the core's pooled buffers (`crate::buffers`).
pub fn encode(value: &Value, output: Output, pretty: bool) -> (Bytes, &'static str) {
    let ct = output.content_type();
    match output.encoding() {
        Output::Yaml => (buffers::encode(|out| format::write_yaml(value, out)), ct),
        Output::Protobuf => {
            let mut ok = true;
            let body = buffers::encode(|out| {
                ok = kapi_codec::protobuf::encode_object(value, out).is_ok();
                if !ok {
                    out.clear();
                }
            });
            if ok { (body, ct) } else { encode(value, Output::Json, pretty) }
        }
        _ if pretty => (buffers::encode(|out| format::write_json_pretty(value, out)), ct),
        _ => (buffers::encode(|out| json_line(value, out)), ct),
    }
}

/// Compact JSON ended by `\n`, as upstream's `json.Encoder` writes a body (pretty JSON is
/// indented without one, as upstream's).
fn json_line(value: &Value, out: &mut Vec<u8>) {
    format::write_json(value, out);
    out.push(b'\n');
}

/// A complete response with `value` as body.
pub fn respond(code: u16, value: &Value, output: Output, pretty: bool) -> Response {
    let (body, content_type) = crate::metrics::timed("encode", || encode(value, output, pretty));
    http::Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(ResponseBody::full(body))
        .unwrap_or_else(|_| http::Response::new(ResponseBody::empty()))
}

/// A complete response whose body is already encoded.
pub fn respond_encoded(code: u16, body: Bytes, content_type: &'static str) -> Response {
    http::Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(ResponseBody::full(body))
        .unwrap_or_else(|_| http::Response::new(ResponseBody::empty()))
}

/// PartialObjectMetadata of an object.
pub fn partial(obj: &Value) -> Value {
    serde_json::json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| serde_json::json!({})),
    })
}

/// The Status response of an error, in the negotiated format (JSON for Table requests).
pub fn error_response(e: &ApiError, output: Output) -> Response {
    let output = output.encoding();
    respond(e.code(), &e.to_status(), output, false)
}

/// The Status response of an error of a request that sent `accept`, as upstream's
/// `ErrorNegotiated`: in the first media type the header names without `as=` (a Status is
/// never a Table or metadata view); when it names none, indented JSON without a trailing
/// newline (upstream's `WriteRawJSON`).
pub fn error_response_for(e: &ApiError, accept: Option<&str>) -> Response {
    match status_output(accept) {
        Some(output) => respond(e.code(), &e.to_status(), output, false),
        None => respond(e.code(), &e.to_status(), Output::Json, true),
    }
}

/// The format of a Status for `accept`: None when no plain range is acceptable.
fn status_output(accept: Option<&str>) -> Option<Output> {
    let accept = match accept.map(str::trim) {
        None | Some("") => return Some(Output::Json),
        Some(a) => a,
    };
    media_ranges(accept).filter(|r| !r.params.iter().any(|(k, _)| *k == "as")).find_map(|r| match r
        .essence
    {
        "application/json" | "application/*" | "*/*" | "*" => Some(Output::Json),
        "application/yaml" => Some(Output::Yaml),
        "application/vnd.kubernetes.protobuf" => Some(Output::Protobuf),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    /// Custom resources are not served in protobuf (upstream: JSON and YAML only): a
    /// protobuf-first Accept falls back to what else it takes, protobuf alone is 406.
    /// Regression: the 406 message was kapi's own (two types, "; got ..."); upstream's
    /// lists its serializer's three types and nothing else, for custom resources too.
    #[test]
    fn custom_resources_fall_back_from_protobuf_or_get_406() {
        let pb = "application/vnd.kubernetes.protobuf";
        let both = "application/vnd.kubernetes.protobuf, application/json";
        assert!(matches!(negotiate_without_protobuf(Some(both), true), Ok(Output::Json)));
        let err = negotiate_without_protobuf(Some(pb), true).unwrap_err();
        let upstream = "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf";
        assert_eq!(err.to_status()["message"], upstream);
        assert_eq!(
            negotiate(Some("application/cbor"), true).unwrap_err().to_status()["message"],
            upstream
        );
        assert!(matches!(negotiate(Some(pb), true), Ok(Output::Protobuf)));
    }

    use super::*;

    #[test]
    fn kubectl_get_accept_prefers_table() {
        let a = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(Some(a), true).unwrap(), Output::Table);
        assert_eq!(negotiate(Some(a), false).unwrap(), Output::Json);
    }

    #[test]
    fn plain_and_wildcards() {
        assert_eq!(negotiate(None, true).unwrap(), Output::Json);
        assert_eq!(negotiate(Some("*/*"), true).unwrap(), Output::Json);
        assert_eq!(negotiate(Some("application/yaml"), true).unwrap(), Output::Yaml);
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf, application/json"), true).unwrap(),
            Output::Protobuf
        );
        assert_eq!(
            body_format(Some("application/vnd.kubernetes.protobuf")).unwrap(),
            Format::Protobuf
        );
    }

    /// Regression: JSON bodies ended without the `\n` upstream's encoder writes after
    /// every document; pretty JSON has none, as upstream's.
    #[test]
    fn json_bodies_end_in_a_newline() {
        let v = serde_json::json!({"kind": "Status"});
        assert_eq!(&encode(&v, Output::Json, false).0[..], b"{\"kind\":\"Status\"}\n");
        assert_eq!(&encode(&v, Output::MetadataJson, false).0[..], b"{\"kind\":\"Status\"}\n");
        assert!(!encode(&v, Output::Json, true).0.ends_with(b"\n"));
    }

    /// Regression: an error of a request accepting only a Table (or only metadata) was
    /// compact JSON; upstream finds no plain media type for the Status and writes it
    /// indented, without a trailing newline.
    #[test]
    fn errors_accepting_only_views_are_indented_json() {
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io";
        assert_eq!(status_output(Some(table)), None);
        let kubectl = format!("{table},application/json");
        assert_eq!(status_output(Some(&kubectl)), Some(Output::Json));
        let metadata = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/vnd.kubernetes.protobuf";
        assert_eq!(status_output(Some(metadata)), Some(Output::Protobuf));
        assert_eq!(status_output(None), Some(Output::Json));
    }

    #[test]
    fn unsupported_only_is_406() {
        let e = negotiate(Some("application/cbor"), true).unwrap_err();
        assert_eq!(e.code(), 406);
        assert_eq!(body_format(Some("text/plain")).unwrap_err().code(), 415);
    }
}
