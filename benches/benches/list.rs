//! Assembling a LIST of 10k pods from the watch cache's shared encodings (JSON and
//! protobuf), as the LIST handler does (`kapi::rest::encoded::list`) and draining its body
//! as hyper would; and, for scale, encoding the same list from the object trees. Prints
//! allocations per LIST (counting allocator) beside criterion's times.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_executor::block_on;
use http_body_util::BodyExt;
use kapi::cache::Cached;
use kapi::negotiation::Output;
use kapi::rest::encoded;
use kapi_benches::counting::{self, Counting};
use kapi_codec::ResourceType;
use kapi_codec::registry::Registry;
use kapi_storage::KeyValue;
use kapi_storage::cache::CacheEntry;
use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::Arc;

#[global_allocator]
static ALLOC: Counting = Counting;

const N: usize = 10_000;

fn pods() -> &'static std::sync::Arc<ResourceType> {
    Registry::builtin().by_kind("", "v1", "Pod").unwrap()
}

/// N cache entries with their encodings made (as after the first read of each).
fn entries() -> Vec<Arc<CacheEntry<Cached>>> {
    (0..N)
        .map(|i| {
            let obj = kapi_benches::pod(i);
            let key = format!("/registry/pods/ns-{}/web-{i:06}", i % 100);
            let kv =
                KeyValue { key, value: Default::default(), create_revision: 1, mod_revision: 1 };
            let e = Arc::new(CacheEntry { kv, data: Cached::new(pods(), &obj) });
            e.data.json();
            e.data.proto(pods());
            e
        })
        .collect()
}

/// Serve one LIST and drain its body; the body's length.
fn serve(entries: &[Arc<CacheEntry<Cached>>], output: Output) -> usize {
    let meta = json!({"resourceVersion": "12345"});
    let mut body = encoded::list(pods(), entries, &meta, output).unwrap().into_body();
    let mut len = 0;
    while let Some(frame) = block_on(body.frame()) {
        len += frame.unwrap().into_data().map_or(0, |d| d.len());
    }
    len
}

fn list(c: &mut Criterion) {
    let entries = entries();
    let mut g = c.benchmark_group("list10k");
    g.sample_size(20);
    g.throughput(Throughput::Elements(N as u64));
    for (name, output) in [("json", Output::Json), ("protobuf", Output::Protobuf)] {
        let len = serve(&entries, output);
        let (a, b) = counting::per_op(5, || serve(&entries, output));
        println!("list10k/{name}/cached: {len} bytes; {a:.0} allocations, {b:.0} bytes per LIST");
        g.bench_function(format!("{name}/cached"), |b| {
            b.iter(|| serve(black_box(&entries), output))
        });
    }
    let items: Vec<Value> = entries.iter().map(|e| e.data.obj()).collect();
    let tree = json!({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items});
    let (a, b) = counting::per_op(2, || kapi_codec::format::encode_json(&tree));
    println!("list10k/json/from-trees: {a:.0} allocations, {b:.0} bytes per LIST");
    g.bench_function("json/from-trees", |b| {
        b.iter(|| kapi_codec::format::encode_json(black_box(&tree)))
    });
    g.finish();
}

criterion_group!(benches, list);
criterion_main!(benches);
