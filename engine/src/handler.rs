//! The handler chain of one request: URL limits -> authentication (401; anonymous
//! requests are `system:anonymous`) and impersonation (403) -> health and version ->
//! request info -> authorization (403) -> the proxy
//! to an aggregated API server (`/apis/GROUP/VERSION/...` of a non-local APIService) ->
//! non-resource endpoints (discovery, OpenAPI) or a resource verb (`rest`), with the body
//! read under the request size limit (413); /metrics; request metrics around it all.

use crate::app::App;
use crate::body::{Chunk, Response, ResponseBody};
use crate::metrics;
use crate::negotiation::{self, Output};
use crate::server::ConnInfo;
use crate::status::ApiError;
use crate::{auth, discovery, health, request, rest};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Limited};

/// Longest accepted path plus query.
const MAX_URL_BYTES: usize = 64 * 1024;

/// Serve one request, recording its metrics (upstream's request metrics; a watch counts
/// as a long-running request until its stream ends).
pub async fn handle(
    app: &App,
    conn: &ConnInfo,
    req: http::Request<hyper::body::Incoming>,
) -> Response {
    let start = std::time::Instant::now();
    let mut audit = crate::audit::Request::new(req.headers());
    let info = request::parse(req.method(), req.uri().path(), req.uri().query());
    let labels = metrics_labels(&info, req.headers());
    let watch = info.verb == "watch";
    let gzip_ok = header(req.headers(), http::header::ACCEPT_ENCODING)
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let kind = if matches!(info.verb.as_str(), "get" | "list" | "watch") {
        "readOnly"
    } else {
        "mutating"
    };
    if !watch {
        metrics::inflight(kind, 1);
    }
    // Only a request log needs these copies.
    let log = (app.options.verbosity >= 3).then(|| {
        let agent = header(req.headers(), http::header::USER_AGENT).unwrap_or("").to_string();
        (req.uri().to_string(), agent)
    });
    let mut user = String::new();
    let limit = crate::server::timeout::limit(&info, app.options.request_timeout);
    let accept = header(req.headers(), http::header::ACCEPT).map(str::to_string);
    let served = serve(app, conn, req, &info, &mut user, &mut audit);
    // A panic is audited (stage Panic), then goes on.
    let served = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(served));
    let outcome = match limit {
        None => served.await,
        Some(t) => match monoio::time::timeout(t, served).await {
            Ok(outcome) => outcome,
            Err(_) => {
                let e = ApiError::Timeout(crate::server::timeout::MESSAGE.into());
                Ok(negotiation::error_response_for(&e, accept.as_deref()))
            }
        },
    };
    let resp = match outcome {
        Ok(resp) => resp,
        Err(panic) => {
            audit.panicked(app, panic.as_ref()).await;
            std::panic::resume_unwind(panic);
        }
    };
    let long_running = crate::server::timeout::is_long_running(&info);
    let resp = audit.finish(app, resp, long_running).await;
    if !watch {
        metrics::inflight(kind, -1);
    }
    let size = match resp.body() {
        ResponseBody::Full(b) => Some(b.as_ref().map_or(0, Bytes::len)),
        ResponseBody::Stream(_) | ResponseBody::Timed(..) => None,
    };
    let code = resp.status().as_u16();
    metrics::request_done(&labels, code, start.elapsed().as_secs_f64(), size);
    if let Some((uri, user_agent)) = log {
        tracing::info!(
            target: "kapi::httplog",
            verb = labels.verb,
            uri = %uri,
            code,
            latency = ?start.elapsed(),
            user_agent = %user_agent,
            user = %user,
            "HTTP"
        );
    }
    let resp = if gzip_ok { gzip(resp) } else { resp };
    if watch && code == 200 {
        return track_longrunning(resp, labels);
    }
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, body.timed())
}

/// Responses at least this large are gzip-compressed for clients that accept it
/// (upstream's threshold).
const GZIP_THRESHOLD: usize = 128 * 1024;

