//! Webhook token authentication (`--authentication-token-webhook-config-file`), as
//! upstream: a bearer token no other authenticator knows is POSTed as a TokenReview
//! (`authentication.k8s.io/v1`, or `v1beta1` by `--authentication-token-webhook-version`)
//! to the server the kubeconfig file names (its CA, client certificate or bearer token),
//! over the [`Remote`] client thread; `status.authenticated` and `status.user` decide.
//! Answers are cached per token for `--authentication-token-webhook-cache-ttl`;
//! concurrent requests with one uncached token share one call.
//!
//! Invariants: the cache is keyed by the token's SHA-256 (tokens are never kept or
//! logged) and bounded ([`MAX_CACHED`]); an unreachable or failing webhook
//! authenticates nobody and is not cached.

use super::UserInfo;
use super::remote::{Call, Remote, Url};
use crate::client::WebhookKubeconfig;
use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most answers cached.
pub const MAX_CACHED: usize = 10_000;

/// The webhook authenticator.
pub struct Webhook {
    url: Url,
    tls: Arc<rustls::ClientConfig>,
    token: Option<String>,
    /// `authentication.k8s.io/v1` or `.../v1beta1`.
    api_version: String,
    ttl: Duration,
    /// The API's audiences, sent as `spec.audiences`.
    audiences: Vec<String>,
    remote: Remote,
    cache: Mutex<HashMap<[u8; 32], (Instant, Option<UserInfo>)>>,
    /// Calls under way, by token hash (shared by concurrent requests; bounded).
    inflight: Mutex<HashMap<[u8; 32], Pending>>,
}

/// A call under way, awaited by every request with its token.
type Pending = Shared<BoxFuture<'static, Option<Option<UserInfo>>>>;

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").field("url", &self.url).finish_non_exhaustive()
    }
}

fn token_key(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut key = [0; 32];
    key.copy_from_slice(d.as_ref());
    key
}

/// The user of a TokenReview response (None: not authenticated).
pub fn user_of(review: &Value) -> Option<UserInfo> {
    let status = review.get("status")?;
    if status.get("authenticated").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let user = status.get("user")?;
    let s = |k: &str| user.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default()
    };
    let extra = user
        .get("extra")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), list(v))).collect())
        .unwrap_or_default();
    Some(UserInfo { name: s("username"), uid: s("uid"), groups: list(&user["groups"]), extra })
}

/// Whether a review's `status.audiences` (when it names any) include one of `wanted`
/// (when there are any), as upstream checks the webhook's answer.
fn audiences_match(review: &Value, wanted: &[String]) -> bool {
    let named = review.pointer("/status/audiences").and_then(Value::as_array);
    match named {
        Some(a) if !a.is_empty() && !wanted.is_empty() => {
            a.iter().filter_map(Value::as_str).any(|x| wanted.iter().any(|w| w == x))
        }
        _ => true,
    }
}

impl Webhook {
    pub fn new(
        endpoint: &WebhookKubeconfig,
        version: &str,
        ttl: Duration,
        audiences: Vec<String>,
        remote: Remote,
    ) -> Result<Webhook, String> {
        let api_version = match version {
            "v1" | "v1beta1" => format!("authentication.k8s.io/{version}"),
            other => return Err(format!("unsupported webhook version {other:?} (v1 or v1beta1)")),
        };
        Ok(Webhook {
            tls: endpoint.tls()?,
            url: Url::parse(&endpoint.server)?,
            token: endpoint.token.clone(),
            api_version,
            ttl,
            audiences,
            remote,
            cache: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
        })
    }

    /// The cached answer for `token`, if still fresh: Some(None) is a cached refusal.
    pub fn cached(&self, token: &str) -> Option<Option<UserInfo>> {
        let cache = self.cache.lock();
        let (at, user) = cache.get(&token_key(token))?;
        (at.elapsed() < self.ttl).then(|| user.clone())
    }

