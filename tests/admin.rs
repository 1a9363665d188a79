//! The admin listener with a bearer token: nothing answers without it, everything with it.

mod common;

use common::proxy::{policy, standard_overrides, ConfigSpec, Fixture};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_token_is_required_on_every_endpoint() {
    let fx = Fixture::new();
    fx.write_policy(&policy("all", "enforce", &[443], ""));
    fx.write_config(&ConfigSpec {
        overrides: standard_overrides(),
        admin_token: Some("s3cret-token"),
        ..ConfigSpec::default()
    });
    // The fixture waits for /readyz with the token: it only starts if the token works.
    let douane = fx.start().await;
    for path in ["/healthz", "/readyz", "/metrics", "/policy"] {
        let (status, _) = douane.admin_get_as(path, None);
        assert_eq!(status, 401, "{path} without a token");
        let (status, _) = douane.admin_get_as(path, Some("s3cret-toke"));
        assert_eq!(status, 401, "{path} with a wrong token");
        let (status, body) = douane.admin_get_as(path, Some("s3cret-token"));
        assert_eq!(status, 200, "{path} with the token: {body}");
    }
    let (_, metrics) = douane.admin_get("/metrics");
    assert!(metrics.contains("douane_"), "{metrics}");
}
