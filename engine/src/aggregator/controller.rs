//! The APIService availability controller (upstream's `AvailableConditionController`)
//! and the publisher of `kube-system/extension-apiserver-authentication` (upstream's
//! cluster authentication trust controller), on one thread of their own.
//!
//! Every second it lists the APIServices and, for each, decides `Available`:
//! - no `spec.service`: True, `Local`;
//! - the Service is missing: False, `ServiceNotFound`; it has no port
//!   `spec.service.port` (default 443): False, `ServicePortError`;
//! - an ExternalName Service is reached at its external name; any other Service through
//!   its EndpointSlices (label `kubernetes.io/service-name`) or, when it has none, its
//!   Endpoints: the first ready address with the Service port's name (kapi cannot reach
//!   ClusterIPs, so it always routes to endpoints, as upstream's
//!   `--enable-aggregator-routing`); none: False, `EndpointsNotFound` /
//!   `MissingEndpoints`;
//! - then `GET /apis/GROUP/VERSION` over TLS as `system:kube-aggregator`
//!   (`system:masters`): a 2xx answer is True, `Passed` ("all checks passed"); anything
//!   else is False, `FailedDiscoveryCheck` with upstream's message;
//! - then its entry in aggregated discovery, from the discovery manager
//!   ([`super::manager`]).
//!
//! A probe's result is reused for [`REPROBE`] (failures for [`RETRY`]) unless the
//! APIService's spec or resolved address changed. The status is written only when it
//! changed (the transition time moves only when the condition's status does), and the
//! [`Table`] is republished only when what the request path sees changed.

use super::client::{Client, tls_config};
use super::manager::{ApiService, Manager, ServiceKey};
use super::{Extension, Table, Target};
use crate::app::App;
use crate::rest;
use base64::Engine as _;
use kapi_codec::Registry;
use kapi_storage::Precondition;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the APIServices are looked at.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// How long a passed availability check stands (upstream resyncs every 30 s but
/// re-checks on any change; kapi re-checks every 10 s).
pub const REPROBE: Duration = Duration::from_secs(10);
/// How long a failed check stands before it is tried again.
const RETRY: Duration = Duration::from_secs(2);

const GROUP: &str = "apiregistration.k8s.io";

/// What the ConfigMap `extension-apiserver-authentication` publishes.
#[derive(Debug, Clone)]
pub struct AuthenticationInfo {
    pub client_ca: String,
    pub requestheader_client_ca: String,
    pub requestheader_allowed_names: Vec<String>,
    pub requestheader_username_headers: Vec<String>,
    pub requestheader_group_headers: Vec<String>,
    pub requestheader_extra_headers_prefix: Vec<String>,
}

impl AuthenticationInfo {
    /// The ConfigMap's data, as upstream writes it (header lists as JSON arrays).
    pub fn data(&self) -> Value {
        let list = |v: &[String]| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        json!({
            "client-ca-file": self.client_ca,
            "requestheader-allowed-names": list(&self.requestheader_allowed_names),
            "requestheader-client-ca-file": self.requestheader_client_ca,
            "requestheader-extra-headers-prefix": list(&self.requestheader_extra_headers_prefix),
            "requestheader-group-headers": list(&self.requestheader_group_headers),
            "requestheader-username-headers": list(&self.requestheader_username_headers),
        })
    }
}

/// An availability check's outcome, kept between sweeps.
struct Checked {
    fingerprint: String,
    at: Instant,
    passed: bool,
    message: String,
}

#[derive(Default)]
pub struct State {
    checked: HashMap<String, Checked>,
    /// Each APIService's entry in aggregated discovery.
    discovery: Manager,
    /// What was last published (to republish only on change).
    published: String,
}

/// The `Available` condition decided for one APIService.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
}

impl Availability {
    fn new(status: &'static str, reason: &'static str, message: String) -> Availability {
        Availability { status, reason, message }
    }

    fn unavailable(reason: &'static str, message: String) -> Availability {
        Availability::new("False", reason, message)
    }
}

/// `obj` with its `Available` condition set as upstream's `SetAPIServiceCondition`
/// sets it: a new transition time only when the status changes.
pub fn with_condition(obj: &Value, a: &Availability, now: &str) -> Value {
    let mut next = obj.clone();
    let mut conds: Vec<Value> =
        obj.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
    let fresh = json!({"type": "Available", "status": a.status, "lastTransitionTime": now,
                       "reason": a.reason, "message": a.message});
    match conds.iter_mut().find(|c| c["type"] == "Available") {
        Some(c) if c["status"] == a.status => {
            c["reason"] = json!(a.reason);
            c["message"] = json!(a.message);
        }
        Some(c) => *c = fresh,
        None => conds.push(fresh),
    }
    if !next.get("status").is_some_and(Value::is_object) {
        next["status"] = json!({});
    }
    next["status"]["conditions"] = json!(conds);
    next
}

