//! One audit record: the request facts and decision it is made of ([`AuditEvent`]), how its
//! body is serialised (untrusted values escaped by serde_json and cut when too long, the client
//! pseudonymised, the path redacted), and how a written line reads back ([`StoredRecord`]).
//!
//! A line is `{"ts":…,"seq":…,` + body + `,"prev":…,"hash":…}`: the writer adds the chain
//! fields, so the body can be serialised by the caller, off the writer's critical section.

use std::fmt;
use std::net::IpAddr;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize, Serializer};
use sha2::Sha256;

use crate::country::Country;
use crate::geo::SpecialRange;
use crate::policy::decision::{Decision, IpVerdict, Note};

use super::config::{AuditConfig, ClientMode, PathMode};
use super::AuditError;

/// The facts of one request and its decision: what a record is made of.
#[derive(Debug, Clone, Copy)]
pub struct AuditEvent<'a> {
    /// The request id, the same as the 451's header.
    pub request_id: &'a str,
    /// The listener's name.
    pub listener: &'a str,
    pub client: IpAddr,
    /// `None` for a CONNECT tunnel whose inner requests douane does not see.
    pub method: Option<&'a str>,
    /// `http` or `https`.
    pub scheme: &'a str,
    pub host: &'a str,
    pub port: u16,
    /// `None` when douane does not see it (CONNECT). Without the query string.
    pub path: Option<&'a str>,
    /// The query string (without its `?`): written with `path_mode = "as_is"` only.
    pub query: Option<&'a str>,
    /// The parent proxy hop the request went (or would go) through.
    pub upstream_via: Option<&'a str>,
    pub decision: &'a Decision,
}

/// The facts of a request's context that [`AuditEvent`] does not carry: all optional,
/// written only when known. The proxy fills the ones known at its audit gate (route,
/// requested host, SNI, exemption, ranges' version) in the gate record; the facts of the end
/// (status, connected address, bytes, duration) go in the end record ([`AuditEnd`]).
/// `AuditLog::record` writes a record without them.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditDetails<'a> {
    /// The address douane actually connected to (upstream or parent proxy).
    pub connected: Option<std::net::SocketAddr>,
    /// The final HTTP status the client got (a 503 when the record could not be written).
    pub status: Option<u16>,
    /// Body bytes from the client towards the upstream.
    pub bytes_from_client: Option<u64>,
    /// Body bytes from the upstream towards the client.
    pub bytes_to_client: Option<u64>,
    /// From the request head read to the response's end, in microseconds.
    pub duration_us: Option<u64>,
    /// The reverse route's name.
    pub route: Option<&'a str>,
    /// The host the client asked for (`Host` or the request target's authority), which a
    /// reverse route may map to another upstream host.
    pub requested_host: Option<&'a str>,
    /// The TLS server name the client sent.
    pub sni: Option<&'a str>,
    /// The exemption that let the request through, when one did.
    pub exemption: Option<ExemptionFacts<'a>>,
    /// The version of the published ranges (cloud providers' own lists) that decided, once
    /// they exist.
    pub ranges_version: Option<&'a str>,
    /// A request decided inside a CONNECT tunnel: the CONNECT's request id.
    pub tunnel: Option<&'a str>,
    /// Why a tunnel's first bytes named nothing that could be checked (`no_sni`, `ech`, …).
    pub first_bytes: Option<&'a str>,
}

/// The end of a request whose gate record was written: what the client got, where the
/// request went, how much and how long. Written by the proxy's single exit as a record of
/// its own, `"event":"end"`, linked to the gate record by `request_id`.
#[derive(Debug, Clone, Copy)]
pub struct AuditEnd<'a> {
    pub request_id: &'a str,
    /// The gate record's outcome, repeated: retention treats both records alike.
    pub outcome: crate::policy::Outcome,
    /// The status actually written to the client (`0`: none, the client went away).
    pub status: u16,
    /// The address douane actually connected to (upstream or parent proxy).
    pub connected: Option<std::net::SocketAddr>,
    pub bytes_from_client: Option<u64>,
    pub bytes_to_client: Option<u64>,
    /// From the request head read to this exit, in microseconds.
    pub duration_us: u64,
    /// A TLS server name seen only after the gate (inside a tunnel).
    pub sni: Option<&'a str>,
    /// A CONNECT whose tunnel's first bytes named nothing that could be checked: why.
    pub first_bytes: Option<&'a str>,
    /// A CONNECT whose tunnel douane's stop cut: the bytes each way are not known.
    pub cut: bool,
}

