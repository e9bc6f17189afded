//! Auditing as upstream kube-apiserver audits: every request gets an audit ID (the
//! client's `Audit-ID` header, else a new UUID), returned in the `Audit-Id` response
//! header; with a policy (`--audit-policy-file`) and a backend (`--audit-log-path`,
//! `--audit-webhook-config-file`) each request the policy gives a level above `None`
//! produces events at its stages, sent to every backend.
//!
//! - [`policy`]: the Policy file and its first-match evaluation.
//! - [`event`]: the Event and its upstream JSON encoding.
//! - [`buffered`]: the bounded queue to a backend's thread (batch / blocking modes).
//! - [`log`], [`webhook`]: the two backends.
//! - [`options`]: the `--audit-*` flags.
//!
//! Stages: `RequestReceived` once the user is known and authorized is about to be asked;
//! `ResponseStarted` for long-running requests (watches) when the head goes out;
//! `ResponseComplete` when the response is done (for a streamed body, when it ends). A
//! request that fails authentication gets one `ResponseStarted` event with an empty
//! user, as upstream's failed-authentication audit.
//!
//! Invariants: a serving core only builds events and queues them (bounded; batch mode
//! drops and counts when full); bodies are kept as refcounted bytes and parsed on the
//! backend thread; levels below `Request` never write a body.

pub mod buffered;
pub mod event;
pub mod log;
pub mod options;
pub mod policy;
pub mod webhook;

use crate::auth::UserInfo;
use crate::body::{Response, ResponseBody};
use crate::request::RequestInfo;
use buffered::Queue;
use event::{Body, Event, Head, ObjectRef, ResponseStatus};
use futures_util::StreamExt;
use policy::{Attrs, Level, Policy, Stage};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The response header carrying the audit ID (Go writes `Audit-Id`).
pub const HEADER: &str = "audit-id";
const MAX_USER_AGENT: usize = 1024;
/// How long shutdown waits for each backend to write what it holds.
const FLUSH_LIMIT: Duration = Duration::from_secs(5);
/// The most body bytes queued events may hold; past it events go without their bodies
/// (annotated `audit.k8s.io/truncated`, as upstream's truncating backend marks them).
const MAX_HELD_BODY_BYTES: usize = 256 * 1024 * 1024;

/// The policy and the backends (shared by every core).
pub struct Auditor {
    policy: Option<Policy>,
    queues: Vec<Queue>,
    /// Body bytes held by events not yet written.
    held: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor").field("backends", &self.queues.len()).finish_non_exhaustive()
    }
}

impl Auditor {
    /// No auditing (audit IDs only).
    pub fn disabled() -> Auditor {
        Auditor { policy: None, queues: Vec::new(), held: Default::default() }
    }

    /// Load the policy and start the backends the flags ask for; any bad flag or file
    /// is an error (the server does not start).
    pub fn start(o: &options::AuditOptions) -> Result<Auditor, String> {
        let policy = o.audit_policy_file.as_deref().map(Policy::load).transpose()?;
        let mut queues = Vec::new();
        if let Some(path) = &o.audit_log_path {
            let (mode, batching) = o.log_batching()?;
            let cfg = log::LogConfig {
                path: path.clone(),
                max_age_days: o.audit_log_maxage,
                max_backups: o.audit_log_maxbackup,
                max_size_mb: o.audit_log_maxsize,
            };
            let (q, rx) = Queue::new("log", mode, batching.buffer_size);
            let batching = match mode {
                buffered::Mode::Batch => batching,
                _ => buffered::BatchConfig {
                    max_size: 1,
                    max_wait: Duration::ZERO,
                    throttle: None,
                    ..batching
                },
            };
            log::start(&cfg, batching, rx)?;
            queues.push(q);
        }
        if let Some(path) = &o.audit_webhook_config_file {
            let (mode, batching) = o.webhook_batching()?;
            let target = webhook::load_kubeconfig(path)?;
            let (q, rx) = Queue::new("webhook", mode, batching.buffer_size);
            webhook::start(target, mode, batching, o.audit_webhook_initial_backoff, rx)?;
            queues.push(q);
        }
        if policy.is_some() && queues.is_empty() {
            tracing::warn!("--audit-policy-file is set but no audit backend: nothing is audited");
        }
        Ok(Auditor { policy, queues, held: Default::default() })
    }

    /// Whether requests are audited at all.
    pub fn enabled(&self) -> bool {
        self.policy.is_some() && !self.queues.is_empty()
    }

