//! End to end, as the ops team sees it: a real Prometheus (Debian's `prometheus`) on loopback
//! scrapes a running `douane run` that carries test traffic (allowed, blocked on location,
//! blocked on operator, an exempted CONNECT tunnel, an upstream that refuses), then every
//! PromQL expression of `deploy/grafana/douane.json` runs against it and must return data.
//!
//! Skipped, with a note, when `prometheus` is not on PATH (`.ci/run` installs it); when `CI`
//! is set, a missing `prometheus` fails the test instead: a CI machine whose install step
//! failed must not stay green.

#[path = "common/mmdb.rs"]
mod mmdb;
#[path = "common/tools.rs"]
mod tools;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use douane::geo::Schema;
use tools::{in_ci, on_path};

/// Kills the processes this test started (by their handle) when the test ends, however.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An upstream on `ip`: answers `GET` with `200 ok`, echoes anything else (a tunnel).
fn upstream(ip: &str) -> u16 {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve_upstream(stream));
        }
    });
    port
}

fn serve_upstream(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        seen.extend_from_slice(&buf[..n]);
        if seen.starts_with(b"GET ") || seen.starts_with(b"HEAD ") {
            if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
                return;
            }
        } else {
            if stream.write_all(&seen).is_err() {
                return;
            }
            seen.clear();
        }
    }
}

/// A port on `ip` that nothing listens on.
fn closed_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_port() -> u16 {
    closed_port("127.0.0.1")
}

/// Sends one request through the forward proxy and returns the whole answer.
fn through_proxy(proxy: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get(proxy: SocketAddr, host: &str, port: u16) -> String {
    through_proxy(
        proxy,
        &format!(
            "GET http://{host}:{port}/ HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
        ),
    )
}

/// A CONNECT tunnel that carries `ping` there and back, then closes.
fn tunnel(proxy: SocketAddr, host: &str, port: u16) {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "CONNECT answer cut short");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "CONNECT: {head}");
    s.write_all(b"ping").unwrap();
    let mut echo = [0u8; 4];
    s.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"ping");
    s.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
}

/// `GET path` on a loopback HTTP server; the body.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query: the `data` of the answer.
fn query(prometheus: SocketAddr, promql: &str) -> Result<serde_json::Value, String> {
    let path = format!("/api/v1/query?query={}", percent_encode(promql));
    let (status, body) = http_get(prometheus, &path).ok_or("no answer from prometheus")?;
    let json: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("{status}: {e}: {body}"))?;
    if json["status"] != "success" {
        return Err(format!("{status}: {body}"));
    }
    Ok(json["data"].clone())
}

/// The values of a query's result (vector, scalar or matrix).
fn values(data: &serde_json::Value) -> Vec<f64> {
    let parse = |v: &serde_json::Value| v[1].as_str().and_then(|s| s.parse::<f64>().ok());
    match data["resultType"].as_str() {
        Some("scalar") => parse(&data["result"]).into_iter().collect(),
        Some("vector") => data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| parse(&s["value"]))
            .collect(),
        Some("matrix") => data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| parse(&v))
            .collect(),
        _ => Vec::new(),
    }
}

