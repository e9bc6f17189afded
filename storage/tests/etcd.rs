//! The etcd backend against real etcd processes: checked against the model (reads at
//! every revision, exact watch streams), batching, conflicts inside a batch, watches
//! across a member restart, compaction, outages, leases. Skipped with a message when no
//! etcd binary is installed (the README's test command installs it).

use bytes::Bytes;
use futures_executor::block_on;
use kapi_e2e::etcd::{self, Etcd};
use kapi_storage::etcd::{EtcdOptions, EtcdStore};
use kapi_storage::model::Model;
use kapi_storage::{Event, Precondition, StorageError, Store, Watch};
use proptest::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn have_etcd() -> bool {
    let ok = etcd::available();
    if !ok {
        eprintln!("skipped: no etcd binary (install etcd-server)");
    }
    ok
}

fn connect(e: &Etcd) -> Arc<EtcdStore> {
    connect_with(e, EtcdOptions::default())
}

fn connect_with(e: &Etcd, opts: EtcdOptions) -> Arc<EtcdStore> {
    EtcdStore::connect(EtcdOptions { endpoints: e.endpoint_list(), ..opts }).expect("connect")
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn key(k: u8) -> String {
    format!("/registry/{}/k{k}", if k.is_multiple_of(2) { "even" } else { "odd" })
}

const PREFIXES: [&str; 3] = ["/registry/", "/registry/even/", "/registry/odd/"];

/// Wait until `w` delivered `n` events (or 10 s). A watch whose start a compaction
/// overtook ends with `Compacted` (etcd creates the watch after `watch` returned, as
/// upstream's watcher, which then answers 410): the events before it are its prefix.
/// Regression: the test took that end for a failure (seen under load, compaction to 6
/// before the etcd watch from 3 was created).
fn take(w: &Watch, n: usize) -> Vec<Event> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        match w.events.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(ev)) => got.push(ev),
            Ok(Err(StorageError::Compacted { requested, compacted })) => {
                assert!(requested < compacted, "a compacted watch from {requested}");
                break;
            }
            Ok(Err(e)) => panic!("watch event: {e}"),
            Err(_) => {}
        }
    }
    got
}

#[derive(Debug, Clone)]
enum Step {
    Create(u8, u8),
    Update(u8, u8, bool),
    Delete(u8, bool),
    Compact,
    Reconnect,
    Watch(u8, u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..6, any::<u8>()).prop_map(|(k, v)| Step::Create(k, v)),
        4 => (0u8..6, any::<u8>(), any::<bool>()).prop_map(|(k, v, p)| Step::Update(k, v, p)),
        2 => (0u8..6, any::<bool>()).prop_map(|(k, p)| Step::Delete(k, p)),
        1 => Just(Step::Compact),
        1 => Just(Step::Reconnect),
        2 => (0u8..3, any::<u8>()).prop_map(|(p, r)| Step::Watch(p, r)),
    ]
}

fn check_reads(store: &EtcdStore, model: &Model) {
    for k in 0..6 {
        assert_eq!(block_on(store.get(&key(k))).unwrap(), model.get(&key(k)), "get {}", key(k));
    }
    for rev in [None, Some(model.compacted.max(1))] {
        for prefix in PREFIXES {
            for (after, limit) in [(None, 0), (None, 2), (Some("/registry/even/k2"), 1)] {
                let got = block_on(store.range(prefix, after, limit, rev));
                let want = model.range(prefix, after, limit, rev);
                match (&got, &want) {
                    (Err(StorageError::Compacted { .. }), Err(StorageError::Compacted { .. })) => {}
                    _ => assert_eq!(
                        got, want,
                        "range {prefix} after {after:?} limit {limit} at {rev:?}"
                    ),
                }
            }
        }
    }
}

fn pre_for(model: &Model, k: u8, pin: bool, skew: u64) -> Precondition {
    match (pin, model.get(&key(k))) {
        (true, Some(kv)) => Precondition::ModRevision(kv.mod_revision - skew),
        _ => Precondition::None,
    }
}

