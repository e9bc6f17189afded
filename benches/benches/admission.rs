//! The admission chain's cost per pod create with the default plugins (issue #18's
//! target: a few microseconds): both phases (NamespaceLifecycle, ServiceAccount,
//! TaintNodesByCondition, Priority, DefaultTolerationSeconds; the default plugins kapi
//! does not implement yet are not in the chain) on a bench pod, against a real App on
//! the embedded store with its watch caches loaded (the namespace, its `default`
//! ServiceAccount and the system PriorityClasses in place), as `create_object` runs
//! them. The pod's clone, which the measured loop needs, is measured alone beside it.
//! The App and the request's scope are `kapi_benches::app`'s (as the create-path bench).

use criterion::{Criterion, criterion_group, criterion_main};
use futures_executor::block_on;
use kapi::admission::{Attributes, Operation};
use kapi_benches::app::{self, Create};
use kapi_benches::counting::{self, Counting};
use serde_json::json;
use std::hint::black_box;

#[global_allocator]
static ALLOC: Counting = Counting;

const TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn admission(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app::app(dir.path());
    let create = Create::new();
    let scope = create.scope(&app);
    let mut pod = kapi_benches::pod(1);
    let spec = pod["spec"].as_object_mut().expect("spec");
    // As a user writes it: unscheduled (PodTopologyLabels has nothing to do), no token
    // volume, tolerations, ServiceAccount or priority yet.
    for field in ["volumes", "tolerations", "serviceAccountName", "priority", "nodeName"] {
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
