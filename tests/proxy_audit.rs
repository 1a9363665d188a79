//! The audit log through the proxy, as an auditor and an ops team see it: what a client
//! sends cannot break or forge a line, and a log that cannot be written turns douane
//! not-ready and (by default) refuses the requests that need a record.

mod common;

use common::client;
use common::proxy::{policy, standard_overrides, ConfigSpec, Engine, Fixture, RouteSpec};
use common::upstream;

const JSON: [(&str, &str); 1] = [("accept", "application/json")];

/// A fixture with the standard policy enforced (`us.test` blocked, `fr.test` allowed) and
/// the upstream port, douane not started yet.
async fn enforcing(engine: Engine) -> (Fixture, u16) {
    let fx = Fixture::new();
    let port = upstream::start(&["127.0.0.2", "127.0.0.3"], None).await;
    fx.write_enforcing(engine, port, Vec::new());
    (fx, port)
}

on_both_engines! {
    async fn client_controlled_values_stay_on_one_line_and_the_chain_verifies(engine: Engine) {
        let (fx, port) = enforcing(engine).await;
        let douane = fx.start().await;

        // Quotes, braces, backslashes and a JSON look-alike in the path and query; a made-up
        // method; a path far longer than max_field_bytes (2048).
        let forged = r#"/x"},"outcome":"allow","seq":0,"hash":"00"}{"a":"\\"#;
        let long = format!("/{}", "a".repeat(10_000));
        let mut ids = Vec::new();
        for (method, path) in [
            ("GET", forged.to_string()),
            ("BREW", long),
            ("GET", "/plain".into()),
        ] {
            let url = format!(
                "http://us.test:{port}{}",
                path.replace('"', "%22").replace('\\', "%5C")
            );
            let raw_url = format!("http://us.test:{port}{path}");
            // Send the raw form when the URI parser takes it, the percent-encoded one otherwise.
            let target = if raw_url.parse::<http::Uri>().is_ok() {
                raw_url
            } else {
                url
            };
            let reply = client::forward(douane.forward, method, &target, &JSON).await;
            assert_eq!(reply.status, 451, "{}", reply.text());
            ids.push(reply.json()["request_id"].as_str().unwrap().to_owned());
        }
        let records = fx.audit_records(); // every line parses as one JSON object
        assert_eq!(records.len(), 3, "one line per request: {records:#?}");
        for (record, id) in records.iter().zip(&ids) {
            assert_eq!(record["request_id"], id.as_str());
            assert_eq!(
                record["outcome"], "block",
                "nothing a client sends changes the outcome"
            );
        }
        assert_eq!(records[1]["method"], "BREW");
        let cut = records[1]["path"].as_str().unwrap();
        assert!(
            cut.len() < 2200,
            "the long path is cut: {} bytes",
            cut.len()
        );
        assert!(cut.contains("truncated"), "and the cut is marked: {cut}");
        let (ok, out) = fx.audit_verify();
        assert!(ok, "{out}");
    }
}

