//! What discovery shows of APIServices: upstream's order of groups and versions
//! (`SortedByGroupAndVersion`: groups by the highest-ranked APIService's
//! `groupPriorityMinimum`, ties by APIService name; versions by `versionPriority`, ties
//! by Kubernetes-aware version order); aggregated discovery's types
//! (`apidiscovery.k8s.io/v2` `APIVersionDiscovery` and below) read from an extension
//! server's own document (v2 or v2beta1, recognised by its `Content-Type`) and written
//! back as upstream writes them (missing response kinds filled in as empty kinds,
//! unknown fields dropped); and an extension's legacy APIResourceList converted into
//! them, as upstream's discovery manager converts servers without aggregated discovery.

use super::Extension;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::cmp::Ordering;
use std::collections::HashMap;

/// Put `exts` in upstream's order.
pub fn sort(exts: &mut [Extension]) {
    // Rank APIServices by group priority (then name); a group goes where its first
    // APIService ranks.
    let mut ranked: Vec<&Extension> = exts.iter().collect();
    ranked.sort_by(|a, b| b.group_priority.cmp(&a.group_priority).then(a.name.cmp(&b.name)));
    let mut groups: Vec<String> = Vec::new();
    for e in ranked {
        if !groups.contains(&e.group) {
            groups.push(e.group.clone());
        }
    }
    let rank = |g: &str| groups.iter().position(|x| x == g).unwrap_or(usize::MAX);
    exts.sort_by(|a, b| {
        rank(&a.group).cmp(&rank(&b.group)).then_with(|| {
            b.version_priority
                .cmp(&a.version_priority)
                .then_with(|| compare_kube_versions(&b.version, &a.version))
        })
    });
}

/// A Kubernetes-looking version: `v1`, `v2beta3`, `v1alpha1`.
fn parse_kube_version(v: &str) -> Option<(u8, u64, u64)> {
    let rest = v.strip_prefix('v')?;
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    let major: u64 = rest[..digits].parse().ok().filter(|m| *m > 0)?;
    let tail = &rest[digits..];
    if rest[..digits].starts_with('0') {
        return None;
    }
    if tail.is_empty() {
        return Some((2, major, 0));
    }
    let (stability, minor) = if let Some(m) = tail.strip_prefix("beta") {
        (1, m)
    } else if let Some(m) = tail.strip_prefix("alpha") {
        (0, m)
    } else {
        return None;
    };
    if minor.is_empty() || minor.starts_with('0') || !minor.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stability, major, minor.parse().ok()?))
}

/// Upstream's `CompareKubeAwareVersionStrings`: Greater when `a` ranks before `b`
/// (GA before beta before alpha, higher numbers first; other strings last, in
/// alphabetical order).
pub fn compare_kube_versions(a: &str, b: &str) -> Ordering {
    match (parse_kube_version(a), parse_kube_version(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => b.cmp(a),
    }
}

/// A `GroupVersionKind` as discovery writes it (every field, empty ones too).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Gvk {
    #[serde(default, deserialize_with = "or_default")]
    pub group: String,
    #[serde(default, deserialize_with = "or_default")]
    pub version: String,
    #[serde(default, deserialize_with = "or_default")]
    pub kind: String,
}

/// `apidiscovery.k8s.io/v2` `APISubresourceDiscovery`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubresourceDiscovery {
    #[serde(default, deserialize_with = "or_default")]
    pub subresource: String,
    /// Always written: a missing one becomes an empty kind, as upstream fills it in
    /// (old clients panic on a null).
    #[serde(default, deserialize_with = "or_default")]
    pub response_kind: Gvk,
    #[serde(default, deserialize_with = "or_default", skip_serializing_if = "Vec::is_empty")]
    pub accepted_types: Vec<Gvk>,
    /// `null` when the server gave none (Go's nil slice).
    #[serde(default)]
    pub verbs: Option<Vec<String>>,
}

/// `apidiscovery.k8s.io/v2` `APIResourceDiscovery`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDiscovery {
    #[serde(default, deserialize_with = "or_default")]
    pub resource: String,
    #[serde(default, deserialize_with = "or_default")]
    pub response_kind: Gvk,
    #[serde(default, deserialize_with = "or_default")]
    pub scope: String,
    #[serde(default, deserialize_with = "or_default")]
    pub singular_resource: String,
    #[serde(default)]
    pub verbs: Option<Vec<String>>,
    #[serde(default, deserialize_with = "or_default", skip_serializing_if = "Vec::is_empty")]
    pub short_names: Vec<String>,
    #[serde(default, deserialize_with = "or_default", skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(default, deserialize_with = "or_default", skip_serializing_if = "Vec::is_empty")]
    pub subresources: Vec<SubresourceDiscovery>,
}

