//! Lookups of the topology facts, and the facts against upstream's swagger.json.

use super::*;
use std::collections::BTreeSet;

#[test]
fn lookups() {
    let ports = list_type("io.k8s.api.core.v1.Container", "ports");
    assert_eq!(ports.keys().collect::<Vec<_>>(), ["containerPort", "protocol"]);
    let containers = list_type("io.k8s.api.core.v1.PodSpec", "containers");
    assert_eq!(containers.keys().collect::<Vec<_>>(), ["name"]);
    assert_eq!(containers.key_default("name"), Some(json!("")));
    assert_eq!(
        list_type("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "finalizers"),
        ListType::Set
    );
    assert_eq!(list_type("io.k8s.api.core.v1.Container", "args"), ListType::Atomic);
    assert_eq!(list_type("io.k8s.api.batch.v1.JobStatus", "conditions"), ListType::Atomic);
    let selector = Some("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector");
    assert!(atomic_map("io.k8s.api.apps.v1.DeploymentSpec", "selector", selector));
    assert!(atomic_map("io.k8s.api.core.v1.PodSpec", "nodeSelector", None));
    let claim = Some("io.k8s.api.core.v1.ObjectReference");
    assert!(!atomic_map("io.k8s.api.core.v1.PersistentVolumeSpec", "claimRef", claim));

    assert_eq!(key_default("protocol"), Some(json!("TCP")));
    let secrets = list_type("io.k8s.api.core.v1.ServiceAccount", "secrets");
    assert_eq!(secrets.keys().collect::<Vec<_>>(), ["name"]);
    assert_eq!(secrets.key_default("name"), None);
}

type Facts = BTreeSet<(String, String, String)>;

/// `(definition, field or "", extension value)` of every list type, list-map keys and
/// map type in a set of definitions.
fn facts(definitions: &Map<String, Value>, only: &Map<String, Value>) -> Facts {
    let mut out = Facts::new();
    for (name, def) in definitions.iter().filter(|(n, _)| only.contains_key(*n)) {
        if let Some(t) = def.get("x-kubernetes-map-type") {
            out.insert((name.clone(), String::new(), format!("map-type {t}")));
        }
        for (field, prop) in def.get("properties").and_then(Value::as_object).into_iter().flatten()
        {
            for ext in
                ["x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type"]
            {
                if let Some(v) = prop.get(ext) {
                    out.insert((name.clone(), field.clone(), format!("{ext} {v}")));
                }
            }
        }
    }
    out
}

#[test]
fn facts_match_upstream_when_the_spec_is_present() {
    let Some(swagger) = crate::spec_files::swagger() else { return };
    let upstream_defs = swagger["definitions"].as_object().unwrap();
    // Every type kapi knows, the beta and alpha versions --runtime-config turns on
    // included (their facts come from their GA twins').
    let served = &crate::schema::builtin().definitions;
    let upstream = facts(upstream_defs, served);
    let ours = facts(served, upstream_defs);
    let missing: Vec<_> = upstream.difference(&ours).collect();
    let extra: Vec<_> = ours.difference(&upstream).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:#?}\nextra {extra:#?}");
}

/// `(definition, field, key, default)` of every list-map key in a set of OpenAPI v3
/// component schemas.
fn key_defaults(schemas: &Map<String, Value>, only: &Map<String, Value>) -> Facts {
    let mut out = Facts::new();
    for (name, def) in schemas.iter().filter(|(n, _)| only.contains_key(*n)) {
        for (field, prop) in def.get("properties").and_then(Value::as_object).into_iter().flatten()
        {
            let Some(keys) = prop.get("x-kubernetes-list-map-keys").and_then(Value::as_array)
            else {
                continue;
            };
            let items = &prop["items"];
            let item_ref = items.get("$ref").or_else(|| items.pointer("/allOf/0/$ref"));
            let item = item_ref.and_then(Value::as_str).and_then(|r| r.rsplit('/').next());
            let Some(item) = item.and_then(|i| schemas.get(i)) else { continue };
            for key in keys.iter().filter_map(Value::as_str) {
                let default =
                    item["properties"][key].get("default").cloned().unwrap_or(Value::Null);
                out.insert((format!("{name}.{field}"), key.to_string(), default.to_string()));
            }
        }
    }
    out
}

#[test]
fn key_defaults_match_upstream_openapi_v3_when_present() {
    let Some(dir) = crate::spec_files::path("openapi-v3") else { return };
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let served = &crate::schema::builtin().definitions;
    let mut upstream = Facts::new();
    for entry in entries.flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        if let Some(schemas) = doc.pointer("/components/schemas").and_then(Value::as_object) {
            upstream.extend(key_defaults(schemas, served));
        }
    }
    let mut ours = Facts::new();
    for (name, def) in served {
        for (field, _) in def.get("properties").and_then(Value::as_object).into_iter().flatten() {
            let list = list_type(name, field);
            for key in list.keys() {
                let default = list.key_default(key).unwrap_or(Value::Null);
                ours.insert((format!("{name}.{field}"), key.to_string(), default.to_string()));
            }
        }
    }
    let ours: Facts =
        ours.into_iter().filter(|(l, ..)| upstream.iter().any(|(u, ..)| u == l)).collect();
    assert!(!upstream.is_empty());
    let missing: Vec<_> = upstream.difference(&ours).collect();
    let extra: Vec<_> = ours.difference(&upstream).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:#?}\nextra {extra:#?}");
}
