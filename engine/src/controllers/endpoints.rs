//! The lease endpoint reconciler (upstream's `--endpoint-reconciler-type=lease`): every
//! API server sharing a store keeps a key `{prefix}/masterleases/{ip}` alive (the etcd
//! backend writes it with a 15 s lease), and the Endpoints of `default/kubernetes` list
//! the IPs of every live key, so clients in the cluster reach every replica.
//!
//! Runs only on a shared store (etcd); with the embedded store there is one server and
//! bootstrap's Endpoints are already right. Idempotent; writes only on change.

use crate::app::App;
use crate::rest::object;
use kapi_storage::{Precondition, StorageError};
use serde_json::{Value, json};
use std::time::Duration;

/// How long a replica stays listed after its last renewal (upstream: 15 s).
pub const LEASE_TTL: Duration = Duration::from_secs(15);

/// The key prefix of the replicas' leases.
pub fn lease_prefix(prefix: &str) -> String {
    format!("{}/masterleases/", prefix.trim_end_matches('/'))
}

/// The IP this server advertises.
pub fn own_ip(app: &App) -> String {
    match app.options.bind_address {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        ip => ip.to_string(),
    }
}

/// Renew this server's lease and bring the `kubernetes` Endpoints up to date.
pub async fn reconcile(app: &App) -> Result<(), String> {
    renew(app).await.map_err(|e| format!("renewing the apiserver lease: {e}"))?;
    sync_endpoints(app).await
}

/// Drop this server's lease (graceful shutdown) and update the Endpoints.
pub async fn remove_self(app: &App) -> Result<(), String> {
    let key = format!("{}{}", lease_prefix(app.prefix()), own_ip(app));
    match app.store.delete(&key, Precondition::None).await {
        Ok(_) | Err(StorageError::NotFound { .. }) => {}
        Err(e) => return Err(e.to_string()),
    }
    sync_endpoints(app).await
}

async fn renew(app: &App) -> Result<(), StorageError> {
    let ip = own_ip(app);
    let key = format!("{}{ip}", lease_prefix(app.prefix()));
    let value = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": ip}});
    let bytes = bytes::Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
    match app.store.get(&key).await? {
        // Every write attaches a fresh lease, so an update is a renewal.
        Some(kv) => app.store.update(&key, bytes, Precondition::ModRevision(kv.mod_revision)).await,
        None => app.store.create(&key, bytes).await,
    }
    .map(drop)
}

/// Set the addresses of `default/kubernetes` to the live leases' IPs, sorted.
async fn sync_endpoints(app: &App) -> Result<(), String> {
    let page = app
        .store
        .range(&lease_prefix(app.prefix()), None, 0, None)
        .await
        .map_err(|e| e.to_string())?;
    let mut ips: Vec<String> =
        page.items.iter().filter_map(|kv| kv.key.rsplit('/').next().map(str::to_string)).collect();
    ips.sort();
    let Some(rt) = app.registry().get("", "v1", "endpoints").cloned() else { return Ok(()) };
    let key = rt.storage_key(app.prefix(), Some("default"), "kubernetes");
    let Some(kv) = app.store.get(&key).await.map_err(|e| e.to_string())? else { return Ok(()) };
    let mut current = object::from_stored(&rt, &kv).map_err(|e| format!("{e:?}"))?;
    let subsets = json!([{
        "addresses": ips.iter().map(|ip| json!({"ip": ip})).collect::<Vec<Value>>(),
        "ports": [{"name": "https", "port": app.options.secure_port, "protocol": "TCP"}],
    }]);
    if current.get("subsets") == Some(&subsets) {
        return Ok(());
    }
    current["subsets"] = subsets;
    let stored = object::to_stored(&rt, &current, app.storage_media);
    match app.store.update(&key, stored, Precondition::ModRevision(kv.mod_revision)).await {
        // Another replica updated it meanwhile; the next round converges.
        Ok(_) | Err(StorageError::Conflict { .. }) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_live_beside_the_resources_as_upstream() {
        assert_eq!(lease_prefix("/registry"), "/registry/masterleases/");
        assert_eq!(lease_prefix("/registry/"), "/registry/masterleases/");
    }
}
