//! The Webhook authorizer, as upstream's: each decision is a SubjectAccessReview POSTed
//! over HTTPS to the server a kubeconfig names, its answer cached by the review's spec
//! (allowed answers for the authorized TTL, others for the unauthorized TTL; a zero TTL
//! caches nothing). `allowed` allows, `denied` denies (ending the chain; both at once
//! is a deny with an error), anything else is no opinion. Configured either by the
//! `--authorization-webhook-*` flags ([`Settings::legacy`]: 30s timeout, failure policy
//! NoOpinion) or by a `--authorization-config` Webhook authorizer ([`Webhook::from_spec`]:
//! its name, timeout, failure policy and CEL `matchConditions` over `request`, the
//! review's spec: all must hold for the webhook to be asked, one false skips it).
//!
//! A failure (the call, its answer, or a condition that cannot be evaluated) is the
//! failure policy's decision with an error attached: NoOpinion lets the next authorizer
//! decide, Deny ends the chain; either way a request nobody allowed gets 500, as upstream.
//! Calls run on the HTTPS client thread (`aggregator::client`); a serving core only
//! awaits the answer. The cache is bounded ([`CACHE_LIMIT`]).

use super::attributes::Attributes;
use super::config::{FailurePolicy, WebhookSpec};
use crate::aggregator::Target;
use crate::aggregator::client::{Client, Fetched};
use kapi_codec::cel::Condition;
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reviews cached before the cache starts over.
pub const CACHE_LIMIT: usize = 10_000;
/// How long one review may take with the flags (upstream's webhook client default).
const LEGACY_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of an answer read.
const MAX_ANSWER: usize = 1024 * 1024;

/// Where the webhook is and how it is trusted, from its kubeconfig.
#[derive(Clone)]
pub struct Endpoint {
    pub target: Target,
    /// The URL's path (and query).
    pub path: String,
    pub token: Option<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("target", &self.target).field("path", &self.path).finish()
    }
}

/// How one webhook authorizer behaves.
#[derive(Debug)]
pub struct Settings {
    /// The authorizer's name (`default` for the flags').
    pub name: String,
    /// `v1` or `v1beta1`.
    pub version: String,
    pub timeout: Duration,
    pub failure_policy: FailurePolicy,
    pub allowed_ttl: Duration,
    pub denied_ttl: Duration,
    pub match_conditions: Vec<Condition>,
}

impl Settings {
    /// The `--authorization-webhook-*` flags' webhook, as upstream builds it from them.
    pub fn legacy(version: &str, allowed_ttl: Duration, denied_ttl: Duration) -> Settings {
        Settings {
            name: "default".into(),
            version: version.to_string(),
            timeout: LEGACY_TIMEOUT,
            failure_policy: FailurePolicy::NoOpinion,
            allowed_ttl,
            denied_ttl,
            match_conditions: Vec::new(),
        }
    }
}

/// The webhook authorizer's settings and cache.
pub struct Webhook {
    endpoint: Endpoint,
    settings: Settings,
    cache: Mutex<HashMap<String, (Instant, Answer)>>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.settings.name)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

/// A webhook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Allow,
    Deny(String),
    NoOpinion(String),
    /// Both `allowed` and `denied`: a deny, with an error.
    Both(String),
}

/// One authorizer's say: allow (`Some(true)`), deny (`Some(false)`) or no opinion, its
/// reason, and the error it met (a request nobody allowed is then a 500).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    pub verdict: Option<bool>,
    pub reason: String,
    pub error: Option<String>,
}

impl From<Answer> for Outcome {
    fn from(a: Answer) -> Outcome {
        let (verdict, reason, error) = match a {
            Answer::Allow => (Some(true), String::new(), None),
            Answer::Deny(r) => (Some(false), r, None),
            Answer::NoOpinion(r) => (None, r, None),
            Answer::Both(r) => (
                Some(false),
                r,
                Some("webhook subject access review returned both allow and deny response".into()),
            ),
        };
        Outcome { verdict, reason, error }
    }
}

