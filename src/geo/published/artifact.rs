//! The compiled published-ranges file (`data/published.bin`): a small binary format that
//! loads in milliseconds and is refused, with the reason, when truncated or altered.
//!
//! ```text
//! header  "DOUANEPR" | u16 format (1) | u16 0 | u64 body length | SHA-256(body)
//! body    str built | sources | facts | IPv4 prefixes | IPv6 prefixes      (little-endian)
//!   source  str file | str publisher | str format | str date | u8 dated_by | str serial
//!           | [32] SHA-256 of the source file | u32 prefixes
//!   fact    u32 source | str region ("" none) | [2] country ("\0\0" none)
//!   prefix  u32 or [16] network | u8 length | u32 fact
//!   str     u16 length | UTF-8
//! ```
//!
//! The version of an artifact is the hex SHA-256 of its body: the same sources and build
//! date give the same version.

use sha2::{Digest, Sha256};

use crate::country::Country;

pub const MAGIC: &[u8; 8] = b"DOUANEPR";
pub const FORMAT: u16 = 1;
const HEADER: usize = 8 + 2 + 2 + 8 + 32;

/// Where a source's date comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatedBy {
    /// The file says when it was made (AWS `createDate`, Google `creationTime`, …).
    File,
    /// The file carries no date: the date it was fetched, given to the import.
    Fetched,
}

/// One provider file that went into the artifact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceRecord {
    pub file: String,
    pub publisher: String,
    pub format: String,
    /// The file's own date (RFC 3339 or `YYYY-MM-DD`).
    pub date: String,
    pub dated_by: DatedBy,
    pub serial: Option<String>,
    /// Hex SHA-256 of the source file as read.
    pub sha256: String,
    pub prefixes: u32,
}

/// A distinct (source, region, country) triple that prefixes point at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FactRecord {
    pub source: u32,
    pub region: Option<String>,
    pub country: Option<Country>,
}

/// Everything the artifact holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Compiled {
    /// When the import ran (RFC 3339 or `YYYY-MM-DD`).
    pub built: String,
    pub sources: Vec<SourceRecord>,
    pub facts: Vec<FactRecord>,
    pub v4: Vec<(u32, u8, u32)>,
    pub v6: Vec<(u128, u8, u32)>,
}

/// Why an artifact was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArtifactError {
    #[error("not a douane published-ranges file (no DOUANEPR header); build one with `douane ranges import`")]
    NotAnArtifact,
    #[error("published-ranges format {0} is not supported (this douane reads format {FORMAT}); rebuild it with `douane ranges import`")]
    Format(u16),
    #[error("truncated: the header announces {expected} bytes, the file has {found}")]
    Truncated { expected: u64, found: u64 },
    #[error("corrupt: the checksum of the contents does not match the header")]
    Checksum,
    #[error("corrupt: {0}")]
    Malformed(String),
}

impl Compiled {
    /// The whole file: header and body.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + self.v4.len() * 9 + self.v6.len() * 21);
        put_str(&mut b, &self.built);
        put_u32(&mut b, self.sources.len());
        for s in &self.sources {
            put_str(&mut b, &s.file);
            put_str(&mut b, &s.publisher);
            put_str(&mut b, &s.format);
            put_str(&mut b, &s.date);
            b.push(match s.dated_by {
                DatedBy::File => 0,
                DatedBy::Fetched => 1,
            });
            put_str(&mut b, s.serial.as_deref().unwrap_or(""));
            let mut sha = [0u8; 32];
            let _ = hex::decode_to_slice(&s.sha256, &mut sha);
            b.extend_from_slice(&sha);
            b.extend_from_slice(&s.prefixes.to_le_bytes());
        }
        put_u32(&mut b, self.facts.len());
        for f in &self.facts {
            b.extend_from_slice(&f.source.to_le_bytes());
            put_str(&mut b, f.region.as_deref().unwrap_or(""));
            match f.country {
                Some(c) => b.extend_from_slice(c.as_str().as_bytes()),
                None => b.extend_from_slice(&[0, 0]),
            }
        }
        put_u32(&mut b, self.v4.len());
        for &(net, len, fact) in &self.v4 {
            b.extend_from_slice(&net.to_le_bytes());
            b.push(len);
            b.extend_from_slice(&fact.to_le_bytes());
        }
        put_u32(&mut b, self.v6.len());
        for &(net, len, fact) in &self.v6 {
            b.extend_from_slice(&net.to_le_bytes());
            b.push(len);
            b.extend_from_slice(&fact.to_le_bytes());
        }
        let mut out = Vec::with_capacity(HEADER + b.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(&Sha256::digest(&b));
        out.extend_from_slice(&b);
        out
    }

