//! JSON and YAML decoding and encoding of object trees.

use crate::error::CodecError;
use serde_json::Value;

/// A request body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    /// `application/vnd.kubernetes.protobuf` (`k8s\0` + runtime.Unknown).
    Protobuf,
}

/// Decode a request body. Malformed input is `CodecError::Malformed` with a message in
/// upstream's style; duplicate keys in JSON are reported by `strict_issues`.
pub fn decode(body: &[u8], format: Format) -> Result<Value, CodecError> {
    match format {
        Format::Json => serde_json::from_slice(body).map_err(|e| {
            CodecError::Malformed(format!("couldn't get version/kind; json parse error: {e}"))
        }),
        Format::Yaml => serde_norway::from_slice(body)
            .map_err(|e| CodecError::Malformed(format!("error converting YAML to JSON: {e}"))),
        Format::Protobuf => crate::protobuf::decode_object(body),
    }
}

/// Compact JSON.
pub fn encode_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// Indented JSON (`?pretty=true`).
pub fn encode_json_pretty(value: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

/// YAML document.
pub fn encode_yaml(value: &Value) -> Vec<u8> {
    serde_norway::to_string(value).map(String::into_bytes).unwrap_or_default()
}
