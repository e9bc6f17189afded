//! managedFields on the write path: every create and update records its manager's
//! fields (`kapi_codec::managed`); server-side apply computes them itself.

use super::Scope;
use crate::time;
use kapi_codec::managed::{self, Manager};
use serde_json::Value;

fn with_manager<R>(scope: &Scope<'_>, f: impl FnOnce(&Manager<'_>) -> R) -> R {
    let api_version = scope.rt.api_version();
    let now = time::now_rfc3339();
    let m = Manager {
        name: &scope.manager,
        apply: scope.apply,
        subresource: scope.info.subresource.as_deref(),
        api_version: &api_version,
        time: &now,
    };
    f(&m)
}

/// A new object: the creator owns what it set (taking it from managedFields the client
/// sent, as upstream).
pub fn on_create(scope: &Scope<'_>, obj: &mut Value) {
    if scope.apply {
        return;
    }
    with_manager(scope, |m| managed::record_update(None, obj, scope.rt.apply_type(), m));
}

/// An update of `current` to `new` (not by apply, which set managedFields itself).
pub fn on_update(scope: &Scope<'_>, current: &Value, new: &mut Value) {
    if scope.apply {
        return;
    }
    with_manager(scope, |m| managed::record_update(Some(current), new, scope.rt.apply_type(), m));
}

/// Server-side apply of `applied` onto `live` (None: create).
pub fn apply(
    scope: &Scope<'_>,
    live: Option<&Value>,
    applied: &Value,
    force: bool,
    target: &crate::status::Target,
) -> Result<Value, crate::status::ApiError> {
    with_manager(scope, |m| managed::apply(live, applied, scope.rt.apply_type(), m, force))
        .map_err(|c| crate::status::ApiError::ApplyConflict(target.clone(), c))
}
