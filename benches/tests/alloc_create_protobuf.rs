//! `alloc_create` for values stored as protobuf (`application/vnd.kubernetes.protobuf`,
//! the etcd backend's default), on the embedded store: allocations per pod create
//! through the REST handler, in-process. Since the writer hands the watch cache the
//! object's JSON when it is in the protobuf round trip's normal form, the cache's feed no
//! longer decodes the stored protobuf (1,242 allocations for bench-pod.json).
//!
//! Re-measure with `cargo test -p kapi-benches --test alloc_create_protobuf -- --nocapture`
//! and set a bound ~20% above the figure printed; docs/PERFORMANCE.md ("Protobuf-stored
//! hand-off and the answer from the hand-off") has the history.

#[path = "common/creates.rs"]
mod creates;

use creates::Bounds;
use kapi_benches::app::{self, Create};
use kapi_benches::counting::Counting;

#[global_allocator]
static ALLOC: Counting = Counting;

/// Allocations of one create on the request thread, the fixture pod (measured: 1,579:
/// the protobuf encoding, the normal-form walk and the JSON written beside it, where the
/// JSON-stored create writes the JSON alone).
const FIXTURE_BOUND: u64 = 1_895;
/// The same for `bench-pod.json` (measured: 2,068).
const BENCH_POD_BOUND: u64 = 2_480;
/// Process-wide, the store's commit and the cache's feed included: the fixture pod
/// (measured: 1,604; the feed's decode of the stored protobuf, 1,242 allocations for
/// bench-pod.json in the create_path bench, is gone).
const FIXTURE_PROCESS_BOUND: u64 = 1_925;
/// The same for `bench-pod.json` (measured: 2,091).
const BENCH_POD_PROCESS_BOUND: u64 = 2_510;

#[test]
fn a_protobuf_stored_pod_create_allocates_within_its_bound() {
    // The hand-off check's decode is not counted (the test scripts turn it on).
    assert!(kapi::cache::written::set_verifying(false), "decided before any write");
    let dir = tempfile::tempdir().expect("tempdir");
    let app = app::app_storing(dir.path(), Some("application/vnd.kubernetes.protobuf"));
    let create = Create::new();
    let bounds = Bounds {
        fixture: FIXTURE_BOUND,
        fixture_process: FIXTURE_PROCESS_BOUND,
        bench_pod: BENCH_POD_BOUND,
        bench_pod_process: BENCH_POD_PROCESS_BOUND,
    };
    creates::check(&app, &create, &bounds);
}