on_both_engines! {
    async fn an_unwritable_audit_log_turns_not_ready_and_refuses_blocks_with_503(engine: Engine) {
        let (fx, port) = enforcing(engine).await;
        // The disk is full: every write fails.
        let config = std::fs::read_to_string(fx.path("douane.toml")).unwrap();
        let config = config.replace(
            "path = \"audit/douane-audit.jsonl\"",
            "path = \"/dev/full\"",
        );
        assert!(config.contains("/dev/full"));
        std::fs::write(fx.path("douane.toml"), config).unwrap();
        let douane = fx.start().await;

        // An allowed request needs no record (record_allowed = false): it goes through.
        let reply = client::forward(
            douane.forward,
            "GET",
            &format!("http://fr.test:{port}/"),
            &[],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());

        // A block needs one; it cannot be written, so no unrecorded decision: 503.
        let reply = client::forward(
            douane.forward,
            "GET",
            &format!("http://us.test:{port}/"),
            &JSON,
        )
        .await;
        assert_eq!(reply.status, 503, "{}", reply.text());
        let id = reply
            .header("douane-request-id")
            .expect("request id")
            .to_owned();
        // The log line says what the client got: 503, never the 451 it did not get.
        assert!(
            douane
                .wait_log(&id, std::time::Duration::from_secs(2))
                .await
        );
        let line = douane
            .logs()
            .into_iter()
            .find(|l| l.contains(&id) && l.contains("request decided"))
            .expect("the request's log line");
        assert!(line.contains("\"status\":503"), "{line}");

        let (status, body) = douane.admin_get("/readyz");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("audit"), "{body}");
        let (_, metrics) = douane.admin_get("/metrics");
        let failures = metrics
            .lines()
            .find(|l| l.starts_with("douane_audit_write_failures_total"))
            .unwrap_or_else(|| panic!("no audit failure metric: {metrics}"));
        assert!(!failures.ends_with(" 0"), "{failures}");
        let (status, _) = douane.admin_get("/healthz");
        assert_eq!(status, 200, "the process itself is alive");
    }
}

/// The fixture of the record tests: a plain upstream on the FR, US and CN addresses, an
/// exemption for cn.test, a reverse route `app` to fr.test, allowed requests recorded, the
/// path written as `path_mode` says.
async fn recorded(engine: Engine, path_mode: &str) -> (Fixture, common::proxy::Douane, u16) {
    let fx = Fixture::new();
    let port = upstream::start(&["127.0.0.2", "127.0.0.3", "127.0.0.4"], None).await;
    let exemption = r#"
[[rule]]
id = "visio-cn"
hosts = ["cn.test"]
action = "allow"
justification = "visioconférence du conseil, marché 2026-12"
ticket = "DSI-42"
expires = 2999-12-31
"#;
    fx.write_policy(&policy("all", "enforce", &[port], exemption));
    fx.write_config(&ConfigSpec {
        engine,
        overrides: standard_overrides(),
        routes: vec![RouteSpec::app(format!("http://fr.test:{port}"))],
        ..ConfigSpec::default()
    });
    let config = std::fs::read_to_string(fx.path("douane.toml")).unwrap();
    let config = config.replace(
        "path = \"audit/douane-audit.jsonl\"",
        &format!(
            "path = \"audit/douane-audit.jsonl\"\nrecord_allowed = true\npath_mode = \"{path_mode}\""
        ),
    );
    assert!(config.contains("record_allowed = true"));
    std::fs::write(fx.path("douane.toml"), config).unwrap();
    let douane = fx.start().await;
    (fx, douane, port)
}

fn id_of(reply: &common::client::Reply) -> String {
    reply
        .header("douane-request-id")
        .expect("request id")
        .to_owned()
}

fn gate_of(fx: &Fixture, id: &str) -> serde_json::Value {
    gate_where(fx, "request_id", id)
}

/// The one gate record whose `field` is `value` (a request let through gets no request id
/// header to find it by).
fn gate_where(fx: &Fixture, field: &str, value: &str) -> serde_json::Value {
    let gates: Vec<_> = fx
        .audit_records()
        .into_iter()
        .filter(|r| r[field] == value)
        .collect();
    assert_eq!(
        gates.len(),
        1,
        "one gate record with {field} {value}: {gates:#?}"
    );
    gates[0].clone()
}

