//! The embedded store under injected disk faults ([`FaultFs`]): after every fault the
//! store is reopened on the same files and must hold exactly what it acknowledged
//! (checked against a BTreeMap model): nothing acknowledged lost, nothing refused kept,
//! no deleted key back, revisions where they were.

use super::fault::{Errno, Fault, FaultFs, FsOp};
use super::*;
use futures_executor::block_on;
use std::collections::BTreeMap;

/// A store on fault-injecting files and the model of what it acknowledged.
struct Harness {
    dir: tempfile::TempDir,
    fs: FaultFs,
    store: Arc<EmbeddedStore>,
    snapshot_after_bytes: u64,
    /// key -> (value, mod_revision) of every acknowledged write.
    model: BTreeMap<String, (Bytes, u64)>,
    /// Revision of the last acknowledged write.
    revision: u64,
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn open_with(
    dir: &Path,
    fs: &FaultFs,
    snapshot_after_bytes: u64,
) -> Result<Arc<EmbeddedStore>, StorageError> {
    let opts =
        EmbeddedOptions { fs: Arc::new(fs.clone()), snapshot_after_bytes, ..Default::default() };
    EmbeddedStore::open(dir, opts)
}

impl Harness {
    fn new(snapshot_after_bytes: u64) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultFs::new();
        let store = open_with(dir.path(), &fs, snapshot_after_bytes).unwrap();
        let revision = store.current_revision();
        Harness { dir, fs, store, snapshot_after_bytes, model: BTreeMap::new(), revision }
    }

    /// Record an answer in the model; whether the write was acknowledged.
    fn answer(&mut self, got: Result<KeyValue, StorageError>, deleted: bool) -> bool {
        let Ok(kv) = got else { return false };
        self.revision = self.revision.max(kv.mod_revision);
        if deleted {
            self.model.remove(&kv.key);
        } else {
            self.model.insert(kv.key, (kv.value, kv.mod_revision));
        }
        true
    }

    fn create(&mut self, key: &str, value: &str) -> bool {
        let got = block_on(self.store.create(key, b(value)));
        self.answer(got, false)
    }

    fn update(&mut self, key: &str, value: &str) -> bool {
        let got = block_on(self.store.update(key, b(value), Precondition::None));
        self.answer(got, false)
    }

    fn delete(&mut self, key: &str) -> bool {
        let got = block_on(self.store.delete(key, Precondition::None));
        self.answer(got, true)
    }

    /// Many creates sent at once (committed as one or a few batches); how many were acknowledged.
    fn create_many(&mut self, prefix: &str, n: usize, value: &Bytes) -> usize {
        let futs: Vec<_> =
            (0..n).map(|i| self.store.create(&format!("{prefix}{i:04}"), value.clone())).collect();
        futs.into_iter().map(block_on).filter(|got| self.answer(got.clone(), false)).count()
    }

    /// What the store holds, key -> (value, mod_revision).
    fn contents(&self) -> BTreeMap<String, (Bytes, u64)> {
        let items = block_on(self.store.range("/", None, 0, None)).expect("reads go on").items;
        items.into_iter().map(|kv| (kv.key, (kv.value, kv.mod_revision))).collect()
    }

    fn assert_matches_model(&self, when: &str) {
        assert_eq!(self.contents(), self.model, "{when}: contents");
        assert_eq!(self.store.current_revision(), self.revision, "{when}: revision");
    }

    /// Close the store and open it again on the same files.
    fn reopen(&mut self) {
        block_on(self.store.close()).unwrap();
        self.store =
            open_with(self.dir.path(), &self.fs, self.snapshot_after_bytes).expect("reopen");
    }

    /// A few acknowledged writes, one of them a delete.
    fn seed(&mut self) {
        assert!(
            self.create("/k/a", "1") && self.create("/k/b", "2") && self.create("/k/gone", "3")
        );
        assert!(self.update("/k/a", "1b") && self.delete("/k/gone"));
    }

    /// Acknowledged writes after a fault: a delete, a create, an update, a re-create.
    fn after_fault(&mut self) {
        assert!(self.delete("/k/a"), "delete after the fault");
        assert!(self.create("/k/c", "4"), "create after the fault");
        assert!(self.update("/k/b", "2b"), "update after the fault");
        assert!(self.create("/k/a", "5"), "re-create after the fault");
    }
}

