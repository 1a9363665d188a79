//! HTTP/1.1 message pieces for the direct path: where a head ends, which headers matter to
//! a proxy, how a body is framed, and where a chunked body ends (RFC 9112 §6, §7.1). Bodies
//! are passed through as they are; nothing here allocates.

/// Header slots parsed per message; a message with more goes to hyper (which answers 431)
/// or, from an upstream, is refused (502).
pub const MAX_HEADERS: usize = 128;

/// What a header is to the proxy: the table shared with hyper's path.
pub use crate::proxy::headers::{tokens, Kind};

/// The length of the head at the start of `buf` (through the empty line), once it is all
/// there. `from` is where the previous search stopped, so a head read in several pieces is
/// scanned once. Lines may end in a bare LF (RFC 9112 §2.2 lets a recipient accept it, and
/// hyper does): an empty line is a line feed after `\n` or `\n\r`.
pub fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(2);
    // A head has a few lines: look at each line feed (SIMD search) rather than each byte.
    memchr::memchr_iter(b'\n', buf.get(start..)?)
        .map(|i| start + i)
        .find(|&i| {
            (i >= 1 && buf[i - 1] == b'\n')
                || (i >= 2 && buf[i - 1] == b'\r' && buf[i - 2] == b'\n')
        })
        .map(|i| i + 1)
}

/// A `Content-Length` value: digits only (no sign, no spaces inside), at most 19 of them.
pub fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Whether the last transfer coding of a `Transfer-Encoding` value is `chunked`.
pub fn ends_chunked(value: &[u8]) -> bool {
    tokens(value)
        .last()
        .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"))
}

/// How the body of a message is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Exactly this many bytes (0: no body).
    Length(u64),
    /// `Transfer-Encoding: chunked`, passed through as it is.
    Chunked,
    /// Until the sender closes (a response without length).
    UntilClose,
}

/// What the framing headers of a response head say, gathered one header at a time: the
/// one reading of them for both readers of an upstream head (the direct path's rewrite, an
/// HTTP/2 stream's response).
#[derive(Debug, Default)]
pub struct ResponseFraming {
    length: Option<u64>,
    /// Whether the transfer coding ends with `chunked`; `None` without one.
    chunked: Option<bool>,
    /// `Connection: close`: the upstream takes no other request on this connection.
    pub close: bool,
    /// `Connection` names a header other than `close` and `keep-alive`.
    pub names_headers: bool,
}

/// Why a response head's length is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadLength {
    /// Not a length.
    Invalid,
    /// Two different lengths: a smuggling attempt or a bug.
    Conflicting,
}

