//! What token authentication reads, served from the watch caches: the ServiceAccounts,
//! Pods, Secrets and Nodes that ServiceAccount tokens name. No store read per request;
//! a miss may be a cache that has not applied a just-made write yet, which the handler
//! settles once before refusing.

use super::serviceaccount::{Kind, Objects};
use crate::app::App;
use serde_json::Value;

/// The caches of `app` as [`Objects`].
#[derive(Debug, Clone, Copy)]
pub struct CachedObjects<'a>(pub &'a App);

fn resource(kind: Kind) -> &'static str {
    match kind {
        Kind::ServiceAccount => "serviceaccounts",
        Kind::Pod => "pods",
        Kind::Secret => "secrets",
        Kind::Node => "nodes",
    }
}

impl CachedObjects<'_> {
    /// The caches token lookups read, to settle before a second try.
    pub async fn settle(&self) {
        for kind in [Kind::ServiceAccount, Kind::Pod, Kind::Secret, Kind::Node] {
            let app = self.0;
            if let Some(rt) = app.registry().get("", "v1", resource(kind)).cloned()
                && let Some(cache) = app.caches.get(app, &rt)
            {
                crate::cache::settle(app, &cache).await;
            }
        }
    }
}

impl Objects for CachedObjects<'_> {
    fn get(&self, kind: Kind, namespace: Option<&str>, name: &str) -> Option<Value> {
        let app = self.0;
        let binding = app.registry();
        let rt = binding.get("", "v1", resource(kind))?;
        let cache = app.caches.get(app, rt)?;
        let (entry, _) = cache.get(&rt.storage_key(app.prefix(), namespace, name));
        Some(entry?.data.obj())
    }
}
