//! GET of one object (and of its status subresource), from the watch cache once it has
//! caught up with the revision the read must observe; from the store otherwise.

use super::{Scope, object, table};
use crate::body::Response;
use crate::negotiation::{self, Output};
use crate::status::ApiError;

pub async fn get(scope: &Scope<'_>) -> Result<Response, ApiError> {
    let name = scope.url_name()?;
    let (obj, rv) = read_with_revision(scope, name).await?;
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
    if let Some(cache) = scope.app.caches.get(scope.app, scope.rt) {
        let rv = scope.param("resourceVersion");
        let need = crate::cache::required_revision(scope.app, rv)?;
        if crate::cache::wait_for(&cache, need).await {
            let (entry, _) = cache.get(&scope.key(name));
            let entry = entry.ok_or_else(|| ApiError::NotFound(scope.target(name)))?;
            return Ok((entry.data.obj.clone(), entry.kv.mod_revision));
        }
        if rv.is_some_and(|v| !v.is_empty()) {
            return Err(crate::cache::too_large(&cache, need));
        }
    }
    let kv = scope
        .app
        .store
        .get(&scope.key(name))
        .await
        .map_err(|e| ApiError::from_storage(e, &scope.target(name)))?
        .ok_or_else(|| ApiError::NotFound(scope.target(name)))?;
    Ok((object::from_stored(scope.rt, &kv)?, kv.mod_revision))
}
