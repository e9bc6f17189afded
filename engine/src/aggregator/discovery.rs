//! What discovery shows of APIServices: upstream's order of groups and versions
//! (`SortedByGroupAndVersion`: groups by the highest-ranked APIService's
//! `groupPriorityMinimum`, ties by APIService name; versions by `versionPriority`, ties
//! by Kubernetes-aware version order) and an extension's APIResourceList converted into
//! aggregated discovery's `APIResourceDiscovery` items (subresources folded into their
//! resource), as upstream's discovery manager converts servers without aggregated
//! discovery.

use super::Extension;
use serde_json::{Value, json};
use std::cmp::Ordering;

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

/// The `APIResourceDiscovery` items of an extension's APIResourceList for
/// `group`/`version`.
pub fn from_resource_list(list: &Value, group: &str, version: &str) -> Vec<Value> {
    let empty = Vec::new();
    let items = list.get("resources").and_then(Value::as_array).unwrap_or(&empty);
    let mut out: Vec<Value> = Vec::new();
    let kind_of = |r: &Value| {
        json!({
            "group": r.get("group").and_then(Value::as_str).unwrap_or(group),
            "version": r.get("version").and_then(Value::as_str).unwrap_or(version),
            "kind": r.get("kind").and_then(Value::as_str).unwrap_or(""),
        })
    };
    for r in items {
        let Some(name) = r.get("name").and_then(Value::as_str) else { continue };
        if name.contains('/') {
            continue;
        }
        let namespaced = r.get("namespaced").and_then(Value::as_bool).unwrap_or(false);
        let mut d = json!({
            "resource": name,
            "responseKind": kind_of(r),
            "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "singularResource": r.get("singularName").and_then(Value::as_str).unwrap_or(""),
            "verbs": r.get("verbs").cloned().unwrap_or_else(|| json!([])),
        });
        for key in ["shortNames", "categories"] {
            if let Some(v) = r.get(key).filter(|v| v.as_array().is_some_and(|a| !a.is_empty())) {
                d[key] = v.clone();
            }
        }
        out.push(d);
    }
    for r in items {
        let Some((parent, sub)) =
            r.get("name").and_then(Value::as_str).and_then(|n| n.split_once('/'))
        else {
            continue;
        };
        let Some(p) = out.iter_mut().find(|d| d["resource"] == parent) else { continue };
        let entry = json!({
            "subresource": sub,
            "responseKind": kind_of(r),
            "verbs": r.get("verbs").cloned().unwrap_or_else(|| json!([])),
        });
        match p.get_mut("subresources").and_then(Value::as_array_mut) {
            Some(list) => list.push(entry),
            None => p["subresources"] = json!([entry]),
        }
    }
    out
}

/// The aggregated discovery version entries of a group's extensions: available ones
/// `Current`, unavailable ones whose resources were fetched before `Stale`, others left
/// out.
pub fn version_entries(versions: &[&Extension]) -> Vec<Value> {
    versions
        .iter()
        .filter_map(|e| {
            let resources = e.resources.as_ref()?;
            let freshness = if e.available { "Current" } else { "Stale" };
            Some(json!({"version": e.version, "resources": resources, "freshness": freshness}))
        })
        .collect()
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
            resources: None,
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
        ]});
        let d = from_resource_list(&list, "m.io", "v1");
        assert_eq!(
            d,
            vec![json!({
                "resource": "widgets",
                "responseKind": {"group": "m.io", "version": "v1", "kind": "Widget"},
                "scope": "Namespaced", "singularResource": "widget", "verbs": ["get", "list"],
                "shortNames": ["wd"],
                "subresources": [{"subresource": "status",
                    "responseKind": {"group": "m.io", "version": "v1", "kind": "Widget"},
                    "verbs": ["get"]}],
            })]
        );
    }
}
