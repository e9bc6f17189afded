//! Keeps the RBAC policy snapshot current: a thread (`kapi-rbac`) watches the revisions
//! of the Role, ClusterRole, RoleBinding and ClusterRoleBinding watch caches and, when
//! one moved, rebuilds the [`Policy`] from the caches and swaps it in whole (requests
//! never wait on a rebuild; they read the last snapshot). It also does what upstream's
//! clusterrole-aggregation controller does: a ClusterRole with an `aggregationRule`
//! gets the union of the selected roles' rules written into its `rules`.

use super::rbac::{self, Objects, Policy};
use super::rules::Rule;
use crate::app::App;
use arc_swap::ArcSwap;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// How often the thread looks at the caches' revisions.
const CHECK_EVERY: Duration = Duration::from_millis(20);

const GROUP: &str = "rbac.authorization.k8s.io";
const KINDS: [&str; 4] = ["clusterroles", "roles", "clusterrolebindings", "rolebindings"];

/// Every object of one RBAC resource, from its cache, and the cache's revision.
fn read(app: &App, plural: &str) -> (Vec<Value>, u64) {
    let reg = app.registry();
    let Some(rt) = reg.get(GROUP, "v1", plural) else { return (Vec::new(), 0) };
    let Some(cache) = app.caches.get(app, rt) else { return (Vec::new(), 0) };
    let (items, _, rev) = cache.list(&rt.storage_prefix(app.prefix(), None), None, 0);
    (items.iter().map(|e| e.data.obj()).collect(), rev)
}

/// The caches' states: revision and whether loaded ((0, false) for a cache not
/// started; a resource not served counts as loaded). A cache can publish its revision before its initial load is in; the load
/// finishing must count as a change, or a policy built meanwhile would stay empty.
fn revisions(app: &App) -> [(u64, bool); 4] {
    let reg = app.registry();
    KINDS.map(|plural| match reg.get(GROUP, "v1", plural) {
        // Not served (`--runtime-config`): nothing to load, an empty policy.
        None => (0, true),
        Some(rt) => app.caches.get(app, rt).map_or((0, false), |c| (c.revision(), c.is_loaded())),
    })
}

/// Build the policy from the caches now.
pub fn rebuild(app: &App, target: &ArcSwap<Policy>) -> Objects {
    let objects = Objects {
        cluster_roles: read(app, "clusterroles").0,
        roles: read(app, "roles").0,
        cluster_role_bindings: read(app, "clusterrolebindings").0,
        role_bindings: read(app, "rolebindings").0,
    };
    let generation = target.load().generation.wrapping_add(1);
    target.store(Arc::new(Policy::build(&objects, generation)));
    objects
}

/// How long the start waits for the RBAC caches' initial load.
const LOAD_WAIT: Duration = Duration::from_secs(60);

/// Start the thread that keeps `target` current for `app`. Returns once the policy was
/// built from loaded caches (or after [`LOAD_WAIT`]), so the server is not ready before
/// its authorizer knows the policy (upstream's informer sync).
pub fn start(app: Arc<App>, target: Arc<ArcSwap<Policy>>) -> std::io::Result<()> {
    let deadline = std::time::Instant::now() + LOAD_WAIT;
    while !revisions(&app).iter().all(|(_, loaded)| *loaded) && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut seen = revisions(&app);
    let objects = rebuild(&app, &target);
    aggregate(&app, &objects);
    std::thread::Builder::new().name("kapi-rbac".into()).spawn(move || {
        while !app.is_shutting_down() {
            std::thread::sleep(CHECK_EVERY);
            let now = revisions(&app);
            if now == seen {
                continue;
            }
            seen = now;
            let objects = rebuild(&app, &target);
            aggregate(&app, &objects);
        }
    })?;
    Ok(())
}

/// Write the aggregated rules into every aggregating ClusterRole whose stored rules
/// differ (upstream's clusterrole-aggregation controller).
fn aggregate(app: &App, objects: &Objects) {
    for role in objects.cluster_roles.iter().filter(|r| r.get("aggregationRule").is_some()) {
        let name = role["metadata"]["name"].as_str().unwrap_or_default().to_string();
        let want: Vec<Rule> =
            rbac::aggregate(&role["aggregationRule"], &name, &objects.cluster_roles);
        if Rule::all_of(role) == want {
            continue;
        }
        let rules = json!(want.iter().map(Rule::to_json).collect::<Vec<_>>());
        let result = futures_executor::block_on(crate::rest::update_internal(
            app,
            GROUP,
            "v1",
            "clusterroles",
            None,
            &name,
            |current| {
                let mut updated = current.clone();
                updated["rules"] = rules.clone();
                Ok(updated)
            },
        ));
        if let Err(e) = result {
            tracing::debug!("aggregating clusterrole {name}: {}", e.to_status()["message"]);
        }
    }
}
