//! Destinations: a normalised host (name or IP literal) and a port, parsed from what a client
//! sent (CONNECT authority, absolute-form URI) or from a URL typed by a policy author.
//!
//! Normalisation rules, in order (see [`Host::parse`]):
//! 1. refuse empty input, more than [`MAX_INPUT_LEN`] bytes, control characters, whitespace
//!    and `%` (percent-encoding in a host is refused rather than decoded);
//! 2. `[…]` is an IPv6 literal (zone ids refused); a bare string containing `:` is tried as
//!    IPv6 too (authorities require brackets, see [`Destination::parse_authority`]);
//! 3. IDNA (UTS 46 mapping, which also lowercases) to punycode;
//! 4. strip ONE trailing dot; a second one is refused;
//! 5. if the last label is a number (all digits, or `0x` + hex digits) the whole host is an
//!    IPv4 address as `inet_aton` / the WHATWG URL standard read it (`0177.1`, `0x7f.1`,
//!    `2130706433`), or it is refused: it is never passed on as a name;
//! 6. names: labels of 1..=63 bytes of `a-z 0-9 - _`, no label starting or ending with `-`,
//!    at most 253 bytes in total. `_` is allowed because real hosts use it (SRV-style and
//!    some internal or CDN names) and it cannot confuse any parser downstream.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::Arc;

use serde::Serialize;

/// Longest raw host input looked at; anything longer is refused before IDNA runs.
pub const MAX_INPUT_LEN: usize = 1024;
/// Longest normalised name (RFC 1035, without the trailing dot).
pub const MAX_NAME_LEN: usize = 253;
/// Longest label (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

/// A destination host, normalised: a lowercase ASCII (punycode) name without trailing dot,
/// or an IP address in canonical form. An IP literal is never treated as a name. A name is
/// shared (`Arc`): a route's destination is cloned into every request's exit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Name(Arc<str>),
    Ip(IpAddr),
}

impl Host {
    /// Parses and normalises a host (see the module docs for the rules).
    pub fn parse(raw: &str) -> Result<Host, DestinationError> {
        if raw.is_empty() {
            return Err(DestinationError::Empty);
        }
        if raw.len() > MAX_INPUT_LEN {
            return Err(DestinationError::TooLong {
                input: shown(raw),
                len: raw.len(),
            });
        }
        if let Some(ch) = raw.chars().find(|c| c.is_control() || c.is_whitespace()) {
            return Err(DestinationError::InvalidChar {
                input: shown(raw),
                ch,
            });
        }
        if let Some(inner) = raw.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| DestinationError::BadIpv6 { input: shown(raw) })?;
            return parse_ipv6(inner, raw).map(|ip| Host::Ip(IpAddr::V6(ip)));
        }
        if raw.contains(':') {
            return parse_ipv6(raw, raw).map(|ip| Host::Ip(IpAddr::V6(ip)));
        }
        if raw.contains('%') {
            return Err(DestinationError::PercentEncoded { input: shown(raw) });
        }

        // Fast path: already-normal ASCII skips IDNA (most requests). `xn--` labels must be
        // validated by IDNA, so they take the slow path.
        let ascii: std::borrow::Cow<'_, str> = if is_plain_ascii(raw) {
            std::borrow::Cow::Borrowed(raw)
        } else {
            to_ascii(raw)?
        };

        let name = match ascii.strip_suffix('.') {
            Some(rest) if rest.ends_with('.') => {
                return Err(DestinationError::TrailingDots { input: shown(raw) })
            }
            Some(rest) => rest,
            None => &ascii,
        };
        if name.is_empty() {
            return Err(DestinationError::Empty);
        }

        let last = name.rsplit('.').next().unwrap_or(name);
        if ends_in_number(last) {
            return parse_ipv4(name)
                .map(|ip| Host::Ip(IpAddr::V4(ip)))
                .map_err(|reason| DestinationError::BadIpv4 {
                    input: shown(raw),
                    reason,
                });
        }

        check_name(name, raw)?;
        Ok(Host::Name(name.into()))
    }

    /// The name, if this host is one.
    pub fn as_name(&self) -> Option<&str> {
        match self {
            Host::Name(n) => Some(n),
            Host::Ip(_) => None,
        }
    }

    /// The address, if this host is an IP literal.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Ip(ip) => Some(*ip),
            Host::Name(_) => None,
        }
    }
}

