//! Content negotiation: which format a response is written in (from `Accept`) and which
//! format a request body is in (from `Content-Type`), as upstream's negotiator.

use crate::body::{Response, ResponseBody};
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
}

impl Output {
    pub fn content_type(self) -> &'static str {
        match self {
            Output::Json => "application/json",
            Output::Yaml => "application/yaml",
            Output::Table => "application/json;as=Table;v=v1;g=meta.k8s.io",
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
            (_, Some(_)) => continue,
            ("application/json" | "application/*" | "*/*" | "*", None) => return Ok(Output::Json),
            ("application/yaml", None) => return Ok(Output::Yaml),
            _ => continue,
        }
    }
    Err(ApiError::NotAcceptable(format!(
        "only the following media types are accepted: application/json, application/yaml; got {accept}"
    )))
}

/// The format of a request body for create/update, from `Content-Type`.
pub fn body_format(content_type: Option<&str>) -> Result<Format, ApiError> {
    let essence = content_type.unwrap_or("application/json").split(';').next().unwrap_or("").trim();
    match essence {
        "application/json" | "" => Ok(Format::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" => Ok(Format::Yaml),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {other})"
        ))),
    }
}

/// Encode `value` in `output` (`pretty` indents JSON).
pub fn encode(value: &Value, output: Output, pretty: bool) -> Bytes {
    match output {
        Output::Yaml => format::encode_yaml(value).into(),
        _ if pretty => format::encode_json_pretty(value).into(),
        _ => format::encode_json(value).into(),
    }
}

/// A complete response with `value` as body.
pub fn respond(code: u16, value: &Value, output: Output, pretty: bool) -> Response {
    let body = encode(value, output, pretty);
    http::Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, output.content_type())
        .body(ResponseBody::full(body))
        .unwrap_or_else(|_| http::Response::new(ResponseBody::empty()))
}

/// The Status response of an error, in JSON unless YAML was asked for.
pub fn error_response(e: &ApiError, output: Output) -> Response {
    let output = if output == Output::Yaml { Output::Yaml } else { Output::Json };
    respond(e.code(), &e.to_status(), output, false)
}

#[cfg(test)]
mod tests {
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
            Output::Json
        );
    }

    #[test]
    fn unsupported_only_is_406() {
        let e = negotiate(Some("application/vnd.kubernetes.protobuf"), true).unwrap_err();
        assert_eq!(e.code(), 406);
        assert_eq!(body_format(Some("text/plain")).unwrap_err().code(), 415);
    }
}
