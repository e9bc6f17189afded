//! The watch cache: LIST of 10k and 100k pods from the cache (whole and in pages of 500),
//! events delivered per second to 1k and 10k watchers (each watcher a namespace's, as
//! controllers and kubelets watch) through their own channels and through two cores'
//! fan-out hubs, and events applied per second with 1 and 2 shards decoding pods. The
//! fan-out and apply benches feed the cache from a [`FeedStore`], so the store's write
//! path is not in their figures.

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_executor::block_on;
use kapi_benches::feed::FeedStore;
use kapi_storage::Store;
use kapi_storage::cache::hub::Hub;
use kapi_storage::cache::{CacheOptions, DecodeFn, Start, WatchCache, WatchFilter};
use kapi_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// A cache over a [`FeedStore`]: what the benches push is all it sees. It decodes pods
/// into object trees as the engine's does.
fn fed_cache(shards: usize) -> (Arc<FeedStore>, Arc<WatchCache<serde_json::Value>>) {
    let feed = FeedStore::new();
    let store: Arc<dyn Store> = feed.clone();
    let cache = sharded_cache(&store, 1000, shards);
    while !feed.watched() {
        std::thread::sleep(Duration::from_millis(1));
    }
    (feed, cache)
}

/// A cache over a [`FeedStore`] that keeps values as they are (no decode), so fan-out
/// figures measure delivery, not decoding.
fn raw_cache() -> (Arc<FeedStore>, Arc<WatchCache<Bytes>>) {
    let feed = FeedStore::new();
    let store: Arc<dyn Store> = feed.clone();
    let decode: DecodeFn<Bytes> = Arc::new(|kv| Some(kv.value.clone()));
    let opts = CacheOptions { capacity: 1000, watcher_buffer: 100_000, shards: 1 };
    let cache = WatchCache::start(store, PREFIX, decode, None, opts).unwrap();
    while !feed.watched() {
        std::thread::sleep(Duration::from_millis(1));
    }
    (feed, cache)
}

/// Push `events` pod puts spread over 100 namespaces and wait until the cache published
/// the last. Every round writes the same keys (updates after the first), so the cache
/// stays the same size.
fn feed_round<T>(feed: &FeedStore, cache: &WatchCache<T>, value: &Bytes, events: usize) {
    let mut last = 0;
    for e in 0..events {
        last = feed.put(&format!("{PREFIX}ns-{}/p-{e}", e % 100), value.clone());
    }
    while cache.revision() < last {
        std::hint::spin_loop();
    }
}

/// How a core's watchers get their events.
#[derive(Clone, Copy)]
enum Via {
    /// Each watcher has its own channel from the cache (one cross-thread wake each).
    Channels,
    /// The core's hub takes each event once and hands it to its watchers.
    Hub,
}

/// A core: a thread running one task per watcher (`watchers` namespace watchers) that
/// awaits its events and counts each in `delivered`, until `stop` resolves. Idle, the
/// thread parks, and a delivery wakes it, as a monoio core's event loop is woken.
fn core(
    cache: Arc<WatchCache<Bytes>>,
    via: Via,
    watchers: usize,
    offset: usize,
    delivered: Arc<AtomicU64>,
    stop: futures_channel::oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<()>,
) {
    use futures_util::task::LocalSpawnExt;
    let mut pool = futures_executor::LocalPool::new();
    let spawner = pool.spawner();
    let hub = matches!(via, Via::Hub).then(|| Hub::new(cache.clone(), 1 << 16));
    if let Some(h) = &hub {
        spawner.spawn_local(h.clone().run()).unwrap();
    }
    for w in 0..watchers {
        let prefix = format!("{PREFIX}ns-{}/", (w * 2 + offset) % 100);
        let filter = WatchFilter { prefix, exact: false, index: None };
        let delivered = delivered.clone();
        match via {
            Via::Channels => {
                let watch = cache.watch(Start::Now, filter).unwrap();
                spawner
                    .spawn_local(async move {
                        while watch.events.recv_async().await.is_ok() {
                            delivered.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                    .unwrap();
            }
            Via::Hub => {
                let watch = hub.as_ref().unwrap().watch(Start::Now, filter).unwrap();
                spawner
                    .spawn_local(async move {
                        while watch.next().await.is_some() {
                            delivered.fetch_add(1, Ordering::Relaxed);
                        }
                    })
                    .unwrap();
            }
        }
    }
    ready.send(()).unwrap();
    let _ = pool.run_until(stop);
}

/// Events delivered per second to `watchers` namespace watchers on two cores.
fn fanout_via(c: &mut Criterion, group: &str, via: Via) {
    let mut g = c.benchmark_group(group);
    g.sample_size(10);
    for watchers in [1_000usize, 10_000] {
        let (feed, cache) = raw_cache();
        let delivered = Arc::new(AtomicU64::new(0));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut stops = Vec::new();
        let cores: Vec<_> = (0..2)
            .map(|i| {
                let (stop_tx, stop_rx) = futures_channel::oneshot::channel();
                stops.push(stop_tx);
                let (c, d, r) = (cache.clone(), delivered.clone(), ready_tx.clone());
                std::thread::spawn(move || core(c, via, watchers / 2, i, d, stop_rx, r))
            })
            .collect();
        for _ in 0..2 {
            ready_rx.recv().unwrap();
        }
        let value = Bytes::from(serde_json::to_vec(&kapi_benches::pod(0)).unwrap());
        let events = 200usize;
        // Each event reaches the watchers of its namespace: watchers / 100 deliveries.
        let per_round = (events * watchers / 100) as u64;
        g.throughput(Throughput::Elements(per_round));
        g.bench_with_input(BenchmarkId::from_parameter(watchers), &watchers, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let target = delivered.load(Ordering::Relaxed) + per_round;
                    let start = Instant::now();
                    feed_round(&feed, &cache, &value, events);
                    while delivered.load(Ordering::Relaxed) < target {
                        std::thread::yield_now();
                    }
                    total += start.elapsed();
                }
                total
            })
        });
        for s in stops {
            let _ = s.send(());
        }
        for c in cores {
            c.join().unwrap();
        }
    }
    g.finish();
}

fn fanout(c: &mut Criterion) {
    fanout_via(c, "cache/fanout-channels", Via::Channels);
}

fn fanout_hubs(c: &mut Criterion) {
    fanout_via(c, "cache/fanout-hubs", Via::Hub);
}

fn apply(c: &mut Criterion) {
    let mut g = c.benchmark_group("cache/apply");
    g.sample_size(10);
    for shards in [1usize, 2] {
        let (feed, cache) = fed_cache(shards);
        let value = Bytes::from(serde_json::to_vec(&kapi_benches::pod(0)).unwrap());
        let events = 2000usize;
        g.throughput(Throughput::Elements(events as u64));
        g.bench_with_input(BenchmarkId::new("shards", shards), &shards, |b, _| {
            b.iter(|| feed_round(&feed, &cache, &value, events))
        });
    }
    g.finish();
}

criterion_group!(benches, list, fanout, fanout_hubs, apply);
criterion_main!(benches);
