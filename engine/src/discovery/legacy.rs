//! Legacy (unaggregated) discovery documents: APIVersions, APIGroupList, APIGroup,
//! APIResourceList.

use crate::aggregator::{Table, discovery};
use kapi_codec::{Registry, ResourceType};
use serde_json::{Value, json};

pub fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    })
}

/// Versions of a group in preference order (table order puts the preferred first).
fn versions_of<'a>(reg: &'a Registry, group: &str) -> Vec<&'a str> {
    reg.group_versions().into_iter().filter(|(g, _)| *g == group).map(|(_, v)| v).collect()
}

fn group_doc(reg: &Registry, group: &str) -> Value {
    let versions: Vec<Value> = versions_of(reg, group)
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

pub fn group_list(reg: &Registry, aggregated: &Table) -> Value {
    let mut groups: Vec<&str> = Vec::new();
    for (g, _) in reg.group_versions() {
        if !g.is_empty() && !groups.contains(&g) {
            groups.push(g);
        }
    }
    let mut docs: Vec<Value> = groups.iter().map(|g| group_doc(reg, g)).collect();
    for (g, versions) in aggregated.remote_groups() {
        if !groups.contains(&g) {
            docs.push(discovery::legacy_group(g, &versions));
        }
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": docs})
}

pub fn group(reg: &Registry, aggregated: &Table, group: &str) -> Option<Value> {
    let mut doc = if versions_of(reg, group).is_empty() {
        let (g, versions) = aggregated.remote_groups().into_iter().find(|(g, _)| *g == group)?;
        discovery::legacy_group(g, &versions)
    } else {
        group_doc(reg, group)
    };
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn resource_entry(t: &ResourceType) -> Value {
    let mut r = json!({
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": t.verbs,
    });
    if !t.short_names.is_empty() {
        r["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        r["categories"] = json!(t.categories);
    }
    r
}

fn subresource_entry(t: &ResourceType, s: &kapi_codec::registry::Subresource) -> Value {
    let mut r = json!({
        "name": format!("{}/{}", t.plural, s.name),
        "singularName": "",
        "namespaced": t.namespaced,
        "kind": t.sub_kind(s),
        "verbs": s.verbs,
    });
    if !s.group.is_empty() || s.version != t.version {
        r["group"] = json!(s.group);
        r["version"] = json!(s.version);
    }
    r
}

pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for t in reg.in_group_version(group, version) {
        resources.push(resource_entry(t));
        for s in t.subresources.iter() {
            resources.push(subresource_entry(t, s));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() { version.to_string() } else { format!("{group}/{version}") };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}
