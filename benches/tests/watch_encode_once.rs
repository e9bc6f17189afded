//! A watch event delivered to many watchers is encoded once: the engine's watch cache
//! (its decode function) feeds W watchers; each frames the event as the watch handler
//! does (`kapi::rest::encoded::watch_frame`, JSON and protobuf). The number of
//! encodings stays 1 per format whatever W, and the allocations per watcher are a
//! constant (the frame), not an encode.

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

/// Create one pod; every watcher frames the event. (encodes, allocations, frames).
fn deliver(
    store: &Arc<dyn Store>,
    watches: &[CacheWatch<kapi::cache::Cached>],
    name: &str,
) -> (u64, u64, usize) {
    let mut pod = kapi_benches::pod(3);
    pod["metadata"]["name"] = name.into();
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
    let (frames, allocs, _) = counting::measure(|| {
        let mut n = 0;
        for ev in &events {
            for output in [Output::Json, Output::Protobuf] {
                let f = encoded::watch_frame(pods(), "v1", "ADDED", &ev.cur.data, output);
                n += usize::from(f.is_some_and(|f| !f.is_empty()));
            }
        }
        n
    });
    (kapi::cache::encode_count() - before, allocs, frames)
}

#[test]
fn one_event_is_encoded_once_for_any_number_of_watchers() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cache) = setup(dir.path());
    let mut allocs_of = Vec::new();
    for (round, watchers) in [1usize, 100, 1000].into_iter().enumerate() {
        let filter =
            || WatchFilter { prefix: "/registry/pods/ns-3/".into(), exact: false, index: None };
        let watches: Vec<_> =
            (0..watchers).map(|_| cache.watch(Start::Now, filter()).unwrap()).collect();
        let (encodes, allocs, frames) = deliver(&store, &watches, &format!("p{round}"));
        println!("{watchers} watchers: {encodes} encodes, {allocs} allocations, {frames} frames");
        assert_eq!(frames, 2 * watchers);
        assert_eq!(encodes, 2, "{watchers} watchers: one JSON and one protobuf encode");
        allocs_of.push(allocs);
    }
    // The first round pays for the encodes (and the codec's lazily built tables); after
    // that a watcher costs its two frames' few allocations, the same for 100 or 1000.
    let per_watcher = (allocs_of[2] - allocs_of[1]) as f64 / 900.0;
    println!("allocations per extra watcher (JSON + protobuf frame): {per_watcher:.2}");
    assert!(per_watcher <= 8.0, "allocations per watcher: {allocs_of:?}");
}
