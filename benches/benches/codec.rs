//! Decode and encode a ~4 KB pod in JSON and Kubernetes protobuf through kapi's entry
//! points (`kapi_codec::format`, `kapi_codec::protobuf`), and a response body through the
//! engine's pooled per-core buffers (`kapi::negotiation::encode`). Prints allocations per
//! operation (counting allocator) beside criterion's times. Also the managedFields
//! bookkeeping of a create and an update of that pod, and putting it in upstream's field
//! order.

use criterion::{Criterion, criterion_group, criterion_main};
use kapi::negotiation::{self, Output};
use kapi_benches::counting::{self, Counting};
use kapi_codec::format::{self, Format};
use kapi_codec::managed;
use kapi_codec::protobuf;
use std::hint::black_box;

#[global_allocator]
static ALLOC: Counting = Counting;

fn allocs<R>(name: &str, f: impl FnMut() -> R) {
    let (a, b) = counting::per_op(200, f);
    println!("{name}: {a:.1} allocations, {b:.0} bytes per op");
}

/// Every object's keys sorted, as kubectl's JSON from a manifest has them.
fn sort_all_keys(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.sort_keys();
            m.values_mut().for_each(sort_all_keys);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(sort_all_keys),
        _ => {}
    }
}

fn codec(c: &mut Criterion) {
    let pod = kapi_benches::pod(7);
    let json = format::encode_json(&pod);
    let mut pb = Vec::new();
    protobuf::encode_object(&pod, &mut pb).unwrap();
    println!("pod: {} bytes JSON, {} bytes protobuf", json.len(), pb.len());
    let pb_encode = || {
        let mut out = Vec::with_capacity(pb.len());
        protobuf::encode_object(&pod, &mut out).unwrap();
        out
    };
    allocs("pod/json/decode", || format::decode(&json, Format::Json).unwrap());
    allocs("pod/json/decode-noting-duplicates", || {
        format::decode_noting_duplicates(&json, Format::Json).unwrap()
    });
    allocs("pod/json/encode", || format::encode_json(&pod));
    allocs("pod/json/encode-pooled", || negotiation::encode(&pod, Output::Json, false));
    allocs("pod/protobuf/decode", || protobuf::decode_object(&pb).unwrap());
    allocs("pod/protobuf/encode", pb_encode);
    allocs("pod/protobuf/encode-pooled", || negotiation::encode(&pod, Output::Protobuf, false));
    c.bench_function("pod/json/decode", |b| {
        b.iter(|| format::decode(black_box(&json), Format::Json).unwrap())
    });
    // What a create or update with fieldValidation Warn or Strict (the default) decodes with.
    c.bench_function("pod/json/decode-noting-duplicates", |b| {
        b.iter(|| format::decode_noting_duplicates(black_box(&json), Format::Json).unwrap())
    });
    c.bench_function("pod/json/encode", |b| b.iter(|| format::encode_json(black_box(&pod))));
    c.bench_function("pod/json/encode-pooled", |b| {
        b.iter(|| negotiation::encode(black_box(&pod), Output::Json, false))
    });
    c.bench_function("pod/protobuf/decode", |b| {
        b.iter(|| protobuf::decode_object(black_box(&pb)).unwrap())
    });
    c.bench_function("pod/protobuf/encode", |b| b.iter(pb_encode));
    c.bench_function("pod/protobuf/encode-pooled", |b| {
        b.iter(|| negotiation::encode(black_box(&pod), Output::Protobuf, false))
    });
    // The schema walk every write's body gets (unknown fields pruned, types checked).
    c.bench_function("pod/prune-unknown", |b| {
        b.iter(|| {
            let mut obj = pod.clone();
            kapi_codec::schema::prune_unknown("io.k8s.api.core.v1.Pod", &mut obj).unwrap();
            obj
        })
    });
    c.bench_function("pod/clone", |b| b.iter(|| black_box(&pod).clone()));
    // Upstream's field order, once per write (`kapi_codec::order`), incl. the clone: a pod
    // as kubectl sends it (every object's keys sorted), and one already in order (what
    // an update of a stored object mostly is).
    let pod_type = "io.k8s.api.core.v1.Pod";
    let mut sorted = pod.clone();
    sort_all_keys(&mut sorted);
    let mut ordered = pod.clone();
    kapi_codec::order::canonicalize(pod_type, &mut ordered);
    for (name, input) in [("pod/order/kubectl-sorted", &sorted), ("pod/order/in-order", &ordered)] {
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut obj = input.clone();
                kapi_codec::order::canonicalize(pod_type, &mut obj);
                obj
            })
        });
    }
    // The managedFields of a create (what every POST pays): compare with the zero object.
    let manager = managed::Manager {
        name: "bench",
        apply: false,
        subresource: None,
        api_version: "v1",
        time: "2026-01-01T00:00:00Z",
    };
    let definition = managed::Ty::builtin("io.k8s.api.core.v1.Pod");
    let mut created = pod.clone();
    managed::record_update(None, &mut created, definition, &manager);
    c.bench_function("pod/managed-fields/create", |b| {
        b.iter(|| {
            let mut obj = pod.clone();
            managed::record_update(None, &mut obj, definition, &manager);
            obj
        })
    });
    let mut changed = created.clone();
    changed["spec"]["containers"][0]["image"] = serde_json::json!("other:2");
    c.bench_function("pod/managed-fields/update", |b| {
        b.iter(|| {
            let mut obj = changed.clone();
            managed::record_update(Some(&created), &mut obj, definition, &manager);
            obj
        })
    });
    let stats = kapi::buffers::local_stats();
    println!("buffer pool of the bench thread: {stats:?}");
}

criterion_group!(benches, codec);
criterion_main!(benches);