    /// Send `ev` to every backend; false when a blocking-strict backend failed it.
    async fn process(&self, ev: Event) -> bool {
        crate::metrics::audit_event();
        let ev = Arc::new(self.budget(ev));
        let mut ok = true;
        for q in &self.queues {
            ok &= q.process(ev.clone()).await;
        }
        ok
    }

    /// Send `ev` without waiting (a response body ended).
    fn offer(&self, ev: Event) {
        crate::metrics::audit_event();
        let ev = Arc::new(self.budget(ev));
        for q in &self.queues {
            q.offer(ev.clone());
        }
    }

    /// Count `ev`'s bodies in the budget, or drop them (marked truncated) when it is spent.
    fn budget(&self, mut ev: Event) -> Event {
        let bytes = ev.request_body.as_ref().map_or(0, |b| b.bytes.len())
            + ev.response_body.as_ref().map_or(0, |b| b.bytes.len());
        if bytes == 0 {
            return ev;
        }
        match event::Hold::take(&self.held, bytes, MAX_HELD_BODY_BYTES) {
            Some(hold) => ev.hold = Some(Arc::new(hold)),
            None => {
                ev.request_body = None;
                ev.response_body = None;
                ev.annotations.push(("audit.k8s.io/truncated".into(), "true".into()));
                ev.annotations.sort_by(|x, y| x.0.cmp(&y.0));
            }
        }
        ev
    }

    /// Write what the backends hold (shutdown; each waits at most a few seconds).
    pub fn shutdown(&self) {
        for q in &self.queues {
            q.flush(FLUSH_LIMIT);
        }
    }
}

/// One request's audit state, from its first byte to its response's end.
#[derive(Debug)]
pub struct Request {
    /// The audit ID (client's `Audit-ID` or a new UUID).
    pub id: String,
    received: SystemTime,
    active: Option<Box<Active>>,
}

#[derive(Debug)]
struct Active {
    head: Arc<Head>,
    omit: Vec<Stage>,
    annotations: Vec<event::Annotation>,
    request_body: Option<Body>,
    /// Failed authentication: one ResponseStarted event, with this message.
    unauthenticated: Option<String>,
}

impl Request {
    /// Start: the audit ID and the time the request arrived.
    pub fn new(headers: &http::HeaderMap) -> Request {
        let id = headers
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            // Kept as sent (upstream does not truncate it; the head limit bounds it).
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        Request { id, received: SystemTime::now(), active: None }
    }

    /// Decide the level for `user` (None: unauthenticated) and, for an audited
    /// authenticated request, write `RequestReceived`; false when a blocking-strict
    /// backend failed it (the request is refused, counted as rejected).
    pub async fn begin(
        &mut self,
        app: &crate::app::App,
        parts: &http::request::Parts,
        peer: std::net::IpAddr,
        info: &RequestInfo,
        user: Option<&UserInfo>,
    ) -> bool {
        let auditor = &app.audit;
        let Some(policy) = auditor.policy.as_ref().filter(|_| auditor.enabled()) else {
            return true;
        };
        let groups = user.map(|u| u.groups.as_slice()).unwrap_or(&[]);
        let attrs = Attrs {
            user: user.map(|u| (u.name.as_str(), groups)),
            verb: &info.verb,
            resource_request: info.is_resource,
            path: parts.uri.path(),
            group: &info.group,
            namespace: namespace_of(info),
            resource: &info.resource,
            subresource: info.subresource.as_deref().unwrap_or(""),
            name: info.name.as_deref().unwrap_or(""),
        };
        let decision = policy.evaluate(&attrs);
        crate::metrics::audit_level(decision.level.as_str());
        if decision.level == Level::None {
            return true;
        }
        let head =
            head(self, parts, peer, info, user, decision.level, decision.omit_managed_fields);
        self.active = Some(Box::new(Active {
            head: Arc::new(head),
            omit: decision.omit_stages,
            annotations: Vec::new(),
            request_body: None,
            unauthenticated: None,
        }));
        if user.is_none() {
            return true;
        }
        let Some(ev) = self.event(Stage::RequestReceived, None, None) else { return true };
        let ok = auditor.process(ev).await;
        if !ok {
            crate::metrics::audit_rejected();
        }
        ok
    }

