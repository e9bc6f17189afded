//! Aggregated discovery v2 (`apidiscovery.k8s.io/v2` APIGroupDiscoveryList) for /api
//! and /apis, which kubectl asks for first.

use super::{AGGREGATED_V2, bytes_response};
use crate::aggregator::Table;
use crate::app::App;
use crate::body::Response;
use bytes::Bytes;
use kapi_codec::{Registry, ResourceType};
use serde_json::{Value, json};

fn resource(t: &ResourceType) -> Value {
    let subresources: Vec<Value> = t
        .subresources
        .iter()
        .map(|s| {
            let (g, v) = if s.group.is_empty() && s.version == t.version { (&*t.group, &*t.version) } else { (s.group, s.version) };
            json!({"subresource": s.name, "responseKind": {"group": g, "version": v, "kind": t.sub_kind(s)}, "verbs": s.verbs})
        })
        .collect();
    let mut r = json!({
        "resource": t.plural,
        "responseKind": {"group": t.group, "version": t.version, "kind": t.kind},
        "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": t.singular,
        "verbs": t.verbs,
    });
    if !t.short_names.is_empty() {
        r["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        r["categories"] = json!(t.categories);
    }
    if !subresources.is_empty() {
        r["subresources"] = json!(subresources);
    }
    r
}

fn document(reg: &Registry, aggregated: &Table, core: bool) -> Value {
    let mut items: Vec<Value> = Vec::new();
    let mut groups: Vec<&str> = Vec::new();
    for (g, _) in reg.group_versions() {
        if g.is_empty() == core && !groups.contains(&g) {
            groups.push(g);
        }
    }
    for g in groups {
        let versions: Vec<Value> = reg
            .group_versions()
            .into_iter()
            .filter(|(gg, _)| *gg == g)
            .map(|(_, v)| {
                let resources: Vec<Value> =
                    reg.in_group_version(g, v).map(|t| resource(t)).collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        let mut meta = json!({"creationTimestamp": null});
        if !g.is_empty() {
            meta["name"] = json!(g);
        }
        items.push(json!({"metadata": meta, "versions": versions}));
    }
    if !core {
        for (g, exts) in aggregated.remote_groups() {
            let versions = crate::aggregator::discovery::version_entries(&exts);
            if reg.group_versions().iter().any(|(gg, _)| *gg == g) || versions.is_empty() {
                continue;
            }
            items.push(
                json!({"metadata": {"creationTimestamp": null, "name": g}, "versions": versions}),
            );
        }
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

pub fn response(app: &App, core: bool) -> Response {
    let served = app.served();
    let cell = if core { &served.docs.aggregated_core } else { &served.docs.aggregated_groups };
    let doc = cell.get_or_init(|| {
        Bytes::from(
            serde_json::to_vec(&document(&served.registry, &served.aggregated, core))
                .unwrap_or_default(),
        )
    });
    bytes_response(200, AGGREGATED_V2, doc.clone())
}
