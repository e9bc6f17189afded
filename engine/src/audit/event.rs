//! One audit event (audit.k8s.io/v1 `Event`) and its JSON encoding, field for field as
//! upstream's Go struct writes it: `kind`, `apiVersion`, `level`, `auditID`, `stage`,
//! `requestURI`, `verb`, `user`, `impersonatedUser`, `sourceIPs`, `userAgent`,
//! `objectRef`, `responseStatus`, `requestObject`, `responseObject`,
//! `requestReceivedTimestamp`, `stageTimestamp`, `annotations` (empty values left out as
//! Go's `omitempty` does; `user` always present; timestamps in MicroTime format).
//!
//! Serving cores only build an [`Event`] (the request's fixed part shared, bodies as
//! refcounted bytes); parsing bodies and encoding happen on the backend's thread.
//! Invariant: `requestObject` appears only at `Request` level or above and
//! `responseObject` only at `RequestResponse`, so a Secret's data is written only when the
//! policy asks for it; at `Metadata` a request body is read for its object's name, uid and
//! resourceVersion only.

use super::policy::{Level, Stage};
use crate::auth::UserInfo;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::SystemTime;

/// The object a request is about (from its URL, completed from its body).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectRef {
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub api_group: String,
    pub api_version: String,
    pub resource_version: String,
    pub subresource: String,
}

/// What does not change over a request's events.
#[derive(Debug, Clone)]
pub struct Head {
    pub level: Level,
    pub audit_id: String,
    pub request_uri: String,
    pub verb: String,
    /// None for a request that failed authentication (`"user":{}`).
    pub user: Option<UserInfo>,
    /// The impersonated user, when the request impersonates (set by impersonation).
    pub impersonated_user: Option<UserInfo>,
    pub source_ips: Vec<String>,
    pub user_agent: String,
    pub object_ref: Option<ObjectRef>,
    pub received: SystemTime,
    pub omit_managed_fields: bool,
}

/// A request or response body as it went over the wire.
#[derive(Debug, Clone)]
pub struct Body {
    pub bytes: Bytes,
    pub content_type: String,
}

/// The response status an event reports (the Status body's fields are added from the
/// response body when it is one).
#[derive(Debug, Clone, Default)]
pub struct ResponseStatus {
    pub code: u16,
    pub message: String,
    /// `status` and `reason` when no Status body gives them (a panic).
    pub status: &'static str,
    pub reason: &'static str,
}

