//! One piece of a streamed response body made of a few `Bytes` sent one after the other:
//! a watch event's frame is a small head, the object's shared encoding and a small tail,
//! so each watcher's frame holds a handle on the one encoding instead of a copy of it.
//! hyper takes a chunk as one body frame: one HTTP/1.1 chunk (the same chunk sizes as a
//! flat buffer) or one HTTP/2 DATA frame, written as a vectored write of its pieces.
//!
//! Invariants: at most [`MAX_PIECES`] pieces, none empty (a further piece is appended to
//! the last one, a copy, rather than refused); pieces already sent are released as soon
//! as they are advanced past.

use bytes::{Buf, Bytes};
use std::io::IoSlice;

/// Pieces a chunk holds without copying: a head, a document in up to two pieces (a twin
/// version's swapped head and the shared rest), a tail.
pub const MAX_PIECES: usize = 4;

/// A body chunk: up to [`MAX_PIECES`] `Bytes`, sent in order.
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    pieces: [Bytes; MAX_PIECES],
    /// The first piece not yet sent.
    next: usize,
    /// Pieces held.
    len: usize,
}

impl Chunk {
    /// A chunk of `pieces`, in order (empty ones skipped).
    pub fn of(pieces: impl IntoIterator<Item = Bytes>) -> Chunk {
        let mut c = Chunk::default();
        for p in pieces {
            c.push(p);
        }
        c
    }

    /// Append `piece`; past [`MAX_PIECES`] it is copied onto the last piece.
    pub fn push(&mut self, piece: Bytes) {
        if piece.is_empty() {
            return;
        }
        if self.len < MAX_PIECES {
            self.pieces[self.len] = piece;
            self.len += 1;
            return;
        }
        let last = &mut self.pieces[MAX_PIECES - 1];
        let mut joined = Vec::with_capacity(last.len() + piece.len());
        joined.extend_from_slice(last);
        joined.extend_from_slice(&piece);
        *last = Bytes::from(joined);
    }

    /// Bytes left to send.
    pub fn len(&self) -> usize {
        self.pieces().iter().map(Bytes::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.next == self.len
    }

    /// The pieces left to send.
    pub fn pieces(&self) -> &[Bytes] {
        &self.pieces[self.next..self.len]
    }

    /// The bytes left as one buffer (a copy when there are several pieces).
    pub fn to_bytes(&self) -> Bytes {
        match self.pieces() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => Bytes::from(many.concat()),
        }
    }
}

impl From<Bytes> for Chunk {
    fn from(b: Bytes) -> Chunk {
        Chunk::of([b])
    }
}

impl From<Vec<u8>> for Chunk {
    fn from(v: Vec<u8>) -> Chunk {
        Chunk::from(Bytes::from(v))
    }
}

impl Buf for Chunk {
    fn remaining(&self) -> usize {
        self.len()
    }

    fn chunk(&self) -> &[u8] {
        self.pieces().first().map_or(&[], |p| p.as_ref())
    }

    fn advance(&mut self, mut cnt: usize) {
        while cnt > 0 && self.next < self.len {
            let p = &mut self.pieces[self.next];
            if cnt < p.len() {
                p.advance(cnt);
                return;
            }
            cnt -= p.len();
            *p = Bytes::new();
            self.next += 1;
        }
        assert!(cnt == 0, "advanced past the end of a body chunk");
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, p) in dst.iter_mut().zip(self.pieces()) {
            *slot = IoSlice::new(p);
            n += 1;
        }
        n
    }

    fn copy_to_bytes(&mut self, len: usize) -> Bytes {
        match self.pieces().first() {
            Some(p) if p.len() >= len => {
                let out = p.slice(..len);
                self.advance(len);
                out
            }
            _ => {
                let mut out = Vec::with_capacity(len);
                while out.len() < len {
                    let take = self.chunk().len().min(len - out.len());
                    assert!(take > 0, "copied past the end of a body chunk");
                    out.extend_from_slice(&self.chunk()[..take]);
                    self.advance(take);
                }
                Bytes::from(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk() -> Chunk {
        Chunk::of(["ab", "", "cde", "f"].map(|s: &'static str| Bytes::from_static(s.as_bytes())))
    }

    #[test]
    fn pieces_are_sent_in_order_without_the_empty_ones() {
        let c = chunk();
        assert_eq!(c.pieces().len(), 3);
        assert_eq!(c.len(), 6);
        assert_eq!(c.to_bytes(), "abcdef");
        let mut io = [IoSlice::new(&[]); 8];
        let n = c.chunks_vectored(&mut io);
        let got: Vec<u8> = io[..n].iter().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(got, b"abcdef");
        let mut two = [IoSlice::new(&[]); 2];
        assert_eq!(c.chunks_vectored(&mut two), 2, "as many pieces as there are slots");
    }

    #[test]
    fn advancing_walks_the_pieces_and_releases_the_sent_ones() {
        let shared = Bytes::from(vec![7u8; 100]);
        let mut c =
            Chunk::of([Bytes::from_static(b"head"), shared.clone(), Bytes::from_static(b"}")]);
        c.advance(2);
        assert_eq!(c.chunk(), b"ad");
        c.advance(3);
        assert_eq!(c.remaining(), 100);
        assert_eq!(c.chunk().as_ptr(), shared[1..].as_ptr(), "the shared piece, not a copy");
        c.advance(99);
        assert_eq!(c.chunk(), b"}");
        assert!(!c.is_empty());
        c.advance(1);
        assert!(c.is_empty() && c.chunk().is_empty() && c.remaining() == 0);
    }

    #[test]
    fn copy_to_bytes_shares_a_piece_and_joins_across_pieces() {
        let mut c = chunk();
        assert_eq!(c.copy_to_bytes(1), "a");
        assert_eq!(c.copy_to_bytes(3), "bcd");
        assert_eq!(c.copy_to_bytes(2), "ef");
        assert_eq!(c.remaining(), 0);
    }

    #[test]
    fn a_piece_past_the_limit_is_joined_to_the_last() {
        let mut c = Chunk::of((0..MAX_PIECES).map(|i| Bytes::from(vec![b'a' + i as u8])));
        c.push(Bytes::from_static(b"z"));
        assert_eq!(c.pieces().len(), MAX_PIECES);
        assert_eq!(c.to_bytes(), "abcdz");
    }
}