fn builtin(plural: &str, group: &str) -> Option<Arc<kapi_codec::ResourceType>> {
    Registry::builtin().all().iter().find(|t| t.group == group && t.plural == plural).cloned()
}

async fn get_object(
    app: &App,
    plural: &str,
    group: &str,
    ns: &str,
    name: &str,
) -> Result<Option<Value>, String> {
    let rt = builtin(plural, group).ok_or_else(|| format!("no {plural}"))?;
    let key = rt.storage_key(app.prefix(), Some(ns), name);
    match app.store.get(&key).await.map_err(|e| e.to_string())? {
        None => Ok(None),
        Some(kv) => rest::object::from_stored(&rt, &kv).map(Some).map_err(|e| e.to_string()),
    }
}

/// Where a Service's port is served: `(host, port)`, or why it cannot be reached.
async fn resolve(
    app: &App,
    ns: &str,
    name: &str,
    port: i64,
) -> Result<(String, u16), Availability> {
    let access = |e: String| {
        Availability::new(
            "Unknown",
            "ServiceAccessError",
            format!("service/{name} in {ns:?} cannot be checked due to: {e}"),
        )
    };
    let Some(svc) = get_object(app, "services", "", ns, name).await.map_err(access)? else {
        return Err(Availability::unavailable(
            "ServiceNotFound",
            format!("service/{name} in {ns:?} is not present"),
        ));
    };
    let as_port = |p: i64| u16::try_from(p).ok();
    if svc.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
        let host = svc.pointer("/spec/externalName").and_then(Value::as_str).unwrap_or("");
        return match as_port(port) {
            Some(p) if !host.is_empty() => Ok((host.to_string(), p)),
            _ => Err(Availability::unavailable(
                "ServicePortError",
                format!("service/{name} in {ns:?} is not listening on port {port}"),
            )),
        };
    }
    let ports = svc.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
    let Some(svc_port) = ports.iter().find(|p| p["port"].as_i64() == Some(port)) else {
        return Err(Availability::unavailable(
            "ServicePortError",
            format!("service/{name} in {ns:?} is not listening on port {port}"),
        ));
    };
    let port_name = svc_port.get("name").and_then(Value::as_str).unwrap_or("").to_string();
    let slices = endpoint_slices(app, ns, name).await.map_err(|e| {
        Availability::new(
            "Unknown",
            "EndpointsAccessError",
            format!("service/{name} in {ns:?} cannot be checked due to: {e}"),
        )
    })?;
    if !slices.is_empty() {
        return address_in_slices(&slices, &port_name).and_then(|(h, p)| Some((h, as_port(p)?))).ok_or_else(|| {
            Availability::unavailable(
                "MissingEndpoints",
                format!("endpointslices for service/{name} in {ns:?} have no addresses with port name {port_name:?}"),
            )
        });
    }
    let endpoints = get_object(app, "endpoints", "", ns, name).await.map_err(access)?;
    let Some(endpoints) = endpoints else {
        return Err(Availability::unavailable(
            "EndpointsNotFound",
            format!("cannot find endpointslices for service/{name} in {ns:?}"),
        ));
    };
    address_in_endpoints(&endpoints, &port_name).and_then(|(h, p)| Some((h, as_port(p)?))).ok_or_else(|| {
        Availability::unavailable(
            "MissingEndpoints",
            format!("endpoints for service/{name} in {ns:?} have no addresses with port name {port_name:?}"),
        )
    })
}

async fn endpoint_slices(app: &App, ns: &str, name: &str) -> Result<Vec<Value>, String> {
    let rt = builtin("endpointslices", "discovery.k8s.io").ok_or("no endpointslices")?;
    let prefix = rt.storage_prefix(app.prefix(), Some(ns));
    let page = app.store.range(&prefix, None, 0, None).await.map_err(|e| e.to_string())?;
    Ok(page
        .items
        .iter()
        .filter_map(|kv| rest::object::from_stored(&rt, kv).ok())
        .filter(|s| {
            s.pointer("/metadata/labels/kubernetes.io~1service-name").and_then(Value::as_str)
                == Some(name)
        })
        .collect())
}

