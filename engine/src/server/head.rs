//! Request heads (request line or pseudo-headers, and headers) too large to take, and
//! what a client is answered about them.
//!
//! Upstream (Go's net/http, `MaxHeaderBytes` 1 MiB) reads an HTTP/1.1 head of up to
//! 1 MiB + 4 KiB (`initialReadLimitSize`: the limit plus bufio's slop) and answers a
//! larger one with `431 Request Header Fields Too Large` in plain text, then closes the
//! connection. On HTTP/2 it advertises `SETTINGS_MAX_HEADER_LIST_SIZE` of 1 MiB + 320
//! (ten fields' 32-byte overhead) and answers a larger header list with 431 and a short
//! HTML body. kapi takes the same heads and answers the same way:
//!
//! - Heads that hyper (HTTP/1.1) or h2 take but that are over upstream's limit are
//!   answered by [`too_large`] before the handler runs, with Go's answer.
//! - HTTP/1.1: hyper refuses a head that does not fit its read buffer (`max_buf_size`,
//!   the limit; a head is refused somewhere between that and twice that, depending on
//!   how the reads fell) and writes a bare 431 (or 414, below) with no body.
//!   [`h1_answer`] recognises that automatic answer on the way to the socket and the
//!   connection writes Go's answer in its place. It is only looked for while no request
//!   of the connection is being served (hyper writes it before any handler saw the
//!   request), at the start of a write.
//! - HTTP/2: h2 decodes header lists up to twice the limit ([`H2_HEADER_LIST_CAP`]);
//!   past that h2 itself answers a bare 431, or ends the connection (GOAWAY
//!   ENHANCE_YOUR_CALM) when the block comes in more CONTINUATION frames than the cap
//!   needs.
//!
//! Where kapi cannot follow: a URL longer than 65,534 bytes (the `http` crate's limit on
//! a URI, which hyper and h2 enforce) never reaches the handler. On HTTP/1.1 it is
//! answered 414 with a `Status` body (code 414, no reason: upstream has no reason for it,
//! as upstream never answers 414 and would serve such a URL); on HTTP/2 h2 resets the
//! stream (PROTOCOL_ERROR). And hyper takes at most 100 header fields on HTTP/1.1 (Go
//! counts only bytes): more get the same 431.

use bytes::Bytes;

/// Upstream's limit on a request head (Go's `http.DefaultMaxHeaderBytes`).
pub const MAX_HEADER_BYTES: usize = 1 << 20;
/// What Go's HTTP/1.1 server actually reads of a head: the limit plus bufio's 4 KiB.
pub const H1_HEAD_LIMIT: usize = MAX_HEADER_BYTES + 4096;
/// Go's HTTP/2 header list limit (hpack's count: name + value + 32 per field).
pub const H2_HEADER_LIST_LIMIT: usize = MAX_HEADER_BYTES + 10 * 32;
/// The header list h2 decodes before refusing the stream itself (no body then).
pub const H2_HEADER_LIST_CAP: usize = 2 * H2_HEADER_LIST_LIMIT;

/// Go's answer to an HTTP/1.1 head over the limit (`net/http`'s `errorHeaders`, plus a
/// length).
const H1_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Length: 35\r\nConnection: close\r\n\r\n\
431 Request Header Fields Too Large";

/// kapi's answer to an HTTP/1.1 URL over the `http` crate's limit.
const H1_414: &[u8] = b"HTTP/1.1 414 URI Too Long\r\n\
Content-Type: application/json\r\nContent-Length: 174\r\nConnection: close\r\n\r\n\
{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\
\"message\":\"Request-URI Too Long: the URL is longer than 65534 bytes, which kapi does not take\",\
\"code\":414}";

/// Go's HTTP/2 431 body (`handleHeaderListTooLong`).
const H2_431_BODY: &str = "<h1>HTTP Error 431</h1><p>Request Header Field(s) Too Large</p>";

/// What to write instead of `written`, when it is hyper's automatic answer to a head it
/// refused (a short head, status 431 or 414, no body). `written` is the first write
/// after the connection's requests were all answered.
pub fn h1_answer(written: &[u8]) -> Option<&'static [u8]> {
    if written.len() > 512 || !written.ends_with(b"\r\n\r\n") {
        return None;
    }
    if written.starts_with(b"HTTP/1.1 431 ") {
        Some(H1_431)
    } else if written.starts_with(b"HTTP/1.1 414 ") {
        Some(H1_414)
    } else {
        None
    }
}