on_both_engines! {
    async fn records_carry_the_gate_and_end_facts_of_each_request(engine: Engine) {
        let (fx, douane, port) = recorded(engine, "as_is").await;

        // Blocked: the gate record (written before the 451) claims no status; the end
        // record says what the client got.
        let block = client::forward(
            douane.forward,
            "GET",
            &format!("http://us.test:{port}/dossier?token=abc&x=1"),
            &[],
        )
        .await;
        assert_eq!(block.status, 451, "{}", block.text());
        let id = id_of(&block);
        let gate = gate_of(&fx, &id);
        assert_eq!(gate["outcome"], "block");
        assert_eq!(gate["path"], "/dossier", "the path without its query");
        assert_eq!(gate["query"], "token=abc&x=1", "as_is keeps the query");
        assert_eq!(gate["requested_host"], format!("us.test:{port}"));
        assert!(gate.get("status").is_none(), "the gate claims no status: {gate}");
        assert!(gate["registry_version"].is_string(), "{gate}");
        assert!(gate["country_db_built"].is_string(), "{gate}");
        let end = fx.audit_end(&id).await.expect("the block's end record");
        assert_eq!(end["status"], 451, "{end}");
        assert_eq!(end["outcome"], "block");
        assert!(end.get("connected").is_none(), "nothing was connected to: {end}");
        assert!(end["duration_us"].as_u64().is_some(), "{end}");

        // Allowed: where it went, what it got.
        let allow = client::forward(
            douane.forward,
            "GET",
            &format!("http://fr.test:{port}/ok?x=1"),
            &[],
        )
        .await;
        assert_eq!(allow.status, 200, "{}", allow.text());
        let gate = gate_where(&fx, "host", "fr.test");
        let id = gate["request_id"].as_str().expect("id").to_owned();
        assert_eq!(gate["outcome"], "allow");
        assert_eq!(gate["query"], "x=1");
        let end = fx.audit_end(&id).await.expect("the allowed request's end record");
        assert_eq!(end["status"], 200, "{end}");
        assert_eq!(end["connected"], format!("127.0.0.2:{port}"), "{end}");
        if engine == Engine::Direct {
            // The direct path counts the bytes; hyper's path does not (yet).
            assert_eq!(end["bytes_from_client"], 0, "{end}");
            assert!(end["bytes_to_client"].as_u64() > Some(0), "{end}");
        }

        // Exempt: the exemption's justification, ticket and expiry, as the policy says.
        let exempt = client::forward(
            douane.forward,
            "GET",
            &format!("http://cn.test:{port}/"),
            &[],
        )
        .await;
        assert_eq!(exempt.status, 200, "{}", exempt.text());
        let gate = gate_where(&fx, "host", "cn.test");
        assert_eq!(gate["outcome"], "exempt");
        assert_eq!(gate["exemption"]["id"], "visio-cn");
        assert_eq!(
            gate["exemption"]["justification"],
            "visioconférence du conseil, marché 2026-12"
        );
        assert_eq!(gate["exemption"]["ticket"], "DSI-42");
        assert_eq!(gate["exemption"]["expires"], "2999-12-31");

        // Reverse: the route, the host the client asked for and its SNI; the upstream host.
        let cfg = |alpn: &[&[u8]]| fx.ca.client_config(alpn);
        let rev = client::reverse(douane.reverse, cfg, "app.localhost", "app.localhost", false, "/r?y=2").await;
        assert_eq!(rev.status, 200, "{}", rev.text());
        let gate = gate_where(&fx, "listener", "tls");
        let id = gate["request_id"].as_str().expect("id").to_owned();
        assert_eq!(gate["route"], "app");
        assert_eq!(gate["requested_host"], "app.localhost");
        assert_eq!(gate["sni"], "app.localhost");
        assert_eq!(gate["host"], "fr.test");
        assert_eq!(gate["query"], "y=2");
        let end = fx.audit_end(&id).await.expect("the reverse request's end record");
        assert_eq!(end["connected"], format!("127.0.0.2:{port}"), "{end}");
        assert_eq!(end["status"], 200);

        // The log verifies, and the report counts each request once (4, not 8 lines).
        let (ok, out) = fx.audit_verify();
        assert!(ok, "{out}");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_douane"))
            .args(["audit", "report", "--format", "json"])
            .arg(fx.path("audit"))
            .output()
            .expect("douane audit report");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let t = &report["totals"];
        assert_eq!((t["block"].as_u64(), t["allow"].as_u64(), t["exempt"].as_u64()), (Some(1), Some(2), Some(1)), "{t}");
        assert_eq!(fx.audit_lines().len(), 8, "a gate and an end record per request");
    }

    async fn redact_drops_the_query_and_keeps_the_path(engine: Engine) {
        let (fx, douane, port) = recorded(engine, "redact").await;
        let block = client::forward(
            douane.forward,
            "GET",
            &format!("http://us.test:{port}/dossier?token=abc"),
            &[],
        )
        .await;
        assert_eq!(block.status, 451, "{}", block.text());
        let gate = gate_of(&fx, &id_of(&block));
        assert_eq!(gate["path"], "/dossier");
        assert!(gate.get("query").is_none(), "redact drops the query: {gate}");
        let text = serde_json::to_string(&fx.audit_lines()).unwrap();
        assert!(!text.contains("token=abc"), "{text}");
    }
}