/// The first ready address of `slices` with a port named `port_name`.
pub fn address_in_slices(slices: &[Value], port_name: &str) -> Option<(String, i64)> {
    for s in slices {
        let ports = s.get("ports").and_then(Value::as_array);
        let Some(port) = ports.into_iter().flatten().find(|p| {
            p.get("name").and_then(Value::as_str).unwrap_or("") == port_name
                && p.get("port").is_some_and(Value::is_i64)
        }) else {
            continue;
        };
        let endpoints = s.get("endpoints").and_then(Value::as_array);
        for e in endpoints.into_iter().flatten() {
            if e.pointer("/conditions/ready") == Some(&Value::Bool(false)) {
                continue;
            }
            if let Some(ip) = e.pointer("/addresses/0").and_then(Value::as_str) {
                return Some((ip.to_string(), port["port"].as_i64()?));
            }
        }
    }
    None
}

/// The first (ready) address of `endpoints` with a port named `port_name`.
pub fn address_in_endpoints(endpoints: &Value, port_name: &str) -> Option<(String, i64)> {
    let subsets = endpoints.get("subsets").and_then(Value::as_array);
    for s in subsets.into_iter().flatten() {
        let ports = s.get("ports").and_then(Value::as_array);
        let Some(port) = ports
            .into_iter()
            .flatten()
            .find(|p| p.get("name").and_then(Value::as_str).unwrap_or("") == port_name)
        else {
            continue;
        };
        if let Some(ip) = s.pointer("/addresses/0/ip").and_then(Value::as_str) {
            return Some((ip.to_string(), port.get("port")?.as_i64()?));
        }
    }
    None
}

/// The Service of an APIService's `spec.service` (port 443 by default).
fn service_key(svc: &Value) -> ServiceKey {
    ServiceKey {
        namespace: svc["namespace"].as_str().unwrap_or("").to_string(),
        name: svc["name"].as_str().unwrap_or("").to_string(),
        port: svc["port"].as_i64().unwrap_or(443),
    }
}

/// The identity the availability check presents (upstream's).
fn probe_headers() -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("x-remote-user", http::HeaderValue::from_static("system:kube-aggregator"));
    h.insert("x-remote-group", http::HeaderValue::from_static("system:masters"));
    h.insert(http::header::ACCEPT, http::HeaderValue::from_static("application/json"));
    h.insert(http::header::USER_AGENT, http::HeaderValue::from_static("kapi-aggregator"));
    h
}

/// Check `target`: whether it passed, and the message.
async fn check(client: &Client, target: &Target, group: &str, version: &str) -> (bool, String) {
    let url = format!("{}/apis/{group}/{version}", target.base_url());
    let path = format!("/apis/{group}/{version}");
    match client.get(target.clone(), &path, probe_headers()).await {
        Ok(resp) if (200..300).contains(&resp.status) => (true, "all checks passed".into()),
        Ok(resp) => (
            false,
            format!(
                "failing or missing response from {url}: bad status from {url}: {}",
                resp.status
            ),
        ),
        Err(e) => (false, format!("failing or missing response from {url}: Get \"{url}\": {e}")),
    }
}

