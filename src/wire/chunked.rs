//! The chunked transfer coding, decoded incrementally without I/O
//! (RFC 9112 §7.1): chunk extensions (§7.1.1) and trailer fields (§7.1.2)
//! are read and discarded. Used by the client role on a peer's body.

use bytes::{Buf, Bytes, BytesMut};

/// Longest chunk-size line or trailer line.
pub const MAX_LINE: usize = 4096;

/// Most bytes of trailer fields (the size limit of a response head,
/// [`super::response::MAX_HEAD`]).
pub const MAX_TRAILERS: usize = super::response::MAX_HEAD;

/// Why a chunked body is malformed (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// A chunk size that is not hex digits, or overflows.
    Size,
    /// A chunk-size or trailer line longer than 4 KiB, or trailers over [`MAX_TRAILERS`].
    LineTooLong,
    /// Chunk data not followed by CRLF.
    DataEnd,
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChunkError::Size => "invalid chunk size",
            ChunkError::LineTooLong => "chunk line or trailers too long",
            ChunkError::DataEnd => "chunk data not followed by CRLF",
        })
    }
}

impl std::error::Error for ChunkError {}

/// Where a chunked decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// This many data bytes of the current chunk left.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// In the trailer section; bytes of trailers seen.
    Trailer(usize),
    /// The last chunk and trailer section were read.
    Done,
}

/// What one decoding step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Body bytes.
    Data(Bytes),
    /// The buffer holds no complete next piece: read more.
    More,
    /// The body ended exactly (bytes after it stay in the buffer).
    Done,
}

/// An incremental chunked-body decoder (RFC 9112 §7.1): extensions and
/// trailer fields are read and discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunked {
    state: ChunkState,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: ChunkState::Size,
        }
    }
}

impl Chunked {
    /// Takes the next piece of body from the front of `buf`.
    pub fn step(&mut self, buf: &mut BytesMut) -> Result<Step, ChunkError> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Step::More);
                    };
                    let n = chunk_size(&line)?;
                    self.state = if n == 0 {
                        ChunkState::Trailer(0)
                    } else {
                        ChunkState::Data(n)
                    };
                }
                ChunkState::Data(n) => {
                    if buf.is_empty() {
                        return Ok(Step::More);
                    }
                    let take = n.min(buf.len() as u64);
                    let data = buf.split_to(take as usize).freeze();
                    self.state = match n - take {
                        0 => ChunkState::DataEnd,
                        left => ChunkState::Data(left),
                    };
                    return Ok(Step::Data(data));
                }
                ChunkState::DataEnd => match buf.get(..2) {
                    Some(b"\r\n") => {
                        buf.advance(2);
                        self.state = ChunkState::Size;
                    }
                    Some(_) => return Err(ChunkError::DataEnd),
                    None if buf.first().is_some_and(|&b| b != b'\r') => {
                        return Err(ChunkError::DataEnd)
                    }
                    None => return Ok(Step::More),
                },
                ChunkState::Trailer(seen) => {
                    let Some(line) = take_line(buf)? else {
                        return Ok(Step::More);
                    };
                    if line.as_ref() == b"\r\n" || line.as_ref() == b"\n" {
                        self.state = ChunkState::Done;
                        return Ok(Step::Done);
                    }
                    let seen = seen + line.len();
                    if seen > MAX_TRAILERS {
                        return Err(ChunkError::LineTooLong);
                    }
                    self.state = ChunkState::Trailer(seen);
                }
                ChunkState::Done => return Ok(Step::Done),
            }
        }
    }

    /// Whether the last chunk and the trailers were read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }
}

/// Splits one line (through its LF) off the front of `buf`.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, ChunkError> {
    match buf.iter().take(MAX_LINE).position(|&b| b == b'\n') {
        Some(i) => Ok(Some(buf.split_to(i + 1))),
        None if buf.len() >= MAX_LINE => Err(ChunkError::LineTooLong),
        None => Ok(None),
    }
}

/// The size in a chunk-size line (`1*HEXDIG [ chunk-ext ] CRLF`).
fn chunk_size(line: &[u8]) -> Result<u64, ChunkError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = digits.trim_ascii_end();
    if digits.is_empty() || digits.len() > 16 {
        return Err(ChunkError::Size);
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        let v = (d as char).to_digit(16).ok_or(ChunkError::Size)?;
        Ok((acc << 4) | u64::from(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dechunk(input: &[u8], split: usize) -> Result<(Vec<u8>, Vec<u8>), ChunkError> {
        let mut c = Chunked::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut fed = 0;
        loop {
            match c.step(&mut buf)? {
                Step::Data(b) => out.extend_from_slice(&b),
                Step::Done => return Ok((out, buf.to_vec())),
                Step::More if fed >= input.len() => return Ok((out, b"<more>".to_vec())),
                Step::More => {
                    let end = (fed + split).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_at_any_split() {
        let body = b"5\r\nhello\r\n6;ext=1;q=\"x\"\r\n world\r\nA \r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
        for split in 1..body.len() {
            let (out, rest) = dechunk(body, split).unwrap();
            assert_eq!(out, b"hello world0123456789", "split {split}");
            assert!(
                b"NEXT".starts_with(&rest),
                "split {split}: the decoder stops at the end"
            );
        }
        let (out, rest) = dechunk(b"0\r\n\r\n", 64).unwrap();
        assert_eq!((out.len(), rest), (0, vec![]));
        assert_eq!(dechunk(b"3\nabc\r\n0\n\n", 64).unwrap().0, b"abc");
        // Bytes after the body stay in the buffer.
        let mut c = Chunked::default();
        let mut buf = BytesMut::from(&b"1\r\na\r\n0\r\n\r\nHTTP"[..]);
        assert_eq!(c.step(&mut buf), Ok(Step::Data(Bytes::from_static(b"a"))));
        assert_eq!(c.step(&mut buf), Ok(Step::Done));
        assert!(c.is_done());
        assert_eq!(&buf[..], b"HTTP");
        assert_eq!(c.step(&mut buf), Ok(Step::Done));
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for (bad, want) in [
            (&b"x\r\n"[..], ChunkError::Size),
            (b"\r\n", ChunkError::Size),
            (b";ext\r\n", ChunkError::Size),
            (b"-1\r\n", ChunkError::Size),
            (b"11111111111111111\r\n", ChunkError::Size),
            (b"3\r\nabcX\r\n", ChunkError::DataEnd),
            (b"3\r\nabc\rX", ChunkError::DataEnd),
            (b"3\r\nabcXY", ChunkError::DataEnd),
        ] {
            assert_eq!(
                dechunk(bad, 64).unwrap_err(),
                want,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(dechunk(b"ffffffffffffffff\r\nab", 64).unwrap().0, b"ab");
        let long = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_LINE));
        assert_eq!(
            dechunk(long.as_bytes(), 64).unwrap_err(),
            ChunkError::LineTooLong
        );
        let trailers: String = (0..2000)
            .map(|i| format!("X-{i}: {}\r\n", "v".repeat(40)))
            .collect();
        let t = format!("0\r\n{trailers}\r\n");
        assert_eq!(
            dechunk(t.as_bytes(), 4096).unwrap_err(),
            ChunkError::LineTooLong
        );
        // Incomplete is not an error.
        assert_eq!(
            dechunk(b"5\r\nhel", 2).unwrap(),
            (b"hel".to_vec(), b"<more>".to_vec())
        );
    }
}
