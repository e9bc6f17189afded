//! The discovery manager (upstream's kube-aggregator `discoveryManager`): each
//! non-local APIService's entry in kapi's aggregated discovery, merged from its
//! extension server.
//!
//! Syncing an APIService: when the APIService's server is not available the fetch
//! fails at once (upstream's proxy answers its own request 503). Otherwise kapi asks the
//! server `GET /apis` for its aggregated discovery (v2, else v2beta1, as
//! `system:kube-aggregator` in `system:masters`, `If-None-Match` its last ETag): a 304
//! keeps the last document, a 503 fails, a 200 with an aggregated `Content-Type` is the
//! document (its entry for the APIService's group/version taken as the server says it,
//! an empty one when it lists none), and anything else (406, a plain APIGroupList, 404)
//! falls back to `GET /apis/GROUP/VERSION`, whose APIResourceList is converted (a non-200
//! answer fails). A fetched entry is `Current`; a failed fetch gives the version with no
//! resources, `Stale`.
//!
//! Invariants: aggregated documents are kept per Service (namespace, name, port) and
//! shared by the APIServices it serves, reused while newer than the APIService's last
//! change (several APIServices of one server marked in one sweep cost one fetch); legacy
//! lists are never kept (they describe one group/version). An APIService is synced again
//! when it changes (spec, resolved address, availability) and every [`REFRESH`]. Every
//! fetch is bounded by the client's probe bounds (time and body size); what is kept is
//! bounded by the APIServices that exist ([`Manager::retain`]).

use super::Target;
use super::client::{Client, Fetched};
use super::discovery::{self, VersionDiscovery};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How often every APIService's discovery is fetched again (upstream: every minute).
pub const REFRESH: Duration = Duration::from_secs(60);

/// The Service an APIService points at (upstream's `serviceKey`: port 443 by default).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceKey {
    pub namespace: String,
    pub name: String,
    pub port: i64,
}

/// One non-local APIService as this sweep found it.
pub struct ApiService<'a> {
    pub name: &'a str,
    pub group: &'a str,
    pub version: &'a str,
    pub service: ServiceKey,
    /// Changes whenever the APIService does (spec, address, availability).
    pub fingerprint: String,
    /// Where its server is, when it is available.
    pub reachable: Option<&'a Target>,
}

/// A server's aggregated discovery document, by group/version.
struct Document {
    etag: Option<String>,
    versions: HashMap<(String, String), VersionDiscovery>,
    /// When the request that fetched (or revalidated) it was sent.
    at: Instant,
}

/// An APIService's last sync.
struct Synced {
    fingerprint: String,
    marked: Instant,
    entry: Value,
}

#[derive(Default)]
pub struct Manager {
    documents: HashMap<ServiceKey, Document>,
    synced: HashMap<String, Synced>,
}

impl Manager {
    /// The aggregated discovery entry of `api`, synced first when it changed or
    /// [`REFRESH`] passed since. `marked` is when this sweep began.
    pub async fn entry(&mut self, client: &Client, api: &ApiService<'_>, marked: Instant) -> Value {
        if let Some(s) = self.synced.get(api.name)
            && s.fingerprint == api.fingerprint
            && s.marked.elapsed() < REFRESH
        {
            return s.entry.clone();
        }
        let entry = match self.fetch(client, api, marked).await {
            Ok(found) => {
                found.unwrap_or_else(|| VersionDiscovery::empty(api.version)).with_freshness(true)
            }
            Err(e) => {
                tracing::debug!(apiservice = api.name, "discovery: {e}");
                VersionDiscovery::empty(api.version).with_freshness(false)
            }
        };
        let entry = entry.to_value();
        let fingerprint = api.fingerprint.clone();
        self.synced
            .insert(api.name.to_string(), Synced { fingerprint, marked, entry: entry.clone() });
        entry
    }

    /// Forget APIServices not in `names`, and documents of Services none of `services`
    /// is.
    pub fn retain(&mut self, names: &[String], services: &[ServiceKey]) {
        self.synced.retain(|n, _| names.contains(n));
        self.documents.retain(|k, _| services.contains(k));
    }

    /// The server's entry for the APIService's group/version (None: it lists none).
    async fn fetch(
        &mut self,
        client: &Client,
        api: &ApiService<'_>,
        marked: Instant,
    ) -> Result<Option<VersionDiscovery>, String> {
        let Some(target) = api.reachable else {
            return Err("service unavailable".into());
        };
        let gv = (api.group.to_string(), api.version.to_string());
        if let Some(doc) = self.documents.get(&api.service).filter(|d| d.at >= marked) {
            return Ok(doc.versions.get(&gv).cloned());
        }
        let etag = self.documents.get(&api.service).and_then(|d| d.etag.clone());
        let at = Instant::now();
        let resp = client.get(target.clone(), "/apis", aggregated_headers(etag.as_deref())).await?;
        let content_type = resp.header(http::header::CONTENT_TYPE).unwrap_or("");
        match resp.status {
            304 => {
                let doc = self.documents.get_mut(&api.service).ok_or("304 without a document")?;
                doc.at = at;
                Ok(doc.versions.get(&gv).cloned())
            }
            503 => {
                Err(format!("service {:?} returned non-success response code: 503", api.service))
            }
            200 if discovery::is_aggregated(content_type) => {
                let versions = discovery::parse_aggregated(&resp.body)?;
                let found = versions.get(&gv).cloned();
                let etag = resp.header(http::header::ETAG).map(str::to_string);
                self.documents.insert(api.service.clone(), Document { etag, versions, at });
                Ok(found)
            }
            _ => legacy(client, target, api).await.map(Some),
        }
    }
}

/// The fallback: the server's APIResourceList for the APIService's group/version.
async fn legacy(
    client: &Client,
    target: &Target,
    api: &ApiService<'_>,
) -> Result<VersionDiscovery, String> {
    let path = format!("/apis/{}/{}", api.group, api.version);
    let resp: Fetched = client.get(target.clone(), &path, legacy_headers()).await?;
    if resp.status != 200 {
        return Err(format!(
            "failed to download legacy discovery for {path}: ResponseCode: {}",
            resp.status
        ));
    }
    let resources = discovery::from_resource_list(&resp.body)?;
    Ok(VersionDiscovery { version: api.version.to_string(), resources, freshness: String::new() })
}

fn header_map(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, v) in pairs {
        if let Ok(v) = http::HeaderValue::from_str(v) {
            h.append(*k, v);
        }
    }
    h
}

/// Upstream's request for an aggregated document: the aggregator's identity.
fn aggregated_headers(etag: Option<&str>) -> http::HeaderMap {
    let mut pairs = vec![
        ("x-remote-user", "system:kube-aggregator"),
        ("x-remote-group", "system:masters"),
        ("accept", discovery::ACCEPT_AGGREGATED),
        ("user-agent", "kapi-aggregator"),
    ];
    if let Some(etag) = etag {
        pairs.push(("if-none-match", etag));
    }
    header_map(&pairs)
}

/// Upstream's legacy fallback request: the aggregator's user, plain JSON.
fn legacy_headers() -> http::HeaderMap {
    header_map(&[
        ("x-remote-user", "system:kube-aggregator"),
        ("accept", "application/json"),
        ("user-agent", "kapi-aggregator"),
    ])
}
