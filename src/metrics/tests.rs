//! What operators see on `/metrics` after known decisions: exact series and values.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::local::{OUTCOMES, REASONS};
use super::*;
use crate::audit::AuditHealth;
use crate::country::Country;
use crate::diag::SourceFile;
use crate::geo::{Classification, Geo, GeoDb, OperatorRegistry, Origin, SpecialRange};
use crate::policy::{Decision, IpVerdict, Mode, Outcome, Policy, Provenance, Reason, Violation};

const POLICY: &str = r#"
[policy]
name = "mairie"
allowed_locations = ["EU", "EEA"]
allowed_operators = ["EU", "EEA"]

[[rule]]
id = "sante"
hosts = ["*.sante.example"]
allowed_locations = ["FR"]
allowed_operators = ["FR"]

[[rule]]
id = "messagerie"
hosts = ["*.outlook.com"]
action = "allow"
justification = "marché en cours"
ticket = "DSI-1234"
expires = 2099-06-30

[[rule]]
id = "ancienne"
hosts = ["*.old.example"]
action = "allow"
justification = "fini"
ticket = "DSI-1"
expires = 2020-01-31
"#;

fn policy(text: &str) -> Policy {
    match Policy::from_sources(vec![SourceFile::new("p.toml", text)]) {
        Ok(p) => p,
        Err(e) => panic!("test policy should load:\n{e}"),
    }
}

fn country_db(build_epoch: u64) -> GeoDb {
    use mmdb_writer::{Value, Writer};
    let mut w = Writer::builder("GeoLite2-Country")
        .build_epoch(std::time::UNIX_EPOCH + Duration::from_secs(build_epoch))
        .build();
    let net: ipnet::IpNet = "127.0.0.0/8".parse().unwrap();
    w.insert_value(
        net,
        Value::map([("country", Value::map([("iso_code", Value::from("FR"))]))]),
    )
    .unwrap();
    GeoDb::from_bytes(w.to_bytes().unwrap(), "country.mmdb").unwrap()
}

fn state(text: &str) -> State {
    let geo = Geo {
        country: Some(country_db(1_700_000_000)),
        asn: None,
        registry: OperatorRegistry::from_operators(Vec::new()),
        published: None,
    };
    State::new(policy(text), geo)
}

fn c(code: &str) -> Country {
    Country::parse(code).unwrap()
}

fn verdict(ip: &str, location: Option<&str>, operator: Option<&str>) -> IpVerdict {
    IpVerdict {
        class: Classification {
            ip: ip.parse().unwrap(),
            special: None,
            network: None,
            location: location.map(c),
            location_origin: Origin::Database,
            asn: None,
            as_org: None,
            operator: None,
            jurisdiction: operator.map(c),
            operator_origin: Origin::Registry,
            published: None,
        },
        violation: None,
    }
}

fn violating(mut v: IpVerdict, violation: Violation) -> IpVerdict {
    v.violation = Some(violation);
    v
}

fn provenance(version: &str) -> Arc<Provenance> {
    Arc::new(Provenance {
        policy_name: "mairie".into(),
        policy_version: version.into(),
        country_db_built: None,
        asn_db_built: None,
        registry_version: "r".into(),
        published: None,
    })
}

fn decision(
    outcome: Outcome,
    reason: Reason,
    rule: Option<&str>,
    ips: Vec<IpVerdict>,
    connect: &[&str],
    provenance: &Arc<Provenance>,
) -> Decision {
    Decision {
        outcome,
        reason,
        rule: rule.map(Arc::from),
        mode: Mode::Enforce,
        ips,
        connect: connect
            .iter()
            .map(|s| s.parse::<IpAddr>().unwrap())
            .collect(),
        notes: Vec::new(),
        provenance: provenance.clone(),
    }
}

fn allowed_fr(p: &Arc<Provenance>) -> Decision {
    decision(
        Outcome::Allow,
        Reason::Compliant,
        None,
        vec![verdict("192.0.2.1", Some("FR"), Some("FR"))],
        &["192.0.2.1"],
        p,
    )
}

/// Blocked by rule `sante`: located in the US, run by a US operator. The policy reports the
/// location only (it judges location first).
fn blocked_us(p: &Arc<Provenance>) -> Decision {
    let v = verdict("198.51.100.7", Some("US"), Some("US"));
    decision(
        Outcome::Block,
        Reason::LocationNotAllowed,
        Some("sante"),
        vec![violating(
            v,
            Violation::LocationNotAllowed { location: c("US") },
        )],
        &[],
        p,
    )
}

