//! What hyper hides from douane: a request's framing as the client wrote it. hyper drops a
//! `Content-Length` beside `Transfer-Encoding` (RFC 9112 §6.3) and folds equal duplicate
//! lengths before the service sees the head, so hyper's path could not refuse them as the
//! direct path does. [`FramingWatch`] reads the bytes as they pass to hyper — each request
//! head, then its body by the same framing hyper follows — and notes the first request whose
//! framing is ambiguous; the service marks that request ([`FramingVerdict::mark`]) and
//! refuses it (`exchange::admit`). The bytes are never changed.

use std::sync::atomic::{AtomicU64, Ordering};

use http::Request;

use super::message::{ends_chunked, head_end, parse_content_length, ChunkedScanner, Kind};

/// Marks a request whose head had ambiguous framing (read from its extensions).
#[derive(Debug, Clone, Copy)]
pub struct AmbiguousFraming;

/// What the watch found, shared with the connection's service (same task: relaxed order).
#[derive(Debug, Default)]
pub struct FramingVerdict {
    /// 1 + the index of the first ambiguous head; 0: none.
    ambiguous: AtomicU64,
    /// Requests hyper has handed to the service so far.
    served: AtomicU64,
}

impl FramingVerdict {
    /// Called for each request hyper hands to the service, in order: marks it when its head
    /// was the ambiguous one.
    pub fn mark<B>(&self, req: &mut Request<B>) {
        let index = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        if self.ambiguous.load(Ordering::Relaxed) == index {
            req.extensions_mut().insert(AmbiguousFraming);
        }
    }

    /// Whether the head hyper refused by itself (after the requests it served) was the
    /// ambiguous one: two different lengths, which hyper answers 400.
    pub fn refused_head_was_ambiguous(&self) -> bool {
        let ambiguous = self.ambiguous.load(Ordering::Relaxed);
        ambiguous != 0 && ambiguous == self.served.load(Ordering::Relaxed) + 1
    }
}

enum State {
    /// Reading a head (`head` holds what has come of it).
    Head,
    /// Skipping this many body bytes.
    Length(u64),
    Chunked(ChunkedScanner),
    /// Lost step with hyper (a head it refuses too, an upgrade's bytes) or done: watches no
    /// more.
    Off,
}

pub struct FramingWatch {
    state: State,
    head: Vec<u8>,
    /// Heads read so far.
    heads: u64,
    max_head: usize,
    max_headers: usize,
    verdict: std::sync::Arc<FramingVerdict>,
}

impl FramingWatch {
    pub fn new(
        max_head: usize,
        max_headers: usize,
    ) -> (FramingWatch, std::sync::Arc<FramingVerdict>) {
        let verdict = std::sync::Arc::<FramingVerdict>::default();
        let watch = FramingWatch {
            state: State::Head,
            head: Vec::new(),
            heads: 0,
            max_head,
            max_headers,
            verdict: verdict.clone(),
        };
        (watch, verdict)
    }

    /// The next bytes hyper reads from the client.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Off => return,
                State::Length(left) => {
                    let take = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    *left -= take as u64;
                    bytes = &bytes[take..];
                    if *left == 0 {
                        self.state = State::Head;
                    }
                }
                State::Chunked(scanner) => match scanner.feed(bytes) {
                    Ok(used) => {
                        bytes = &bytes[used..];
                        if scanner.is_done() {
                            self.state = State::Head;
                        }
                    }
                    Err(_) => self.state = State::Off, // hyper refuses the body
                },
                State::Head => {
                    if self.head.is_empty() {
                        // httparse skips empty lines before a request line, as hyper does.
                        let blank = bytes.iter().take_while(|b| matches!(b, b'\r' | b'\n'));
                        bytes = &bytes[blank.count()..];
                        if bytes.is_empty() {
                            return;
                        }
                    }
                    let before = self.head.len();
                    self.head.extend_from_slice(bytes);
                    let Some(end) = head_end(&self.head, before) else {
                        if self.head.len() > self.max_head {
                            self.state = State::Off; // hyper answers 431
                        }
                        return;
                    };
                    bytes = &bytes[end - before..];
                    self.heads += 1;
                    self.state = self.framing(end);
                    self.head.clear();
                }
            }
        }
    }

    /// How the body of the head in `head[..end]` is framed, as hyper reads it; notes an
    /// ambiguous one and stops there (the request is refused and the connection closed).
    fn framing(&self, end: usize) -> State {
        let mut headers = vec![httparse::EMPTY_HEADER; self.max_headers];
        let mut req = httparse::Request::new(&mut headers);
        if !matches!(
            req.parse(&self.head[..end]),
            Ok(httparse::Status::Complete(_))
        ) {
            return State::Off; // hyper refuses it as well
        }
        let (mut lengths, mut length, mut chunked, mut coded) = (0u32, None, false, false);
        for h in req.headers.iter() {
            match Kind::of(h.name) {
                Kind::ContentLength => {
                    lengths += 1;
                    length = parse_content_length(h.value.trim_ascii());
                }
                Kind::TransferEncoding => {
                    coded = true;
                    chunked = ends_chunked(h.value);
                }
                _ => {}
            }
        }
        if lengths > 1 || (coded && lengths > 0) {
            self.verdict.ambiguous.store(self.heads, Ordering::Relaxed);
            return State::Off;
        }
        if coded {
            // hyper refuses a coding that does not end in chunked.
            return if chunked {
                State::Chunked(ChunkedScanner::default())
            } else {
                State::Off
            };
        }
        match (lengths, length) {
            (0, _) | (_, Some(0)) => State::Head,
            (_, Some(n)) => State::Length(n),
            (_, None) => State::Off, // an invalid length: hyper refuses it
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(bytes: &[&[u8]]) -> (std::sync::Arc<FramingVerdict>, u64) {
        let (mut w, verdict) = FramingWatch::new(8192, 100);
        for b in bytes {
            w.feed(b);
        }
        (verdict, w.heads)
    }

    #[test]
    fn finds_the_ambiguous_head_after_bodies_of_each_framing() {
        let (v, heads) = watch(&[
            b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel",
            b"loGET /b HTTP/1.1\r\n\r\n\r\nPOST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n",
            b"\r\n3\r\nabc\r\n0\r\n\r\nPOST /d HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3",
            b"\r\n\r\nabc",
        ]);
        assert_eq!(heads, 4);
        assert_eq!(v.ambiguous.load(Ordering::Relaxed), 4);
        let mut req = Request::new(());
        for expected in [false, false, false, true] {
            let mut r = Request::new(());
            v.mark(&mut r);
            assert_eq!(r.extensions().get::<AmbiguousFraming>().is_some(), expected);
        }
        v.mark(&mut req);
        assert!(req.extensions().get::<AmbiguousFraming>().is_none());
    }

    #[test]
    fn both_framings_are_ambiguous_and_plain_heads_are_not() {
        let (v, _) = watch(&[
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\ncontent-length: 4\r\n\r\n0\r\n\r\n",
        ]);
        assert_eq!(v.ambiguous.load(Ordering::Relaxed), 1);
        assert!(v.refused_head_was_ambiguous());
        let (v, heads) =
            watch(&[b"GET / HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n"]);
        assert_eq!((v.ambiguous.load(Ordering::Relaxed), heads), (0, 2));
    }

    #[test]
    fn stops_at_what_hyper_refuses() {
        let (v, heads) = watch(&[b"GET / HTTP/9.9\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"]);
        assert_eq!((v.ambiguous.load(Ordering::Relaxed), heads), (0, 1));
    }
}