/// One pass over the APIServices.
pub async fn sweep(app: &App, client: &Client, state: &mut State) -> Result<(), String> {
    let rt = builtin("apiservices", GROUP).ok_or("no apiservices")?;
    let prefix = rt.storage_prefix(app.prefix(), None);
    let page = app.store.range(&prefix, None, 0, None).await.map_err(|e| e.to_string())?;
    let began = Instant::now();
    let mut exts = Vec::new();
    let mut seen = Vec::new();
    let mut services = Vec::new();
    for kv in page.items {
        let Ok(obj) = rest::object::from_stored(&rt, &kv) else { continue };
        let name = kapi_codec::meta::name(&obj).unwrap_or("").to_string();
        let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
        let group = spec["group"].as_str().unwrap_or("").to_string();
        let version = spec["version"].as_str().unwrap_or("").to_string();
        let service = spec.get("service").filter(|s| s.is_object());
        let mut ext = Extension {
            name: name.clone(),
            group: group.clone(),
            version: version.clone(),
            group_priority: spec["groupPriorityMinimum"].as_i64().unwrap_or(0),
            version_priority: spec["versionPriority"].as_i64().unwrap_or(0),
            local: service.is_none(),
            available: false,
            target: None,
            discovery: None,
        };
        let availability = match service {
            None => {
                Availability::new("True", "Local", "Local APIServices are always available".into())
            }
            Some(svc) => {
                let ns = svc["namespace"].as_str().unwrap_or("");
                let svc_name = svc["name"].as_str().unwrap_or("");
                let port = svc["port"].as_i64().unwrap_or(443);
                match resolve(app, ns, svc_name, port).await {
                    Err(a) => a,
                    Ok((host, port)) => {
                        let ca = spec["caBundle"]
                            .as_str()
                            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                            .unwrap_or_default();
                        let insecure = spec["insecureSkipTLSVerify"].as_bool().unwrap_or(false);
                        match tls_config(&client.identity, &ca, insecure) {
                            Err(e) => Availability::unavailable("FailedDiscoveryCheck", e),
                            Ok(tls) => {
                                let target = Target {
                                    host,
                                    port,
                                    server_name: format!("{svc_name}.{ns}.svc"),
                                    tls,
                                };
                                let fingerprint = format!("{spec}|{}", target.base_url());
                                let fresh = state.checked.get(&name).is_some_and(|c| {
                                    c.fingerprint == fingerprint
                                        && c.at.elapsed() < if c.passed { REPROBE } else { RETRY }
                                });
                                if !fresh {
                                    let (passed, message) =
                                        check(client, &target, &group, &version).await;
                                    let at = Instant::now();
                                    let c = Checked { fingerprint, at, passed, message };
                                    state.checked.insert(name.clone(), c);
                                }
                                let c = &state.checked[&name];
                                ext.target = Some(target);
                                if c.passed {
                                    Availability::new("True", "Passed", c.message.clone())
                                } else {
                                    Availability::unavailable(
                                        "FailedDiscoveryCheck",
                                        c.message.clone(),
                                    )
                                }
                            }
                        }
                    }
                }
            }
        };
        ext.available = availability.status == "True";
        write_status(app, &rt, &kv.key, kv.mod_revision, &obj, &availability).await;
        if let Some(svc) = service {
            let key = service_key(svc);
            let api = ApiService {
                name: &name,
                group: &group,
                version: &version,
                service: key.clone(),
                fingerprint: format!(
                    "{spec}|{:?}|{availability:?}",
                    ext.target.as_ref().map(Target::base_url)
                ),
                reachable: ext.target.as_ref().filter(|_| ext.available),
            };
            ext.discovery = Some(state.discovery.entry(client, &api, began).await);
            services.push(key);
        }
        seen.push(name);
        exts.push((spec, ext));
    }
    state.checked.retain(|n, _| seen.contains(n));
    state.discovery.retain(&seen, &services);
    let signature: String = exts
        .iter()
        .map(|(spec, e)| {
            format!(
                "{}|{}|{}|{:?}|{}|{}\n",
                e.name,
                spec,
                e.available,
                e.target.as_ref().map(Target::base_url),
                e.discovery.as_ref().map(Value::to_string).unwrap_or_default(),
                e.local
            )
        })
        .collect();
    if signature != state.published {
        state.published = signature;
        app.set_aggregated(Arc::new(Table::new(exts.into_iter().map(|(_, e)| e).collect())));
    }
    Ok(())
}

async fn write_status(
    app: &App,
    rt: &kapi_codec::ResourceType,
    key: &str,
    rev: u64,
    obj: &Value,
    a: &Availability,
) {
    let next = with_condition(obj, a, &crate::time::now_rfc3339());
    if next.get("status") == obj.get("status") {
        return;
    }
    tracing::info!(apiservice = kapi_codec::meta::name(obj).unwrap_or(""), status = a.status, reason = a.reason, message = %a.message, "changing APIService availability");
    let bytes = rest::object::to_stored(rt, &next, app.storage_media);
    // A concurrent change is seen by the next sweep.
    let _ = app.store.update(key, bytes, Precondition::ModRevision(rev)).await;
}

