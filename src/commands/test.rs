//! `douane test`: run the policies' `[[test]]` cases; the last line is `N passed, N failed`.

use std::path::Path;

use super::{load, today, Exit, InvalidSetup};
use crate::policy::run_cases;

pub fn run(config: &Path) -> Result<Exit, InvalidSetup> {
    let (_, state) = load(config)?;
    let results = run_cases(&state, today());
    let mut failed = 0;
    for r in &results {
        let origin = &r.origin;
        if r.passed {
            println!("ok    {} ({origin})", r.url);
            continue;
        }
        failed += 1;
        println!("FAIL  {} ({origin})", r.url);
        if let Some(d) = &r.description {
            println!("      {d}");
        }
        println!(
            "      expected {}{}{}",
            r.expected.outcome,
            r.expected
                .rule
                .as_deref()
                .map(|x| format!(", rule {x}"))
                .unwrap_or_default(),
            r.expected
                .reason
                .map(|x| format!(", reason {}", x.as_str()))
                .unwrap_or_default()
        );
        println!(
            "      got      {}, rule {}, reason {}",
            r.actual.outcome,
            r.actual.rule.as_deref().unwrap_or("(policy defaults)"),
            r.actual.reason.map(|x| x.as_str()).unwrap_or("-")
        );
        for ip in &r.decision.ips {
            println!("      {}", super::explain::address_line(ip));
        }
    }
    println!("{} passed, {} failed", results.len() - failed, failed);
    Ok(if failed == 0 {
        Exit::Success
    } else {
        Exit::Failed
    })
}
