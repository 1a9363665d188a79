//! Validators of single values (country lists, ports, CIDRs, host patterns, methods,
//! paths, dates): each reports its own located errors and returns `None` on failure.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_spanned::Spanned;
use time::Date;

use crate::country::{Country, CountryOrGroup, CountrySet};
use crate::policy::decision::Reason;
use crate::policy::model::SpannedList;
use crate::policy::normal::HostPattern;
use crate::policy::parse::{At, Validator};

/// Methods a rule may name. `CONNECT` is not one: a tunnel shows no method to match.
pub(super) const METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
];

impl Validator {
    // ----- value validators: each reports its own errors and returns None on failure -----

    pub(super) fn countries(
        &mut self,
        at: &At<'_>,
        list: &SpannedList<String>,
        key: &str,
    ) -> Option<CountrySet> {
        if list.get_ref().is_empty() {
            self.err(at, list.span(), format!("`{key}` is empty, which would allow nothing; list codes or groups (EU, EEA, EU_ADEQUACY)"));
            return None;
        }
        let mut items = Vec::new();
        let mut ok = true;
        for item in list.get_ref() {
            match CountryOrGroup::parse(item.get_ref().trim()) {
                Ok(c) => items.push(c),
                Err(e) => {
                    ok = false;
                    self.err(
                        at,
                        item.span(),
                        format!("{e}; groups are EU, EEA and EU_ADEQUACY"),
                    );
                }
            }
        }
        ok.then(|| items.iter().collect())
    }

    pub(super) fn country(&mut self, at: &At<'_>, code: &Spanned<String>) -> Option<Country> {
        match Country::parse(code.get_ref().trim()) {
            Ok(c) => Some(c),
            Err(e) => {
                self.err(
                    at,
                    code.span(),
                    format!("{e}; a network entry takes a single country, not a group"),
                );
                None
            }
        }
    }

    /// A non-empty list whose items all parse: sorted, without duplicates. Every bad item is
    /// reported at its own place, and an empty list at the key (`what` says what to list).
    fn each<S, T: Ord>(
        &mut self,
        at: &At<'_>,
        list: &SpannedList<S>,
        key: &str,
        what: &str,
        parse: impl Fn(&S) -> Result<T, String>,
    ) -> Option<Vec<T>> {
        if list.get_ref().is_empty() {
            self.err(
                at,
                list.span(),
                format!("`{key}` is empty, which matches nothing; list {what} or remove the key"),
            );
            return None;
        }
        let mut out = Vec::with_capacity(list.get_ref().len());
        let mut ok = true;
        for item in list.get_ref() {
            match parse(item.get_ref()) {
                Ok(value) => out.push(value),
                Err(message) => {
                    ok = false;
                    self.err(at, item.span(), message);
                }
            }
        }
        out.sort();
        out.dedup();
        ok.then_some(out)
    }

    pub(super) fn ports(
        &mut self,
        at: &At<'_>,
        list: &SpannedList<i64>,
        key: &str,
    ) -> Option<Vec<u16>> {
        self.each(at, list, key, "ports", |p| match u16::try_from(*p) {
            Ok(port) if port != 0 => Ok(port),
            _ => Err(format!("port {p} is out of range (1 to 65535)")),
        })
    }

    pub(super) fn cidr(&mut self, at: &At<'_>, text: &Spanned<String>) -> Option<IpNet> {
        match parse_cidr(text.get_ref().trim()) {
            Ok(net) => Some(net),
            Err(message) => {
                self.err(at, text.span(), message);
                None
            }
        }
    }

    pub(super) fn cidrs(
        &mut self,
        at: &At<'_>,
        list: &SpannedList<String>,
        key: &str,
    ) -> Option<Vec<IpNet>> {
        self.each(at, list, key, "CIDRs", |c| parse_cidr(c.trim()))
    }

    pub(super) fn hosts(
        &mut self,
        at: &At<'_>,
        list: &SpannedList<String>,
    ) -> Option<Vec<HostPattern>> {
        self.each(at, list, "hosts", "hosts", |h| parse_host_pattern(h))
    }

    pub(super) fn methods(
        &mut self,
        at: &At<'_>,
        list: &SpannedList<String>,
    ) -> Option<Vec<Box<str>>> {
        self.each(at, list, "methods", "methods", |m| {
            let upper = m.trim().to_ascii_uppercase();
            if METHODS.contains(&upper.as_str()) {
                return Ok(upper.into_boxed_str());
            }
            let hint = if upper == "CONNECT" {
                "a CONNECT tunnel shows no method or path; drop `methods` to match tunnels"
                    .to_owned()
            } else {
                format!("use one of {}", METHODS.join(", "))
            };
            Err(format!("unknown HTTP method `{m}`; {hint}"))
        })
    }