/// `a="1",b=""` → `[("a", "1"), ("b", "")]` (values here hold no quotes or escapes).
fn label_pairs(labels: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut rest = labels;
    while let Some((key, after)) = rest.split_once("=\"") {
        let (value, tail) = after.split_once('"').unwrap();
        out.push((key.trim_start_matches(','), value));
        rest = tail;
    }
    out
}

/// The samples of one metric, keyed by their labels sorted by name: `{a="1",b="2"}`.
fn family(text: &str, name: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, labels) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let mut pairs = label_pairs(labels);
        pairs.sort();
        let key = pairs
            .iter()
            .map(|(k, v)| format!("{k}=\"{v}\""))
            .collect::<Vec<_>>()
            .join(",");
        out.insert(format!("{{{key}}}"), value.parse().unwrap());
    }
    out
}

fn expect(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[test]
fn a_fresh_registry_renders_and_names_follow_conventions() {
    let m = Metrics::new();
    let text = m.render();
    for name in [
        "douane_reloads_total",
        "douane_last_reload_successful",
        "douane_dns_resolution_duration_seconds",
        "douane_upstream_connect_duration_seconds",
        "douane_dns_failures_total",
        "douane_exemptions_active",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{text}"
        );
    }
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut parts = line.split(' ').skip(2);
        let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
        assert!(name.starts_with("douane_"), "{line}");
        assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
    }
    // Nothing about audit without an audit log.
    assert!(!text.contains("douane_audit_"));
    assert_eq!(
        family(&text, "douane_reloads_total"),
        expect(&[("{result=\"failure\"}", 0.0), ("{result=\"success\"}", 0.0)])
    );
}

#[test]
fn a_blocked_and_an_allowed_request_move_exactly_their_counters() {
    let m = Metrics::new();
    let p = provenance("v1");
    m.observe_request("forward", None, &allowed_fr(&p), Duration::from_millis(3));
    m.observe_request("forward", None, &blocked_us(&p), Duration::from_millis(1));
    m.observe_request("forward", None, &blocked_us(&p), Duration::from_millis(1));
    let text = m.render();
    assert_eq!(
        family(&text, "douane_decisions_total"),
        expect(&[
            (
                "{outcome=\"allow\",reason=\"compliant\",rule=\"default\"}",
                1.0
            ),
            (
                "{outcome=\"block\",reason=\"location_not_allowed\",rule=\"sante\"}",
                2.0
            ),
        ])
    );
    assert_eq!(
        family(&text, "douane_requests_total"),
        expect(&[
            ("{listener=\"forward\",outcome=\"allow\",route=\"\"}", 1.0),
            ("{listener=\"forward\",outcome=\"block\",route=\"\"}", 2.0),
        ])
    );
    assert_eq!(
        family(&text, "douane_destination_requests_total"),
        expect(&[
            ("{location=\"FR\",operator=\"FR\",outcome=\"allow\"}", 1.0),
            ("{location=\"US\",operator=\"US\",outcome=\"block\"}", 2.0),
        ])
    );
    // No state loaded: exposure follows the policy's violations (location only here).
    assert_eq!(
        family(&text, "douane_exposure_requests_total"),
        expect(&[(
            "{axis=\"location\",jurisdiction=\"US\",outcome=\"block\"}",
            2.0
        )])
    );
    assert_eq!(
        family(&text, "douane_exposure_jurisdiction_requests_total"),
        expect(&[("{jurisdiction=\"US\",outcome=\"block\"}", 2.0)])
    );
    assert_eq!(
        family(&text, "douane_request_duration_seconds_count"),
        expect(&[
            ("{listener=\"forward\",outcome=\"allow\"}", 1.0),
            ("{listener=\"forward\",outcome=\"block\"}", 2.0),
        ])
    );
    let sum = family(&text, "douane_request_duration_seconds_sum");
    assert!((sum["{listener=\"forward\",outcome=\"allow\"}"] - 0.003).abs() < 1e-9);
}

