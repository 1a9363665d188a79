//! What a tunnel's first bytes say it is for, read without consuming them: a TLS
//! ClientHello's server name (and whether it hides the real one behind Encrypted Client
//! Hello), or the `Host` of a plain HTTP request. The proxy decides that name too, so an
//! exemption for `*.outlook.com` cannot carry a tunnel to another host on the same
//! addresses.
//!
//! [`inspect`] is pure over the bytes read so far: it answers [`Inspection::NeedMore`]
//! until it can tell, never panics and never allocates for a ClientHello in one record.
//! [`read_first`] reads a tunnel's first bytes into a buffer, which the caller forwards
//! unchanged when the name is allowed.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// TLS extension numbers (IANA).
const EXT_SERVER_NAME: u16 = 0x0000;
const EXT_ENCRYPTED_CLIENT_HELLO: u16 = 0xfe0d;

/// A ClientHello bigger than this (across records) is refused as malformed.
pub const MAX_CLIENT_HELLO: usize = 64 * 1024;
/// A plain HTTP request head bigger than this without its end is not a request.
pub const MAX_HTTP_HEAD: usize = 16 * 1024;

/// What the first bytes of a tunnel are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inspection {
    /// Not enough bytes to tell yet.
    NeedMore,
    /// A TLS ClientHello.
    Tls(ClientHello),
    /// A plain HTTP request: its `Host` (or absolute-form authority), without the port,
    /// lowercase; `None` when it has none.
    Http { host: Option<String> },
    /// A TLS handshake record that is not a well-formed ClientHello.
    MalformedTls,
    /// Neither TLS nor HTTP.
    Other,
}

/// What a ClientHello says of its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// The `server_name` (lowercase, without a trailing dot); `None` when there is none.
    pub sni: Option<String>,
    /// An `encrypted_client_hello` extension is present: the real name is encrypted and
    /// `sni` is only the outer (public) name.
    pub ech: bool,
}

/// A cursor over bytes that fails (`None`) instead of panicking.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// Tells what `buf` (the first bytes of a tunnel) is.
pub fn inspect(buf: &[u8]) -> Inspection {
    match buf.first() {
        None => Inspection::NeedMore,
        Some(0x16) => inspect_tls(buf),
        Some(b) if b.is_ascii_uppercase() => inspect_http(buf),
        Some(_) => Inspection::Other,
    }
}

/// The handshake bytes of the records in `buf`: borrowed when the first record holds the
/// whole ClientHello, gathered from the following records otherwise.
fn inspect_tls(buf: &[u8]) -> Inspection {
    let mut records = Cur(buf);
    let Some(header) = records.take(5) else {
        return Inspection::NeedMore;
    };
    if header[1] != 0x03 {
        return Inspection::MalformedTls;
    }
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    if len == 0 || len > 16384 + 2048 {
        return Inspection::MalformedTls;
    }
    let Some(first) = records.take(len) else {
        return Inspection::NeedMore;
    };
    // The handshake header says how long the ClientHello is.
    if first.len() < 4 {
        return gather(buf);
    }
    if first[0] != 0x01 {
        return Inspection::MalformedTls;
    }
    let body_len =
        (usize::from(first[1]) << 16) | (usize::from(first[2]) << 8) | usize::from(first[3]);
    if body_len + 4 > MAX_CLIENT_HELLO {
        return Inspection::MalformedTls;
    }
    if first.len() >= body_len + 4 {
        return parse_client_hello(&first[4..4 + body_len]);
    }
    gather(buf)
}

