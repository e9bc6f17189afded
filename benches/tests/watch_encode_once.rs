//! A watch event delivered to many watchers is encoded once: the engine's watch cache
//! (its decode function) feeds W watchers; each frames the event as the watch handler
//! does (`kapi::rest::encoded::watch_frame`, JSON and protobuf). The number of
//! encodings stays 1 per format whatever W, and the allocations per watcher are a
//! constant (the frame), not an encode. A frame shares the object's encoding (a head, a
//! handle on it, a tail): the bytes allocated per watcher do not grow with the object.

use bytes::Bytes;
use futures_executor::block_on;
use kapi::cache::Cache;
use kapi::negotiation::Output;
use kapi::rest::encoded;
use kapi_benches::counting::{self, Counting};
use kapi_codec::ResourceType;
use kapi_codec::registry::Registry;
use kapi_storage::Store;
use kapi_storage::cache::{CacheOptions, CacheWatch, Start, WatchCache, WatchFilter};
use kapi_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static ALLOC: Counting = Counting;

fn pods() -> &'static std::sync::Arc<ResourceType> {
    Registry::builtin().by_kind("", "v1", "Pod").unwrap()
}

fn setup(dir: &std::path::Path) -> (Arc<dyn Store>, Arc<Cache>) {
    let opts = EmbeddedOptions { fsync: false, ..Default::default() };
    let store: Arc<dyn Store> = EmbeddedStore::open(dir, opts).unwrap();
    let opts = CacheOptions { capacity: 100, watcher_buffer: 16, shards: 1 };
    let decode = kapi::cache::decode_fn(pods());
    let cache = WatchCache::start(store.clone(), "/registry/pods/", decode, None, opts).unwrap();
    while !cache.is_loaded() {
        std::thread::sleep(Duration::from_millis(5));
    }
    (store, cache)
}

/// What framing one event for every watcher cost.
struct Delivered {
    encodes: u64,
    allocs: u64,
    /// Bytes allocated.
    bytes: u64,
    frames: usize,
}

/// Create one pod with `pad` bytes of annotation; every watcher frames the event.
fn deliver(
    store: &Arc<dyn Store>,
    watches: &[CacheWatch<kapi::cache::Cached>],
    name: &str,
    pad: usize,
) -> Delivered {
    let mut pod = kapi_benches::pod(3);
    pod["metadata"]["name"] = name.into();
    pod["metadata"]["annotations"]["pad"] = "x".repeat(pad).into();
    pod["metadata"].as_object_mut().unwrap().remove("resourceVersion");
    let key = format!("/registry/pods/ns-3/{name}");
    // The cache makes the JSON encoding when it applies the event, the protobuf one when
    // a watcher first asks for it: both are counted.
    let before = kapi::cache::encode_count();
    block_on(store.create(&key, Bytes::from(serde_json::to_vec(&pod).unwrap()))).unwrap();
    let events: Vec<_> = watches
        .iter()
        .map(|w| w.events.recv_timeout(Duration::from_secs(10)).expect("event delivered"))
        .collect();
    // The protobuf encoding is made once, by the first watcher that asks for it: made
    // here, so what is measured is the framing alone.
    if let Some(ev) = events.first() {
        ev.cur.data.proto(pods());
    }
    let (frames, allocs, bytes) = counting::measure(|| {
        let mut n = 0;
        for ev in &events {
            for output in [Output::Json, Output::Protobuf] {
                let f = encoded::watch_frame(pods(), "v1", "ADDED", &ev.cur.data, output);
                n += usize::from(f.is_some_and(|f| !f.is_empty()));
            }
        }
        n
    });
    Delivered { encodes: kapi::cache::encode_count() - before, allocs, bytes, frames }
}

fn watches(cache: &Arc<Cache>, n: usize) -> Vec<CacheWatch<kapi::cache::Cached>> {
    let filter =
        || WatchFilter { prefix: "/registry/pods/ns-3/".into(), exact: false, index: None };
    (0..n).map(|_| cache.watch(Start::Now, filter()).unwrap()).collect()
}

/// The tests count the process's encodes: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn one_event_is_encoded_once_for_any_number_of_watchers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (store, cache) = setup(dir.path());
    let mut allocs_of = Vec::new();
    for (round, watchers) in [1usize, 100, 1000].into_iter().enumerate() {
        let watches = watches(&cache, watchers);
        let Delivered { encodes, allocs, frames, .. } =
            deliver(&store, &watches, &format!("p{round}"), 0);
        println!("{watchers} watchers: {encodes} encodes, {allocs} allocations, {frames} frames");
        assert_eq!(frames, 2 * watchers);
        assert_eq!(encodes, 2, "{watchers} watchers: one JSON and one protobuf encode");
        allocs_of.push(allocs);
    }
    // The first round pays for the codec's lazily built tables; after that a watcher
    // costs its two frames' few allocations, the same for 100 or 1000.
    let per_watcher = (allocs_of[2] - allocs_of[1]) as f64 / 900.0;
    println!("allocations per extra watcher (JSON + protobuf frame): {per_watcher:.2}");
    assert!(per_watcher <= 8.0, "allocations per watcher: {allocs_of:?}");
}

/// Regression for the frames' copy of the object: each watcher's frame copied the
/// object's encoding (JSON and protobuf), so a 64 KiB object cost every watcher 128 KiB
/// per event. Now a frame allocates its head and a handle: the bytes per watcher are the
/// same for a 4 KB and a 68 KB pod, and far below either.
#[test]
fn a_frame_does_not_copy_the_object_for_each_watcher() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (store, cache) = setup(dir.path());
    let watchers = 200;
    let mut per_watcher = Vec::new();
    for (round, pad) in [0, 64 * 1024, 0, 64 * 1024].into_iter().enumerate() {
        let watches = watches(&cache, watchers);
        let d = deliver(&store, &watches, &format!("big{round}"), pad);
        assert_eq!(d.frames, 2 * watchers);
        let bytes = d.bytes as f64 / watchers as f64;
        println!(
            "{pad} B of annotation: {bytes:.0} bytes, {} allocations per watcher",
            d.allocs as f64 / watchers as f64
        );
        per_watcher.push(bytes);
    }
    // Rounds 2 and 3: the codec's lazily built tables are in place; only frames count.
    let (small, big) = (per_watcher[2], per_watcher[3]);
    assert!(big < 256.0, "a 68 KB pod's two frames allocate {big} bytes per watcher");
    assert!(big <= small + 16.0, "per-watcher bytes grow with the object: {per_watcher:?}");
}