#[test]
fn with_the_state_loaded_both_axes_are_judged_against_the_rule_that_applied() {
    let m = Metrics::new();
    let s = state(POLICY);
    m.set_state(&s);
    let p = s.provenance.clone();
    m.observe_request("forward", None, &blocked_us(&p), Duration::ZERO);
    // Under rule `sante` (FR only), a DE address run by a US operator: exposed to DE on
    // location and to US on operator.
    let de_us = decision(
        Outcome::Block,
        Reason::LocationNotAllowed,
        Some("sante"),
        vec![violating(
            verdict("203.0.113.9", Some("DE"), Some("US")),
            Violation::LocationNotAllowed { location: c("DE") },
        )],
        &[],
        &p,
    );
    m.observe_request("forward", None, &de_us, Duration::ZERO);
    // The same DE address under the defaults (EU allowed): operator exposure only.
    let mut allowed_de = de_us.clone();
    allowed_de.rule = None;
    allowed_de.outcome = Outcome::WouldBlock;
    allowed_de.reason = Reason::OperatorNotAllowed;
    allowed_de.connect = vec!["203.0.113.9".parse().unwrap()];
    m.observe_request("forward", None, &allowed_de, Duration::ZERO);
    let text = m.render();
    assert_eq!(
        family(&text, "douane_exposure_requests_total"),
        expect(&[
            (
                "{axis=\"location\",jurisdiction=\"DE\",outcome=\"block\"}",
                1.0
            ),
            (
                "{axis=\"location\",jurisdiction=\"US\",outcome=\"block\"}",
                1.0
            ),
            (
                "{axis=\"operator\",jurisdiction=\"US\",outcome=\"block\"}",
                2.0
            ),
            (
                "{axis=\"operator\",jurisdiction=\"US\",outcome=\"would-block\"}",
                1.0
            ),
        ])
    );
    // Each request once per jurisdiction, whatever the axes.
    assert_eq!(
        family(&text, "douane_exposure_jurisdiction_requests_total"),
        expect(&[
            ("{jurisdiction=\"DE\",outcome=\"block\"}", 1.0),
            ("{jurisdiction=\"US\",outcome=\"block\"}", 2.0),
            ("{jurisdiction=\"US\",outcome=\"would-block\"}", 1.0),
        ])
    );
}

#[test]
fn an_exemption_counts_exposure_against_the_policy_defaults() {
    let m = Metrics::new();
    let s = state(POLICY);
    m.set_state(&s);
    // The policy does not judge addresses under an exemption: no violation recorded.
    let exempt = decision(
        Outcome::Exempt,
        Reason::Exemption,
        Some("messagerie"),
        vec![
            verdict("198.51.100.1", Some("IE"), Some("US")),
            verdict("198.51.100.2", Some("US"), Some("US")),
        ],
        &["198.51.100.1", "198.51.100.2"],
        &s.provenance,
    );
    m.observe_request("reverse", Some("mail"), &exempt, Duration::ZERO);
    m.observe_bytes(&exempt, 100, 2_000);
    let text = m.render();
    assert_eq!(
        family(&text, "douane_exposure_requests_total"),
        expect(&[
            (
                "{axis=\"location\",jurisdiction=\"US\",outcome=\"exempt\"}",
                1.0
            ),
            (
                "{axis=\"operator\",jurisdiction=\"US\",outcome=\"exempt\"}",
                1.0
            ),
        ])
    );
    assert_eq!(
        family(&text, "douane_exposure_sent_bytes_total"),
        expect(&[
            (
                "{axis=\"location\",jurisdiction=\"US\",outcome=\"exempt\"}",
                100.0
            ),
            (
                "{axis=\"operator\",jurisdiction=\"US\",outcome=\"exempt\"}",
                100.0
            ),
        ])
    );
    assert_eq!(
        family(&text, "douane_exposure_received_bytes_total"),
        expect(&[
            (
                "{axis=\"location\",jurisdiction=\"US\",outcome=\"exempt\"}",
                2000.0
            ),
            (
                "{axis=\"operator\",jurisdiction=\"US\",outcome=\"exempt\"}",
                2000.0
            ),
        ])
    );
    assert_eq!(
        family(&text, "douane_sent_bytes_total"),
        expect(&[("{outcome=\"exempt\"}", 100.0)])
    );
    assert_eq!(
        family(&text, "douane_received_bytes_total"),
        expect(&[("{outcome=\"exempt\"}", 2000.0)])
    );
    assert_eq!(
        family(&text, "douane_requests_total"),
        expect(&[(
            "{listener=\"reverse\",outcome=\"exempt\",route=\"mail\"}",
            1.0
        )])
    );
    assert_eq!(
        family(&text, "douane_decisions_total"),
        expect(&[(
            "{outcome=\"exempt\",reason=\"exemption\",rule=\"messagerie\"}",
            1.0
        )])
    );
}