fn gzip(resp: Response) -> Response {
    if resp.headers().contains_key(http::header::CONTENT_ENCODING) {
        return resp;
    }
    let declared = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let big = match resp.body() {
        ResponseBody::Full(Some(b)) => b.len() >= GZIP_THRESHOLD,
        ResponseBody::Stream(_) => declared.is_some_and(|n| n >= GZIP_THRESHOLD),
        // Bodies are timed after compression.
        ResponseBody::Full(None) | ResponseBody::Timed(..) => false,
    };
    if !big {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    parts.headers.insert(http::header::CONTENT_ENCODING, http::HeaderValue::from_static("gzip"));
    let stream = match body {
        ResponseBody::Full(Some(b)) => futures_util::stream::iter([Chunk::from(b)]).boxed_local(),
        ResponseBody::Stream(s) => s,
        ResponseBody::Full(None) | ResponseBody::Timed(..) => {
            return Response::from_parts(parts, ResponseBody::empty());
        }
    };
    Response::from_parts(parts, ResponseBody::Stream(gzip_stream(stream).boxed_local()))
}

/// Compress a body stream chunk by chunk (bounded memory: one chunk and the encoder).
fn gzip_stream(
    inner: futures_util::stream::LocalBoxStream<'static, Chunk>,
) -> impl futures_util::Stream<Item = Chunk> {
    use std::io::Write as _;
    let enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    futures_util::stream::unfold(Some((inner, enc)), |state| async move {
        let (mut inner, mut enc) = state?;
        loop {
            match inner.next().await {
                Some(chunk) => {
                    if chunk.pieces().iter().any(|p| enc.write_all(p).is_err()) {
                        return None;
                    }
                    if !enc.get_ref().is_empty() {
                        let out = Chunk::from(std::mem::take(enc.get_mut()));
                        return Some((out, Some((inner, enc))));
                    }
                }
                None => {
                    let rest = enc.finish().ok()?;
                    return Some((Chunk::from(rest), None));
                }
            }
        }
    })
}

/// Count the watch as long-running until its body stream is dropped.
fn track_longrunning(resp: Response, labels: metrics::RequestLabels) -> Response {
    struct Guard(metrics::RequestLabels);
    impl Drop for Guard {
        fn drop(&mut self) {
            metrics::longrunning(&self.0, -1);
        }
    }
    let (parts, body) = resp.into_parts();
    let ResponseBody::Stream(stream) = body else { return Response::from_parts(parts, body) };
    metrics::longrunning(&labels, 1);
    let guard = Guard(labels);
    let stream = stream.map(move |b| {
        let _ = &guard;
        b
    });
    Response::from_parts(parts, ResponseBody::Stream(stream.boxed_local()))
}

/// Upstream's request metric labels of a request.
fn metrics_labels(
    info: &request::RequestInfo,
    headers: &http::HeaderMap,
) -> metrics::RequestLabels {
    let apply = header(headers, http::header::CONTENT_TYPE)
        .is_some_and(|c| c.starts_with("application/apply-patch"));
    let verb = match info.verb.as_str() {
        _ if !info.is_resource => method_label(&info.verb),
        "get" => "GET",
        "list" => "LIST",
        "watch" => "WATCH",
        "create" => "POST",
        "update" => "PUT",
        "patch" if apply => "APPLY",
        "patch" => "PATCH",
        "delete" => "DELETE",
        "deletecollection" => "DELETECOLLECTION",
        _ => "CONNECT",
    };
    let scope = match (info.is_resource, &info.name, &info.namespace) {
        (false, _, _) => "",
        (true, Some(_), _) => "resource",
        (true, None, Some(_)) => "namespace",
        (true, None, None) => "cluster",
    };
    metrics::RequestLabels {
        verb,
        dry_run: info.param("dryRun").is_some_and(|v| !v.is_empty()),
        group: info.group.clone(),
        version: info.version.clone(),
        resource: info.resource.clone(),
        subresource: info.subresource.clone().unwrap_or_default(),
        scope,
    }
}

fn method_label(method: &str) -> &'static str {
    match method {
        "get" => "GET",
        "head" => "HEAD",
        "post" => "POST",
        "put" => "PUT",
        "patch" => "PATCH",
        "delete" => "DELETE",
        "options" => "OPTIONS",
        _ => "other",
    }
}

