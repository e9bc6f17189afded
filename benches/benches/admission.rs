//! The admission chain's cost per pod create with the default plugins (issue #18's
//! target: a few microseconds): both phases of the default chain (every default plugin
//! kapi implements; no webhook, policy, LimitRange or quota configured) on a bench pod,
//! against a real App on the embedded store with its watch caches loaded (the
//! namespace, its `default` ServiceAccount and the system PriorityClasses in place), as
//! `create_object` runs them. The pod's clone, which the measured loop needs, is
//! measured alone beside it. The App, the request's scope, the pod and the run are
//! `kapi_benches::app`'s (as the create-path bench; `tests/alloc_admission.rs` bounds
//! the chain's allocations).

use criterion::{Criterion, criterion_group, criterion_main};
use kapi_benches::app::{self, Create};
use kapi_benches::counting::{self, Counting};
use std::hint::black_box;

#[global_allocator]
static ALLOC: Counting = Counting;

fn admission(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app::app(dir.path());
    let create = Create::new();
    let scope = create.scope(&app);
    let pod = app::admission_pod();
    let names: Vec<&str> = app.admission.names().collect();
    println!("admission chain: {names:?}");
    let run = |pod: &serde_json::Value| app::admit_create(&app.admission, &scope, pod);
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
