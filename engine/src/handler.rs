//! The handler chain of one request: URL limits -> unauthenticated endpoints (health,
//! version) -> authentication (401) -> request info -> authorization (403) ->
//! non-resource endpoints (discovery, OpenAPI) or a resource verb (`rest`), with the body
//! read under the request size limit (413).

use crate::app::App;
use crate::body::Response;
use crate::negotiation::{self, Output};
use crate::server::ConnInfo;
use crate::status::ApiError;
use crate::{auth, discovery, health, request, rest};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};

/// Longest accepted path plus query.
const MAX_URL_BYTES: usize = 64 * 1024;

pub async fn handle(
    app: &App,
    conn: &ConnInfo,
    req: http::Request<hyper::body::Incoming>,
) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let query = parts.uri.query();
    let accept = header(&parts.headers, http::header::ACCEPT);
    if path.len() + query.map_or(0, str::len) > MAX_URL_BYTES {
        let e = ApiError::BadRequest("request URL is too long".into());
        return negotiation::error_response(&e, Output::Json);
    }
    if let Some(resp) = health::handle(app, path, query) {
        return resp;
    }
    if path == "/version" || path == "/version/" {
        return discovery::version();
    }
    let authz = header(&parts.headers, http::header::AUTHORIZATION);
    let user = match app.authenticator.authenticate(conn.cert_user.as_ref(), authz) {
        Ok(u) => u,
        Err(m) => {
            return negotiation::error_response(&ApiError::Unauthorized(m.into()), Output::Json);
        }
    };
    let info = request::parse(&parts.method, path, query);
    if let auth::Decision::Deny(why) = app.authorizer.authorize(&user, &info) {
        return negotiation::error_response(&ApiError::Forbidden(why), Output::Json);
    }
    if !info.is_resource {
        return discovery::handle(app, &info, accept);
    }
    let body = match read_body(app, &parts, body).await {
        Ok(b) => b,
        Err(e) => return negotiation::error_response(&e, Output::Json),
    };
    let ctx = rest::Request { app, info: &info, headers: &parts.headers, body, user: &user };
    rest::handle(ctx).await
}

fn header(headers: &http::HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn read_body(
    app: &App,
    parts: &http::request::Parts,
    body: hyper::body::Incoming,
) -> Result<Bytes, ApiError> {
    let limit = app.options.max_request_body_bytes;
    let too_large = || ApiError::RequestEntityTooLarge(format!("limit is {limit}"));
    let declared =
        header(&parts.headers, http::header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(too_large())
        }
        Err(e) => Err(ApiError::BadRequest(format!("reading request body: {e}"))),
    }
}
