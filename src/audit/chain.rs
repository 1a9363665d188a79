//! The hash chain: `hash = SHA-256(prev_hex ‖ exact bytes of the record without its hash)`,
//! and how the hash is put into, and taken out of, a written line.

use sha2::{Digest, Sha256};

/// A SHA-256 digest in lowercase hex, as it appears in the log.
pub type HashHex = [u8; 64];

/// The `prev` of the very first record of a chain.
pub const ZERO_HASH: HashHex = [b'0'; 64];

/// What precedes the hash at the end of every line: `,"hash":"`.
const HASH_PREFIX: &[u8] = b",\"hash\":\"";
/// What follows it: `"}`.
const HASH_SUFFIX: &[u8] = b"\"}";
/// Length of the hash part of a line (without the newline).
pub const HASH_PART_LEN: usize = HASH_PREFIX.len() + 64 + HASH_SUFFIX.len();

/// Hashes one record: `prev` (hex) then the bytes of the record serialised without its hash
/// (a complete JSON object, closing `}` included).
pub fn record_hash(prev: &HashHex, unhashed: &[u8]) -> HashHex {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(unhashed);
    let digest = h.finalize();
    let mut out = [0u8; 64];
    // 32 bytes always fit 64 hex digits.
    let _ = hex::encode_to_slice(digest, &mut out);
    out
}

/// Turns `{…}` (the unhashed record, in `line`) into `{…,"hash":"…"}\n` in place and
/// returns the hash.
pub fn seal(prev: &HashHex, line: &mut Vec<u8>, start: usize) -> HashHex {
    let hash = record_hash(prev, &line[start..]);
    line.pop(); // the closing brace
    line.extend_from_slice(HASH_PREFIX);
    line.extend_from_slice(&hash);
    line.extend_from_slice(HASH_SUFFIX);
    line.push(b'\n');
    hash
}

/// Splits a written line (without its newline) into the unhashed bytes (without the
/// closing brace, which the caller adds back) and the stored hash. `None` when the line
/// does not end with `,"hash":"<64 lowercase hex>"}`.
pub fn unseal(line: &[u8]) -> Option<(&[u8], HashHex)> {
    if line.len() < HASH_PART_LEN + 1 || line.first() != Some(&b'{') {
        return None;
    }
    let (body, tail) = line.split_at(line.len() - HASH_PART_LEN);
    let hex_part = tail.strip_prefix(HASH_PREFIX)?.strip_suffix(HASH_SUFFIX)?;
    if !hex_part
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return None;
    }
    let mut hash = [0u8; 64];
    hash.copy_from_slice(hex_part);
    Some((body, hash))
}

/// Recomputes the hash of a line split by [`unseal`]: the body plus its closing brace.
pub fn rehash(prev: &HashHex, body_without_brace: &[u8]) -> HashHex {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(body_without_brace);
    h.update(b"}");
    let digest = h.finalize();
    let mut out = [0u8; 64];
    let _ = hex::encode_to_slice(digest, &mut out);
    out
}

/// Reads a 64-digit lowercase hex string as a [`HashHex`].
pub fn parse_hash(s: &str) -> Option<HashHex> {
    let b = s.as_bytes();
    if b.len() != 64
        || !b
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    {
        return None;
    }
    let mut out = [0u8; 64];
    out.copy_from_slice(b);
    Some(out)
}

/// The hash as `&str` (it is ASCII hex by construction).
pub fn hash_str(h: &HashHex) -> &str {
    std::str::from_utf8(h).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_unseal_gives_back_the_hashed_bytes() {
        let mut line = br#"{"seq":0,"prev":"x"}"#.to_vec();
        let hash = seal(&ZERO_HASH, &mut line, 0);
        assert!(line.ends_with(b"\"}\n"));
        let text = &line[..line.len() - 1];
        let (body, stored) = unseal(text).expect("sealed line");
        assert_eq!(stored, hash);
        assert_eq!(rehash(&ZERO_HASH, body), hash);
        assert_eq!(record_hash(&ZERO_HASH, br#"{"seq":0,"prev":"x"}"#), hash);
    }

    #[test]
    fn the_hash_depends_on_prev() {
        let a = record_hash(&ZERO_HASH, b"{}");
        let b = record_hash(&a, b"{}");
        assert_ne!(a, b);
    }

    #[test]
    fn unseal_rejects_malformed_endings() {
        assert!(unseal(b"{}").is_none());
        let mut line = b"{\"a\":1".to_vec();
        line.extend_from_slice(b",\"hash\":\"");
        line.extend_from_slice(&[b'A'; 64]); // uppercase is not what we write
        line.extend_from_slice(b"\"}");
        assert!(unseal(&line).is_none());
        assert!(parse_hash("00").is_none());
        assert_eq!(parse_hash(hash_str(&ZERO_HASH)), Some(ZERO_HASH));
    }
}
