//! Custom resources whose CRD converts through a webhook (conversion strategy
//! `Webhook`): the transport and the plumbing around `kapi_codec::webhook_conversion`,
//! which holds the policy (the review, its checks, the metadata restore). The transport
//! ([`Transport::post_json`]) is also the one admission webhooks are called through.
//!
//! A review is POSTed over HTTPS by the aggregator's client thread (a tokio runtime of
//! its own; `aggregator/client.rs`): a serving core only awaits a oneshot, so it never
//! blocks on the network, and a watch cache's feeder thread waits for the answer with
//! `futures_executor` (bounded by upstream's 30 s). A `url` is dialed as given; a
//! `service` is resolved to one of its endpoints as the APIService proxy resolves
//! services (kapi cannot reach cluster IPs), with the TLS name `NAME.NAMESPACE.svc`.
//! The webhook is trusted through the CRD's `caBundle`; kapi presents no certificate.
//!
//! Invariants: objects are converted one per review; an object already in the wanted
//! version is never sent; every failure is a `CodecError::Conversion` with upstream's
//! message (a 500 Status without a reason, as upstream answers it).

use crate::aggregator::Target;
use crate::aggregator::client::{Client, OutBody, webhook_tls};
use crate::app::App;
use crate::status::ApiError;
use bytes::Bytes;
use http_body_util::BodyExt;
use kapi_codec::webhook_conversion::{
    Endpoint, MAX_RESPONSE_BODY, Plan, ServiceRef, TIMEOUT, Webhook,
};
use kapi_codec::{CodecError, Registry, ResourceType, convert, stored};
use kapi_storage::{KeyValue, Store};
use serde_json::Value;
use std::sync::Arc;

/// What a conversion needs of the server: the HTTPS client, and the store (to resolve
/// a webhook's Service). Owned, so a cache's feeder thread can keep one.
#[derive(Clone)]
pub struct Transport {
    client: Option<Arc<Client>>,
    store: Arc<dyn Store>,
    prefix: String,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

impl Transport {
    pub fn of(app: &App) -> Transport {
        Transport {
            client: app.aggregator().cloned(),
            store: app.store.clone(),
            prefix: app.prefix().to_string(),
        }
    }

    /// `obj` in `desired` (`GROUP/VERSION`), converted by `hook` unless already there.
    pub async fn convert(
        &self,
        hook: &Webhook,
        obj: Value,
        desired: &str,
    ) -> Result<Value, CodecError> {
        let uid = uuid::Uuid::new_v4().to_string();
        let Some(plan) = hook.plan(&obj, desired, &uid)? else { return Ok(obj) };
        let body = self.post(hook, &plan).await.map_err(|e| plan.failed(&e))?;
        plan.finish(&body)
    }

    /// POST the review; the 2xx body, or why there is none (client-go's words).
    async fn post(&self, hook: &Webhook, plan: &Plan) -> Result<Bytes, String> {
        let call = Call { endpoint: &hook.endpoint, ca_bundle: &hook.ca_bundle, timeout: TIMEOUT };
        self.post_json(&call, plan.body.clone(), "kapi-apiextensions").await
    }

    /// POST `body` (JSON) to a webhook (conversion and admission webhooks alike): its
    /// 2xx body, or why there is none, as client-go words it (`Post "URL": ...`, a
    /// non-2xx answer's Status message).
    pub async fn post_json(
        &self,
        call: &Call<'_>,
        body: Vec<u8>,
        user_agent: &'static str,
    ) -> Result<Bytes, String> {
        let client = self.client.as_ref().ok_or("the webhook client is not running")?;
        let (target, path) = self.target(call).await?;
        let base = shown_base(call.endpoint, &target);
        let url = format!("{base}{path}");
        let host = base.trim_start_matches("https://");
        let req = post_request(host, &path, body, user_agent)
            .map_err(|e| format!("Post {url:?}: {e}"))?;
        let fetched = client
            .fetch(target, req, call.timeout, MAX_RESPONSE_BODY)
            .await
            .map_err(|e| format!("Post {url:?}: {e}"))?;
        let (code, body) = (fetched.status, fetched.body);
        if !(200..300).contains(&code) {
            return Err(status_error(code, &body));
        }
        Ok(body)
    }

