//! Tests of the block page: what a person and an API client read.

use std::sync::Arc;

use super::*;
use crate::country::Country;
use crate::geo::{Classification, Origin};
use crate::policy::{Mode, Outcome, Provenance};

fn aws_paris() -> IpVerdict {
    IpVerdict {
        class: Classification {
            ip: "203.0.113.10".parse().expect("ip"),
            special: None,
            network: None,
            location: Some(Country::parse("FR").expect("FR")),
            location_origin: Origin::Database,
            asn: Some(16509),
            as_org: Some("AMAZON-02".into()),
            operator: Some(Arc::from("Amazon")),
            jurisdiction: Some(Country::parse("US").expect("US")),
            operator_origin: Origin::Registry,
            published: None,
        },
        violation: Some(Violation::OperatorNotAllowed {
            jurisdiction: Country::parse("US").expect("US"),
        }),
    }
}

pub(crate) fn decision(reason: Reason) -> Decision {
    Decision {
        outcome: Outcome::Block,
        reason,
        rule: Some(Arc::from("sante")),
        mode: Mode::Enforce,
        ips: vec![aws_paris()],
        connect: vec![],
        notes: vec![],
        provenance: Arc::new(Provenance {
            policy_name: Arc::from("mairie-default"),
            policy_version: Arc::from("3f2a9c1b7d4e5f60718293a4"),
            country_db_built: None,
            asn_db_built: None,
            registry_version: Arc::from("r1"),
            published: None,
        }),
    }
}

fn facts<'a>(d: &'a Decision, host: &'a str) -> BlockFacts<'a> {
    BlockFacts {
        decision: d,
        host,
        request_id: "01JD4Z8Q7R2M5X",
        contact: Some("dpo@mairie.example"),
        policy_link: Some("https://intranet.mairie.example/residence"),
    }
}

#[test]
fn the_page_says_why_in_french_then_english() {
    let d = decision(Reason::OperatorNotAllowed);
    let page = html(&facts(&d, "crm.example"));
    let fr = page.find("Accès bloqué").expect("fr title");
    let en = page.find("Access blocked").expect("en title");
    assert!(fr < en, "French first");
    assert!(
        page.contains("il est exploité par Amazon, soumis au droit des États-Unis"),
        "{page}"
    );
    assert!(page.contains("se trouve en France"), "{page}");
    assert!(page.contains("it is operated by Amazon, under the law of the United States"));
    assert!(page.contains("Opérateur soumis à un droit non autorisé"));
    assert!(page.contains("<code>sante</code>"));
    assert!(page.contains("01JD4Z8Q7R2M5X"));
    assert!(
        page.contains("href=\"mailto:dpo@mairie.example?subject=douane%2001JD4Z8Q7R2M5X\""),
        "{page}"
    );
    assert!(page.contains("href=\"https://intranet.mairie.example/residence\""));
    assert!(page.contains("name=\"viewport\""));
}

#[test]
fn the_page_loads_nothing_from_elsewhere() {
    let d = decision(Reason::LocationNotAllowed);
    let f = BlockFacts {
        contact: None,
        policy_link: None,
        ..facts(&d, "crm.example")
    };
    let page = html(&f);
    for needle in [
        "src=", "<link", "@import", "url(", "<script", "http://", "https://",
    ] {
        assert!(!page.contains(needle), "{needle} in {page}");
    }
    assert!(page.contains("adressez-vous à votre service informatique"));
}