    /// Reads a whole file, checking header, length and checksum before anything else.
    /// Returns the contents and the version (hex SHA-256 of the body).
    pub fn decode(bytes: &[u8]) -> Result<(Compiled, String), ArtifactError> {
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            return Err(ArtifactError::NotAnArtifact);
        }
        if bytes.len() < HEADER {
            return Err(ArtifactError::Truncated {
                expected: HEADER as u64,
                found: bytes.len() as u64,
            });
        }
        let format = u16::from_le_bytes([bytes[8], bytes[9]]);
        if format != FORMAT {
            return Err(ArtifactError::Format(format));
        }
        let mut len = [0u8; 8];
        len.copy_from_slice(&bytes[12..20]);
        let body_len = u64::from_le_bytes(len);
        let found = (bytes.len() - HEADER) as u64;
        if found != body_len {
            return Err(ArtifactError::Truncated {
                expected: HEADER as u64 + body_len,
                found: bytes.len() as u64,
            });
        }
        let body = &bytes[HEADER..];
        let digest = Sha256::digest(body);
        if digest.as_slice() != &bytes[20..52] {
            return Err(ArtifactError::Checksum);
        }
        let mut r = Reader { b: body, at: 0 };
        let built = r.str()?;
        let n = r.count(40)?;
        let mut sources = Vec::with_capacity(n);
        for _ in 0..n {
            let file = r.str()?;
            let publisher = r.str()?;
            let format = r.str()?;
            let date = r.str()?;
            let dated_by = match r.u8()? {
                0 => DatedBy::File,
                1 => DatedBy::Fetched,
                other => return Err(malformed(format!("source date kind {other}"))),
            };
            let serial = Some(r.str()?).filter(|s| !s.is_empty());
            let sha256 = hex::encode(r.take(32)?);
            let prefixes = r.u32()?;
            sources.push(SourceRecord {
                file,
                publisher,
                format,
                date,
                dated_by,
                serial,
                sha256,
                prefixes,
            });
        }
        let n = r.count(8)?;
        let mut facts = Vec::with_capacity(n);
        for _ in 0..n {
            let source = r.u32()?;
            if source as usize >= sources.len() {
                return Err(malformed(format!("a range names source {source}")));
            }
            let region = Some(r.str()?).filter(|s| !s.is_empty());
            let code = r.take(2)?;
            let country = if code == [0, 0] {
                None
            } else {
                let code = std::str::from_utf8(code).map_err(|_| malformed("country code"))?;
                Some(Country::parse(code).map_err(|e| malformed(e.to_string()))?)
            };
            facts.push(FactRecord {
                source,
                region,
                country,
            });
        }
        let fact_ok = |f: u32| {
            if (f as usize) < facts.len() {
                Ok(f)
            } else {
                Err(malformed(format!("a prefix names range facts {f}")))
            }
        };
        let n = r.count(9)?;
        let mut v4 = Vec::with_capacity(n);
        for _ in 0..n {
            let net = r.u32()?;
            let len = r.u8()?;
            if len > 32 {
                return Err(malformed(format!("IPv4 prefix length {len}")));
            }
            v4.push((net, len, fact_ok(r.u32()?)?));
        }
        let n = r.count(21)?;
        let mut v6 = Vec::with_capacity(n);
        for _ in 0..n {
            let mut a = [0u8; 16];
            a.copy_from_slice(r.take(16)?);
            let len = r.u8()?;
            if len > 128 {
                return Err(malformed(format!("IPv6 prefix length {len}")));
            }
            v6.push((u128::from_le_bytes(a), len, fact_ok(r.u32()?)?));
        }
        if r.at != body.len() {
            return Err(malformed(format!(
                "{} bytes after the end",
                body.len() - r.at
            )));
        }
        Ok((
            Compiled {
                built,
                sources,
                facts,
                v4,
                v6,
            },
            hex::encode(digest),
        ))
    }
}

fn malformed(m: impl Into<String>) -> ArtifactError {
    ArtifactError::Malformed(m.into())
}

fn put_u32(b: &mut Vec<u8>, n: usize) {
    b.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    let bytes = &s.as_bytes()[..s.len().min(u16::MAX as usize)];
    b.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
    b.extend_from_slice(bytes);
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ArtifactError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let end =
            end.ok_or_else(|| malformed(format!("ends inside a record at byte {}", self.at)))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, ArtifactError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, ArtifactError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }
    /// A record count, checked against the bytes left (each record at least `min` bytes).
    fn count(&mut self, min: usize) -> Result<usize, ArtifactError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.b.len() - self.at {
            return Err(malformed(format!(
                "{n} records announced, not that many bytes left"
            )));
        }
        Ok(n)
    }
    fn str(&mut self) -> Result<String, ArtifactError> {
        let mut a = [0u8; 2];
        a.copy_from_slice(self.take(2)?);
        let bytes = self.take(u16::from_le_bytes(a) as usize)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| malformed("a string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Compiled {
        Compiled {
            built: "2026-12-01".into(),
            sources: vec![SourceRecord {
                file: "aws-ip-ranges.json".into(),
                publisher: "aws".into(),
                format: "aws-ip-ranges".into(),
                date: "2025-07-24T20:23:14Z".into(),
                dated_by: DatedBy::File,
                serial: Some("1753388594".into()),
                sha256: "ab".repeat(32),
                prefixes: 2,
            }],
            facts: vec![FactRecord {
                source: 0,
                region: Some("eu-west-3".into()),
                country: Country::parse("FR").ok(),
            }],
            v4: vec![(0x0FEC_0000, 15, 0)],
            v6: vec![(0x2a05_d000_u128 << 96, 32, 0)],
        }
    }

    #[test]
    fn round_trip() {
        let bytes = sample().encode();
        let (back, version) = Compiled::decode(&bytes).unwrap();
        assert_eq!(back, sample());
        assert_eq!(version.len(), 64);
    }

    #[test]
    fn refuses_truncated_corrupt_and_foreign_files() {
        let bytes = sample().encode();
        for cut in [0, 7, 20, bytes.len() - 1] {
            assert!(Compiled::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(
            Compiled::decode(&bytes[..bytes.len() - 3]),
            Err(ArtifactError::Truncated { .. })
        ));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 2;
        flipped[last] ^= 1;
        assert_eq!(Compiled::decode(&flipped), Err(ArtifactError::Checksum));
        assert_eq!(
            Compiled::decode(b"{\"prefixes\": []}"),
            Err(ArtifactError::NotAnArtifact)
        );
        let mut future = bytes;
        future[8] = 9;
        assert_eq!(Compiled::decode(&future), Err(ArtifactError::Format(9)));
    }
}
