//! The embedded store checked against the model, plus crash, batching, slow-watcher and
//! compaction behaviour.

use super::*;
use crate::model::Model;
use crate::store::{Event, Precondition, Store};
use futures_executor::block_on;
use proptest::prelude::*;

fn open(dir: &Path, fsync: bool) -> Arc<EmbeddedStore> {
    EmbeddedStore::open(
        dir,
        EmbeddedOptions {
            fsync,
            snapshot_after_bytes: 4 << 10,
            watch_buffer: 100_000,
            ..Default::default()
        },
    )
    .unwrap()
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[derive(Debug, Clone)]
enum Step {
    Create(u8, u8),
    Update(u8, u8, bool),
    Delete(u8, bool),
    Compact,
    Restart,
    Watch(u8, u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..6, any::<u8>()).prop_map(|(k, v)| Step::Create(k, v)),
        4 => (0u8..6, any::<u8>(), any::<bool>()).prop_map(|(k, v, p)| Step::Update(k, v, p)),
        2 => (0u8..6, any::<bool>()).prop_map(|(k, p)| Step::Delete(k, p)),
        1 => Just(Step::Compact),
        1 => Just(Step::Restart),
        2 => (0u8..3, any::<u8>()).prop_map(|(p, r)| Step::Watch(p, r)),
    ]
}

fn key(k: u8) -> String {
    format!("/registry/{}/k{k}", if k.is_multiple_of(2) { "even" } else { "odd" })
}

const PREFIXES: [&str; 3] = ["/registry/", "/registry/even/", "/registry/odd/"];

fn drain(w: &Watch) -> Vec<Event> {
    w.events.try_iter().map(|r| r.unwrap()).collect()
}

fn check_reads(store: &EmbeddedStore, model: &Model) {
    assert_eq!(store.current_revision(), model.revision);
    for k in 0..6 {
        assert_eq!(block_on(store.get(&key(k))).unwrap(), model.get(&key(k)));
    }
    for rev in [
        None,
        Some(model.revision),
        Some(model.compacted.max(1)),
        Some(model.revision.saturating_sub(3)),
    ] {
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

fn run_history(steps: Vec<Step>) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), false);
    let mut model = Model::default();
    let mut watchers: Vec<(Watch, String, u64, Vec<Event>)> = Vec::new();
    for s in steps {
        match s {
            Step::Create(k, v) => {
                let got = block_on(store.create(&key(k), b(&v.to_string())));
                assert_eq!(got, model.create(&key(k), b(&v.to_string())));
            }
            Step::Update(k, v, pin) => {
                let pre = match (pin, model.get(&key(k))) {
                    (true, Some(kv)) => {
                        Precondition::ModRevision(kv.mod_revision - u64::from(v % 2))
                    }
                    _ => Precondition::None,
                };
                let got = block_on(store.update(&key(k), b(&v.to_string()), pre));
                assert_eq!(got, model.update(&key(k), b(&v.to_string()), pre));
            }
            Step::Delete(k, pin) => {
                let pre = match (pin, model.get(&key(k))) {
                    (true, Some(kv)) => Precondition::ModRevision(kv.mod_revision),
                    _ => Precondition::None,
                };
                assert_eq!(block_on(store.delete(&key(k), pre)), model.delete(&key(k), pre));
            }
            Step::Compact => {
                let rev = model.revision.saturating_sub(2).max(1);
                block_on(store.compact(rev)).unwrap();
                model.compact(rev).unwrap();
            }
            Step::Restart => {
                for (w, _, _, got) in watchers.iter_mut() {
                    got.extend(drain(w));
                }
                block_on(store.close()).unwrap();
                drop(store);
                store = open(dir.path(), false);
                // History before a restart may be compacted by recovery; the model follows.
                model.compacted = model.compacted.max(store.compacted_revision());
            }
            Step::Watch(p, r) => {
                let from = model.revision.saturating_sub(u64::from(r % 5)).max(1);
                let prefix = PREFIXES[p as usize];
                match store.watch(prefix, from) {
                    Ok(w) => watchers.push((w, prefix.to_string(), from, Vec::new())),
                    Err(StorageError::Compacted { .. }) => {
                        assert!(from < store.compacted_revision())
                    }
                    Err(e) => panic!("watch: {e}"),
                }
            }
        }
        check_reads(&store, &model);
    }
    for (w, prefix, from, mut got) in watchers {
        got.extend(drain(&w));
        let want = model.events_after(&prefix, from);
        // A watcher ends at a restart; it must have received an exact prefix of the model's events.
        assert!(got.len() <= want.len(), "watcher got more events than happened");
        assert_eq!(got[..], want[..got.len()], "watch {prefix} from {from}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn store_matches_model(steps in proptest::collection::vec(step(), 1..60)) {
        run_history(steps);
    }
}

