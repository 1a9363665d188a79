//! The decision: ports, actions, all vs pin, monitor mode, unknown_* modes, special
//! addresses, DNS failures, and `decide()` / `run_cases()` through a real `State`.

use super::*;
use crate::geo::{Geo, SpecialRange};
use crate::policy::{
    decide, run_cases, Decision, HttpFacts, Mode, Note, Outcome, Reason, Request, Resolution,
    Violation,
};
use crate::resolve::DnsFailure;
use crate::state::State;

fn judge(p: &Policy, client: &str, dest: &Destination, classes: Vec<Classification>) -> Decision {
    let req = Request {
        client: ip(client),
        destination: dest,
        http: None,
    };
    p.judge(&req, classes, TODAY, &provenance(p))
}

fn summary(d: &Decision) -> (Outcome, Reason, Option<&str>) {
    (d.outcome, d.reason, d.rule.as_deref())
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| ip(s)).collect()
}

const RULES: &str = r#"
[[rule]]
id = "sante"
hosts = ["*.sante.example"]
allowed_locations = ["FR"]
allowed_operators = ["FR"]

[[rule]]
id = "pinned"
hosts = ["*.cdn.example"]
ip_selection = "pin"

[[rule]]
id = "interdit"
hosts = ["*.tracker.example"]
action = "block"

[[rule]]
id = "ex"
hosts = ["*.outlook.com"]
action = "allow"
justification = "marché en cours"
expires = 2027-06-30

[[rule]]
id = "admin"
hosts = ["admin.example"]
allowed_ports = [8443]

[[rule]]
id = "lax"
hosts = ["*.lax.example"]
unknown_location = "allow"
unknown_operator = "allow"

[[rule]]
id = "strict-op"
hosts = ["*.strict.example"]
unknown_operator = "block"
"#;

fn pol(mode: &str) -> Policy {
    policy(&format!("{BASE}mode = \"{mode}\"\n{RULES}"))
}

const FR_FR: (&str, Option<&str>, Option<&str>) = ("192.0.2.1", Some("FR"), Some("FR"));

fn cl(t: (&str, Option<&str>, Option<&str>)) -> Classification {
    class(t.0, t.1, t.2)
}

#[test]
fn defaults_allow_and_block() {
    let p = pol("enforce");
    let d = judge(
        &p,
        "10.0.0.1",
        &name("www.example", 443),
        vec![cl(FR_FR), class("192.0.2.2", Some("DE"), Some("NO"))],
    );
    assert_eq!(summary(&d), (Outcome::Allow, Reason::Compliant, None));
    assert_eq!(d.connect, ips(&["192.0.2.1", "192.0.2.2"]));
    assert!(d.ips.iter().all(|v| v.violation.is_none()));

    // AWS Paris: located in FR, operated under US law.
    let d = judge(
        &p,
        "10.0.0.1",
        &name("www.example", 443),
        vec![class("192.0.2.3", Some("FR"), Some("US"))],
    );
    assert_eq!(
        summary(&d),
        (Outcome::Block, Reason::OperatorNotAllowed, None)
    );
    assert_eq!(
        d.ips[0].violation,
        Some(Violation::OperatorNotAllowed {
            jurisdiction: c("US")
        })
    );
    assert!(d.connect.is_empty());
    assert_eq!(d.block_status(), 451);

    let d = judge(
        &p,
        "10.0.0.1",
        &name("www.example", 443),
        vec![class("192.0.2.3", Some("US"), Some("FR"))],
    );
    assert_eq!(
        summary(&d),
        (Outcome::Block, Reason::LocationNotAllowed, None)
    );
}

#[test]
fn rule_sets_apply() {
    let p = pol("enforce");
    let de = class("192.0.2.9", Some("DE"), Some("DE"));
    let d = judge(
        &p,
        "10.0.0.1",
        &name("dmp.sante.example", 443),
        vec![de.clone()],
    );
    assert_eq!(
        summary(&d),
        (Outcome::Block, Reason::LocationNotAllowed, Some("sante"))
    );
    let d = judge(&p, "10.0.0.1", &name("www.example", 443), vec![de]);
    assert_eq!(summary(&d), (Outcome::Allow, Reason::Compliant, None));
}

