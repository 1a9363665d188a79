//! The two engines side by side: one corpus of raw requests, valid and hostile (framing,
//! hop-by-hop headers, upgrades, duplicate headers, absolute-form with userinfo,
//! pipelining, HTTP/1.0 keep-alive, bare CR and LF, NUL, obs-fold…), sent through a douane
//! on the direct path and a douane on hyper alone, each in front of its own raw upstream
//! that records the exact requests it parses. For every request: the same statuses, the
//! same upstream request heads (as sets of lines), the same log lines, the same bytes in
//! them, the same metric deltas (the request counters of the admin `/metrics`, scraped
//! before and after each request) — and an upstream
//! never parses more requests than douane decided to let through.

mod common;

use std::time::Duration;

use common::proxy::{policy, standard_overrides, ConfigSpec, Douane, Engine, Fixture, RouteSpec};
use common::raw::{self, statuses, RawUpstream};

const RULES: &str = r#"
[[rule]]
id = "no-admin"
hosts = ["fr.test"]
paths = ["/admin"]
action = "block"
"#;

const QUIET: Duration = Duration::from_millis(400);

/// The corpus: a name and the raw bytes, `{H}` standing for the routed host.
fn corpus() -> Vec<(&'static str, String)> {
    let ok: &[(&str, &str)] = &[
        ("get", "GET / HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("get-query", "GET /a?b=c&d HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("head", "HEAD /h HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("post-cl", "POST /p HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5\r\n\r\nhello"),
        ("post-cl0", "POST /p0 HTTP/1.1\r\nHost: {H}\r\nContent-Length: 0\r\n\r\n"),
        ("put", "PUT /put HTTP/1.1\r\nHost: {H}\r\nContent-Length: 3\r\n\r\nabc"),
        ("delete", "DELETE /d HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("options", "OPTIONS /o HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("options-star", "OPTIONS * HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("many-headers", "GET /m HTTP/1.1\r\nHost: {H}\r\nA: 1\r\nB: 2\r\nC: 3\r\nAccept: */*\r\nUser-Agent: t\r\n\r\n"),
        ("close", "GET /c HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n"),
        ("keep-alive", "GET /k HTTP/1.1\r\nHost: {H}\r\nConnection: keep-alive\r\n\r\n"),
        ("http10", "GET /ten HTTP/1.0\r\nHost: {H}\r\n\r\n"),
        ("http10-keep-alive", "GET /ten-ka HTTP/1.0\r\nHost: {H}\r\nConnection: keep-alive\r\n\r\nGET /ten-ka2 HTTP/1.0\r\nHost: {H}\r\n\r\n"),
        ("pipelined-2", "GET /p1 HTTP/1.1\r\nHost: {H}\r\n\r\nGET /p2 HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("pipelined-3-close", "GET /q1 HTTP/1.1\r\nHost: {H}\r\n\r\nGET /q2 HTTP/1.1\r\nHost: {H}\r\n\r\nGET /q3 HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n"),
        ("pipelined-post", "POST /r1 HTTP/1.1\r\nHost: {H}\r\nContent-Length: 2\r\n\r\nokGET /r2 HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("xff", "GET /xff HTTP/1.1\r\nHost: {H}\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"),
        ("forwarded", "GET /fwd HTTP/1.1\r\nHost: {H}\r\nForwarded: for=6.6.6.6\r\n\r\n"),
        ("xfh", "GET /xfh HTTP/1.1\r\nHost: {H}\r\nX-Forwarded-Host: evil.example\r\n\r\n"),
        ("xfp", "GET /xfp HTTP/1.1\r\nHost: {H}\r\nX-Forwarded-Proto: gopher\r\n\r\n"),
        ("via", "GET /via HTTP/1.1\r\nHost: {H}\r\nVia: 1.1 other\r\n\r\n"),
        ("connection-named", "GET /named HTTP/1.1\r\nHost: {H}\r\nConnection: x-hop\r\nX-Hop: 1\r\n\r\n"),
        ("keep-alive-header", "GET /kah HTTP/1.1\r\nHost: {H}\r\nKeep-Alive: timeout=5\r\n\r\n"),
        ("te-trailers", "GET /te HTTP/1.1\r\nHost: {H}\r\nTE: trailers\r\n\r\n"),
        ("proxy-authorization", "GET /pa HTTP/1.1\r\nHost: {H}\r\nProxy-Authorization: Basic eDp5\r\n\r\n"),
        ("proxy-connection", "GET /pc HTTP/1.1\r\nHost: {H}\r\nProxy-Connection: keep-alive\r\n\r\n"),
        ("chunked", "POST /ch HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        ("chunked-trailer", "POST /cht HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"),
        ("chunked-ext", "POST /che HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\n"),
        ("expect", "POST /exp HTTP/1.1\r\nHost: {H}\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok"),
        ("absolute", "GET http://{H}/abs HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("absolute-userinfo", "GET http://user:pw@{H}/ui HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("absolute-https", "GET https://{H}/abs-s HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("host-port", "GET /hp HTTP/1.1\r\nHost: {H}:443\r\n\r\n"),
        ("host-upper", "GET /hu HTTP/1.1\r\nHost: APP.LOCALHOST\r\n\r\n"),
        ("host-dot", "GET /hd HTTP/1.1\r\nHost: {H}.\r\n\r\n"),
        ("blocked", "GET /admin/secret HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("blocked-json", "GET /admin/x HTTP/1.1\r\nHost: {H}\r\nAccept: application/json\r\n\r\n"),
        ("blocked-then-ok", "GET /admin/a HTTP/1.1\r\nHost: {H}\r\n\r\nGET /after HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("misdirected", "GET /mis HTTP/1.1\r\nHost: other.localhost\r\n\r\n"),
        ("path-dots", "GET /a/../b HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("path-encoded", "GET /%61dmin/x HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("websocket", "GET /ws HTTP/1.1\r\nHost: {H}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"),
        ("upgrade-without-connection", "GET /uwc HTTP/1.1\r\nHost: {H}\r\nUpgrade: websocket\r\n\r\n"),
    ];
    let hostile: &[(&str, &str)] = &[
        ("no-host", "GET /nh HTTP/1.1\r\n\r\n"),
        ("empty-host", "GET /eh HTTP/1.1\r\nHost: \r\n\r\n"),
        ("two-hosts", "GET /th HTTP/1.1\r\nHost: {H}\r\nHost: evil.localhost\r\n\r\n"),
        ("smuggle-cl", "POST /s HTTP/1.1\r\nHost: {H}\r\nConnection: content-length\r\nContent-Length: 45\r\n\r\nGET /admin/secret HTTP/1.1\r\nHost: fr.test\r\n\r\n"),
        ("smuggle-close-cl", "POST /s HTTP/1.1\r\nHost: {H}\r\nConnection: close, Content-Length\r\nContent-Length: 45\r\n\r\nGET /admin/secret HTTP/1.1\r\nHost: fr.test\r\n\r\n"),
        ("smuggle-te", "POST /s HTTP/1.1\r\nHost: {H}\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("two-cl", "POST /tc HTTP/1.1\r\nHost: {H}\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
        ("two-equal-cl", "POST /tec HTTP/1.1\r\nHost: {H}\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
        ("te-and-cl", "POST /tecl HTTP/1.1\r\nHost: {H}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        ("pipelined-then-te-and-cl", "GET /pt1 HTTP/1.1\r\nHost: {H}\r\n\r\nPOST /pt2 HTTP/1.1\r\nHost: {H}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        // The direct path hands the connection to hyper at the chunked body: the second
        // head is hyper's to read, and still refused.
        ("chunked-then-two-equal-cl", "POST /ct1 HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nPOST /ct2 HTTP/1.1\r\nHost: {H}\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
        ("chunked-then-te-and-cl", "POST /cu1 HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nPOST /cu2 HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
        ("te-not-last", "POST /tnl HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"),
        ("te-gzip-chunked", "POST /tgc HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
        ("chunk-negative", "POST /cn HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"),
        ("chunk-hex-prefix", "POST /chp HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"),
        ("chunk-overflow", "POST /co HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nx\r\n0\r\n\r\n"),
        ("chunk-bare-lf", "POST /cbl HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"),
        ("cl-plus", "POST /clp HTTP/1.1\r\nHost: {H}\r\nContent-Length: +3\r\n\r\nabc"),
        ("cl-space", "POST /cls HTTP/1.1\r\nHost: {H}\r\nContent-Length: 3 3\r\n\r\nabc"),
        ("cl-hex", "POST /clh HTTP/1.1\r\nHost: {H}\r\nContent-Length: 0x3\r\n\r\nabc"),
        ("cl-list", "POST /cll HTTP/1.1\r\nHost: {H}\r\nContent-Length: 3, 3\r\n\r\nabc"),
        ("obs-fold", "GET /of HTTP/1.1\r\nHost: {H}\r\nX-A: a\r\n b\r\n\r\n"),
        ("bare-lf", "GET /blf HTTP/1.1\nHost: {H}\n\n"),
        ("bare-cr", "GET /bcr HTTP/1.1\r\nHost: {H}\r\nX-A: a\rb\r\n\r\n"),
        ("nul-value", "GET /nul HTTP/1.1\r\nHost: {H}\r\nX-A: a\0b\r\n\r\n"),
        ("space-before-colon", "GET /sbc HTTP/1.1\r\nHost : {H}\r\n\r\n"),
        ("bad-name", "GET /bn HTTP/1.1\r\nHost: {H}\r\nX(A): 1\r\n\r\n"),
        ("h2c", "GET /h2c HTTP/1.1\r\nHost: {H}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"),
        ("h2c-settings-only", "GET /h2s HTTP/1.1\r\nHost: {H}\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"),
        ("upgrade-other", "GET /uo HTTP/1.1\r\nHost: {H}\r\nConnection: Upgrade\r\nUpgrade: foo/2\r\n\r\n"),
        ("upgrade-two", "GET /u2 HTTP/1.1\r\nHost: {H}\r\nConnection: Upgrade\r\nUpgrade: websocket, h2c\r\n\r\n"),
        ("double-space", "GET  /ds HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("http12", "GET /v12 HTTP/1.2\r\nHost: {H}\r\n\r\n"),
        ("h2-preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        ("lowercase-method", "get /lm HTTP/1.1\r\nHost: {H}\r\n\r\n"),
        ("connect", "CONNECT fr.test:443 HTTP/1.1\r\nHost: fr.test:443\r\n\r\n"),
        ("loop", "GET http://{H}/loop HTTP/1.1\r\nHost: {H}\r\nVia: 1.1 douane-00000000\r\n\r\n"),
        ("absolute-host-mismatch", "GET http://{H}/ahm HTTP/1.1\r\nHost: evil.localhost\r\n\r\n"),
        ("absolute-odd-host", "GET http://{H}/aoh HTTP/1.1\r\nHost: a\"b\r\nX-Forwarded-Host: evil.example\r\n\r\n"),
        ("garbage", "\x16\x03\x01\x00\x05hello"),
    ];
    ok.iter()
        .chain(hostile)
        .map(|(name, raw)| (*name, raw.replace("{H}", "app.localhost")))
        .collect()
}

struct Side {
    fx: Fixture,
    douane: Douane,
    up: RawUpstream,
}

async fn side(engine: Engine) -> Side {
    let up = RawUpstream::start().await;
    let fx = Fixture::new();
    fx.write_policy(&policy("all", "enforce", &[up.port], RULES));
    fx.write_config(&ConfigSpec {
        engine,
        overrides: standard_overrides(),
        routes: vec![RouteSpec::app(format!("http://fr.test:{}", up.port))],
        ..ConfigSpec::default()
    });
    let douane = fx.start().await;
    Side { fx, douane, up }
}

/// What one request did on one side.
#[derive(Debug, PartialEq)]
struct Seen {
    statuses: Vec<u16>,
    heads: Vec<Vec<String>>,
    decided: usize,
    refused: usize,
    /// The body bytes each finished request's log line gives (sent, received).
    bytes: Vec<(Option<u64>, Option<u64>)>,
    /// The counters this request moved, with how much (from the admin `/metrics`).
    metrics: Vec<(String, f64)>,
}

/// The counters of a request's life, compared between the engines.
const COUNTERS: &[&str] = &[
    "douane_requests_total",
    "douane_decisions_total",
    "douane_refusals_total",
    "douane_upstream_errors_total",
    "douane_destination_requests_total",
    "douane_exposure_",
    "douane_sent_bytes_total",
    "douane_received_bytes_total",
];

/// The counters of [`COUNTERS`] from a `/metrics` text, each series by its name and labels.
fn counters(text: &str, port: u16) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && COUNTERS.iter().any(|c| l.starts_with(c)))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let series = series.replace(&port.to_string(), "PORT");
            Some((series, value.parse().ok()?))
        })
        .collect()
}

impl Side {
    async fn send(&self, bytes: &[u8]) -> Seen {
        self.up.clear();
        let (decided, refused) = self.logs();
        let lines = self.douane.logs().len();
        let before = self.metrics();
        let answer = raw::tls(
            self.douane.reverse,
            &self.fx.ca,
            "app.localhost",
            bytes,
            QUIET,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (decided_after, refused_after) = self.logs();
        // Each side has its own upstream: its port is not a difference.
        let port = format!(":{}", self.up.port);
        let mut heads: Vec<Vec<String>> = self
            .up
            .parsed()
            .iter()
            .map(|p| {
                p.head_set()
                    .iter()
                    .map(|l| l.replace(&port, ":PORT"))
                    .collect()
            })
            .collect();
        heads.sort();
        let bytes = self.douane.logs()[lines..]
            .iter()
            .filter(|l| l.contains("\"request decided\""))
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a JSON log line");
                let field = |name: &str| {
                    let f = v.get("fields").unwrap_or(&v);
                    f.get(name).and_then(serde_json::Value::as_u64)
                };
                (field("sent"), field("received"))
            })
            .collect();
        let after = self.metrics();
        let metrics = after
            .into_iter()
            .filter_map(|(series, value)| {
                let moved = value - before.get(&series).copied().unwrap_or(0.0);
                (moved != 0.0).then_some((series, moved))
            })
            .collect();
        Seen {
            metrics,
            bytes,
            statuses: statuses(&answer),
            heads,
            decided: decided_after - decided,
            refused: refused_after - refused,
        }
    }

    fn metrics(&self) -> std::collections::BTreeMap<String, f64> {
        let (status, text) = self.douane.admin_get("/metrics");
        assert_eq!(status, 200, "{text}");
        counters(&text, self.up.port)
    }

    fn logs(&self) -> (usize, usize) {
        (
            self.douane.log_count("\"request decided\""),
            self.douane.log_count("\"request refused\""),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_engines_answer_the_corpus_alike() {
    let (direct, hyper) = tokio::join!(side(Engine::Direct), side(Engine::Hyper));
    let corpus = corpus();
    assert!(corpus.len() >= 60, "{} requests", corpus.len());
    let mut differences = Vec::new();
    for (name, bytes) in &corpus {
        let (d, h) = tokio::join!(direct.send(bytes.as_bytes()), hyper.send(bytes.as_bytes()));
        for (engine, seen) in [("direct", &d), ("hyper", &h)] {
            // Nothing reaches an upstream that douane did not decide to let through.
            assert!(
                seen.heads.len() <= seen.decided,
                "{name} on {engine}: the upstream parsed {} requests, {} decided: {seen:?}",
                seen.heads.len(),
                seen.decided
            );
            assert!(
                !seen
                    .heads
                    .iter()
                    .flatten()
                    .any(|l| l.contains("/admin") || l.starts_with("pri ")),
                "{name} on {engine}: {seen:?}"
            );
        }
        if name.ends_with("te-and-cl") || name.ends_with("two-equal-cl") {
            // What hyper folds is refused on both engines, wherever it comes on a connection.
            assert_eq!((h.refused, d.refused), (1, 1), "{name}: {h:?} {d:?}");
        }
        if *name == "get" || *name == "two-hosts" {
            // Every request moves its counters (here: one decision, one refusal).
            assert!(!h.metrics.is_empty(), "{name}: {h:?}");
        }
        if *name == "post-cl" {
            // The request's body and the upstream's answer (its target, 2 bytes).
            assert_eq!(h.bytes, [(Some(5), Some(2))], "{h:?}");
        }
        if d != h {
            differences.push(format!("{name}:\n  direct {d:?}\n  hyper  {h:?}"));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    for side in [&direct, &hyper] {
        assert_eq!(side.douane.log_count("request ended without finish"), 0);
    }
}