#[test]
fn every_reason_has_words_in_both_languages() {
    for reason in Reason::ALL {
        let [(fr_t, fr_s), (en_t, en_s)] = reason_words(reason);
        assert!(!fr_t.is_empty() && !fr_s.is_empty() && !en_t.is_empty() && !en_s.is_empty());
        assert_ne!(fr_t, en_t, "{reason:?}");
        let d = decision(reason);
        let page = html(&facts(&d, "x.example"));
        assert!(
            page.contains(&esc(fr_t)) && page.contains(&esc(en_t)),
            "{reason:?}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&problem_json(&facts(&d, "x.example"))).expect("json");
        assert_eq!(json["reason"], reason.as_str());
        assert_eq!(json["status"], reason.block_status());
    }
}

#[test]
fn hostile_input_is_escaped_and_never_a_link() {
    let d = decision(Reason::RuleBlock);
    let f = BlockFacts {
        contact: Some("javascript:alert(1)"),
        policy_link: Some("\"><script>x</script>"),
        ..facts(&d, "<img src=x onerror=alert(1)>.example")
    };
    let page = html(&f);
    assert!(
        !page.contains("<script>") && !page.contains("<img"),
        "{page}"
    );
    assert!(!page.contains("href=\"javascript"), "{page}");
    assert!(page.contains("javascript:alert(1)"));
}

#[test]
fn problem_json_carries_the_same_facts() {
    let d = decision(Reason::OperatorNotAllowed);
    let r = response(&facts(&d, "crm.example"), true);
    assert_eq!(r.status(), 451);
    assert_eq!(r.headers()[CONTENT_TYPE], "application/problem+json");
    assert_eq!(r.headers()[REQUEST_ID], "01JD4Z8Q7R2M5X");
    assert_eq!(
        r.headers()[LINK],
        "<https://intranet.mairie.example/residence>; rel=\"blocked-by\""
    );
    let v: serde_json::Value = serde_json::from_slice(r.body()).expect("json");
    assert_eq!(v["type"], "tag:douane,2026:reason:operator_not_allowed");
    assert_eq!(v["title"], "Unavailable For Legal Reasons");
    assert_eq!(v["status"], 451);
    assert_eq!(v["rule"], "sante");
    assert_eq!(v["request_id"], "01JD4Z8Q7R2M5X");
    assert_eq!(v["contact"], "dpo@mairie.example");
    assert_eq!(v["addresses"][0]["operator"], "Amazon");
    assert_eq!(v["addresses"][0]["operator_jurisdiction_fr"], "États-Unis");
    assert_eq!(v["addresses"][0]["location_en"], "France");
    assert!(v["detail"]
        .as_str()
        .is_some_and(|s| s.contains("crm.example")));
}

#[test]
fn no_link_header_without_a_configured_link() {
    let d = decision(Reason::SpecialAddress);
    let f = BlockFacts {
        policy_link: None,
        ..facts(&d, "10.0.0.1")
    };
    let r = response(&f, false);
    assert_eq!(r.status(), 403);
    assert!(r.headers().get(LINK).is_none());
    assert_eq!(r.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
}

#[test]
fn accept_negotiation() {
    let v = HeaderValue::from_static;
    assert!(wants_json(Some(&v("application/problem+json"))));
    assert!(wants_json(Some(&v("application/json, text/html;q=0.5"))));
    assert!(!wants_json(Some(&v(
        "text/html,application/xhtml+xml,application/json"
    ))));
    assert!(!wants_json(Some(&v("*/*"))));
    assert!(!wants_json(None));
}

/// `DOUANE_SAMPLE_DIR=/tmp/x cargo test --lib block_page` writes sample pages to look at.
#[test]
fn write_samples_when_asked() {
    let Some(dir) = std::env::var_os("DOUANE_SAMPLE_DIR") else {
        return;
    };
    let mut d = decision(Reason::OperatorNotAllowed);
    d.notes.push(Note::ExemptionExpired {
        rule: Arc::from("exemption-messagerie"),
        expired: time::macros::date!(2026 - 06 - 30),
    });
    let dir = std::path::PathBuf::from(dir);
    let f = facts(&d, "crm.salesforce-tenant.example");
    std::fs::write(dir.join("block.html"), html(&f)).expect("write");
    std::fs::write(dir.join("block.json"), problem_json(&f)).expect("write");
}