    /// Where a webhook is: the address to dial, its TLS name and trust, and the request
    /// path (with upstream's `timeout` query, in whole seconds rounded up).
    async fn target(&self, call: &Call<'_>) -> Result<(Target, String), String> {
        let tls = tls_for(call.ca_bundle)?;
        let query = format!("timeout={}s", call.timeout.as_secs_f64().ceil() as u64);
        match call.endpoint {
            Endpoint::Url(url) => {
                let (host, port, path) = parse_url(url)?;
                let path = join_query(&path, &query);
                Ok((Target { server_name: host.clone(), host, port, tls }, path))
            }
            Endpoint::Service(svc) => {
                let (host, port) = self.resolve(svc).await?;
                let server_name = format!("{}.{}.svc", svc.name, svc.namespace);
                let path = join_query(&svc.path, &query);
                Ok((Target { host, port, server_name, tls }, path))
            }
        }
    }

    /// An endpoint address of a webhook's Service (through its EndpointSlices, else its
    /// Endpoints), as the APIService proxy resolves services.
    async fn resolve(&self, svc: &ServiceRef) -> Result<(String, u16), String> {
        let (ns, name) = (svc.namespace.as_str(), svc.name.as_str());
        let service = self
            .get("services", "", ns, name)
            .await?
            .ok_or_else(|| format!("service \"{name}\" not found"))?;
        let not_listening = || format!("service {name}/{ns}:{} is not listening", svc.port);
        let ports = service.pointer("/spec/ports").and_then(Value::as_array);
        let port = ports
            .into_iter()
            .flatten()
            .find(|p| p.get("port").and_then(Value::as_i64) == Some(svc.port))
            .ok_or_else(not_listening)?;
        let port_name = port.get("name").and_then(Value::as_str).unwrap_or("");
        let slices = self.slices(ns, name).await?;
        let found = if slices.is_empty() {
            let endpoints = self.get("endpoints", "", ns, name).await?;
            endpoints
                .and_then(|e| crate::aggregator::controller::address_in_endpoints(&e, port_name))
        } else {
            crate::aggregator::controller::address_in_slices(&slices, port_name)
        };
        let (host, port) =
            found.ok_or_else(|| format!("no endpoints available for service \"{name}\""))?;
        Ok((host, u16::try_from(port).map_err(|_| not_listening())?))
    }

    async fn get(
        &self,
        plural: &str,
        group: &str,
        ns: &str,
        name: &str,
    ) -> Result<Option<Value>, String> {
        let rt = builtin(plural, group)?;
        let key = rt.storage_key(&self.prefix, Some(ns), name);
        match self.store.get(&key).await.map_err(|e| e.to_string())? {
            None => Ok(None),
            Some(kv) => stored::decode_object(&rt, &kv.value, kv.mod_revision)
                .map(Some)
                .map_err(|e| e.to_string()),
        }
    }

    async fn slices(&self, ns: &str, name: &str) -> Result<Vec<Value>, String> {
        let rt = builtin("endpointslices", "discovery.k8s.io")?;
        let prefix = rt.storage_prefix(&self.prefix, Some(ns));
        let page = self.store.range(&prefix, None, 0, None).await.map_err(|e| e.to_string())?;
        Ok(page
            .items
            .iter()
            .filter_map(|kv| stored::decode_object(&rt, &kv.value, kv.mod_revision).ok())
            .filter(|s| {
                s.pointer("/metadata/labels/kubernetes.io~1service-name").and_then(Value::as_str)
                    == Some(name)
            })
            .collect())
    }

    /// A stored object of `rt`, in `rt`'s version (converted by the webhook if needed).
    pub async fn decode(&self, rt: &ResourceType, kv: &KeyValue) -> Result<Value, CodecError> {
        let Some(hook) = convert::webhook(rt) else {
            return stored::decode_object(rt, &kv.value, kv.mod_revision);
        };
        let obj = stored::decode(&kv.value)?;
        let obj = self.convert(hook, obj, &rt.api_version()).await?;
        Ok(stored::finish_decoded(rt, obj, &kv.value, kv.mod_revision))
    }