/// Create or correct `kube-system/extension-apiserver-authentication`.
pub async fn publish_authentication(app: &App, info: &AuthenticationInfo) -> Result<(), String> {
    const NS: &str = "kube-system";
    const NAME: &str = "extension-apiserver-authentication";
    let rt = builtin("configmaps", "").ok_or("no configmaps")?;
    let key = rt.storage_key(app.prefix(), Some(NS), NAME);
    let data = info.data();
    match app.store.get(&key).await.map_err(|e| e.to_string())? {
        None => {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": NAME, "namespace": NS}, "data": data});
            match rest::create_internal(app, "", "v1", "configmaps", Some(NS), cm).await {
                Ok(_) | Err(crate::status::ApiError::AlreadyExists(_)) => Ok(()),
                Err(e) => Err(e.to_status()["message"].to_string()),
            }
        }
        Some(kv) => {
            let mut cm = rest::object::from_stored(&rt, &kv).map_err(|e| e.to_string())?;
            if cm.get("data") == Some(&data) {
                return Ok(());
            }
            cm["data"] = data;
            let bytes = rest::object::to_stored(&rt, &cm, app.storage_media);
            app.store
                .update(&key, bytes, Precondition::ModRevision(kv.mod_revision))
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        }
    }
}

/// Publish the authentication ConfigMap and the APIServices now, then keep following
/// them on the controller's own thread.
pub fn start(
    app: Arc<App>,
    client: Arc<Client>,
    auth: AuthenticationInfo,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let mut state = State::default();
    std::thread::Builder::new().name("kapi-apiservices".into()).spawn(move || {
        let mut last_auth: Option<Instant> = None;
        while !app.is_shutting_down() {
            if last_auth.is_none_or(|t| t.elapsed() >= REPROBE) {
                match futures_executor::block_on(publish_authentication(&app, &auth)) {
                    Ok(()) => last_auth = Some(Instant::now()),
                    Err(e) => tracing::debug!("extension-apiserver-authentication: {e}"),
                }
            }
            if let Err(e) = futures_executor::block_on(sweep(&app, &client, &mut state)) {
                tracing::debug!("apiservices: {e}");
            }
            std::thread::sleep(SWEEP_EVERY);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transition_time_moves_only_when_the_status_does() {
        let obj = json!({"metadata": {"name": "v1.x.io"}, "spec": {}});
        let passed = Availability::new("True", "Passed", "all checks passed".into());
        let a = with_condition(&obj, &passed, "T1");
        assert_eq!(
            a["status"]["conditions"],
            json!([{"type": "Available", "status": "True", "lastTransitionTime": "T1",
                    "reason": "Passed", "message": "all checks passed"}])
        );
        let local =
            Availability::new("True", "Local", "Local APIServices are always available".into());
        let b = with_condition(&a, &local, "T2");
        assert_eq!(b["status"]["conditions"][0]["lastTransitionTime"], "T1");
        assert_eq!(b["status"]["conditions"][0]["reason"], "Local");
        let down = Availability::unavailable("FailedDiscoveryCheck", "failing".into());
        let c = with_condition(&b, &down, "T3");
        assert_eq!(c["status"]["conditions"][0]["lastTransitionTime"], "T3");
        assert_eq!(c["status"]["conditions"][0]["status"], "False");
        assert_eq!(with_condition(&c, &down, "T4"), c);
    }

    #[test]
    fn endpoints_resolve_to_the_first_ready_address_with_the_port_name() {
        let slices =
            vec![json!({"endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": false}},
                                 {"addresses": ["10.0.0.2"]}],
                   "ports": [{"name": "https", "port": 8443}]})];
        assert_eq!(address_in_slices(&slices, "https"), Some(("10.0.0.2".into(), 8443)));
        assert_eq!(address_in_slices(&slices, "other"), None);
        let ep = json!({"subsets": [{"addresses": [], "ports": [{"port": 1}]},
                                    {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 9443}]}]});
        assert_eq!(address_in_endpoints(&ep, ""), Some(("127.0.0.1".into(), 9443)));
        assert_eq!(address_in_endpoints(&ep, "https"), None);
    }

    #[test]
    fn the_configmap_lists_headers_as_json() {
        let info = AuthenticationInfo {
            client_ca: "CA".into(),
            requestheader_client_ca: "FP".into(),
            requestheader_allowed_names: vec!["front-proxy-client".into()],
            requestheader_username_headers: vec!["X-Remote-User".into()],
            requestheader_group_headers: vec!["X-Remote-Group".into()],
            requestheader_extra_headers_prefix: vec!["X-Remote-Extra-".into()],
        };
        let d = info.data();
        assert_eq!(d["requestheader-username-headers"], "[\"X-Remote-User\"]");
        assert_eq!(d["requestheader-allowed-names"], "[\"front-proxy-client\"]");
        assert_eq!(d["client-ca-file"], "CA");
        assert_eq!(d["requestheader-client-ca-file"], "FP");
    }
}