#[derive(Serialize)]
struct EndBody<'a> {
    event: &'static str,
    request_id: Clip<'a>,
    outcome: &'static str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    connected: Option<std::net::SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_from_client: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_to_client: Option<u64>,
    duration_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<Clip<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_bytes: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cut: bool,
}

/// The `event` of a request's end record.
pub const END: &str = "end";

/// An exemption as the record keeps it: why, under which ticket, until when.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ExemptionFacts<'a> {
    pub id: &'a str,
    pub justification: Option<&'a str>,
    pub ticket: Option<&'a str>,
    /// RFC 3339.
    pub expires: Option<&'a str>,
}

/// Serialises record bodies under one configuration; cheap to share (`Arc`) between callers.
#[derive(Clone)]
pub struct RecordEncoder {
    client: ClientEncoding,
    path_mode: PathMode,
    max_field_bytes: usize,
}

#[derive(Clone)]
enum ClientEncoding {
    AsIs,
    /// Keyed once at load; cloned per record (no re-keying on the hot path).
    Hmac(Box<Hmac<Sha256>>),
}

impl fmt::Debug for RecordEncoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordEncoder")
            .field(
                "client",
                &match self.client {
                    ClientEncoding::AsIs => "as_is",
                    ClientEncoding::Hmac(_) => "pseudonymise",
                },
            )
            .field("path_mode", &self.path_mode)
            .field("max_field_bytes", &self.max_field_bytes)
            .finish()
    }
}

/// Shortest HMAC key accepted from `hmac_key_file`.
pub const MIN_HMAC_KEY_BYTES: usize = 16;

impl RecordEncoder {
    /// Builds the encoder, reading the HMAC key file when the client is pseudonymised.
    pub fn new(config: &AuditConfig) -> Result<Self, AuditError> {
        let client = match (config.client, &config.hmac_key_file) {
            (ClientMode::AsIs, _) => ClientEncoding::AsIs,
            (ClientMode::Pseudonymise, None) => {
                return Err(AuditError::Config {
                    detail: "audit.client = \"pseudonymise\" needs audit.hmac_key_file".into(),
                })
            }
            (ClientMode::Pseudonymise, Some(path)) => {
                let key = std::fs::read(path).map_err(|e| AuditError::KeyFile {
                    path: path.clone(),
                    detail: e.to_string(),
                })?;
                ClientEncoding::Hmac(Box::new(hmac_from_key(&key).map_err(|detail| {
                    AuditError::KeyFile {
                        path: path.clone(),
                        detail,
                    }
                })?))
            }
        };
        Ok(RecordEncoder {
            client,
            path_mode: config.path_mode,
            max_field_bytes: config.max_field_bytes.max(1),
        })
    }

    /// Appends the body of a record (a JSON object, braces included) to `out`.
    pub fn encode_body(&self, event: &AuditEvent<'_>, out: &mut Vec<u8>) {
        self.encode_body_with(event, &AuditDetails::default(), out);
    }