on_both_engines! {
    async fn a_gate_record_that_does_not_fit_gets_503_and_an_end_record_saying_so(engine: Engine) {
        let (fx, port) = enforcing(engine).await;
        let mut douane = fx.start().await;
        let blocked = format!("http://us.test:{port}/");

        // One block written whole: the sizes of a gate record and of an end record.
        let first = client::forward(douane.forward, "GET", &blocked, &JSON).await;
        assert_eq!(first.status, 451, "{}", first.text());
        let first_id = first.header("douane-request-id").expect("id").to_owned();
        assert!(fx.audit_end(&first_id).await.is_some());
        let mut files: Vec<_> = std::fs::read_dir(fx.path("audit"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        let file = files.pop().expect("the log's current file");
        let text = std::fs::read_to_string(&file).unwrap();
        let line_len = |end: bool| {
            text.lines()
                .find(|l| l.contains(&first_id) && l.contains("\"event\":\"end\"") == end)
                .map(|l| l.len() as u64 + 1)
                .expect("the first block's records")
        };
        let (gate_len, end_len) = (line_len(false), line_len(true));
        assert!(gate_len > end_len + 200, "gate {gate_len} end {end_len}");

        // The disk is nearly full: room for an end record, not for a gate record
        // (the file-size limit of douane's process stands for it).
        let room = std::fs::metadata(&file).unwrap().len() + end_len + 100;
        set_file_size_limit(douane.pid(), &room.to_string());
        let reply = client::forward(douane.forward, "GET", &blocked, &JSON).await;
        assert_eq!(reply.status, 503, "{}", reply.text());
        let id = reply.header("douane-request-id").expect("id").to_owned();

        // The end record fits: it says what the client got, and no record claims a 451.
        let end = fx.audit_end(&id).await.expect("the 503's end record");
        set_file_size_limit(douane.pid(), "unlimited");
        assert_eq!(end["status"], 503, "{end}");
        assert_eq!(end["outcome"], "block", "{end}");
        let of_id: Vec<_> = fx
            .audit_lines()
            .into_iter()
            .filter(|r| r["request_id"] == id.as_str())
            .collect();
        assert_eq!(of_id.len(), 1, "only the end record: {of_id:?}");
        assert!(douane.running(), "a file-size limit fails a write, it does not kill");
        assert!(douane.log_count("SIGXFSZ") >= 1, "and it is logged");

        // The log writes again: douane is ready and the next block is recorded whole.
        let (status, body) = douane.admin_get("/readyz");
        assert_eq!(status, 200, "{body}");
        let again = client::forward(douane.forward, "GET", &blocked, &JSON).await;
        assert_eq!(again.status, 451, "{}", again.text());
        let (ok, out) = fx.audit_verify();
        assert!(ok, "{out}");
    }
}

/// Sets the soft file-size limit (`RLIMIT_FSIZE`, bytes or `unlimited`) of process `pid`.
fn set_file_size_limit(pid: u32, soft: &str) {
    let hard = "unlimited";
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={soft}:{hard}")])
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success(), "prlimit --fsize={soft}");
}
