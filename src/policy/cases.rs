//! The policy's `[[test]]` cases, run through the real `decide()` (so through the real
//! geolocation state), for `douane test`.

use std::sync::Arc;

use serde::Serialize;
use time::Date;

use crate::policy::decide::{decide, HttpFacts, Request, Resolution};
use crate::policy::decision::{Decision, Outcome, Reason};
use crate::policy::model::Expect;
use crate::policy::normal::{Origin, TestSpec, TestTarget};
use crate::resolve::{Host, Scheme, Target};
use crate::state::State;

/// The outcome, rule and reason of a decision, as a test states or gets them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expected {
    pub outcome: &'static str,
    /// `None`: not checked (expected) / the policy defaults applied (actual).
    pub rule: Option<Arc<str>>,
    pub reason: Option<Reason>,
}

/// One test's result.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// Where the `[[test]]` is written.
    pub origin: Origin,
    pub url: Box<str>,
    pub description: Option<Box<str>>,
    pub passed: bool,
    pub expected: Expected,
    pub actual: Expected,
    /// The whole decision, for `douane test --verbose` or explain-style output.
    pub decision: Decision,
}

/// Runs every `[[test]]` of the state's policy; `today` applies to the tests without `date`.
pub fn run_cases(state: &State, today: Date) -> Vec<CaseResult> {
    state
        .policy
        .tests
        .iter()
        .map(|t| run_case(state, t, today))
        .collect()
}

fn run_case(state: &State, test: &TestSpec, today: Date) -> CaseResult {
    let http = test
        .target
        .http
        .as_ref()
        .map(|(method, path)| HttpFacts { method, path });
    let req = Request {
        client: test.client,
        destination: &test.target.destination,
        http,
    };
    let decision = decide(
        state,
        &req,
        Resolution::Addresses(&test.resolve),
        test.date.unwrap_or(today),
    );
    let expected = Expected {
        outcome: test.expect.as_str(),
        rule: test.expect_rule.clone(),
        reason: test.expect_reason,
    };
    let actual = Expected {
        outcome: decision.outcome.as_str(),
        rule: decision.rule.clone(),
        reason: Some(decision.reason),
    };
    let passed = outcome_matches(test.expect, decision.outcome)
        && test
            .expect_rule
            .as_ref()
            .is_none_or(|r| decision.rule.as_ref() == Some(r))
        && test.expect_reason.is_none_or(|r| r == decision.reason);
    CaseResult {
        origin: test.origin.clone(),
        url: test.url.clone(),
        description: test.description.clone(),
        passed,
        expected,
        actual,
        decision,
    }
}

fn outcome_matches(expect: Expect, outcome: Outcome) -> bool {
    matches!(
        (expect, outcome),
        (Expect::Allow, Outcome::Allow)
            | (Expect::Exempt, Outcome::Exempt)
            | (Expect::Block, Outcome::Block)
            | (Expect::WouldBlock, Outcome::WouldBlock)
    )
}

/// Reads a test's url into the request douane would see. `method` set (other than
/// `CONNECT`) means HTTP is visible; without it an `http` url is a forward-proxy `GET`
/// and an `https` url a CONNECT tunnel.
///
/// A small local parser, kept in this one function so that it can be swapped for the
/// resolve module's url parsing.
pub(crate) fn parse_url(url: &str, method: Option<&str>) -> Result<TestTarget, String> {
    // A test names its scheme: it decides whether HTTP is visible.
    if !url.contains("://") {
        return Err("needs a scheme, e.g. https://crm.example/".to_owned());
    }
    // The same parser as `douane explain` and the proxy: IDNA, brackets, inet_aton forms.
    let target = Target::parse_url(url).map_err(|e| e.to_string())?;
    let mut destination = target.destination;
    if let Host::Ip(ip) = destination.host {
        destination.host = Host::Ip(crate::policy::compile::canonical_ip(ip));
    }
    let http = match method {
        Some("CONNECT") => None,
        Some(m) => Some((m.into(), target.path)),
        None if target.scheme == Scheme::Http => Some(("GET".into(), target.path)),
        None => None,
    };
    Ok(TestTarget { destination, http })
}

/// Whether a host's last label is numeric (`127.1`, `0x7f.1`): an `inet_aton` form.
pub(crate) fn looks_numeric(host: &str) -> bool {
    let last = host.rsplit('.').next().unwrap_or(host);
    let hex = last
        .strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    hex || (!last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = parse_url("https://CRM.Example./login?x=1", None).unwrap();
        assert_eq!(t.destination.host, Host::Name("crm.example".into()));
        assert_eq!(t.destination.port, 443);
        assert_eq!(t.http, None, "https without method is a tunnel");
        let t = parse_url("http://crm.example:8080", None).unwrap();
        assert_eq!(t.destination.port, 8080);
        assert_eq!(t.http, Some(("GET".into(), "/".into())));
        let t = parse_url("https://[::ffff:192.0.2.1]/a", Some("POST")).unwrap();
        assert_eq!(t.destination.host, Host::Ip("192.0.2.1".parse().unwrap()));
        assert_eq!(t.http, Some(("POST".into(), "/a".into())));
        let t = parse_url("https://bücher.example/", None).unwrap();
        assert_eq!(
            t.destination.host,
            Host::Name("xn--bcher-kva.example".into())
        );
        assert!(parse_url("ftp://x.example/", None).is_err());
        assert!(parse_url("x.example", None).is_err());
        let t = parse_url("https://0x7f.1/", None).unwrap();
        assert_eq!(
            t.destination.host,
            Host::Ip("127.0.0.1".parse().unwrap()),
            "an inet_aton form is read as the address it means"
        );
        assert!(parse_url("https://a.0x7f/", None).is_err());
        assert!(parse_url("https://256.1.1.1/", None).is_err());
        assert!(parse_url("https://x.example:99999/", None).is_err());
    }
}