    /// The bytes to store for `obj` (an object of `rt`): in the storage version
    /// (converted by the webhook if needed), without `metadata.resourceVersion`.
    pub async fn encode(
        &self,
        rt: &ResourceType,
        obj: &Value,
        media: stored::StorageMediaType,
    ) -> Result<Bytes, CodecError> {
        let Some(hook) = convert::webhook(rt) else {
            return Ok(Bytes::from(stored::encode_object(rt, obj, media)));
        };
        let storage = convert::storage_api_version(rt);
        let converted = self.convert(hook, obj.clone(), &storage).await?;
        Ok(Bytes::from(stored::encode_without_revision(&converted, media)))
    }
}

/// TLS configurations made per thread, by caBundle (at most [`TLS_CONFIGS`]): a
/// review does not parse its bundle again, and no lock is shared between cores.
const TLS_CONFIGS: usize = 32;

thread_local! {
    static TLS: std::cell::RefCell<std::collections::HashMap<Vec<u8>, Arc<rustls::ClientConfig>>> =
        Default::default();
}

fn tls_for(ca_bundle: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    if let Some(c) = TLS.with(|t| t.borrow().get(ca_bundle).cloned()) {
        return Ok(c);
    }
    let config = webhook_tls(ca_bundle)?;
    TLS.with(|t| {
        let mut t = t.borrow_mut();
        if t.len() >= TLS_CONFIGS {
            t.clear();
        }
        t.insert(ca_bundle.to_vec(), config.clone());
    });
    Ok(config)
}

fn builtin(plural: &str, group: &str) -> Result<Arc<ResourceType>, String> {
    let found = Registry::builtin().all().iter().find(|t| t.group == group && t.plural == plural);
    found.cloned().ok_or_else(|| format!("no {plural}"))
}

/// The URL as upstream's errors show it (`https://HOST:PORT` of a `url`, or of the
/// Service's DNS name).
fn shown_base(endpoint: &Endpoint, target: &Target) -> String {
    match endpoint {
        Endpoint::Url(_) => {
            Target { host: target.server_name.clone(), ..target.clone() }.base_url()
        }
        Endpoint::Service(svc) => format!("https://{}:{}", target.server_name, svc.port),
    }
}

fn join_query(path: &str, query: &str) -> String {
    let path = if path.is_empty() { "/" } else { path };
    if path.contains('?') { format!("{path}&{query}") } else { format!("{path}?{query}") }
}

/// Host, port and path of an `https://` webhook URL.
fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("invalid webhook url {url:?}: must be https"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) =
            v6.split_once(']').ok_or_else(|| format!("invalid webhook url {url:?}"))?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => 443,
        Some(p) => p.parse().map_err(|_| format!("invalid webhook url {url:?}: bad port"))?,
    };
    if host.is_empty() {
        return Err(format!("invalid webhook url {url:?}: no host"));
    }
    Ok((host.to_string(), port, path))
}

/// The review's request: `host` is the URL's (`HOST:PORT`, a Service's DNS name).
/// A JSON POST of `body` to `path` on `host` (webhook calls).
pub fn post_request(
    host: &str,
    path: &str,
    body: Vec<u8>,
    user_agent: &'static str,
) -> Result<http::Request<OutBody>, String> {
    let body = http_body_util::Full::new(Bytes::from(body)).map_err(|e| match e {}).boxed_unsync();
    let mut req = http::Request::post(path).body(body).map_err(|e| e.to_string())?;
    let headers = req.headers_mut();
    let json = http::HeaderValue::from_static("application/json");
    headers.insert(http::header::CONTENT_TYPE, json.clone());
    headers.insert(http::header::ACCEPT, json);
    headers.insert(http::header::USER_AGENT, http::HeaderValue::from_static(user_agent));
    if let Ok(v) = http::HeaderValue::from_str(host) {
        headers.insert(http::header::HOST, v);
    }
    Ok(req)
}