impl Webhook {
    pub fn new(endpoint: Endpoint, settings: Settings) -> Result<Webhook, String> {
        if !matches!(settings.version.as_str(), "v1" | "v1beta1") {
            return Err(format!(
                "unsupported authorization webhook version {:?} (v1, v1beta1)",
                settings.version
            ));
        }
        Ok(Webhook { endpoint, settings, cache: Mutex::new(HashMap::new()) })
    }

    /// The webhook a `--authorization-config` Webhook authorizer describes (its
    /// kubeconfig is read now; the server is not contacted).
    pub fn from_spec(name: &str, spec: WebhookSpec) -> Result<Webhook, String> {
        let endpoint = endpoint_from_kubeconfig(&spec.kubeconfig)?;
        let settings = Settings {
            name: name.to_string(),
            version: spec.version,
            timeout: spec.timeout,
            failure_policy: spec.failure_policy,
            allowed_ttl: spec.authorized_ttl,
            denied_ttl: spec.unauthorized_ttl,
            match_conditions: spec.match_conditions,
        };
        Webhook::new(endpoint, settings)
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// Whether the match conditions let `spec` through, as upstream's matcher: one
    /// false skips the webhook, else one error is an error, else it is asked.
    pub fn matches(&self, spec: &Value) -> Result<bool, String> {
        let mut error = None;
        for c in &self.settings.match_conditions {
            match c.eval(&[("request", spec)]) {
                Ok(Some(true)) => {}
                Ok(Some(false)) => return Ok(false),
                Ok(None) => error = Some("expected a bool result".to_string()),
                Err(e) => error = Some(e),
            }
        }
        match error {
            Some(e) => Err(format!("matchConditions evaluation error: {e}")),
            None => Ok(true),
        }
    }

    /// The failure policy's outcome for `error`.
    fn failed(&self, error: String) -> Outcome {
        let verdict = (self.settings.failure_policy == FailurePolicy::Deny).then_some(false);
        Outcome { verdict, reason: String::new(), error: Some(error) }
    }

    /// The cached answer for `a`, if fresh.
    pub fn cached(&self, a: &Attributes<'_>) -> Option<Answer> {
        self.cached_key(&spec(a).to_string())
    }

    fn cached_key(&self, key: &str) -> Option<Answer> {
        let cache = self.cache.lock();
        let (at, answer) = cache.get(key)?;
        let ttl = if *answer == Answer::Allow {
            self.settings.allowed_ttl
        } else {
            self.settings.denied_ttl
        };
        (at.elapsed() < ttl).then(|| answer.clone())
    }

    /// The outcome without calling the webhook: the match conditions, then the cache
    /// (no opinion on a miss). For the synchronous paths (access reviews, escalation).
    pub fn cached_outcome(&self, a: &Attributes<'_>) -> Outcome {
        let spec = spec(a);
        match self.matches(&spec) {
            Err(e) => self.failed(e),
            Ok(false) => Outcome::default(),
            Ok(true) => self.cached_key(&spec.to_string()).map(Outcome::from).unwrap_or_default(),
        }
    }

    /// The outcome for `a`: the match conditions, then the cache, then the webhook.
    pub async fn decide(&self, client: &Arc<Client>, a: &Attributes<'_>) -> Outcome {
        let spec = spec(a);
        match self.matches(&spec) {
            Err(e) => return self.failed(e),
            Ok(false) => return Outcome::default(),
            Ok(true) => {}
        }
        match self.ask(client, spec).await {
            Ok(answer) => answer.into(),
            Err(e) => self.failed(e),
        }
    }

    /// Ask the webhook about `spec` (or answer from the cache).
    async fn ask(&self, client: &Arc<Client>, spec: Value) -> Result<Answer, String> {
        let key = spec.to_string();
        if let Some(hit) = self.cached_key(&key) {
            return Ok(hit);
        }
        let review = json!({
            "apiVersion": format!("authorization.k8s.io/{}", self.settings.version),
            "kind": "SubjectAccessReview",
            "spec": spec,
        });
        let answer = self.post(client, review.to_string()).await?;
        let (code, body) = (answer.status, answer.body);
        if !(200..300).contains(&code) {
            return Err(format!("the authorization webhook answered {code}"));
        }
        let answer = parse_answer(&body)?;
        let ttl = if answer == Answer::Allow {
            self.settings.allowed_ttl
        } else {
            self.settings.denied_ttl
        };
        if !ttl.is_zero() {
            let mut cache = self.cache.lock();
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key, (Instant::now(), answer.clone()));
        }
        Ok(answer)
    }
    async fn post(&self, client: &Arc<Client>, body: String) -> Result<Fetched, String> {
        let t = &self.endpoint.target;
        let host = format!("{}:{}", t.host, t.port);
        let mut req = crate::conversion::post_request(
            &host,
            &self.endpoint.path,
            body.into_bytes(),
            "kapi-apiextensions",
        )?;
        if let Some(token) = &self.endpoint.token
            && let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {token}"))
        {
            req.headers_mut().insert(http::header::AUTHORIZATION, v);
        }
        client.fetch(t.clone(), req, self.settings.timeout, MAX_ANSWER).await
    }
}

