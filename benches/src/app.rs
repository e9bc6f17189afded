//! A real engine `App` on the embedded store (temp dir, fsync off) for benches and tests
//! of the request path: bootstrapped, every watch cache started and loaded, the
//! `default` namespace's ServiceAccount in place, so a pod create runs the same code
//! (admission included) as one through the HTTP server. [`Create`] drives pod creates
//! through the REST handler (`kapi::rest::handle`, what the server calls once a request
//! is authenticated, authorized and its body read), in-process.

use bytes::Bytes;
use futures_executor::block_on;
use kapi::admission::Sink;
use kapi::app::App;
use kapi::auth::UserInfo;
use kapi::body::Response;
use kapi::config::Options;
use kapi::request::RequestInfo;
use kapi_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An App over an embedded store in `dir`, ready to serve pod creates in `default`,
/// storing JSON (the embedded store's default).
pub fn app(dir: &Path) -> Arc<App> {
    app_storing(dir, None)
}

/// [`app`] storing values in `media` (`application/vnd.kubernetes.protobuf`: the etcd
/// backend's default) when given.
pub fn app_storing(dir: &Path, media: Option<&str>) -> Arc<App> {
    let mut options = Options::for_test(dir.to_path_buf(), 0);
    options.storage_media_type = media.map(str::to_string);
    let opts = EmbeddedOptions { fsync: false, ..Default::default() };
    let store = EmbeddedStore::open(&dir.join("store"), opts).expect("store");
    let authorizer = Arc::new(kapi::authz::Chain::new(vec![kapi::authz::Mode::Rbac]));
    let (_tx, rx) = flume::bounded(1);
    let app = App::new(options, store, Default::default(), authorizer, rx).expect("app");
    let app = Arc::new(app);
    block_on(kapi::controllers::bootstrap::run(&app)).expect("bootstrap");
    for rt in app.registry().all() {
        app.caches.get(&app, rt);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while block_on(kapi::controllers::service_accounts::ensure_defaults(&app)).is_ok()
        && !has_default_account(&app)
    {
        assert!(Instant::now() < deadline, "the default ServiceAccount never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    app
}

fn has_default_account(app: &App) -> bool {
    let reg = app.registry();
    let rt = reg.get("", "v1", "serviceaccounts").expect("serviceaccounts").clone();
    let cache = app.caches.get(app, &rt).expect("cache");
    cache.get(&rt.storage_key(app.prefix(), Some("default"), "default")).0.is_some()
}

/// What a pod create in `default` sends: the request line's info, the headers of a
/// JSON client, the user (a member of `system:masters`).
pub struct Create {
    pub info: RequestInfo,
    pub headers: http::HeaderMap,
    pub user: UserInfo,
}

impl Default for Create {
    fn default() -> Self {
        Self::new()
    }
}

impl Create {
    pub fn new() -> Create {
        let path = "/api/v1/namespaces/default/pods";
        let info = kapi::request::parse(&http::Method::POST, path, None);
        let mut headers = http::HeaderMap::new();
        let json = http::HeaderValue::from_static("application/json");
        headers.insert(http::header::CONTENT_TYPE, json.clone());
        headers.insert(http::header::ACCEPT, json);
        headers.insert(http::header::USER_AGENT, http::HeaderValue::from_static("bench/1.0"));
        let user = UserInfo {
            name: "admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            ..Default::default()
        };
        Create { info, headers, user }
    }

    /// POST `body` through the REST handler; the response.
    pub fn send(&self, app: &App, body: Bytes) -> Response {
        let sink = Sink::default();
        let req = kapi::rest::Request {
            app,
            info: &self.info,
            headers: &self.headers,
            body,
            user: &self.user,
            sink: &sink,
        };
        block_on(kapi::rest::handle(req))
    }

    /// A merge patch of pod `name` in `default` through the REST handler, as this
    /// client; the response.
    pub fn merge_patch(&self, app: &App, name: &str, patch: &Value) -> Response {
        let path = format!("/api/v1/namespaces/default/pods/{name}");
        let info = kapi::request::parse(&http::Method::PATCH, &path, None);
        let mut headers = self.headers.clone();
        let merge = http::HeaderValue::from_static("application/merge-patch+json");
        headers.insert(http::header::CONTENT_TYPE, merge);
        let sink = Sink::default();
        let req = kapi::rest::Request {
            app,
            info: &info,
            headers: &headers,
            body: Bytes::from(patch.to_string()),
            user: &self.user,
            sink: &sink,
        };
        block_on(kapi::rest::handle(req))
    }

    /// The handler's scope of this request (for the stage benches).
    pub fn scope<'a>(&'a self, app: &'a App) -> kapi::rest::Scope<'a> {
        let reg = app.registry();
        let rt = reg.get("", "v1", "pods").expect("pods").clone();
        kapi::rest::Scope {
            app,
            info: &self.info,
            rt,
            namespace: Some("default".into()),
            name: None,
            output: kapi::negotiation::Output::Json,
            pretty: false,
            manager: "bench".into(),
            apply: false,
            user: Some(&self.user),
            sink: None,
        }
    }
}

/// The whole body of a response.
pub fn body(resp: Response) -> Vec<u8> {
    use http_body_util::BodyExt;
    let mut body = resp.into_body();
    let mut out = Vec::new();
    while let Some(frame) = block_on(body.frame()) {
        if let Ok(chunk) = frame.expect("frame").into_data() {
            chunk.pieces().iter().for_each(|piece| out.extend_from_slice(piece));
        }
    }
    out
}

/// A pod create body: `template` (a pod's JSON) named `name`, written compactly.
pub fn pod_body(template: &Value, name: &str) -> Bytes {
    let mut pod = template.clone();
    pod["metadata"]["name"] = Value::from(name);
    if let Some(m) = pod["metadata"].as_object_mut() {
        m.remove("namespace");
    }
    Bytes::from(serde_json::to_vec(&pod).expect("pod JSON"))
}

/// A pod template the way a client creates one: the bench fixture ([`crate::pod`])
/// without what the server sets (uid, resourceVersion, creationTimestamp, status,
/// nodeName, the defaults admission adds).
pub fn client_pod() -> Value {
    let mut pod = crate::pod(1);
    let obj = pod.as_object_mut().expect("object");
    obj.remove("status");
    let meta = obj["metadata"].as_object_mut().expect("metadata");
    for k in ["uid", "resourceVersion", "creationTimestamp", "generateName", "ownerReferences"] {
        meta.remove(k);
    }
    let spec = obj["spec"].as_object_mut().expect("spec");
    for k in ["nodeName", "tolerations", "priority", "volumes"] {
        spec.remove(k);
    }
    for c in spec["containers"].as_array_mut().expect("containers") {
        c.as_object_mut().expect("container").remove("volumeMounts");
    }
    pod
}

/// Where the ServiceAccount plugin mounts the token volume.
const TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The bench pod as a user writes it, for the admission chain's bench and bound test:
/// `web-1` in `default`, unscheduled (PodTopologyLabels has nothing to do), without
/// token volume or mount, tolerations, ServiceAccount or priority (the chain adds them).
pub fn admission_pod() -> Value {
    let mut pod = crate::pod(1);
    let spec = pod["spec"].as_object_mut().expect("spec");
    for field in ["volumes", "tolerations", "serviceAccountName", "priority", "nodeName"] {
        spec.remove(field);
    }
    // The fixture mounts its own token volume; a pod as a user writes it does not (a
    // container that mounts something at the token path keeps it and gets no token
    // volume).
    for list in ["containers", "initContainers"] {
        for c in spec.get_mut(list).and_then(|v| v.as_array_mut()).into_iter().flatten() {
            if let Some(mounts) = c.get_mut("volumeMounts").and_then(|m| m.as_array_mut()) {
                mounts.retain(|m| m["mountPath"] != TOKEN_PATH);
            }
        }
    }
    pod["metadata"] = serde_json::json!({"name": "web-1", "namespace": "default"});
    pod
}

/// Run both phases of `chain` on a clone of `pod` as `create_object` runs them (a
/// create of `web-1` in `scope`); the admitted pod.
pub fn admit_create(
    chain: &kapi::admission::Chain,
    scope: &kapi::rest::Scope<'_>,
    pod: &Value,
) -> Value {
    use kapi::admission::{Attributes, Operation};
    let mut obj = pod.clone();
    let a = Attributes::new(scope, Operation::Create, "web-1", None);
    block_on(async {
        chain.admit(&a, &mut obj).await.expect("admitted");
        chain.validate(&a, &obj).await.expect("valid");
    });
    obj
}
