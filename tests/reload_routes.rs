//! Routes and upstreams reload for real, on SIGHUP (the file watch is off here): a route
//! added by a reload serves, a changed upstream is used, a removed route answers 404, and
//! a connection opened before the reload keeps the table it was accepted with. A listener
//! change in the same reload is announced as needing a restart while the routes apply.

mod common;

use std::time::Duration;

use common::client;
use common::proxy::{policy, standard_overrides, ConfigSpec, Douane, Engine, Fixture, RouteSpec};
use common::upstream;

fn route(name: &'static str, host: &'static str, port: u16) -> RouteSpec {
    RouteSpec {
        name,
        host,
        path_prefix: "/",
        upstream: format!("http://fr.test:{port}"),
    }
}

/// Writes the config with `routes`, the file watch off: only SIGHUP reloads.
fn write(fx: &Fixture, engine: Engine, routes: Vec<RouteSpec>) {
    fx.write_config(&ConfigSpec {
        engine,
        overrides: standard_overrides(),
        routes,
        ..ConfigSpec::default()
    });
    let path = fx.path("douane.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen("[reload]\n", "[reload]\nwatch = false\n", 1);
    std::fs::write(&path, text).unwrap();
}

/// A request on a new connection: its status and, for a 200, the `Host` the upstream got.
async fn get(fx: &Fixture, douane: &Douane, host: &str) -> (u16, Option<String>) {
    let reply = client::reverse(
        douane.reverse,
        |alpn| fx.ca.client_config(alpn),
        host,
        host,
        false,
        "/",
    )
    .await;
    let upstream_host = (reply.status == 200)
        .then(|| {
            reply.json()["headers"]["host"][0]
                .as_str()
                .map(str::to_owned)
        })
        .flatten();
    (reply.status.as_u16(), upstream_host)
}

async fn sighup_and_wait(douane: &Douane, log: &str) {
    let before = douane.log_count(log);
    douane.signal("HUP");
    assert!(
        douane
            .wait_log_count(log, before + 1, Duration::from_secs(10))
            .await,
        "no `{log}` after SIGHUP: {:#?}",
        douane.logs()
    );
}

on_both_engines! {
    async fn routes_added_changed_and_removed_apply_on_sighup(engine: Engine) {
        let fx = Fixture::new();
        let one = upstream::start(&["127.0.0.2"], None).await;
        let two = upstream::start(&["127.0.0.2"], None).await;
        fx.write_policy(&policy("all", "enforce", &[one, two], ""));
        write(
            &fx,
            engine,
            vec![route("app", "app.localhost", one), route("ws", "ws.localhost", one)],
        );
        let douane = fx.start().await;
        assert_eq!(
            get(&fx, &douane, "app.localhost").await,
            (200, Some(format!("fr.test:{one}")))
        );
        assert_eq!(get(&fx, &douane, "ws.localhost").await.0, 200);
        assert_eq!(get(&fx, &douane, "other.localhost").await.0, 404);

        // A connection opened before the reload, kept alive across it.
        let tcp = tokio::net::TcpStream::connect(douane.reverse).await.unwrap();
        let tls = client::tls(tcp, fx.ca.client_config(&[b"http/1.1"]), "app.localhost")
            .await
            .unwrap();
        let mut kept = client::h1(tls).await;
        let req = || client::request("GET", "/", &[("host", "app.localhost")]);
        let reply = client::collect(kept.send_request(req()).await.unwrap()).await;
        assert_eq!(reply.status, 200, "{}", reply.text());

        // `app` moves to the other upstream, `ws` goes, `other` comes.
        write(
            &fx,
            engine,
            vec![route("app", "app.localhost", two), route("other", "other.localhost", one)],
        );
        sighup_and_wait(&douane, "new policy, databases and certificates in force").await;
        for line in [
            "applied to new connections: route `ws` removed",
            "applied to new connections: route `app` changed",
            "applied to new connections: route `other` added",
        ] {
            assert_eq!(douane.log_count(line), 1, "{line}: {:#?}", douane.logs());
        }
        assert_eq!(douane.log_count("needs a restart"), 0, "{:#?}", douane.logs());

        assert_eq!(
            get(&fx, &douane, "app.localhost").await,
            (200, Some(format!("fr.test:{two}"))),
            "the changed upstream serves new connections"
        );
        assert_eq!(
            get(&fx, &douane, "other.localhost").await,
            (200, Some(format!("fr.test:{one}"))),
            "the added route serves"
        );
        assert_eq!(get(&fx, &douane, "ws.localhost").await.0, 404, "the removed route");

        // The connection accepted before the reload finishes on its table.
        let reply = client::collect(kept.send_request(req()).await.unwrap()).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(
            reply.json()["headers"]["host"][0],
            format!("fr.test:{one}").as_str()
        );

        let (_, metrics) = douane.admin_get("/metrics");
        assert!(
            metrics.contains("douane_restart_required{change=\"listener\"} 0"),
            "{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_change_is_announced_while_the_routes_apply() {
    let fx = Fixture::new();
    let port = upstream::start(&["127.0.0.2"], None).await;
    fx.write_policy(&policy("all", "enforce", &[port], ""));
    write(
        &fx,
        Engine::Direct,
        vec![route("app", "app.localhost", port)],
    );
    let douane = fx.start().await;

    // The TLS listener turns plain, and a route is added: the route applies on the running
    // (TLS) listener; the listener change waits for a restart and says so.
    write(
        &fx,
        Engine::Direct,
        vec![
            route("app", "app.localhost", port),
            route("other", "other.localhost", port),
        ],
    );
    let path = fx.path("douane.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let plain = text.replace(
        "tls = [{ cert = \"certs/reverse.pem\", key = \"certs/reverse-key.pem\" }]\n",
        "",
    );
    assert_ne!(plain, text);
    std::fs::write(&path, plain).unwrap();
    sighup_and_wait(&douane, "wait for a restart").await;
    assert_eq!(
        douane.log_count("reverse listener `tls` switched TLS off"),
        1,
        "{:#?}",
        douane.logs()
    );
    assert_eq!(
        douane.log_count("applied to new connections: route `other` added"),
        1,
        "{:#?}",
        douane.logs()
    );
    let (_, metrics) = douane.admin_get("/metrics");
    assert!(
        metrics.contains("douane_restart_required{change=\"listener\"} 1"),
        "{metrics}"
    );
    // Still TLS (the running listener), with the new route.
    assert_eq!(get(&fx, &douane, "other.localhost").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_that_does_not_build_keeps_the_old_table() {
    let fx = Fixture::new();
    let port = upstream::start(&["127.0.0.2"], None).await;
    fx.write_policy(&policy("all", "enforce", &[port], ""));
    write(
        &fx,
        Engine::Direct,
        vec![route("app", "app.localhost", port)],
    );
    let douane = fx.start().await;
    let path = fx.path("douane.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let broken = text.replace(
        &format!("upstream = \"http://fr.test:{port}\""),
        "upstream = \"http://not a host:1\"",
    );
    assert_ne!(broken, text);
    std::fs::write(&path, broken).unwrap();
    sighup_and_wait(&douane, "reload refused").await;
    assert_eq!(
        get(&fx, &douane, "app.localhost").await,
        (200, Some(format!("fr.test:{port}")))
    );
}