    pub(super) fn paths(
        &mut self,
        at: &At<'_>,
        list: &SpannedList<String>,
    ) -> Option<Vec<Box<str>>> {
        self.each(at, list, "paths", "path prefixes", |path| {
            if path.starts_with('/')
                && !path.contains(['?', '#'])
                && !path.chars().any(char::is_whitespace)
            {
                Ok(path.as_str().into())
            } else {
                Err(format!("path `{path}` must start with `/` and hold no query, fragment or space (it is a prefix of the request path)"))
            }
        })
    }

    pub(super) fn date(
        &mut self,
        at: &At<'_>,
        d: &Spanned<toml::value::Datetime>,
        key: &str,
    ) -> Option<Date> {
        let value = d.get_ref();
        let date = match (value.date, value.time, value.offset) {
            (Some(date), None, None) => time::Month::try_from(date.month)
                .ok()
                .and_then(|m| Date::from_calendar_date(i32::from(date.year), m, date.day).ok()),
            _ => None,
        };
        if date.is_none() {
            self.err(
                at,
                d.span(),
                format!("`{key}` must be a date without time, e.g. {key} = 2027-06-30"),
            );
        }
        date
    }
}

/// `Some(list)` stays a list; no key means an empty list ("any").
pub(super) fn opt<T>(v: Option<Option<Vec<T>>>) -> Vec<T> {
    v.flatten().unwrap_or_default()
}

pub(super) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A CIDR, or a bare address meaning that one address. Host bits must be zero, so that
/// `10.0.0.1/8` (probably a typo) is not silently read as `10.0.0.0/8`.
pub(crate) fn parse_cidr(text: &str) -> Result<IpNet, String> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    let net: IpNet = text.parse().map_err(|_| {
        format!("`{text}` is not a CIDR (e.g. \"10.0.0.0/8\" or \"2001:db8::/32\")")
    })?;
    if net.trunc() != net {
        return Err(format!(
            "`{text}` has host bits set; did you mean `{}`?",
            net.trunc()
        ));
    }
    Ok(net)
}

/// Normalises a name the way destinations are: lowercase, no trailing dot, IDNA to
/// punycode; then checks that what is left is a DNS name.
pub(crate) fn normalise_name(name: &str) -> Result<String, String> {
    let trimmed = name.strip_suffix('.').unwrap_or(name).to_lowercase();
    let ascii = idna::domain_to_ascii(&trimmed)
        .map_err(|_| format!("`{name}` is not a valid host name"))?;
    let labels_ok = !ascii.is_empty()
        && ascii.len() <= 253
        && ascii.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if labels_ok {
        Ok(ascii)
    } else {
        Err(format!("`{name}` is not a valid host name"))
    }
}

/// `crm.example`, `*.example.org` (any name below, not the apex) or an IP literal.
pub(crate) fn parse_host_pattern(text: &str) -> Result<HostPattern, String> {
    let text = text.trim();
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(HostPattern::Ip(crate::policy::compile::canonical_ip(ip)));
    }
    let bad_wildcard = || {
        format!("host pattern `{text}`: `*` is allowed only as the whole first label, as in `*.example.org`")
    };
    if let Some(suffix) = text.strip_prefix("*.") {
        if suffix.is_empty() || suffix.contains('*') {
            return Err(bad_wildcard());
        }
        let suffix = normalise_name(suffix).map_err(|e| format!("host pattern `{text}`: {e}"))?;
        return Ok(HostPattern::Suffix(suffix.into_boxed_str()));
    }
    if text.contains('*') {
        return Err(bad_wildcard());
    }
    if text.contains([':', '/']) {
        return Err(format!("host pattern `{text}` must be a bare host name; ports and paths go in `ports` and `paths`"));
    }
    if crate::policy::cases::looks_numeric(text) {
        return Err(format!("host pattern `{text}` is a short or hex IPv4 form, which douane refuses as a destination; write the address in full (`a.b.c.d`)"));
    }
    let name = normalise_name(text).map_err(|e| format!("host pattern: {e}"))?;
    Ok(HostPattern::Exact(name.into_boxed_str()))
}

pub(super) fn reason_by_name(name: &str) -> Option<Reason> {
    Reason::ALL.into_iter().find(|r| r.as_str() == name)
}
