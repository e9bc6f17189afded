//! An in-memory data directory for the `wal` target: the embedded store's file seam
//! ([`kapi_storage::embedded::fs::Fs`]) over a map of paths to bytes, so recovery reads
//! fuzzed files without touching the disk. Plus the helpers that lay fuzz input out as
//! files and compare what two stores hold.

use kapi_storage::Store;
use kapi_storage::embedded::fs::{Fs, FsFile};
use kapi_storage::embedded::wal::{self, Record};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Separates the files of a `wal` input.
pub const FILE_SEPARATOR: &[u8] = b"--kapi-file--";

/// The files of a `wal` input (at most 8).
pub fn split_files(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() < 7 {
        let Some(i) = rest.windows(FILE_SEPARATOR.len()).position(|w| w == FILE_SEPARATOR) else {
            break;
        };
        out.push(&rest[..i]);
        rest = &rest[i + FILE_SEPARATOR.len()..];
    }
    out.push(rest);
    out
}

/// The revision a snapshot's closing record names, for its file name.
pub fn snapshot_revision(data: &[u8]) -> Option<u64> {
    match wal::decode_all(data).0.last() {
        Some(Record::Compact { revision }) => Some(*revision),
        _ => None,
    }
}

/// Every key the store holds: value, mod and create revision.
pub fn contents(store: &dyn Store) -> BTreeMap<String, (Vec<u8>, u64, u64)> {
    let range = futures_executor::block_on(store.range("", None, 0, None));
    let range = range.unwrap_or_else(|e| panic!("an opened store cannot list: {e}"));
    assert!(!range.more, "an unlimited range with more");
    let mut out = BTreeMap::new();
    for kv in range.items {
        let got = futures_executor::block_on(store.get(&kv.key))
            .unwrap_or_else(|e| panic!("get {}: {e}", kv.key))
            .unwrap_or_else(|| panic!("{} listed but not found", kv.key));
        assert_eq!(got.value, kv.value, "get and range disagree on {}", kv.key);
        out.insert(kv.key, (kv.value.to_vec(), kv.mod_revision, kv.create_revision));
    }
    out
}

/// Files in memory, shared by every clone.
#[derive(Debug, Default, Clone)]
pub struct MemFs {
    files: Arc<Mutex<BTreeMap<PathBuf, Vec<u8>>>>,
}

impl MemFs {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<PathBuf, Vec<u8>>> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Write a whole file.
    pub fn put(&self, path: &Path, data: &[u8]) {
        self.lock().insert(path.to_path_buf(), data.to_vec());
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, path.display().to_string())
}

impl Fs for MemFs {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let files = self.lock();
        let names = files.keys().filter(|p| p.parent() == Some(dir));
        Ok(names.filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.lock().get(path).cloned().ok_or_else(|| not_found(path))
    }

    fn append(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.lock().entry(path.to_path_buf()).or_default();
        Ok(Box::new(MemFile { fs: self.clone(), path: path.to_path_buf() }))
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        self.lock().insert(path.to_path_buf(), Vec::new());
        Ok(Box::new(MemFile { fs: self.clone(), path: path.to_path_buf() }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut files = self.lock();
        let data = files.remove(from).ok_or_else(|| not_found(from))?;
        files.insert(to.to_path_buf(), data);
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.lock().remove(path).map(drop).ok_or_else(|| not_found(path))
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}

/// An open in-memory file (appends at its end).
#[derive(Debug)]
struct MemFile {
    fs: MemFs,
    path: PathBuf,
}

impl MemFile {
    fn with<R>(&self, f: impl FnOnce(&mut Vec<u8>) -> R) -> io::Result<R> {
        let mut files = self.fs.lock();
        let data = files.get_mut(&self.path).ok_or_else(|| not_found(&self.path))?;
        Ok(f(data))
    }
}

impl FsFile for MemFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.with(|d| d.extend_from_slice(buf))
    }

    fn sync_data(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn sync_all(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| io::Error::other("length"))?;
        self.with(|d| d.resize(len, 0))
    }

    fn size(&self) -> io::Result<u64> {
        self.with(|d| d.len() as u64)
    }
}