    /// Like [`RecordEncoder::encode_body`], with the facts of the request's end.
    pub fn encode_body_with(
        &self,
        event: &AuditEvent<'_>,
        details: &AuditDetails<'_>,
        out: &mut Vec<u8>,
    ) {
        let max = self.max_field_bytes;
        fn clip(s: &str, max: usize) -> Clip<'_> {
            Clip { s, max }
        }
        let d = event.decision;
        let path = match self.path_mode {
            PathMode::AsIs => event.path,
            PathMode::Redact => event.path.map(redact_path),
            PathMode::Drop => None,
        };
        let body = Body {
            request_id: clip(event.request_id, max),
            listener: clip(event.listener, max),
            client: ClientField {
                ip: event.client.to_canonical(),
                enc: &self.client,
            },
            method: event.method.map(|s| clip(s, max)),
            scheme: clip(event.scheme, max),
            host: clip(event.host, max),
            port: event.port,
            path: path.map(|s| clip(s, max)),
            query: match self.path_mode {
                PathMode::AsIs => event.query.map(|s| clip(s, max)),
                PathMode::Redact | PathMode::Drop => None,
            },
            via: event.upstream_via.map(|s| clip(s, max)),
            outcome: d.outcome.as_str(),
            reason: d.reason.as_str(),
            rule: d.rule.as_deref().map(|s| clip(s, max)),
            policy: clip(&d.provenance.policy_name, max),
            policy_version: clip(&d.provenance.policy_version, max),
            mode: d.mode.as_str(),
            ips: Ips { ips: &d.ips, max },
            notes: &d.notes,
            country_db_built: d.provenance.country_db_built.as_deref(),
            asn_db_built: d.provenance.asn_db_built.as_deref(),
            registry_version: &d.provenance.registry_version,
            ranges_version: details.ranges_version.map(|s| clip(s, max)),
            connected: details.connected,
            status: details.status,
            bytes_from_client: details.bytes_from_client,
            bytes_to_client: details.bytes_to_client,
            duration_us: details.duration_us,
            route: details.route.map(|s| clip(s, max)),
            requested_host: details.requested_host.map(|s| clip(s, max)),
            sni: details.sni.map(|s| clip(s, max)),
            exemption: details.exemption.map(|e| ExemptionClip { e, max }),
            tunnel: details.tunnel.map(|s| clip(s, max)),
            first_bytes: details.first_bytes,
        };
        // Serialising borrowed strings and numbers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &body);
    }

    /// Appends the body of a request's end record (see [`AuditEnd`]) to `out`.
    pub fn encode_end(&self, end: &AuditEnd<'_>, out: &mut Vec<u8>) {
        let max = self.max_field_bytes;
        let body = EndBody {
            event: END,
            request_id: Clip {
                s: end.request_id,
                max,
            },
            outcome: end.outcome.as_str(),
            status: end.status,
            connected: end.connected,
            bytes_from_client: end.bytes_from_client,
            bytes_to_client: end.bytes_to_client,
            duration_us: end.duration_us,
            sni: end.sni.map(|s| Clip { s, max }),
            first_bytes: end.first_bytes,
            cut: end.cut,
        };
        let _ = serde_json::to_writer(&mut *out, &body);
    }

    /// The body of the record the writer adds when it starts a new chain segment.
    pub fn encode_restart(detail: &str, out: &mut Vec<u8>) {
        #[derive(Serialize)]
        struct Restart<'a> {
            event: &'static str,
            detail: &'a str,
        }
        let _ = serde_json::to_writer(
            &mut *out,
            &Restart {
                event: CHAIN_RESTART,
                detail,
            },
        );
    }
}

/// The `event` of the record that restarts the chain after a corrupt tail.
pub const CHAIN_RESTART: &str = "chain_restart";

fn hmac_from_key(raw: &[u8]) -> Result<Hmac<Sha256>, String> {
    let key = raw.strip_suffix(b"\n").unwrap_or(raw);
    let key = key.strip_suffix(b"\r").unwrap_or(key);
    if key.len() < MIN_HMAC_KEY_BYTES {
        return Err(format!(
            "the key is {} bytes: give at least {MIN_HMAC_KEY_BYTES} random bytes (e.g. `head -c 32 /dev/urandom | base64`)",
            key.len()
        ));
    }
    Hmac::<Sha256>::new_from_slice(key).map_err(|e| e.to_string())
}

/// The path without query string or fragment.
fn redact_path(path: &str) -> &str {
    match path.find(['?', '#']) {
        Some(i) => &path[..i],
        None => path,
    }
}