#[test]
fn live_watchers_see_exactly_the_models_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false);
    let mut model = Model::default();
    let all = store.watch("/registry/", 0).unwrap();
    let odd = store.watch("/registry/odd/", 0).unwrap();
    for i in 0..50u8 {
        let k = key(i % 6);
        if model.get(&k).is_some() && i % 3 == 0 {
            assert_eq!(
                block_on(store.delete(&k, Precondition::None)),
                model.delete(&k, Precondition::None)
            );
        } else if model.get(&k).is_some() {
            assert_eq!(
                block_on(store.update(&k, b("v"), Precondition::None)),
                model.update(&k, b("v"), Precondition::None)
            );
        } else {
            assert_eq!(block_on(store.create(&k, b("v"))), model.create(&k, b("v")));
        }
    }
    assert_eq!(drain(&all), model.events_after("/registry/", 1));
    assert_eq!(drain(&odd), model.events_after("/registry/odd/", 1));
}

#[test]
fn acknowledged_writes_survive_a_torn_wal_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
    for i in 0..20 {
        block_on(store.create(&format!("/k/{i:02}"), b("v"))).unwrap();
    }
    let rev = store.current_revision();
    drop(store);
    let seq = *wal::segments(&fs::RealFs, dir.path()).unwrap().last().unwrap();
    let path = wal::segment_path(dir.path(), seq);
    let mut data = std::fs::read(&path).unwrap();
    data.extend_from_slice(&[42, 0, 0, 0, 9, 9, 9]);
    std::fs::write(&path, data).unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
    assert_eq!(store.current_revision(), rev);
    assert_eq!(block_on(store.range("/k/", None, 0, None)).unwrap().items.len(), 20);
    block_on(store.create("/k/new", b("v"))).unwrap();
    assert_eq!(store.current_revision(), rev + 1);
}

#[test]
fn revisions_never_go_back_after_deletes_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), true);
    block_on(store.create("/a", b("1"))).unwrap();
    block_on(store.delete("/a", Precondition::None)).unwrap();
    let rev = store.current_revision();
    drop(store);
    let store = open(dir.path(), true);
    assert_eq!(store.current_revision(), rev);
    assert_eq!(block_on(store.create("/a", b("2"))).unwrap().mod_revision, rev + 1);
}

#[test]
fn concurrent_writers_are_group_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let futs: Vec<_> =
                    (0..50).map(|i| store.create(&format!("/g/{t}/{i}"), b("v"))).collect();
                futs.into_iter().map(|f| block_on(f).unwrap().mod_revision).collect::<Vec<_>>()
            })
        })
        .collect();
    let mut revs: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    revs.sort_unstable();
    assert_eq!(revs, (2..402).collect::<Vec<_>>(), "distinct consecutive revisions");
    assert!(
        store.committed_batches() < 400,
        "expected batching, got {} batches",
        store.committed_batches()
    );
}

