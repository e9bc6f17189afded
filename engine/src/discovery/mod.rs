//! Discovery endpoints generated from the registry: /version, /api, /api/v1, /apis,
//! /apis/{group}, /apis/{group}/{version}, aggregated discovery v2 (by Accept) and the
//! OpenAPI v2/v3 documents. Documents are built once and served as shared bytes. Groups
//! of non-local APIServices follow the built-in and custom groups in /apis (legacy and
//! aggregated, with the extension's resources); `/apis/GROUP/VERSION` of such a group is
//! proxied before it gets here (`aggregator::proxy`).

mod aggregated;
mod legacy;

use crate::app::{App, Served};
use crate::body::{Response, ResponseBody};
use crate::negotiation::{self, Output};
use crate::request::RequestInfo;
use crate::status::ApiError;
use bytes::Bytes;
use kapi_codec::{openapi, openapi_pb};
use serde_json::{Value, json};
use std::sync::OnceLock;

pub(crate) const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// GET /version.
pub fn version() -> Response {
    static DOC: OnceLock<Bytes> = OnceLock::new();
    let doc = DOC.get_or_init(|| {
        let v = json!({
            "major": "1",
            "minor": "35",
            "emulationMajor": "1",
            "emulationMinor": "35",
            "minCompatibilityMajor": "1",
            "minCompatibilityMinor": "34",
            "gitVersion": concat!("v1.35.0-kapi.", env!("CARGO_PKG_VERSION")),
            "gitCommit": "",
            "gitTreeState": "clean",
            "buildDate": "1970-01-01T00:00:00Z",
            "goVersion": "n/a (rust)",
            "compiler": "rustc",
            "platform": format!("{}/{}", std::env::consts::OS, goarch()),
        });
        Bytes::from(serde_json::to_vec_pretty(&v).unwrap_or_default())
    });
    bytes_response(200, "application/json", doc.clone())
}

fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub(crate) fn bytes_response(code: u16, content_type: &str, body: Bytes) -> Response {
    http::Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(ResponseBody::full(body))
        .unwrap_or_else(|_| http::Response::new(ResponseBody::empty()))
}

fn wants_aggregated(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').next().is_some_and(|first| {
            first.contains("as=APIGroupDiscoveryList")
                && first.contains("v=v2")
                && !first.contains("v=v2beta1")
        }) || a.split(',').any(|r| {
            r.contains("as=APIGroupDiscoveryList") && r.contains("v=v2;")
                || r.trim().ends_with("v=v2;as=APIGroupDiscoveryList")
        })
    })
}

fn not_found() -> Response {
    let body = Bytes::from_static(b"404 page not found\n");
    bytes_response(404, "text/plain; charset=utf-8", body)
}

/// Serve a non-resource path, or 404.
pub fn handle(app: &App, info: &RequestInfo, accept: Option<&str>) -> Response {
    if info.verb != "get" && info.verb != "head" {
        let e = ApiError::MethodNotAllowed(format!(
            "the server does not allow this method on the requested resource ({})",
            info.path
        ));
        return negotiation::error_response(&e, Output::Json);
    }
    let path = info.path.trim_end_matches('/');
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["api"] if wants_aggregated(accept) => aggregated::response(app, true),
        ["apis"] if wants_aggregated(accept) => aggregated::response(app, false),
        ["api"] => json_doc(legacy::api_versions()),
        ["apis"] => {
            let served = app.served();
            json_doc(legacy::group_list(&served.registry, &served.aggregated))
        }
        ["api", "v1"] => {
            legacy::resource_list(&app.registry(), "", "v1").map_or_else(not_found, json_doc)
        }
        ["apis", group] => {
            let served = app.served();
            legacy::group(&served.registry, &served.aggregated, group)
                .map_or_else(not_found, json_doc)
        }
        ["apis", group, version] => {
            legacy::resource_list(&app.registry(), group, version).map_or_else(not_found, json_doc)
        }
        ["openapi", "v2"] => openapi_v2(app, accept),
        ["openapi", "v3"] => {
            bytes_response(200, "application/json", v3_docs(&app.served()).index.clone())
        }
        ["openapi", "v3", rest @ ..] => openapi_v3(app, rest),
        _ => not_found(),
    }
}

fn json_doc(v: Value) -> Response {
    negotiation::respond(200, &v, Output::Json, false)
}

/// The documents of one registry snapshot, each made on first use.
#[derive(Default)]
pub struct Docs {
    pub(crate) aggregated_core: OnceLock<Bytes>,
    pub(crate) aggregated_groups: OnceLock<Bytes>,
    v2_json: OnceLock<Bytes>,
    v2_pb: OnceLock<Bytes>,
    v3: OnceLock<V3Docs>,
}

fn openapi_v2(app: &App, accept: Option<&str>) -> Response {
    let served = app.served();
    let doc = || openapi::v2(&served.registry);
    // The protobuf form (gnostic's openapi.v2.Document) when it is the first type asked for
    // that is served: what kubectl's discovery client sends.
    let pb_at = accept.and_then(|a| {
        a.find(openapi_pb::MEDIA_TYPE_ASKED).or_else(|| a.find(openapi_pb::MEDIA_TYPE))
    });
    let json_at = accept.and_then(|a| a.find("json").or_else(|| a.find("*/*")));
    if pb_at.is_some_and(|p| json_at.is_none_or(|j| p < j)) {
        let pb = served.docs.v2_pb.get_or_init(|| Bytes::from(openapi_pb::encode_v2(&doc())));
        return bytes_response(200, openapi_pb::MEDIA_TYPE, pb.clone());
    }
    if accept.is_some() && json_at.is_none() {
        let e = ApiError::NotAcceptable(format!(
            "only application/json and {} are served for /openapi/v2",
            openapi_pb::MEDIA_TYPE
        ));
        return negotiation::error_response(&e, Output::Json);
    }
    let json = served
        .docs
        .v2_json
        .get_or_init(|| Bytes::from(serde_json::to_vec(&doc()).unwrap_or_default()));
    bytes_response(200, "application/json", json.clone())
}

/// The v3 index and every group/version document, serialized once.
struct V3Docs {
    index: Bytes,
    by_path: std::collections::HashMap<String, Bytes>,
}

fn v3_docs(served: &Served) -> &V3Docs {
    served.docs.v3.get_or_init(|| {
        let reg = &served.registry;
        let mut by_path = std::collections::HashMap::new();
        for (group, version) in reg.group_versions() {
            if let Some(doc) = openapi::v3_group_version(reg, group, version) {
                let key = if group.is_empty() {
                    format!("api/{version}")
                } else {
                    format!("apis/{group}/{version}")
                };
                by_path.insert(key, Bytes::from(serde_json::to_vec(&doc).unwrap_or_default()));
            }
        }
        let index = Bytes::from(serde_json::to_vec(&openapi::v3_index(reg)).unwrap_or_default());
        V3Docs { index, by_path }
    })
}

fn openapi_v3(app: &App, rest: &[&str]) -> Response {
    match v3_docs(&app.served()).by_path.get(&rest.join("/")) {
        Some(doc) => bytes_response(200, "application/json", doc.clone()),
        None => not_found(),
    }
}
