//! The operator registry (`policies/operators.toml`): autonomous systems and CIDRs mapped to
//! the operator that runs them and the jurisdiction of its parent company.
//!
//! ```toml
//! [[operator]]
//! name = "Amazon"
//! jurisdiction = "US"            # the parent company's country, never the RIR's
//! asns = [16509, 14618]
//! cidrs = ["192.0.2.0/24"]       # optional: a joint venture inside a partner's network
//! published = ["aws"]            # optional: the publisher of published ranges it runs
//!                                # ("aws:cn-north-1": one region of it, which wins)
//! source = "where the fact comes from"
//! note = "optional"
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;
use sha2::{Digest, Sha256};
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::country::Country;
use crate::diag::{Errors, Located, SourceFile};

/// One organisation that runs networks, and whose law governs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Operator {
    pub name: Arc<str>,
    /// The jurisdiction of the parent company.
    pub jurisdiction: Country,
    pub asns: Vec<u32>,
    pub cidrs: Vec<IpNet>,
    /// Publishers of published ranges (`aws`, `azure:centralfrance`) this operator runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<String>,
    /// Where the facts come from.
    pub source: String,
    pub note: Option<String>,
    /// Dated qualifications of this operator's offers (SecNumCloud, HDS), kept apart from
    /// its jurisdiction.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub qualifications: Vec<Qualification>,
}

/// A qualification of one offer: what, for which offer and scope, from which source, until
/// when. An expired one no longer counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Qualification {
    pub name: String,
    pub offer: String,
    pub scope: Option<String>,
    pub source: String,
    #[serde(serialize_with = "crate::policy::normal::iso_date")]
    pub expires: time::Date,
    /// The offer's addresses, when known; empty: every address of the operator.
    pub cidrs: Vec<IpNet>,
}