fn run_history(steps: Vec<Step>) {
    let e = Etcd::start();
    let mut store = connect(&e);
    let mut model = Model::default();
    let mut watchers: Vec<(Watch, String, u64)> = Vec::new();
    for s in steps {
        match s {
            Step::Create(k, v) => {
                let got = block_on(store.create(&key(k), b(&v.to_string())));
                assert_eq!(got, model.create(&key(k), b(&v.to_string())));
            }
            Step::Update(k, v, pin) => {
                let pre = pre_for(&model, k, pin, u64::from(v % 2));
                let got = block_on(store.update(&key(k), b(&v.to_string()), pre));
                assert_eq!(got, model.update(&key(k), b(&v.to_string()), pre));
            }
            Step::Delete(k, pin) => {
                let pre = pre_for(&model, k, pin, 0);
                assert_eq!(block_on(store.delete(&key(k), pre)), model.delete(&key(k), pre));
            }
            Step::Compact => {
                let rev = model.revision.saturating_sub(2).max(1);
                let before = store.current_revision();
                block_on(store.compact(rev)).unwrap();
                model.compact(rev).unwrap();
                // The coordination key's write is a revision of its own, outside /registry.
                model.revision += store.current_revision() - before;
            }
            Step::Reconnect => {
                block_on(store.close()).unwrap();
                store = connect(&e);
            }
            Step::Watch(p, r) => {
                let from = model.revision.saturating_sub(u64::from(r % 5)).max(1);
                let prefix = PREFIXES[p as usize];
                match store.watch(prefix, from) {
                    Ok(w) => watchers.push((w, prefix.to_string(), from)),
                    Err(StorageError::Compacted { .. }) => assert!(from < model.compacted),
                    Err(e) => panic!("watch: {e}"),
                }
            }
        }
        check_reads(&store, &model);
    }
    for (w, prefix, from) in watchers {
        let want = model.events_after(&prefix, from);
        let got = take(&w, want.len());
        // A watcher of a closed store connection ends early: an exact prefix is required.
        assert!(got.len() <= want.len(), "watcher got more events than happened");
        assert_eq!(got[..], want[..got.len()], "watch {prefix} from {from}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]
    #[test]
    fn etcd_store_matches_model(steps in proptest::collection::vec(step(), 1..30)) {
        if have_etcd() {
            run_history(steps);
        }
    }
}

#[test]
fn concurrent_creates_are_batched_into_shared_txns() {
    if !have_etcd() {
        return;
    }
    let e = Etcd::start();
    let store = connect_with(&e, EtcdOptions { shards: 1, ..Default::default() });
    let start = store.current_revision();
    let writes: Vec<_> =
        (0..300).map(|i| store.create(&format!("/registry/b/{i:03}"), b("v"))).collect();
    let done: Vec<_> = writes.into_iter().map(|w| block_on(w).expect("create")).collect();
    let used = store.current_revision() - start;
    assert!(used < 300, "300 concurrent creates took {used} revisions: not batched");
    let page = block_on(store.range("/registry/b/", None, 0, None)).unwrap();
    assert_eq!(page.items.len(), 300);
    for kv in &done {
        assert_eq!(
            page.items.iter().find(|i| i.key == kv.key).unwrap().mod_revision,
            kv.mod_revision
        );
    }
}

#[test]
fn a_failed_compare_inside_a_batch_answers_each_write_on_its_own() {
    if !have_etcd() {
        return;
    }
    let e = Etcd::start();
    let store = connect_with(&e, EtcdOptions { shards: 1, ..Default::default() });
    let a = block_on(store.create("/registry/c/a", b("1"))).unwrap();
    // Submitted together: one good update, one stale, one duplicate create, one new key.
    let good = store.update("/registry/c/a", b("2"), Precondition::ModRevision(a.mod_revision));
    let stale = store.update("/registry/c/a", b("3"), Precondition::ModRevision(a.mod_revision));
    let dup = store.create("/registry/c/a", b("4"));
    let fresh = store.create("/registry/c/b", b("5"));
    assert!(block_on(good).is_ok());
    assert!(matches!(block_on(stale), Err(StorageError::Conflict { .. })));
    assert!(matches!(block_on(dup), Err(StorageError::AlreadyExists { .. })));
    assert!(block_on(fresh).is_ok());
    let missing = store.delete("/registry/c/none", Precondition::None);
    assert!(matches!(block_on(missing), Err(StorageError::NotFound { .. })));
    assert_eq!(block_on(store.get("/registry/c/a")).unwrap().unwrap().value, b("2"));
}

#[test]
fn watch_survives_a_member_restart_without_gaps_or_duplicates() {
    if !have_etcd() {
        return;
    }
    let mut e = Etcd::start();
    let store = connect_with(
        &e,
        EtcdOptions { request_timeout: Duration::from_secs(3), ..Default::default() },
    );
    let w = store.watch("/registry/w/", store.current_revision()).unwrap();
    for i in 0..5 {
        block_on(store.create(&format!("/registry/w/{i}"), b("x"))).unwrap();
    }
    e.members[0].restart();
    let mut written = 5;
    let deadline = Instant::now() + Duration::from_secs(20);
    while written < 10 && Instant::now() < deadline {
        if block_on(store.create(&format!("/registry/w/{written}"), b("y"))).is_ok() {
            written += 1;
        }
    }
    assert_eq!(written, 10, "writes did not resume after the restart");
    let got = take(&w, 10);
    let keys: Vec<String> = got.iter().map(|e| e.kv.key.clone()).collect();
    let want: Vec<String> = (0..10).map(|i| format!("/registry/w/{i}")).collect();
    assert_eq!(keys, want);
    assert!(got.windows(2).all(|p| p[0].revision() < p[1].revision()));
}

#[test]
fn compaction_makes_old_revisions_gone() {
    if !have_etcd() {
        return;
    }
    let e = Etcd::start();
    let store = connect(&e);
    let first = block_on(store.create("/registry/x/a", b("1"))).unwrap();
    block_on(store.update("/registry/x/a", b("2"), Precondition::None)).unwrap();
    let now = store.current_revision();
    block_on(store.compact(now)).unwrap();
    assert!(store.compacted_revision() >= now);
    let old = block_on(store.range("/registry/x/", None, 0, Some(first.mod_revision)));
    assert!(matches!(old, Err(StorageError::Compacted { .. })), "{old:?}");
    assert!(matches!(
        store.watch("/registry/x/", first.mod_revision),
        Err(StorageError::Compacted { .. })
    ));
    // A second replica's compaction in the same interval is skipped, not an error.
    let other = connect(&e);
    block_on(other.compact(now)).unwrap();
}

#[test]
fn requests_fail_fast_with_unavailable_while_etcd_is_down() {
    if !have_etcd() {
        return;
    }
    let mut e = Etcd::start();
    let store = connect_with(
        &e,
        EtcdOptions { request_timeout: Duration::from_secs(2), ..Default::default() },
    );
    block_on(store.create("/registry/o/a", b("1"))).unwrap();
    e.members[0].kill();
    let started = Instant::now();
    let out = block_on(store.get("/registry/o/a"));
    assert!(matches!(out, Err(StorageError::Unavailable(_))), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(block_on(store.check_health()).is_err());
    e.members[0].restart();
    let back = kapi_e2e::eventually(Duration::from_secs(20), || {
        block_on(store.get("/registry/o/a")).is_ok()
    });
    assert!(back, "store did not recover after etcd came back");
}

#[test]
fn keys_under_a_ttl_prefix_carry_a_lease() {
    if !have_etcd() {
        return;
    }
    let e = Etcd::start();
    let opts = EtcdOptions {
        ttl_prefixes: vec![("/registry/events/".into(), Duration::from_secs(3600))],
        ..Default::default()
    };
    let store = connect_with(&e, opts);
    block_on(store.create("/registry/events/default/e1", b("1"))).unwrap();
    block_on(store.create("/registry/pods/default/p1", b("1"))).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let leases = rt.block_on(async {
        let mut c = etcd_client::Client::connect(e.endpoint_list(), None).await.unwrap();
        let ev = c.get("/registry/events/default/e1", None).await.unwrap().kvs()[0].lease();
        let pod = c.get("/registry/pods/default/p1", None).await.unwrap().kvs()[0].lease();
        (ev, pod)
    });
    assert_ne!(leases.0, 0, "the event has no lease");
    assert_eq!(leases.1, 0, "the pod has a lease");
}

/// Regression: consistent reads on the etcd backend waited out their 3 s timeout when
/// the resource's prefix was quiet, because only writes under the prefix moved its watch
/// cache. A cache asked for progress must reach the store's revision.
#[test]
fn a_watch_cache_on_a_quiet_prefix_reaches_the_store_revision_when_asked() {
    use kapi_storage::cache::{CacheOptions, WatchCache};
    if !have_etcd() {
        return;
    }
    let e = Etcd::start();
    let store = connect(&e);
    block_on(store.create("/registry/quiet/a", b("1"))).unwrap();
    let decode: kapi_storage::cache::DecodeFn<()> = Arc::new(|_| Some(()));
    let cache =
        WatchCache::start(store.clone(), "/registry/quiet/", decode, None, CacheOptions::default())
            .unwrap();
    for i in 0..5 {
        block_on(store.create(&format!("/registry/busy/{i}"), b("x"))).unwrap();
    }
    let want = block_on(store.consistent_revision()).unwrap();
    let reached = kapi_e2e::eventually(Duration::from_secs(5), || {
        cache.request_progress();
        cache.is_loaded() && cache.revision() >= want
    });
    assert!(reached, "cache at {} never reached {want}", cache.revision());
    assert_eq!(cache.len(), 1);
}

#[test]
fn concurrent_reads_of_one_key_agree_and_never_predate_an_acknowledged_write() {
    if !have_etcd() {
        return;
    }
    let e = Etcd::start();
    let store = connect(&e);
    let v1 = block_on(store.create("/registry/r/k", b("1"))).unwrap();
    let reads: Vec<_> = (0..50).map(|_| store.get("/registry/r/k")).collect();
    for r in reads {
        assert_eq!(block_on(r).unwrap().unwrap(), v1);
    }
    for i in 2..20 {
        let pending: Vec<_> = (0..5).map(|_| store.get("/registry/r/k")).collect();
        let written =
            block_on(store.update("/registry/r/k", b(&i.to_string()), Precondition::None)).unwrap();
        // Issued after the write was acknowledged: must see it, whatever is in flight.
        assert_eq!(block_on(store.get("/registry/r/k")).unwrap().unwrap(), written);
        drop(pending);
    }
}

#[test]
fn shared_revision_reads_never_predate_an_acknowledged_write() {
    if !have_etcd() {
        return;
    }
    let e = Etcd::start();
    let store = connect(&e);
    for i in 0..20 {
        // Reads in flight while the write happens may be shared; those asked after the
        // write's acknowledgement must see it.
        let early: Vec<_> = (0..10).map(|_| store.consistent_revision()).collect();
        let kv = block_on(store.create(&format!("/registry/rev/{i}"), b("x"))).unwrap();
        let late: Vec<_> = (0..10).map(|_| store.consistent_revision()).collect();
        for r in late {
            assert!(block_on(r).unwrap() >= kv.mod_revision);
        }
        for r in early {
            block_on(r).unwrap();
        }
    }
}

#[test]
fn a_sharded_watch_cache_applies_multi_op_txns_as_whole_revisions() {
    use kapi_storage::cache::{CacheOptions, Start, WatchCache, WatchFilter};
    if !have_etcd() {
        return;
    }
    let e = Etcd::start();
    let store = connect(&e);
    let decode: kapi_storage::cache::DecodeFn<()> = Arc::new(|_| Some(()));
    let opts = CacheOptions { shards: 3, ..CacheOptions::default() };
    let cache = WatchCache::start(store.clone(), "/registry/p/", decode, None, opts).unwrap();
    let start = block_on(store.consistent_revision()).unwrap();
    assert!(kapi_e2e::eventually(Duration::from_secs(5), || cache.is_loaded()));
    let filter = WatchFilter { prefix: "/registry/p/".into(), exact: false, index: None };
    let watch = cache.watch(Start::After(start), filter).unwrap();
    // Concurrent creates are batched: many share one revision (one Txn).
    let writes: Vec<_> =
        (0..300).map(|i| store.create(&format!("/registry/p/{}/k{i}", i % 7), b("v"))).collect();
    for w in writes {
        block_on(w).unwrap();
    }
    let want = block_on(store.consistent_revision()).unwrap();
    assert!(kapi_e2e::eventually(Duration::from_secs(10), || cache.revision() >= want));
    let got: Vec<(u64, String)> =
        watch.events.try_iter().map(|ev| (ev.revision, ev.cur.kv.key.clone())).collect();
    assert_eq!(got.len(), 300, "every event once");
    assert!(got.windows(2).all(|w| w[0].0 <= w[1].0), "in revision order");
    let revisions: std::collections::BTreeSet<u64> = got.iter().map(|g| g.0).collect();
    assert!(revisions.len() < 300, "some Txns carried several creates");
    for rev in revisions {
        let listed = cache
            .list_at("/registry/p/", None, Some(rev), 0, false, |_| true)
            .expect("the window covers every revision of the run");
        let stored = block_on(store.range("/registry/p/", None, 0, Some(rev))).unwrap();
        let listed: Vec<&str> = listed.items.iter().map(|e| e.kv.key.as_str()).collect();
        let stored: Vec<&str> = stored.items.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!(listed, stored, "list at {rev}");
    }
}

/// A cache that reached the store's revision (proven by reading when its prefix is quiet)
/// includes every write before it. etcd 3.4.23 answers progress requests ahead of events
/// still queued for a watch (etcd issue 15220), which the cache no longer relies on; the
/// race needs load to show and this test does not reproduce it on an idle machine.
#[test]
fn a_consistent_read_from_the_cache_sees_every_write_before_it() {
    use kapi_storage::cache::{CacheOptions, WatchCache};
    if !have_etcd() {
        return;
    }
    let e = Etcd::start();
    let store = connect(&e);
    let decode: kapi_storage::cache::DecodeFn<()> = Arc::new(|_| Some(()));
    let cache =
        WatchCache::start(store.clone(), "/registry/q/", decode, None, CacheOptions::default())
            .unwrap();
    for i in 0..100 {
        block_on(store.create(&format!("/registry/q/k{i:03}"), b("v"))).unwrap();
        // Other prefixes move the store on, so progress is what the cache must prove.
        block_on(store.create(&format!("/registry/other/k{i:03}"), b("v"))).unwrap();
        let want = block_on(store.consistent_revision()).unwrap();
        let reached = kapi_e2e::eventually(Duration::from_secs(5), || {
            cache.request_progress();
            cache.is_loaded() && cache.revision() >= want
        });
        assert!(reached, "cache at {} never reached {want}", cache.revision());
        assert_eq!(cache.len(), i + 1, "a read at {want} misses a write");
    }
}
