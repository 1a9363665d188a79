//! `douane check`: validate everything `run` would load, list every error at once, and warn
//! of what will stop working soon (exemptions about to expire, ageing databases).

use std::path::Path;

use super::{today, Exit};
use crate::config::Config;
use crate::diag::Located;
use crate::state::State;

/// Exemptions ending within this many days are worth a warning.
const EXEMPTION_WARNING_DAYS: u32 = 30;

/// Qualifications (SecNumCloud, HDS) ending within this many days are worth a warning:
/// a renewal takes months.
const QUALIFICATION_WARNING_DAYS: i64 = 90;

pub fn run(config_path: &Path) -> Exit {
    let mut errors: Vec<String> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let config = match Config::load(config_path) {
        Ok(c) => Some(c),
        Err(e) => {
            errors.extend(e.0.iter().map(Located::to_string));
            None
        }
    };
    if let Some(config) = &config {
        match State::load(config) {
            Ok(state) => warn_about_state(config, &state, &mut warnings),
            Err(e) => errors.extend(e.0.iter().map(Located::to_string)),
        }
        for listener in &config.reverse {
            for cert in &listener.certificates {
                if let Err(e) = crate::tls::load_certified_key(cert) {
                    if cert.generate_if_missing && !cert.cert.exists() {
                        warnings.push(format!(
                            "listener `{}`: {e} (`douane run` will generate a self-signed one)",
                            listener.name
                        ));
                    } else {
                        errors.push(
                            crate::startup::certificate_error(&listener.name, cert, &e).to_string(),
                        );
                    }
                }
            }
        }
    }
    if let Some(config) = &config {
        // A warning here (a config for `test` and `explain` needs no listener); `run` refuses.
        if let Err(e) = crate::startup::require_a_listener(config) {
            warnings.push(format!("{e} (`douane run` refuses to start)"));
        }
    }
    for e in &errors {
        println!("error: {e}");
    }
    for w in &warnings {
        println!("warning: {w}");
    }
    println!(
        "{} error{}, {} warning{}",
        errors.len(),
        plural(errors.len()),
        warnings.len(),
        plural(warnings.len())
    );
    if errors.is_empty() {
        Exit::Success
    } else {
        Exit::Failed
    }
}

fn warn_about_state(config: &Config, state: &State, warnings: &mut Vec<String>) {
    let today = today();
    for e in state.policy.expired(today) {
        warnings.push(format!(
            "{}: exemption `{}` expired on {} and no longer applies",
            e.origin, e.id, e.expires
        ));
    }
    for e in state.policy.expiring_within(today, EXEMPTION_WARNING_DAYS) {
        let days = (e.expires - today).whole_days();
        warnings.push(format!(
            "{}: exemption `{}` expires on {} (in {days} day{})",
            e.origin,
            e.id,
            e.expires,
            plural(days as usize)
        ));
    }
    for op in state.geo.registry.operators() {
        for q in &op.qualifications {
            let days = (q.expires - today).whole_days();
            if days < 0 {
                warnings.push(format!(
                    "operator `{}`: qualification {} ({}) expired on {} and no longer counts",
                    op.name, q.name, q.offer, q.expires
                ));
            } else if days <= QUALIFICATION_WARNING_DAYS {
                warnings.push(format!(
                    "operator `{}`: qualification {} ({}) expires on {} (in {days} days); renew it or rules requiring it will block",
                    op.name, q.name, q.offer, q.expires
                ));
            }
        }
    }
    let now = time::OffsetDateTime::now_utc();
    let max_age = time::Duration::days(i64::from(config.geo.max_age_days));
    for db in [&state.geo.country, &state.geo.asn].into_iter().flatten() {
        let age = now - db.info.build_time;
        if age > max_age {
            warnings.push(format!(
                "{}: the {} database was built {} days ago (more than geo.max_age_days = {}); update it",
                db.info.path.display(),
                db.info.kind,
                age.whole_days(),
                config.geo.max_age_days
            ));
        }
    }
    match &state.geo.published {
        Some(p) => {
            let max = i64::from(config.geo.published_max_age_days);
            let now_s = now.unix_timestamp();
            for s in &p.ranges.sources {
                let Some(t) = crate::geo::published::date_epoch(&s.date) else {
                    warnings.push(format!("{}: published source {} has a date douane cannot read (`{}`)", p.ranges.path.display(), s.file, s.date));
                    continue;
                };
                let days = (now_s - t) / 86_400;
                if days > max {
                    warnings.push(format!(
                        "{}: published source {} ({}) is dated {} ({days} days ago, more than geo.published_max_age_days = {max}); refresh it from the publisher and run `douane ranges import`",
                        p.ranges.path.display(), s.file, s.publisher, s.date
                    ));
                }
            }
            for publisher in p.unattributed_publishers() {
                warnings.push(format!(
                    "published ranges of `{publisher}` name no operator: no registry entry lists `published = [\"{publisher}\"]`"
                ));
            }
        }
        None => warnings.push(
            "no published ranges ([geo] published): provider addresses are judged by the databases alone".into(),
        ),
    }
    if state.geo.country.is_none() {
        warnings.push("no country database: every location is unknown".into());
    }
    if state.geo.asn.is_none() {
        warnings.push(
            "no ASN database: operators are known only from [[network]] and registry CIDRs".into(),
        );
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
