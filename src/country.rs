//! ISO 3166-1 alpha-2 country codes, the jurisdiction groups that policies name, and a
//! constant-time set of countries for the hot path.
//!
//! A location (where an IP is) and an operator jurisdiction (whose law governs the network)
//! are both a [`Country`]: a code from the official list, never a free string.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every officially assigned ISO 3166-1 alpha-2 code, plus `XK` (Kosovo), the user-assigned
/// code that the geolocation databases use. Sorted, so lookups are a binary search.
const ASSIGNED: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "XK", "YE", "YT", "ZA", "ZM", "ZW",
];

/// [`ASSIGNED`] as a bitmap, built at compile time.
const ASSIGNED_SET: CountrySet = {
    let mut bits = [0u64; 11];
    let mut i = 0;
    while i < ASSIGNED.len() {
        let code = ASSIGNED[i].as_bytes();
        let index = (code[0] - b'A') as usize * 26 + (code[1] - b'A') as usize;
        bits[index / 64] |= 1 << (index % 64);
        i += 1;
    }
    CountrySet(bits)
};

/// The 27 member states, plus the French outermost regions that have codes of their own and
/// are EU territory (TFEU art. 349; Saint-Barthélemy left that list in 2012 and is not here).
const EU: &[&str] = &[
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", // member states
    "GP", "MQ", "GF", "RE", "YT", "MF", // French outermost regions
];

/// The EEA states that are not in the EU.
const EEA_ONLY: &[&str] = &["IS", "LI", "NO"];

/// Third countries with a GDPR adequacy decision (art. 45) in force in 2026. The United
/// States is deliberately absent: the Data Privacy Framework covers certified organisations
/// only, so a policy that accepts it must name `US` itself. CA, JP and KR are partial
/// (commercial / private sector) decisions, included as the Commission lists them.
const EU_ADEQUACY: &[&str] = &[
    "AD", "AR", "BR", "CA", "CH", "FO", "GB", "GG", "IL", "IM", "JE", "JP", "KR", "NZ", "UY",
];

/// An ISO 3166-1 alpha-2 code from the assigned list, stored as two uppercase ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

/// Why a string is not a [`Country`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountryError {
    #[error("`{0}` is not an ISO 3166-1 alpha-2 country code (two letters, e.g. \"FR\")")]
    Malformed(String),
    #[error("`{0}` is not an assigned ISO 3166-1 alpha-2 country code{hint}", hint = unassigned_hint(.0))]
    Unassigned(String),
}

/// What to write instead of a code people often use but ISO 3166-1 does not assign: the
/// EU's own abbreviations (`UK`, `EL`), the reserved `FX`, and the group names.
fn unassigned_hint(code: &str) -> String {
    let upper = code.to_ascii_uppercase();
    match upper.as_str() {
        "UK" => "; the United Kingdom is `GB`".into(),
        "EL" => "; Greece is `GR` (`EL` is the EU's own abbreviation)".into(),
        "FX" => "; metropolitan France is `FR`".into(),
        "EU" => "; `EU` is a group, allowed in `allowed_locations` and `allowed_operators`, not where a single country is expected".into(),
        _ => String::new(),
    }
}

