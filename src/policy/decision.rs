//! What `decide()` returns: data, not errors. The proxy, the metrics, the audit log and
//! `douane explain` all read the same `Decision`, so they can never tell different stories.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use time::Date;

use crate::country::Country;
use crate::geo::{Classification, SpecialRange};
use crate::resolve::DnsFailure;

/// Enforce blocks; monitor lets the request through and records that it would have blocked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Enforce,
    Monitor,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
        }
    }
}

/// The outcome of a decision. Stable strings: they are metric labels and audit fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Every address considered complies.
    Allow,
    /// An exemption (`action = "allow"`) let it through.
    Exempt,
    /// Monitor mode: it would have been blocked, it was let through.
    WouldBlock,
    /// Blocked: 451 for a jurisdiction, 403 for a security reason.
    Block,
    /// The destination could not be resolved; nothing was decided about it (502/504).
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Exempt => "exempt",
            Outcome::WouldBlock => "would-block",
            Outcome::Block => "block",
            Outcome::Failed => "failed",
        }
    }

    /// Whether the proxy may connect.
    pub fn lets_through(self) -> bool {
        matches!(self, Outcome::Allow | Outcome::Exempt | Outcome::WouldBlock)
    }
}

/// Why. `as_str()` is a stable metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Every address is located and operated within the allowed jurisdictions.
    Compliant,
    /// An exemption rule matched.
    Exemption,
    /// A rule with `action = "block"` matched.
    RuleBlock,
    /// An address is located outside the allowed locations.
    LocationNotAllowed,
    /// An address is operated under a jurisdiction outside the allowed operators.
    OperatorNotAllowed,
    /// An address is in no country database entry and the policy blocks unknown locations.
    UnknownLocation,
    /// An address's operator is unknown and the policy blocks unknown operators.
    UnknownOperator,
    /// A special-purpose address (loopback, private, link-local, …) not named by a
    /// `[[network]]` entry: a security block (403).
    SpecialAddress,
    /// The destination port is not allowed (403).
    PortNotAllowed,
    /// One of douane's own listening addresses (403): the classic SSRF.
    OwnListener,
    DnsNxDomain,
    DnsServFail,
    DnsTimeout,
    DnsNoAddresses,
    DnsRefused,
    DnsError,
    /// An address with no autonomous system at all (and no operator from a `[[network]]`
    /// entry, a published range or a registry CIDR) and the policy's `no_asn` blocks it.
    /// An ASN that the registry does not know is `unknown_operator`.
    NoAsn,
    /// A rule requires a qualification (SecNumCloud, HDS, …) that an address's operator does
    /// not hold, unexpired, for it.
    QualificationMissing,
    /// Inside a CONNECT tunnel, first bytes that name nothing that can be checked (ECH, no
    /// server name, another protocol, a bad name), refused by `[tunnel] unnamed = "block"`.
    TunnelUnnamed,
}

impl Reason {
    /// Every reason, in declaration order: for listing labels and parsing names.
    pub const ALL: [Reason; 19] = [
        Reason::Compliant,
        Reason::Exemption,
        Reason::RuleBlock,
        Reason::LocationNotAllowed,
        Reason::OperatorNotAllowed,
        Reason::UnknownLocation,
        Reason::UnknownOperator,
        Reason::SpecialAddress,
        Reason::PortNotAllowed,
        Reason::OwnListener,
        Reason::DnsNxDomain,
        Reason::DnsServFail,
        Reason::DnsTimeout,
        Reason::DnsNoAddresses,
        Reason::DnsRefused,
        Reason::DnsError,
        Reason::NoAsn,
        Reason::QualificationMissing,
        Reason::TunnelUnnamed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Compliant => "compliant",
            Reason::Exemption => "exemption",
            Reason::RuleBlock => "rule_block",
            Reason::LocationNotAllowed => "location_not_allowed",
            Reason::OperatorNotAllowed => "operator_not_allowed",
            Reason::UnknownLocation => "unknown_location",
            Reason::UnknownOperator => "unknown_operator",
            Reason::SpecialAddress => "special_address",
            Reason::PortNotAllowed => "port_not_allowed",
            Reason::OwnListener => "own_listener",
            Reason::DnsNxDomain => "dns_nxdomain",
            Reason::DnsServFail => "dns_servfail",
            Reason::DnsTimeout => "dns_timeout",
            Reason::DnsNoAddresses => "dns_no_addresses",
            Reason::DnsRefused => "dns_refused",
            Reason::DnsError => "dns_error",
            Reason::NoAsn => "no_asn",
            Reason::QualificationMissing => "qualification_missing",
            Reason::TunnelUnnamed => "tunnel_unnamed",
        }
    }

    /// A security block answers 403 and is enforced even in monitor mode.
    pub fn is_security(self) -> bool {
        matches!(
            self,
            Reason::SpecialAddress | Reason::PortNotAllowed | Reason::OwnListener
        )
    }

    pub fn from_dns(failure: DnsFailure) -> Reason {
        match failure {
            DnsFailure::NxDomain => Reason::DnsNxDomain,
            DnsFailure::ServFail => Reason::DnsServFail,
            DnsFailure::Timeout => Reason::DnsTimeout,
            DnsFailure::NoAddresses => Reason::DnsNoAddresses,
            DnsFailure::Refused => Reason::DnsRefused,
            DnsFailure::Other => Reason::DnsError,
        }
    }

    /// The HTTP status a proxy answers when it does not let the request through.
    pub fn block_status(self) -> u16 {
        match self {
            Reason::DnsTimeout => 504,
            Reason::DnsNxDomain
            | Reason::DnsServFail
            | Reason::DnsNoAddresses
            | Reason::DnsRefused
            | Reason::DnsError => 502,
            r if r.is_security() => 403,
            _ => 451,
        }
    }
}

