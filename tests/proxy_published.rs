//! A running douane swaps its published ranges like its databases: a new artifact is taken
//! on a watched change (and on SIGHUP) while serving, a truncated or corrupt one is refused
//! and the previous one keeps deciding.

mod common;

use std::path::Path;
use std::time::Duration;

use common::client;
use common::proxy::{policy, standard_overrides, ConfigSpec, Fixture};
use common::upstream;
use douane::geo::published::compile_files;

/// Compiles a one-line RFC 8805 geofeed into an artifact at `out`.
fn artifact(dir: &Path, out: &Path, line: &str) {
    let feed = dir.join("test-geofeed.csv");
    std::fs::write(&feed, format!("{line}\n")).unwrap();
    let report = compile_files(&[feed], Some("2026-11-30"), "2026-11-30").unwrap();
    let temp = out.with_extension("tmp");
    std::fs::write(&temp, report.compiled.encode()).unwrap();
    std::fs::rename(&temp, out).unwrap();
}

on_both_engines! {
    async fn a_new_artifact_is_taken_while_serving_and_a_broken_one_refused(engine: Engine) {
        let fx = Fixture::new();
        let port = upstream::start(&["127.0.0.2"], None).await;
        fx.write_policy(&policy("all", "enforce", &[port], ""));
        fx.write_config(&ConfigSpec {
            engine,
            overrides: standard_overrides(),
            ..ConfigSpec::default()
        });
        // The fixture writes [geo]; name the artifact in it.
        let config = fx.path("douane.toml");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            text.replacen(
                "asn = \"asn.mmdb\"",
                "asn = \"asn.mmdb\"\npublished = \"published.bin\"",
                1,
            ),
        )
        .unwrap();
        let published = fx.path("published.bin");
        let work = fx.path("work");
        std::fs::create_dir_all(&work).unwrap();
        // First artifact: a range elsewhere; 127.0.0.2 stays placed by the databases (FR).
        artifact(&work, &published, "127.0.0.9/32,US,,,");
        let mut douane = fx.start().await;
        let url = format!("http://fr.test:{port}/");
        assert_eq!(
            client::forward(douane.forward, "GET", &url, &[])
                .await
                .status,
            200
        );
        let (_, metrics) = douane.admin_get("/metrics");
        assert!(
            metrics.contains("douane_published_ranges_source_timestamp_seconds{"),
            "{metrics}"
        );

        // Swapped for one whose geofeed places 127.0.0.2 in the US: published beats the
        // country database, so the request is now blocked for its location.
        artifact(&work, &published, "127.0.0.2/32,US,,,");
        assert!(
            douane
                .wait_log("reloaded: new policy", Duration::from_secs(5))
                .await,
            "{:#?}",
            douane.logs()
        );
        let reply = client::forward(
            douane.forward,
            "GET",
            &url,
            &[("accept", "application/json")],
        )
        .await;
        assert_eq!(reply.status, 451, "{}", reply.text());
        assert_eq!(reply.json()["location"], "US");

        // Truncated in place: refused, the previous artifact keeps deciding.
        let good = std::fs::read(&published).unwrap();
        std::fs::write(&published, &good[..good.len() - 7]).unwrap();
        assert!(
            douane
                .wait_log("reload refused", Duration::from_secs(5))
                .await
        );
        assert!(
            douane.logs().iter().any(|l| l.contains("truncated")),
            "{:#?}",
            douane.logs()
        );
        assert_eq!(
            client::forward(douane.forward, "GET", &url, &[])
                .await
                .status,
            451
        );

        // Corrupt (one byte flipped), then SIGHUP: refused again.
        let mut flipped = good.clone();
        let at = flipped.len() - 3;
        flipped[at] ^= 0x01;
        std::fs::write(&published, &flipped).unwrap();
        douane.signal("HUP");
        assert!(
            douane
                .wait_log_count("reload refused", 2, Duration::from_secs(5))
                .await
        );
        assert!(douane.logs().iter().any(|l| l.contains("corrupt")));
        assert_eq!(
            client::forward(douane.forward, "GET", &url, &[])
                .await
                .status,
            451
        );

        // A good one again (the range removed): allowed.
        artifact(&work, &published, "127.0.0.9/32,US,,,");
        assert!(
            douane
                .wait_log_count("reloaded: new policy", 2, Duration::from_secs(5))
                .await
        );
        assert_eq!(
            client::forward(douane.forward, "GET", &url, &[])
                .await
                .status,
            200
        );
        assert!(douane.running());
    }
}
