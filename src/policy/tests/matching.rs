//! Finding the rule: hosts (exact, suffix, not the apex), clients, ports, methods, paths,
//! first-match order across the index lists, rules without hosts, exemption expiry.

use super::*;
use crate::policy::{MatchInput, Note};

const RULES: &str = r#"
[[rule]]
id = "crm-api-post"
hosts = ["crm.example"]
methods = ["POST"]
paths = ["/api/"]

[[rule]]
id = "sante"
clients = ["10.20.0.0/16"]
hosts = ["*.sante.example"]

[[rule]]
id = "crm"
hosts = ["CRM.Example."]

[[rule]]
id = "ports"
hosts = ["*.example"]
ports = [8443]

[[rule]]
id = "by-client"
clients = ["192.0.2.0/24", "2001:db8::/32"]

[[rule]]
id = "literal"
hosts = ["198.51.100.7"]

[[rule]]
id = "idn"
hosts = ["*.bücher.example"]

[[rule]]
id = "deep-suffix"
hosts = ["*.a.b.example"]
"#;

fn rules() -> Policy {
    policy(&format!("{BASE}{RULES}"))
}

fn find(
    p: &Policy,
    client: &str,
    dest: &Destination,
    http: Option<(&str, &str)>,
) -> Option<String> {
    let input = MatchInput {
        client: ip(client),
        destination: dest,
        http,
    };
    p.find_rule(&input, TODAY).rule.map(|r| r.id.to_string())
}

#[test]
fn exact_and_suffix() {
    let p = rules();
    let outside = "172.16.0.1";
    assert_eq!(
        find(&p, outside, &name("crm.example", 443), None).as_deref(),
        Some("crm")
    );
    assert_eq!(
        find(&p, outside, &name("x.crm.example", 443), None),
        None,
        "exact is exact"
    );
    assert_eq!(
        find(&p, "10.20.1.1", &name("dmp.sante.example", 443), None).as_deref(),
        Some("sante")
    );
    assert_eq!(
        find(&p, "10.20.1.1", &name("a.b.sante.example", 443), None).as_deref(),
        Some("sante")
    );
    assert_eq!(
        find(&p, "10.20.1.1", &name("sante.example", 443), None),
        None,
        "`*.` does not match the apex"
    );
    assert_eq!(
        find(&p, outside, &name("x.bücher.example", 443), None),
        None,
        "destinations are already punycode"
    );
    assert_eq!(
        find(&p, outside, &name("x.xn--bcher-kva.example", 443), None).as_deref(),
        Some("idn")
    );
    assert_eq!(
        find(&p, outside, &name("z.a.b.example", 443), None).as_deref(),
        Some("deep-suffix")
    );
    assert_eq!(find(&p, outside, &name("a.b.example", 443), None), None);
    assert_eq!(
        find(&p, outside, &name("notsante.example", 443), None),
        None,
        "label boundary"
    );
}

#[test]
fn clients() {
    let p = rules();
    let d = name("dmp.sante.example", 443);
    assert_eq!(find(&p, "10.21.0.1", &d, None), None);
    assert_eq!(
        find(&p, "::ffff:10.20.0.9", &d, None).as_deref(),
        Some("sante"),
        "mapped client is its IPv4"
    );
    assert_eq!(
        find(&p, "192.0.2.200", &name("anything.example", 443), None).as_deref(),
        Some("by-client")
    );
    assert_eq!(
        find(&p, "2001:db8::1", &name("anything.example", 443), None).as_deref(),
        Some("by-client")
    );
    assert_eq!(
        find(&p, "2001:db9::1", &name("anything.example", 443), None),
        None
    );
}

#[test]
fn ports_methods_paths() {
    let p = rules();
    let outside = "172.16.0.1";
    assert_eq!(
        find(&p, outside, &name("shop.example", 8443), None).as_deref(),
        Some("ports")
    );
    assert_eq!(find(&p, outside, &name("shop.example", 443), None), None);
    let crm = name("crm.example", 443);
    assert_eq!(
        find(&p, outside, &crm, Some(("POST", "/api/v1?x=1"))).as_deref(),
        Some("crm-api-post")
    );
    assert_eq!(
        find(&p, outside, &crm, Some(("GET", "/api/v1"))).as_deref(),
        Some("crm"),
        "method"
    );
    assert_eq!(
        find(&p, outside, &crm, Some(("POST", "/apis"))).as_deref(),
        Some("crm"),
        "path prefix"
    );
    assert_eq!(
        find(&p, outside, &crm, Some(("POST", "/x?/api/"))).as_deref(),
        Some("crm"),
        "query ignored"
    );
    assert_eq!(
        find(&p, outside, &crm, None).as_deref(),
        Some("crm"),
        "a tunnel shows no method"
    );
}

