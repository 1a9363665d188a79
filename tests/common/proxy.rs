//! douane as operators run it: a temp dir with a generated `douane.toml`, policy files,
//! `.mmdb` fixtures, an operator registry and a test CA; the real binary spawned on it,
//! its bound addresses read from its JSON log, `/readyz` awaited, SIGTERM on drop.
//!
//! The fixtures place loopback addresses: 127.0.0.1, .2 and .5 in FR under a French
//! operator (AS64500), .3 in US under a US operator (AS64501), .4 in CN under a Chinese
//! operator (AS64502). The test policy's `[[network]] cidr = "127.0.0.0/8"` has no location
//! and no operator, so the databases place these addresses (without it, every loopback
//! address would be a security block).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use douane::geo::Schema;
use tempfile::TempDir;

use super::mmdb::{write_asn_db, write_country_db};
use super::pki::TestCa;

const OPERATORS: &str = r#"
[[operator]]
name = "Hexagone Cloud"
jurisdiction = "FR"
asns = [64500]
source = "test"

[[operator]]
name = "Yankee Cloud"
jurisdiction = "US"
asns = [64501]
source = "test"

[[operator]]
name = "Dragon Cloud"
jurisdiction = "CN"
asns = [64502]
source = "test"
"#;

pub const COUNTRIES: &[(&str, &str)] = &[
    ("127.0.0.1", "FR"),
    ("127.0.0.2", "FR"),
    ("127.0.0.3", "US"),
    ("127.0.0.4", "CN"),
    ("127.0.0.5", "FR"),
];

pub const ASNS: &[(&str, u32, &str)] = &[
    ("127.0.0.1", 64500, "HEXAGONE"),
    ("127.0.0.2", 64500, "HEXAGONE"),
    ("127.0.0.3", 64501, "YANKEE"),
    ("127.0.0.4", 64502, "DRAGON"),
    ("127.0.0.5", 64500, "HEXAGONE"),
];

/// Names every reverse listener's certificate covers.
pub const REVERSE_NAMES: &[&str] = &[
    "app.localhost",
    "other.localhost",
    "ws.localhost",
    "unrouted.localhost",
];

/// Names (and addresses) the upstreams' certificate covers.
pub const UPSTREAM_NAMES: &[&str] = &[
    "fr.test",
    "us.test",
    "cn.test",
    "mixed.test",
    "refused.test",
    "127.0.0.2",
    "127.0.0.3",
    "127.0.0.4",
];

/// The standard test policy: FR locations and FR operators, `ip_selection` as given, the
/// loopback network placed by the databases, `ports` allowed; `extra` appended (rules).
pub fn policy(ip_selection: &str, mode: &str, ports: &[u16], extra: &str) -> String {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    format!(
        r#"[policy]
name = "test-policy"
mode = "{mode}"
allowed_locations = ["FR"]
allowed_operators = ["FR"]
unknown_location = "block"
unknown_operator = "location"
ip_selection = "{ip_selection}"
allowed_ports = [{ports}]

[[network]]
cidr = "127.0.0.0/8"
label = "loopback, placed by the test databases"

{extra}
"#,
        ports = ports.join(", ")
    )
}

/// A route of the reverse listener.
pub struct RouteSpec {
    pub name: &'static str,
    pub host: &'static str,
    pub path_prefix: &'static str,
    pub upstream: String,
}

impl RouteSpec {
    /// The route most tests use: `app`, every path of `app.localhost`, to `upstream`.
    pub fn app(upstream: String) -> RouteSpec {
        RouteSpec {
            name: "app",
            host: "app.localhost",
            path_prefix: "/",
            upstream,
        }
    }
}

/// Which HTTP/1.1 engine the listeners start on: the direct path (`direct_http1 = true`,
/// the default) or hyper alone. Proxy tests run on both ([`crate::on_both_engines`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Engine {
    #[default]
    Direct,
    Hyper,
}

impl Engine {
    pub const BOTH: [Engine; 2] = [Engine::Direct, Engine::Hyper];

    fn direct_http1(self) -> bool {
        self == Engine::Direct
    }
}

/// Writes each test body once and runs it on both engines: `$name::direct` and
/// `$name::hyper`, each given its [`Engine`].
#[macro_export]
macro_rules! on_both_engines {
    ($(async fn $name:ident($engine:ident: Engine) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn direct() {
                run($crate::common::proxy::Engine::Direct).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn hyper() {
                run($crate::common::proxy::Engine::Hyper).await
            }

            async fn run($engine: $crate::common::proxy::Engine) $body
        }
    )*};
}