/// `apidiscovery.k8s.io/v2` `APIVersionDiscovery`: one version of a group in
/// aggregated discovery.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct VersionDiscovery {
    #[serde(default, deserialize_with = "or_default")]
    pub version: String,
    #[serde(default, deserialize_with = "or_default", skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceDiscovery>,
    #[serde(default, deserialize_with = "or_default", skip_serializing_if = "String::is_empty")]
    pub freshness: String,
}

impl VersionDiscovery {
    /// A version without resources (upstream's placeholder for an APIService whose
    /// server did not say).
    pub fn empty(version: &str) -> VersionDiscovery {
        VersionDiscovery {
            version: version.into(),
            resources: Vec::new(),
            freshness: String::new(),
        }
    }

    /// This entry marked `Current` (fetched now) or `Stale` (the fetch failed).
    pub fn with_freshness(mut self, current: bool) -> VersionDiscovery {
        self.freshness = if current { "Current" } else { "Stale" }.into();
        self
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

#[derive(Deserialize)]
struct GroupDiscovery {
    #[serde(default, deserialize_with = "or_default")]
    metadata: GroupMeta,
    #[serde(default, deserialize_with = "or_default")]
    versions: Vec<VersionDiscovery>,
}

#[derive(Deserialize, Default)]
struct GroupMeta {
    #[serde(default, deserialize_with = "or_default")]
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupDiscoveryList {
    #[serde(default, deserialize_with = "or_default")]
    kind: String,
    #[serde(default, deserialize_with = "or_default")]
    api_version: String,
    #[serde(default, deserialize_with = "or_default")]
    items: Vec<GroupDiscovery>,
}

/// A JSON null reads as the zero value, as Go's decoder leaves it.
fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// What kapi sends to ask an extension server for its aggregated discovery (v2, then
/// v2beta1), as upstream's discovery manager.
pub const ACCEPT_AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// Whether a response's `Content-Type` says it is an aggregated discovery document
/// (JSON `apidiscovery.k8s.io` v2 or v2beta1 `APIGroupDiscoveryList`). A server that
/// ignores the Accept parameters answers plain JSON (its APIGroupList): not one.
pub fn is_aggregated(content_type: &str) -> bool {
    let mut parts = content_type.split(';').map(str::trim);
    if !parts.next().is_some_and(|e| e.eq_ignore_ascii_case("application/json")) {
        return false;
    }
    let mut params: Vec<(String, &str)> = Vec::new();
    for p in parts {
        let Some((k, v)) = p.split_once('=') else { return false };
        params.push((k.trim().to_ascii_lowercase(), v.trim().trim_matches('"')));
    }
    let param = |k: &str| params.iter().find(|(pk, _)| pk == k).map(|(_, v)| *v);
    param("g") == Some("apidiscovery.k8s.io")
        && matches!(param("v"), Some("v2" | "v2beta1"))
        && param("as") == Some("APIGroupDiscoveryList")
}

/// Every group/version an aggregated discovery document lists, by `(group, version)`.
pub fn parse_aggregated(
    body: &[u8],
) -> Result<HashMap<(String, String), VersionDiscovery>, String> {
    let list: GroupDiscoveryList = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let known = matches!(
        list.api_version.as_str(),
        "apidiscovery.k8s.io/v2" | "apidiscovery.k8s.io/v2beta1"
    );
    if list.kind != "APIGroupDiscoveryList" || !known {
        return Err(format!("not an APIGroupDiscoveryList: {}, {}", list.api_version, list.kind));
    }
    let mut out = HashMap::new();
    for g in list.items {
        for v in g.versions {
            out.insert((g.metadata.name.clone(), v.version.clone()), v);
        }
    }
    Ok(out)
}

/// One `APIResource` of a legacy `APIResourceList`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyResource {
    #[serde(default, deserialize_with = "or_default")]
    name: String,
    #[serde(default, deserialize_with = "or_default")]
    singular_name: String,
    #[serde(default, deserialize_with = "or_default")]
    namespaced: bool,
    #[serde(default, deserialize_with = "or_default")]
    group: String,
    #[serde(default, deserialize_with = "or_default")]
    version: String,
    #[serde(default, deserialize_with = "or_default")]
    kind: String,
    #[serde(default)]
    verbs: Option<Vec<String>>,
    #[serde(default, deserialize_with = "or_default")]
    short_names: Vec<String>,
    #[serde(default, deserialize_with = "or_default")]
    categories: Vec<String>,
}

#[derive(Deserialize)]
struct LegacyList {
    #[serde(default, deserialize_with = "or_default")]
    resources: Vec<LegacyResource>,
}

/// An extension's APIResourceList (the body of `GET /apis/GROUP/VERSION`) as
/// aggregated discovery resources, as upstream's `ConvertGroupVersionIntoToDiscovery`:
/// kinds as the list gives them (an empty group and version when it leaves them out),
/// subresources folded into their resource (one without its resource gets an empty
/// one of its own scope), a subresource whose scope differs from its resource's an
/// error.
pub fn from_resource_list(body: &[u8]) -> Result<Vec<ResourceDiscovery>, String> {
    let list: LegacyList = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let scope = |r: &LegacyResource| if r.namespaced { "Namespaced" } else { "Cluster" };
    let kind = |r: &LegacyResource| Gvk {
        group: r.group.clone(),
        version: r.version.clone(),
        kind: r.kind.clone(),
    };
    let mut out: Vec<ResourceDiscovery> = Vec::new();
    for r in list.resources.iter().filter(|r| !r.name.contains('/')) {
        out.push(ResourceDiscovery {
            resource: r.name.clone(),
            response_kind: kind(r),
            scope: scope(r).into(),
            singular_resource: r.singular_name.clone(),
            verbs: r.verbs.clone(),
            short_names: r.short_names.clone(),
            categories: r.categories.clone(),
            subresources: Vec::new(),
        });
    }
    for r in &list.resources {
        let Some((parent, sub)) = r.name.split_once('/') else { continue };
        let at = match out.iter().position(|d| d.resource == parent) {
            Some(at) => at,
            None => {
                out.push(ResourceDiscovery {
                    resource: parent.into(),
                    response_kind: Gvk::default(),
                    scope: scope(r).into(),
                    singular_resource: String::new(),
                    verbs: None,
                    short_names: Vec::new(),
                    categories: Vec::new(),
                    subresources: Vec::new(),
                });
                out.len() - 1
            }
        };
        if out[at].scope != scope(r) {
            return Err(format!(
                "Error: Parent {parent} (scope: {}) and subresource {sub} (scope: {}) scope do not match",
                out[at].scope,
                scope(r)
            ));
        }
        let response_kind = if r.kind.is_empty() { Gvk::default() } else { kind(r) };
        out[at].subresources.push(SubresourceDiscovery {
            subresource: sub.into(),
            response_kind,
            accepted_types: Vec::new(),
            verbs: r.verbs.clone(),
        });
    }
    Ok(out)
}

/// The aggregated discovery version entries of a group's extensions, as the
/// discovery manager last synced them (extensions not synced yet left out).
pub fn version_entries(versions: &[&Extension]) -> Vec<Value> {
    versions.iter().filter_map(|e| e.discovery.clone()).collect()
}

/// The legacy `APIGroup` of a group served by extensions (without kind/apiVersion).
pub fn legacy_group(group: &str, versions: &[&Extension]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|e| json!({"groupVersion": format!("{group}/{}", e.version), "version": e.version}))
        .collect();
    let preferred = vs.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": vs, "preferredVersion": preferred})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str, gp: i64, vp: i64) -> Extension {
        let (version, group) = name.split_once('.').unwrap();
        Extension {
            name: name.into(),
            group: group.into(),
            version: version.into(),
            group_priority: gp,
            version_priority: vp,
            local: false,
            available: true,
            target: None,
            discovery: None,
        }
    }