/// An audit annotation: a fixed key (authorization, truncation) or a plugin's.
pub type Annotation = (std::borrow::Cow<'static, str>, String);

/// One event at one stage.
#[derive(Debug, Clone)]
pub struct Event {
    pub head: Arc<Head>,
    pub stage: Stage,
    pub stage_timestamp: SystemTime,
    pub response_status: Option<ResponseStatus>,
    pub request_body: Option<Body>,
    pub response_body: Option<Body>,
    /// Kept sorted by key (Go writes map keys in order).
    pub annotations: Vec<Annotation>,
    /// The bytes of bodies this event holds, counted against the auditor's budget
    /// until the event is gone.
    pub hold: Option<Arc<Hold>>,
}

/// Body bytes counted in a shared budget while held.
#[derive(Debug)]
pub struct Hold {
    counter: Arc<std::sync::atomic::AtomicUsize>,
    bytes: usize,
}

impl Hold {
    /// Count `bytes` in `counter` unless that would pass `limit`.
    pub fn take(
        counter: &Arc<std::sync::atomic::AtomicUsize>,
        bytes: usize,
        limit: usize,
    ) -> Option<Hold> {
        use std::sync::atomic::Ordering::Relaxed;
        let before = counter.fetch_add(bytes, Relaxed);
        if before + bytes > limit {
            counter.fetch_sub(bytes, Relaxed);
            return None;
        }
        Some(Hold { counter: counter.clone(), bytes })
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.counter.fetch_sub(self.bytes, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn micro_time(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    kapi_codec::time::rfc3339_micros(d.as_secs() as i64, d.subsec_nanos() as i32)
}

/// A body as a JSON tree: JSON as is, YAML and protobuf converted; anything else none.
pub fn parse_body(b: &Body) -> Option<Value> {
    let ct = b.content_type.split(';').next().unwrap_or("").trim();
    if b.bytes.is_empty() {
        return None;
    }
    if ct.ends_with("json") || ct.is_empty() {
        return serde_json::from_slice(&b.bytes).ok();
    }
    if ct.ends_with("yaml") {
        let text = std::str::from_utf8(&b.bytes).ok()?;
        return serde_norway::from_str(text).ok();
    }
    if ct == "application/vnd.kubernetes.protobuf" {
        return kapi_codec::protobuf::decode_object(&b.bytes).ok();
    }
    None
}

/// Only the metadata fields an `objectRef` takes, read from a JSON body without building
/// its tree (Metadata level: the rest of the body is never kept).
fn parse_ref_fields(b: &Body) -> Option<Value> {
    #[derive(serde::Deserialize)]
    struct Object {
        #[serde(default)]
        metadata: Fields,
    }
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Fields {
        name: Option<String>,
        namespace: Option<String>,
        uid: Option<String>,
        resource_version: Option<String>,
    }
    let ct = b.content_type.split(';').next().unwrap_or("").trim();
    if !(ct.ends_with("json") || ct.is_empty()) {
        return parse_body(b);
    }
    let o: Object = serde_json::from_slice(&b.bytes).ok()?;
    let m = o.metadata;
    Some(json!({"metadata": {
        "name": m.name, "namespace": m.namespace, "uid": m.uid, "resourceVersion": m.resource_version,
    }}))
}

/// Drop `metadata.managedFields` of an object and of a list's items.
fn strip_managed_fields(v: &mut Value) {
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    if let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) {
        for item in items {
            strip_managed_fields(item);
        }
    }
}

/// Fill what the URL did not give from the request object's metadata (upstream's
/// `LogRequestObject`).
fn complete_ref(r: &mut ObjectRef, obj: &Value) {
    let meta = |k: &str| obj.pointer(&format!("/metadata/{k}")).and_then(Value::as_str);
    let fill = |field: &mut String, v: Option<&str>| {
        if field.is_empty()
            && let Some(v) = v
        {
            *field = v.to_string();
        }
    };
    fill(&mut r.namespace, meta("namespace"));
    fill(&mut r.name, meta("name"));
    fill(&mut r.uid, meta("uid"));
    fill(&mut r.resource_version, meta("resourceVersion"));
}

/// The response status: the code, and a Status body's fields.
fn status_json(s: &ResponseStatus, status_body: Option<&Value>) -> Value {
    let mut m = Map::new();
    m.insert("metadata".into(), json!({}));
    let field = |k: &str| status_body.and_then(|b| b.get(k)).filter(|v| !is_empty(v));
    match field("status") {
        Some(v) => {
            m.insert("status".into(), v.clone());
        }
        None if !s.status.is_empty() => {
            m.insert("status".into(), json!(s.status));
        }
        None => {}
    }
    match field("message") {
        Some(v) => {
            m.insert("message".into(), v.clone());
        }
        None if !s.message.is_empty() => {
            m.insert("message".into(), json!(s.message));
        }
        None => {}
    }
    match field("reason") {
        Some(v) => {
            m.insert("reason".into(), v.clone());
        }
        None if !s.reason.is_empty() => {
            m.insert("reason".into(), json!(s.reason));
        }
        None => {}
    }
    if let Some(v) = field("details") {
        m.insert("details".into(), v.clone());
    }
    if s.code != 0 {
        m.insert("code".into(), json!(s.code));
    }
    Value::Object(m)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// A JSON object written field by field (keys are plain ASCII).
struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    fn new(out: &'a mut Vec<u8>) -> Obj<'a> {
        out.push(b'{');
        Obj { out, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn val<T: serde::Serialize + ?Sized>(&mut self, k: &str, v: &T) {
        self.key(k);
        let _ = serde_json::to_writer(&mut *self.out, v);
    }

    /// A string field, left out when empty (Go's omitempty).
    fn opt(&mut self, k: &str, v: &str) {
        if !v.is_empty() {
            self.val(k, v);
        }
    }

    fn end(self) {
        self.out.push(b'}');
    }
}

fn write_user(out: &mut Vec<u8>, u: Option<&UserInfo>) {
    let mut o = Obj::new(out);
    if let Some(u) = u {
        o.opt("username", &u.name);
        o.opt("uid", &u.uid);
        if !u.groups.is_empty() {
            o.val("groups", &u.groups);
        }
        if !u.extra.is_empty() {
            o.val("extra", &u.extra);
        }
    }
    o.end();
}

fn write_object_ref(out: &mut Vec<u8>, r: &ObjectRef) {
    let mut o = Obj::new(out);
    o.opt("resource", &r.resource);
    o.opt("namespace", &r.namespace);
    o.opt("name", &r.name);
    o.opt("uid", &r.uid);
    o.opt("apiGroup", &r.api_group);
    o.opt("apiVersion", &r.api_version);
    o.opt("resourceVersion", &r.resource_version);
    o.opt("subresource", &r.subresource);
    o.end();
}

impl Event {
    /// The event's upstream audit.k8s.io/v1 JSON, appended to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        let h = &*self.head;
        let mut request = match &self.request_body {
            Some(b) if h.level >= Level::Request => parse_body(b),
            Some(b) => parse_ref_fields(b),
            None => None,
        };
        let mut response = self.response_body.as_ref().and_then(parse_body);
        if h.omit_managed_fields {
            request.iter_mut().chain(response.iter_mut()).for_each(strip_managed_fields);
        }
        let mut o = Obj::new(out);
        o.val("kind", "Event");
        o.val("apiVersion", "audit.k8s.io/v1");
        o.val("level", h.level.as_str());
        o.val("auditID", &h.audit_id);
        o.val("stage", self.stage.as_str());
        o.val("requestURI", &h.request_uri);
        o.val("verb", &h.verb);
        o.key("user");
        write_user(o.out, h.user.as_ref());
        if let Some(u) = &h.impersonated_user {
            o.key("impersonatedUser");
            write_user(o.out, Some(u));
        }
        if !h.source_ips.is_empty() {
            o.val("sourceIPs", &h.source_ips);
        }
        o.opt("userAgent", &h.user_agent);
        if let Some(r) = &h.object_ref {
            let mut r = r.clone();
            if let Some(obj) = &request {
                complete_ref(&mut r, obj);
            }
            o.key("objectRef");
            write_object_ref(o.out, &r);
        }
        if let Some(s) = &self.response_status {
            let status = response.as_ref().filter(|v| v.get("kind") == Some(&json!("Status")));
            o.val("responseStatus", &status_json(s, status));
        }
        if h.level >= Level::Request
            && let Some(obj) = &request
        {
            o.val("requestObject", obj);
        }
        if h.level >= Level::RequestResponse
            && let Some(obj) = &response
        {
            o.val("responseObject", obj);
        }
        o.val("requestReceivedTimestamp", &micro_time(h.received));
        o.val("stageTimestamp", &micro_time(self.stage_timestamp));
        if !self.annotations.is_empty() {
            o.key("annotations");
            let mut a = Obj::new(o.out);
            for (k, v) in &self.annotations {
                a.val(k.as_ref(), v);
            }
            a.end();
        }
        o.end();
    }

    /// The event as a JSON tree.
    pub fn to_json(&self) -> Value {
        let mut out = Vec::new();
        self.write_json(&mut out);
        serde_json::from_slice(&out).unwrap_or(Value::Null)
    }

    /// One JSON line (the log backend's `json` format).
    pub fn to_line(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024);
        self.write_json(&mut out);
        out.push(b'\n');
        out
    }
}

/// An `EventList` of `events` (what the webhook backend posts).
pub fn event_list(events: &[Arc<Event>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024 * events.len());
    out.extend_from_slice(
        br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":["#,
    );
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        e.write_json(&mut out);
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::Duration;

    fn head(level: Level) -> Head {
        Head {
            level,
            audit_id: "b8b1b6f4-7c4d-4a59-9f55-1b2e0c9a3d10".into(),
            request_uri: "/api/v1/namespaces/default/secrets".into(),
            verb: "create".into(),
            user: Some(UserInfo {
                name: "admin".into(),
                uid: String::new(),
                groups: vec!["system:masters".into(), "system:authenticated".into()],
                extra: Default::default(),
            }),
            impersonated_user: None,
            source_ips: vec!["127.0.0.1".into()],
            user_agent: "kubectl/v1.35.0".into(),
            object_ref: Some(ObjectRef {
                resource: "secrets".into(),
                namespace: "default".into(),
                api_version: "v1".into(),
                ..Default::default()
            }),
            received: SystemTime::UNIX_EPOCH + Duration::from_micros(1_796_632_800_123_456),
            omit_managed_fields: false,
        }
    }

    pub(crate) fn event(level: Level) -> Event {
        let secret = r#"{"kind":"Secret","apiVersion":"v1","metadata":{"name":"s","managedFields":[{"manager":"m"}]},"data":{"k":"c2VjcmV0"}}"#;
        Event {
            head: Arc::new(head(level)),
            stage: Stage::ResponseComplete,
            stage_timestamp: SystemTime::UNIX_EPOCH + Duration::from_micros(1_796_632_800_223_456),
            response_status: Some(ResponseStatus { code: 201, ..Default::default() }),
            request_body: Some(Body {
                bytes: Bytes::from_static(secret.as_bytes()),
                content_type: "application/json".into(),
            }),
            response_body: Some(Body {
                bytes: Bytes::from_static(secret.as_bytes()),
                content_type: "application/json".into(),
            }),
            annotations: vec![
                ("authorization.k8s.io/decision".into(), "allow".into()),
                ("authorization.k8s.io/reason".into(), String::new()),
            ],
            hold: None,
        }
    }

    #[test]
    fn metadata_events_encode_as_upstream_without_bodies() {
        let line = String::from_utf8(event(Level::Metadata).to_line()).unwrap();
        let want = concat!(
            r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","#,
            r#""auditID":"b8b1b6f4-7c4d-4a59-9f55-1b2e0c9a3d10","stage":"ResponseComplete","#,
            r#""requestURI":"/api/v1/namespaces/default/secrets","verb":"create","#,
            r#""user":{"username":"admin","groups":["system:masters","system:authenticated"]},"#,
            r#""sourceIPs":["127.0.0.1"],"userAgent":"kubectl/v1.35.0","#,
            r#""objectRef":{"resource":"secrets","namespace":"default","name":"s","apiVersion":"v1"},"#,
            r#""responseStatus":{"metadata":{},"code":201},"#,
            r#""requestReceivedTimestamp":"2026-12-07T08:40:00.123456Z","#,
            r#""stageTimestamp":"2026-12-07T08:40:00.223456Z","#,
            r#""annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}"#,
            "\n"
        );
        assert_eq!(line, want);
        assert!(!line.contains("c2VjcmV0"));
    }

    #[test]
    fn request_and_response_bodies_follow_the_level() {
        let req = event(Level::Request).to_json();
        assert!(req.get("requestObject").is_some());
        assert!(req.get("responseObject").is_none());
        let both = event(Level::RequestResponse).to_json();
        assert_eq!(both["responseObject"]["data"]["k"], "c2VjcmV0");
        assert_eq!(both["requestObject"]["metadata"]["managedFields"][0]["manager"], "m");
        let mut e = event(Level::RequestResponse);
        Arc::make_mut(&mut e.head).omit_managed_fields = true;
        let stripped = e.to_json();
        assert!(stripped["requestObject"]["metadata"].get("managedFields").is_none());
        assert!(stripped["responseObject"]["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn failures_carry_the_status_fields_and_unauthenticated_users_are_empty() {
        let mut e = event(Level::Metadata);
        let h = Arc::make_mut(&mut e.head);
        h.user = None;
        e.request_body = None;
        e.response_status =
            Some(ResponseStatus { code: 401, message: "ignored".into(), ..Default::default() });
        e.response_body = Some(Body {
            bytes: Bytes::from_static(br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#),
            content_type: "application/json".into(),
        });
        let v = e.to_json();
        assert_eq!(v["user"], json!({}));
        assert_eq!(
            serde_json::to_string(&v["responseStatus"]).unwrap(),
            r#"{"metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
        );
        assert!(v.get("responseObject").is_none());
    }

    #[test]
    fn protobuf_bodies_are_recorded_as_json() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}});
        let mut bytes = Vec::new();
        kapi_codec::protobuf::encode_object(&cm, &mut bytes).unwrap();
        let body = Body {
            bytes: Bytes::from(bytes),
            content_type: "application/vnd.kubernetes.protobuf".into(),
        };
        let v = parse_body(&body).unwrap();
        assert_eq!(v["data"]["k"], "v");
        assert_eq!(v["kind"], "ConfigMap");
    }

    #[test]
    fn panics_are_failures_with_an_internal_error() {
        let mut e = event(Level::RequestResponse);
        e.stage = Stage::Panic;
        e.response_body = None;
        e.response_status = Some(ResponseStatus {
            code: 500,
            message: "APIServer panic'd: boom".into(),
            status: "Failure",
            reason: "InternalError",
        });
        let v = e.to_json();
        assert_eq!(v["stage"], "Panic");
        assert_eq!(
            serde_json::to_string(&v["responseStatus"]).unwrap(),
            r#"{"metadata":{},"status":"Failure","message":"APIServer panic'd: boom","reason":"InternalError","code":500}"#
        );
    }

    #[test]
    fn holds_count_bytes_under_a_limit() {
        let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let a = Hold::take(&counter, 60, 100).unwrap();
        assert!(Hold::take(&counter, 50, 100).is_none());
        drop(a);
        assert!(Hold::take(&counter, 50, 100).is_some());
        assert_eq!(counter.load(std::sync::atomic::Ordering::Relaxed), 0);
    }

    #[test]
    fn event_lists_wrap_items() {
        let list = event_list(&[Arc::new(event(Level::Metadata))]);
        let v: Value = serde_json::from_slice(&list).unwrap();
        assert_eq!(v["kind"], "EventList");
        assert_eq!(v["items"][0]["kind"], "Event");
    }
}
