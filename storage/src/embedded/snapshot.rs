//! Snapshots: every live key at one revision, written atomically (temp file, fsync,
//! rename, fsync of the directory) as WAL-framed `Put` records closed by a `Compact`
//! record carrying the snapshot's revision. A snapshot without that closing record is
//! incomplete and ignored. Older snapshots and WAL segments are removed once a newer
//! snapshot is durable; a snapshot that fails (e.g. the disk is full) removes its
//! temporary file and leaves them all in place.

use super::fs::Fs;
use super::wal::{self, Record};
use super::writer::io_error;
use crate::error::StorageError;
use crate::store::KeyValue;
use std::path::{Path, PathBuf};

fn path(dir: &Path, rev: u64) -> PathBuf {
    dir.join(format!("snapshot-{rev:016}.snap"))
}

fn list(fs: &dyn Fs, dir: &Path) -> Result<Vec<u64>, StorageError> {
    let mut out = Vec::new();
    for name in fs.list(dir)? {
        if let Some(rev) = name
            .strip_prefix("snapshot-")
            .and_then(|s| s.strip_suffix(".snap"))
            .and_then(|s| s.parse().ok())
        {
            out.push(rev);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Write the snapshot of revision `rev` holding the `live` key-values.
pub fn write(
    fs: &dyn Fs,
    dir: &Path,
    rev: u64,
    live: Vec<KeyValue>,
    fsync: bool,
) -> Result<(), StorageError> {
    let mut buf = Vec::new();
    for kv in live {
        let rec = Record::Put {
            key: kv.key,
            value: kv.value,
            revision: kv.mod_revision,
            create_revision: kv.create_revision,
        };
        rec.encode_into(&mut buf);
    }
    Record::Compact { revision: rev }.encode_into(&mut buf);
    let tmp = dir.join("snapshot.tmp");
    let written = fs.create(&tmp).and_then(|mut f| {
        f.write_all(&buf)?;
        if fsync { f.sync_all() } else { Ok(()) }
    });
    if let Err(e) = written.and_then(|()| fs.rename(&tmp, &path(dir, rev))) {
        // Give the space back; the older snapshot and segments still hold everything.
        let _ = fs.remove(&tmp);
        return Err(io_error("writing a snapshot", &e));
    }
    if fsync {
        fs.sync_dir(dir).map_err(|e| io_error("syncing the snapshot's directory", &e))?;
    }
    Ok(())
}

/// The newest complete snapshot: its records (without the closing marker) and revision.
pub fn load_latest(fs: &dyn Fs, dir: &Path) -> Result<Option<(Vec<Record>, u64)>, StorageError> {
    for rev in list(fs, dir)?.into_iter().rev() {
        let data = fs.read(&path(dir, rev))?;
        let (mut records, valid) = wal::decode_all(&data);
        let complete = valid == data.len()
            && matches!(records.last(), Some(Record::Compact { revision }) if *revision == rev);
        if complete {
            records.pop();
            return Ok(Some((records, rev)));
        }
        tracing::warn!("ignoring incomplete snapshot at revision {rev}");
    }
    Ok(None)
}

/// Remove snapshots older than `keep` and WAL segments before `first_live_segment`.
pub fn prune(
    fs: &dyn Fs,
    dir: &Path,
    keep: u64,
    first_live_segment: u64,
) -> Result<(), StorageError> {
    for rev in list(fs, dir)?.into_iter().filter(|r| *r < keep) {
        fs.remove(&path(dir, rev))?;
    }
    for seq in wal::segments(fs, dir)?.into_iter().filter(|s| *s < first_live_segment) {
        fs.remove(&wal::segment_path(dir, seq))?;
    }
    Ok(())
}