/// Framed size of the WAL record of a create of `key` with `value`.
fn put_record_len(key: &str, value: &str) -> usize {
    let mut buf = Vec::new();
    wal::Record::Put { key: key.into(), value: b(value), revision: 1, create_revision: 1 }
        .encode_into(&mut buf);
    buf.len()
}

/// Regression (issue #14): a WAL append that failed half-way (disk full) left its torn
/// record in the middle of the segment; later acknowledged writes went after it, and
/// recovery cut everything from the torn record on as a "torn tail": acknowledged
/// writes were lost and a deleted key came back.
#[test]
fn failed_append_leaves_no_torn_record_in_the_middle_of_the_wal() {
    let mut h = Harness::new(64 << 20);
    h.seed();
    h.fs.inject(Fault::torn("wal-", 11, Errno::NoSpace));
    assert!(!h.create("/k/refused", "x"), "the torn append fails");
    h.after_fault();
    h.reopen();
    h.assert_matches_model("after reopen");
}

/// A write torn at every byte offset of its record, by ENOSPC and by EIO: the write
/// fails, later writes are acknowledged, and a reopened store has exactly those.
#[test]
fn torn_write_at_every_byte_offset_of_a_record_loses_nothing() {
    let len = put_record_len("/k/refused", "refused-value");
    for errno in [Errno::NoSpace, Errno::Io] {
        for keep in 0..len {
            let mut h = Harness::new(64 << 20);
            h.seed();
            h.fs.inject(Fault::torn("wal-", keep, errno));
            assert!(!h.create("/k/refused", "refused-value"), "{errno:?} at {keep}");
            assert_eq!(h.fs.pending(), 0);
            h.after_fault();
            h.assert_matches_model("before reopen");
            h.reopen();
            h.assert_matches_model(&format!("{errno:?} torn at byte {keep} of {len}"));
        }
    }
}

/// A torn write whose cut fails too: the store refuses writes (and is not writable)
/// until restart; after it, nothing acknowledged is lost and the torn write is gone.
#[test]
fn torn_write_that_cannot_be_cut_refuses_writes_until_restart() {
    let len = put_record_len("/k/refused", "refused-value");
    for keep in 0..len {
        let mut h = Harness::new(64 << 20);
        h.seed();
        h.fs.inject(Fault::torn("wal-", keep, Errno::Io));
        h.fs.inject(Fault::new(FsOp::SetLen, "wal-", Errno::Io));
        assert!(!h.create("/k/refused", "refused-value"));
        assert!(!h.create("/k/later", "v"), "writes are refused after a failed cut");
        assert!(block_on(h.store.check_writable()).is_err());
        h.assert_matches_model("reads go on");
        h.reopen();
        h.assert_matches_model(&format!("torn at byte {keep}, cut failed, after restart"));
        h.after_fault();
        h.reopen();
        h.assert_matches_model("writes after the restart");
    }
}

/// The disk fills in the middle of a batch: every write of that batch fails with
/// `NoSpace`, reads go on, the store is not writable; once space is back writes are
/// acknowledged again, and a reopened store has exactly the acknowledged ones.
#[test]
fn disk_full_mid_batch_then_space_back_then_more_writes_then_reopen() {
    let mut h = Harness::new(64 << 20);
    h.seed();
    let value = Bytes::from(vec![b'v'; 300]);
    h.fs.set_free_space(Some(10 << 10));
    let futs: Vec<_> =
        (0..64).map(|i| h.store.create(&format!("/full/{i:04}"), value.clone())).collect();
    let answers: Vec<_> = futs.into_iter().map(block_on).collect();
    let refused: Vec<_> = answers.iter().filter_map(|a| a.clone().err()).collect();
    for a in answers {
        h.answer(a, false);
    }
    assert!(!refused.is_empty(), "the disk filled up");
    for e in &refused {
        assert!(
            matches!(e, StorageError::NoSpace(m) if m.contains("database space exceeded")),
            "{e:?}"
        );
    }
    h.fs.set_free_space(Some(0));
    assert!(!h.create("/k/small", "x"), "nothing fits on a full disk");
    assert!(block_on(h.store.check_writable()).is_err(), "not writable while full");
    assert_eq!(
        block_on(h.store.get("/k/b")).unwrap().map(|kv| kv.value),
        Some(b("2")),
        "reads go on"
    );
    h.assert_matches_model("while the disk is full");
    h.fs.set_free_space(None);
    assert_eq!(block_on(h.store.check_writable()), Ok(()), "writable once space is back");
    h.after_fault();
    assert_eq!(h.create_many("/more/", 64, &value), 64);
    h.reopen();
    h.assert_matches_model("after reopen");
}

