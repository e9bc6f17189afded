//! The log backend (`--audit-log-path`): one JSON event per line, written by its own
//! thread (`kapi-audit-log`), to stdout (`-`) or to a file rotated as upstream's
//! lumberjack writer rotates it: when a write would take the file past
//! `--audit-log-maxsize` MB (100 when 0) the file is renamed to
//! `NAME-2006-01-02T15-04-05.000.EXT` (UTC) and a new one opened; backups beyond
//! `--audit-log-maxbackup` (newest kept; 0 keeps all) or older than `--audit-log-maxage`
//! days (0 keeps all) are removed.
//!
//! Invariants: the serving cores never write; the file is created `0600` in a `0700`
//! directory; a write that fails is counted (`apiserver_audit_error_total{plugin="log"}`)
//! and answered as failed, never retried.

use super::buffered::{BatchConfig, Msg, next_batch};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// lumberjack's size when none is given.
const DEFAULT_MAX_MB: u64 = 100;
const MB: u64 = 1024 * 1024;

/// Where and how the log is kept.
#[derive(Debug, Clone)]
pub struct LogConfig {
    pub path: PathBuf,
    pub max_age_days: u64,
    pub max_backups: usize,
    pub max_size_mb: u64,
}

enum Out {
    Stdout,
    File { file: File, size: u64, cfg: LogConfig },
}

/// The log's writer (on the backend thread): lines are gathered and written together.
pub struct Writer {
    out: Out,
    /// Lines not yet written (all of them fit in the current file).
    pending: Vec<u8>,
}

/// Events written with one write call at most.
const MAX_COALESCED: usize = 512;

impl Writer {
    /// Open the log (creating its directory), as upstream at start.
    pub fn open(cfg: &LogConfig) -> Result<Writer, String> {
        if cfg.path.as_os_str() == "-" {
            return Ok(Writer { out: Out::Stdout, pending: Vec::new() });
        }
        if let Some(dir) = cfg.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_dir(dir).map_err(|e| format!("ensureLogFile: {}: {e}", dir.display()))?;
        }
        let file = open_append(&cfg.path)
            .map_err(|e| format!("ensureLogFile: {}: {e}", cfg.path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Writer { out: Out::File { file, size, cfg: cfg.clone() }, pending: Vec::new() })
    }

    /// Write `bytes` whole now, rotating first when they would not fit.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.push(bytes)?;
        self.flush()
    }

    /// Add one line to what [`Writer::flush`] writes; when it would take the file past
    /// its size, what is pending is written and the file rotated first.
    pub fn push(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if let Out::File { file, size, cfg } = &mut self.out {
            let max = if cfg.max_size_mb == 0 { DEFAULT_MAX_MB } else { cfg.max_size_mb } * MB;
            let len = bytes.len() as u64;
            if len > max {
                return Err(std::io::Error::other(format!(
                    "write length {len} exceeds maximum file size {max}"
                )));
            }
            if *size + self.pending.len() as u64 + len > max {
                file.write_all(&self.pending)?;
                self.pending.clear();
                *file = rotate(cfg, SystemTime::now())?;
                *size = 0;
            }
        }
        self.pending.extend_from_slice(bytes);
        Ok(())
    }

    /// Write what is pending.
    pub fn flush(&mut self) -> std::io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let result = match &mut self.out {
            Out::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&pending).and_then(|()| out.flush())
            }
            Out::File { file, size, .. } => {
                let written = file.write_all(&pending);
                if written.is_ok() {
                    *size += pending.len() as u64;
                }
                written
            }
        };
        self.pending = pending;
        self.pending.clear();
        result
    }
}

fn create_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

/// (directory, name before the timestamp, extension with its dot) of the log's path.
fn parts(path: &Path) -> (PathBuf, String, String) {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    match name.rfind('.') {
        Some(i) if i > 0 => (dir, name[..i].to_string(), name[i..].to_string()),
        _ => (dir, name, String::new()),
    }
}

/// lumberjack's backup time format, `2006-01-02T15-04-05.000`, in UTC.
pub fn backup_stamp(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let base = kapi_codec::time::rfc3339(d.as_secs() as i64);
    format!("{}.{:03}", base.trim_end_matches('Z').replace(':', "-"), d.subsec_millis())
}

/// The backup's path for a rotation at `t`.
pub fn backup_name(path: &Path, t: SystemTime) -> PathBuf {
    let (dir, stem, ext) = parts(path);
    dir.join(format!("{stem}-{}{ext}", backup_stamp(t)))
}

/// Seconds since the epoch of a backup's name, when it is one of `path`'s.
fn backup_time(path: &Path, file_name: &str) -> Option<i64> {
    let (_, stem, ext) = parts(path);
    let stamp = file_name.strip_prefix(&format!("{stem}-"))?.strip_suffix(ext.as_str())?;
    let (date, time) = stamp.split_once('T')?;
    let (hms, millis) = time.split_once('.')?;
    if millis.len() != 3 || !millis.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rfc = format!("{date}T{}Z", hms.replace('-', ":"));
    kapi_codec::time::parse_rfc3339(&rfc).map(|(s, _)| s)
}

