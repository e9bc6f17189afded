//! Memory per stored pod (issue #20, item 2), measured in-process: pods of
//! `bench-pod.json` created through the REST handler on a real App over the embedded
//! store, and the bytes the allocator holds before and after (requested sizes: the
//! allocator's own slack, which RSS adds, is not in them). Broken down by holder: the
//! stored value (the store's index; the cache entry shares the same bytes on this
//! backend), the watch cache's JSON, the protobuf once a client asks for it, and the
//! previous versions kept after one update of each pod (the store's history until
//! compaction, the cache's event window for its last events). Skipped without
//! bench-pod.json.
//!
//! `cargo test --release -p kapi-benches --test memory_per_pod -- --nocapture`

use kapi::app::App;
use kapi_benches::app::{self, Create};
use kapi_benches::counting::{self, Counting};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Pods loaded.
const N: usize = 1000;

/// Bytes held per stored bench pod after its create, everything included (measured:
/// see docs/PERFORMANCE.md, "Memory per stored pod"); ~20% above the figure.
const PER_POD_BOUND: i64 = 34_000;

fn settle(app: &App, cache: &kapi::cache::Cache) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while cache.revision() < app.store.current_revision() {
        assert!(Instant::now() < deadline, "the pods cache never caught up");
        std::thread::sleep(Duration::from_millis(1));
    }
    // Let the committer and the feeder drop what they hold for the last writes.
    std::thread::sleep(Duration::from_millis(200));
}

fn per_pod(from: i64, to: i64) -> i64 {
    (to - from) / N as i64
}

#[test]
fn memory_per_stored_pod() {
    let Some(bytes) = kapi_benches::shared_bench_pod() else {
        println!("bench-pod.json not found (../shared/workloads): skipped");
        return;
    };
    let template: Value = serde_json::from_slice(&bytes).expect("bench-pod.json");
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app::app(dir.path());
    let create = Create::new();
    let reg = app.registry();
    let rt = reg.get("", "v1", "pods").expect("pods").clone();
    let cache = app.caches.get(&app, &rt).expect("pods cache");
    let name = |i: usize| format!("mem-{i}");
    let send = |n: &str| assert_eq!(create.send(&app, app::pod_body(&template, n)).status(), 201);
    send("warm-up");
    settle(&app, &cache);

    let empty = counting::live_bytes();
    for i in 0..N {
        send(&name(i));
    }
    settle(&app, &cache);
    let loaded = counting::live_bytes();
    let entries: Vec<_> = (0..N)
        .map(|i| {
            let key = rt.storage_key(app.prefix(), Some("default"), &name(i));
            cache.get(&key).0.expect("cached")
        })
        .collect();
    let avg = |f: &dyn Fn(&kapi_storage::cache::CacheEntry<kapi::cache::Cached>) -> usize| {
        entries.iter().map(|e| f(e)).sum::<usize>() as i64 / N as i64
    };
    let stored = avg(&|e| e.kv.value.len());
    let json = avg(&|e| e.data.json_list_item().len() + 1);
    let keys = avg(&|e| e.kv.key.len());
    let proto_len = avg(&|e| e.data.proto(&rt).map_or(0, |p| p.len()));
    let with_proto = counting::live_bytes();
    drop(entries);

    for i in 0..N {
        let patch = json!({"metadata": {"labels": {"updated": "yes"}}});
        assert_eq!(create.merge_patch(&app, &name(i), &patch).status(), 200);
    }
    settle(&app, &cache);
    let updated = counting::live_bytes();
    let window = app.options.watch_cache_size(&rt.plural);

    let all = per_pod(empty, loaded);
    println!("\nbytes held per stored pod, {N} pods of bench-pod.json (embedded store):");
    println!("  everything, after the creates          {all:>8}");
    println!("    the stored JSON value (store index; the cache entry shares it) {stored:>8}");
    println!("    the cache's JSON (with resourceVersion, `,` and `\\n`)       {json:>8}");
    println!(
        "    the rest (keys of {keys} B, index and map nodes, selector values, event records) {:>8}",
        all - stored - json
    );
    println!(
        "  protobuf once asked for (message {proto_len} B)         {:>8}",
        per_pod(loaded, with_proto)
    );
    println!(
        "  after one update of each (history; window of {window})   {:>8}",
        per_pod(with_proto, updated)
    );
    println!("  protobuf message size                     {proto_len:>8}");
    assert!(all <= PER_POD_BOUND, "a stored pod holds {all} bytes (bound {PER_POD_BOUND})");
}
