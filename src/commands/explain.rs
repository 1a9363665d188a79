//! `douane explain URL`: the decision for one request, with its whole trace: every address
//! with where its location and operator came from, the rule, the reason, the versions.

use std::path::Path;

use anyhow::Context;

use super::{load, today, Exit};
use crate::cli::ExplainArgs;
use crate::policy::decide::{decide, HttpFacts, Request, Resolution};
use crate::policy::{Decision, IpVerdict, Note};
use crate::proxy::respond::violation_text;
use crate::resolve::{Destination, Host, Resolver, Target};

pub fn run(args: &ExplainArgs) -> anyhow::Result<Exit> {
    let (config, state) = load(Path::new(&args.config.config))?;
    // `host:port` (as a CONNECT authority) or a URL.
    let (target, scheme, path) = match Destination::parse_authority(&args.url) {
        Ok(d) if !args.url.contains('/') => (d, "https", "/".to_string()),
        _ => {
            let t = Target::parse_url(&args.url)?;
            (t.destination, t.scheme.as_str(), t.path.to_string())
        }
    };
    let resolved: Result<Vec<std::net::IpAddr>, _> = match (&target.host, args.resolve.is_empty()) {
        (Host::Ip(_), _) => Ok(Vec::new()),
        (Host::Name(_), false) => Ok(args.resolve.clone()),
        (Host::Name(_), true) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the resolver's runtime")?;
            runtime.block_on(async {
                let resolver = Resolver::new(&config.resolver)?;
                anyhow::Ok(
                    resolver
                        .resolve(&target.host)
                        .await
                        .map(|r| r.addresses.to_vec()),
                )
            })?
        }
    };
    let http = (!args.connect).then(|| HttpFacts {
        method: &args.method,
        path: &path,
    });
    let request = Request {
        client: args.client,
        destination: &target,
        http,
    };
    let resolution = match &resolved {
        Ok(addrs) => Resolution::Addresses(addrs),
        Err(failure) => Resolution::Failed(*failure),
    };
    let mut decision = decide(&state, &request, resolution, today());
    for v in &mut decision.ips {
        state.geo.with_database_location(&mut v.class);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&decision)?);
    } else {
        let what = if args.connect {
            format!("CONNECT {target}")
        } else {
            format!("{} {scheme}://{}{path}", args.method, target)
        };
        print!("{}", render(&what, args.client, &decision));
    }
    Ok(Exit::Success)
}

/// The human-readable trace of a decision.
pub fn render(what: &str, client: std::net::IpAddr, d: &Decision) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let status = if d.outcome.lets_through() {
        String::new()
    } else {
        format!(" ({})", d.block_status())
    };
    let _ = writeln!(out, "request   {what}  from {client}");
    let _ = writeln!(
        out,
        "decision  {}{status}: {}",
        d.outcome.as_str().to_uppercase(),
        d.reason.as_str()
    );
    let _ = writeln!(
        out,
        "rule      {}",
        d.rule.as_deref().unwrap_or("(policy defaults)")
    );
    let p = &d.provenance;
    let _ = writeln!(
        out,
        "policy    {} ({} mode), version {}",
        p.policy_name,
        d.mode.as_str(),
        short(&p.policy_version)
    );
    let _ = writeln!(
        out,
        "data      country db {}, asn db {}, operators {}",
        p.country_db_built.as_deref().unwrap_or("none"),
        p.asn_db_built.as_deref().unwrap_or("none"),
        short(&p.registry_version)
    );
    if let Some(r) = &p.published {
        let oldest = r.sources.iter().map(|s| &*s.date).min().unwrap_or("none");
        let _ = writeln!(
            out,
            "ranges    published ranges {} built {}, {} sources, oldest dated {oldest}",
            short(&r.version),
            r.built,
            r.sources.len()
        );
    }
    let _ = writeln!(out, "addresses");
    for ip in &d.ips {
        let _ = writeln!(out, "  {}", address_line(ip));
    }
    let connect: Vec<String> = d.connect.iter().map(|ip| ip.to_string()).collect();
    let _ = writeln!(
        out,
        "connect   {}",
        if connect.is_empty() {
            "(nothing)".to_string()
        } else {
            connect.join(", ")
        }
    );
    for note in &d.notes {
        match note {
            Note::ExemptionExpired { rule, expired } => {
                let _ = writeln!(
                    out,
                    "note      exemption `{rule}` expired on {expired} and no longer applies"
                );
            }
        }
    }
    out
}

/// One address: location, ASN, operator, and its verdict.
pub fn address_line(v: &IpVerdict) -> String {
    let c = &v.class;
    let location = match (c.location, c.special) {
        _ if c.anycast() => format!(
            "anycast, no location claimed (country database: {})",
            c.location.map_or("none".to_string(), |l| l.to_string())
        ),
        (Some(l), _) => format!("located in {l} ({})", c.location_origin.as_str()),
        (None, Some(s)) => format!("special-purpose ({})", s.as_str()),
        (None, None) => "location unknown".to_string(),
    };
    let published = match &c.published {
        Some(p) => {
            let region = p.facts.region.as_deref().unwrap_or("no region");
            let other = match (p.database_location, c.location_origin) {
                (Some(db), crate::geo::Origin::Published) if Some(db) != c.location => {
                    format!("; used over the country database, which says {db}")
                }
                _ => String::new(),
            };
            format!(
                ", published range {} ({} {region}, {} dated {}{other})",
                p.prefix, p.facts.publisher, p.facts.source_file, p.facts.source_date
            )
        }
        None => String::new(),
    };
    let asn = match (c.asn, c.as_org.as_deref()) {
        (Some(n), Some(org)) => format!("AS{n} \"{org}\""),
        (Some(n), None) => format!("AS{n}"),
        _ => "no ASN at all".to_string(),
    };
    let operator = match (c.operator.as_deref(), c.jurisdiction) {
        (Some(name), Some(j)) => format!(
            "operated by {name} under {j} jurisdiction ({})",
            c.operator_origin.as_str()
        ),
        (None, Some(j)) => format!(
            "operated under {j} jurisdiction ({})",
            c.operator_origin.as_str()
        ),
        _ => "operator unknown".to_string(),
    };
    let network = c
        .network
        .as_deref()
        .map(|n| format!(", network `{n}`"))
        .unwrap_or_default();
    let verdict = match &v.violation {
        None => "ok".to_string(),
        Some(violation) => match v.reason() {
            Some(crate::policy::Reason::NoAsn) => "NOT ALLOWED: no ASN at all (no_asn)".into(),
            _ => format!("NOT ALLOWED: {}", violation_text(violation)),
        },
    };
    format!(
        "{:<39} {location}{published}, {asn}, {operator}{network} — {verdict}",
        c.ip
    )
}

fn short(version: &str) -> &str {
    version.get(..12).unwrap_or(version)
}