/// Rename the log to its backup name, open a new one, remove what is too many or old.
fn rotate(cfg: &LogConfig, now: SystemTime) -> std::io::Result<File> {
    std::fs::rename(&cfg.path, backup_name(&cfg.path, now))?;
    let file = open_append(&cfg.path)?;
    prune(cfg, now);
    Ok(file)
}

/// Remove backups past `max_backups` (oldest first) and older than `max_age_days`.
pub fn prune(cfg: &LogConfig, now: SystemTime) {
    let (dir, _, _) = parts(&cfg.path);
    let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let mut backups: Vec<(i64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            backup_time(&cfg.path, &name).map(|t| (t, e.path()))
        })
        .collect();
    backups.sort_by(|a, b| b.cmp(a));
    let now_secs = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    let cutoff = now_secs - (cfg.max_age_days as i64) * 86_400;
    for (i, (t, p)) in backups.iter().enumerate() {
        let too_many = cfg.max_backups > 0 && i >= cfg.max_backups;
        let too_old = cfg.max_age_days > 0 && *t < cutoff;
        if too_many || too_old {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Start the backend's thread: it writes what `rx` brings until every sender is gone.
pub fn start(
    cfg: &LogConfig,
    batching: BatchConfig,
    rx: flume::Receiver<Msg>,
) -> Result<std::thread::JoinHandle<()>, String> {
    let mut writer = Writer::open(cfg)?;
    std::thread::Builder::new()
        .name("kapi-audit-log".into())
        .spawn(move || run(&mut writer, &batching, &rx))
        .map_err(|e| e.to_string())
}

fn run(writer: &mut Writer, batching: &BatchConfig, rx: &flume::Receiver<Msg>) {
    let mut throttle = batching.throttle.map(|(q, b)| super::buffered::Throttle::new(q, b));
    while let Some(mut batch) = next_batch(rx, batching) {
        if let Some(t) = throttle.as_mut() {
            std::thread::sleep(t.reserve(std::time::Instant::now()));
        }
        // What is already queued goes out with this batch: one write for many events.
        batch.take_ready(rx, MAX_COALESCED);
        let mut ok = true;
        let mut failed = 0;
        for ev in &batch.events {
            if let Err(e) = writer.push(&ev.to_line()) {
                tracing::error!("audit log: writing event: {e}");
                failed += 1;
            }
        }
        if let Err(e) = writer.flush() {
            tracing::error!("audit log: writing events: {e}");
            failed = batch.events.len();
        }
        if failed > 0 {
            crate::metrics::audit_error("log", failed as u64);
            ok = false;
        }
        batch.done(ok);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn stamp_secs(t: SystemTime) -> u64 {
        t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs()
    }

    #[test]
    fn backups_are_named_as_lumberjack() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_632_800_042);
        let name = backup_name(Path::new("/var/log/audit.log"), t);
        assert_eq!(name, PathBuf::from("/var/log/audit-2026-12-07T08-40-00.042.log"));
        assert_eq!(
            backup_time(Path::new("/var/log/audit.log"), "audit-2026-12-07T08-40-00.042.log"),
            Some(stamp_secs(t) as i64)
        );
        assert_eq!(backup_time(Path::new("/x/audit.log"), "audit.log"), None);
        assert_eq!(
            backup_name(Path::new("/x/audit"), t),
            PathBuf::from("/x/audit-2026-12-07T08-40-00.042")
        );
    }

    #[test]
    fn rotation_keeps_max_backups_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            path: dir.path().join("audit.log"),
            max_age_days: 0,
            max_backups: 2,
            max_size_mb: 1,
        };
        let mut w = Writer::open(&cfg).unwrap();
        let line = vec![b'x'; 400 * 1024];
        for _ in 0..8 {
            w.write(&line).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.iter().all(|n| n == "audit.log" || backup_time(&cfg.path, n).is_some()));
        assert!(std::fs::metadata(&cfg.path).unwrap().len() <= MB);
        let too_big = vec![b'x'; 2 * MB as usize];
        assert!(w.write(&too_big).unwrap_err().to_string().contains("exceeds maximum file size"));
    }

    #[test]
    fn old_backups_go_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            path: dir.path().join("audit.log"),
            max_age_days: 1,
            max_backups: 0,
            max_size_mb: 1,
        };
        let now = SystemTime::now();
        let old = backup_name(&cfg.path, now - Duration::from_secs(3 * 86_400));
        let new = backup_name(&cfg.path, now - Duration::from_secs(3600));
        std::fs::write(&old, "a").unwrap();
        std::fs::write(&new, "b").unwrap();
        prune(&cfg, now);
        assert!(!old.exists());
        assert!(new.exists());
    }
}