#[derive(Serialize)]
struct Body<'a> {
    request_id: Clip<'a>,
    listener: Clip<'a>,
    client: ClientField<'a>,
    method: Option<Clip<'a>>,
    scheme: Clip<'a>,
    host: Clip<'a>,
    port: u16,
    path: Option<Clip<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    query: Option<Clip<'a>>,
    via: Option<Clip<'a>>,
    outcome: &'static str,
    reason: &'static str,
    rule: Option<Clip<'a>>,
    policy: Clip<'a>,
    policy_version: Clip<'a>,
    mode: &'static str,
    ips: Ips<'a>,
    /// What the policy author should know (an exemption that expired, …); absent when none.
    #[serde(skip_serializing_if = "<[Note]>::is_empty")]
    notes: &'a [Note],
    /// Provenance of the state that decided, beyond the policy: the databases' build times
    /// and the operator registry's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    country_db_built: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    asn_db_built: Option<&'a str>,
    registry_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ranges_version: Option<Clip<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connected: Option<std::net::SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_from_client: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_to_client: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    route: Option<Clip<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requested_host: Option<Clip<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<Clip<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exemption: Option<ExemptionClip<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tunnel: Option<Clip<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_bytes: Option<&'a str>,
}

/// An exemption's untrusted texts, cut like the other fields.
struct ExemptionClip<'a> {
    e: ExemptionFacts<'a>,
    max: usize,
}

impl Serialize for ExemptionClip<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Out<'a> {
            id: Clip<'a>,
            justification: Option<Clip<'a>>,
            ticket: Option<Clip<'a>>,
            expires: Option<Clip<'a>>,
        }
        let max = self.max;
        let c = |s| Clip { s, max };
        Out {
            id: c(self.e.id),
            justification: self.e.justification.map(c),
            ticket: self.e.ticket.map(c),
            expires: self.e.expires.map(c),
        }
        .serialize(ser)
    }
}

/// An untrusted string, cut at a char boundary past `max` bytes, the cut marked.
#[derive(Clone, Copy)]
struct Clip<'a> {
    s: &'a str,
    max: usize,
}

impl Serialize for Clip<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        if self.s.len() <= self.max {
            return ser.serialize_str(self.s);
        }
        let mut cut = self.max;
        while !self.s.is_char_boundary(cut) {
            cut -= 1;
        }
        // collect_str streams through serde_json's escaper: no intermediate String.
        ser.collect_str(&Cut {
            kept: &self.s[..cut],
            dropped: self.s.len() - cut,
        })
    }
}

struct Cut<'a> {
    kept: &'a str,
    dropped: usize,
}

impl fmt::Display for Cut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…[truncated {} bytes]", self.kept, self.dropped)
    }
}

struct ClientField<'a> {
    ip: IpAddr,
    enc: &'a ClientEncoding,
}

impl Serialize for ClientField<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match self.enc {
            ClientEncoding::AsIs => ser.collect_str(&self.ip),
            ClientEncoding::Hmac(mac) => {
                let mut mac = (**mac).clone();
                let mut text = [0u8; 64];
                let n = {
                    use std::io::Write;
                    let mut cursor = std::io::Cursor::new(&mut text[..]);
                    let _ = write!(cursor, "{}", self.ip);
                    cursor.position() as usize
                };
                mac.update(&text[..n]);
                let tag = mac.finalize().into_bytes();
                let mut hex_tag = [0u8; 64];
                let _ = hex::encode_to_slice(tag, &mut hex_tag);
                ser.serialize_str(std::str::from_utf8(&hex_tag).unwrap_or(""))
            }
        }
    }
}

struct Ips<'a> {
    ips: &'a [IpVerdict],
    max: usize,
}

#[derive(Serialize)]
struct IpEntry<'a> {
    ip: IpAddr,
    special: Option<SpecialRange>,
    location: Option<Country>,
    asn: Option<u32>,
    as_org: Option<Clip<'a>>,
    operator: Option<Clip<'a>>,
    jurisdiction: Option<Country>,
    violation: Option<&'static str>,
}

impl Serialize for Ips<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let max = self.max;
        ser.collect_seq(self.ips.iter().map(|v| {
            let c = &v.class;
            IpEntry {
                ip: c.ip,
                special: c.special,
                location: c.location,
                asn: c.asn,
                as_org: c.as_org.as_deref().map(|s| Clip { s, max }),
                operator: c.operator.as_deref().map(|s| Clip { s, max }),
                jurisdiction: c.jurisdiction,
                violation: v.reason().map(|r| r.as_str()),
            }
        }))
    }
}