impl FromStr for Host {
    type Err = DestinationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Host::parse(s)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

impl Serialize for Host {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A host and a port: where a request goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Destination {
    pub host: Host,
    pub port: u16,
}

impl Destination {
    /// Parses a CONNECT authority: `host:port` or `[v6]:port`; the port is required.
    pub fn parse_authority(s: &str) -> Result<Destination, DestinationError> {
        let (host, port) = split_authority(s)?;
        let port = port.ok_or_else(|| DestinationError::MissingPort { input: shown(s) })?;
        Ok(Destination {
            host: Host::parse(host)?,
            port: parse_port(port, s)?,
        })
    }

    /// Reads the scheme and destination of an absolute-form request URI (`http` or `https`
    /// only; default ports 80 and 443; userinfo refused).
    pub fn from_uri(uri: &http::Uri) -> Result<(Scheme, Destination), DestinationError> {
        let not_absolute = || DestinationError::NotAbsolute {
            input: shown(&uri.to_string()),
        };
        let scheme = uri.scheme_str().ok_or_else(not_absolute)?;
        let authority = uri.authority().ok_or_else(not_absolute)?;
        let scheme = Scheme::parse(scheme, &uri.to_string())?;
        Ok((
            scheme,
            Destination::with_default_port(authority.as_str(), scheme)?,
        ))
    }