    /// A request that failed authentication: audited as upstream, with the methods tried.
    pub async fn unauthenticated(
        &mut self,
        app: &crate::app::App,
        parts: &http::request::Parts,
        peer: std::net::IpAddr,
        info: &RequestInfo,
        client_cert: bool,
    ) {
        self.begin(app, parts, peer, info, None).await;
        if let Some(a) = self.active.as_mut() {
            a.unauthenticated = Some(auth_methods(&parts.headers, info, client_cert));
        }
    }

    /// The impersonated user (set by impersonation, after authorization of the
    /// requester): written in `impersonatedUser` from the next stage on.
    pub fn impersonated(&mut self, user: &UserInfo) {
        if let Some(a) = self.active.as_mut() {
            Arc::make_mut(&mut a.head).impersonated_user = Some(user.clone());
        }
    }

    /// Whether this request is audited (an event will be written for it).
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// The authorizers' answer (`authorization.k8s.io/decision` and `/reason`).
    pub fn authorized(&mut self, allowed: bool, reason: &str) {
        if let Some(a) = self.active.as_mut() {
            let decision = if allowed { "allow" } else { "forbid" };
            a.annotations.push(("authorization.k8s.io/decision".into(), decision.into()));
            a.annotations.push(("authorization.k8s.io/reason".into(), reason.into()));
            a.annotations.sort_by(|x, y| x.0.cmp(&y.0));
        }
    }

    /// The admission plugins' audit annotations (a key already there is kept, as
    /// upstream keeps the first value).
    pub fn admitted(&mut self, notes: Vec<(String, String)>) {
        let Some(a) = self.active.as_mut() else { return };
        for (k, v) in notes {
            if !a.annotations.iter().any(|(key, _)| *key == k) {
                a.annotations.push((k.into(), v));
            }
        }
        a.annotations.sort_by(|x, y| x.0.cmp(&y.0));
    }

    /// The request body, kept for `requestObject` (Request level and above) or for the
    /// object's name at Metadata level (creates and updates).
    pub fn request_body(&mut self, body: &bytes::Bytes, headers: &http::HeaderMap) {
        let Some(a) = self.active.as_mut() else { return };
        let wanted =
            a.head.level >= Level::Request || matches!(a.head.verb.as_str(), "create" | "update");
        if wanted && !body.is_empty() {
            a.request_body =
                Some(Body { bytes: body.clone(), content_type: content_type(headers) });
        }
    }

    /// The response: `Audit-Id` set, its events written (`ResponseStarted` for
    /// long-running requests; `ResponseComplete` now, or when a streamed body ends).
    pub async fn finish(
        self,
        app: &crate::app::App,
        mut resp: Response,
        long_running: bool,
    ) -> Response {
        if let Ok(v) = http::HeaderValue::from_str(&self.id) {
            resp.headers_mut().insert(HEADER, v);
        }
        if self.active.is_none() {
            return resp;
        }
        let code = resp.status().as_u16();
        let unauthenticated = self.active.as_ref().and_then(|a| a.unauthenticated.clone());
        let response_body = self.response_body(&resp, code);
        if let Some(message) = unauthenticated {
            let status = ResponseStatus { code, message, ..Default::default() };
            if let Some(ev) = self.event(Stage::ResponseStarted, Some(status), response_body) {
                app.audit.process(ev).await;
            }
            return resp;
        }
        let status = ResponseStatus { code, ..Default::default() };
        if long_running
            && let Some(ev) = self.event(Stage::ResponseStarted, Some(status.clone()), None)
        {
            app.audit.process(ev).await;
        }
        let streamed = matches!(resp.body(), ResponseBody::Stream(_));
        if !streamed {
            if let Some(ev) = self.event(Stage::ResponseComplete, Some(status), response_body) {
                app.audit.process(ev).await;
            }
            return resp;
        }
        let Some(ev) = self.event(Stage::ResponseComplete, Some(status), None) else { return resp };
        // A streamed LIST's body is gathered for RequestResponse; a watch's never is.
        let keep = !long_running && ev.head.level >= Level::RequestResponse;
        complete_on_end(app.audit.clone(), resp, ev, keep)
    }

    /// The request panicked: a `Panic` event (500, upstream's message) before the panic
    /// goes on.
    pub async fn panicked(self, app: &crate::app::App, payload: &(dyn std::any::Any + Send)) {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let status = ResponseStatus {
            code: 500,
            message: format!("APIServer panic'd: {why}"),
            status: "Failure",
            reason: "InternalError",
        };
        if let Some(ev) = self.event(Stage::Panic, Some(status), None) {
            app.audit.process(ev).await;
        }
    }