/// What client-go makes of a webhook's non-2xx answer: the Status's message when the
/// body is one, otherwise its generic text for the code.
fn status_error(code: u16, body: &[u8]) -> String {
    if let Ok(status) = serde_json::from_slice::<Value>(body)
        && status.get("kind").and_then(Value::as_str) == Some("Status")
        && let Some(m) = status.get("message").and_then(Value::as_str).filter(|m| !m.is_empty())
    {
        return m.to_string();
    }
    let shown: String = String::from_utf8_lossy(&body[..body.len().min(1024)]).trim().to_string();
    match code {
        400 => "the server rejected our request for an unknown reason".into(),
        401 => "the server has asked for the client to provide credentials".into(),
        403 => "forbidden".into(),
        404 => "the server could not find the requested resource".into(),
        405 => "the server does not allow this method on the requested resource".into(),
        409 => "the server reported a conflict".into(),
        422 => "the server rejected our request due to an error in our request".into(),
        429 => "the server has received too many requests and has asked us to try again later".into(),
        503 => "the server is currently unable to handle the request".into(),
        504 => "the server was unable to return a response in the time allotted, but may still be processing the request".into(),
        c if c >= 500 => {
            format!("an error on the server ({shown:?}) has prevented the request from succeeding")
        }
        c => format!("the server responded with the status code {c} but did not return more information"),
    }
}

/// One webhook call's where and how long: the endpoint, the PEM bundle to trust, and
/// the time the answer may take.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub endpoint: &'a Endpoint,
    pub ca_bundle: &'a [u8],
    pub timeout: std::time::Duration,
}

/// An object of `rt` from its stored bytes for the request path (the webhook's answer
/// awaited on a oneshot); conversion failures are upstream's 500.
pub async fn from_stored(app: &App, rt: &ResourceType, kv: &KeyValue) -> Result<Value, ApiError> {
    if convert::webhook(rt).is_none() {
        return crate::rest::object::from_stored(rt, kv);
    }
    Transport::of(app).decode(rt, kv).await.map_err(|e| decode_error(e, &kv.key))
}

/// The bytes to store for `obj` on the request path (see [`Transport::encode`]).
pub async fn to_stored(app: &App, rt: &ResourceType, obj: &Value) -> Result<Bytes, ApiError> {
    if convert::webhook(rt).is_none() {
        return Ok(crate::rest::object::to_stored(rt, obj, app.storage_media));
    }
    let encoded = Transport::of(app).encode(rt, obj, app.storage_media).await;
    encoded.map_err(|e| ApiError::from_codec(e, &Default::default()))
}

fn decode_error(e: CodecError, key: &str) -> ApiError {
    match e {
        CodecError::Conversion(m) => ApiError::Unknown(m),
        other => ApiError::Internal(format!("decoding stored object {key}: {other}")),
    }
}

/// Whether a read of `rt` without a resourceVersion must go to the store, as upstream
/// reads it (its GET bypasses the watch cache): a version its webhook converts to.
pub fn read_through(rt: &ResourceType) -> bool {
    convert::webhook(rt).is_some() && convert::storage_api_version(rt) != rt.api_version()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_split_into_host_port_and_path() {
        let p = |u: &str| parse_url(u);
        assert_eq!(
            p("https://127.0.0.1:8443/convert"),
            Ok(("127.0.0.1".into(), 8443, "/convert".into()))
        );
        assert_eq!(
            p("https://hooks.example.com"),
            Ok(("hooks.example.com".into(), 443, "/".into()))
        );
        assert_eq!(p("https://[::1]:9/x?a=b"), Ok(("::1".into(), 9, "/x?a=b".into())));
        assert!(p("http://x/").is_err());
        assert!(p("https://:80/").is_err());
        assert!(p("https://h:99999/").is_err());
        assert_eq!(join_query("/x?a=b", "timeout=30s"), "/x?a=b&timeout=30s");
        assert_eq!(join_query("", "timeout=30s"), "/?timeout=30s");
    }

    #[test]
    fn non_2xx_answers_read_as_client_go_words_them() {
        let status = br#"{"kind":"Status","message":"nope"}"#;
        assert_eq!(status_error(403, status), "nope");
        assert_eq!(
            status_error(400, b"x"),
            "the server rejected our request for an unknown reason"
        );
        assert_eq!(
            status_error(500, b"boom\n"),
            "an error on the server (\"boom\") has prevented the request from succeeding"
        );
    }
}
