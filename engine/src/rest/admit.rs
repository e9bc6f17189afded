//! The admission phases on the write path: every verb that writes builds one
//! `admission::Attributes` per attempt and runs [`mutating`] before the type's strategy
//! prepares and validates the object, and [`validating`] after, just before the store
//! (dry run included). What the plugins add besides their verdict (warnings, audit
//! annotations) goes into the request's sink whatever the verdict, so a refusal's
//! answer carries them too.

use super::Scope;
use crate::admission::Attributes;
use crate::status::ApiError;
use serde_json::Value;
use std::time::Instant;

/// Run the mutating plugins on `obj`.
pub async fn mutating(
    scope: &Scope<'_>,
    a: &Attributes<'_>,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let chain = &scope.app.admission;
    if chain.is_empty() {
        return Ok(());
    }
    let start = Instant::now();
    let out = chain.admit(a, obj).await;
    crate::metrics::phase("admission", start.elapsed());
    drain(scope, a);
    out
}

/// Run the validating plugins on `obj`.
pub async fn validating(
    scope: &Scope<'_>,
    a: &Attributes<'_>,
    obj: &Value,
) -> Result<(), ApiError> {
    let chain = &scope.app.admission;
    if chain.is_empty() {
        return Ok(());
    }
    let start = Instant::now();
    let out = chain.validate(a, obj).await;
    crate::metrics::phase("admission", start.elapsed());
    drain(scope, a);
    out
}

/// Both phases at once, for writes whose object the strategy does not prepare
/// (subresource creates such as bindings, evictions and token requests, and deletes).
pub async fn both(scope: &Scope<'_>, a: &Attributes<'_>, obj: &mut Value) -> Result<(), ApiError> {
    mutating(scope, a, obj).await?;
    validating(scope, a, obj).await
}

fn drain(scope: &Scope<'_>, a: &Attributes<'_>) {
    match scope.sink {
        Some(sink) => sink.drain(a),
        // The server's own writes have no answer to carry them.
        None => {
            a.take_warnings();
            a.take_annotations();
        }
    }
}
