//! The watch cache: LIST of 10k and 100k pods from the cache (whole and in pages of 500),
//! events delivered per second to 1k and 10k watchers (each watcher a namespace's, as
//! controllers and kubelets watch) through their own channels and through two cores'
//! fan-out hubs, and events applied per second with 1 and 2 shards decoding pods.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_executor::block_on;
use kapi_storage::Store;
use kapi_storage::cache::hub::Hub;
use kapi_storage::cache::{CacheOptions, DecodeFn, Start, WatchCache, WatchFilter};
use kapi_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    sharded_cache(store, capacity, 1)
}

fn sharded_cache(
    store: &Arc<dyn Store>,
    capacity: usize,
    shards: usize,
) -> Arc<WatchCache<serde_json::Value>> {
    let decode: DecodeFn<serde_json::Value> = Arc::new(|kv| serde_json::from_slice(&kv.value).ok());
    let opts = CacheOptions { capacity, watcher_buffer: 100_000, shards };
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
        // Every page of a paginated LIST (limit 500), each read as of the first's revision.
        g.bench_with_input(BenchmarkId::new("pages-of-500", n), &n, |b, _| {
            b.iter(|| {
                let mut after: Option<String> = None;
                let mut at = None;
                let mut total = 0;
                loop {
                    // The first page counts what is left; the engine's continue token
                    // carries that count to the next pages.
                    let first = at.is_none();
                    let page = cache.list_at(PREFIX, after.as_deref(), at, 500, first, |_| true);
                    let page = page.expect("page");
                    total += page.items.len();
                    at = Some(page.revision);
                    match page.items.last() {
                        Some(last) if page.more => after = Some(last.kv.key.clone()),
                        _ => break,
                    }
                }
                black_box(total)
            })
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
                let filter = WatchFilter {
                    prefix: format!("{PREFIX}ns-{}/", w % 100),
                    exact: false,
                    index: None,
                };
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

/// Create `events` pods at once (group-committed) under `round`, spread over 100
/// namespaces, and wait until the cache has them.
fn write_round(
    store: &Arc<dyn Store>,
    cache: &WatchCache<serde_json::Value>,
    value: &Bytes,
    round: usize,
    events: usize,
) {
    let writes: Vec<_> = (0..events)
        .map(|e| store.create(&format!("{PREFIX}ns-{}/p-{round}-{e}", e % 100), value.clone()))
        .collect();
    for w in writes {
        block_on(w).unwrap();
    }
    while cache.revision() < store.current_revision() {
        std::hint::spin_loop();
    }
}

/// A core: a hub with `watchers` namespace watchers, run on its own thread; every
/// delivery taken from a watcher's buffer is counted in `delivered`.
fn core(
    cache: Arc<WatchCache<serde_json::Value>>,
    watchers: usize,
    offset: usize,
    delivered: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    ready: std::sync::mpsc::Sender<()>,
) {
    use futures_util::task::LocalSpawnExt;
    let mut pool = futures_executor::LocalPool::new();
    let hub = Hub::new(cache, 1 << 16);
    pool.spawner().spawn_local(hub.clone().run()).unwrap();
    let watches: Vec<_> = (0..watchers)
        .map(|w| {
            let filter = WatchFilter {
                prefix: format!("{PREFIX}ns-{}/", (w + offset) % 100),
                exact: false,
                index: None,
            };
            hub.watch(Start::Now, filter).unwrap()
        })
        .collect();
    ready.send(()).unwrap();
    let waker = futures_util::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    while !stop.load(Ordering::Relaxed) {
        pool.run_until_stalled();
        let mut n = 0;
        for w in &watches {
            while let std::task::Poll::Ready(Some(_)) = w.poll_next(&mut cx) {
                n += 1;
            }
        }
        if n == 0 {
            std::thread::yield_now();
        }
        delivered.fetch_add(n, Ordering::Relaxed);
    }
}

fn fanout_hubs(c: &mut Criterion) {
    let mut g = c.benchmark_group("cache/fanout-hubs");
    g.sample_size(10);
    for watchers in [1_000usize, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), 0);
        let cache = cache_of(&store, 1000);
        let delivered = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let cores: Vec<_> = (0..2)
            .map(|i| {
                let (c, d, s, r) =
                    (cache.clone(), delivered.clone(), stop.clone(), ready_tx.clone());
                std::thread::spawn(move || core(c, watchers / 2, i, d, s, r))
            })
            .collect();
        for _ in 0..2 {
            ready_rx.recv().unwrap();
        }
        let value = Bytes::from(serde_json::to_vec(&kapi_benches::pod(0)).unwrap());
        let events = 200usize;
        let per_round = (events * watchers / 100) as u64;
        g.throughput(Throughput::Elements(per_round));
        let mut round = 0usize;
        g.bench_with_input(BenchmarkId::from_parameter(watchers), &watchers, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    let target = delivered.load(Ordering::Relaxed) + per_round;
                    let start = Instant::now();
                    write_round(&store, &cache, &value, round, events);
                    while delivered.load(Ordering::Relaxed) < target {
                        std::hint::spin_loop();
                    }
                    total += start.elapsed();
                }
                total
            })
        });
        stop.store(true, Ordering::Relaxed);
        for c in cores {
            c.join().unwrap();
        }
    }
    g.finish();
}

fn apply(c: &mut Criterion) {
    let mut g = c.benchmark_group("cache/apply");
    g.sample_size(10);
    for shards in [1usize, 2] {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with(dir.path(), 0);
        let cache = sharded_cache(&store, 1000, shards);
        let value = Bytes::from(serde_json::to_vec(&kapi_benches::pod(0)).unwrap());
        let events = 2000usize;
        g.throughput(Throughput::Elements(events as u64));
        let mut round = 0usize;
        g.bench_with_input(BenchmarkId::new("shards", shards), &shards, |b, _| {
            b.iter(|| {
                round += 1;
                write_round(&store, &cache, &value, round, events);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, list, fanout, fanout_hubs, apply);
criterion_main!(benches);