#[test]
fn all_versus_pin() {
    let p = pol("enforce");
    let mixed = || {
        vec![
            class("192.0.2.4", Some("US"), Some("US")),
            cl(FR_FR),
            class("192.0.2.5", Some("DE"), Some("DE")),
        ]
    };
    let d = judge(&p, "10.0.0.1", &name("www.example", 443), mixed());
    assert_eq!(
        summary(&d),
        (Outcome::Block, Reason::LocationNotAllowed, None),
        "all: one foreign address blocks"
    );
    let d = judge(&p, "10.0.0.1", &name("img.cdn.example", 443), mixed());
    assert_eq!(
        summary(&d),
        (Outcome::Allow, Reason::Compliant, Some("pinned"))
    );
    assert_eq!(
        d.connect,
        ips(&["192.0.2.1", "192.0.2.5"]),
        "pin: the compliant ones, in order"
    );
    let d = judge(
        &p,
        "10.0.0.1",
        &name("img.cdn.example", 443),
        vec![
            class("192.0.2.1", Some("US"), Some("US")),
            class("192.0.2.2", None, None),
        ],
    );
    assert_eq!(
        summary(&d),
        (Outcome::Block, Reason::LocationNotAllowed, Some("pinned")),
        "pin: none compliant"
    );
}

#[test]
fn monitor_mode() {
    let p = pol("monitor");
    let foreign = vec![class("192.0.2.4", Some("US"), Some("US")), cl(FR_FR)];
    let d = judge(&p, "10.0.0.1", &name("www.example", 443), foreign);
    assert_eq!(
        summary(&d),
        (Outcome::WouldBlock, Reason::LocationNotAllowed, None)
    );
    assert_eq!(d.mode, Mode::Monitor);
    assert_eq!(
        d.connect,
        ips(&["192.0.2.4", "192.0.2.1"]),
        "would-block: every address"
    );
    let d = judge(
        &p,
        "10.0.0.1",
        &name("x.tracker.example", 443),
        vec![cl(FR_FR)],
    );
    assert_eq!(
        summary(&d),
        (Outcome::WouldBlock, Reason::RuleBlock, Some("interdit"))
    );
    // Security blocks stay blocks.
    let d = judge(&p, "10.0.0.1", &name("www.example", 25), vec![cl(FR_FR)]);
    assert_eq!(summary(&d), (Outcome::Block, Reason::PortNotAllowed, None));
    let d = judge(
        &p,
        "10.0.0.1",
        &name("www.example", 443),
        vec![special("127.0.0.1", SpecialRange::Loopback, None)],
    );
    assert_eq!(summary(&d), (Outcome::Block, Reason::SpecialAddress, None));
    assert_eq!(d.block_status(), 403);
}

#[test]
fn actions() {
    let p = pol("enforce");
    let us = || vec![class("192.0.2.1", Some("US"), Some("US"))];
    let d = judge(
        &p,
        "10.0.0.1",
        &name("x.tracker.example", 443),
        vec![cl(FR_FR)],
    );
    assert_eq!(
        summary(&d),
        (Outcome::Block, Reason::RuleBlock, Some("interdit"))
    );
    assert!(d.connect.is_empty());
    let d = judge(&p, "10.0.0.1", &name("mail.outlook.com", 443), us());
    assert_eq!(
        summary(&d),
        (Outcome::Exempt, Reason::Exemption, Some("ex"))
    );
    assert_eq!(d.connect, ips(&["192.0.2.1"]));
    assert_eq!(
        d.ips[0].violation, None,
        "jurisdictions are not judged under an exemption"
    );

    // Expired: the defaults apply again, and the decision says why.
    let req = Request {
        client: ip("10.0.0.1"),
        destination: &name("mail.outlook.com", 443),
        http: None,
    };
    let d = p.judge(&req, us(), date!(2027 - 07 - 01), &provenance(&p));
    assert_eq!(
        summary(&d),
        (Outcome::Block, Reason::LocationNotAllowed, None)
    );
    assert_eq!(
        d.notes,
        [Note::ExemptionExpired {
            rule: "ex".into(),
            expired: date!(2027 - 06 - 30)
        }]
    );
}