#[test]
fn pinned_addresses_left_out_are_no_exposure() {
    let m = Metrics::new();
    let s = state(POLICY);
    m.set_state(&s);
    // ip_selection = "pin": the US address was skipped, the FR one is connected to.
    let pinned = decision(
        Outcome::Allow,
        Reason::Compliant,
        None,
        vec![
            violating(
                verdict("198.51.100.2", Some("US"), Some("US")),
                Violation::LocationNotAllowed { location: c("US") },
            ),
            verdict("192.0.2.1", Some("FR"), Some("FR")),
        ],
        &["192.0.2.1"],
        &s.provenance,
    );
    m.observe_request("forward", None, &pinned, Duration::ZERO);
    let text = m.render();
    assert!(family(&text, "douane_exposure_requests_total").is_empty());
    assert_eq!(
        family(&text, "douane_destination_requests_total"),
        expect(&[("{location=\"FR\",operator=\"FR\",outcome=\"allow\"}", 1.0)])
    );
}

#[test]
fn special_addresses_unknowns_and_dns_failures_are_not_exposure() {
    let m = Metrics::new();
    let s = state(POLICY);
    m.set_state(&s);
    let mut special = verdict("10.1.2.3", None, None);
    special.class.special = Some(SpecialRange::Private);
    let blocked_special = decision(
        Outcome::Block,
        Reason::SpecialAddress,
        None,
        vec![violating(
            special,
            Violation::Special {
                range: SpecialRange::Private,
            },
        )],
        &[],
        &s.provenance,
    );
    let unknown = decision(
        Outcome::Block,
        Reason::UnknownLocation,
        None,
        vec![violating(
            verdict("192.0.2.77", None, None),
            Violation::UnknownLocation,
        )],
        &[],
        &s.provenance,
    );
    let failed = decision(
        Outcome::Failed,
        Reason::DnsTimeout,
        None,
        Vec::new(),
        &[],
        &s.provenance,
    );
    for d in [&blocked_special, &unknown, &failed] {
        m.observe_request("forward", None, d, Duration::ZERO);
    }
    m.observe_dns(Duration::from_millis(2), None);
    m.observe_dns(Duration::from_secs(5), Some(DnsFailure::Timeout));
    let text = m.render();
    assert!(family(&text, "douane_exposure_requests_total").is_empty());
    assert_eq!(
        family(&text, "douane_destination_requests_total"),
        expect(&[
            (
                "{location=\"unknown\",operator=\"unknown\",outcome=\"block\"}",
                2.0
            ),
            (
                "{location=\"unknown\",operator=\"unknown\",outcome=\"failed\"}",
                1.0
            ),
        ])
    );
    let dns = family(&text, "douane_dns_failures_total");
    assert_eq!(dns["{kind=\"timeout\"}"], 1.0);
    assert_eq!(dns.values().sum::<f64>(), 1.0);
    assert_eq!(dns.len(), 6, "every kind present from the start: {dns:?}");
    assert_eq!(
        family(&text, "douane_dns_resolution_duration_seconds_count"),
        expect(&[("{}", 2.0)])
    );
}

#[test]
fn connections_upstream_errors_and_connects() {
    let m = Metrics::new();
    let a = m.connection_opened("forward");
    let b = m.connection_opened("forward");
    let _c = m.connection_opened("api");
    drop(a);
    m.connection_refused("forward");
    m.upstream_error("connect_timeout");
    m.upstream_error("connect_timeout");
    m.upstream_error("tls");
    m.observe_connect(Duration::from_millis(4));
    let text = m.render();
    assert_eq!(
        family(&text, "douane_connections_active"),
        expect(&[("{listener=\"api\"}", 1.0), ("{listener=\"forward\"}", 1.0)])
    );
    drop(b);
    assert_eq!(
        family(&m.render(), "douane_connections_active")["{listener=\"forward\"}"],
        0.0
    );
    assert_eq!(
        family(&text, "douane_connections_refused_total"),
        expect(&[("{listener=\"api\"}", 0.0), ("{listener=\"forward\"}", 1.0)])
    );
    // Three admitted on this thread (worker 0); the refused one is not.
    assert_eq!(
        family(&text, "douane_worker_connections_total"),
        expect(&[("{worker=\"0\"}", 3.0)])
    );
    let errors = family(&text, "douane_upstream_errors_total");
    assert_eq!(errors["{kind=\"connect_timeout\"}"], 2.0);
    assert_eq!(errors["{kind=\"tls\"}"], 1.0);
    assert_eq!(errors.values().sum::<f64>(), 3.0);
    assert_eq!(
        errors.len(),
        crate::proxy::upstream::UpstreamError::KINDS.len(),
        "every known kind present from the start: {errors:?}"
    );
    assert_eq!(
        family(&text, "douane_upstream_connect_duration_seconds_count"),
        expect(&[("{}", 1.0)])
    );
}

