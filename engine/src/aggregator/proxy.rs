//! Proxying a request to the extension server of its APIService (upstream's
//! `proxyHandler` with its auth-proxy round tripper): runs after authentication and
//! authorization, for every `/apis/GROUP/VERSION[/...]` of a non-local APIService.
//!
//! The forwarded request keeps the method, path, query and end-to-end headers; the
//! caller's credentials (`Authorization`) and any `X-Remote-*` header it sent are
//! dropped, and its identity is set as upstream's front proxy sets it: `X-Remote-User`,
//! `X-Remote-Uid` (when there is one), one `X-Remote-Group` per group and one
//! `X-Remote-Extra-<key>` per extra value (the key percent-escaped as upstream escapes
//! it). Bodies stream both ways; request bodies of requests that are not long-running
//! are bounded by `--max-request-body-bytes` (413 when declared larger). The answer's
//! status, headers (hop-by-hop ones removed) and body are passed through as they
//! arrive (a watch ends when shutdown begins). An APIService that is not available is answered as upstream answers it: 503
//! `service unavailable` (plain text, from Go's `http.Error`); a failed round trip is
//! 503 with the error.

use super::Extension;
use super::client::OutBody;
use crate::app::App;
use crate::auth::UserInfo;
use crate::body::{Response, ResponseBody};
use crate::request::RequestInfo;
use crate::status::ApiError;
use futures_util::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue};
use http_body_util::BodyExt;

pub const USER_HEADER: &str = "X-Remote-User";
pub const UID_HEADER: &str = "X-Remote-Uid";
pub const GROUP_HEADER: &str = "X-Remote-Group";
pub const EXTRA_PREFIX: &str = "X-Remote-Extra-";

/// Hop-by-hop headers (RFC 7230 §6.1 and Go's reverse proxy list): never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Drop hop-by-hop headers, and those the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|n| n.trim().to_ascii_lowercase()))
        .filter(|n| !n.is_empty())
        .collect();
    for n in HOP_BY_HOP.iter().copied().chain(named.iter().map(String::as_str)) {
        headers.remove(n);
    }
}

/// Upstream's `headerKeyEscape`: bytes that are not legal in a header name, and `%`,
/// percent-encoded.
pub fn escape_extra_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        let legal = b.is_ascii_alphanumeric() || b"!#$&'*+-.^_`|~".contains(&b);
        if legal {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The headers sent to the extension server for a request with `incoming` headers by
/// `user` from `peer`.
pub fn forwarded_headers(
    incoming: &HeaderMap,
    user: &UserInfo,
    peer: Option<std::net::IpAddr>,
) -> HeaderMap {
    let mut h = incoming.clone();
    strip_hop_by_hop(&mut h);
    h.remove(http::header::AUTHORIZATION);
    h.remove(http::header::HOST);
    let remote: Vec<HeaderName> =
        h.keys().filter(|k| k.as_str().starts_with("x-remote-")).cloned().collect();
    for k in remote {
        h.remove(k);
    }
    let mut add = |name: &str, value: &str| {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
            h.append(n, v);
        }
    };
    add(USER_HEADER, &user.name);
    if !user.uid.is_empty() {
        add(UID_HEADER, &user.uid);
    }
    for g in &user.groups {
        add(GROUP_HEADER, g);
    }
    for (k, values) in &user.extra {
        let name = format!("{EXTRA_PREFIX}{}", escape_extra_key(k));
        for v in values {
            add(&name, v);
        }
    }
    if let Some(ip) = peer {
        let prior = h.get("x-forwarded-for").and_then(|v| v.to_str().ok()).map(str::to_string);
        let value = match prior {
            Some(p) => format!("{p}, {ip}"),
            None => ip.to_string(),
        };
        add_or_replace(&mut h, "x-forwarded-for", &value);
    }
    h
}

