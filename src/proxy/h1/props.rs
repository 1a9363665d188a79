//! Property tests of the direct path's parsing pieces: where a head ends, how a
//! `Content-Length` reads, where a chunked body ends, and what the request head reader
//! refuses — for any input and any split of it.

use proptest::prelude::*;

use super::message::{head_end, parse_content_length, ChunkedScanner};
use super::request::{NotDirect, RequestShape};
use crate::proxy::exchange::Refusal;

/// A chunked body of these chunks (an extension on some), a trailer or not.
fn encode(chunks: &[Vec<u8>], ext: bool, trailer: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for c in chunks.iter().filter(|c| !c.is_empty()) {
        out.extend_from_slice(format!("{:x}", c.len()).as_bytes());
        if ext {
            out.extend_from_slice(b";name=\"v\"");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    if trailer {
        out.extend_from_slice(b"x-digest: abc\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn random_case(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

proptest! {
    #[test]
    fn a_head_read_in_two_pieces_ends_where_it_ends_whole(
        bytes in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), any::<u8>()], 0..200),
        cut in 0usize..200,
    ) {
        let whole = head_end(&bytes, 0);
        let cut = cut.min(bytes.len());
        let incremental = head_end(&bytes[..cut], 0).or_else(|| head_end(&bytes, cut));
        prop_assert_eq!(whole, incremental);
        if let Some(n) = whole {
            prop_assert!(n <= bytes.len());
            prop_assert_eq!(bytes[n - 1], b'\n');
        }
    }

    #[test]
    fn content_length_is_exactly_the_decimal_digits(n in 0u64..10_000_000_000_000_000_000, junk in "[^0-9]{1,3}") {
        let text = n.to_string();
        prop_assert_eq!(parse_content_length(text.as_bytes()), Some(n));
        let bad = format!("{text}{junk}");
        prop_assert_eq!(parse_content_length(bad.as_bytes()), None);
        let signed = format!("{junk}{text}");
        prop_assert_eq!(parse_content_length(signed.as_bytes()), None);
    }

    #[test]
    fn a_chunked_body_ends_at_its_last_chunk_whatever_the_split(
        chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6),
        ext in any::<bool>(),
        trailer in any::<bool>(),
        after in proptest::collection::vec(any::<u8>(), 0..20),
        cuts in proptest::collection::vec(0usize..400, 0..4),
    ) {
        let body = encode(&chunks, ext, trailer);
        let mut bytes = body.clone();
        bytes.extend_from_slice(&after);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
        cuts.push(bytes.len());
        cuts.sort();
        let mut scanner = ChunkedScanner::default();
        let (mut at, mut taken) = (0, 0);
        for cut in cuts {
            if scanner.is_done() || cut < at {
                continue;
            }
            taken += scanner.feed(&bytes[at..cut]).expect("a valid chunked body");
            at = cut;
        }
        prop_assert!(scanner.is_done());
        prop_assert_eq!(taken, body.len());
        let data: usize = chunks.iter().map(Vec::len).sum();
        prop_assert_eq!(scanner.data_len(), data as u64);
    }

    #[test]
    fn the_chunk_scanner_takes_no_more_than_it_is_given(
        pieces in proptest::collection::vec(proptest::collection::vec(
            prop_oneof![Just(b'0'), Just(b'a'), Just(b'\r'), Just(b'\n'), Just(b';'), any::<u8>()], 0..30), 0..5),
    ) {
        let mut scanner = ChunkedScanner::default();
        for piece in &pieces {
            match scanner.feed(piece) {
                Ok(n) => prop_assert!(n <= piece.len()),
                Err(_) => break,
            }
            if scanner.is_done() {
                break;
            }
        }
    }

    #[test]
    fn framing_named_in_connection_is_always_refused(
        before in proptest::collection::vec("[a-z]{1,8}", 0..4),
        after in proptest::collection::vec("[a-z]{1,8}", 0..3),
        framing in prop_oneof![Just("content-length"), Just("transfer-encoding")],
        mask in any::<u64>(),
        length_first in any::<bool>(),
    ) {
        let mut tokens = before.clone();
        tokens.push(random_case(framing, mask));
        tokens.extend(after.iter().cloned());
        let connection = tokens.join(", ");
        let mut lines = vec![
            ("Host".to_owned(), "app.localhost".to_owned()),
            ("Connection".to_owned(), connection),
        ];
        let length = ("Content-Length".to_owned(), "5".to_owned());
        if length_first { lines.insert(0, length) } else { lines.push(length) }
        let headers: Vec<httparse::Header<'_>> = lines
            .iter()
            .map(|(n, v)| httparse::Header { name: n, value: v.as_bytes() })
            .collect();
        let read = RequestShape::read(&headers);
        prop_assert!(
            matches!(read, Err(NotDirect::Refuse(Refusal::FramingNamedInConnection))),
            "{:?}", lines
        );
    }

    #[test]
    fn the_head_reader_never_panics_and_refuses_two_hosts(
        lines in proptest::collection::vec(
            (prop_oneof![Just("host"), Just("Content-Length"), Just("transfer-encoding"),
                         Just("connection"), Just("upgrade"), Just("x-a"), Just("accept")],
             "[ -~]{0,12}"), 0..10),
    ) {
        let headers: Vec<httparse::Header<'_>> = lines
            .iter()
            .map(|(n, v)| httparse::Header { name: n, value: v.as_bytes() })
            .collect();
        let hosts = lines.iter().filter(|(n, _)| *n == "host").count();
        if let Ok(shape) = RequestShape::read(&headers) {
            prop_assert!(hosts <= 1);
            prop_assert!(!lines.iter().any(|(n, _)| *n == "transfer-encoding"));
            prop_assert!(lines.iter().filter(|(n, _)| *n == "Content-Length").count() <= 1);
            prop_assert_eq!(u64::from(shape.hosts), hosts as u64);
        }
    }
}