#[test]
fn first_match_wins_across_lists() {
    // The suffix rule comes first, so it beats the exact one; the host-less rule first of
    // all beats both for its clients.
    let p = policy(&format!(
        r#"{BASE}
[[rule]]
id = "all-from-lab"
clients = ["10.99.0.0/16"]

[[rule]]
id = "suffix"
hosts = ["*.example"]

[[rule]]
id = "exact"
hosts = ["crm.example", "*.other.example"]
"#
    ));
    assert_eq!(
        find(&p, "10.99.0.1", &name("crm.example", 443), None).as_deref(),
        Some("all-from-lab")
    );
    assert_eq!(
        find(&p, "10.1.0.1", &name("crm.example", 443), None).as_deref(),
        Some("suffix")
    );
    assert_eq!(
        find(&p, "10.1.0.1", &name("x.other.example", 443), None).as_deref(),
        Some("suffix")
    );
    assert_eq!(find(&p, "10.1.0.1", &name("example", 443), None), None);
}

#[test]
fn ip_literal_hosts() {
    let p = rules();
    let d = Destination {
        host: Host::Ip(ip("198.51.100.7")),
        port: 443,
    };
    assert_eq!(find(&p, "172.16.0.1", &d, None).as_deref(), Some("literal"));
    let d = Destination {
        host: Host::Ip(ip("::ffff:198.51.100.7")),
        port: 443,
    };
    assert_eq!(find(&p, "172.16.0.1", &d, None).as_deref(), Some("literal"));
}

#[test]
fn exemption_expiry_is_inclusive() {
    let p = policy(&format!(
        r#"{BASE}
[[rule]]
id = "ex"
hosts = ["*.outlook.com"]
action = "allow"
justification = "marché en cours"
expires = 2027-06-30

[[rule]]
id = "after"
hosts = ["*.com"]
"#
    ));
    let d = name("mail.outlook.com", 443);
    let input = MatchInput {
        client: ip("10.0.0.1"),
        destination: &d,
        http: None,
    };
    let on_the_day = p.find_rule(&input, date!(2027 - 06 - 30));
    assert_eq!(on_the_day.rule.map(|r| &*r.id), Some("ex"));
    assert!(on_the_day.notes.is_empty());
    let next_day = p.find_rule(&input, date!(2027 - 07 - 01));
    assert_eq!(next_day.rule.map(|r| &*r.id), Some("after"));
    assert_eq!(
        next_day.notes,
        [Note::ExemptionExpired {
            rule: "ex".into(),
            expired: date!(2027 - 06 - 30)
        }]
    );

    assert_eq!(p.exemptions().len(), 1);
    assert_eq!(p.expiring_within(date!(2027 - 06 - 01), 30).len(), 1);
    assert_eq!(p.expiring_within(date!(2027 - 05 - 30), 30).len(), 0);
    assert_eq!(
        p.expiring_within(date!(2027 - 07 - 01), 30).len(),
        0,
        "already expired"
    );
    assert_eq!(p.expired(date!(2027 - 07 - 01)).len(), 1);
    let json = serde_json::to_value(p.summary()).unwrap();
    assert_eq!(json["rules"][0]["expires"], "2027-06-30");
}

#[test]
fn ten_thousand_rules_index() {
    let mut text = String::from(BASE);
    for i in 0..10_000 {
        text.push_str(&format!(
            "[[rule]]\nid = \"r{i}\"\nhosts = [\"*.svc{i}.example\", \"app{i}.example\"]\n"
        ));
        if i % 2 == 0 {
            text.push_str(&format!("clients = [\"10.{}.0.0/16\"]\n", i % 250));
        }
    }
    text.push_str("[[rule]]\nid = \"catch-all\"\n");
    let started = std::time::Instant::now();
    let p = policy(&text);
    let compiled = started.elapsed();
    let started = std::time::Instant::now();
    assert_eq!(
        find(&p, "10.0.0.1", &name("x.svc9999.example", 443), None).as_deref(),
        Some("r9999")
    );
    assert_eq!(
        find(&p, "10.0.0.1", &name("app5001.example", 443), None).as_deref(),
        Some("r5001")
    );
    assert_eq!(
        find(&p, "10.0.0.1", &name("app5002.example", 443), None).as_deref(),
        Some("catch-all"),
        "client differs"
    );
    assert_eq!(
        find(&p, "10.2.0.1", &name("app5002.example", 443), None).as_deref(),
        Some("r5002")
    );
    assert_eq!(
        find(&p, "10.0.0.1", &name("elsewhere.example", 443), None).as_deref(),
        Some("catch-all")
    );
    eprintln!(
        "debug build: 10k rules loaded in {compiled:?}, 5 lookups in {:?}",
        started.elapsed()
    );
}
