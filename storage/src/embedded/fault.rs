//! A fault-injecting [`Fs`] for tests: real files underneath, with one-shot faults
//! (ENOSPC or EIO on open, write, fsync, set_len, rename, remove or a directory fsync; a
//! torn write lets only a prefix of the buffer reach the file) and an optional free-space
//! budget that makes every write beyond it fail with ENOSPC after writing what fits.
//!
//! Whatever a faulty call wrote stays in the real file, so a store reopened on the same
//! directory sees the worst case: the bytes of a write that was reported as failed.

use super::fs::{Fs, FsFile, RealFs};
use parking_lot::Mutex;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// The operation a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsOp {
    Open,
    Write,
    Sync,
    SetLen,
    Rename,
    Remove,
    SyncDir,
}

/// The error a fault returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Errno {
    /// ENOSPC: no space left on device.
    NoSpace,
    /// EIO: input/output error.
    Io,
}

impl Errno {
    fn error(self) -> io::Error {
        io::Error::from_raw_os_error(match self {
            Errno::NoSpace => 28,
            Errno::Io => 5,
        })
    }
}

/// One fault: the next `op` on a file whose name starts with `file` fails with `errno`
/// (a directory fsync goes by the directory's name; "" matches any); for a write, the
/// first `keep` bytes of the buffer reach the file first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub op: FsOp,
    pub file: &'static str,
    pub errno: Errno,
    pub keep: usize,
}

impl Fault {
    pub fn new(op: FsOp, file: &'static str, errno: Errno) -> Fault {
        Fault { op, file, errno, keep: 0 }
    }

    /// A write of which only the first `keep` bytes reach the file.
    pub fn torn(file: &'static str, keep: usize, errno: Errno) -> Fault {
        Fault { op: FsOp::Write, file, errno, keep }
    }
}

#[derive(Debug, Default)]
struct Plan {
    faults: Vec<Fault>,
    /// Bytes writes may still add (None: unlimited).
    free: Option<u64>,
    /// Faults injected so far (one-shot faults and budget refusals).
    fired: u64,
}

impl Plan {
    /// Take the first pending fault for `op` on `name`.
    fn take(&mut self, op: FsOp, name: &str) -> Option<Fault> {
        let at = self.faults.iter().position(|f| f.op == op && name.starts_with(f.file))?;
        self.fired += 1;
        Some(self.faults.remove(at))
    }

    fn fail(&mut self, op: FsOp, name: &str) -> io::Result<()> {
        match self.take(op, name) {
            Some(f) => Err(f.errno.error()),
            None => Ok(()),
        }
    }

    fn refund(&mut self, bytes: u64) {
        if let Some(free) = &mut self.free {
            *free += bytes;
        }
    }
}

/// Real files with injected faults; clones share one plan.
#[derive(Debug, Clone, Default)]
pub struct FaultFs {
    plan: Arc<Mutex<Plan>>,
}

fn name_of(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

impl FaultFs {
    pub fn new() -> FaultFs {
        FaultFs::default()
    }

    /// Queue a one-shot fault.
    pub fn inject(&self, fault: Fault) {
        self.plan.lock().faults.push(fault);
    }

    /// Limit the bytes writes may still add (None: the disk has room again).
    pub fn set_free_space(&self, free: Option<u64>) {
        self.plan.lock().free = free;
    }

    /// Drop the queued faults and the free-space limit.
    pub fn clear(&self) {
        let mut plan = self.plan.lock();
        plan.faults.clear();
        plan.free = None;
    }

    /// Faults queued and not yet hit.
    pub fn pending(&self) -> usize {
        self.plan.lock().faults.len()
    }

    /// Faults that fired so far.
    pub fn fired(&self) -> u64 {
        self.plan.lock().fired
    }

    fn open(&self, path: &Path, file: io::Result<Box<dyn FsFile>>) -> io::Result<Box<dyn FsFile>> {
        Ok(Box::new(FaultFile { inner: file?, name: name_of(path), plan: self.plan.clone() }))
    }
}

impl Fs for FaultFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        RealFs.create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        RealFs.list(dir)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        RealFs.read(path)
    }

    fn append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.plan.lock().fail(FsOp::Open, &name_of(path))?;
        self.open(path, RealFs.append(path))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.plan.lock().fail(FsOp::Open, &name_of(path))?;
        let old = std::fs::metadata(path).map_or(0, |m| m.len());
        let file = self.open(path, RealFs.create(path))?;
        self.plan.lock().refund(old);
        Ok(file)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.plan.lock().fail(FsOp::Rename, &name_of(from))?;
        let replaced = std::fs::metadata(to).map_or(0, |m| m.len());
        RealFs.rename(from, to)?;
        self.plan.lock().refund(replaced);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.plan.lock().fail(FsOp::Remove, &name_of(path))?;
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        RealFs.remove(path)?;
        self.plan.lock().refund(size);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.plan.lock().fail(FsOp::SyncDir, &name_of(dir))?;
        RealFs.sync_dir(dir)
    }
}

/// A real file whose calls consult the plan first.
#[derive(Debug)]
struct FaultFile {
    inner: Box<dyn FsFile>,
    name: String,
    plan: Arc<Mutex<Plan>>,
}

impl FsFile for FaultFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut plan = self.plan.lock();
        if let Some(f) = plan.take(FsOp::Write, &self.name) {
            self.inner.write_all(&buf[..f.keep.min(buf.len())])?;
            return Err(f.errno.error());
        }
        let Some(free) = plan.free else { return self.inner.write_all(buf) };
        let fits = usize::try_from(free).unwrap_or(usize::MAX).min(buf.len());
        plan.free = Some(free - fits as u64);
        self.inner.write_all(&buf[..fits])?;
        if fits < buf.len() {
            plan.fired += 1;
            return Err(Errno::NoSpace.error());
        }
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.plan.lock().fail(FsOp::Sync, &self.name)?;
        self.inner.sync_data()
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.plan.lock().fail(FsOp::Sync, &self.name)?;
        self.inner.sync_all()
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let mut plan = self.plan.lock();
        plan.fail(FsOp::SetLen, &self.name)?;
        let old = self.inner.size()?;
        self.inner.set_len(len)?;
        plan.refund(old.saturating_sub(len));
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
}
