//! Splits a watch response body into events without decoding them: JSON watches send one
//! event per line, protobuf watches send frames prefixed by a 4-byte big-endian length.
//! A send-time stamp that an update wrote into an annotation is found in an event's raw
//! bytes, in either encoding, so measuring delivery latency costs the client little.

/// Splits a byte stream into watch events.
#[derive(Debug, Default)]
pub struct Framer {
    protobuf: bool,
    buf: Vec<u8>,
}

/// Largest protobuf frame accepted (upstream's own limit is far lower).
const MAX_FRAME: usize = 256 << 20;

/// A protobuf frame that claims more than `MAX_FRAME` bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("watch frame of {0} bytes is too large")]
pub struct FrameTooLarge(pub usize);

impl Framer {
    /// A framer for a stream whose content type is `content_type`.
    pub fn for_content_type(content_type: &str) -> Framer {
        Framer { protobuf: content_type.contains("protobuf"), buf: Vec::new() }
    }

    /// Add `chunk` and call `event` with every complete event.
    pub fn push(
        &mut self,
        chunk: &[u8],
        mut event: impl FnMut(&[u8]),
    ) -> Result<(), FrameTooLarge> {
        self.buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some((from, to, next)) = self.next_frame(start)? {
            event(&self.buf[from..to]);
            start = next;
        }
        self.buf.drain(..start);
        Ok(())
    }

    fn next_frame(&self, start: usize) -> Result<Option<(usize, usize, usize)>, FrameTooLarge> {
        let rest = &self.buf[start..];
        if !self.protobuf {
            return Ok(rest
                .iter()
                .position(|b| *b == b'\n')
                .map(|i| (start, start + i, start + i + 1)));
        }
        let Some(head) = rest.get(..4) else { return Ok(None) };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if len > MAX_FRAME {
            return Err(FrameTooLarge(len));
        }
        Ok((rest.len() >= 4 + len).then_some((start + 4, start + 4 + len, start + 4 + len)))
    }
}

/// The number written right after `key` in `event` (an annotation's value): skips the
/// few bytes between a key and its value (`":"` in JSON, a tag and a length in protobuf).
pub fn find_stamp(event: &[u8], key: &[u8]) -> Option<u64> {
    let at = find(event, key)? + key.len();
    let rest = event.get(at..)?;
    let digits_from = rest.iter().take(5).position(u8::is_ascii_digit)?;
    let digits = &rest[digits_from..];
    let end = digits.iter().position(|b| !b.is_ascii_digit()).unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        let j = hay[i..=hay.len() - needle.len()].iter().position(|b| *b == first)?;
        i += j;
        if &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_split_across_chunks() {
        let mut f = Framer::for_content_type("application/json");
        let mut events = Vec::new();
        f.push(b"{\"a\":1}\n{\"b\"", |e| events.push(e.to_vec())).unwrap();
        f.push(b":2}\n", |e| events.push(e.to_vec())).unwrap();
        assert_eq!(events, [b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
    }

    #[test]
    fn protobuf_frames_split_across_chunks() {
        let mut f = Framer::for_content_type("application/vnd.kubernetes.protobuf;stream=watch");
        let mut stream = Vec::new();
        for payload in [&b"k8s\0abc"[..], b"", b"xyz"] {
            stream.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            stream.extend_from_slice(payload);
        }
        let mut events = Vec::new();
        for chunk in stream.chunks(3) {
            f.push(chunk, |e| events.push(e.to_vec())).unwrap();
        }
        assert_eq!(events, [b"k8s\0abc".to_vec(), Vec::new(), b"xyz".to_vec()]);
        let mut bad = Framer::for_content_type("application/vnd.kubernetes.protobuf");
        assert_eq!(bad.push(&[0xff; 4], |_| {}), Err(FrameTooLarge(0xffff_ffff)));
    }

    #[test]
    fn stamps_in_json_and_protobuf() {
        let key = b"kapi-perf/sent";
        let json = br#"{"type":"MODIFIED","object":{"metadata":{"annotations":{"kapi-perf/sent":"1712345678901234567","x":"y"}}}}"#;
        assert_eq!(find_stamp(json, key), Some(1_712_345_678_901_234_567));
        let mut pb = b"\x0a\x0ekapi-perf/sent\x12\x13".to_vec();
        pb.extend_from_slice(b"1712345678901234567\x0a\x01x");
        assert_eq!(find_stamp(&pb, key), Some(1_712_345_678_901_234_567));
        assert_eq!(find_stamp(b"{\"other\":1}", key), None);
        assert_eq!(find_stamp(b"kapi-perf/sent", key), None);
        assert_eq!(find_stamp(b"kapi-perf/sent\":\"abcdefgh1", key), None);
    }
}
