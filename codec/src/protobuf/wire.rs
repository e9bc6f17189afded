//! Protocol buffer wire primitives: varints, tags, length-delimited fields. A `Reader`
//! never reads past its slice; every malformed input is an error, never a panic.

use crate::error::CodecError;

pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const FIXED32: u8 = 5;

fn malformed(what: &str) -> CodecError {
    CodecError::Malformed(format!("the object provided is unrecognized: {what}"))
}

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v: u64 = 0;
        for shift in (0..70).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or_else(|| malformed("truncated varint"))?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(malformed("varint overflow"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(malformed("varint overflow"))
    }

    /// (field number, wire type).
    pub fn key(&mut self) -> Result<(u32, u8), CodecError> {
        let k = self.varint()?;
        let tag = u32::try_from(k >> 3).map_err(|_| malformed("field number out of range"))?;
        if tag == 0 {
            return Err(malformed("field number 0"));
        }
        Ok((tag, (k & 7) as u8))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = usize::try_from(self.varint()?).map_err(|_| malformed("length"))?;
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let end = end.ok_or_else(|| malformed("truncated length-delimited field"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn fixed64(&mut self) -> Result<u64, CodecError> {
        let s = self.take(8)?;
        Ok(u64::from_le_bytes(s.try_into().unwrap_or([0; 8])))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self.pos + n;
        let s = self.buf.get(self.pos..end).ok_or_else(|| malformed("truncated fixed field"))?;
        self.pos = end;
        Ok(s)
    }

    /// Skip a field of the given wire type (unknown field numbers).
    pub fn skip(&mut self, wire: u8) -> Result<(), CodecError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => self.take(4).map(drop),
            _ => Err(malformed("unsupported wire type")),
        }
    }
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The bytes `put_varint` writes for `v`.
pub fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

pub fn put_key(out: &mut Vec<u8>, tag: u32, wire: u8) {
    put_varint(out, (u64::from(tag) << 3) | u64::from(wire));
}

pub fn put_bytes(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    put_key(out, tag, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Write a length-delimited field whose body is produced by `body`, without a second
/// buffer: the body is written in place and moved right by the length prefix's size.
pub fn put_nested<E>(
    out: &mut Vec<u8>,
    tag: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    put_key(out, tag, LEN);
    let start = out.len();
    body(out)?;
    let len = out.len() - start;
    let mut prefix = Vec::with_capacity(10);
    put_varint(&mut prefix, len as u64);
    out.splice(start..start, prefix);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_truncation_is_an_error() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(Reader::new(&b).varint().unwrap(), v);
            assert!(Reader::new(&b[..b.len() - 1]).varint().is_err() || b.len() == 1);
        }
        assert!(Reader::new(&[0xff; 11]).varint().is_err());
    }

    #[test]
    fn varint_len_is_what_put_varint_writes() {
        for v in [0u64, 1, 127, 128, 16383, 16384, (1 << 21) - 1, 1 << 21, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(varint_len(v), b.len(), "{v}");
        }
    }

    #[test]
    fn nested_fields_get_their_length_prefix() {
        let mut out = Vec::new();
        put_nested::<()>(&mut out, 3, |o| {
            o.extend_from_slice(&[7u8; 200]);
            Ok(())
        })
        .unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(r.key().unwrap(), (3, LEN));
        assert_eq!(r.bytes().unwrap(), &[7u8; 200][..]);
        assert!(r.done());
    }

    #[test]
    fn lengths_past_the_end_are_errors() {
        let mut r = Reader::new(&[0x0a, 0x05, 1, 2]);
        r.key().unwrap();
        assert!(r.bytes().is_err());
    }
}
