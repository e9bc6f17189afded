//! PEM blocks as Go's `encoding/pem.Decode` finds them (what upstream's validation of
//! PEM fields, such as a ClusterTrustBundle's `spec.trustBundle`, iterates over).
//!
//! Invariants, as Go: text before, between and after blocks is skipped; a block is
//! `-----BEGIN TYPE-----`, optional `Key: value` header lines, base64 (spaces, tabs and
//! line breaks ignored, padding required) and `-----END TYPE-----` with nothing but
//! whitespace after it on its line; a BEGIN line that does not open a well-formed block
//! is skipped and the search goes on after it.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// One decoded block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The word(s) after `BEGIN` (`CERTIFICATE`).
    pub kind: String,
    /// The header lines (`Proc-Type: 4,ENCRYPTED`), trimmed, in order.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub bytes: Vec<u8>,
}

const BEGIN: &[u8] = b"\n-----BEGIN ";
const END: &[u8] = b"\n-----END ";
const DASHES: &[u8] = b"-----";

/// Go's `base64.StdEncoding`: padding required, trailing bits not checked.
const STD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// Every block of `data`, in order.
pub fn blocks(data: &[u8]) -> Vec<Block> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some((block, after)) = decode(rest) {
        out.push(block);
        rest = after;
    }
    out
}

/// The first block of `data` and what follows it (Go's `pem.Decode`).
pub fn decode(data: &[u8]) -> Option<(Block, &[u8])> {
    let mut rest = data;
    loop {
        rest = if let Some(after) = rest.strip_prefix(&BEGIN[1..]) {
            after
        } else {
            &rest[find(rest, BEGIN)? + BEGIN.len()..]
        };
        if let Some((block, after)) = block_at(rest) {
            return Some((block, after));
        }
    }
}

/// The block whose BEGIN line's remainder starts `rest`, if it is well formed.
fn block_at(rest: &[u8]) -> Option<(Block, &[u8])> {
    let (type_line, mut rest) = line(rest);
    let kind = type_line.strip_suffix(DASHES)?;
    let mut headers = Vec::new();
    loop {
        if rest.is_empty() {
            return None;
        }
        let (l, next) = line(rest);
        let Some(colon) = l.iter().position(|&b| b == b':') else { break };
        let text = |b: &[u8]| String::from_utf8_lossy(b.trim_ascii()).into_owned();
        headers.push((text(&l[..colon]), text(&l[colon + 1..])));
        rest = next;
    }
    let (end, trailer) = if headers.is_empty() && rest.starts_with(&END[1..]) {
        (0, END.len() - 1)
    } else {
        let at = find(rest, END)?;
        (at, at + END.len())
    };
    let tail = &rest[trailer..];
    let want = kind.len() + DASHES.len();
    if tail.len() < want || !tail[..want].starts_with(kind) || !tail[..want].ends_with(DASHES) {
        return None;
    }
    if !line(&tail[want..]).0.is_empty() {
        return None;
    }
    let body: Vec<u8> = rest[..end]
        .iter()
        .copied()
        .filter(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .collect();
    let bytes = STD.decode(&body).ok()?;
    let (_, after) = line(&rest[end + END.len() - 1..]);
    Some((Block { kind: String::from_utf8_lossy(kind).into_owned(), headers, bytes }, after))
}

/// Go's `getLine`: the line up to `\n` (trailing spaces, tabs and `\r` trimmed) and
/// what follows the `\n`.
fn line(data: &[u8]) -> (&[u8], &[u8]) {
    let (l, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    let trimmed =
        l.len() - l.iter().rev().take_while(|b| matches!(b, b' ' | b'\t' | b'\r')).count();
    (&l[..trimmed], rest)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(kind: &str, body: &str) -> String {
        format!("-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n")
    }

    #[test]
    fn blocks_are_found_among_other_text() {
        let text =
            format!("junk\n{}between\n{}trailing", pem("A", "aGVsbG8="), pem("B", "d29y\nbGQ="));
        let found = blocks(text.as_bytes());
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].kind.as_str(), found[0].bytes.as_slice()), ("A", &b"hello"[..]));
        assert_eq!((found[1].kind.as_str(), found[1].bytes.as_slice()), ("B", &b"world"[..]));
        assert!(found[0].headers.is_empty());
    }

    #[test]
    fn headers_are_kept() {
        let text =
            "-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: a\n\naGk=\n-----END X-----\n";
        let b = &blocks(text.as_bytes())[0];
        assert_eq!(
            b.headers,
            [("Proc-Type".into(), "4,ENCRYPTED".into()), ("DEK-Info".into(), "a".into())]
        );
        assert_eq!(b.bytes, b"hi");
    }

    #[test]
    fn malformed_blocks_are_skipped_as_go_does() {
        // bad base64, a mismatched END, an unterminated block: none is a block
        assert!(blocks(pem("A", "!!!").as_bytes()).is_empty());
        let mismatched = "-----BEGIN A-----\naGk=\n-----END B-----\n";
        assert!(blocks(mismatched.as_bytes()).is_empty());
        assert!(blocks(b"-----BEGIN A-----\naGk=\n").is_empty());
        // text after the END marker on its line spoils the block
        assert!(blocks(b"-----BEGIN A-----\naGk=\n-----END A----- x\n").is_empty());
        // padding is required
        assert!(blocks(pem("A", "aGk").as_bytes()).is_empty());
        // but a good block after a bad one is found
        let text = format!("{}{}", pem("A", "!!!"), pem("C", "aGk="));
        assert_eq!(blocks(text.as_bytes())[0].kind, "C");
    }

    #[test]
    fn an_empty_block_and_crlf_line_ends_decode() {
        assert_eq!(blocks(b"-----BEGIN E-----\n-----END E-----\n")[0].bytes, b"");
        let crlf = "-----BEGIN A-----\r\naGVs\r\nbG8=\r\n-----END A-----\r\n";
        assert_eq!(blocks(crlf.as_bytes())[0].bytes, b"hello");
    }
}