/// A record as read back from a line. Every request field is optional so that a
/// `chain_restart` record reads too.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct StoredRecord {
    pub ts: String,
    pub seq: u64,
    /// `None` for a request record; `Some("chain_restart")` for a restart.
    pub event: Option<String>,
    pub detail: Option<String>,
    pub request_id: Option<String>,
    pub listener: Option<String>,
    pub client: Option<String>,
    pub method: Option<String>,
    pub scheme: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<String>,
    #[serde(default)]
    pub query: Option<String>,
    pub via: Option<String>,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub rule: Option<String>,
    pub policy: Option<String>,
    pub policy_version: Option<String>,
    pub mode: Option<String>,
    #[serde(default)]
    pub ips: Vec<StoredIp>,
    #[serde(default)]
    pub country_db_built: Option<String>,
    #[serde(default)]
    pub asn_db_built: Option<String>,
    #[serde(default)]
    pub registry_version: Option<String>,
    #[serde(default)]
    pub ranges_version: Option<String>,
    #[serde(default)]
    pub connected: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub bytes_from_client: Option<u64>,
    #[serde(default)]
    pub bytes_to_client: Option<u64>,
    #[serde(default)]
    pub duration_us: Option<u64>,
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default)]
    pub requested_host: Option<String>,
    #[serde(default)]
    pub sni: Option<String>,
    #[serde(default)]
    pub exemption: Option<StoredExemption>,
    /// A request decided inside a tunnel: the CONNECT's request id.
    #[serde(default)]
    pub tunnel: Option<String>,
    /// Why a tunnel's first bytes named nothing that could be checked.
    #[serde(default)]
    pub first_bytes: Option<String>,
    /// The `event` a pruned record had before (`end` for an end record), when it had one.
    #[serde(default)]
    pub of: Option<String>,
    /// The Merkle leaf hash (base64) a pruned record keeps in place of its content.
    #[serde(default)]
    pub leaf: Option<String>,
    pub prev: String,
    pub hash: String,
}

/// The exemption facts of a [`StoredRecord`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct StoredExemption {
    pub id: String,
    pub justification: Option<String>,
    pub ticket: Option<String>,
    pub expires: Option<String>,
}

impl StoredRecord {
    pub fn is_restart(&self) -> bool {
        self.event.as_deref() == Some(CHAIN_RESTART)
    }

    /// A request's end record (pruned or not): its request is counted by its gate record.
    pub fn is_end(&self) -> bool {
        match self.event.as_deref() {
            Some(END) => true,
            Some(PRUNED) => self.of.as_deref() == Some(END),
            _ => false,
        }
    }

    /// A request's gate record (not a restart, not an end), pruned or not.
    pub fn is_request(&self) -> bool {
        !self.is_restart() && !self.is_end()
    }

    /// A record whose content retention removed: only `ts`, `seq`, `outcome`, its Merkle
    /// leaf hash and its chain fields remain.
    pub fn is_pruned(&self) -> bool {
        self.event.as_deref() == Some(PRUNED)
    }
}

/// The `event` of a record whose content was removed by retention.
pub const PRUNED: &str = "pruned";