    /// The response body when the event needs it: every body at RequestResponse level,
    /// a failure's Status at any level.
    fn response_body(&self, resp: &Response, code: u16) -> Option<Body> {
        let a = self.active.as_ref()?;
        if a.head.level < Level::RequestResponse && (200..300).contains(&code) {
            return None;
        }
        let ResponseBody::Full(Some(b)) = resp.body() else { return None };
        Some(Body { bytes: b.clone(), content_type: content_type(resp.headers()) })
    }

    /// This request's event at `stage`, unless the policy omits the stage.
    fn event(
        &self,
        stage: Stage,
        status: Option<ResponseStatus>,
        response: Option<Body>,
    ) -> Option<Event> {
        let a = self.active.as_ref()?;
        if a.omit.contains(&stage) {
            return None;
        }
        let stage_timestamp =
            if stage == Stage::RequestReceived { a.head.received } else { SystemTime::now() };
        let response_body = response.filter(|_| stage != Stage::RequestReceived);
        let request_body = a.request_body.clone().filter(|_| stage != Stage::RequestReceived);
        Some(Event {
            head: a.head.clone(),
            stage,
            stage_timestamp,
            response_status: status,
            request_body,
            response_body,
            annotations: if stage == Stage::RequestReceived {
                Vec::new()
            } else {
                a.annotations.clone()
            },
            hold: None,
        })
    }
}

/// The most of a streamed response body kept for `responseObject` (beyond it the event
/// has none).
const MAX_STREAMED_BODY: usize = 16 * 1024 * 1024;

/// Write `ev` (ResponseComplete) when the response's body stream ends or is dropped;
/// with `keep`, the body's chunks (up to [`MAX_STREAMED_BODY`]) become its response body.
fn complete_on_end(auditor: Arc<Auditor>, resp: Response, ev: Event, keep: bool) -> Response {
    struct Guard {
        auditor: Arc<Auditor>,
        ev: Option<Event>,
        /// Chunks kept so far (None: not kept, or over the limit).
        body: Option<bytes::BytesMut>,
        content_type: String,
    }
    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(mut ev) = self.ev.take() {
                ev.stage_timestamp = SystemTime::now();
                ev.response_body = self.body.take().map(|b| Body {
                    bytes: b.freeze(),
                    content_type: std::mem::take(&mut self.content_type),
                });
                self.auditor.offer(ev);
            }
        }
    }
    let (parts, body) = resp.into_parts();
    let ResponseBody::Stream(stream) = body else { return Response::from_parts(parts, body) };
    let mut guard = Guard {
        auditor,
        ev: Some(ev),
        body: keep.then(bytes::BytesMut::new),
        content_type: content_type(&parts.headers),
    };
    let stream = stream.map(move |b| {
        if let Some(kept) = guard.body.as_mut() {
            if kept.len() + b.len() > MAX_STREAMED_BODY {
                guard.body = None;
            } else {
                b.pieces().iter().for_each(|p| kept.extend_from_slice(p));
            }
        }
        b
    });
    Response::from_parts(parts, ResponseBody::Stream(stream.boxed_local()))
}

fn content_type(headers: &http::HeaderMap) -> String {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string()
}

/// The event's fixed part (upstream's `LogRequestMetadata`).
fn head(
    r: &Request,
    parts: &http::request::Parts,
    peer: std::net::IpAddr,
    info: &RequestInfo,
    user: Option<&UserInfo>,
    level: Level,
    omit_managed_fields: bool,
) -> Head {
    let object_ref = info.is_resource.then(|| ObjectRef {
        resource: info.resource.clone(),
        namespace: namespace_of(info).to_string(),
        name: info.name.clone().unwrap_or_default(),
        api_group: info.group.clone(),
        api_version: info.version.clone(),
        subresource: info.subresource.clone().unwrap_or_default(),
        ..Default::default()
    });
    Head {
        level,
        audit_id: r.id.clone(),
        request_uri: parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
        verb: info.verb.clone(),
        user: user.cloned(),
        impersonated_user: None,
        source_ips: source_ips(&parts.headers, peer),
        user_agent: user_agent(&parts.headers),
        object_ref,
        received: r.received,
        omit_managed_fields,
    }
}

/// The request's namespace as upstream's request info has it: a namespace object's
/// own name for `/api/v1/namespaces/NAME[/status|/finalize]`.
fn namespace_of(info: &RequestInfo) -> &str {
    match (&info.namespace, info.name.as_deref()) {
        (Some(ns), _) => ns,
        (None, Some(name)) if info.group.is_empty() && info.resource == "namespaces" => name,
        _ => "",
    }
}