    fn remember(&self, token: &str, user: Option<UserInfo>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock();
        if cache.len() >= MAX_CACHED {
            let ttl = self.ttl;
            cache.retain(|_, (at, _)| at.elapsed() < ttl);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(token_key(token), (Instant::now(), user));
    }

    /// The user the webhook says `token` is (None: not authenticated, or the webhook
    /// could not be asked). Concurrent requests with one token share one call.
    pub async fn authenticate(&self, token: &str) -> Option<UserInfo> {
        if let Some(answer) = self.cached(token) {
            return answer;
        }
        let key = token_key(token);
        let pending = {
            let mut inflight = self.inflight.lock();
            match inflight.get(&key) {
                Some(p) => p.clone(),
                None => {
                    let p = self.ask(token).boxed().shared();
                    if inflight.len() < MAX_CACHED {
                        inflight.insert(key, p.clone());
                    }
                    p
                }
            }
        };
        let answer = pending.await;
        self.inflight.lock().remove(&key);
        let user = answer?;
        self.remember(token, user.clone());
        user
    }

    /// One TokenReview call: Some(answer), or None when the webhook could not answer.
    fn ask(&self, token: &str) -> impl Future<Output = Option<Option<UserInfo>>> + Send + 'static {
        let review = json!({
            "apiVersion": self.api_version,
            "kind": "TokenReview",
            "metadata": {"creationTimestamp": null},
            "spec": {"token": token, "audiences": self.audiences},
            "status": {"user": {}},
        });
        let mut headers = vec![
            (http::header::CONTENT_TYPE, "application/json".to_string()),
            (http::header::ACCEPT, "application/json".to_string()),
        ];
        if let Some(t) = &self.token {
            headers.push((http::header::AUTHORIZATION, format!("Bearer {t}")));
        }
        let call = Call {
            method: http::Method::POST,
            url: self.url.clone(),
            headers,
            body: Some(review.to_string().into_bytes()),
        };
        let sent = self.remote.call(self.tls.clone(), call);
        let wanted = self.audiences.clone();
        async move {
            match sent.await {
                Ok((200 | 201, body)) => {
                    let review = serde_json::from_slice::<Value>(&body).ok()?;
                    Some(user_of(&review).filter(|_| audiences_match(&review, &wanted)))
                }
                Ok((code, _)) => {
                    tracing::warn!("token webhook answered {code}");
                    None
                }
                Err(e) => {
                    tracing::warn!("token webhook: {e}");
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_cached_for_the_ttl_and_the_cache_is_bounded() {
        let text = "clusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1/\n";
        let endpoint = WebhookKubeconfig::parse(text, std::path::Path::new("/")).unwrap();
        let remote = Remote::start().unwrap();
        let hook = |ttl| Webhook::new(&endpoint, "v1", ttl, vec![], remote.clone()).unwrap();
        let w = hook(Duration::from_secs(60));
        let jane = UserInfo { name: "jane".into(), ..Default::default() };
        w.remember("t1", Some(jane.clone()));
        w.remember("t2", None);
        assert_eq!(w.cached("t1"), Some(Some(jane)));
        assert_eq!(w.cached("t2"), Some(None));
        assert_eq!(w.cached("t3"), None);
        for i in 0..MAX_CACHED + 5 {
            w.remember(&format!("token-{i}"), None);
        }
        assert!(w.cache.lock().len() <= MAX_CACHED);
        let uncached = hook(Duration::ZERO);
        uncached.remember("t1", None);
        assert_eq!(uncached.cached("t1"), None);
        assert!(Webhook::new(&endpoint, "v2", Duration::ZERO, vec![], remote).is_err());
    }

    #[test]
    fn review_responses_give_the_user_only_when_authenticated() {
        let ok = json!({"status": {"authenticated": true, "user": {"username": "jane", "uid": "7",
            "groups": ["g"], "extra": {"scopes": ["a", "b"]}}}});
        let u = user_of(&ok).unwrap();
        assert_eq!(
            (u.name.as_str(), u.uid.as_str(), u.groups.as_slice()),
            ("jane", "7", &["g".to_string()][..])
        );
        assert_eq!(u.extra["scopes"], ["a", "b"]);
        assert!(user_of(&json!({"status": {"authenticated": false, "user": {}}})).is_none());
        assert!(user_of(&json!({})).is_none());
        let wanted = ["api".to_string()];
        assert!(audiences_match(&ok, &wanted), "no audiences named: the API's");
        assert!(audiences_match(&json!({"status": {"audiences": ["x", "api"]}}), &wanted));
        assert!(!audiences_match(&json!({"status": {"audiences": ["x"]}}), &wanted));
    }
}
