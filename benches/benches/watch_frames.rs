//! Framing one watch event for 1,000 watchers from the watch cache's shared encoding, as
//! the watch handler does (`kapi::rest::encoded::watch_frame`, JSON and protobuf), for a
//! 4.5 KB pod and the same pod with a 64 KiB annotation. Prints allocations and
//! allocated bytes per frame (counting allocator) beside criterion's times: a frame
//! that copies the object allocates its size; one that shares it, a few bytes.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kapi::cache::Cached;
use kapi::negotiation::Output;
use kapi::rest::encoded;
use kapi_benches::counting::{self, Counting};
use kapi_codec::ResourceType;
use kapi_codec::registry::Registry;
use std::hint::black_box;

#[global_allocator]
static ALLOC: Counting = Counting;

const WATCHERS: usize = 1000;

fn pods() -> &'static std::sync::Arc<ResourceType> {
    Registry::builtin().by_kind("", "v1", "Pod").unwrap()
}

/// A cached pod with both encodings made; `pad` bytes of annotation.
fn cached(pad: usize) -> Cached {
    let mut obj = kapi_benches::pod(7);
    obj["metadata"]["annotations"]["pad"] = "x".repeat(pad).into();
    let c = Cached::new(pods(), &obj);
    c.json();
    c.proto(pods());
    c
}

/// Frame the event once per watcher; the frames made.
fn fan_out(c: &Cached, output: Output) -> usize {
    let mut n = 0;
    for _ in 0..WATCHERS {
        n += usize::from(
            black_box(encoded::watch_frame(pods(), "v1", "MODIFIED", c, output)).is_some(),
        );
    }
    n
}

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("watch-frames");
    g.throughput(Throughput::Elements(WATCHERS as u64));
    for (size, pad) in [("4k", 0), ("68k", 64 * 1024)] {
        let obj = cached(pad);
        for (name, output) in [("json", Output::Json), ("protobuf", Output::Protobuf)] {
            let (a, b) = counting::per_op(WATCHERS as u64, || {
                encoded::watch_frame(pods(), "v1", "MODIFIED", &obj, output)
            });
            let len = obj.json().len();
            println!(
                "{name} {size} (JSON doc {len} B): {a:.1} allocations, {b:.0} bytes per frame"
            );
            g.bench_function(format!("{name}/{size}"), |bch| bch.iter(|| fan_out(&obj, output)));
        }
    }
    g.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