/// Every PromQL expression of the dashboard, as `deploy/check.sh` lists them.
fn dashboard_queries(path: &Path) -> Vec<String> {
    fn walk(panels: &serde_json::Value, out: &mut Vec<String>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push(expr.to_owned());
                }
            }
            walk(&p["panels"], out);
        }
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn prometheus_scrapes_douane_and_every_dashboard_query_returns_data() {
    let Some(prometheus_bin) = on_path("prometheus") else {
        assert!(
            !in_ci(),
            "CI is set and the `prometheus` binary is not on PATH: the end-to-end test cannot \
             run (.ci/run installs Debian's prometheus)"
        );
        eprintln!(
            "note: skipped: the `prometheus` binary is not on PATH \
             (Debian: apt-get install prometheus)"
        );
        return;
    };
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let queries = dashboard_queries(&repo.join("deploy/grafana/douane.json"));
    assert!(queries.len() > 20, "{} queries", queries.len());

    // Upstreams: FR run by a FR operator, US run by a US one, FR run by a US one (like
    // AWS Paris).
    let (p_fr, p_us, p_aws) = (
        upstream("127.0.0.2"),
        upstream("127.0.0.3"),
        upstream("127.0.0.4"),
    );
    let p_closed = closed_port("127.0.0.2");

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("policies")).unwrap();
    std::fs::create_dir_all(d.join("audit")).unwrap();
    mmdb::write_country_db(
        &d.join("country.mmdb"),
        &[
            ("127.0.0.2/32", "FR"),
            ("127.0.0.3/32", "US"),
            ("127.0.0.4/32", "FR"),
        ],
        Schema::GeoIp2,
    );
    mmdb::write_asn_db(
        &d.join("asn.mmdb"),
        &[
            ("127.0.0.2/32", 64501, "Hébergeur Français SAS"),
            ("127.0.0.3/32", 64502, "Hyperscaler Inc."),
            ("127.0.0.4/32", 64502, "Hyperscaler Inc."),
        ],
    );
    std::fs::write(
        d.join("operators.toml"),
        r#"
[[operator]]
name = "Hébergeur Français"
jurisdiction = "FR"
asns = [64501]
source = "test fixture"

[[operator]]
name = "Hyperscaler"
jurisdiction = "US"
asns = [64502]
source = "test fixture"
"#,
    )
    .unwrap();
    std::fs::write(
        d.join("policies/e2e.toml"),
        format!(
            r#"
[policy]
name = "e2e"
allowed_locations = ["EU"]
allowed_operators = ["EU"]
allowed_ports = [{p_fr}, {p_us}, {p_aws}, {p_closed}]

[[network]]
cidr = "127.0.0.0/8"
label = "loopback placed by the test databases"

[[rule]]
id = "exemption-us"
hosts = ["exempt.example"]
action = "allow"
justification = "end-to-end test"
ticket = "E2E-1"
expires = 2099-12-31
"#
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("douane.toml"),
        r#"
[policy]
dir = "policies"
operators = "operators.toml"

[geo]
country = "country.mmdb"
asn = "asn.mmdb"

[forward]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[audit]
path = "audit/douane-audit.jsonl"

[log]
format = "json"

[resolver]
nameservers = ["127.0.0.1:9"]   # never asked: every name below is an override
[resolver.overrides]
"fr.example" = ["127.0.0.2"]
"us.example" = ["127.0.0.3"]
"exempt.example" = ["127.0.0.3"]
"aws-paris.example" = ["127.0.0.4"]
"#,
    )
    .unwrap();

    let mut children = Children(Vec::new());
    let mut douane = Command::new(env!("CARGO_BIN_EXE_douane"))
        .args(["run", "--config", "douane.toml"])
        .current_dir(d)
        .env_remove("DOUANE_CONFIG")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = douane.stderr.take().unwrap();
    children.0.push(douane);

    // The bound addresses, from the JSON log lines.
    let (tx, rx) = mpsc::channel::<(String, SocketAddr)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                eprintln!("douane: {line}");
                continue;
            };
            let message = json["message"].as_str().unwrap_or_default().to_owned();
            if let Some(addr) = json["address"].as_str().and_then(|a| a.parse().ok()) {
                let _ = tx.send((message, addr));
            } else if json["level"] != "INFO" && json["level"] != "DEBUG" {
                eprintln!("douane: {line}");
            }
        }
    });
    let (mut proxy, mut admin) = (None, None);
    while proxy.is_none() || admin.is_none() {
        let (message, addr) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("douane should log its listening addresses");
        match message.as_str() {
            "forward proxy listening" => proxy = Some(addr),
            "admin listening" => admin = Some(addr),
            _ => {}
        }
    }
    let (proxy, admin) = (proxy.unwrap(), admin.unwrap());

    // Traffic, until the queries are done.
    let first = get(proxy, "fr.example", p_fr);
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let blocked = get(proxy, "us.example", p_us);
    assert!(blocked.starts_with("HTTP/1.1 451"), "{blocked}");
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                get(proxy, "fr.example", p_fr);
                get(proxy, "us.example", p_us);
                get(proxy, "aws-paris.example", p_aws);
                get(proxy, "fr.example", p_closed);
                tunnel(proxy, "exempt.example", p_us);
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    // Prometheus, scraping douane's admin listener every second.
    let web = SocketAddr::from(([127, 0, 0, 1], free_port()));
    std::fs::write(
        d.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: douane\n    static_configs:\n      - targets: [\"{admin}\"]\n"
        ),
    )
    .unwrap();
    let prometheus_log = std::fs::File::create(d.join("prometheus.log")).unwrap();
    children.0.push(
        Command::new(prometheus_bin)
            .arg(format!(
                "--config.file={}",
                d.join("prometheus.yml").display()
            ))
            .arg(format!("--storage.tsdb.path={}", d.join("tsdb").display()))
            .arg(format!("--web.listen-address={web}"))
            .current_dir(d)
            .stdout(Stdio::null())
            .stderr(prometheus_log)
            .spawn()
            .unwrap(),
    );
    let prometheus_failed = || std::fs::read_to_string(d.join("prometheus.log")).unwrap();
    wait_for("prometheus to be ready", Duration::from_secs(60), || {
        http_get(web, "/-/ready").filter(|(s, _)| *s == 200)
    });
    // Enough scrapes for rates over 10s windows.
    wait_for("eight scrapes of douane", Duration::from_secs(60), || {
        let data = query(web, "count_over_time(up{job=\"douane\"}[1m])").ok()?;
        let ups = query(web, "min_over_time(up{job=\"douane\"}[1m])").ok()?;
        (values(&data).first().copied()? >= 8.0 && values(&ups).first().copied()? == 1.0)
            .then_some(())
    });

    let mut empty = Vec::new();
    for q in &queries {
        let promql = q
            .replace("$__rate_interval", "10s")
            .replace("$__interval", "10s")
            .replace("$__range", "1m");
        match query(web, &promql) {
            Ok(data) => {
                let vals = values(&data);
                if !vals.iter().any(|v| v.is_finite()) {
                    empty.push(format!("{q}\n    → {data}"));
                }
            }
            Err(e) => empty.push(format!("{q}\n    → error: {e}")),
        }
    }
    // And the numbers mean what the dashboard says: US exposure on both axes (us.example
    // is located and operated there; aws-paris.example only operated), exempted tunnel
    // bytes on both axes, blocks by the default rule and exemptions by theirs.
    let series = |promql: &str| -> Vec<String> {
        let data = query(web, promql).unwrap_or_else(|e| panic!("{promql}: {e}"));
        data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["value"][1].as_str().and_then(|v| v.parse::<f64>().ok()) > Some(0.0))
            .map(|s| s["metric"].to_string())
            .collect()
    };
    let by_axis =
        series("sum by (axis, outcome) (douane_exposure_requests_total{jurisdiction=\"US\"})");
    for expected in [
        r#"{"axis":"location","outcome":"block"}"#,
        r#"{"axis":"operator","outcome":"block"}"#,
        r#"{"axis":"location","outcome":"exempt"}"#,
        r#"{"axis":"operator","outcome":"exempt"}"#,
    ] {
        assert!(
            by_axis.iter().any(|s| s == expected),
            "{expected} not in {by_axis:?}"
        );
    }
    let operator_only = series(
        "douane_destination_requests_total{location=\"FR\",operator=\"US\",outcome=\"block\"}",
    );
    assert_eq!(
        operator_only.len(),
        1,
        "aws-paris.example: {operator_only:?}"
    );
    let bytes = series("sum by (axis) (douane_exposure_received_bytes_total{outcome=\"exempt\"})");
    assert_eq!(bytes.len(), 2, "tunnel bytes on both axes: {bytes:?}");
    let rules = series("sum by (rule, outcome) (douane_decisions_total)");
    for expected in [
        r#"{"outcome":"allow","rule":"default"}"#,
        r#"{"outcome":"block","rule":"default"}"#,
        r#"{"outcome":"exempt","rule":"exemption-us"}"#,
    ] {
        assert!(
            rules.iter().any(|s| s == expected),
            "{expected} not in {rules:?}"
        );
    }
    assert_eq!(
        series("douane_upstream_errors_total{kind=\"connect\"}").len(),
        1
    );
    assert_eq!(series("douane_audit_records_written_total").len(), 1);

    stop.store(true, Ordering::Relaxed);
    let _ = traffic.join();
    assert!(
        empty.is_empty(),
        "{} of {} dashboard queries returned no data:\n{}\n--- prometheus log ---\n{}",
        empty.len(),
        queries.len(),
        empty.join("\n"),
        prometheus_failed()
    );
}