/// The webhook a kubeconfig file names: its current context's cluster (server URL,
/// `certificate-authority[-data]`, `insecure-skip-tls-verify`) and user
/// (`client-certificate[-data]` + `client-key[-data]`, or `token`).
pub fn endpoint_from_kubeconfig(path: &std::path::Path) -> Result<Endpoint, String> {
    let k = crate::client::WebhookKubeconfig::load(path)?;
    let tls = k.tls().map_err(|e| format!("{}: {e}", path.display()))?;
    let target = Target { host: k.host.clone(), port: k.port, server_name: k.host, tls };
    Ok(Endpoint { target, path: k.path, token: k.token })
}

/// The review's spec for `a`, as upstream's webhook authorizer fills it.
pub fn spec(a: &Attributes<'_>) -> Value {
    let mut spec = json!({"user": a.user.name, "uid": a.user.uid, "groups": a.user.groups});
    if !a.user.extra.is_empty() {
        spec["extra"] = json!(a.user.extra);
    }
    if a.resource_request {
        spec["resourceAttributes"] = json!({
            "namespace": a.namespace, "verb": a.verb, "group": a.group, "version": a.version,
            "resource": a.resource, "subresource": a.subresource, "name": a.name,
        });
    } else {
        spec["nonResourceAttributes"] = json!({"path": a.path, "verb": a.verb});
    }
    spec
}