    /// `host[:port]` with the scheme's default port when none is given.
    pub fn with_default_port(
        authority: &str,
        scheme: Scheme,
    ) -> Result<Destination, DestinationError> {
        let (host, port) = split_authority(authority)?;
        let port = match port {
            None | Some("") => scheme.default_port(),
            Some(p) => parse_port(p, authority)?,
        };
        Ok(Destination {
            host: Host::parse(host)?,
            port,
        })
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The schemes douane carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn parse(scheme: &str, input: &str) -> Result<Scheme, DestinationError> {
        if scheme.eq_ignore_ascii_case("http") {
            Ok(Scheme::Http)
        } else if scheme.eq_ignore_ascii_case("https") {
            Ok(Scheme::Https)
        } else {
            Err(DestinationError::UnsupportedScheme {
                input: shown(input),
                scheme: shown(scheme),
            })
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A URL as a policy author writes it (`douane explain`, `[[test]]`): scheme, destination and
/// path (without query or fragment, `/` when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub scheme: Scheme,
    pub destination: Destination,
    pub path: Box<str>,
}

impl Target {
    /// Parses `https://crm.example/login`; a URL without a scheme (`crm.example/login`) is
    /// read as `https://`, which is what a user typing a host name means today.
    pub fn parse_url(url: &str) -> Result<Target, DestinationError> {
        if url.is_empty() {
            return Err(DestinationError::Empty);
        }
        // Split by hand rather than with `http::Uri`, which refuses the Unicode host names
        // that a policy author may well type.
        if url.contains(|c: char| c.is_control() || c.is_whitespace()) {
            return Err(DestinationError::BadUrl {
                input: shown(url),
                detail: "it contains whitespace or a control character".into(),
            });
        }
        let (scheme, rest) = match url.split_once("://") {
            Some((scheme, rest)) => (Scheme::parse(scheme, url)?, rest),
            None => (Scheme::Https, url),
        };
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        Ok(Target {
            scheme,
            destination: Destination::with_default_port(authority, scheme)?,
            path: path.into(),
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.destination, self.path)
    }
}

/// Why a host, authority or URL was refused. Inputs in messages are escaped and truncated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("invalid destination `{0}`")]
    Invalid(String),
    #[error("empty host: give a name or an IP address")]
    Empty,
    #[error("host `{input}` is too long ({len} bytes, at most {MAX_INPUT_LEN} are read)")]
    TooLong { input: String, len: usize },
    #[error("invalid character {ch:?} in host `{input}`")]
    InvalidChar { input: String, ch: char },
    #[error("host `{input}` contains `%`: percent-encoding is not accepted in a host name")]
    PercentEncoded { input: String },
    #[error("host `{input}` is not a valid internationalised domain name (UTS 46)")]
    Idna { input: String },
    #[error("host `{input}` ends with more than one dot")]
    TrailingDots { input: String },
    #[error("host `{input}` has an empty label (two dots in a row, or a leading dot)")]
    EmptyLabel { input: String },
    #[error("host `{input}` has a label of {len} bytes (at most {MAX_LABEL_LEN})")]
    LabelTooLong { input: String, len: usize },
    #[error("host `{input}` is {len} bytes long (at most {MAX_NAME_LEN})")]
    NameTooLong { input: String, len: usize },
    #[error("host `{input}`: label `{label}` starts or ends with `-`")]
    BadHyphen { input: String, label: String },
    #[error("host `{input}` ends in a number, so it is read as an ipv4 address, but {reason}")]
    BadIpv4 { input: String, reason: &'static str },
    #[error("host `{input}` is not a valid ipv6 address")]
    BadIpv6 { input: String },
    #[error("host `{input}` carries an ipv6 zone id, which a proxy destination cannot use")]
    Ipv6Zone { input: String },
    #[error("authority `{input}`: an ipv6 address must be in brackets, as in `[::1]:443`")]
    Ipv6NeedsBrackets { input: String },
    #[error("authority `{input}` has no port: write `host:port`")]
    MissingPort { input: String },
    #[error("authority `{input}` has an invalid port `{port}` (1 to 65535)")]
    BadPort { input: String, port: String },
    #[error("authority `{input}` carries user information (`user@`), which is refused")]
    UserInfo { input: String },
    #[error("`{input}` is not an absolute http(s) uri (no scheme or no host)")]
    NotAbsolute { input: String },
    #[error("`{input}`: scheme `{scheme}` is not supported (use http or https)")]
    UnsupportedScheme { input: String, scheme: String },
    #[error("`{input}` is not a valid url: {detail}")]
    BadUrl { input: String, detail: String },
}

impl DestinationError {
    /// A stable label for metrics and logs.
    pub fn as_str(&self) -> &'static str {
        use DestinationError::*;
        match self {
            Invalid(_) => "invalid",
            Empty => "empty",
            TooLong { .. } => "too_long",
            InvalidChar { .. } => "invalid_char",
            PercentEncoded { .. } => "percent_encoded",
            Idna { .. } => "idna",
            TrailingDots { .. } => "trailing_dots",
            EmptyLabel { .. } => "empty_label",
            LabelTooLong { .. } => "label_too_long",
            NameTooLong { .. } => "name_too_long",
            BadHyphen { .. } => "bad_hyphen",
            BadIpv4 { .. } => "bad_ipv4",
            BadIpv6 { .. } => "bad_ipv6",
            Ipv6Zone { .. } => "ipv6_zone",
            Ipv6NeedsBrackets { .. } => "ipv6_needs_brackets",
            MissingPort { .. } => "missing_port",
            BadPort { .. } => "bad_port",
            UserInfo { .. } => "userinfo",
            NotAbsolute { .. } => "not_absolute",
            UnsupportedScheme { .. } => "unsupported_scheme",
            BadUrl { .. } => "bad_url",
        }
    }
}

/// Escapes and truncates untrusted input for an error message.
fn shown(s: &str) -> String {
    const MAX: usize = 100;
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out
}

/// Already normal: lowercase LDH/underscore/dots, and no `xn--` label needing validation.
fn is_plain_ascii(s: &str) -> bool {
    s.bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.'))
        && !s.starts_with("xn--")
        && !s.contains(".xn--")
}

fn to_ascii(raw: &str) -> Result<std::borrow::Cow<'_, str>, DestinationError> {
    use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
    // Hyphen and length rules are checked by `check_name` with our own messages; the URL deny
    // list keeps out what could split a URL, `_` stays allowed.
    Uts46::new()
        .to_ascii(
            raw.as_bytes(),
            AsciiDenyList::URL,
            Hyphens::Allow,
            DnsLength::Ignore,
        )
        .map_err(|_| DestinationError::Idna { input: shown(raw) })
}

fn check_name(name: &str, raw: &str) -> Result<(), DestinationError> {
    if name.len() > MAX_NAME_LEN {
        return Err(DestinationError::NameTooLong {
            input: shown(raw),
            len: name.len(),
        });
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(DestinationError::EmptyLabel { input: shown(raw) });
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(DestinationError::LabelTooLong {
                input: shown(raw),
                len: label.len(),
            });
        }
        if let Some(ch) = label
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
        {
            return Err(DestinationError::InvalidChar {
                input: shown(raw),
                ch,
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(DestinationError::BadHyphen {
                input: shown(raw),
                label: label.to_owned(),
            });
        }
    }
    Ok(())
}

fn parse_ipv6(inner: &str, raw: &str) -> Result<Ipv6Addr, DestinationError> {
    if inner.contains('%') {
        return Err(DestinationError::Ipv6Zone { input: shown(raw) });
    }
    Ipv6Addr::from_str(inner).map_err(|_| DestinationError::BadIpv6 { input: shown(raw) })
}

/// WHATWG URL "ends in a number": all ASCII digits, or `0x` followed by hex digits.
fn ends_in_number(label: &str) -> bool {
    if label.is_empty() {
        return false;
    }
    if label.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    label
        .strip_prefix("0x")
        .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// One part of an `inet_aton` address: decimal, octal (leading 0) or hex (`0x`).
fn ipv4_part(part: &str) -> Result<u64, &'static str> {
    if part.is_empty() {
        return Err("it has an empty part");
    }
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x") {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        return Ok(0); // "0x" alone is zero, as in WHATWG
    }
    let mut value: u64 = 0;
    for c in digits.chars() {
        let d = c
            .to_digit(radix)
            .ok_or("a part is not a decimal, octal (0…) or hex (0x…) number")?;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or("a part is out of range")?;
        if value > u64::from(u32::MAX) {
            return Err("a part is out of range");
        }
    }
    Ok(value)
}

/// `inet_aton`: `a`, `a.b`, `a.b.c`, `a.b.c.d`, the last part filling the remaining bytes.
fn parse_ipv4(name: &str) -> Result<Ipv4Addr, &'static str> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 4 {
        return Err("it has more than four parts");
    }
    let mut values = [0u64; 4];
    for (slot, part) in values.iter_mut().zip(&parts) {
        *slot = ipv4_part(part)?;
    }
    let n = parts.len();
    let (init, last) = values[..n].split_at(n - 1);
    if init.iter().any(|&v| v > 255) {
        return Err("a part other than the last is above 255");
    }
    let last = last.first().copied().unwrap_or(0);
    let room_bits = 8 * (5 - n as u32); // the last part fills 4 - (n - 1) bytes
    if last >= 1u64 << room_bits {
        return Err("its last part is out of range");
    }
    let mut addr = last;
    for (i, &v) in init.iter().enumerate() {
        addr |= v << (8 * (3 - i as u32));
    }
    u32::try_from(addr)
        .map(Ipv4Addr::from)
        .map_err(|_| "it is out of range")
}

/// Splits `host[:port]`, `[v6][:port]`; refuses userinfo and unbracketed IPv6.
fn split_authority(s: &str) -> Result<(&str, Option<&str>), DestinationError> {
    if s.is_empty() {
        return Err(DestinationError::Empty);
    }
    if s.contains('@') {
        return Err(DestinationError::UserInfo { input: shown(s) });
    }
    if s.starts_with('[') {
        let end = s
            .find(']')
            .ok_or_else(|| DestinationError::BadIpv6 { input: shown(s) })?;
        let (host, rest) = s.split_at(end + 1);
        return match rest {
            "" => Ok((host, None)),
            _ => match rest.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(DestinationError::BadIpv6 { input: shown(s) }),
            },
        };
    }
    match s.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => {
            Err(DestinationError::Ipv6NeedsBrackets { input: shown(s) })
        }
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((s, None)),
    }
}

fn parse_port(port: &str, input: &str) -> Result<u16, DestinationError> {
    let bad = || DestinationError::BadPort {
        input: shown(input),
        port: shown(port),
    };
    if port.is_empty() {
        return Err(DestinationError::MissingPort {
            input: shown(input),
        });
    }
    if port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(p) => Ok(p),
    }
}

#[cfg(test)]
#[path = "destination_tests.rs"]
mod tests;