/// The disk stays full across many batches and snapshots (small segments): every
/// answer is kept in the model, and after space is back and a reopen the store matches.
#[test]
fn disk_full_across_snapshots_loses_nothing() {
    let mut h = Harness::new(4 << 10);
    h.seed();
    let value = Bytes::from(vec![b's'; 700]);
    for round in 0..6u64 {
        h.fs.set_free_space(Some(3000 + round * 2500));
        let prefix = format!("/r{round}/");
        h.create_many(&prefix, 40, &value);
        for i in (0..40).step_by(7) {
            h.delete(&format!("{prefix}{i:04}"));
        }
        h.fs.set_free_space(None);
        h.create_many(&format!("/after{round}/"), 10, &value);
        h.delete("/k/a");
        h.create("/k/a", "again");
    }
    h.store.shutdown();
    assert!(!h.dir.path().join("snapshot.tmp").exists(), "failed snapshots clean up");
    h.reopen();
    h.assert_matches_model("after reopen");
}

/// EIO on fsync: the write fails, the segment is cut and abandoned (later writes go to
/// a new segment, the failed fsync is not retried), and a reopened store has exactly
/// the acknowledged writes.
#[test]
fn eio_on_fsync_loses_nothing_and_starts_a_new_segment() {
    let mut h = Harness::new(64 << 20);
    h.seed();
    let before = wal::segments(&h.fs, h.dir.path()).unwrap();
    h.fs.inject(Fault::new(FsOp::Sync, "wal-", Errno::Io));
    let got = block_on(h.store.create("/k/refused", b("x")));
    assert!(
        matches!(&got, Err(StorageError::Io(m)) if m.contains("Input/output error")),
        "{got:?}"
    );
    assert!(block_on(h.store.check_writable()).is_ok(), "the probe finds the disk writable again");
    h.after_fault();
    let after = wal::segments(&h.fs, h.dir.path()).unwrap();
    assert_eq!(after.len(), before.len() + 1, "a new segment after the failed fsync");
    h.reopen();
    h.assert_matches_model("after reopen");
}

/// EIO on fsync and the cut fails: writes are refused until restart. The failed batch
/// is whole in the file, so after the restart it may be there (like a write in flight at
/// a crash, it was never acknowledged); everything acknowledged is.
#[test]
fn eio_on_fsync_with_a_failed_cut_refuses_writes_and_keeps_every_acknowledged_one() {
    let mut h = Harness::new(64 << 20);
    h.seed();
    h.fs.inject(Fault::new(FsOp::Sync, "wal-", Errno::Io));
    h.fs.inject(Fault::new(FsOp::SetLen, "wal-", Errno::Io));
    assert!(!h.create("/k/unknown", "x"));
    assert!(!h.create("/k/later", "x"), "refused until restart");
    h.reopen();
    let mut got = h.contents();
    let unknown = got.remove("/k/unknown");
    assert!(unknown.is_none_or(|(v, _)| v == b("x")));
    assert_eq!(got, h.model, "acknowledged writes, and no deleted key back");
    assert!(!got.contains_key("/k/later"));
}

/// Snapshots that fail (ENOSPC while writing, EIO on fsync, rename or directory fsync)
/// lose nothing: the older snapshot and segments stay until a newer one is durable.
#[test]
fn failed_snapshots_keep_older_snapshot_and_segments() {
    let mut h = Harness::new(2 << 10);
    h.seed();
    let value = Bytes::from(vec![b'n'; 500]);
    let faults = [
        Fault::torn("snapshot", 100, Errno::NoSpace),
        Fault::new(FsOp::Sync, "snapshot", Errno::Io),
        Fault::new(FsOp::Rename, "snapshot", Errno::NoSpace),
        Fault::new(FsOp::Open, "snapshot", Errno::NoSpace),
    ];
    for (round, fault) in faults.into_iter().enumerate() {
        h.fs.inject(fault);
        for i in 0..12 {
            assert!(h.create(&format!("/snap{round}/{i:02}"), &String::from_utf8_lossy(&value)));
        }
        h.delete(&format!("/snap{round}/00"));
        h.store.shutdown();
        assert_eq!(h.fs.pending(), 0, "the snapshot fault {fault:?} was hit");
        h.reopen();
        h.assert_matches_model(&format!("after {fault:?}"));
    }
    assert!(!h.dir.path().join("snapshot.tmp").exists());
}