/// A review's answer: `status.allowed`, `status.denied`, `status.reason`.
pub fn parse_answer(body: &[u8]) -> Result<Answer, String> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| format!("decoding the authorization webhook's answer: {e}"))?;
    let status = &v["status"];
    let reason = status.get("reason").and_then(Value::as_str).unwrap_or("").to_string();
    let allowed = status.get("allowed").and_then(Value::as_bool) == Some(true);
    let denied = status.get("denied").and_then(Value::as_bool) == Some(true);
    match (allowed, denied) {
        (true, true) => return Ok(Answer::Both(reason)),
        (true, false) => return Ok(Answer::Allow),
        (false, true) => return Ok(Answer::Deny(reason)),
        (false, false) => {}
    }
    if let Some(e) = status.get("evaluationError").and_then(Value::as_str).filter(|e| !e.is_empty())
    {
        tracing::debug!("authorization webhook evaluation error: {e}");
    }
    Ok(Answer::NoOpinion(reason))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::UserInfo;

    #[test]
    fn answers_read_as_upstream() {
        assert_eq!(parse_answer(br#"{"status":{"allowed":true}}"#), Ok(Answer::Allow));
        assert_eq!(
            parse_answer(br#"{"status":{"allowed":false,"denied":true,"reason":"no"}}"#),
            Ok(Answer::Deny("no".into()))
        );
        assert_eq!(
            parse_answer(br#"{"status":{"allowed":false}}"#),
            Ok(Answer::NoOpinion(String::new()))
        );
        assert!(parse_answer(b"garbage").is_err());
        let both = parse_answer(br#"{"status":{"allowed":true,"denied":true,"reason":"r"}}"#);
        let out = Outcome::from(both.expect("parses"));
        assert_eq!(out.verdict, Some(false));
        assert!(out.error.is_some_and(|e| e.contains("both allow and deny")));
    }

    /// A webhook at a kubeconfig naming a port nothing serves (never contacted here).
    fn hook(policy: FailurePolicy, conditions: &[&str]) -> Webhook {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hook.kubeconfig");
        let kubeconfig = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1/authorize\n    insecure-skip-tls-verify: true\nusers:\n- name: u\n  user: {}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n";
        std::fs::write(&path, kubeconfig).expect("write");
        let compiled = conditions
            .iter()
            .map(|c| Condition::compile(c, super::super::config::CONDITION_VARS).expect("compiles"))
            .collect();
        let spec = WebhookSpec {
            timeout: Duration::from_secs(1),
            version: "v1".into(),
            failure_policy: policy,
            authorized_ttl: Duration::from_secs(60),
            unauthorized_ttl: Duration::ZERO,
            kubeconfig: path,
            match_conditions: compiled,
        };
        Webhook::from_spec("hook", spec).expect("builds")
    }

    fn attrs<'a>(u: &'a UserInfo, namespace: &'a str) -> Attributes<'a> {
        Attributes {
            user: u,
            verb: "get",
            resource_request: true,
            path: "",
            group: "",
            version: "v1",
            namespace,
            resource: "pods",
            subresource: "",
            name: "p",
            field_selector: "",
        }
    }

    #[test]
    fn match_conditions_skip_on_false_and_fail_by_the_policy_on_error() {
        let u = UserInfo { name: "alice".into(), ..Default::default() };
        let w = hook(
            FailurePolicy::Deny,
            &["request.resourceAttributes.namespace == 'guarded'", "request.user != 'bob'"],
        );
        assert_eq!(w.matches(&spec(&attrs(&u, "guarded"))), Ok(true));
        assert_eq!(w.matches(&spec(&attrs(&u, "other"))), Ok(false));
        assert_eq!(w.cached_outcome(&attrs(&u, "other")), Outcome::default(), "skipped");
        // An error (no resourceAttributes on a non-resource request) and no false: the
        // failure policy decides, with the error.
        let path = Attributes { resource_request: false, path: "/healthz", ..attrs(&u, "") };
        let out = w.cached_outcome(&path);
        assert_eq!(out.verdict, Some(false));
        assert!(out.error.is_some_and(|e| e.contains("no such key")));
        let lenient = hook(FailurePolicy::NoOpinion, &["request.resourceAttributes.verb == 'get'"]);
        let out = lenient.cached_outcome(&path);
        assert_eq!(out.verdict, None);
        assert!(out.error.is_some());
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let w = hook(FailurePolicy::NoOpinion, &[]);
        let u = UserInfo { name: "alice".into(), ..Default::default() };
        let key = spec(&attrs(&u, "ns")).to_string();
        w.cache.lock().insert(key.clone(), (Instant::now(), Answer::NoOpinion(String::new())));
        assert_eq!(w.cached_key(&key), None, "unauthorizedTTL is zero");
        w.cache.lock().insert(key.clone(), (Instant::now(), Answer::Allow));
        assert_eq!(w.cached_key(&key), Some(Answer::Allow));
    }

    #[test]
    fn the_spec_carries_the_user_and_the_request() {
        let u = UserInfo { name: "alice".into(), groups: vec!["g".into()], ..Default::default() };
        let a = Attributes {
            user: &u,
            verb: "get",
            resource_request: true,
            path: "",
            group: "apps",
            version: "v1",
            namespace: "ns",
            resource: "deployments",
            subresource: "scale",
            name: "d",
            field_selector: "",
        };
        let s = spec(&a);
        assert_eq!(s["user"], "alice");
        assert_eq!(s["resourceAttributes"]["subresource"], "scale");
        let path = Attributes { resource_request: false, path: "/healthz", ..a };
        assert_eq!(
            spec(&path)["nonResourceAttributes"],
            json!({"path": "/healthz", "verb": "get"})
        );
    }
}