/// What `douane.toml` says beyond the fixed parts.
#[derive(Default)]
pub struct ConfigSpec {
    /// The engine of every listener.
    pub engine: Engine,
    /// Static resolver answers.
    pub overrides: Vec<(&'static str, Vec<&'static str>)>,
    /// A loopback DNS server; none: only overrides resolve (other names go to a dead port).
    pub nameserver: Option<SocketAddr>,
    pub routes: Vec<RouteSpec>,
    /// The admin port (0: any).
    pub admin_port: u16,
    /// `[upstream] parent_proxy`.
    pub parent_proxy: Option<String>,
    /// Appended TOML (e.g. a `[limits]` table).
    pub extra: String,
    /// Appended to the `[resolver]` table (e.g. `min_ttl = 0`).
    pub resolver_extra: String,
    /// The admin bearer token (written to `admin-token`, named by `token_file`).
    pub admin_token: Option<&'static str>,
}

/// A temp dir holding everything douane reads.
pub struct Fixture {
    pub dir: TempDir,
    pub ca: TestCa,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        for sub in ["policies", "certs", "audit"] {
            std::fs::create_dir_all(root.join(sub)).expect("mkdir");
        }
        write_country_db(&root.join("country.mmdb"), COUNTRIES, Schema::GeoIp2);
        write_asn_db(&root.join("asn.mmdb"), ASNS);
        std::fs::write(root.join("operators.toml"), OPERATORS).expect("operators");
        let ca = TestCa::new();
        std::fs::write(root.join("ca.pem"), &ca.cert_pem).expect("ca");
        ca.leaf(REVERSE_NAMES).write(
            &root.join("certs/reverse.pem"),
            &root.join("certs/reverse-key.pem"),
        );
        Fixture { dir, ca }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes the one policy file.
    pub fn write_policy(&self, text: &str) {
        std::fs::write(self.path("policies/00-test.toml"), text).expect("policy");
    }

    /// The set-up most proxy tests start from: the standard policy enforced for the
    /// upstream `port` (`us.test` blocked, `fr.test` allowed), and a config with the
    /// standard name overrides, `engine` and `routes`.
    pub fn write_enforcing(&self, engine: Engine, port: u16, routes: Vec<RouteSpec>) {
        self.write_policy(&policy("all", "enforce", &[port], ""));
        self.write_config(&ConfigSpec {
            engine,
            overrides: standard_overrides(),
            routes,
            ..ConfigSpec::default()
        });
    }

    pub fn write_config(&self, spec: &ConfigSpec) {
        if let Some(token) = spec.admin_token {
            std::fs::write(self.path("admin-token"), format!("{token}\n")).expect("token");
        }
        let mut routes = String::new();
        for r in &spec.routes {
            routes.push_str(&format!(
                "[[route]]\nname = \"{}\"\nhost = \"{}\"\npath_prefix = \"{}\"\nupstream = \"{}\"\n\n",
                r.name, r.host, r.path_prefix, r.upstream
            ));
        }
        // A nameserver that answers nothing: only overrides resolve.
        let nameserver = spec
            .nameserver
            .map(|a| a.to_string())
            .unwrap_or_else(|| "127.0.0.1:9".into());
        let mut overrides = String::new();
        for (name, ips) in &spec.overrides {
            let ips: Vec<String> = ips.iter().map(|ip| format!("\"{ip}\"")).collect();
            overrides.push_str(&format!("\"{name}\" = [{}]\n", ips.join(", ")));
        }
        let text = format!(
            r#"[policy]
dir = "policies"
operators = "operators.toml"

[geo]
country = "country.mmdb"
asn = "asn.mmdb"

[forward]
listen = "127.0.0.1:0"
direct_http1 = {direct}

[[reverse]]
name = "tls"
listen = "127.0.0.1:0"
tls = [{{ cert = "certs/reverse.pem", key = "certs/reverse-key.pem" }}]
direct_http1 = {direct}

{routes}
[admin]
listen = "127.0.0.1:{admin}"
{token_file}

[audit]
path = "audit/douane-audit.jsonl"

[upstream]
ca_file = "ca.pem"
system_roots = false
{parent}

[log]
format = "json"
level = "info"

[reload]
poll_interval_ms = 200

[block_page]
link = "https://policy.example/blocked"

{extra}

[resolver]
nameservers = ["{nameserver}"]
timeout = 1000
attempts = 1
ipv6 = false
{resolver_extra}

[resolver.overrides]
{overrides}
"#,
            admin = spec.admin_port,
            direct = spec.engine.direct_http1(),
            resolver_extra = spec.resolver_extra,
            token_file = spec
                .admin_token
                .map(|_| "token_file = \"admin-token\"")
                .unwrap_or_default(),
            extra = spec.extra,
            parent = spec
                .parent_proxy
                .as_ref()
                .map(|p| format!("parent_proxy = \"{p}\""))
                .unwrap_or_default(),
        );
        std::fs::write(self.path("douane.toml"), text).expect("config");
    }

    /// Starts douane on this fixture and waits until it is ready.
    pub async fn start(&self) -> Douane {
        Douane::start(self.dir.path(), None).await
    }

    /// Starts douane with `--workers workers` (without: one per CPU).
    pub async fn start_workers(&self, workers: u16) -> Douane {
        Douane::start(self.dir.path(), Some(workers)).await
    }

