//! The raw shape of a policy file, as serde reads it: strict (`deny_unknown_fields`), with
//! spans on every value that is validated later, so that errors point at the value.

use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;

/// A list whose emptiness is itself an error, located at the list.
pub type SpannedList<T> = Spanned<Vec<Spanned<T>>>;

/// One policy file. Every table is optional so that a policy can be split across files;
/// exactly one file of a policy carries `[policy]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    pub policy: Option<Spanned<RawPolicy>>,
    #[serde(default)]
    pub network: Vec<Spanned<RawNetwork>>,
    #[serde(default)]
    pub rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    pub test: Vec<Spanned<RawTest>>,
}

/// `[policy]`: the name, the mode and the defaults that apply when no rule matches.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub name: Spanned<String>,
    #[serde(default)]
    pub mode: RawMode,
    pub allowed_locations: SpannedList<String>,
    pub allowed_operators: SpannedList<String>,
    #[serde(default)]
    pub unknown_location: UnknownLocation,
    #[serde(default)]
    pub unknown_operator: UnknownOperator,
    /// An address with no ASN at all; unset: as `unknown_operator`.
    pub no_asn: Option<UnknownOperator>,
    /// How the location of an anycast address (a published range without a region) is
    /// judged.
    #[serde(default)]
    pub anycast_location: AnycastLocation,
    #[serde(default)]
    pub ip_selection: IpSelection,
    pub allowed_ports: Option<SpannedList<i64>>,
    pub description: Option<String>,
}

/// How the location of an anycast address is judged: its provider publishes it without a
/// region, so no location is claimed for it.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AnycastLocation {
    /// The location is not judged: the operator decides.
    #[default]
    Operator,
    /// The country database's answer is judged like any other location.
    Database,
    /// The location is unknown: `unknown_location` decides.
    Unknown,
}

impl AnycastLocation {
    pub fn is_default(&self) -> bool {
        *self == AnycastLocation::Operator
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawMode {
    #[default]
    Enforce,
    Monitor,
}

/// What to do with an address that is in no country database entry.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UnknownLocation {
    #[default]
    Block,
    Allow,
}

/// What to do with an address whose operator jurisdiction is unknown.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum UnknownOperator {
    Block,
    Allow,
    /// Judge by location alone: no operator violation, as long as the location is known.
    #[default]
    Location,
}

/// Which resolved addresses must comply.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IpSelection {
    /// Every resolved address must comply; one that does not blocks the request.
    #[default]
    All,
    /// Connect only to the compliant addresses; block when none is.
    Pin,
}

/// `[[network]]`: a CIDR the collectivité knows better than any database.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    pub cidr: Spanned<String>,
    pub location: Option<Spanned<String>>,
    pub operator: Option<Spanned<String>>,
    pub label: Option<String>,
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Judge the addresses against the rule's own allowed sets (defaults fill the gaps).
    #[default]
    Enforce,
    /// An exemption: let it through whatever the jurisdictions (never special addresses).
    Allow,
    /// Block whatever the jurisdictions.
    Block,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Enforce => "enforce",
            Action::Allow => "allow",
            Action::Block => "block",
        }
    }
}

/// `[[rule]]`: match conditions, an action, and the overrides of the policy defaults.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: Spanned<String>,
    pub description: Option<String>,
    pub clients: Option<SpannedList<String>>,
    pub hosts: Option<SpannedList<String>>,
    pub ports: Option<SpannedList<i64>>,
    pub methods: Option<SpannedList<String>>,
    pub paths: Option<SpannedList<String>>,
    pub action: Option<Spanned<Action>>,
    pub allowed_locations: Option<SpannedList<String>>,
    pub allowed_operators: Option<SpannedList<String>>,
    pub unknown_location: Option<Spanned<UnknownLocation>>,
    pub unknown_operator: Option<Spanned<UnknownOperator>>,
    pub no_asn: Option<Spanned<UnknownOperator>>,
    pub anycast_location: Option<Spanned<AnycastLocation>>,
    /// Qualifications (SecNumCloud, HDS) each address's operator must hold, unexpired.
    pub required_qualifications: Option<SpannedList<String>>,
    pub ip_selection: Option<Spanned<IpSelection>>,
    pub allowed_ports: Option<SpannedList<i64>>,
    pub justification: Option<Spanned<String>>,
    pub ticket: Option<String>,
    pub expires: Option<Spanned<toml::value::Datetime>>,
}

/// The outcome a `[[test]]` expects.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    Allow,
    Exempt,
    Block,
    WouldBlock,
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Allow => "allow",
            Expect::Exempt => "exempt",
            Expect::Block => "block",
            Expect::WouldBlock => "would-block",
        }
    }
}

/// `[[test]]`: a request, the addresses its host resolves to, and the expected decision.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTest {
    pub url: Spanned<String>,
    pub client: Option<Spanned<String>>,
    pub method: Option<Spanned<String>>,
    pub resolve: Option<SpannedList<String>>,
    /// The day the test is decided on (for exemption expiry); today when absent.
    pub date: Option<Spanned<toml::value::Datetime>>,
    pub expect: Expect,
    pub expect_rule: Option<Spanned<String>>,
    pub expect_reason: Option<Spanned<String>>,
    pub description: Option<String>,
}