impl ResponseFraming {
    /// Notes one header, of kind `kind`.
    pub fn note(&mut self, kind: Kind, value: &[u8]) -> Result<(), BadLength> {
        match kind {
            Kind::ContentLength => {
                let n = parse_content_length(value).ok_or(BadLength::Invalid)?;
                if self.length.is_some_and(|l| l != n) {
                    return Err(BadLength::Conflicting);
                }
                self.length = Some(n);
            }
            Kind::TransferEncoding => self.chunked = Some(ends_chunked(value)),
            Kind::Connection => {
                for t in tokens(value) {
                    if t.eq_ignore_ascii_case(b"close") {
                        self.close = true;
                    } else if !t.eq_ignore_ascii_case(b"keep-alive") {
                        self.names_headers = true;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the head has a transfer coding: then its length, if any, is not the body's.
    pub fn has_transfer_coding(&self) -> bool {
        self.chunked.is_some()
    }

    /// The body's framing, for a response of `status` to a request (`to_head`: a HEAD):
    /// none to a HEAD and for 204 and 304, else chunked when the transfer coding ends with
    /// it, else the length, else the end of the connection.
    pub fn framing(&self, to_head: bool, status: u16) -> Framing {
        if to_head || status == 204 || status == 304 {
            return Framing::Length(0);
        }
        match (self.chunked, self.length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) | (None, None) => Framing::UntilClose,
            (None, Some(n)) => Framing::Length(n),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body")]
pub struct ChunkError;

/// Finds the end of a chunked body in the bytes that pass through, without changing them.
#[derive(Debug, Clone, Default)]
pub struct ChunkedScanner {
    state: ChunkState,
    /// Bytes of chunk data still to skip, or the chunk size being read.
    size: u64,
    /// Hex digits read in the current size line (a cap against endless zeros).
    digits: u8,
    /// Chunk data bytes seen so far (the body without its framing).
    data: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    /// After the size: an extension, or whitespace, up to CR.
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// Trailer section after the last chunk: at the start of a line.
    TrailerStart,
    TrailerLine,
    TrailerLf,
    FinalLf,
    Done,
}

impl ChunkedScanner {
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// The chunk data bytes seen so far: the body as its recipient decodes it.
    pub fn data_len(&self) -> u64 {
        self.data
    }

    /// Feeds the next bytes of the body; returns how many of them belong to it — fewer than
    /// given only when the body ended inside them.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<usize, ChunkError> {
        self.feed_spans(bytes, |_| {})
    }

    /// As [`feed`](Self::feed), and tells `data` where the chunk data lies in `bytes` (the
    /// body decoded, for a recipient that does not take the chunks as they are).
    pub fn feed_spans(
        &mut self,
        bytes: &[u8],
        mut data: impl FnMut(std::ops::Range<usize>),
    ) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match self.state {
                ChunkState::Size => match hex_value(b) {
                    Some(v) => {
                        self.digits += 1;
                        if self.digits > 16 {
                            return Err(ChunkError);
                        }
                        self.size = (self.size << 4) | u64::from(v);
                    }
                    None if self.digits == 0 => return Err(ChunkError),
                    None if b == b';' || b == b' ' || b == b'\t' => {
                        self.state = ChunkState::Extension
                    }
                    None if b == b'\r' => self.state = ChunkState::SizeLf,
                    None => return Err(ChunkError),
                },
                ChunkState::Extension => match b {
                    b'\r' => self.state = ChunkState::SizeLf,
                    b'\n' => return Err(ChunkError),
                    _ => {}
                },
                ChunkState::SizeLf => {
                    if b != b'\n' {
                        return Err(ChunkError);
                    }
                    self.digits = 0;
                    self.state = if self.size == 0 {
                        ChunkState::TrailerStart
                    } else {
                        ChunkState::Data
                    };
                }
                ChunkState::Data => {
                    // Skip the data in one step.
                    let take =
                        (bytes.len() - i).min(usize::try_from(self.size).unwrap_or(usize::MAX));
                    self.size -= take as u64;
                    self.data += take as u64;
                    data(i..i + take);
                    i += take;
                    if self.size == 0 {
                        self.state = ChunkState::DataCr;
                    }
                    continue;
                }
                ChunkState::DataCr => {
                    if b != b'\r' {
                        return Err(ChunkError);
                    }
                    self.state = ChunkState::DataLf;
                }
                ChunkState::DataLf => {
                    if b != b'\n' {
                        return Err(ChunkError);
                    }
                    self.state = ChunkState::Size;
                }
                ChunkState::TrailerStart => match b {
                    b'\r' => self.state = ChunkState::FinalLf,
                    b'\n' => return Err(ChunkError),
                    _ => self.state = ChunkState::TrailerLine,
                },
                ChunkState::TrailerLine => {
                    if b == b'\r' {
                        self.state = ChunkState::TrailerLf;
                    }
                }
                ChunkState::TrailerLf => {
                    if b != b'\n' {
                        return Err(ChunkError);
                    }
                    self.state = ChunkState::TrailerStart;
                }
                ChunkState::FinalLf => {
                    if b != b'\n' {
                        return Err(ChunkError);
                    }
                    self.state = ChunkState::Done;
                    return Ok(i + 1);
                }
                ChunkState::Done => return Ok(i),
            }
            i += 1;
        }
        Ok(i)
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Appends one header line.
pub fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends the decimal text of `n`.
pub fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_names_whatever_their_case() {
        assert_eq!(Kind::of("Host"), Kind::Host);
        assert_eq!(Kind::of("CONTENT-LENGTH"), Kind::ContentLength);
        assert_eq!(Kind::of("Transfer-Encoding"), Kind::TransferEncoding);
        assert_eq!(Kind::of("x-forwarded-proto"), Kind::XForwardedProto);
        assert_eq!(Kind::of("Proxy-Authorization"), Kind::HopByHop);
        assert_eq!(Kind::of("TE"), Kind::HopByHop);
        assert_eq!(Kind::of("HTTP2-Settings"), Kind::HopByHop);
        assert_eq!(Kind::of("Hosts"), Kind::Other);
        assert_eq!(Kind::of("x-forwarded-fox"), Kind::Other);
    }

    #[test]
    fn finds_the_end_of_a_head_read_in_pieces() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody";
        assert_eq!(head_end(&head[..10], 0), None);
        assert_eq!(head_end(&head[..26], 10), None);
        assert_eq!(head_end(&head[..27], 26), Some(27));
        assert_eq!(head_end(head, 0), Some(27));
        let bare = b"GET / HTTP/1.1\nHost: a\n\nbody";
        assert_eq!(head_end(bare, 0), Some(24));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), None);
    }

    #[test]
    fn content_length_is_digits_only() {
        assert_eq!(parse_content_length(b"0"), Some(0));
        assert_eq!(parse_content_length(b"1234"), Some(1234));
        for bad in [
            &b""[..],
            b"-1",
            b"+1",
            b"1 2",
            b"0x10",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_content_length(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn chunked_is_recognised_only_last() {
        assert!(ends_chunked(b"chunked"));
        assert!(ends_chunked(b"gzip, Chunked"));
        assert!(!ends_chunked(b"chunked, gzip"));
        assert!(!ends_chunked(b""));
    }

    fn scan_whole(body: &[u8]) -> Result<Option<usize>, ChunkError> {
        let mut s = ChunkedScanner::default();
        let n = s.feed(body)?;
        Ok(s.is_done().then_some(n))
    }

    #[test]
    fn finds_the_end_of_a_chunked_body() {
        let body = b"5\r\nhello\r\n1;ext=\"x\"\r\n!\r\n0\r\n\r\nNEXT";
        assert_eq!(scan_whole(body), Ok(Some(body.len() - 4)));
        let with_trailer = b"3\r\nabc\r\n0\r\nDigest: x\r\n\r\n";
        assert_eq!(scan_whole(with_trailer), Ok(Some(with_trailer.len())));
        let big = b"A\r\n0123456789\r\n0\r\n\r\n";
        assert_eq!(scan_whole(big), Ok(Some(big.len())));
    }

    #[test]
    fn any_split_of_the_body_gives_the_same_end() {
        let body = b"5\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\nXX";
        let end = body.len() - 2;
        for cut in 0..body.len() {
            let mut s = ChunkedScanner::default();
            let a = s.feed(&body[..cut]).unwrap();
            assert_eq!(a, cut.min(end), "cut {cut}");
            let b = s.feed(&body[a..]).unwrap();
            assert!(s.is_done(), "cut {cut}");
            assert_eq!(a + b, end, "cut {cut}");
        }
    }

    #[test]
    fn refuses_malformed_chunks() {
        for bad in [
            &b"\r\n"[..],
            b"g\r\n",
            b"5\r\nhelloXX",
            b"5\nhello\r\n",
            b"11111111111111111\r\n",
            b"0\r\n\n",
        ] {
            assert_eq!(scan_whole(bad), Err(ChunkError), "{bad:?}");
        }
    }

    #[test]
    fn decimal_text() {
        let mut out = Vec::new();
        for n in [0u64, 7, 10, 451, u64::MAX] {
            out.clear();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn the_chunk_scanner_never_panics_nor_overreads() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"0123456789abcdefABCDEFgxyz;= \t\r\n";
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut s = ChunkedScanner::default();
            let mut bytes = Vec::new();
            for _ in 0..(x % 64) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            let cut = (x as usize) % (bytes.len() + 1);
            for part in [&bytes[..cut], &bytes[cut..]] {
                match s.feed(part) {
                    Ok(n) => assert!(n <= part.len()),
                    Err(ChunkError) => break,
                }
            }
        }
    }
}
