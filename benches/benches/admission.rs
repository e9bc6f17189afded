//! The admission chain's cost per pod create with the default plugins (issue #18's
//! target: a few microseconds): both phases (NamespaceLifecycle, ServiceAccount,
//! TaintNodesByCondition, Priority, DefaultTolerationSeconds; the default plugins kapi
//! does not implement yet are not in the chain) on a bench pod, against a real App on
//! the embedded store with its watch caches loaded (the namespace, its `default`
//! ServiceAccount and the system PriorityClasses in place), as `create_object` runs
//! them. The pod's clone, which the measured loop needs, is measured alone beside it.

use criterion::{Criterion, criterion_group, criterion_main};
use futures_executor::block_on;
use kapi::admission::{Attributes, Operation};
use kapi::app::App;
use kapi::config::Options;
use kapi::negotiation::Output;
use kapi::request::RequestInfo;
use kapi::rest::Scope;
use kapi_benches::counting::{self, Counting};
use kapi_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use serde_json::json;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn app(dir: &std::path::Path) -> Arc<App> {
    let options = Options::for_test(dir.to_path_buf(), 0);
    let opts = EmbeddedOptions { fsync: false, ..Default::default() };
    let store = EmbeddedStore::open(&dir.join("store"), opts).expect("store");
    let authorizer = Arc::new(kapi::authz::Chain::new(vec![kapi::authz::Mode::Rbac]));
    let (_tx, rx) = flume::bounded(1);
    let app = App::new(options, store, Default::default(), authorizer, rx).expect("app");
    let app = Arc::new(app);
    block_on(kapi::controllers::bootstrap::run(&app)).expect("bootstrap");
    for rt in app.registry().all() {
        app.caches.get(&app, rt);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while block_on(kapi::controllers::service_accounts::ensure_defaults(&app)).is_ok()
        && !has_default_account(&app)
    {
        assert!(Instant::now() < deadline, "the default ServiceAccount never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    app
}

fn has_default_account(app: &App) -> bool {
    let reg = app.registry();
    let rt = reg.get("", "v1", "serviceaccounts").expect("serviceaccounts").clone();
    let cache = app.caches.get(app, &rt).expect("cache");
    cache.get(&rt.storage_key(app.prefix(), Some("default"), "default")).0.is_some()
}

#[global_allocator]
static ALLOC: Counting = Counting;

const TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn admission(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app(dir.path());
    let info = RequestInfo {
        is_resource: true,
        verb: "create".into(),
        version: "v1".into(),
        resource: "pods".into(),
        namespace: Some("default".into()),
        ..Default::default()
    };
    let rt = app.registry().get("", "v1", "pods").expect("pods").clone();
    let user = kapi::auth::UserInfo { name: "admin".into(), ..Default::default() };
    let scope = Scope {
        app: &app,
        info: &info,
        rt,
        namespace: Some("default".into()),
        name: None,
        output: Output::Json,
        pretty: false,
        manager: "bench".into(),
        apply: false,
        user: Some(&user),
        sink: None,
    };
    let mut pod = kapi_benches::pod(1);
    let spec = pod["spec"].as_object_mut().expect("spec");
    for field in ["volumes", "tolerations", "serviceAccountName", "priority"] {
        spec.remove(field);
    }
    // The fixture mounts its own token volume; a pod as a user writes it does not, so the
    // ServiceAccount plugin has its volume and mounts to add (a container that mounts
    // something at the token path already keeps it, and gets no token volume).
    for list in ["containers", "initContainers"] {
        for c in spec.get_mut(list).and_then(|v| v.as_array_mut()).into_iter().flatten() {
            if let Some(mounts) = c.get_mut("volumeMounts").and_then(|m| m.as_array_mut()) {
                mounts.retain(|m| m["mountPath"] != TOKEN_PATH);
            }
        }
    }
    pod["metadata"] = json!({"name": "web-1", "namespace": "default"});
    let names: Vec<&str> = app.admission.names().collect();
    println!("admission chain: {names:?}");
    let run = |pod: &serde_json::Value| {
        let mut obj = pod.clone();
        let a = Attributes::new(&scope, Operation::Create, "web-1", None);
        block_on(async {
            app.admission.admit(&a, &mut obj).await.expect("admitted");
            app.admission.validate(&a, &obj).await.expect("valid");
        });
        obj
    };
    let admitted = run(&pod);
    assert!(admitted["spec"]["volumes"].as_array().is_some_and(|v| !v.is_empty()));
    let (chain, chain_bytes) = counting::per_op(200, || run(&pod));
    let (clone, clone_bytes) = counting::per_op(200, || pod.clone());
    println!(
        "allocations per create: chain + clone {chain:.1} ({chain_bytes:.0} bytes), clone \
         {clone:.1} ({clone_bytes:.0} bytes)"
    );
    let mut g = c.benchmark_group("admission");
    g.bench_function("pod-create/default-plugins", |b| b.iter(|| run(black_box(&pod))));
    g.bench_function("pod-create/clone-only", |b| b.iter(|| black_box(&pod).clone()));
    g.finish();
}

criterion_group!(benches, admission);
criterion_main!(benches);
