//! JSON parsers and writers compared on the pod fixtures: serde_json, sonic-rs and
//! simd-json, each decoding into the `serde_json::Value` tree kapi uses (and into their
//! own DOM, for reference), and writing that tree back. Prints allocations per operation
//! (counting allocator) beside criterion's times.

use criterion::{Criterion, criterion_group, criterion_main};
use kapi_benches::counting::{self, Counting};
use serde_json::Value;
use std::hint::black_box;

#[global_allocator]
static ALLOC: Counting = Counting;

fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = vec![("pod4k", serde_json::to_vec(&kapi_benches::pod(7)).unwrap())];
    if let Some(raw) = kapi_benches::shared_bench_pod() {
        let v: Value = serde_json::from_slice(&raw).unwrap();
        out.push(("bench-pod", serde_json::to_vec(&v).unwrap()));
    }
    out
}

fn simd_value(json: &[u8]) -> Value {
    let mut copy = json.to_vec();
    simd_json::serde::from_slice::<Value>(&mut copy).unwrap()
}

fn check_same(json: &[u8]) {
    let want: Value = serde_json::from_slice(json).unwrap();
    let sonic: Value = sonic_rs::from_slice(json).unwrap();
    let simd = simd_value(json);
    let keys = |v: &Value| serde_json::to_vec(v).unwrap();
    assert_eq!(keys(&sonic), keys(&want), "sonic-rs tree differs (order or values)");
    assert_eq!(keys(&simd), keys(&want), "simd-json tree differs (order or values)");
    assert_eq!(sonic_rs::to_vec(&want).unwrap(), keys(&want), "sonic-rs writes other bytes");
}

fn allocs(name: &str, f: impl FnMut() -> Box<dyn std::any::Any>) {
    let (a, b) = counting::per_op(200, f);
    println!("{name}: {a:.0} allocations, {b:.0} bytes per op");
}

fn decode(c: &mut Criterion, name: &str, json: &[u8]) {
    let g = |s: &str| format!("{name}/decode/{s}");
    let j = json.to_vec();
    allocs(&g("serde_json"), || Box::new(serde_json::from_slice::<Value>(&j).unwrap()));
    allocs(&g("sonic-rs"), || Box::new(sonic_rs::from_slice::<Value>(&j).unwrap()));
    allocs(&g("simd-json"), || Box::new(simd_value(&j)));
    allocs(&g("sonic-rs-dom"), || Box::new(sonic_rs::from_slice::<sonic_rs::Value>(&j).unwrap()));
    c.bench_function(&g("serde_json"), |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(json)).unwrap())
    });
    c.bench_function(&g("sonic-rs"), |b| {
        b.iter(|| sonic_rs::from_slice::<Value>(black_box(json)).unwrap())
    });
    c.bench_function(&g("simd-json"), |b| b.iter(|| simd_value(black_box(json))));
    c.bench_function(&g("sonic-rs-dom"), |b| {
        b.iter(|| sonic_rs::from_slice::<sonic_rs::Value>(black_box(json)).unwrap())
    });
    c.bench_function(&g("simd-json-dom"), |b| {
        b.iter(|| {
            let mut copy = json.to_vec();
            simd_json::to_owned_value(&mut copy).unwrap()
        })
    });
}

fn encode(c: &mut Criterion, name: &str, json: &[u8]) {
    let v: Value = serde_json::from_slice(json).unwrap();
    let g = |s: &str| format!("{name}/encode/{s}");
    allocs(&g("serde_json"), || Box::new(serde_json::to_vec(&v).unwrap()));
    allocs(&g("sonic-rs"), || Box::new(sonic_rs::to_vec(&v).unwrap()));
    c.bench_function(&g("serde_json"), |b| b.iter(|| serde_json::to_vec(black_box(&v)).unwrap()));
    c.bench_function(&g("serde_json-presized"), |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(json.len() + 64);
            serde_json::to_writer(&mut out, black_box(&v)).unwrap();
            out
        })
    });
    c.bench_function(&g("sonic-rs"), |b| b.iter(|| sonic_rs::to_vec(black_box(&v)).unwrap()));
    c.bench_function(&g("sonic-rs-presized"), |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(json.len() + 64);
            sonic_rs::to_writer(&mut out, black_box(&v)).unwrap();
            out
        })
    });
    c.bench_function(&g("simd-json"), |b| {
        b.iter(|| simd_json::serde::to_vec(black_box(&v)).unwrap())
    });
}

fn json(c: &mut Criterion) {
    for (name, bytes) in fixtures() {
        println!("{name}: {} bytes of compact JSON", bytes.len());
        check_same(&bytes);
        decode(c, name, &bytes);
        encode(c, name, &bytes);
    }
}

criterion_group!(benches, json);
criterion_main!(benches);