impl Country {
    /// Parses a code, case-insensitively, and checks it against the assigned list.
    pub fn parse(code: &str) -> Result<Self, CountryError> {
        let bytes = code.as_bytes();
        if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_alphabetic) {
            return Err(CountryError::Malformed(code.to_owned()));
        }
        let upper = [bytes[0].to_ascii_uppercase(), bytes[1].to_ascii_uppercase()];
        let country = Country(upper);
        // Every database lookup goes through here: a bit test, not a search.
        if ASSIGNED_SET.contains(country) {
            Ok(country)
        } else {
            Err(CountryError::Unassigned(code.to_owned()))
        }
    }

    /// Reads a code coming from a geolocation database. Databases emit a few legacy or
    /// reserved codes; `FX` (metropolitan France) is read as `FR`, anything else that is not
    /// assigned (`EU`, `AP`, `ZZ`, …) is no location at all.
    pub fn from_database(code: &str) -> Option<Self> {
        if code.eq_ignore_ascii_case("FX") {
            return Some(Country(*b"FR"));
        }
        Country::parse(code).ok()
    }

    /// The code as two uppercase letters; also the stable metric label.
    pub fn as_str(&self) -> &str {
        // The constructor only admits ASCII letters.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }

    fn index(self) -> usize {
        (self.0[0] - b'A') as usize * 26 + (self.0[1] - b'A') as usize
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Country {
    type Err = CountryError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Country::parse(s)
    }
}

impl Serialize for Country {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Country::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A named set of countries that a policy may use in place of listing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Group {
    /// The 27 member states and the French outermost regions.
    #[serde(rename = "EU")]
    Eu,
    /// The EU plus Iceland, Liechtenstein and Norway.
    #[serde(rename = "EEA")]
    Eea,
    /// Third countries with a GDPR adequacy decision (not the US, see [`EU_ADEQUACY`]).
    #[serde(rename = "EU_ADEQUACY")]
    EuAdequacy,
}

impl Group {
    pub const ALL: [Group; 3] = [Group::Eu, Group::Eea, Group::EuAdequacy];

    pub fn name(self) -> &'static str {
        match self {
            Group::Eu => "EU",
            Group::Eea => "EEA",
            Group::EuAdequacy => "EU_ADEQUACY",
        }
    }

    pub fn by_name(name: &str) -> Option<Group> {
        // Case-insensitive, like country codes: `eu` means `EU` as `fr` means `FR`.
        Group::ALL
            .into_iter()
            .find(|g| g.name().eq_ignore_ascii_case(name))
    }

    pub fn members(self) -> CountrySet {
        let codes: Vec<&str> = match self {
            Group::Eu => EU.to_vec(),
            Group::Eea => EU.iter().chain(EEA_ONLY).copied().collect(),
            Group::EuAdequacy => EU_ADEQUACY.to_vec(),
        };
        codes
            .into_iter()
            .map(|c| Country::parse(c).expect("group members are assigned codes"))
            .collect()
    }
}

/// One entry of a policy's `allowed_locations` / `allowed_operators`: a group or a country.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountryOrGroup {
    Group(Group),
    Country(Country),
}

impl CountryOrGroup {
    /// Parses `"EU"`, `"EEA"`, `"EU_ADEQUACY"` or a country code, all case-insensitively
    /// (`eu` is `EU` as `fr` is `FR`).
    pub fn parse(s: &str) -> Result<Self, CountryError> {
        if let Some(group) = Group::by_name(s) {
            return Ok(CountryOrGroup::Group(group));
        }
        Country::parse(s).map(CountryOrGroup::Country)
    }

    pub fn as_str(&self) -> &str {
        match self {
            CountryOrGroup::Group(g) => g.name(),
            CountryOrGroup::Country(c) => c.as_str(),
        }
    }
}

impl Serialize for CountryOrGroup {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A set of countries as a 676-bit bitmap: membership is one shift and one mask.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct CountrySet([u64; 11]);

impl CountrySet {
    pub const fn empty() -> Self {
        CountrySet([0; 11])
    }