/// A ClientHello split across records: concatenate their payloads (bounded).
fn gather(buf: &[u8]) -> Inspection {
    let mut records = Cur(buf);
    let mut hs: Vec<u8> = Vec::new();
    loop {
        let Some(header) = records.take(5) else {
            return Inspection::NeedMore;
        };
        if header[0] != 0x16 || header[1] != 0x03 {
            return Inspection::MalformedTls;
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 {
            return Inspection::MalformedTls;
        }
        let Some(payload) = records.take(len) else {
            return Inspection::NeedMore;
        };
        hs.extend_from_slice(payload);
        if hs.len() > MAX_CLIENT_HELLO + 4 {
            return Inspection::MalformedTls;
        }
        if hs.len() >= 4 {
            if hs[0] != 0x01 {
                return Inspection::MalformedTls;
            }
            let body_len =
                (usize::from(hs[1]) << 16) | (usize::from(hs[2]) << 8) | usize::from(hs[3]);
            if body_len + 4 > MAX_CLIENT_HELLO {
                return Inspection::MalformedTls;
            }
            if hs.len() >= body_len + 4 {
                return parse_client_hello(&hs[4..4 + body_len]);
            }
        }
    }
}

fn parse_client_hello(body: &[u8]) -> Inspection {
    parse_body(body).map_or(Inspection::MalformedTls, Inspection::Tls)
}

fn parse_body(body: &[u8]) -> Option<ClientHello> {
    let mut c = Cur(body);
    c.take(2)?; // legacy_version
    c.take(32)?; // random
    c.vec8()?; // legacy_session_id
    c.vec16()?; // cipher_suites
    c.vec8()?; // legacy_compression_methods
    let mut hello = ClientHello {
        sni: None,
        ech: false,
    };
    if c.0.is_empty() {
        return Some(hello); // no extensions at all (TLS 1.0 style)
    }
    let mut exts = Cur(c.vec16()?);
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let data = exts.vec16()?;
        match kind {
            EXT_SERVER_NAME => hello.sni = server_name(data)?,
            EXT_ENCRYPTED_CLIENT_HELLO => hello.ech = true,
            _ => {}
        }
    }
    Some(hello)
}

/// The `host_name` of a `server_name` extension; `Some(None)` when it lists none,
/// `None` when it is malformed or the name is not a DNS name.
fn server_name(data: &[u8]) -> Option<Option<String>> {
    let mut c = Cur(data);
    let mut list = Cur(c.vec16()?);
    while !list.0.is_empty() {
        let kind = list.u8()?;
        let name = list.vec16()?;
        if kind == 0 {
            let name = std::str::from_utf8(name).ok()?;
            let name = name.strip_suffix('.').unwrap_or(name);
            let valid = !name.is_empty()
                && name.len() <= 253
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
            return valid.then(|| Some(name.to_ascii_lowercase()));
        }
    }
    Some(None)
}

fn inspect_http(buf: &[u8]) -> Inspection {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) if buf.len() < MAX_HTTP_HEAD => {
            // A method token so far and nothing else: it may still be HTTP.
            return Inspection::NeedMore;
        }
        _ => return Inspection::Other,
    }
    let from_header = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .and_then(|h| std::str::from_utf8(h.value).ok());
    let from_uri = req
        .path
        .and_then(|p| p.parse::<http::Uri>().ok())
        .and_then(|u| u.host().map(str::to_owned));
    let host = from_uri.or_else(|| from_header.map(strip_port)).map(|h| {
        let h = h.trim().trim_start_matches('[');
        let h = h.split(']').next().unwrap_or(h);
        h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase()
    });
    Inspection::Http {
        host: host.filter(|h| !h.is_empty()),
    }
}

/// `host:port` → `host`; `[v6]:port` → `[v6]`.
fn strip_port(h: &str) -> String {
    let h = h.trim();
    if h.starts_with('[') {
        return h
            .split(']')
            .next()
            .map(|s| format!("{s}]"))
            .unwrap_or_default();
    }
    match h.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host.to_owned(),
        _ => h.to_owned(),
    }
}

/// Why the first bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadFirstError {
    #[error("the client sent nothing that could be judged within {0:?}")]
    Timeout(Duration),
    #[error("the client closed the tunnel after {0} byte(s), before it could be judged")]
    Closed(usize),
    #[error("reading the tunnel's first bytes: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads a tunnel's first bytes into `buf` until [`inspect`] can tell (at most `max`
/// bytes, within `timeout`). The bytes stay in `buf`: forward them unchanged when allowed.
pub async fn read_first<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
    timeout: Duration,
) -> Result<Inspection, ReadFirstError> {
    let work = async {
        loop {
            let seen = inspect(buf);
            if seen != Inspection::NeedMore {
                return Ok(seen);
            }
            if buf.len() >= max {
                return Ok(Inspection::Other);
            }
            let start = buf.len();
            buf.resize(max.min(start + 4096), 0);
            let n = reader.read(&mut buf[start..]).await;
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    buf.truncate(start);
                    return Err(ReadFirstError::Io(e));
                }
            };
            buf.truncate(start + n);
            if n == 0 {
                return Err(ReadFirstError::Closed(start));
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(ReadFirstError::Timeout(timeout)))
}

#[cfg(test)]
#[path = "client_hello_tests.rs"]
mod tests;