#[test]
fn ports() {
    let p = pol("enforce");
    let d = judge(
        &p,
        "10.0.0.1",
        &name("admin.example", 8443),
        vec![cl(FR_FR)],
    );
    assert_eq!(
        summary(&d),
        (Outcome::Allow, Reason::Compliant, Some("admin"))
    );
    let d = judge(&p, "10.0.0.1", &name("admin.example", 443), vec![cl(FR_FR)]);
    assert_eq!(
        summary(&d),
        (Outcome::Block, Reason::PortNotAllowed, Some("admin"))
    );
    let d = judge(
        &p,
        "10.0.0.1",
        &name("mail.outlook.com", 8080),
        vec![cl(FR_FR)],
    );
    assert_eq!(
        summary(&d),
        (Outcome::Block, Reason::PortNotAllowed, Some("ex")),
        "exemptions keep the port gate"
    );
    assert_eq!(d.ips.len(), 1, "addresses are still shown");
}

#[test]
fn unknown_modes() {
    let p = pol("enforce");
    let unknown_both = || vec![class("192.0.2.1", None, None)];
    let unknown_op = || vec![class("192.0.2.1", Some("FR"), None)];
    // Defaults: unknown_location = block, unknown_operator = location.
    let d = judge(&p, "10.0.0.1", &name("www.example", 443), unknown_both());
    assert_eq!(summary(&d), (Outcome::Block, Reason::UnknownLocation, None));
    let d = judge(&p, "10.0.0.1", &name("www.example", 443), unknown_op());
    assert_eq!(
        summary(&d),
        (Outcome::Allow, Reason::Compliant, None),
        "judged by location alone"
    );
    // Rule "lax": both allow.
    let d = judge(&p, "10.0.0.1", &name("a.lax.example", 443), unknown_both());
    assert_eq!(
        summary(&d),
        (Outcome::Allow, Reason::Compliant, Some("lax"))
    );
    // Rule "strict-op": unknown operator blocks.
    let d = judge(&p, "10.0.0.1", &name("a.strict.example", 443), unknown_op());
    assert_eq!(
        summary(&d),
        (Outcome::Block, Reason::UnknownOperator, Some("strict-op"))
    );
    // "location" with no location to judge by: an unknown-operator violation.
    let p2 = policy(&format!("{BASE}unknown_location = \"allow\"\n"));
    let d = judge(&p2, "10.0.0.1", &name("www.example", 443), unknown_both());
    assert_eq!(summary(&d), (Outcome::Block, Reason::UnknownOperator, None));
    let p3 = policy(&format!(
        "{BASE}unknown_location = \"allow\"\nunknown_operator = \"allow\"\n"
    ));
    let d = judge(&p3, "10.0.0.1", &name("www.example", 443), unknown_both());
    assert_eq!(summary(&d), (Outcome::Allow, Reason::Compliant, None));
}