/// A damaged record with valid records after it is not a torn tail: recovery refuses to
/// start, saying so, instead of cutting acknowledged writes.
#[test]
fn corrupt_record_before_valid_ones_refuses_to_start() {
    let mut h = Harness::new(64 << 20);
    h.seed();
    h.after_fault();
    block_on(h.store.close()).unwrap();
    let seq = *wal::segments(&h.fs, h.dir.path()).unwrap().last().unwrap();
    let path = wal::segment_path(h.dir.path(), seq);
    let mut data = std::fs::read(&path).unwrap();
    data[20] ^= 0xff;
    std::fs::write(&path, &data).unwrap();
    let err = open_with(h.dir.path(), &h.fs, 64 << 20).expect_err("must refuse to start");
    let msg = err.to_string();
    assert!(
        msg.contains("followed by valid records") && msg.contains("refusing to start"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), data, "nothing was cut");
}

/// One step of a random history under faults.
#[derive(Debug, Clone)]
enum Step {
    Create(u8),
    Update(u8),
    Delete(u8),
    /// Several creates at once (one or a few batches).
    Burst(u8),
    Fault(Fault),
    /// The disk has this many bytes left, or room again.
    Space(Option<u16>),
    Probe,
    Reopen,
}

fn fault() -> impl proptest::strategy::Strategy<Value = Fault> {
    use proptest::prelude::*;
    let errno = prop_oneof![Just(Errno::NoSpace), Just(Errno::Io)];
    let file = prop_oneof![Just("wal-"), Just("snapshot")];
    let op = prop_oneof![Just(FsOp::Sync), Just(FsOp::Open), Just(FsOp::Rename)];
    prop_oneof![
        3 => (file.clone(), 0usize..120, errno.clone())
            .prop_map(|(f, keep, e)| Fault::torn(f, keep, e)),
        2 => (op, file, errno.clone()).prop_map(|(op, f, e)| Fault::new(op, f, e)),
        // A directory fsync is named after the directory: "" matches any.
        1 => errno.prop_map(|e| Fault::new(FsOp::SyncDir, "", e)),
    ]
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (0u8..8).prop_map(Step::Create),
        3 => (0u8..8).prop_map(Step::Update),
        2 => (0u8..8).prop_map(Step::Delete),
        1 => (1u8..20).prop_map(Step::Burst),
        3 => fault().prop_map(Step::Fault),
        1 => proptest::option::of(0u16..3000).prop_map(Step::Space),
        1 => Just(Step::Probe),
        1 => Just(Step::Reopen),
    ]
}

fn run_history(steps: Vec<Step>) {
    let mut h = Harness::new(2 << 10);
    let value = "v".repeat(150);
    for (n, s) in steps.into_iter().enumerate() {
        match s {
            Step::Create(k) => _ = h.create(&format!("/p/{k}"), &value),
            Step::Update(k) => _ = h.update(&format!("/p/{k}"), &format!("u{n}")),
            Step::Delete(k) => _ = h.delete(&format!("/p/{k}")),
            Step::Burst(c) => _ = h.create_many(&format!("/burst{n}/"), c.into(), &b(&value)),
            Step::Fault(f) => h.fs.inject(f),
            Step::Space(free) => h.fs.set_free_space(free.map(u64::from)),
            Step::Probe => _ = block_on(h.store.check_writable()),
            Step::Reopen => {
                h.fs.clear();
                h.reopen();
            }
        }
        h.assert_matches_model(&format!("after step {n}"));
    }
    h.fs.clear();
    h.reopen();
    h.assert_matches_model("after the final reopen");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]
    /// Random writes, faults (torn writes, failed fsyncs, opens, renames, directory
    /// fsyncs, a full disk) and reopens: the store always holds exactly what it
    /// acknowledged, before and after every reopen.
    #[test]
    fn random_faults_never_lose_or_invent_writes(steps in proptest::collection::vec(step(), 1..80)) {
        run_history(steps);
    }
}
