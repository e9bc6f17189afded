//! The parameter objects of one binding (upstream's `CollectParams`): none when the
//! policy has no `paramKind` or the binding no `paramRef` (the policy runs once with
//! `params` null), else the named object or those the selector picks, from the param
//! kind's watch cache. Namespaced params come from `paramRef.namespace`, else the
//! request's namespace.
//!
//! Invariants: no store read per request (a miss lets the cache catch up with what the
//! store already sent, bounded, as plugins' other reads); at most [`MAX_PARAMS`]
//! objects per binding; errors are upstream's texts (the dispatcher prefixes them with
//! `failed to configure binding: `).

use super::compile::{ParamKind, ParamRef};
use crate::app::App;
use serde_json::Value;

/// The most parameter objects one binding evaluates against.
pub const MAX_PARAMS: usize = 256;

/// The parameter objects to evaluate with (`[Null]`: once, without params).
pub async fn collect(
    app: &App,
    kind: Option<&ParamKind>,
    param_ref: Option<&ParamRef>,
    namespace: &str,
) -> Result<Vec<Value>, String> {
    let (Some(kind), Some(r)) = (kind, param_ref) else { return Ok(vec![Value::Null]) };
    let (group, version) = kind.api_version.rsplit_once('/').unwrap_or(("", &kind.api_version));
    let rt = app.registry().by_kind(group, version, &kind.kind).cloned();
    let Some(rt) = rt else {
        return Err(format!("paramKind kind `{}` not known", shown(kind)));
    };
    let ns = if !rt.namespaced {
        if r.namespace.is_some() {
            return Err(
                "paramRef.namespace must not be provided for a cluster-scoped `paramKind`".into()
            );
        }
        None
    } else {
        match r.namespace.as_deref().unwrap_or(namespace) {
            "" => {
                return Err("cannot use namespaced paramRef in policy binding that matches cluster-scoped resources".into());
            }
            ns => Some(ns),
        }
    };
    let Some(cache) = app.caches.get(app, &rt) else {
        return Err(format!(
            "paramKind kind `{}` not yet synced to use for admission",
            shown(kind)
        ));
    };
    let may_wait = crate::server::current::closer().is_some();
    if !(cache.is_loaded() || may_wait && crate::cache::wait_for(&cache, 0).await) {
        return Err(format!(
            "paramKind kind `{}` not yet synced to use for admission",
            shown(kind)
        ));
    }
    let params: Vec<Value> = match (&r.name, &r.selector) {
        (Some(_), Some(_)) => {
            return Err("paramRef.name and paramRef.selector are mutually exclusive".into());
        }
        (Some(name), None) => {
            let key = rt.storage_key(app.prefix(), ns, name);
            if cache.get(&key).0.is_none() && may_wait {
                crate::cache::settle(app, &cache).await;
            }
            cache.get(&key).0.map(|e| e.data.obj()).into_iter().collect()
        }
        (None, Some(selector)) => {
            let selector = selector.as_ref().map_err(Clone::clone)?;
            let (items, _, _) = cache.list(&rt.storage_prefix(app.prefix(), ns), None, 0);
            let picked = items.iter().filter(|e| selector.matches(e.data.labels()));
            picked.take(MAX_PARAMS).map(|e| e.data.obj()).collect()
        }
        (None, None) => return Err("one of name or selector must be provided".into()),
    };
    if params.is_empty() && r.deny_when_missing {
        return Err("no params found for policy binding with `Deny` parameterNotFoundAction".into());
    }
    Ok(params)
}

/// A param kind as Go prints it (`&ParamKind{APIVersion:v1,Kind:ConfigMap,}`).
fn shown(k: &ParamKind) -> String {
    format!("&ParamKind{{APIVersion:{},Kind:{},}}", k.api_version, k.kind)
}