#[test]
fn slow_watcher_is_closed_without_blocking_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(
        dir.path(),
        EmbeddedOptions { fsync: false, watch_buffer: 10, ..Default::default() },
    )
    .unwrap();
    let slow = store.watch("/", 0).unwrap();
    for i in 0..30 {
        block_on(store.create(&format!("/s/{i}"), b("v"))).unwrap();
    }
    let got: Vec<_> = slow.events.try_iter().collect();
    // Its limit (10) exceeded past the grace period, or twice over: closed.
    assert!((11..=21).contains(&got.len()), "{} messages", got.len());
    assert_eq!(got.last().unwrap(), &Err(StorageError::WatcherTooSlow));
    assert!(slow.events.recv().is_err(), "closed after the error");
    assert_eq!(store.shared.hub.lock().watcher_count(), 0);
}

#[test]
fn compaction_expires_old_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false);
    for i in 0..5 {
        block_on(store.create(&format!("/c/{i}"), b("v"))).unwrap();
    }
    block_on(store.compact(4)).unwrap();
    assert!(matches!(store.watch("/c/", 2), Err(StorageError::Compacted { compacted: 4, .. })));
    assert!(matches!(
        block_on(store.range("/c/", None, 0, Some(3))),
        Err(StorageError::Compacted { .. })
    ));
    assert_eq!(block_on(store.range("/c/", None, 0, Some(4))).unwrap().items.len(), 3);
    let w = store.watch("/c/", 4).unwrap();
    assert_eq!(drain(&w).len(), 2);
}

#[test]
fn snapshots_bound_the_wal_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false);
    let big = Bytes::from(vec![b'x'; 1024]);
    for i in 0..40 {
        block_on(store.create(&format!("/snap/{i:02}"), big.clone())).unwrap();
    }
    let rev = store.current_revision();
    drop(store);
    assert!(wal::segments(&fs::RealFs, dir.path()).unwrap().len() <= 2, "old segments pruned");
    let store = open(dir.path(), false);
    assert_eq!(store.current_revision(), rev);
    assert_eq!(block_on(store.range("/snap/", None, 0, None)).unwrap().items.len(), 40);
}

/// Snapshots are written beside the committer (one at a time, later ones skipped while
/// one is in flight): concurrent writers crossing many snapshot thresholds lose nothing,
/// and a reopened store has every key at its revision with the WAL pruned.
#[test]
fn writes_during_background_snapshots_all_recover() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), true);
    let big = Bytes::from(vec![b'y'; 700]);
    let writes: Vec<_> =
        (0..400).map(|i| store.create(&format!("/bg/{i:03}"), big.clone())).collect();
    let written: Vec<KeyValue> = writes.into_iter().map(|w| block_on(w).unwrap()).collect();
    let updates: Vec<_> = (0..400)
        .step_by(3)
        .map(|i| store.update(&format!("/bg/{i:03}"), b("v2"), Precondition::None))
        .collect();
    let updated: Vec<KeyValue> = updates.into_iter().map(|w| block_on(w).unwrap()).collect();
    let rev = store.current_revision();
    drop(store);
    assert!(wal::segments(&fs::RealFs, dir.path()).unwrap().len() <= 2, "old segments pruned");
    let store = open(dir.path(), true);
    assert_eq!(store.current_revision(), rev);
    let items = block_on(store.range("/bg/", None, 0, None)).unwrap().items;
    assert_eq!(items.len(), 400);
    let mut want: std::collections::BTreeMap<String, KeyValue> =
        written.into_iter().map(|kv| (kv.key.clone(), kv)).collect();
    for kv in updated {
        want.insert(kv.key.clone(), kv);
    }
    let want: Vec<KeyValue> = want.into_values().collect();
    assert_eq!(items, want);
}

#[test]
fn closed_store_refuses_work() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), false);
    block_on(store.close()).unwrap();
    assert_eq!(block_on(store.create("/x", b("v"))), Err(StorageError::Closed));
    assert!(matches!(store.watch("/", 0), Err(StorageError::Closed)));
}
