//! Objects that exist in every cluster, created through the same path as a client's
//! create (defaults, validation, allocation), re-created when deleted, and allocator
//! state rebuilt from storage; at start, the RBAC bootstrap policy reconciled
//! (`authz::bootstrap`) and the API Priority and Fairness bootstrap configuration
//! ensured (`flowcontrol::ensure`).

use crate::app::App;
use crate::rest;
use crate::status::ApiError;
use serde_json::{Value, json};

pub async fn run(app: &App) -> Result<(), String> {
    rebuild_allocators(app).await?;
    ensure_system_objects(app).await?;
    // Not fatal, as upstream's post-start hook: the `kapi-apf` thread tries again.
    if let Err(e) = crate::flowcontrol::ensure::at_start(app).await {
        tracing::warn!("ensuring the API Priority and Fairness bootstrap configuration: {e}");
    }
    reconcile_rbac(app).await
}

/// As upstream's `rbac/bootstrap-roles` post-start hook: the policy is reconciled again
/// every second while some object fails, and a server that cannot reconcile it within
/// 30 s does not start.
async fn reconcile_rbac(app: &App) -> Result<(), String> {
    for attempt in 1.. {
        match crate::authz::bootstrap::reconcile(app).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt >= RBAC_ATTEMPTS => {
                return Err(format!("unable to initialize roles: {e}"));
            }
            Err(e) => tracing::warn!("reconciling the RBAC bootstrap policy: {e}"),
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    Ok(())
}

const RBAC_ATTEMPTS: usize = 30;

/// Create whichever of the system objects is missing. Run at start and periodically
/// afterwards, so that a deleted `default/kubernetes` Service or system namespace comes
/// back as upstream's reconcilers bring it back.
pub async fn ensure_system_objects(app: &App) -> Result<(), String> {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        ensure(app, "", "v1", "namespaces", None, obj).await?;
    }
    ensure(app, "", "v1", "services", Some("default"), kubernetes_service(app)).await?;
    ensure(app, "", "v1", "endpoints", Some("default"), kubernetes_endpoints(app)).await?;
    for (name, value) in
        [("system-node-critical", 2_000_001_000), ("system-cluster-critical", 2_000_000_000)]
    {
        let pc = json!({
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value,
            "description": "Used for system critical pods that must not be moved from their current node.",
        });
        ensure(app, "scheduling.k8s.io", "v1", "priorityclasses", None, pc).await?;
    }
    Ok(())
}

async fn ensure(
    app: &App,
    group: &str,
    version: &str,
    plural: &str,
    ns: Option<&str>,
    obj: Value,
) -> Result<(), String> {
    // An existing object is left alone: creating it again would first try to allocate
    // its (already allocated) cluster IP and fail before the name conflict is seen.
    let rt = app
        .registry()
        .get(group, version, plural)
        .cloned()
        .ok_or_else(|| format!("no {plural}"))?;
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let key = rt.storage_key(app.prefix(), ns, name);
    match app.store.get(&key).await {
        Ok(Some(_)) => return Ok(()),
        Ok(None) => {}
        Err(e) => return Err(format!("bootstrapping {plural}: {e}")),
    }
    match rest::create_internal(app, group, version, plural, ns, obj).await {
        Ok(_) | Err(ApiError::AlreadyExists(_)) => Ok(()),
        Err(e) => Err(format!("bootstrapping {plural}: {}", e.to_status()["message"])),
    }
}

fn kubernetes_service(app: &App) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": app.cluster_ips.first().to_string(),
            "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": app.options.secure_port}],
            "sessionAffinity": "None",
        },
    })
}

fn kubernetes_endpoints(app: &App) -> Value {
    let ip = match app.options.bind_address {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        ip => ip.to_string(),
    };
    json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": app.options.secure_port, "protocol": "TCP"}]}],
    })
}

/// Mark every stored Service's ClusterIPs and NodePorts as used.
async fn rebuild_allocators(app: &App) -> Result<(), String> {
    let Some(rt) = app.registry().get("", "v1", "services").cloned() else { return Ok(()) };
    let prefix = rt.storage_prefix(app.prefix(), None);
    let page = app.store.range(&prefix, None, 0, None).await.map_err(|e| e.to_string())?;
    for kv in page.items {
        let Ok(svc) = rest::object::from_stored(&rt, &kv) else { continue };
        for ip in svc.pointer("/spec/clusterIPs").and_then(Value::as_array).into_iter().flatten() {
            if let Some(ip) = ip.as_str() {
                app.cluster_ips.mark_used(ip);
            }
        }
        for p in svc.pointer("/spec/ports").and_then(Value::as_array).into_iter().flatten() {
            if let Some(np) = p.get("nodePort").and_then(Value::as_i64) {
                app.node_ports.mark_used(np);
            }
        }
    }
    Ok(())
}