async fn serve(
    app: &App,
    conn: &ConnInfo,
    req: http::Request<hyper::body::Incoming>,
    info: &request::RequestInfo,
    who: &mut String,
    audit: &mut crate::audit::Request,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path();
    let query = parts.uri.query();
    if path.len() + query.map_or(0, str::len) > MAX_URL_BYTES {
        let e = ApiError::BadRequest("request URL is too long".into());
        return negotiation::error_response(&e, Output::Json);
    }
    let (user, impersonated) = match authenticate(app, conn, &mut parts.headers).await {
        Ok((u, imp)) => {
            who.clone_from(&imp.as_ref().unwrap_or(&u).name);
            (u, imp)
        }
        Err(e) => {
            audit.unauthenticated(app, &parts, conn.peer.ip(), info, conn.cert.is_some()).await;
            // The body is read on first, as for 413: answering a client still sending
            // made HTTP/2 reset the stream (curl error 92). Negotiated as upstream's
            // `ErrorNegotiated` (a protobuf client gets protobuf).
            let mut body = body;
            drain(&mut body).await;
            let accept = header(&parts.headers, http::header::ACCEPT);
            return negotiation::error_response_for(&e, accept);
        }
    };
    let accept = header(&parts.headers, http::header::ACCEPT);
    // Audited as the authenticated user, with the one it impersonates beside it.
    if !audit.begin(app, &parts, conn.peer.ip(), info, Some(&user)).await {
        let e = ApiError::Internal("Internal error occurred: failed to store audit event".into());
        return negotiation::error_response_for(&e, accept);
    }
    if let Some(i) = &impersonated {
        audit.impersonated(i);
    }
    let user = impersonated.unwrap_or(user);
    // Priority and fairness after impersonation, before authorization (upstream's order).
    let admitted = match crate::flowcontrol::filter::admit(app, &user, info).await {
        Ok(a) => a,
        Err(resp) => {
            let mut body = body;
            drain(&mut body).await;
            return resp;
        }
    };
    let resp = authorized(app, conn, parts, body, info, &user, audit).await;
    admitted.respond(resp)
}

/// The rest of a request once it has its seats: authorization, then the handler.
async fn authorized(
    app: &App,
    conn: &ConnInfo,
    parts: http::request::Parts,
    body: hyper::body::Incoming,
    info: &request::RequestInfo,
    user: &auth::UserInfo,
    audit: &mut crate::audit::Request,
) -> Response {
    let path = parts.uri.path();
    let query = parts.uri.query();
    let accept = header(&parts.headers, http::header::ACCEPT);
    let attrs = crate::authz::Attributes::of(user, info);
    let authz_start = std::time::Instant::now();
    // The allow's reason only when it is audited (it costs a copy).
    let decided = if audit.is_active() {
        app.authorizer.authorize_request_explained(app, &attrs).await
    } else {
        app.authorizer.authorize_request(app, &attrs).await.map(|d| (d, String::new()))
    };
    metrics::phase("authorization", authz_start.elapsed());
    let decided = match decided {
        Ok((d, why)) => {
            match &d {
                auth::Decision::Allow => audit.authorized(true, &why),
                auth::Decision::Deny(why) => audit.authorized(false, why),
            }
            Ok(d)
        }
        Err(e) => {
            audit.authorized(false, &e);
            Err(e)
        }
    };
    let refusal = match decided {
        Ok(auth::Decision::Allow) => None,
        Ok(auth::Decision::Deny(why)) => Some(forbidden(&attrs, &why)),
        Err(e) => Some(ApiError::Internal(e)),
    };
    if let Some(e) = refusal {
        // Read on first, as for 401 and 413 (HTTP/2 would reset a stream still sending).
        let mut body = body;
        drain(&mut body).await;
        return negotiation::error_response_for(&e, accept);
    }
    // Health and version after authorization, as upstream (the bootstrap policy lets
    // everyone, anonymous requests included, read them: system:public-info-viewer).
    if let Some(resp) = health::handle(app, path, query) {
        return resp;
    }
    if path == "/version" || path == "/version/" {
        return discovery::version();
    }
    // Aggregation: a group/version of a non-local APIService goes to its server.
    if info.prefix == "apis" && !info.group.is_empty() {
        let served = app.served();
        if let Some(ext) = served.aggregated.remote(&info.group, &info.version) {
            let ext = ext.clone();
            let peer = conn.peer.ip();
            return crate::aggregator::proxy::forward(app, &ext, parts, body, user, peer, info)
                .await;
        }
    }
    if !info.is_resource {
        if path == "/metrics" && info.verb == "get" {
            return metrics_response(app);
        }
        if info.verb == "get"
            && let Some(resp) = auth::issuer::handle(app, path)
        {
            return resp;
        }
        if info.verb == "get"
            && let Some(text) = crate::flowcontrol::dump::handle(app, info).await
        {
            return plain_text(text);
        }
        if app.options.profiling && path.starts_with("/debug/pprof") && info.verb == "get" {
            return crate::debug::pprof::handle(path, query).await;
        }
        return discovery::handle(app, info, accept);
    }
    let read_start = std::time::Instant::now();
    let read = read_body(app, &parts, body).await;
    metrics::phase("read", read_start.elapsed());
    let body = match read {
        Ok(b) => b,
        Err(e) => return negotiation::error_response(&e, Output::Json),
    };
    audit.request_body(&body, &parts.headers);
    let sink = crate::admission::Sink::default();
    let ctx = rest::Request { app, info, headers: &parts.headers, body, user, sink: &sink };
    let mut resp = rest::handle(ctx).await;
    if let Some(notes) = resp.extensions_mut().remove::<crate::admission::AuditAnnotations>() {
        audit.admitted(notes.0);
    }
    resp
}