#[test]
fn the_state_metrics_follow_the_loaded_state_and_replace_the_old_one() {
    let m = Metrics::new();
    let first = state(POLICY);
    m.set_state(&first);
    let text = m.render();
    let version = &*first.policy.version;
    assert_eq!(
        family(&text, "douane_policy_info"),
        expect(&[(
            &format!("{{mode=\"enforce\",name=\"mairie\",version=\"{version}\"}}"),
            1.0
        )])
    );
    assert_eq!(
        family(&text, "douane_database_build_timestamp_seconds"),
        expect(&[("{database=\"country\"}", 1_700_000_000.0)])
    );
    // 2099-06-30 applies all that day: it ends at 2099-07-01T00:00:00Z.
    assert_eq!(
        family(&text, "douane_exemption_expiry_timestamp_seconds"),
        expect(&[
            ("{rule=\"ancienne\"}", 1_580_515_200.0),
            ("{rule=\"messagerie\"}", 4_086_547_200.0),
        ])
    );
    assert_eq!(
        family(&text, "douane_exemptions_active"),
        expect(&[("{}", 1.0)])
    );
    assert_eq!(family(&text, "douane_policy_rules"), expect(&[("{}", 3.0)]));
    assert_eq!(family(&text, "douane_state_loaded"), expect(&[("{}", 1.0)]));
    let loaded = family(&text, "douane_last_reload_success_timestamp_seconds")["{}"];
    assert!(loaded > 1_700_000_000.0);

    // A reload to a policy without exemptions, in monitor mode.
    let second = state(
        "[policy]\nname = \"mairie\"\nmode = \"monitor\"\nallowed_locations = [\"FR\"]\nallowed_operators = [\"FR\"]\n",
    );
    m.reload(true);
    m.set_state(&second);
    let text = m.render();
    let info = family(&text, "douane_policy_info");
    assert_eq!(info.len(), 1, "{info:?}");
    assert!(info
        .keys()
        .all(|k| k.contains("mode=\"monitor\"") && k.contains(&*second.policy.version)));
    assert!(family(&text, "douane_exemption_expiry_timestamp_seconds").is_empty());
    assert_eq!(
        family(&text, "douane_exemptions_active"),
        expect(&[("{}", 0.0)])
    );
}

#[test]
fn reloads_count_by_result() {
    let m = Metrics::new();
    m.reload(true);
    m.reload(false);
    m.reload(false);
    let text = m.render();
    assert_eq!(
        family(&text, "douane_reloads_total"),
        expect(&[("{result=\"failure\"}", 2.0), ("{result=\"success\"}", 1.0)])
    );
    assert_eq!(
        family(&text, "douane_last_reload_successful"),
        expect(&[("{}", 0.0)])
    );
    m.reload(true);
    assert_eq!(
        family(&m.render(), "douane_last_reload_successful"),
        expect(&[("{}", 1.0)])
    );
}

#[test]
fn audit_metrics_follow_the_log_health() {
    let m = Metrics::new();
    let mut health = AuditHealth {
        ok: true,
        last_error: None,
        records_written: 5,
        write_failures: 0,
    };
    m.set_audit(&health);
    m.set_audit(&health); // twice the same: no double counting
    let text = m.render();
    assert_eq!(
        family(&text, "douane_audit_records_written_total"),
        expect(&[("{}", 5.0)])
    );
    assert_eq!(family(&text, "douane_audit_ok"), expect(&[("{}", 1.0)]));
    health.ok = false;
    health.records_written = 7;
    health.write_failures = 2;
    m.set_audit(&health);
    let text = m.render();
    assert_eq!(
        family(&text, "douane_audit_records_written_total"),
        expect(&[("{}", 7.0)])
    );
    assert_eq!(
        family(&text, "douane_audit_write_failures_total"),
        expect(&[("{}", 2.0)])
    );
    assert_eq!(family(&text, "douane_audit_ok"), expect(&[("{}", 0.0)]));
}