    pub fn insert(&mut self, country: Country) {
        let i = country.index();
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub fn contains(&self, country: Country) -> bool {
        let i = country.index();
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    pub fn union(mut self, other: CountrySet) -> CountrySet {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a |= b;
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    /// The members in code order.
    pub fn iter(&self) -> impl Iterator<Item = Country> + '_ {
        (0..26 * 26).filter_map(move |i| {
            let c = Country([b'A' + (i / 26) as u8, b'A' + (i % 26) as u8]);
            self.contains(c).then_some(c)
        })
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
}

impl FromIterator<Country> for CountrySet {
    fn from_iter<I: IntoIterator<Item = Country>>(iter: I) -> Self {
        let mut set = CountrySet::empty();
        for c in iter {
            set.insert(c);
        }
        set
    }
}

impl<'a> FromIterator<&'a CountryOrGroup> for CountrySet {
    fn from_iter<I: IntoIterator<Item = &'a CountryOrGroup>>(iter: I) -> Self {
        iter.into_iter()
            .fold(CountrySet::empty(), |set, item| match item {
                CountryOrGroup::Group(g) => set.union(g.members()),
                CountryOrGroup::Country(c) => {
                    let mut set = set;
                    set.insert(*c);
                    set
                }
            })
    }
}

impl fmt::Debug for CountrySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for CountrySet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(code: &str) -> Country {
        Country::parse(code).unwrap()
    }

    #[test]
    fn assigned_list_is_sorted_and_complete() {
        assert!(ASSIGNED.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ASSIGNED.len(), 250, "249 ISO codes plus XK");
        assert_eq!(ASSIGNED_SET.len(), ASSIGNED.len());
        assert!(ASSIGNED.iter().all(|c| Country::parse(c).is_ok()));
    }

    #[test]
    fn parses_case_insensitively_and_rejects_unassigned() {
        assert_eq!(c("fr"), c("FR"));
        assert_eq!(
            Country::parse("UK"),
            Err(CountryError::Unassigned("UK".into()))
        );
        assert_eq!(
            Country::parse("EL"),
            Err(CountryError::Unassigned("EL".into()))
        );
        let uk = Country::parse("uk").unwrap_err().to_string();
        assert!(uk.contains("`GB`"), "{uk}");
        let el = Country::parse("EL").unwrap_err().to_string();
        assert!(el.contains("`GR`"), "{el}");
        let eu = Country::parse("EU").unwrap_err().to_string();
        assert!(eu.contains("is a group"), "{eu}");
        assert!(matches!(
            Country::parse("FRA"),
            Err(CountryError::Malformed(_))
        ));
        assert!(matches!(
            Country::parse("F1"),
            Err(CountryError::Malformed(_))
        ));
        assert!(matches!(
            Country::parse("é"),
            Err(CountryError::Malformed(_))
        ));
    }

    #[test]
    fn database_codes() {
        assert_eq!(Country::from_database("FX"), Some(c("FR")));
        assert_eq!(Country::from_database("EU"), None);
        assert_eq!(Country::from_database("ZZ"), None);
        assert_eq!(Country::from_database("de"), Some(c("DE")));
    }

    #[test]
    fn groups() {
        let eu = Group::Eu.members();
        let eea = Group::Eea.members();
        let adequacy = Group::EuAdequacy.members();
        assert_eq!(eu.len(), 33);
        assert_eq!(eea.len(), 36);
        for code in ["FR", "DE", "GR", "RE", "GF"] {
            assert!(eu.contains(c(code)), "{code} is EU");
        }
        for code in ["GB", "CH", "NO", "US", "BL", "PF", "NC", "GL"] {
            assert!(!eu.contains(c(code)), "{code} is not EU");
        }
        assert!(eea.contains(c("NO")) && eea.contains(c("IS")) && eea.contains(c("LI")));
        assert!(!eea.contains(c("CH")));
        assert!(adequacy.contains(c("CH")) && adequacy.contains(c("GB")));
        assert!(
            !adequacy.contains(c("US")),
            "the DPF does not make the US adequate"
        );
        assert!(!adequacy.contains(c("FR")));
    }

    #[test]
    fn country_or_group() {
        assert_eq!(
            CountryOrGroup::parse("EU"),
            Ok(CountryOrGroup::Group(Group::Eu))
        );
        assert_eq!(
            CountryOrGroup::parse("us"),
            Ok(CountryOrGroup::Country(c("US")))
        );
        assert_eq!(
            CountryOrGroup::parse("eu"),
            Ok(CountryOrGroup::Group(Group::Eu)),
            "groups are case-insensitive like codes"
        );
        assert_eq!(
            CountryOrGroup::parse("eu_adequacy"),
            Ok(CountryOrGroup::Group(Group::EuAdequacy))
        );
        let set: CountrySet = [
            CountryOrGroup::Group(Group::Eea),
            CountryOrGroup::Country(c("US")),
        ]
        .iter()
        .collect();
        assert_eq!(set.len(), 37);
        assert!(set.contains(c("US")));
    }
}
