//! Decode and encode a ~4 KB pod in JSON and Kubernetes protobuf.

use criterion::{Criterion, criterion_group, criterion_main};
use kapi_codec::protobuf;
use std::hint::black_box;

fn codec(c: &mut Criterion) {
    let pod = kapi_benches::pod(7);
    let json = serde_json::to_vec(&pod).unwrap();
    let mut pb = Vec::new();
    protobuf::encode_object(&pod, &mut pb).unwrap();
    println!("pod: {} bytes JSON, {} bytes protobuf", json.len(), pb.len());
    c.bench_function("pod/json/decode", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&json)).unwrap())
    });
    c.bench_function("pod/json/encode", |b| {
        b.iter(|| serde_json::to_vec(black_box(&pod)).unwrap())
    });
    c.bench_function("pod/protobuf/decode", |b| {
        b.iter(|| protobuf::decode_object(black_box(&pb)).unwrap())
    });
    c.bench_function("pod/protobuf/encode", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(pb.len());
            protobuf::encode_object(black_box(&pod), &mut out).unwrap();
            out
        })
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
