//! The write-ahead log: append-only segment files of checksummed records.
//!
//! Record framing: `len: u32 LE | crc32(payload): u32 LE | payload`. Payload:
//! `tag: u8 | revision: u64 | create_revision: u64 | key_len: u32 | key | value_len: u32 |
//! value` (tags: 1 put, 2 delete, 3 compact). Segments are `wal-{seq:016}.log`.
//!
//! Invariant: a record is acknowledged only after the segment is fsynced, and a failed
//! append is cut off before anything else is appended ([`super::writer`]). On recovery a
//! torn or corrupt tail of the newest segment is cut off (it was never acknowledged);
//! damage anywhere else, or damage followed by valid records, is an error: the store
//! refuses to start rather than drop what may have been acknowledged.

use super::fs::Fs;
use crate::error::StorageError;
use bytes::Bytes;
use std::path::{Path, PathBuf};

/// One logged change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Put { key: String, value: Bytes, revision: u64, create_revision: u64 },
    Delete { key: String, revision: u64 },
    Compact { revision: u64 },
}

const MAX_RECORD: usize = 32 << 20;

impl Record {
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0u8; 8]);
        let (tag, key, value, rev, create): (u8, &str, &[u8], u64, u64) = match self {
            Record::Put { key, value, revision, create_revision } => {
                (1, key, value, *revision, *create_revision)
            }
            Record::Delete { key, revision } => (2, key, &[], *revision, 0),
            Record::Compact { revision } => (3, "", &[], *revision, 0),
        };
        out.push(tag);
        out.extend_from_slice(&rev.to_le_bytes());
        out.extend_from_slice(&create.to_le_bytes());
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
        let payload_len = out.len() - start - 8;
        let crc = crc32fast::hash(&out[start + 8..]);
        out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    fn decode(payload: &[u8]) -> Option<Record> {
        let mut r = Reader { buf: payload, pos: 0 };
        let tag = r.u8()?;
        let revision = r.u64()?;
        let create_revision = r.u64()?;
        let key_len = r.u32()? as usize;
        let key = std::str::from_utf8(r.bytes(key_len)?).ok()?.to_string();
        let value_len = r.u32()? as usize;
        let value = Bytes::copy_from_slice(r.bytes(value_len)?);
        match tag {
            1 => Some(Record::Put { key, value, revision, create_revision }),
            2 => Some(Record::Delete { key, revision }),
            3 => Some(Record::Compact { revision }),
            _ => None,
        }
    }

    pub fn revision(&self) -> u64 {
        match self {
            Record::Put { revision, .. }
            | Record::Delete { revision, .. }
            | Record::Compact { revision } => *revision,
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.bytes(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.bytes(8)?.try_into().ok()?))
    }
}

/// Decode the records of one segment's bytes. Returns the records and the length of the
/// valid prefix (shorter than the input when the tail is torn or corrupt).
pub fn decode_all(data: &[u8]) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut pos = 0;
    while let Some((rec, len)) = record_at(data, pos) {
        records.push(rec);
        pos += len;
    }
    (records, pos)
}

/// The whole, checksummed record starting at `pos`, with its framed length.
fn record_at(data: &[u8], pos: usize) -> Option<(Record, usize)> {
    let header = data.get(pos..pos.checked_add(8)?)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    if len > MAX_RECORD {
        return None;
    }
    let payload = data.get(pos + 8..(pos + 8).checked_add(len)?)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    Some((Record::decode(payload)?, 8 + len))
}

/// Offset of the first whole record after the damage at `damaged`, if any.
fn valid_record_after(data: &[u8], damaged: usize) -> Option<usize> {
    (damaged + 1..data.len()).find(|&pos| record_at(data, pos).is_some())
}

pub fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("wal-{seq:016}.log"))
}

/// Sequence numbers of the segments in `dir`, ascending.
pub fn segments(fs: &dyn Fs, dir: &Path) -> Result<Vec<u64>, StorageError> {
    let mut out = Vec::new();
    for name in fs.list(dir)? {
        if let Some(seq) = name
            .strip_prefix("wal-")
            .and_then(|s| s.strip_suffix(".log"))
            .and_then(|s| s.parse().ok())
        {
            out.push(seq);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Read a segment; cut a torn tail when `is_last`, fail on damage otherwise.
pub fn read_segment(fs: &dyn Fs, path: &Path, is_last: bool) -> Result<Vec<Record>, StorageError> {
    let data = fs.read(path)?;
    let (records, valid) = decode_all(&data);
    if valid < data.len() {
        if !is_last {
            return Err(StorageError::Io(format!(
                "{}: corrupt record at offset {valid} of a WAL segment that is not the newest: refusing to start",
                path.display()
            )));
        }
        if let Some(next) = valid_record_after(&data, valid) {
            return Err(StorageError::Io(format!(
                "{}: corrupt record at offset {valid} is followed by valid records (the first at offset {next}): it is not a torn tail, and cutting there would drop written data; refusing to start (keep a copy of the data directory before repairing it)",
                path.display()
            )));
        }
        tracing::warn!("{}: cutting {} bytes of torn tail", path.display(), data.len() - valid);
        let mut f = fs.append(path)?;
        f.set_len(valid as u64)?;
        f.sync_all()?;
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_torn_tails_are_cut() {
        let recs = vec![
            Record::Put {
                key: "/a".into(),
                value: Bytes::from_static(b"x"),
                revision: 2,
                create_revision: 2,
            },
            Record::Delete { key: "/a".into(), revision: 3 },
            Record::Compact { revision: 3 },
        ];
        let mut buf = Vec::new();
        for r in &recs {
            r.encode_into(&mut buf);
        }
        let full = buf.len();
        assert_eq!(decode_all(&buf), (recs.clone(), full));
        buf.extend_from_slice(&[7, 0, 0, 0, 1, 2]);
        assert_eq!(decode_all(&buf), (recs.clone(), full));
        buf.truncate(full);
        let last = buf.len() - 1;
        buf[last] ^= 0xff;
        assert_eq!(decode_all(&buf).0.len(), 2);
    }
}
