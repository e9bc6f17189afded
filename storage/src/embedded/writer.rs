//! The WAL segment being appended to, and what happens when an append fails.
//!
//! An append writes a batch's records at the end of the segment, then fdatasyncs. `bytes`
//! is the known-good length: everything before it was appended and synced. When a write
//! or an fsync fails, what lies after `bytes` is unknown (a prefix of the batch, or all
//! of it in the page cache but maybe not on disk), so before anything else is appended
//! the segment is cut back to `bytes` and the cut is made durable (set_len, fsync):
//! recovery can then never meet a failed batch in the middle of the log and mistake it
//! for the end (issue #14), and a refused write never comes back.
//!
//! A failed fsync is not retried: the kernel may have dropped the dirty pages and
//! cleared the error, so the file descriptor is not trusted with new data. The segment
//! is cut and closed, and the next append starts a new segment. If the cut fails too,
//! the writer refuses every append until restart (recovery then cuts the tail: nothing
//! after it was acknowledged).

use super::fs::{Fs, FsFile, is_no_space};
use super::wal::segment_path;
use crate::error::StorageError;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The segment being appended to.
pub struct Writer {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    /// None after a failed fsync: the next append opens segment `seq + 1`.
    file: Option<Box<dyn FsFile>>,
    pub seq: u64,
    /// Known-good length of the segment.
    pub bytes: u64,
    fsync: bool,
    /// Why appends are refused until restart, once a failed append could not be cut off.
    broken: Option<String>,
}

/// The `StorageError` of a failed file operation: `NoSpace` when the disk is full.
pub fn io_error(what: &str, e: &io::Error) -> StorageError {
    if is_no_space(e) {
        StorageError::NoSpace(format!("mvcc: database space exceeded ({what}: {e})"))
    } else {
        StorageError::Io(format!("{what}: {e}"))
    }
}

impl Writer {
    /// Open (or create) segment `seq` for appending.
    pub fn open(
        fs: &Arc<dyn Fs>,
        dir: &Path,
        seq: u64,
        fsync: bool,
    ) -> Result<Writer, StorageError> {
        let path = segment_path(dir, seq);
        let opened = fs.append(&path).and_then(|file| {
            let bytes = file.size()?;
            if fsync {
                fs.sync_dir(dir)?;
            }
            Ok((file, bytes))
        });
        let (file, bytes) = opened.map_err(|e| {
            // An empty segment left behind would make its predecessor a middle segment.
            if std::fs::metadata(&path).is_ok_and(|m| m.len() == 0) {
                let _ = fs.remove(&path);
            }
            io_error(&format!("opening WAL segment {seq}"), &e)
        })?;
        let (fs, dir, broken) = (fs.clone(), dir.to_path_buf(), None);
        Ok(Writer { fs, dir, file: Some(file), seq, bytes, fsync, broken })
    }

    /// A writer on the next segment (snapshots start one; so does a failed fsync).
    pub fn next(&self) -> Result<Writer, StorageError> {
        Writer::open(&self.fs, &self.dir, self.seq + 1, self.fsync)
    }

    /// Append encoded records and make them durable; on failure nothing of them stays.
    pub fn append(&mut self, buf: &[u8]) -> Result<(), StorageError> {
        let fsync = self.fsync;
        let file = self.usable_file()?;
        if let Err(e) = file.write_all(buf) {
            self.cut_failed_append(false, &e);
            return Err(io_error("appending to the WAL", &e));
        }
        if fsync && let Err(e) = file.sync_data() {
            self.cut_failed_append(true, &e);
            return Err(io_error("syncing the WAL", &e));
        }
        self.bytes += buf.len() as u64;
        Ok(())
    }

    /// The file to append to: refused when broken, a new segment after a failed fsync.
    fn usable_file(&mut self) -> Result<&mut Box<dyn FsFile>, StorageError> {
        if let Some(why) = &self.broken {
            return Err(StorageError::Io(format!("WAL refuses writes until restart: {why}")));
        }
        if self.file.is_none() {
            *self = self.next()?;
            tracing::info!("WAL continues in segment {}", self.seq);
        }
        self.file.as_mut().ok_or_else(|| StorageError::Io("WAL segment not open".into()))
    }

    /// Cut the segment back to its known-good length, durably; after a failed fsync
    /// (`abandon`) also close it so the next append starts a new segment.
    fn cut_failed_append(&mut self, abandon: bool, cause: &io::Error) {
        let Some(file) = self.file.as_mut() else { return };
        let cut = file.set_len(self.bytes).and_then(|()| match self.fsync {
            true => file.sync_all(),
            false => Ok(()),
        });
        let seq = self.seq;
        match cut {
            Err(e) => {
                tracing::error!(
                    "WAL segment {seq}: append failed ({cause}) and cutting it failed ({e}); writes are refused until restart"
                );
                self.broken = Some(format!("append failed ({cause}), cut failed ({e})"));
            }
            Ok(()) if abandon => {
                tracing::warn!(
                    "WAL segment {seq}: fsync failed ({cause}); cut back to {} bytes, closed",
                    self.bytes
                );
                self.file = None;
            }
            Ok(()) => {
                tracing::warn!(
                    "WAL segment {seq}: append failed ({cause}); cut back to {} bytes",
                    self.bytes
                );
            }
        }
    }

    /// Whether the disk takes `len` bytes again (written to a scratch file, synced and
    /// removed), after whatever repair the WAL still needs.
    pub fn probe(&mut self, len: usize) -> Result<(), StorageError> {
        self.usable_file()?;
        let path = self.dir.join("probe.tmp");
        let written = self.fs.create(&path).and_then(|mut f| {
            f.write_all(&vec![0; len])?;
            if self.fsync { f.sync_data() } else { Ok(()) }
        });
        let _ = self.fs.remove(&path);
        written.map_err(|e| io_error("probing the disk", &e))
    }
}