#[test]
fn special_addresses() {
    let p = pol("enforce");
    let meta = || special("169.254.169.254", SpecialRange::LinkLocal, None);
    let d = judge(
        &p,
        "10.0.0.1",
        &name("www.example", 443),
        vec![cl(FR_FR), meta()],
    );
    assert_eq!(
        summary(&d),
        (Outcome::Block, Reason::SpecialAddress, None),
        "all: one special blocks"
    );
    assert_eq!(
        d.ips[1].violation,
        Some(Violation::Special {
            range: SpecialRange::LinkLocal
        })
    );
    // An exemption is about jurisdiction, not SSRF.
    let d = judge(&p, "10.0.0.1", &name("mail.outlook.com", 443), vec![meta()]);
    assert_eq!(
        summary(&d),
        (Outcome::Block, Reason::SpecialAddress, Some("ex"))
    );
    // Pin skips the special address like any non-compliant one…
    let d = judge(
        &p,
        "10.0.0.1",
        &name("a.cdn.example", 443),
        vec![meta(), cl(FR_FR)],
    );
    assert_eq!(
        summary(&d),
        (Outcome::Allow, Reason::Compliant, Some("pinned"))
    );
    assert_eq!(d.connect, ips(&[FR_FR.0]));
    // …and blocks (403) when nothing else is left.
    let d = judge(&p, "10.0.0.1", &name("a.cdn.example", 443), vec![meta()]);
    assert_eq!(
        summary(&d),
        (Outcome::Block, Reason::SpecialAddress, Some("pinned"))
    );
    // A network entry names it: judged like any address, by what the entry says.
    let named = special("10.1.2.3", SpecialRange::Private, Some("dc"));
    let d = judge(&p, "10.0.0.1", &name("intranet.example", 443), vec![named]);
    assert_eq!(summary(&d), (Outcome::Allow, Reason::Compliant, None));
    assert_eq!(d.connect, ips(&["10.1.2.3"]));
    // Monitor + pin: specials are never in `connect`.
    let m = pol("monitor");
    let d = judge(
        &m,
        "10.0.0.1",
        &name("a.cdn.example", 443),
        vec![meta(), class("192.0.2.7", Some("US"), Some("US"))],
    );
    assert_eq!(
        summary(&d),
        (
            Outcome::WouldBlock,
            Reason::LocationNotAllowed,
            Some("pinned")
        )
    );
    assert_eq!(d.connect, ips(&["192.0.2.7"]));
}

#[test]
fn methods_need_visible_http() {
    let p = policy(&format!(
        "{BASE}\n[[rule]]\nid = \"no-upload\"\nhosts = [\"drive.example\"]\nmethods = [\"PUT\", \"POST\"]\naction = \"block\"\n"
    ));
    let dest = name("drive.example", 443);
    let put = Request {
        client: ip("10.0.0.1"),
        destination: &dest,
        http: Some(HttpFacts {
            method: "PUT",
            path: "/f",
        }),
    };
    let d = p.judge(&put, vec![cl(FR_FR)], TODAY, &provenance(&p));
    assert_eq!(
        summary(&d),
        (Outcome::Block, Reason::RuleBlock, Some("no-upload"))
    );
    let tunnel = Request { http: None, ..put };
    let d = p.judge(&tunnel, vec![cl(FR_FR)], TODAY, &provenance(&p));
    assert_eq!(summary(&d), (Outcome::Allow, Reason::Compliant, None));
}

fn state(p: Policy) -> State {
    let provenance = provenance(&p);
    State {
        policy: p,
        geo: Geo {
            country: None,
            asn: None,
            registry: Default::default(),
            published: None,
        },
        provenance,
    }
}

#[test]
fn decide_dns_failures_and_literals() {
    let s = state(policy(&format!(
        "{BASE}unknown_location = \"allow\"\nunknown_operator = \"allow\"\n"
    )));
    let dest = name("www.example", 443);
    let req = Request {
        client: ip("10.0.0.1"),
        destination: &dest,
        http: None,
    };
    for (failure, reason, status) in [
        (DnsFailure::NxDomain, Reason::DnsNxDomain, 502),
        (DnsFailure::ServFail, Reason::DnsServFail, 502),
        (DnsFailure::Timeout, Reason::DnsTimeout, 504),
        (DnsFailure::Refused, Reason::DnsRefused, 502),
        (DnsFailure::Other, Reason::DnsError, 502),
    ] {
        let d = decide(&s, &req, Resolution::Failed(failure), TODAY);
        assert_eq!(
            (d.outcome, d.reason, d.block_status()),
            (Outcome::Failed, reason, status)
        );
        assert!(d.ips.is_empty() && d.connect.is_empty());
    }
    let d = decide(&s, &req, Resolution::Addresses(&[]), TODAY);
    assert_eq!(d.reason, Reason::DnsNoAddresses);
    // The port gate comes before the lookup's result.
    let d = decide(
        &s,
        &Request {
            destination: &name("www.example", 22),
            ..req
        },
        Resolution::Failed(DnsFailure::NxDomain),
        TODAY,
    );
    assert_eq!(d.reason, Reason::PortNotAllowed);

    let addrs = ips(&["1.2.3.4", "2a01:e0a::1"]);
    let d = decide(&s, &req, Resolution::Addresses(&addrs), TODAY);
    assert_eq!(
        d.outcome,
        Outcome::Allow,
        "no database is loaded, and this policy allows unknown locations"
    );
    assert_eq!(d.connect, addrs);
    assert!(std::sync::Arc::ptr_eq(&d.provenance, &s.provenance));

    // An IP literal is its own address; the resolution is not consulted.
    let literal = Destination {
        host: Host::Ip(ip("5.6.7.8")),
        port: 443,
    };
    let req = Request {
        client: ip("10.0.0.1"),
        destination: &literal,
        http: None,
    };
    let d = decide(&s, &req, Resolution::Failed(DnsFailure::NxDomain), TODAY);
    assert_eq!(d.connect, ips(&["5.6.7.8"]));
}