/// Upstream's answer when `req`'s head is over its limit: on HTTP/1.1 the head's size as
/// sent (request line, `name: value` lines, the blank line; whitespace as written by
/// common clients), on HTTP/2 the header list's size as hpack counts it (name + value +
/// 32 per field, pseudo-headers included).
pub fn too_large<B>(req: &http::Request<B>) -> Option<http::Response<Bytes>> {
    if req.version() == http::Version::HTTP_2 {
        (h2_header_list_size(req) > H2_HEADER_LIST_LIMIT).then(h2_431)
    } else {
        (h1_head_size(req) > H1_HEAD_LIMIT).then(h1_431)
    }
}

fn h1_head_size<B>(req: &http::Request<B>) -> usize {
    let target = req.uri().path_and_query().map_or(1, |p| p.as_str().len());
    let mut size = req.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len() + 2;
    for (name, value) in req.headers() {
        size += name.as_str().len() + 2 + value.len() + 2;
    }
    size
}

fn h2_header_list_size<B>(req: &http::Request<B>) -> usize {
    const FIELD: usize = 32;
    let uri = req.uri();
    let mut size = ":method".len() + req.method().as_str().len() + FIELD;
    size += ":path".len() + uri.path_and_query().map_or(1, |p| p.as_str().len()) + FIELD;
    size += uri.scheme_str().map_or(0, |s| ":scheme".len() + s.len() + FIELD);
    size += uri.authority().map_or(0, |a| ":authority".len() + a.as_str().len() + FIELD);
    for (name, value) in req.headers() {
        size += name.as_str().len() + value.len() + FIELD;
    }
    size
}

/// Go's HTTP/1.1 answer, from the handler side (hyper closes the connection after it).
fn h1_431() -> http::Response<Bytes> {
    let mut resp = http::Response::new(Bytes::from_static(&H1_431[H1_431.len() - 35..]));
    *resp.status_mut() = http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
    resp
}

/// Go's HTTP/2 answer to a header list over the limit.
fn h2_431() -> http::Response<Bytes> {
    let mut resp = http::Response::new(Bytes::from_static(H2_431_BODY.as_bytes()));
    *resp.status_mut() = http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(answer: &[u8]) -> (String, &[u8]) {
        let end = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        (String::from_utf8(answer[..end].to_vec()).unwrap(), &answer[end..])
    }

    #[test]
    fn answers_carry_their_exact_content_length() {
        for answer in [H1_431, H1_414] {
            let (head, body) = split(answer);
            assert!(head.contains(&format!("Content-Length: {}\r\n", body.len())), "{head}");
        }
        let (_, body) = split(H1_414);
        let status: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(status["code"], 414);
        assert_eq!(status["kind"], "Status");
    }

    #[test]
    fn only_hypers_bare_answers_are_replaced() {
        let hyper_431 = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\
content-length: 0\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n";
        assert_eq!(h1_answer(hyper_431), Some(H1_431));
        let hyper_414 = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(h1_answer(hyper_414), Some(H1_414));
        // A response with a body, another status, or a head cut short is left alone.
        assert_eq!(h1_answer(b"HTTP/1.1 431 Request Header Fields Too Large\r\n\r\nx"), None);
        assert_eq!(h1_answer(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"), None);
        assert_eq!(h1_answer(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), None);
    }

    fn padded(version: http::Version, uri: &str, pad: usize) -> http::Request<()> {
        let req = http::Request::get(uri).version(version).header("x-pad", "a".repeat(pad));
        req.body(()).unwrap()
    }

    #[test]
    fn http2_header_lists_are_counted_as_hpack_counts_them() {
        let fixed = ":method".len() + 3 + ":path".len() + 4 + ":scheme".len() + 5;
        let fixed = fixed + ":authority".len() + 9 + "x-pad".len() + 5 * 32;
        let fits = H2_HEADER_LIST_LIMIT - fixed;
        let req = |pad| padded(http::Version::HTTP_2, "https://127.0.0.1/api", pad);
        assert!(too_large(&req(fits)).is_none());
        let resp = too_large(&req(fits + 1)).unwrap();
        assert_eq!(resp.status(), 431);
        assert_eq!(resp.body().as_ref(), H2_431_BODY.as_bytes());
    }

    #[test]
    fn http1_heads_are_counted_as_sent() {
        // "GET /api HTTP/1.1\r\n" "x-pad: ...\r\n" "\r\n"
        let fixed = "GET /api HTTP/1.1\r\n".len() + "x-pad: \r\n".len() + 2;
        let fits = H1_HEAD_LIMIT - fixed;
        let req = |pad| padded(http::Version::HTTP_11, "/api", pad);
        assert!(too_large(&req(fits)).is_none());
        let resp = too_large(&req(fits + 1)).unwrap();
        assert_eq!(resp.status(), 431);
        assert_eq!(resp.body().as_ref(), b"431 Request Header Fields Too Large");
        assert_eq!(resp.headers()["connection"], "close");
    }
}