fn add_or_replace(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// Go's `http.Error`: a plain-text answer.
pub fn text_error(code: u16, message: &str) -> Response {
    http::Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header("x-content-type-options", "nosniff")
        .body(ResponseBody::full(format!("{message}\n")))
        .unwrap_or_else(|_| http::Response::new(ResponseBody::empty()))
}

/// Forward the request to `ext`'s server and pass its answer back.
pub async fn forward(
    app: &App,
    ext: &Extension,
    parts: http::request::Parts,
    body: hyper::body::Incoming,
    user: &UserInfo,
    peer: std::net::IpAddr,
    info: &RequestInfo,
) -> Response {
    let (Some(target), true) = (ext.target.clone(), ext.available) else {
        return text_error(503, "service unavailable");
    };
    let Some(client) = app.aggregator() else {
        return text_error(503, "service unavailable");
    };
    let long_running = crate::server::timeout::is_long_running(info);
    let limit = app.options.max_request_body_bytes;
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if !long_running && declared.is_some_and(|n| n > limit) {
        let e =
            ApiError::RequestEntityTooLarge(format!("Request entity too large: limit is {limit}"));
        return crate::negotiation::error_response(&e, crate::negotiation::Output::Json);
    }
    let body: OutBody = if long_running {
        body.map_err(Into::into).boxed_unsync()
    } else {
        http_body_util::Limited::new(body, limit).boxed_unsync()
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let mut req = match http::Request::builder().method(parts.method).uri(path).body(body) {
        Ok(r) => r,
        Err(e) => return text_error(400, &e.to_string()),
    };
    *req.headers_mut() = forwarded_headers(&parts.headers, user, Some(peer));
    super::client::set_host(&target, req.headers_mut());
    let head_timeout = (!long_running).then_some(app.options.request_timeout);
    let head = match client.send(target, req, head_timeout).await {
        Ok(h) => h,
        Err(e) => return text_error(503, &e),
    };
    let mut headers = head.headers;
    strip_hop_by_hop(&mut headers);
    let stream = futures_util::stream::unfold(head.body, |mut rx| async move {
        rx.recv().await.map(|chunk| (crate::body::Chunk::from(chunk), rx))
    });
    // A long-running answer (a watch) ends when shutdown begins, as kapi's own watches do.
    let shutdown = app.shutdown.clone();
    let stream = stream.take_until(async move {
        let _ = shutdown.recv_async().await;
    });
    let mut resp = http::Response::new(ResponseBody::Stream(stream.boxed_local()));
    *resp.status_mut() = head.status;
    *resp.headers_mut() = headers;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(h: &HeaderMap, name: &str) -> Vec<String> {
        h.get_all(name).iter().map(|v| v.to_str().unwrap().to_string()).collect()
    }

    #[test]
    fn identity_replaces_credentials_and_spoofed_headers() {
        let mut incoming = HeaderMap::new();
        incoming.insert("authorization", HeaderValue::from_static("Bearer secret"));
        incoming.insert("x-remote-user", HeaderValue::from_static("mallory"));
        incoming.insert("x-remote-extra-scopes", HeaderValue::from_static("all"));
        incoming.insert("accept", HeaderValue::from_static("application/json"));
        incoming.insert("connection", HeaderValue::from_static("keep-alive, x-hop"));
        incoming.insert("x-hop", HeaderValue::from_static("1"));
        incoming.insert("host", HeaderValue::from_static("kapi:6443"));
        let mut user = UserInfo {
            name: "alice".into(),
            uid: "42".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            ..Default::default()
        };
        user.extra.insert("example.com/Scope Key%".into(), vec!["a".into(), "b".into()]);
        let h = forwarded_headers(&incoming, &user, Some("10.0.0.7".parse().unwrap()));
        assert!(h.get("authorization").is_none());
        assert!(h.get("host").is_none());
        assert!(h.get("connection").is_none() && h.get("x-hop").is_none());
        assert!(h.get("x-remote-extra-scopes").is_none());
        assert_eq!(names(&h, "x-remote-user"), ["alice"]);
        assert_eq!(names(&h, "x-remote-uid"), ["42"]);
        assert_eq!(names(&h, "x-remote-group"), ["system:masters", "system:authenticated"]);
        assert_eq!(names(&h, "x-remote-extra-example.com%2FScope%20Key%25"), ["a", "b"]);
        assert_eq!(names(&h, "accept"), ["application/json"]);
        assert_eq!(names(&h, "x-forwarded-for"), ["10.0.0.7"]);
    }

    #[test]
    fn extra_keys_escape_as_upstream() {
        assert_eq!(escape_extra_key("scopes"), "scopes");
        assert_eq!(escape_extra_key("a/b c%d"), "a%2Fb%20c%25d");
        assert_eq!(escape_extra_key("k8s.io_x-y~z"), "k8s.io_x-y~z");
    }
}