#[test]
fn cases_report_pass_and_fail() {
    let text = format!(
        r#"{BASE}unknown_location = "allow"
unknown_operator = "allow"

[[rule]]
id = "interdit"
hosts = ["*.tracker.example"]
action = "block"

[[rule]]
id = "ex"
hosts = ["*.outlook.com"]
action = "allow"
justification = "marché"
expires = 2027-06-30

[[test]]
url = "https://a.tracker.example/"
resolve = ["1.2.3.4"]
expect = "block"
expect_rule = "interdit"
expect_reason = "rule_block"

[[test]]
url = "https://www.example/"
resolve = ["1.2.3.4"]
expect = "block"
description = "wrong on purpose"

[[test]]
url = "https://mail.outlook.com/"
resolve = ["1.2.3.4"]
date = 2027-07-01
expect = "allow"

[[test]]
url = "https://mail.outlook.com/"
resolve = ["1.2.3.4"]
expect = "exempt"
expect_rule = "interdit"
"#
    );
    let s = state(policy(&text));
    let results = run_cases(&s, TODAY);
    let passed: Vec<bool> = results.iter().map(|r| r.passed).collect();
    assert_eq!(passed, [true, false, true, false]);
    assert_eq!(results[1].expected.outcome, "block");
    assert_eq!(results[1].actual.outcome, "allow");
    assert_eq!(results[1].origin.line, 28);
    assert_eq!(results[1].origin.path.to_str(), Some("p.toml"));
    assert_eq!(
        results[2].decision.notes.len(),
        1,
        "decided on the test's own date"
    );
    assert_eq!(results[3].actual.rule.as_deref(), Some("ex"));
}

#[test]
fn groups_in_policies() {
    let p = policy(
        "[policy]\nname = \"g\"\nallowed_locations = [\"EEA\", \"EU_ADEQUACY\"]\nallowed_operators = [\"EU\"]\n\
         \n[[rule]]\nid = \"dpf\"\nhosts = [\"*.us-saas.example\"]\nallowed_operators = [\"EU\", \"US\"]\n",
    );
    let at = |loc: &str, op: &str| vec![class("192.0.2.1", Some(loc), Some(op))];
    let www = name("www.example", 443);
    assert_eq!(
        judge(&p, "10.0.0.1", &www, at("CH", "FR")).outcome,
        Outcome::Allow,
        "CH is adequate"
    );
    assert_eq!(
        judge(&p, "10.0.0.1", &www, at("NO", "DE")).outcome,
        Outcome::Allow,
        "NO is EEA"
    );
    assert_eq!(
        judge(&p, "10.0.0.1", &www, at("US", "FR")).reason,
        Reason::LocationNotAllowed,
        "the US is not adequate"
    );
    assert_eq!(
        judge(&p, "10.0.0.1", &www, at("FR", "CH")).reason,
        Reason::OperatorNotAllowed,
        "operators: EU only"
    );
    let saas = name("app.us-saas.example", 443);
    assert_eq!(
        judge(&p, "10.0.0.1", &saas, at("IE", "US")).outcome,
        Outcome::Allow,
        "US named explicitly"
    );
}

#[test]
fn default_policy_allows_nothing() {
    let p = Policy::default();
    let d = judge(&p, "10.0.0.1", &name("www.example", 443), vec![cl(FR_FR)]);
    assert_eq!(
        summary(&d),
        (Outcome::Block, Reason::LocationNotAllowed, None)
    );
}
