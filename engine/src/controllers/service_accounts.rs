//! The `default` ServiceAccount of every namespace (upstream's controller manager's
//! serviceaccount controller; kapi runs standalone, and the ServiceAccount admission
//! plugin refuses pods whose ServiceAccount does not exist). Each sweep reads the
//! namespace and ServiceAccount caches and creates, through the write path, the
//! `default` account an active namespace lacks. Idempotent; a namespace being deleted
//! is left alone; when upstream's controller manager runs too, whichever creates the
//! account first wins and the other sees it exists.

use crate::app::App;
use crate::status::ApiError;
use serde_json::json;

/// The account every namespace gets.
pub const DEFAULT: &str = "default";

/// Create the `default` ServiceAccount of every active namespace that lacks one.
pub async fn ensure_defaults(app: &App) -> Result<(), String> {
    let reg = app.registry();
    let (Some(ns_rt), Some(sa_rt)) =
        (reg.get("", "v1", "namespaces").cloned(), reg.get("", "v1", "serviceaccounts").cloned())
    else {
        return Ok(());
    };
    let (Some(namespaces), Some(accounts)) =
        (app.caches.get(app, &ns_rt), app.caches.get(app, &sa_rt))
    else {
        return Ok(());
    };
    if !namespaces.is_loaded() || !accounts.is_loaded() {
        return Ok(());
    }
    let (items, _, _) = namespaces.list(&ns_rt.storage_prefix(app.prefix(), None), None, 0);
    for e in items {
        let Some(ns) = e.kv.key.rsplit('/').next() else { continue };
        let deleting = e.data.json().windows(20).any(|w| w == b"\"deletionTimestamp\":");
        let key = sa_rt.storage_key(app.prefix(), Some(ns), DEFAULT);
        if deleting || accounts.get(&key).0.is_some() {
            continue;
        }
        let sa =
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT}});
        match crate::rest::create_internal(app, "", "v1", "serviceaccounts", Some(ns), sa).await {
            // made meanwhile, or the namespace started terminating
            Ok(_) | Err(ApiError::AlreadyExists(_) | ApiError::ForbiddenTarget(..)) => {}
            Err(ApiError::NotFound(_)) => {}
            Err(e) => return Err(format!("creating {ns}/{DEFAULT}: {e}")),
        }
    }
    Ok(())
}
