//! GET of one object (and of its status subresource).

use super::{Scope, object, table};
use crate::body::Response;
use crate::negotiation::{self, Output};
use crate::status::ApiError;

pub async fn get(scope: &Scope<'_>) -> Result<Response, ApiError> {
    let name = scope.url_name()?;
    let kv = scope
        .app
        .store
        .get(&scope.key(name))
        .await
        .map_err(|e| ApiError::from_storage(e, &scope.target(name)))?
        .ok_or_else(|| ApiError::NotFound(scope.target(name)))?;
    let obj = object::from_stored(scope.rt, &kv)?;
    if scope.output == Output::Table {
        let t =
            table::render(scope, std::slice::from_ref(&obj), &kv.mod_revision.to_string(), None)?;
        return Ok(negotiation::respond(200, &t, Output::Table, scope.pretty));
    }
    Ok(negotiation::respond(200, &obj, scope.output, scope.pretty))
}
