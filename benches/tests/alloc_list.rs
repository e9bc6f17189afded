//! Serving a LIST of pods from the watch cache's shared encodings allocates O(1) per item
//! and copies no item: measured with a counting global allocator (this binary's own)
//! around the engine's LIST assembly (`kapi::rest::encoded::list`, what the LIST handler
//! calls for a page from the cache) and the draining of its body, as hyper would.

use bytes::Bytes;
use futures_executor::block_on;
use http_body_util::BodyExt;
use kapi::body::ResponseBody;
use kapi::cache::{Cache, Cached};
use kapi::negotiation::Output;
use kapi::rest::encoded;
use kapi_benches::counting::{self, Counting};
use kapi_codec::ResourceType;
use kapi_codec::registry::Registry;
use kapi_storage::Store;
use kapi_storage::cache::{CacheEntry, CacheOptions, WatchCache};
use kapi_storage::embedded::{EmbeddedOptions, EmbeddedStore};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[global_allocator]
static ALLOC: Counting = Counting;

const N: usize = 10_000;

fn pods() -> &'static std::sync::Arc<ResourceType> {
    Registry::builtin().by_kind("", "v1", "Pod").unwrap()
}

/// A store with N pods in namespace `a` and N in `b`, and the engine's cache over it.
fn cache_of(dir: &std::path::Path) -> Arc<Cache> {
    let opts = EmbeddedOptions { fsync: false, ..Default::default() };
    let store: Arc<dyn Store> = EmbeddedStore::open(dir, opts).unwrap();
    let mut pod = kapi_benches::pod(1);
    pod["metadata"].as_object_mut().unwrap().remove("resourceVersion");
    for ns in ["a", "b"] {
        let futs: Vec<_> = (0..N)
            .map(|i| {
                pod["metadata"]["name"] = json!(format!("web-{i:06}"));
                pod["metadata"]["namespace"] = json!(ns);
                let bytes = Bytes::from(serde_json::to_vec(&pod).unwrap());
                store.create(&format!("/registry/pods/{ns}/web-{i:06}"), bytes)
            })
            .collect();
        for f in futs {
            block_on(f).unwrap();
        }
    }
    let opts = CacheOptions { capacity: 100, ..Default::default() };
    let cache = WatchCache::start(
        store.clone(),
        "/registry/pods/",
        kapi::cache::decode_fn(pods()),
        None,
        opts,
    )
    .unwrap();
    while !cache.is_loaded() || cache.revision() < store.current_revision() {
        std::thread::sleep(Duration::from_millis(5));
    }
    cache
}

/// Serve the LIST response of `entries` and drain its body; (body bytes, frames).
fn serve(entries: &[Arc<CacheEntry<Cached>>], output: Output) -> (usize, usize) {
    let meta = json!({"resourceVersion": "12345"});
    let resp = encoded::list(pods(), entries, &meta, output).expect("served from cache");
    let mut body: ResponseBody = resp.into_body();
    let (mut len, mut frames) = (0, 0);
    while let Some(frame) = block_on(body.frame()) {
        let data = frame.unwrap().into_data().unwrap_or_default();
        len += data.len();
        frames += 1;
    }
    (len, frames)
}

/// Allocations and bytes of serving `entries` once their encodings exist.
fn cost(entries: &[Arc<CacheEntry<Cached>>], output: Output) -> (u64, u64, usize) {
    serve(entries, output); // makes the shared encodings (once per object version)
    let encodes = kapi::cache::encode_count();
    let ((len, _), allocs, bytes) = counting::measure(|| serve(entries, output));
    assert_eq!(kapi::cache::encode_count(), encodes, "a cached LIST re-encoded an item");
    (allocs, bytes, len)
}

#[test]
fn list_from_cached_encodings_allocates_o1_per_item_and_copies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cache = cache_of(dir.path());
    let (small, _, _) = cache.list("/registry/pods/a/", None, 0);
    let (large, _, _) = cache.list("/registry/pods/", None, 0);
    assert_eq!((small.len(), large.len()), (N, 2 * N));
    for output in [Output::Json, Output::Protobuf] {
        let (a1, b1, len1) = cost(&small, output);
        let (a2, b2, len2) = cost(&large, output);
        let per_item_allocs = (a2 as f64 - a1 as f64) / N as f64;
        let per_item_bytes = (b2 as f64 - b1 as f64) / N as f64;
        let item_size = (len2 - len1) as f64 / N as f64;
        println!(
            "{output:?}: {N} items: {a1} allocations, {b1} bytes; {} items: {a2} allocations, \
             {b2} bytes; per extra item {per_item_allocs:.2} allocations, \
             {per_item_bytes:.1} bytes (item size {item_size:.0} bytes)",
            2 * N
        );
        assert!(per_item_allocs <= 1.0, "{output:?}: {per_item_allocs} allocations per item");
        assert!(per_item_bytes <= 64.0, "{output:?}: {per_item_bytes} bytes per item");
        assert!((b2 as usize) < len2 / 20, "{output:?}: {b2} bytes allocated for {len2}");
    }
}
