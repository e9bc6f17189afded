//! `etcd_request_duration_seconds{operation, type}`: the etcd backend's request
//! latencies, with upstream's buckets and its `type` label (the group-resource,
//! `pods`, `deployments.apps`). Only the etcd bridge thread records, so its one lock is
//! never contended on the request path; a scrape copies the figures.

use super::histogram::Histogram;
use kapi_codec::{Registry, ResourceType};
use kapi_storage::etcd::RequestObserver;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

type Figures = HashMap<(&'static str, String), Histogram>;

fn figures() -> &'static Mutex<Figures> {
    static FIGURES: OnceLock<Mutex<Figures>> = OnceLock::new();
    FIGURES.get_or_init(Mutex::default)
}

/// The observer the etcd backend reports to; keys are mapped onto resources under
/// `prefix` through the registry.
pub fn observer(registry: &'static Registry, prefix: &str) -> RequestObserver {
    let prefix = format!("{}/", prefix.trim_end_matches('/'));
    Arc::new(move |op, key, elapsed| {
        let kind = resource_of(registry, &prefix, key);
        let mut f = figures().lock();
        f.entry((op, kind))
            .or_insert_with(|| Histogram::new(super::DURATION_BUCKETS))
            .observe(elapsed.as_secs_f64());
    })
}

/// `pods` for `/registry/pods/ns/name`; the first key segment for keys of no resource.
fn resource_of(registry: &Registry, prefix: &str, key: &str) -> String {
    let Some(rest) = key.strip_prefix(prefix) else { return key.trim_matches('/').to_string() };
    let owner = registry.all().iter().find(|rt| {
        rest.strip_prefix(&*rt.storage_resource).is_some_and(|r| r.is_empty() || r.starts_with('/'))
    });
    match owner {
        Some(rt) => label(rt),
        None => rest.split('/').next().unwrap_or_default().to_string(),
    }
}

fn label(rt: &ResourceType) -> String {
    if rt.group.is_empty() { rt.plural.to_string() } else { format!("{}.{}", rt.plural, rt.group) }
}

/// A copy of the figures: ((operation, type), histogram), sorted.
pub fn snapshot() -> Vec<((&'static str, String), Histogram)> {
    let mut out: Vec<_> = figures().lock().iter().map(|(k, h)| (k.clone(), h.clone())).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_onto_upstreams_type_label() {
        let r = Registry::builtin();
        assert_eq!(resource_of(r, "/registry/", "/registry/pods/default/a"), "pods");
        assert_eq!(resource_of(r, "/registry/", "/registry/minions/n1"), "nodes");
        assert_eq!(resource_of(r, "/registry/", "/registry/deployments/"), "deployments.apps");
        assert_eq!(resource_of(r, "/registry/", "/registry/services/specs/default/k"), "services");
        assert_eq!(resource_of(r, "/registry/", "/registry/masterleases/10.0.0.1"), "masterleases");
        assert_eq!(resource_of(r, "/registry/", "compact_rev_key"), "compact_rev_key");
    }
}