impl Qualification {
    /// Counts for `ip` on `today`: not expired (it still counts on its last day), and the
    /// address is in the offer's CIDRs when they are given.
    pub fn covers(&self, ip: IpAddr, today: time::Date) -> bool {
        today <= self.expires
            && (self.cidrs.is_empty() || self.cidrs.iter().any(|c| c.contains(&ip)))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQualification {
    name: String,
    offer: String,
    scope: Option<String>,
    source: String,
    expires: toml::value::Datetime,
    #[serde(default)]
    cidrs: Vec<String>,
}

/// The loaded registry: lookups by CIDR (most specific first), then by ASN.
#[derive(Debug, Clone)]
pub struct OperatorRegistry {
    /// SHA-256 (hex) of the canonical entries; see [`OperatorRegistry::version`].
    pub version: String,
    operators: Vec<Operator>,
    by_asn: HashMap<u32, usize>,
    by_publisher: HashMap<String, usize>,
    /// `(cidr, operator index)`, longest prefix first.
    by_cidr: Vec<(IpNet, usize)>,
}

impl Default for OperatorRegistry {
    fn default() -> Self {
        OperatorRegistry::from_operators(Vec::new())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Located(#[from] crate::diag::Errors),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperator {
    name: Option<Spanned<String>>,
    jurisdiction: Option<Spanned<String>>,
    #[serde(default)]
    asns: Vec<Spanned<u32>>,
    #[serde(default)]
    cidrs: Vec<Spanned<String>>,
    #[serde(default)]
    published: Vec<Spanned<String>>,
    source: Option<Spanned<String>>,
    note: Option<String>,
    #[serde(default)]
    qualifications: Vec<Spanned<RawQualification>>,
}

impl OperatorRegistry {
    /// Reads and parses a registry file.
    pub fn load(path: &Path) -> Result<Self, Errors> {
        let file = SourceFile::read(path)?;
        Self::parse(&file)
    }

    /// Parses a registry, listing every error at once with its file:line:column.
    pub fn parse(file: &SourceFile) -> Result<Self, Errors> {
        let root = DeTable::parse(&file.text)
            .map_err(|e| crate::config::messages::toml_errors(file, &e))?;
        let mut errors = Vec::new();
        let mut raws = Vec::new();
        for (key, value) in root.get_ref().iter() {
            if key.get_ref() != "operator" {
                errors.push(file.error_at(
                    Some(key.span()),
                    format!(
                        "unknown key `{}`; the registry holds only `[[operator]]` entries",
                        key.get_ref()
                    ),
                ));
                continue;
            }
            let Some(array) = value.get_ref().as_array() else {
                errors.push(file.error_at(
                    Some(value.span()),
                    "`operator` must be an array of tables: write `[[operator]]`",
                ));
                continue;
            };
            for entry in array.iter() {
                let span = entry.span();
                if !matches!(entry.get_ref(), DeValue::Table(_)) {
                    errors.push(file.error_at(Some(span), "each operator must be a table"));
                    continue;
                }
                match RawOperator::deserialize(ValueDeserializer::from(entry.clone())) {
                    Ok(raw) => raws.push((span, raw)),
                    Err(e) => {
                        let located = file.toml_error(&e);
                        // A field error without a span still belongs to this entry.
                        errors.push(if located.line == 0 {
                            file.error_at(Some(span), located.message)
                        } else {
                            located
                        });
                    }
                }
            }
        }
        let operators = validate(file, raws, &mut errors);
        if errors.is_empty() {
            Ok(Self::from_operators(operators))
        } else {
            errors.sort_by_key(|e| (e.line, e.column));
            Err(Errors(errors))
        }
    }

    /// Builds a registry from entries already checked (tests, programmatic use). Later
    /// duplicates of an ASN are ignored.
    pub fn from_operators(operators: Vec<Operator>) -> Self {
        let mut by_asn = HashMap::new();
        let mut by_cidr = Vec::new();
        let mut by_publisher = HashMap::new();
        for (i, op) in operators.iter().enumerate() {
            for key in &op.published {
                by_publisher.entry(key.clone()).or_insert(i);
            }
            for &asn in &op.asns {
                by_asn.entry(asn).or_insert(i);
            }
            for cidr in &op.cidrs {
                by_cidr.push((cidr.trunc(), i));
            }
        }
        by_cidr.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        let version = version_of(&operators);
        OperatorRegistry {
            version,
            operators,
            by_asn,
            by_publisher,
            by_cidr,
        }
    }

    /// The operator whose `published` keys list `key` (`aws`, or `aws:cn-north-1`).
    pub fn by_publisher(&self, key: &str) -> Option<&Operator> {
        self.by_publisher
            .get(key)
            .and_then(|&i| self.operators.get(i))
    }

    /// The operator of an address: a CIDR entry (most specific) first, then the ASN.
    pub fn lookup(&self, ip: IpAddr, asn: Option<u32>) -> Option<&Operator> {
        if let Some((_, i)) = self.by_cidr.iter().find(|(net, _)| net.contains(&ip)) {
            return self.operators.get(*i);
        }
        self.by_asn.get(&asn?).and_then(|&i| self.operators.get(i))
    }

    /// Whether the operator named `operator` holds `qualification`, unexpired on `today`,
    /// for `ip`.
    pub fn qualified(
        &self,
        operator: &str,
        qualification: &str,
        ip: IpAddr,
        today: time::Date,
    ) -> bool {
        self.operators.iter().any(|op| {
            &*op.name == operator
                && op
                    .qualifications
                    .iter()
                    .any(|q| q.name.eq_ignore_ascii_case(qualification) && q.covers(ip, today))
        })
    }

    /// The operator that lists `asn`.
    pub fn by_asn(&self, asn: u32) -> Option<&Operator> {
        self.by_asn.get(&asn).and_then(|&i| self.operators.get(i))
    }

    /// SHA-256 (hex) over a canonical serialisation of the entries, in file order:
    /// formatting, comments and key order do not change it; any fact does.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn operators(&self) -> &[Operator] {
        &self.operators
    }

    pub fn len(&self) -> usize {
        self.operators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.operators.is_empty()
    }
}

fn version_of(operators: &[Operator]) -> String {
    let mut hasher = Sha256::new();
    for op in operators {
        // serde_json of a struct is canonical here: fixed field order, no whitespace.
        let line = serde_json::to_string(op).unwrap_or_default();
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

fn validate(
    file: &SourceFile,
    raws: Vec<(std::ops::Range<usize>, RawOperator)>,
    errors: &mut Vec<Located>,
) -> Vec<Operator> {
    let mut operators = Vec::new();
    // ASN / CIDR / name → (operator name, line) of the first entry that claimed it.
    let mut asn_owner: HashMap<u32, (String, usize)> = HashMap::new();
    let mut cidr_owner: HashMap<IpNet, (String, usize)> = HashMap::new();
    let mut publisher_owner: HashMap<String, (String, usize)> = HashMap::new();
    let mut name_line: HashMap<String, usize> = HashMap::new();
    for (span, raw) in raws {
        let at = |s: &std::ops::Range<usize>, m: String| file.error_at(Some(s.clone()), m);
        let entry_line = file.line_col(span.start).0;
        let before = errors.len();

        let name = match &raw.name {
            Some(n) if !n.get_ref().trim().is_empty() => n.get_ref().trim().to_owned(),
            Some(n) => {
                errors.push(at(&n.span(), "`name` is empty".into()));
                String::new()
            }
            None => {
                errors.push(at(&span, "operator has no `name`".into()));
                String::new()
            }
        };
        if !name.is_empty() {
            if let Some(line) = name_line.get(&name) {
                let s = raw.name.as_ref().map_or(span.clone(), |n| n.span());
                errors.push(at(
                    &s,
                    format!("operator `{name}` is already defined at line {line}"),
                ));
            } else {
                name_line.insert(name.clone(), entry_line);
            }
        }
        let label = if name.is_empty() { "?" } else { &name };

        let jurisdiction = match &raw.jurisdiction {
            Some(j) => match Country::parse(j.get_ref()) {
                Ok(c) => Some(c),
                Err(e) => {
                    errors.push(at(
                        &j.span(),
                        format!("{e}; `jurisdiction` is the parent company's country"),
                    ));
                    None
                }
            },
            None => {
                errors.push(at(
                    &span,
                    format!("operator `{label}` has no `jurisdiction` (the parent company's country, e.g. \"US\")"),
                ));
                None
            }
        };

        let source = match &raw.source {
            Some(s) if !s.get_ref().trim().is_empty() => s.get_ref().clone(),
            Some(s) => {
                errors.push(at(
                    &s.span(),
                    "`source` is empty: say where the fact comes from".into(),
                ));
                String::new()
            }
            None => {
                errors.push(at(
                    &span,
                    format!("operator `{label}` has no `source`: say where the fact comes from"),
                ));
                String::new()
            }
        };

        let mut asns = Vec::new();
        for asn in &raw.asns {
            let n = *asn.get_ref();
            if n == 0 {
                errors.push(at(&asn.span(), "AS0 is not an autonomous system".into()));
            } else if let Some((owner, line)) = asn_owner.get(&n) {
                errors.push(at(
                    &asn.span(),
                    format!("AS{n} of `{label}` is already listed for `{owner}` at line {line}"),
                ));
            } else {
                asn_owner.insert(n, (label.to_owned(), entry_line));
                asns.push(n);
            }
        }

        let mut cidrs = Vec::new();
        for cidr in &raw.cidrs {
            match cidr.get_ref().parse::<IpNet>() {
                Ok(net) => {
                    let net = net.trunc();
                    if let Some((owner, line)) = cidr_owner.get(&net) {
                        errors.push(at(
                            &cidr.span(),
                            format!(
                                "{net} of `{label}` is already listed for `{owner}` at line {line}"
                            ),
                        ));
                    } else {
                        cidr_owner.insert(net, (label.to_owned(), entry_line));
                        cidrs.push(net);
                    }
                }
                Err(_) => errors.push(at(
                    &cidr.span(),
                    format!(
                        "`{}` is not a CIDR (write e.g. \"192.0.2.0/24\" or \"2001:db8::/32\")",
                        cidr.get_ref()
                    ),
                )),
            }
        }
        let mut published = Vec::new();
        for key in &raw.published {
            let k = key.get_ref().trim().to_ascii_lowercase();
            let valid = !k.is_empty()
                && k.chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | ':' | '.'));
            if !valid {
                errors.push(at(
                    &key.span(),
                    format!("`{}` is not a publisher key (write e.g. \"aws\" or \"aws:cn-north-1\", as `douane ranges info` names them)", key.get_ref()),
                ));
            } else if let Some((owner, line)) = publisher_owner.get(&k) {
                errors.push(at(
                    &key.span(),
                    format!("publisher `{k}` of `{label}` is already listed for `{owner}` at line {line}"),
                ));
            } else {
                publisher_owner.insert(k.clone(), (label.to_owned(), entry_line));
                published.push(k);
            }
        }
        if raw.asns.is_empty() && raw.cidrs.is_empty() && raw.published.is_empty() {
            errors.push(at(
                &span,
                format!(
                    "operator `{label}` lists neither `asns`, `cidrs` nor `published`: it would match nothing"
                ),
            ));
        }

        let mut qualifications = Vec::new();
        for q in &raw.qualifications {
            let span = q.span();
            let q = q.get_ref();
            let expires = q.expires.date.and_then(|d| {
                time::Date::from_calendar_date(
                    i32::from(d.year),
                    time::Month::try_from(d.month).ok()?,
                    d.day,
                )
                .ok()
            });
            let Some(expires) = expires.filter(|_| q.expires.time.is_none()) else {
                errors.push(at(
                    &span,
                    format!(
                        "qualification `{}` of `{label}`: `expires` must be a date (YYYY-MM-DD)",
                        q.name
                    ),
                ));
                continue;
            };
            if q.name.trim().is_empty() || q.source.trim().is_empty() || q.offer.trim().is_empty() {
                errors.push(at(
                    &span,
                    format!(
                        "a qualification of `{label}` needs a `name`, an `offer` and a `source`"
                    ),
                ));
                continue;
            }
            let mut cidrs = Vec::new();
            for c in &q.cidrs {
                match c.parse::<IpNet>() {
                    Ok(n) => cidrs.push(n.trunc()),
                    Err(_) => errors.push(at(
                        &span,
                        format!("qualification `{}`: `{c}` is not a CIDR", q.name),
                    )),
                }
            }
            qualifications.push(Qualification {
                name: q.name.trim().to_owned(),
                offer: q.offer.trim().to_owned(),
                scope: q.scope.clone(),
                source: q.source.trim().to_owned(),
                expires,
                cidrs,
            });
        }
        if errors.len() == before {
            if let Some(jurisdiction) = jurisdiction {
                operators.push(Operator {
                    name: name.into(),
                    jurisdiction,
                    asns,
                    cidrs,
                    published,
                    source,
                    note: raw.note.filter(|n| !n.trim().is_empty()),
                    qualifications,
                });
            }
        }
    }
    operators
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<OperatorRegistry, Errors> {
        OperatorRegistry::parse(&SourceFile::new("ops.toml", text))
    }

    const GOOD: &str = r#"
# comment
[[operator]]
name = "Amazon"
jurisdiction = "US"
asns = [16509, 14618]
source = "jurisdictions.md"

[[operator]]
name = "S3NS"
jurisdiction = "FR"
cidrs = ["34.1.0.0/16", "34.1.2.0/24"]
source = "example"
note = "inside Google's networks"

[[operator]]
name = "Google"
jurisdiction = "US"
asns = [15169]
cidrs = ["34.0.0.0/8"]
source = "jurisdictions.md"
"#;

    #[test]
    fn every_syntax_error_at_once() {
        let err = parse("[[operator]\nname = = \"a\"\n[[operator]]\nasns = [1,,2]\n").unwrap_err();
        let lines: Vec<usize> = err.0.iter().map(|e| e.line).collect();
        assert!(
            lines.contains(&1) && lines.contains(&2) && lines.contains(&4),
            "{err}"
        );
    }

    #[test]
    fn lookup_by_cidr_then_asn() {
        let reg = parse(GOOD).unwrap();
        assert_eq!(reg.len(), 3);
        let name = |ip: &str, asn: Option<u32>| {
            reg.lookup(ip.parse().unwrap(), asn)
                .map(|o| o.name.to_string())
        };
        assert_eq!(name("34.1.2.3", Some(15169)).as_deref(), Some("S3NS"));
        assert_eq!(name("34.2.0.1", Some(15169)).as_deref(), Some("Google"));
        assert_eq!(
            name("34.2.0.1", None).as_deref(),
            Some("Google"),
            "CIDR alone"
        );
        assert_eq!(name("15.236.0.1", Some(16509)).as_deref(), Some("Amazon"));
        assert_eq!(name("15.236.0.1", Some(64512)), None);
        assert_eq!(name("15.236.0.1", None), None);
        let amazon = reg.by_asn(14618).unwrap();
        assert_eq!(amazon.jurisdiction.as_str(), "US");
        assert_eq!(
            reg.operators()[1].note.as_deref(),
            Some("inside Google's networks")
        );
    }

    #[test]
    fn version_ignores_formatting_but_not_facts() {
        let a = parse(GOOD).unwrap();
        let reformatted = GOOD
            .replace("# comment", "# another comment\n\n")
            .replace("asns = [16509, 14618]", "asns = [ 16509,\n  14618 ]  # AWS")
            .replace(
                "name = \"Amazon\"\njurisdiction = \"US\"",
                "jurisdiction = 'US'\nname = \"Amazon\"",
            );
        let b = parse(&reformatted).unwrap();
        assert_eq!(a.version(), b.version());
        assert_eq!(a.version().len(), 64);
        let c = parse(&GOOD.replace("14618", "14619")).unwrap();
        assert_ne!(a.version(), c.version());
        assert_eq!(OperatorRegistry::default().len(), 0);
        assert_eq!(OperatorRegistry::default().version().len(), 64);
    }

    #[test]
    fn every_error_is_listed_with_its_place() {
        let text = r#"[[operator]]
name = "A"
jurisdiction = "UK"
asns = [1]
source = "s"

[[operator]]
name = "B"
jurisdiction = "US"
asns = [2, 1]
cidrs = ["10.0.0.0/33"]
source = "s"

[[operator]]
name = "C"
jurisdiction = "FR"
asns = [3]

[[operator]]
name = "D"
jurisdiction = "FR"
asns = [4]
source = "s"
homepage = "x"
"#;
        let errs = parse(text).unwrap_err();
        let lines: Vec<String> = errs.0.iter().map(|e| e.to_string()).collect();
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert!(lines[0].starts_with("ops.toml:3:16: "), "{}", lines[0]);
        assert!(lines[0].contains("`UK`"), "{}", lines[0]);
        assert!(lines[1].starts_with("ops.toml:10:12: "), "{}", lines[1]);
        assert!(
            lines[1].contains("AS1 of `B`") && lines[1].contains("`A` at line 1"),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with("ops.toml:11:10: "), "{}", lines[2]);
        assert!(lines[2].contains("10.0.0.0/33"), "{}", lines[2]);
        assert!(lines[3].starts_with("ops.toml:14:1: "), "{}", lines[3]);
        assert!(lines[3].contains("`C` has no `source`"), "{}", lines[3]);
        assert!(lines[4].starts_with("ops.toml:24:1: "), "{}", lines[4]);
        assert!(
            lines[4].contains("unknown field `homepage`"),
            "{}",
            lines[4]
        );
    }

    #[test]
    fn other_mistakes() {
        let err = |text: &str| parse(text).unwrap_err().to_string();
        assert!(err("[operators]\n").contains("ops.toml:1:2: unknown key `operators`"));
        assert!(
            err("[[operator]]\nname = \"X\"\njurisdiction = \"FR\"\nsource = \"s\"\n")
                .contains("neither `asns`, `cidrs` nor `published`")
        );
        assert!(err(
            "[[operator]]\nname = \"X\"\njurisdiction = \"FR\"\nsource = \"s\"\nasns = [-1]\n"
        )
        .starts_with("ops.toml:5:"));
        assert!(
            err("[[operator]]\nname = \"X\"\nsource = \"s\"\nasns = [1]\n")
                .contains("no `jurisdiction`")
        );
        assert!(err("[[operator]]\nname = \n").starts_with("ops.toml:2:"));
        let dup = "[[operator]]\nname = \"X\"\njurisdiction = \"FR\"\nsource = \"s\"\nasns = [1]\n";
        assert!(err(&format!("{dup}{}", dup.replace("[1]", "[2]")))
            .contains("operator `X` is already defined at line 1"));
    }

    #[test]
    fn empty_file_is_an_empty_registry() {
        assert!(parse("# nothing yet\n").unwrap().is_empty());
    }
}

#[cfg(test)]
mod qualification_tests {
    use super::*;

    #[test]
    fn dated_qualifications_count_until_they_expire() {
        let text = r#"
[[operator]]
name = "Cloud FR"
jurisdiction = "FR"
asns = [64500]
source = "test"
qualifications = [
  { name = "SecNumCloud", offer = "IaaS", scope = "région cloudgouv", source = "ANSSI list", expires = 2027-06-30, cidrs = ["192.0.2.0/25"] },
  { name = "HDS", offer = "hébergement", source = "certificate", expires = 2026-01-31 },
]
"#;
        let r = OperatorRegistry::parse(&SourceFile::new("ops.toml", text)).unwrap();
        let d = |y, m, day| {
            time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), day).unwrap()
        };
        let inside: IpAddr = "192.0.2.1".parse().unwrap();
        let outside: IpAddr = "192.0.2.200".parse().unwrap();
        assert!(r.qualified("Cloud FR", "SecNumCloud", inside, d(2027, 6, 30)));
        assert!(
            !r.qualified("Cloud FR", "SecNumCloud", inside, d(2027, 7, 1)),
            "expired"
        );
        assert!(
            !r.qualified("Cloud FR", "SecNumCloud", outside, d(2026, 1, 1)),
            "other offer"
        );
        assert!(r.qualified("Cloud FR", "hds", outside, d(2026, 1, 31)));
        assert!(!r.qualified("Cloud FR", "HDS", outside, d(2026, 2, 1)));
        assert!(!r.qualified("Other", "HDS", outside, d(2026, 1, 1)));
        let bad = text.replace("expires = 2026-01-31", "expires = \"soon\"");
        assert!(OperatorRegistry::parse(&SourceFile::new("ops.toml", bad)).is_err());
    }
}
