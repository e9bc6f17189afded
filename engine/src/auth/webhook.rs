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

/// Where and how to reach the webhook, from its kubeconfig file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub ca_pem: Option<Vec<u8>>,
    pub client_cert_pem: Option<Vec<u8>>,
    pub client_key_pem: Option<Vec<u8>>,
    pub token: Option<String>,
}

/// The value of `key` or of `key-data` (base64) in `map`, files read relative to `dir`.
fn file_or_data(map: &Value, key: &str, dir: &std::path::Path) -> Result<Option<Vec<u8>>, String> {
    use base64::Engine as _;
    if let Some(data) = map.get(format!("{key}-data")).and_then(Value::as_str) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| format!("{key}-data: {e}"))?;
        return Ok(Some(bytes));
    }
    match map.get(key).and_then(Value::as_str) {
        Some(path) => {
            let path = dir.join(path);
            std::fs::read(&path).map(Some).map_err(|e| format!("{}: {e}", path.display()))
        }
        None => Ok(None),
    }
}

/// The named entry of a kubeconfig list (`clusters`, `users`), or the first.
fn entry<'a>(config: &'a Value, list: &str, field: &str, name: Option<&str>) -> Option<&'a Value> {
    let items = config.get(list)?.as_array()?;
    let found =
        name.and_then(|n| items.iter().find(|i| i.get("name").and_then(Value::as_str) == Some(n)));
    found.or_else(|| items.first())?.get(field)
}

impl Endpoint {
    /// The endpoint a kubeconfig text names (current context, else the first cluster
    /// and user); relative file paths resolve against `dir`.
    pub fn from_kubeconfig(text: &str, dir: &std::path::Path) -> Result<Endpoint, String> {
        let config: Value = serde_norway::from_str(text).map_err(|e| format!("kubeconfig: {e}"))?;
        let current = config.get("current-context").and_then(Value::as_str);
        let context = entry(&config, "contexts", "context", current);
        let named = |k: &str| context.and_then(|c| c.get(k)).and_then(Value::as_str);
        let cluster = entry(&config, "clusters", "cluster", named("cluster"))
            .ok_or("kubeconfig: no cluster")?;
        let url = cluster.get("server").and_then(Value::as_str).ok_or("kubeconfig: no server")?;
        Url::parse(url)?;
        let empty = json!({});
        let user = entry(&config, "users", "user", named("user")).unwrap_or(&empty);
        Ok(Endpoint {
            url: url.to_string(),
            ca_pem: file_or_data(cluster, "certificate-authority", dir)?,
            client_cert_pem: file_or_data(user, "client-certificate", dir)?,
            client_key_pem: file_or_data(user, "client-key", dir)?,
            token: user.get("token").and_then(Value::as_str).map(String::from),
        })
    }
}

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
        endpoint: &Endpoint,
        version: &str,
        ttl: Duration,
        audiences: Vec<String>,
        remote: Remote,
    ) -> Result<Webhook, String> {
        let api_version = match version {
            "v1" | "v1beta1" => format!("authentication.k8s.io/{version}"),
            other => return Err(format!("unsupported webhook version {other:?} (v1 or v1beta1)")),
        };
        let identity = match (&endpoint.client_cert_pem, &endpoint.client_key_pem) {
            (Some(c), Some(k)) => Some((c.as_slice(), k.as_slice())),
            _ => None,
        };
        let tls = super::remote::tls_config(endpoint.ca_pem.as_deref(), identity)?;
        Ok(Webhook {
            url: Url::parse(&endpoint.url)?,
            tls,
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
    fn kubeconfigs_name_the_server_its_ca_and_the_client_identity() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "CA").unwrap();
        let text = "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster:\n    server: https://wrong\n- name: authn\n  cluster:\n    server: https://127.0.0.1:9443/authenticate\n    certificate-authority: ca.pem\nusers:\n- name: apiserver\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\ncontexts:\n- name: webhook\n  context:\n    cluster: authn\n    user: apiserver\ncurrent-context: webhook\n";
        let e = Endpoint::from_kubeconfig(text, dir.path()).unwrap();
        assert_eq!(e.url, "https://127.0.0.1:9443/authenticate");
        assert_eq!(e.ca_pem.as_deref(), Some(&b"CA"[..]));
        assert_eq!(e.client_cert_pem.as_deref(), Some(&b"CERT"[..]));
        assert_eq!(e.client_key_pem.as_deref(), Some(&b"KEY"[..]));
        assert!(Endpoint::from_kubeconfig("clusters: []", dir.path()).is_err());
        let plain = "clusters:\n- name: c\n  cluster:\n    server: http://insecure\n";
        assert!(Endpoint::from_kubeconfig(plain, dir.path()).is_err());
    }

    #[test]
    fn answers_are_cached_for_the_ttl_and_the_cache_is_bounded() {
        let endpoint = Endpoint {
            url: "https://127.0.0.1:1/".into(),
            ca_pem: None,
            client_cert_pem: None,
            client_key_pem: None,
            token: None,
        };
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