/// The user agent, cut at upstream's 1024 bytes with its `...TRUNCATED` suffix.
fn user_agent(headers: &http::HeaderMap) -> String {
    let ua = headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if ua.len() <= MAX_USER_AGENT {
        return ua.to_string();
    }
    let mut end = MAX_USER_AGENT;
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...TRUNCATED", &ua[..end])
}

/// Upstream's source IPs: `X-Forwarded-For`, then `X-Real-Ip` if new, then the peer
/// unless it is already the last.
pub fn source_ips(headers: &http::HeaderMap, peer: std::net::IpAddr) -> Vec<String> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut ips: Vec<std::net::IpAddr> =
        header("x-forwarded-for").split(',').filter_map(|p| p.trim().parse().ok()).collect();
    if let Ok(ip) = header("x-real-ip").trim().parse()
        && !ips.contains(&ip)
    {
        ips.push(ip);
    }
    if ips.last() != Some(&peer) {
        ips.push(peer);
    }
    ips.iter().map(ToString::to_string).collect()
}

/// Upstream's message for a failed authentication: the methods the request tried.
fn auth_methods(headers: &http::HeaderMap, info: &RequestInfo, client_cert: bool) -> String {
    let auth =
        headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("").trim();
    let mut methods = Vec::new();
    let scheme = auth.split(' ').next().unwrap_or("");
    if scheme.eq_ignore_ascii_case("basic") {
        methods.push("basic");
    }
    if auth.split(' ').count() > 1 && scheme.eq_ignore_ascii_case("bearer") {
        methods.push("bearer");
    }
    if info.param("access_token").is_some_and(|t| !t.trim().is_empty()) {
        methods.push("access_token");
    }
    if client_cert {
        methods.push("x509");
    }
    if methods.is_empty() {
        "Authentication failed, no credentials provided".into()
    } else {
        format!("Authentication failed, attempted: {}", methods.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ips_as_upstream() {
        let peer: std::net::IpAddr = "10.0.0.9".parse().unwrap();
        let mut h = http::HeaderMap::new();
        assert_eq!(source_ips(&h, peer), vec!["10.0.0.9"]);
        h.insert("x-forwarded-for", "1.1.1.1, bogus, 2.2.2.2".parse().unwrap());
        h.insert("x-real-ip", "1.1.1.1".parse().unwrap());
        assert_eq!(source_ips(&h, peer), vec!["1.1.1.1", "2.2.2.2", "10.0.0.9"]);
        h.insert("x-forwarded-for", "10.0.0.9".parse().unwrap());
        h.remove("x-real-ip");
        assert_eq!(source_ips(&h, peer), vec!["10.0.0.9"]);
    }

    #[test]
    fn a_namespace_object_is_in_its_own_namespace() {
        let info = crate::request::parse(&http::Method::GET, "/api/v1/namespaces/team", None);
        assert_eq!(namespace_of(&info), "team");
        let info = crate::request::parse(&http::Method::GET, "/api/v1/namespaces", None);
        assert_eq!(namespace_of(&info), "");
        let info = crate::request::parse(&http::Method::GET, "/api/v1/namespaces/a/pods/p", None);
        assert_eq!(namespace_of(&info), "a");
    }

    #[test]
    fn client_audit_ids_are_kept() {
        let mut h = http::HeaderMap::new();
        assert_eq!(Request::new(&h).id.len(), 36);
        h.insert("Audit-ID", "mine".parse().unwrap());
        assert_eq!(Request::new(&h).id, "mine");
    }

    #[test]
    fn long_user_agents_are_truncated() {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::USER_AGENT, "a".repeat(2000).parse().unwrap());
        let ua = user_agent(&h);
        assert_eq!(ua.len(), 1024 + "...TRUNCATED".len());
        assert!(ua.ends_with("a...TRUNCATED"));
    }

    #[test]
    fn failed_authentication_names_the_methods_tried() {
        let info = crate::request::parse(&http::Method::GET, "/api", None);
        let mut h = http::HeaderMap::new();
        assert_eq!(
            auth_methods(&h, &info, false),
            "Authentication failed, no credentials provided"
        );
        h.insert(http::header::AUTHORIZATION, "Bearer x".parse().unwrap());
        assert_eq!(auth_methods(&h, &info, true), "Authentication failed, attempted: bearer, x509");
    }
}
