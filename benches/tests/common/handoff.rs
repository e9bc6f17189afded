//! The hand-off check shared by `write_handoff` (values stored as JSON) and
//! `write_handoff_protobuf` (stored as protobuf): each in its own test binary, since
//! the built-in registry, and so the watch caches, are one per process.

use futures_executor::block_on;
use kapi::app::App;
use kapi::cache::Cached;
use kapi_benches::app::{self, Create};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Wait until the cache has listed and applied everything the store holds.
fn settle(app: &App, cache: &kapi::cache::Cache) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while cache.revision() == 0 || cache.revision() < app.store.current_revision() {
        assert!(Instant::now() < deadline, "the pods cache never caught up");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Create and patch pods stored in `media` (the embedded store's JSON when None) and
/// check what reached the cache and what the writes answered.
pub fn handed_over_byte_for_byte(media: Option<&str>) {
    // Every hand-off is checked against the decode, every spliced answer against the
    // answer written from the object.
    assert!(kapi::cache::written::set_verifying(true), "decided before any write");
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app::app_storing(dir.path(), media);
    assert_eq!(
        app.storage_media == kapi_codec::stored::StorageMediaType::Protobuf,
        media.is_some()
    );
    let create = Create::new();
    let reg = app.registry();
    let rt = reg.get("", "v1", "pods").expect("pods").clone();
    let cache = app.caches.get(&app, &rt).expect("pods cache");
    let handed = || cache.stats().handed.load(Ordering::Relaxed);
    // Regression (seen in a clean-clone CI run): under load the cache's first listing
    // came after the first pod's create and patch, so both were listed, not handed over.
    // Writes made before the listing are not events; wait for it.
    settle(&app, &cache);
    let before = handed();
    let mut templates = vec![app::client_pod()];
    if let Some(bytes) = kapi_benches::shared_bench_pod() {
        templates.push(serde_json::from_slice(&bytes).expect("bench-pod.json"));
    }
    let mut names = Vec::new();
    let key = |name: &str| rt.storage_key(app.prefix(), Some("default"), name);
    // The answer is the cache's entry: both are the object's JSON at its revision.
    let answered_as_cached = |resp: kapi::body::Response, name: &str| {
        let body = app::body(resp);
        settle(&app, &cache);
        let entry = cache.get(&key(name)).0.expect("cached");
        assert_eq!(String::from_utf8_lossy(&body), String::from_utf8_lossy(entry.data.json_line()));
    };
    for (i, template) in templates.iter().enumerate() {
        let name = format!("handed-{i}");
        let resp = create.send(&app, app::pod_body(template, &name));
        assert_eq!(resp.status(), 201, "create of {name}");
        answered_as_cached(resp, &name);
        let patch = json!({"metadata": {"labels": {"patched": "yes"}}});
        let resp = create.merge_patch(&app, &name, &patch);
        assert_eq!(resp.status(), 200, "patch of {name}");
        answered_as_cached(resp, &name);
        names.push(name);
    }
    settle(&app, &cache);
    assert_eq!(handed() - before, 2 * names.len() as u64, "every write was handed over");
    for name in &names {
        let entry = cache.get(&key(name)).0.expect("cached");
        let kv = block_on(app.store.get(&key(name))).expect("read").expect("stored");
        assert_eq!(kv.value.starts_with(b"k8s\0"), media.is_some(), "stored as asked");
        assert_eq!(entry.kv.mod_revision, kv.mod_revision);
        let obj = kapi_codec::stored::decode_object(&rt, &kv.value, kv.mod_revision).unwrap();
        let decoded = Cached::new(&rt, &obj);
        assert_eq!(
            String::from_utf8_lossy(entry.data.json_line()),
            String::from_utf8_lossy(decoded.json_line()),
            "{name}"
        );
        assert_eq!(entry.data.labels(), decoded.labels(), "{name}");
        assert_eq!(entry.data.labels().and_then(|l| l.get("patched")), Some(&json!("yes")));
        for field in rt.selectable_fields() {
            assert_eq!(entry.data.field(&rt, field), decoded.field(&rt, field), "{name} {field}");
        }
    }
}