    #[test]
    fn kube_versions_rank_as_upstream() {
        let mut vs = vec![
            "foo10",
            "v1",
            "v11alpha2",
            "v12alpha1",
            "v3beta1",
            "v10beta3",
            "v11beta2",
            "v2",
            "foo1",
        ];
        vs.sort_by(|a, b| compare_kube_versions(b, a));
        assert_eq!(
            vs,
            [
                "v2",
                "v1",
                "v11beta2",
                "v10beta3",
                "v3beta1",
                "v12alpha1",
                "v11alpha2",
                "foo1",
                "foo10"
            ]
        );
    }

    #[test]
    fn groups_by_priority_then_name_and_versions_by_priority_then_version() {
        let mut exts = vec![
            ext("v1.b.io", 100, 10),
            ext("v1beta1.a.io", 100, 15),
            ext("v1.a.io", 100, 15),
            ext("v1alpha1.a.io", 100, 20),
            ext("v1.c.io", 2000, 1),
        ];
        sort(&mut exts);
        let names: Vec<&str> = exts.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["v1.c.io", "v1alpha1.a.io", "v1.a.io", "v1beta1.a.io", "v1.b.io"]);
        let table = super::super::Table::new(exts);
        let groups: Vec<&str> = table.remote_groups().iter().map(|(g, _)| *g).collect();
        assert_eq!(groups, ["c.io", "a.io", "b.io"]);
    }

    #[test]
    fn a_resource_list_converts_with_subresources_folded_in() {
        let list = json!({"kind": "APIResourceList", "groupVersion": "m.io/v1", "resources": [
            {"name": "widgets", "singularName": "widget", "namespaced": true, "kind": "Widget",
             "verbs": ["get", "list"], "shortNames": ["wd"]},
            {"name": "widgets/status", "singularName": "", "namespaced": true, "kind": "Widget",
             "verbs": ["get"]},
            {"name": "gadgets/scale", "namespaced": false, "group": "autoscaling",
             "version": "v1", "kind": "Scale", "verbs": ["get"]},
        ]});
        let d = from_resource_list(list.to_string().as_bytes()).unwrap();
        let v = VersionDiscovery { version: "v1".into(), resources: d, freshness: String::new() };
        assert_eq!(
            v.with_freshness(true).to_value(),
            json!({"version": "v1", "resources": [{
                "resource": "widgets",
                "responseKind": {"group": "", "version": "", "kind": "Widget"},
                "scope": "Namespaced", "singularResource": "widget", "verbs": ["get", "list"],
                "shortNames": ["wd"],
                "subresources": [{"subresource": "status",
                    "responseKind": {"group": "", "version": "", "kind": "Widget"},
                    "verbs": ["get"]}],
            }, {
                "resource": "gadgets",
                "responseKind": {"group": "", "version": "", "kind": ""},
                "scope": "Cluster", "singularResource": "", "verbs": null,
                "subresources": [{"subresource": "scale",
                    "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
                    "verbs": ["get"]}],
            }], "freshness": "Current"})
        );
    }

    #[test]
    fn a_subresource_of_another_scope_than_its_resource_is_an_error() {
        let list = json!({"resources": [
            {"name": "widgets", "namespaced": true, "kind": "Widget", "verbs": []},
            {"name": "widgets/status", "namespaced": false, "kind": "Widget", "verbs": []},
        ]});
        let err = from_resource_list(list.to_string().as_bytes()).unwrap_err();
        assert!(err.contains("scope do not match"), "{err}");
    }

    #[test]
    fn aggregated_documents_are_recognised_by_their_content_type() {
        assert!(is_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        ));
        assert!(is_aggregated(
            "application/json; g=apidiscovery.k8s.io; v=v2beta1; as=APIGroupDiscoveryList"
        ));
        assert!(!is_aggregated("application/json"));
        assert!(!is_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v1;as=APIGroupDiscoveryList"
        ));
        assert!(!is_aggregated(
            "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        ));
        assert!(!is_aggregated("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupList"));
    }

    /// The server's own entry is taken as it says (short names, categories,
    /// subresources, scope, response kinds); unknown fields are dropped and missing
    /// response kinds filled in as empty ones, as upstream re-encodes what it decoded.
    #[test]
    fn an_aggregated_document_gives_each_group_version_its_entry() {
        let doc = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": [{"metadata": {"name": "m.io"}, "versions": [
                {"version": "v1", "freshness": "Current", "extra": 1, "resources": [
                    {"resource": "widgets", "scope": "Namespaced", "singularResource": "widget",
                     "verbs": ["get"], "shortNames": ["wdg"], "categories": ["gadgets"],
                     "subresources": [{"subresource": "status", "verbs": ["get"]}],
                     "unknownField": true}]},
                {"version": "v2", "resources": null}]},
            {"metadata": {"name": "other.io"}, "versions": [{"version": "v1"}]}]});
        let map = parse_aggregated(doc.to_string().as_bytes()).unwrap();
        assert_eq!(map.len(), 3);
        let v1 = map[&("m.io".to_string(), "v1".to_string())].clone();
        assert_eq!(
            v1.with_freshness(false).to_value(),
            json!({"version": "v1", "resources": [{
                "resource": "widgets",
                "responseKind": {"group": "", "version": "", "kind": ""},
                "scope": "Namespaced", "singularResource": "widget", "verbs": ["get"],
                "shortNames": ["wdg"], "categories": ["gadgets"],
                "subresources": [{"subresource": "status",
                    "responseKind": {"group": "", "version": "", "kind": ""},
                    "verbs": ["get"]}],
            }], "freshness": "Stale"})
        );
        let v2 = map[&("m.io".to_string(), "v2".to_string())].clone();
        assert_eq!(v2.to_value(), json!({"version": "v2"}));
        let beta = doc.to_string().replace("apidiscovery.k8s.io/v2", "apidiscovery.k8s.io/v2beta1");
        assert_eq!(parse_aggregated(beta.as_bytes()).unwrap().len(), 3);
    }

    #[test]
    fn a_document_of_another_kind_is_not_aggregated_discovery() {
        let groups = json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []});
        assert!(parse_aggregated(groups.to_string().as_bytes()).is_err());
        let bad = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
                         "items": [{"versions": [{"version": "v1", "resources": [{"verbs": 5}]}]}]});
        assert!(parse_aggregated(bad.to_string().as_bytes()).is_err());
    }
}
