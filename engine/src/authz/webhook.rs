//! The Webhook authorizer (`--authorization-mode=...,Webhook`), as upstream's: each
//! decision is a SubjectAccessReview POSTed over HTTPS to the server a kubeconfig names
//! (`--authorization-webhook-config-file`), its answer cached by the review's spec for
//! `--authorization-webhook-cache-authorized-ttl` (5m) when allowed and
//! `--authorization-webhook-cache-unauthorized-ttl` (30s) otherwise. `allowed` allows,
//! `denied` denies (ending the chain), anything else is no opinion; a call that fails
//! is an error (the request gets 500 unless another mode allows it).
//!
//! Calls run on the HTTPS client thread (`aggregator::client`); a serving core only
//! awaits the answer. The cache is bounded ([`CACHE_LIMIT`]).

use super::attributes::Attributes;
use crate::aggregator::Target;
use crate::aggregator::client::{Client, Fetched};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reviews cached before the cache starts over.
pub const CACHE_LIMIT: usize = 10_000;
/// How long one review may take (upstream's webhook client default).
const TIMEOUT: Duration = Duration::from_secs(30);
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

/// The webhook authorizer's settings and cache.
pub struct Webhook {
    endpoint: Endpoint,
    /// `v1` or `v1beta1` (`--authorization-webhook-version`).
    version: String,
    allowed_ttl: Duration,
    denied_ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Answer)>>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").field("endpoint", &self.endpoint).finish_non_exhaustive()
    }
}

/// A webhook's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Allow,
    Deny(String),
    NoOpinion(String),
}

impl Webhook {
    pub fn new(
        endpoint: Endpoint,
        version: &str,
        allowed_ttl: Duration,
        denied_ttl: Duration,
    ) -> Result<Webhook, String> {
        if !matches!(version, "v1" | "v1beta1") {
            return Err(format!(
                "unsupported authorization webhook version {version:?} (v1, v1beta1)"
            ));
        }
        Ok(Webhook {
            endpoint,
            version: version.to_string(),
            allowed_ttl,
            denied_ttl,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The cached answer for `a`, if fresh.
    pub fn cached(&self, a: &Attributes<'_>) -> Option<Answer> {
        let key = spec(a).to_string();
        let cache = self.cache.lock();
        let (at, answer) = cache.get(&key)?;
        let ttl = if *answer == Answer::Allow { self.allowed_ttl } else { self.denied_ttl };
        (at.elapsed() < ttl).then(|| answer.clone())
    }

    /// Ask the webhook about `a` (or answer from the cache).
    pub async fn authorize(
        &self,
        client: &Arc<Client>,
        a: &Attributes<'_>,
    ) -> Result<Answer, String> {
        if let Some(hit) = self.cached(a) {
            return Ok(hit);
        }
        let spec = spec(a);
        let key = spec.to_string();
        let review = json!({
            "apiVersion": format!("authorization.k8s.io/{}", self.version),
            "kind": "SubjectAccessReview",
            "spec": spec,
        });
        let answer = self.post(client, review.to_string()).await?;
        let (code, body) = (answer.status, answer.body);
        if !(200..300).contains(&code) {
            return Err(format!("the authorization webhook answered {code}"));
        }
        let answer = parse_answer(&body)?;
        let mut cache = self.cache.lock();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, (Instant::now(), answer.clone()));
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
        client.fetch(t.clone(), req, TIMEOUT, MAX_ANSWER).await
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
    if status.get("allowed").and_then(Value::as_bool) == Some(true) {
        return Ok(Answer::Allow);
    }
    if status.get("denied").and_then(Value::as_bool) == Some(true) {
        return Ok(Answer::Deny(reason));
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
