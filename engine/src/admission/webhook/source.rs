//! The webhooks of one configuration kind (Mutating or Validating), as a compiled
//! snapshot of the `admissionregistration.k8s.io/v1` watch cache.
//!
//! A request looks at the cache's revision; when it moved since the snapshot was built,
//! the snapshot is rebuilt from the cache (configurations sorted by name, webhooks in
//! list order, as upstream's webhook managers) and swapped in whole. Configurations
//! whose resourceVersion did not change keep their compiled webhooks, so a rebuild
//! does not parse or compile again. Requests never read the store for configurations.
//!
//! Invariants: a snapshot is immutable once published; nothing here waits on a timer
//! (the server's bootstrap writes run before the serving cores); at most [`MAX_HOOKS`] webhooks
//! are kept (the rest are logged and skipped).

use super::hook::Hook;
use crate::app::App;
use crate::cache::Cache;
use crate::status::ApiError;
use arc_swap::ArcSwap;
use kapi_codec::ResourceType;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

const GROUP: &str = "admissionregistration.k8s.io";
/// The most webhooks one snapshot holds.
pub const MAX_HOOKS: usize = 4096;

/// One published set of webhooks.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The cache revision it was built at (None: never built).
    revision: Option<u64>,
    pub hooks: Vec<Arc<Hook>>,
    /// Compiled webhooks by configuration name, with its resourceVersion.
    by_config: HashMap<String, (String, Vec<Arc<Hook>>)>,
}

/// Where one plugin's webhooks come from.
pub struct Source {
    /// `mutatingwebhookconfigurations` or `validatingwebhookconfigurations`.
    plural: &'static str,
    snapshot: ArcSwap<Snapshot>,
}

impl Source {
    pub fn new(plural: &'static str) -> Source {
        Source { plural, snapshot: ArcSwap::from_pointee(Snapshot::default()) }
    }

    fn cache(&self, app: &App) -> Option<Arc<Cache>> {
        let reg = app.registry();
        let rt = reg.get(GROUP, "v1", self.plural)?;
        app.caches.get(app, rt)
    }

    /// Cheap: whether the published snapshot is current and has no webhooks (then the
    /// request need not go further). No allocation.
    pub fn surely_empty(&self, app: &App) -> bool {
        let snap = self.snapshot.load();
        if !snap.hooks.is_empty() {
            return false;
        }
        match self.cache(app) {
            None => true,
            Some(c) => c.is_loaded() && snap.revision == Some(c.revision()),
        }
    }

    /// The current webhooks: the snapshot, rebuilt first when the cache moved. Until
    /// the cache's first load is in (the server's own bootstrap writes), the
    /// configurations are read from the store for the request, not published.
    pub async fn current(&self, app: &App) -> Result<Arc<Snapshot>, ApiError> {
        let Some(cache) = self.cache(app) else { return Ok(self.snapshot.load_full()) };
        let reg = app.registry();
        let Some(rt) = reg.get(GROUP, "v1", self.plural) else {
            return Ok(self.snapshot.load_full());
        };
        let prefix = rt.storage_prefix(app.prefix(), None);
        if !cache.is_loaded() {
            let configs = stored_configs(app, rt, &prefix).await?;
            let mut unpublished = build(&Snapshot::default(), &configs, 0);
            unpublished.revision = None;
            return Ok(Arc::new(unpublished));
        }
        let snap = self.snapshot.load_full();
        if snap.revision == Some(cache.revision()) {
            return Ok(snap);
        }
        let (items, _, revision) = cache.list(&prefix, None, 0);
        let configs: Vec<Value> = items.iter().map(|e| e.data.obj()).collect();
        let built = Arc::new(build(&snap, &configs, revision));
        self.snapshot.store(built.clone());
        Ok(built)
    }
}

/// The configurations in the store (before the cache's first load).
async fn stored_configs(
    app: &App,
    rt: &ResourceType,
    prefix: &str,
) -> Result<Vec<Value>, ApiError> {
    let page = app.store.range(prefix, None, 0, None).await;
    let page = page.map_err(|e| ApiError::from_storage(e, &Default::default()))?;
    let decoded = page
        .items
        .iter()
        .filter_map(|kv| kapi_codec::stored::decode_object(rt, &kv.value, kv.mod_revision).ok());
    Ok(decoded.collect())
}

fn meta<'v>(config: &'v Value, field: &str) -> &'v str {
    config.get("metadata").and_then(|m| m.get(field)).and_then(Value::as_str).unwrap_or("")
}

/// A snapshot of `configs`, reusing what `previous` compiled for unchanged ones.
pub fn build(previous: &Snapshot, configs: &[Value], revision: u64) -> Snapshot {
    let mut sorted: Vec<&Value> = configs.iter().collect();
    sorted.sort_by(|a, b| meta(a, "name").cmp(meta(b, "name")));
    let mut hooks = Vec::new();
    let mut by_config = HashMap::with_capacity(sorted.len());
    for config in sorted {
        let (name, rv) = (meta(config, "name"), meta(config, "resourceVersion"));
        let compiled = match previous.by_config.get(name) {
            Some((old_rv, compiled)) if old_rv == rv && !rv.is_empty() => compiled.clone(),
            _ => Hook::all_of(config).into_iter().map(Arc::new).collect(),
        };
        if hooks.len() + compiled.len() > MAX_HOOKS {
            tracing::warn!(configuration = name, "too many admission webhooks; skipped");
            continue;
        }
        hooks.extend(compiled.iter().cloned());
        by_config.insert(name.to_string(), (rv.to_string(), compiled));
    }
    Snapshot { revision: Some(revision), hooks, by_config }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(name: &str, rv: &str, hooks: &[&str]) -> Value {
        let webhooks: Vec<Value> = hooks.iter().map(|h| json!({"name": h})).collect();
        json!({"metadata": {"name": name, "resourceVersion": rv}, "webhooks": webhooks})
    }

    #[test]
    fn webhooks_run_in_configuration_name_order_then_list_order() {
        let configs = [config("b", "1", &["z", "y"]), config("a", "1", &["x"])];
        let snap = build(&Snapshot::default(), &configs, 7);
        let names: Vec<&str> = snap.hooks.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["x", "z", "y"]);
        assert_eq!(snap.revision, Some(7));
    }

    #[test]
    fn unchanged_configurations_keep_their_compiled_webhooks() {
        let first =
            build(&Snapshot::default(), &[config("a", "1", &["x"]), config("b", "1", &["y"])], 1);
        let second = build(&first, &[config("a", "1", &["x"]), config("b", "2", &["y"])], 2);
        assert!(Arc::ptr_eq(&first.hooks[0], &second.hooks[0]));
        assert!(!Arc::ptr_eq(&first.hooks[1], &second.hooks[1]));
    }
}