    /// Every audit record written so far but the requests' end records, in file order:
    /// one record per recorded request (its gate record), and chain restarts.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        self.audit_lines()
            .into_iter()
            .filter(|r| r["event"] != "end")
            .collect()
    }

    /// The end record of request `id` (`"event":"end"`), waiting up to two seconds for it:
    /// it is written after the response.
    pub async fn audit_end(&self, id: &str) -> Option<serde_json::Value> {
        for _ in 0..100 {
            let found = self
                .audit_lines()
                .into_iter()
                .find(|r| r["event"] == "end" && r["request_id"] == id);
            if found.is_some() {
                return found;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        None
    }

    /// Every line of the audit log so far, in file order.
    pub fn audit_lines(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.path("audit"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        let mut out = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                out.push(serde_json::from_str(line).expect("audit line is JSON"));
            }
        }
        out
    }

    /// `douane audit verify audit/`: its exit status and output.
    pub fn audit_verify(&self) -> (bool, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_douane"))
            .args(["audit", "verify"])
            .arg(self.path("audit"))
            .output()
            .expect("run douane audit verify");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

/// A running douane process.
pub struct Douane {
    child: Child,
    pub forward: SocketAddr,
    pub reverse: SocketAddr,
    pub admin: SocketAddr,
    /// The bearer token the admin listener wants, from the fixture's `admin-token`.
    pub admin_token: Option<String>,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Douane {
    async fn start(dir: &Path, workers: Option<u16>) -> Douane {
        let mut command = Command::new(env!("CARGO_BIN_EXE_douane"));
        match workers {
            Some(n) => command.env("DOUANE_WORKERS", n.to_string()),
            None => command.env_remove("DOUANE_WORKERS"),
        };
        let mut child = command
            .arg("run")
            .arg("--config")
            .arg(dir.join("douane.toml"))
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn douane");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("DOUANE_TEST_LOG").is_some() {
                    eprintln!("douane: {line}");
                }
                sink.lock().expect("logs").push(line);
            }
        });
        let started = Instant::now();
        let (mut forward, mut reverse, mut admin) = (None, None, None);
        while forward.is_none() || reverse.is_none() || admin.is_none() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "douane exited ({status}) before listening:\n{}",
                    logs.lock().expect("logs").join("\n")
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "douane did not listen in time:\n{}",
                logs.lock().expect("logs").join("\n")
            );
            for line in logs.lock().expect("logs").iter() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                let address = v["address"].as_str().and_then(|a| a.parse().ok());
                match v["message"].as_str() {
                    Some("forward proxy listening") => forward = address,
                    Some("reverse proxy listening") => reverse = address,
                    Some("admin listening") => admin = address,
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let douane = Douane {
            child,
            forward: forward.expect("forward"),
            reverse: reverse.expect("reverse"),
            admin: admin.expect("admin"),
            admin_token: std::fs::read_to_string(dir.join("admin-token"))
                .ok()
                .map(|t| t.trim().to_owned()),
            logs,
        };
        while douane.admin_get("/readyz").0 != 200 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "douane not ready:\n{}",
                douane.logs().join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        douane
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("logs").clone()
    }

    /// Log lines (JSON) whose message contains `text`.
    pub fn log_count(&self, text: &str) -> usize {
        self.logs
            .lock()
            .expect("logs")
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }

    /// Waits until a log line contains `text`.
    pub async fn wait_log(&self, text: &str, timeout: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self.log_count(text) > 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Waits until `count` log lines contain `text`.
    pub async fn wait_log_count(&self, text: &str, count: usize, timeout: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self.log_count(text) >= count {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// A GET on the admin listener, with the fixture's token if it has one: status and
    /// body (blocking, short).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        self.admin_get_as(path, self.admin_token.as_deref())
    }

    /// A GET on the admin listener with the given bearer token (or none).
    pub fn admin_get_as(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let Ok(mut s) = TcpStream::connect_timeout(&self.admin, Duration::from_secs(2)) else {
            return (0, String::new());
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let authorization = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let _ = write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: admin\r\n{authorization}Connection: close\r\n\r\n"
        );
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    pub fn signal(&self, signal: &str) {
        let status = Command::new("/bin/kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for Douane {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("/bin/kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(3) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The names the tests use, by the static overrides of the resolver: `mixed.test` has its
/// US address first, `refused.test` an FR address where nothing listens (127.0.0.5) first.
pub fn standard_overrides() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("fr.test", vec!["127.0.0.2"]),
        ("us.test", vec!["127.0.0.3"]),
        ("cn.test", vec!["127.0.0.4"]),
        ("mixed.test", vec!["127.0.0.3", "127.0.0.2"]),
        ("refused.test", vec!["127.0.0.5", "127.0.0.2"]),
        ("down.test", vec!["127.0.0.5"]),
        ("nocert.test", vec!["127.0.0.2"]),
    ]
}

/// A port that was free a moment ago (for the rare config value that must be known before
/// douane starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