/// One address of a [`StoredRecord`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct StoredIp {
    pub ip: String,
    pub special: Option<String>,
    pub location: Option<String>,
    pub asn: Option<u32>,
    pub as_org: Option<String>,
    pub operator: Option<String>,
    pub jurisdiction: Option<String>,
    pub violation: Option<String>,
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::geo::{Classification, Origin};
    use crate::policy::decision::{Mode, Outcome, Provenance, Reason, Violation};

    /// A block of one US-operated address, built by hand.
    pub(crate) fn block_decision() -> Decision {
        let us = Country::parse("US").expect("US");
        let fr = Country::parse("FR").expect("FR");
        Decision {
            outcome: Outcome::Block,
            reason: Reason::OperatorNotAllowed,
            rule: Some(Arc::from("default")),
            mode: Mode::Enforce,
            ips: vec![IpVerdict {
                class: Classification {
                    ip: "203.0.113.10".parse().expect("ip"),
                    special: None,
                    network: None,
                    location: Some(fr),
                    location_origin: Origin::Database,
                    asn: Some(16509),
                    as_org: Some("AMAZON-02".into()),
                    operator: Some(Arc::from("Amazon")),
                    jurisdiction: Some(us),
                    operator_origin: Origin::Registry,
                    published: None,
                },
                violation: Some(Violation::OperatorNotAllowed { jurisdiction: us }),
            }],
            connect: vec![],
            notes: vec![],
            provenance: Arc::new(Provenance {
                policy_name: Arc::from("collectivite"),
                policy_version: Arc::from("2026-03-01"),
                country_db_built: None,
                asn_db_built: None,
                registry_version: Arc::from("1"),
                published: None,
            }),
        }
    }

    pub(crate) fn event<'a>(
        d: &'a Decision,
        host: &'a str,
        path: Option<&'a str>,
    ) -> AuditEvent<'a> {
        AuditEvent {
            request_id: "req-1",
            listener: "forward",
            client: "192.0.2.7".parse().expect("ip"),
            method: Some("GET"),
            scheme: "https",
            host,
            port: 443,
            path,
            query: None,
            upstream_via: None,
            decision: d,
        }
    }

    fn encode(enc: &RecordEncoder, e: &AuditEvent<'_>) -> serde_json::Value {
        let mut out = Vec::new();
        enc.encode_body(e, &mut out);
        assert!(!out.contains(&b'\n'), "one line");
        serde_json::from_slice(&out).expect("valid JSON")
    }

    #[test]
    fn body_has_every_field_in_order() {
        let d = block_decision();
        let enc = RecordEncoder::new(&AuditConfig::default()).expect("encoder");
        let mut out = Vec::new();
        enc.encode_body(&event(&d, "crm.example", Some("/login?u=1")), &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.starts_with(r#"{"request_id":"req-1","listener":"forward","client":"192.0.2.7","method":"GET","scheme":"https","host":"crm.example","port":443,"path":"/login?u=1","via":null,"outcome":"block","reason":"operator_not_allowed","rule":"default","policy":"collectivite","policy_version":"2026-03-01","mode":"enforce","ips":[{"ip":"203.0.113.10","special":null,"location":"FR","asn":16509,"as_org":"AMAZON-02","operator":"Amazon","jurisdiction":"US","violation":"operator_not_allowed"}],"registry_version":"1"}"#), "{text}");
    }

    #[test]
    fn the_facts_of_the_end_and_the_provenance_are_written_when_known() {
        let mut d = block_decision();
        d.provenance = Arc::new(Provenance {
            country_db_built: Some(Arc::from("2026-02-01T00:00:00Z")),
            asn_db_built: Some(Arc::from("2026-02-02T00:00:00Z")),
            ..(*d.provenance).clone()
        });
        let enc = RecordEncoder::new(&AuditConfig::default()).expect("encoder");
        let details = AuditDetails {
            connected: Some("203.0.113.10:443".parse().expect("addr")),
            status: Some(451),
            bytes_from_client: Some(12),
            bytes_to_client: Some(345),
            duration_us: Some(6789),
            route: Some("crm"),
            requested_host: Some("crm.mairie.example"),
            sni: Some("crm.mairie.example"),
            exemption: Some(ExemptionFacts {
                id: "visio",
                justification: Some("marché 2026-12"),
                ticket: Some("DSI-42"),
                expires: Some("2026-06-30T00:00:00Z"),
            }),
            ranges_version: Some("2026-03-01"),
            tunnel: Some("req-0"),
            first_bytes: Some("no_sni"),
        };
        let mut out = Vec::new();
        enc.encode_body_with(&event(&d, "h", Some("/a?q=1")), &details, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["path"], "/a?q=1", "as_is keeps the query string");
        assert_eq!(v["country_db_built"], "2026-02-01T00:00:00Z");
        assert_eq!(v["asn_db_built"], "2026-02-02T00:00:00Z");
        assert_eq!(v["registry_version"], "1");
        assert_eq!(v["ranges_version"], "2026-03-01");
        assert_eq!(v["connected"], "203.0.113.10:443");
        assert_eq!(v["status"], 451);
        assert_eq!(
            (
                v["bytes_from_client"].as_u64(),
                v["bytes_to_client"].as_u64()
            ),
            (Some(12), Some(345))
        );
        assert_eq!(v["duration_us"], 6789);
        assert_eq!(v["route"], "crm");
        assert_eq!(v["requested_host"], "crm.mairie.example");
        assert_eq!(v["sni"], "crm.mairie.example");
        assert_eq!(v["exemption"]["ticket"], "DSI-42");
        assert_eq!(v["exemption"]["justification"], "marché 2026-12");
        assert_eq!(
            (&v["tunnel"], &v["first_bytes"]),
            (&serde_json::json!("req-0"), &serde_json::json!("no_sni"))
        );
        let stored: StoredRecord = serde_json::from_value(serde_json::json!({
            "ts": "t", "seq": 0, "prev": "p", "hash": "h",
            "status": 451, "exemption": v["exemption"].clone(), "connected": "203.0.113.10:443"
        }))
        .expect("reads back");
        assert_eq!(stored.status, Some(451));
        assert_eq!(stored.exemption.map(|e| e.id), Some("visio".to_owned()));
        let redact = RecordEncoder::new(&AuditConfig {
            path_mode: PathMode::Redact,
            ..AuditConfig::default()
        })
        .expect("encoder");
        let mut out = Vec::new();
        redact.encode_body_with(&event(&d, "h", Some("/a?q=1")), &details, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        assert_eq!(v["path"], "/a", "redact drops the query string");
    }

    #[test]
    fn the_query_is_its_own_field_kept_only_as_is() {
        let d = block_decision();
        for (mode, path, query) in [
            (
                PathMode::AsIs,
                serde_json::json!("/a"),
                serde_json::json!("q=1&t=s"),
            ),
            (
                PathMode::Redact,
                serde_json::json!("/a"),
                serde_json::Value::Null,
            ),
            (
                PathMode::Drop,
                serde_json::Value::Null,
                serde_json::Value::Null,
            ),
        ] {
            let enc = RecordEncoder::new(&AuditConfig {
                path_mode: mode,
                ..AuditConfig::default()
            })
            .expect("encoder");
            let mut e = event(&d, "h", Some("/a"));
            e.query = Some("q=1&t=s");
            let v = encode(&enc, &e);
            assert_eq!((&v["path"], &v["query"]), (&path, &query), "{mode:?}");
        }
    }

    #[test]
    fn an_end_record_links_to_its_gate_by_request_id_and_is_not_a_request() {
        let enc = RecordEncoder::new(&AuditConfig::default()).expect("encoder");
        let mut out = Vec::new();
        enc.encode_end(
            &AuditEnd {
                request_id: "req-1",
                outcome: crate::policy::Outcome::Block,
                status: 451,
                connected: None,
                bytes_from_client: Some(0),
                bytes_to_client: None,
                duration_us: 1234,
                sni: None,
                first_bytes: None,
                cut: false,
            },
            &mut out,
        );
        let text = String::from_utf8(out).expect("utf8");
        assert_eq!(
            text,
            r#"{"event":"end","request_id":"req-1","outcome":"block","status":451,"bytes_from_client":0,"duration_us":1234}"#
        );
        let line = |body: &str| -> StoredRecord {
            let json = format!(
                r#"{{"ts":"t","seq":1,{},"prev":"p","hash":"h"}}"#,
                &body[1..body.len() - 1]
            );
            serde_json::from_str(&json).expect("reads back")
        };
        let mut tunnel = Vec::new();
        enc.encode_end(
            &AuditEnd {
                request_id: "req-2",
                outcome: crate::policy::Outcome::Allow,
                status: 200,
                connected: Some("203.0.113.10:443".parse().expect("addr")),
                bytes_from_client: Some(517),
                bytes_to_client: Some(4096),
                duration_us: 2_000_000,
                sni: None,
                first_bytes: Some("no_sni"),
                cut: false,
            },
            &mut tunnel,
        );
        assert!(
            String::from_utf8(tunnel).expect("utf8").ends_with(
                r#""bytes_from_client":517,"bytes_to_client":4096,"duration_us":2000000,"first_bytes":"no_sni"}"#
            ),
            "a tunnel's end says what its first bytes were"
        );
        let end = line(&text);
        assert!(end.is_end() && !end.is_request());
        assert_eq!(end.status, Some(451));
        let pruned = line(r#"{"event":"pruned","of":"end","outcome":"block"}"#);
        assert!(pruned.is_end() && pruned.is_pruned() && !pruned.is_request());
        let pruned_gate = line(r#"{"event":"pruned","outcome":"block"}"#);
        assert!(pruned_gate.is_request());
    }

    #[test]
    fn an_address_with_no_asn_is_recorded_as_no_asn_not_unknown_operator() {
        let mut d = block_decision();
        d.reason = Reason::NoAsn;
        d.ips[0].class.asn = None;
        d.ips[0].class.operator = None;
        d.ips[0].class.jurisdiction = None;
        d.ips[0].violation = Some(Violation::UnknownOperator);
        let enc = RecordEncoder::new(&AuditConfig::default()).expect("encoder");
        let v = encode(&enc, &event(&d, "crm.example", None));
        assert_eq!(v["ips"][0]["violation"], "no_asn", "{v}");
        assert_eq!(v["reason"], "no_asn", "{v}");
    }

    #[test]
    fn long_values_are_cut_at_a_char_boundary_and_marked() {
        let d = block_decision();
        let cfg = AuditConfig {
            max_field_bytes: 64,
            ..AuditConfig::default()
        };
        let enc = RecordEncoder::new(&cfg).expect("encoder");
        // 'é' is two bytes: byte 64 falls inside one.
        let path = format!("/{}", "é".repeat(100));
        let v = encode(&enc, &event(&d, "h", Some(&path)));
        let got = v["path"].as_str().expect("path");
        let (kept, mark) = got.split_once('…').expect("marked");
        assert_eq!(kept.len(), 63);
        assert_eq!(mark, format!("[truncated {} bytes]", path.len() - 63));
    }

    #[test]
    fn path_modes() {
        let d = block_decision();
        for (mode, want) in [
            (PathMode::AsIs, serde_json::json!("/a/b?token=s#f")),
            (PathMode::Redact, serde_json::json!("/a/b")),
            (PathMode::Drop, serde_json::Value::Null),
        ] {
            let cfg = AuditConfig {
                path_mode: mode,
                ..AuditConfig::default()
            };
            let enc = RecordEncoder::new(&cfg).expect("encoder");
            assert_eq!(
                encode(&enc, &event(&d, "h", Some("/a/b?token=s#f")))["path"],
                want
            );
        }
    }

    #[test]
    fn pseudonymised_client_is_a_keyed_hmac() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("k");
        std::fs::write(&key, "0123456789abcdef0123\n").expect("key");
        let cfg = AuditConfig {
            client: ClientMode::Pseudonymise,
            hmac_key_file: Some(key.clone()),
            ..AuditConfig::default()
        };
        let enc = RecordEncoder::new(&cfg).expect("encoder");
        let d = block_decision();
        let v = encode(&enc, &event(&d, "h", None));
        let pseudo = v["client"].as_str().expect("client").to_owned();
        assert_eq!(pseudo.len(), 64);
        assert!(!pseudo.contains("192.0.2.7"));
        let mut mac = Hmac::<Sha256>::new_from_slice(b"0123456789abcdef0123").expect("mac");
        mac.update(b"192.0.2.7");
        assert_eq!(pseudo, hex::encode(mac.finalize().into_bytes()));
        // Another key, another pseudonym.
        std::fs::write(&key, "fedcba9876543210fedc").expect("key");
        let other = RecordEncoder::new(&cfg).expect("encoder");
        assert_ne!(
            encode(&other, &event(&d, "h", None))["client"],
            pseudo.as_str()
        );
        // A short key is refused, naming the file.
        std::fs::write(&key, "short").expect("key");
        let err = RecordEncoder::new(&cfg).expect_err("short key").to_string();
        assert!(err.contains("at least 16"), "{err}");
    }

    #[test]
    fn ipv4_mapped_client_is_written_as_ipv4() {
        let d = block_decision();
        let enc = RecordEncoder::new(&AuditConfig::default()).expect("encoder");
        let mut e = event(&d, "h", None);
        e.client = "::ffff:192.0.2.9".parse().expect("ip");
        assert_eq!(encode(&enc, &e)["client"], "192.0.2.9");
    }
}
