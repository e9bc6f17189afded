//! What admission plugins read: the objects of one resource in one namespace, from its
//! watch cache (never a store read per request). A resource that is not served, or
//! whose cache could not start, reads as empty. The key prefix is built in
//! `cached`'s per-thread buffer; a namespace without objects of the resource costs one
//! existence check per shard, no listing.

use crate::app::App;
use kapi_codec::ResourceType;
use serde_json::Value;
use std::sync::Arc;

/// The served type `group`/`version`/`plural`.
pub fn resource(app: &App, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
    app.registry().get(group, version, plural).cloned()
}

/// Every object of `rt` in `ns` (all namespaces for a cluster-scoped type), parsed.
pub fn objects(app: &App, rt: &Arc<ResourceType>, ns: &str) -> Vec<Value> {
    let Some(cache) = app.caches.get(app, rt) else { return Vec::new() };
    let (items, _, _) = super::cached::with_prefix(app, rt, Some(ns), |p| cache.list(p, None, 0));
    items.iter().map(|e| e.data.obj()).collect()
}

/// How many objects of `rt` are in `ns` (nothing parsed).
pub fn count(app: &App, rt: &Arc<ResourceType>, ns: &str) -> usize {
    let Some(cache) = app.caches.get(app, rt) else { return 0 };
    super::cached::with_prefix(app, rt, Some(ns), |p| cache.list(p, None, 0)).0.len()
}

/// Whether `rt` has any object in `ns` (nothing listed, parsed or allocated: most
/// namespaces have no LimitRange and no quota, and a create pays only this).
pub fn any(app: &App, rt: &Arc<ResourceType>, ns: &str) -> bool {
    let Some(cache) = app.caches.get(app, rt) else { return false };
    super::cached::with_prefix(app, rt, Some(ns), |p| cache.any_under(p))
}

/// Every object of the core/v1 resource `plural` in `ns` (none: no allocation).
pub fn core(app: &App, plural: &str, ns: &str) -> Vec<Value> {
    let Some(rt) = resource(app, "", "v1", plural) else { return Vec::new() };
    if !any(app, &rt, ns) {
        return Vec::new();
    }
    objects(app, &rt, ns)
}