/// Why one address does not comply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Violation {
    Special {
        range: SpecialRange,
    },
    LocationNotAllowed {
        location: Country,
    },
    OperatorNotAllowed {
        jurisdiction: Country,
    },
    UnknownLocation,
    UnknownOperator,
    /// The rule requires a qualification (`required_qualifications`) that the address's
    /// operator does not hold, unexpired, for it.
    QualificationMissing,
}

impl Violation {
    pub fn reason(self) -> Reason {
        match self {
            Violation::Special { .. } => Reason::SpecialAddress,
            Violation::LocationNotAllowed { .. } => Reason::LocationNotAllowed,
            Violation::OperatorNotAllowed { .. } => Reason::OperatorNotAllowed,
            Violation::UnknownLocation => Reason::UnknownLocation,
            Violation::UnknownOperator => Reason::UnknownOperator,
            Violation::QualificationMissing => Reason::QualificationMissing,
        }
    }
}

impl IpVerdict {
    /// The reason this address gives, if it does not comply. An unknown operator splits in
    /// two: no ASN at all (`no_asn`) and an ASN the registry does not know
    /// (`unknown_operator`).
    pub fn reason(&self) -> Option<Reason> {
        match self.violation? {
            Violation::UnknownOperator if self.class.asn.is_none() => Some(Reason::NoAsn),
            v => Some(v.reason()),
        }
    }
}

/// One resolved address, classified and judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IpVerdict {
    #[serde(flatten)]
    pub class: Classification,
    /// `None` when the address complies with the rule that applied.
    pub violation: Option<Violation>,
}

/// Something the author of the policy should know about this decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Note {
    /// An exemption would have matched but expired on that date and no longer applies.
    ExemptionExpired { rule: Arc<str>, expired: Date },
}

/// What the decision was made against: the same for every decision of one state snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    pub policy_name: Arc<str>,
    pub policy_version: Arc<str>,
    /// Build time (RFC 3339) of the country database, if loaded.
    pub country_db_built: Option<Arc<str>>,
    /// Build time (RFC 3339) of the ASN database, if loaded.
    pub asn_db_built: Option<Arc<str>>,
    pub registry_version: Arc<str>,
    /// The providers' published ranges in force: artifact version, build date, and each
    /// source file with its own date. `None` when none are loaded.
    pub published: Option<Arc<crate::geo::PublishedSummary>>,
}

/// The decision for one request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: Reason,
    /// The id of the rule that applied; `None` when the policy defaults did.
    pub rule: Option<Arc<str>>,
    pub mode: Mode,
    /// Every resolved address, classified, with its verdict.
    pub ips: Vec<IpVerdict>,
    /// The checked addresses the proxy may connect to, in order. Empty unless the outcome
    /// lets the request through.
    pub connect: Vec<IpAddr>,
    pub notes: Vec<Note>,
    pub provenance: Arc<Provenance>,
}

impl Decision {
    /// The status the proxy answers when it does not let the request through.
    pub fn block_status(&self) -> u16 {
        self.reason.block_status()
    }
}