/// A 200 with a plain-text body (the flow control dumps).
fn plain_text(text: String) -> Response {
    http::Response::builder()
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(ResponseBody::full(text))
        .expect("static response")
}

/// The request's user (401), then the user it impersonates (403); the front-proxy and
/// impersonation headers are removed. A ServiceAccount token naming an object the
/// caches lack gets one more try once they applied what the store already sent (a
/// just-made write).
async fn authenticate(
    app: &App,
    conn: &ConnInfo,
    headers: &mut http::HeaderMap,
) -> Result<(auth::UserInfo, Option<auth::UserInfo>), ApiError> {
    let objects = auth::objects::CachedObjects(app);
    let authn = &app.authenticator;
    let cert = conn.cert.as_ref();
    let start = std::time::Instant::now();
    let first = authn.authenticate_async(cert, headers, &objects).await;
    metrics::phase("authentication", start.elapsed());
    let user = match first {
        Err(r) if r.missing => {
            objects.settle().await;
            authn.authenticate_async(cert, headers, &objects).await
        }
        other => other,
    }
    .map_err(|r| ApiError::Unauthorized(r.message))?;
    if let Some(rh) = &authn.request_header {
        rh.strip(headers);
    }
    let original = user.clone();
    let effective = auth::impersonation::apply_with(user, headers, app).await?;
    Ok(if effective == original { (original, None) } else { (original, Some(effective)) })
}

/// Upstream's 403 for a request the authorizers refused: `pods "p" is forbidden: User
/// "u" cannot get resource "pods" ...`, the reasons appended.
fn forbidden(a: &crate::authz::Attributes<'_>, reason: &str) -> ApiError {
    let mut msg = a.forbidden_message();
    if !reason.is_empty() {
        msg = format!("{msg}: {reason}");
    }
    let target = crate::status::Target {
        group: a.group.to_string(),
        resource: a.resource.to_string(),
        kind: String::new(),
        name: a.name.to_string(),
    };
    ApiError::ForbiddenTarget(target, msg)
}

fn metrics_response(app: &App) -> Response {
    http::Response::builder()
        .status(200)
        .header(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")
        .body(ResponseBody::full(metrics::render::render(app)))
        .unwrap_or_else(|_| http::Response::new(ResponseBody::empty()))
}

fn header(headers: &http::HeaderMap, name: http::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The request body, read under the size limit (upstream's 413 and message). A body
/// over it is read on and thrown away (up to [`MAX_DRAIN_BYTES`]) before the answer:
/// answering a client still sending made HTTP/2 reset the stream, and clients saw no
/// answer (curl error 92).
async fn read_body(
    app: &App,
    parts: &http::request::Parts,
    body: hyper::body::Incoming,
) -> Result<Bytes, ApiError> {
    let limit = app.options.max_request_body_bytes;
    let too_large =
        || ApiError::RequestEntityTooLarge(format!("Request entity too large: limit is {limit}"));
    let declared =
        header(&parts.headers, http::header::CONTENT_LENGTH).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_DRAIN_BYTES) {
        return Err(too_large());
    }
    let mut body = body;
    match Limited::new(&mut body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            drain(&mut body).await;
            Err(too_large())
        }
        Err(e) => Err(ApiError::BadRequest(format!("reading request body: {e}"))),
    }
}

/// A refused body is read on (and thrown away) up to this many bytes, so the answer
/// goes to a client that finished sending, as upstream's server reads on.
const MAX_DRAIN_BYTES: usize = 16 * 1024 * 1024;

/// Read and drop what is left of `body`, up to [`MAX_DRAIN_BYTES`].
async fn drain(body: &mut hyper::body::Incoming) {
    let mut seen = 0;
    while seen < MAX_DRAIN_BYTES {
        match body.frame().await {
            Some(Ok(f)) => seen += f.data_ref().map_or(0, Bytes::len),
            _ => return,
        }
    }
}
