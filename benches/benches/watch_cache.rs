//! The watch cache: LIST of 10k and 100k pods from the cache, and events delivered per
//! second to 1k and 10k watchers (each watcher a namespace's, as controllers and
//! kubelets watch).

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_executor::block_on;
use kapi_storage::Store;
use kapi_storage::cache::{CacheOptions, DecodeFn, Start, WatchCache, WatchFilter};
use kapi_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PREFIX: &str = "/registry/pods/";

fn store_with(dir: &std::path::Path, n: usize) -> Arc<dyn Store> {
    let store =
        EmbeddedStore::open(dir, EmbeddedOptions { fsync: false, ..Default::default() }).unwrap();
    let bytes: Vec<u8> = serde_json::to_vec(&kapi_benches::pod(0)).unwrap();
    let futs: Vec<_> = (0..n)
        .map(|i| {
            store.create(&format!("{PREFIX}ns-{}/web-{i:06}", i % 100), Bytes::from(bytes.clone()))
        })
        .collect();
    for f in futs {
        block_on(f).unwrap();
    }
    store
}

fn cache_of(store: &Arc<dyn Store>, capacity: usize) -> Arc<WatchCache<serde_json::Value>> {
    let decode: DecodeFn<serde_json::Value> = Arc::new(|kv| serde_json::from_slice(&kv.value).ok());
    let opts = CacheOptions { capacity, watcher_buffer: 100_000, shards: 1 };
    let cache = WatchCache::start(store.clone(), PREFIX, decode, None, opts).unwrap();
    while !cache.is_loaded() || cache.revision() < store.current_revision() {
        std::thread::sleep(Duration::from_millis(5));
    }
    cache
}

fn list(c: &mut Criterion) {
    let mut g = c.benchmark_group("cache/list");
    g.sample_size(20);
    for n in [10_000usize, 100_000] {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), n);
        let cache = cache_of(&store, 1000);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| black_box(cache.list(PREFIX, None, 0)).0.len())
        });
    }
    g.finish();
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("cache/fanout");
    g.sample_size(10);
    for watchers in [1_000usize, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), 0);
        let cache = cache_of(&store, 1000);
        let watches: Vec<_> = (0..watchers)
            .map(|w| {
                let filter =
                    WatchFilter { prefix: format!("{PREFIX}ns-{}/", w % 100), index: None };
                cache.watch(Start::Now, filter).unwrap()
            })
            .collect();
        let value = Bytes::from(serde_json::to_vec(&kapi_benches::pod(0)).unwrap());
        let events = 200usize;
        // Each event reaches the watchers of its namespace: watchers / 100 deliveries.
        g.throughput(Throughput::Elements((events * watchers / 100) as u64));
        let mut round = 0usize;
        g.bench_with_input(BenchmarkId::from_parameter(watchers), &watchers, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    let start = Instant::now();
                    for e in 0..events {
                        let key = format!("{PREFIX}ns-{}/p-{round}-{e}", e % 100);
                        block_on(store.create(&key, value.clone())).unwrap();
                    }
                    while cache.revision() < store.current_revision() {
                        std::hint::spin_loop();
                    }
                    total += start.elapsed();
                    for w in &watches {
                        w.events.drain();
                    }
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, list, fanout);
criterion_main!(benches);
