//! GET of one object (and of its status subresource), from the watch cache once it has
//! caught up with the revision the read must observe; from the store otherwise.

use super::{Scope, encoded, table};
use crate::body::Response;
use crate::cache::Cached;
use crate::negotiation::{self, Output};
use crate::status::ApiError;
use kapi_storage::cache::CacheEntry;
use std::sync::Arc;

pub async fn get(scope: &Scope<'_>) -> Result<Response, ApiError> {
    let name = scope.url_name()?;
    let read_start = std::time::Instant::now();
    let from_cache = cached(scope, name).await;
    crate::metrics::phase("storage", read_start.elapsed());
    let from_cache = from_cache?;
    if let Some(entry) = &from_cache
        && scope.info.subresource.is_none()
        && encoded::supported(scope.output, scope.pretty)
        && let Some(resp) = encoded::object(&scope.rt, &entry.data, scope.output)
    {
        return Ok(resp);
    }
    let (obj, rv) = match from_cache {
        Some(e) => (crate::twin::obj(&scope.rt, &e.data), e.kv.mod_revision),
        None => from_store(scope, name).await?,
    };
    if scope.output == Output::Table {
        let t = table::render(scope, std::slice::from_ref(&obj), &rv.to_string(), None)?;
        return Ok(negotiation::respond(200, &t, Output::Table, scope.pretty));
    }
    if scope.output.is_metadata() {
        return Ok(negotiation::respond(
            200,
            &negotiation::partial(&obj),
            scope.output,
            scope.pretty,
        ));
    }
    Ok(negotiation::respond(200, &obj, scope.output, scope.pretty))
}

/// The current object named `name` (404 when absent).
pub async fn read(scope: &Scope<'_>, name: &str) -> Result<serde_json::Value, ApiError> {
    Ok(read_with_revision(scope, name).await?.0)
}

async fn read_with_revision(
    scope: &Scope<'_>,
    name: &str,
) -> Result<(serde_json::Value, u64), ApiError> {
    match cached(scope, name).await? {
        Some(e) => Ok((crate::twin::obj(&scope.rt, &e.data), e.kv.mod_revision)),
        None => from_store(scope, name).await,
    }
}

/// The cache's entry once the cache has reached the revision the read must observe;
/// None when the store must answer (no cache, or a consistent read finds it behind).
async fn cached(
    scope: &Scope<'_>,
    name: &str,
) -> Result<Option<Arc<CacheEntry<Cached>>>, ApiError> {
    let Some(cache) = scope.app.caches.get(scope.app, &scope.rt) else { return Ok(None) };
    let rv = scope.param("resourceVersion");
    if rv.is_none_or(str::is_empty) && crate::conversion::read_through(&scope.rt) {
        // Upstream's GET without a resourceVersion reads the store, so the webhook
        // converts what it answers (and its failure is the answer).
        return Ok(None);
    }
    let need = crate::cache::required_revision(scope.app, rv).await?;
    if crate::cache::wait_for(&cache, need).await {
        let (entry, _) = cache.get(&scope.key(name));
        return entry.map(Some).ok_or_else(|| ApiError::NotFound(scope.target(name)));
    }
    if rv.is_some_and(|v| !v.is_empty()) {
        return Err(crate::cache::too_large(&cache, need));
    }
    Ok(None)
}

async fn from_store(scope: &Scope<'_>, name: &str) -> Result<(serde_json::Value, u64), ApiError> {
    let kv = scope
        .app
        .store
        .get(&scope.key(name))
        .await
        .map_err(|e| ApiError::from_storage(e, &scope.target(name)))?
        .ok_or_else(|| ApiError::NotFound(scope.target(name)))?;
    let obj = crate::conversion::from_stored(scope.app, &scope.rt, &kv).await?;
    Ok((obj, kv.mod_revision))
}