#[test]
fn labels_stay_bounded_whatever_the_traffic() {
    let m = Metrics::new();
    let s = state(POLICY);
    m.set_state(&s);
    let countries = ["US", "CN", "FR", "DE", "IE"];
    // Ten thousand distinct addresses over five countries, every outcome and reason.
    for i in 0..10_000u32 {
        let ip = std::net::Ipv4Addr::from(0xC633_0000 + i).to_string();
        let loc = countries[i as usize % 5];
        let op = countries[(i as usize / 5) % 5];
        let mut d = decision(
            OUTCOMES[i as usize % OUTCOMES.len()],
            REASONS[i as usize % REASONS.len()],
            None,
            vec![verdict(&ip, Some(loc), Some(op))],
            &[],
            &s.provenance,
        );
        if i % 7 == 0 {
            d.rule = Some("sante".into());
        }
        m.observe_request("forward", None, &d, Duration::from_micros(u64::from(i)));
        m.observe_bytes(&d, 10, 10);
    }
    let text = m.render();
    let series = text.lines().filter(|l| !l.starts_with('#')).count();
    assert!(series < 2_000, "{series} series");
    assert!(!text.contains("198.51"), "an address became a label");
    let outcomes: Vec<&str> = OUTCOMES.iter().map(|o| o.as_str()).collect();
    let reasons: Vec<&str> = REASONS.iter().map(|r| r.as_str()).collect();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((_, labels)) = line.split_once('{') else {
            continue;
        };
        let labels = labels.rsplit_once('}').unwrap().0;
        for (k, v) in label_pairs(labels) {
            let ok = match k {
                "outcome" => outcomes.contains(&v),
                "reason" => reasons.contains(&v),
                "rule" => ["default", "sante", "messagerie", "ancienne"].contains(&v),
                "location" | "operator" | "jurisdiction" => {
                    v == "unknown" || (v.len() == 2 && Country::parse(v).is_ok())
                }
                "axis" => ["location", "operator"].contains(&v),
                "listener" => v == "forward",
                "route" => v.is_empty(),
                "le" | "kind" | "result" | "database" | "name" | "version" | "mode" => true,
                other => panic!("unexpected label {other} in {line}"),
            };
            assert!(ok, "unbounded value in {line}");
        }
    }
}

#[test]
fn threads_each_keep_handles_and_the_totals_add_up() {
    let m = Arc::new(Metrics::new());
    let other = Metrics::new(); // a second instance on the same threads must not mix
    let p = provenance("v1");
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            let d = blocked_us(&p);
            std::thread::spawn(move || {
                for _ in 0..1_000 {
                    m.observe_request("forward", None, &d, Duration::ZERO);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    other.observe_request("forward", None, &blocked_us(&p), Duration::ZERO);
    m.observe_request("forward", None, &blocked_us(&p), Duration::ZERO);
    assert_eq!(
        family(&m.render(), "douane_requests_total"),
        expect(&[(
            "{listener=\"forward\",outcome=\"block\",route=\"\"}",
            4_001.0
        )])
    );
    assert_eq!(
        family(&other.render(), "douane_requests_total"),
        expect(&[("{listener=\"forward\",outcome=\"block\",route=\"\"}", 1.0)])
    );
}

#[test]
fn promtool_accepts_the_rendered_metrics() {
    let m = Metrics::new();
    let s = state(POLICY);
    m.set_state(&s);
    m.reload(false);
    m.set_audit(&AuditHealth {
        ok: true,
        last_error: None,
        records_written: 1,
        write_failures: 0,
    });
    m.observe_request("forward", None, &blocked_us(&s.provenance), Duration::ZERO);
    m.observe_bytes(&blocked_us(&s.provenance), 1, 2);
    m.observe_dns(Duration::ZERO, Some(DnsFailure::NxDomain));
    m.observe_connect(Duration::ZERO);
    m.upstream_error("tls");
    m.connection_refused("forward");
    let _g = m.connection_opened("forward");
    let text = m.render();
    let promtool = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("promtool"))
            .find(|p| p.is_file())
    });
    let Some(promtool) = promtool else {
        eprintln!("note: promtool is not on PATH; skipping `promtool check metrics`");
        return;
    };
    use std::io::Write;
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics:\n{}{}\n--- metrics ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
