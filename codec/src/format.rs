//! JSON and YAML decoding and encoding of object trees.
//!
//! [`parse_json`] is the one JSON parser of request bodies and stored objects and
//! [`write_json`] the one JSON writer of responses and stored objects, so either can be
//! swapped in one place. Both are serde_json: on kapi's ~4 KB pods, sonic-rs and
//! simd-json decode into the same `serde_json::Value` tree within a few percent of it
//! (building the tree dominates), which does not pay for their build cost; see
//! docs/PERFORMANCE.md, "JSON parsers and writers".
//!
//! Decoding is bounded: [`nesting`] refuses bodies nested past the limits before a
//! parser builds anything, and [`yaml`] caps the nodes alias expansion may make.

pub mod duplicates;
pub mod nesting;
pub mod yaml;

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
/// upstream's style; a repeated key keeps its last value ([`decode_noting_duplicates`]
/// reports them).
pub fn decode(body: &[u8], format: Format) -> Result<Value, CodecError> {
    match format {
        Format::Json => parse_json(body).map_err(|e| json_error(body, &e)),
        Format::Yaml => yaml::decode(body),
        Format::Protobuf => crate::protobuf::decode_object(body),
    }
}

/// [`decode`], also returning the keys the body repeats in one object, as upstream's
/// strict decoders report them (`fieldValidation` Warn and Strict). Protobuf has none.
pub fn decode_noting_duplicates(
    body: &[u8],
    format: Format,
) -> Result<(Value, Vec<duplicates::Duplicate>), CodecError> {
    match format {
        Format::Json => duplicates::parse_json(body).map_err(|e| json_error(body, &e)),
        Format::Yaml => duplicates::decode_yaml(body),
        Format::Protobuf => Ok((crate::protobuf::decode_object(body)?, Vec::new())),
    }
}

/// A JSON body's parse error. serde_json stops at [`nesting::MAX_TREE_DEPTH`]; a body
/// nested past upstream's own limit gets upstream's message (the scan runs only then).
fn json_error(body: &[u8], e: &serde_json::Error) -> CodecError {
    let too_deep = e.to_string().starts_with("recursion limit exceeded");
    match too_deep.then(|| nesting::json_too_deep(body, nesting::UPSTREAM_MAX_DEPTH)).flatten() {
        Some(opener) => CodecError::Malformed(json_depth_message(opener)),
        None => CodecError::Malformed(format!("couldn't get version/kind; json parse error: {e}")),
    }
}

/// Upstream's message for JSON nested past 10,000 levels (Go's `encoding/json`, read by
/// the serializer's kind lookup).
fn json_depth_message(opener: u8) -> String {
    let c = char::from(opener);
    format!(
        "couldn't get version/kind; json parse error: invalid character '{c}' exceeded max depth"
    )
}

/// Parse one JSON document into an object tree (keys in document order). The error
/// says what is wrong and where (line and column).
pub fn parse_json(body: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice(body)
}

/// Compact JSON.
pub fn encode_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_json(value, &mut out);
    out
}

/// Indented JSON (`?pretty=true`).
pub fn encode_json_pretty(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_json_pretty(value, &mut out);
    out
}

/// YAML document.
pub fn encode_yaml(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_yaml(value, &mut out);
    out
}

/// Append compact JSON to `out`: the one JSON writer of responses and stored objects.
/// Writing a `Value` cannot fail (its keys are strings and it has no NaN), so an error
/// leaves `out` as it was.
pub fn write_json(value: &Value, out: &mut Vec<u8>) {
    let start = out.len();
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.truncate(start);
    }
}

/// Append indented JSON to `out`.
pub fn write_json_pretty(value: &Value, out: &mut Vec<u8>) {
    let start = out.len();
    if serde_json::to_writer_pretty(&mut *out, value).is_err() {
        out.truncate(start);
    }
}

/// Append a YAML document to `out`.
pub fn write_yaml(value: &Value, out: &mut Vec<u8>) {
    let start = out.len();
    if serde_norway::to_writer(&mut *out, value).is_err() {
        out.truncate(start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_error(body: &str) -> String {
        decode(body.as_bytes(), Format::Json).unwrap_err().to_string()
    }

    #[test]
    fn bad_json_errors_read_as_upstream() {
        let prefix = "couldn't get version/kind; json parse error: ";
        for (body, detail) in [
            ("{bad", "key must be a string at line 1 column 2"),
            ("{\"a\":1", "EOF while parsing an object at line 1 column 6"),
            ("", "EOF while parsing a value at line 1 column 0"),
            ("{\"a\":1}x", "trailing characters at line 1 column 8"),
        ] {
            let e = json_error(body);
            assert!(e.contains(prefix) && e.ends_with(detail), "{body:?}: {e}");
        }
    }

    /// Regression (issue #14): JSON nested past upstream's 10,000 levels got serde_json's
    /// recursion message instead of upstream's.
    #[test]
    fn json_past_upstreams_depth_gets_upstreams_message() {
        let deep = format!("{}1{}", "[".repeat(10_001), "]".repeat(10_001));
        assert_eq!(
            json_error(&deep),
            "couldn't get version/kind; json parse error: invalid character '[' exceeded max depth"
        );
        let kapi_limit = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert!(json_error(&kapi_limit).contains("recursion limit exceeded"));
    }

    #[test]
    fn parse_keeps_key_order_and_writers_round_trip() {
        let v = parse_json(br#"{"z":1,"a":{"y":[1,2.5,"x"],"b":null},"m":true}"#).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["z", "a", "m"]);
        assert_eq!(encode_json(&v), br#"{"z":1,"a":{"y":[1,2.5,"x"],"b":null},"m":true}"#);
        let mut out = b"prefix".to_vec();
        write_json(&v, &mut out);
        assert!(out.starts_with(b"prefix{\"z\":1"));
        assert_eq!(parse_json(&encode_json_pretty(&v)).unwrap(), v);
        assert_eq!(decode(&encode_yaml(&v), Format::Yaml).unwrap(), v);
    }
}
