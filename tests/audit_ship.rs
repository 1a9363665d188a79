//! Shipping to a real syslog collector: Debian's `rsyslogd` with `imtcp` over GnuTLS
//! (RFC 5425), started by the test on loopback with a certificate of the test CA, receives
//! every record exactly once across a collector restart and a douane restart. Skipped (with
//! a message) when rsyslogd or its GnuTLS driver is not installed (`.ci/run` installs them).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::client;
use common::proxy::{free_port, Douane, Engine, Fixture};
use common::upstream;

fn rsyslog_available() -> bool {
    Path::new("/usr/sbin/rsyslogd").exists()
        && Path::new("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so").exists()
}

struct Rsyslog {
    child: Child,
}

impl Rsyslog {
    fn start(dir: &Path, port: u16) -> Rsyslog {
        let conf = dir.join("rsyslog.conf");
        let work = dir.join("work");
        std::fs::create_dir_all(&work).expect("work dir");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{work}"
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="{dir}/ca.pem"
  DefaultNetstreamDriverCertFile="{dir}/collector.pem"
  DefaultNetstreamDriverKeyFile="{dir}/collector-key.pem")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="raw" type="string" string="%msg%\n")
action(type="omfile" file="{dir}/received.log" template="raw")
"#,
                work = work.display(),
                dir = dir.display(),
            ),
        )
        .expect("conf");
        let child = Command::new("/usr/sbin/rsyslogd")
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslog.pid"))
            .spawn()
            .expect("start rsyslogd");
        // Wait for the listener.
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "rsyslogd did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Rsyslog { child }
    }

    fn stop(mut self) {
        let _ = Command::new("/bin/kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `seq` of every record the collector wrote, in arrival order.
fn received(dir: &Path) -> Vec<u64> {
    let text = std::fs::read_to_string(dir.join("received.log")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l.trim()).expect("a JSON record");
            v["seq"].as_u64().expect("seq")
        })
        .collect()
}

async fn wait_received(dir: &Path, n: usize) -> Vec<u64> {
    let started = Instant::now();
    loop {
        let got = received(dir);
        if got.len() >= n {
            // Anything more would be a duplicate: give it a moment to show.
            tokio::time::sleep(Duration::from_millis(300)).await;
            return received(dir);
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{} of {n} records received: {got:?}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `n` blocked requests: `2 n` records (each request's gate and end records).
async fn blocks(d: &Douane, port: u16, n: usize) {
    for i in 0..n {
        let url = format!("http://us.test:{port}/r{i}?q={i}");
        let reply = client::forward(d.forward, "GET", &url, &[]).await;
        assert_eq!(reply.status, 451, "{}", reply.text());
    }
}

fn metric(d: &Douane, name: &str) -> Option<f64> {
    let (_, text) = d.admin_get("/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_reaches_rsyslog_exactly_once_across_restarts() {
    if !rsyslog_available() {
        // On CI a missing collector is a failed install, not a pass.
        assert!(
            !common::tools::in_ci(),
            "CI is set and rsyslogd with GnuTLS is not installed: the shipping test cannot run"
        );
        eprintln!("skipped: rsyslogd with GnuTLS is not installed (apt-get install rsyslog rsyslog-gnutls)");
        return;
    }
    let collector_dir = tempfile::tempdir().expect("tempdir");
    let cdir: PathBuf = collector_dir.path().to_path_buf();
    let fx = Fixture::new();
    std::fs::copy(fx.path("ca.pem"), cdir.join("ca.pem")).expect("ca");
    fx.ca
        .leaf(&["localhost"])
        .write(&cdir.join("collector.pem"), &cdir.join("collector-key.pem"));
    let syslog_port = free_port();

    let port = upstream::start(&["127.0.0.2", "127.0.0.3"], None).await;
    fx.write_enforcing(Engine::Direct, port, Vec::new());
    let mut config = std::fs::read_to_string(fx.path("douane.toml")).expect("config");
    config.push_str(&format!(
        "\n[audit.ship]\naddress = \"127.0.0.1:{syslog_port}\"\nserver_name = \"localhost\"\nca_file = \"ca.pem\"\nhostname = \"mairie-test\"\npoll_ms = 50\n"
    ));
    std::fs::write(fx.path("douane.toml"), config).expect("config");

    let rsyslog = Rsyslog::start(&cdir, syslog_port);
    let mut douane = fx.start().await;
    blocks(&douane, port, 5).await;
    assert_eq!(wait_received(&cdir, 10).await, (0..10).collect::<Vec<_>>());

    // The collector goes away: records wait in the log, the backlog and failures show.
    rsyslog.stop();
    blocks(&douane, port, 5).await;
    let started = Instant::now();
    while metric(&douane, "douane_audit_ship_failures_total").unwrap_or(0.0) < 1.0
        || metric(&douane, "douane_audit_ship_backlog_records") != Some(10.0)
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no failure counted, or not a backlog of 10"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // It comes back: the backlog goes, once.
    let rsyslog = Rsyslog::start(&cdir, syslog_port);
    assert_eq!(wait_received(&cdir, 20).await, (0..20).collect::<Vec<_>>());

    // douane restarts: it resumes at its cursor.
    douane.signal("TERM");
    assert!(douane.wait_exit(Duration::from_secs(10)).await.is_some());
    let douane = fx.start().await;
    blocks(&douane, port, 3).await;
    let got = wait_received(&cdir, 26).await;
    assert_eq!(
        got,
        (0..26).collect::<Vec<_>>(),
        "every record exactly once"
    );
    let text = std::fs::read_to_string(cdir.join("received.log")).expect("received");
    assert!(text.contains("\"path\":\"/r2"), "{text}");
    // The gauge is set once a batch is sent: the collector may have written it just before.
    let started = Instant::now();
    while metric(&douane, "douane_audit_ship_backlog_records") != Some(0.0) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the backlog does not go back to 0"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rsyslog.stop();
}
