//! systemd readiness as `Type=notify` sees it: the test binds the `$NOTIFY_SOCKET` datagram
//! socket itself, starts the real `douane run` on it, and checks that `READY=1` comes only
//! once every listener accepts, and `STOPPING=1` on SIGTERM before a clean exit — also for a
//! SIGTERM sent the moment `READY=1` arrives (the signal handlers are in place by then).

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::proxy::{policy, ConfigSpec, Fixture};

/// The next datagram, or what the socket said instead.
fn receive(socket: &UnixDatagram) -> Result<String, String> {
    let mut buf = [0u8; 512];
    let n = socket
        .recv(&mut buf)
        .map_err(|e| format!("no notification within the timeout ({e})"))?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// The address of the first JSON log line whose message is `message`.
fn logged_address(logs: &[String], message: &str) -> Option<SocketAddr> {
    logs.iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == message)
        .and_then(|v| v["address"].as_str()?.parse().ok())
}

#[test]
fn ready_after_the_listeners_accept_and_stopping_on_sigterm() {
    let fx = Fixture::new();
    fx.write_policy(&policy("all", "enforce", &[80, 443], ""));
    fx.write_config(&ConfigSpec::default());
    let socket_path = fx.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_douane"))
        .arg("run")
        .arg("--config")
        .arg(fx.path("douane.toml"))
        .current_dir(fx.dir.path())
        .env_remove("RUST_LOG")
        .env("NOTIFY_SOCKET", &socket_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn douane");
    let logs = Arc::new(Mutex::new(Vec::<String>::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = logs.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let pid = child.id().to_string();
    let kill = |signal: &str| {
        let _ = Command::new("/bin/kill").args([signal, &pid]).status();
    };

    let ready = receive(&socket);
    let outcome = (|| -> Result<(), String> {
        let ready = ready?;
        if !ready.lines().any(|l| l == "READY=1") {
            return Err(format!("first notification is not READY=1: {ready:?}"));
        }
        // The listening lines are written before READY=1; give the pipe reader a moment.
        let started = Instant::now();
        let addresses = loop {
            let logs = logs.lock().unwrap().clone();
            let found: Vec<_> = [
                "forward proxy listening",
                "reverse proxy listening",
                "admin listening",
            ]
            .iter()
            .map(|m| logged_address(&logs, m))
            .collect();
            if found.iter().all(Option::is_some) {
                break found.into_iter().flatten().collect::<Vec<_>>();
            }
            if started.elapsed() > Duration::from_secs(5) {
                return Err(format!("listening lines missing:\n{}", logs.join("\n")));
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // Once, no retry: READY=1 promised that every port accepts now.
        for address in &addresses {
            TcpStream::connect_timeout(address, Duration::from_secs(2))
                .map_err(|e| format!("{address} refused after READY=1: {e}"))?;
        }
        kill("-TERM");
        let stopping = receive(&socket)?;
        if !stopping.lines().any(|l| l == "STOPPING=1") {
            return Err(format!("after SIGTERM: {stopping:?}, not STOPPING=1"));
        }
        Ok(())
    })();
    if outcome.is_err() {
        kill("-KILL");
    }
    let status = child.wait().expect("wait for douane");
    let _ = reader.join();
    if let Err(e) = outcome {
        panic!(
            "{e}\n--- douane log ---\n{}",
            logs.lock().unwrap().join("\n")
        );
    }
    assert!(status.success(), "douane exited {status} after SIGTERM");
}

#[test]
fn an_unreachable_notify_socket_is_logged_not_fatal() {
    // A NOTIFY_SOCKET naming nothing must not stop douane from serving: the failure is
    // logged, and SIGTERM still ends it cleanly.
    let fx = Fixture::new();
    fx.write_policy(&policy("all", "enforce", &[80, 443], ""));
    fx.write_config(&ConfigSpec::default());
    let mut child = Command::new(env!("CARGO_BIN_EXE_douane"))
        .arg("run")
        .arg("--config")
        .arg(fx.path("douane.toml"))
        .current_dir(fx.dir.path())
        .env_remove("RUST_LOG")
        .env("NOTIFY_SOCKET", fx.path("nobody-listens.sock"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn douane");
    let logs = Arc::new(Mutex::new(Vec::<String>::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = logs.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    let warned = |logs: &Mutex<Vec<String>>| {
        logs.lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("could not notify the service manager"))
    };
    let started = Instant::now();
    while !warned(&logs) && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let alive = matches!(child.try_wait(), Ok(None));
    let _ = Command::new("/bin/kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let _ = reader.join();
    let logs_text = logs.lock().unwrap().join("\n");
    assert!(
        warned(&logs),
        "no warning about the unreachable notify socket:\n{logs_text}"
    );
    assert!(alive, "douane stopped: {logs_text}");
    assert!(status.success(), "douane exited {status}:\n{logs_text}");
}

/// Now on `CLOCK_MONOTONIC`, in microseconds: the clock `MONOTONIC_USEC` is on.
fn monotonic_usec() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000
}

#[test]
fn a_reload_is_bracketed_by_reloading_and_ready() {
    // `Type=notify-reload` waits for RELOADING=1 (with the time it started) then READY=1,
    // for a reload that applies and for one that is refused (the old state serves).
    let fx = Fixture::new();
    fx.write_policy(&policy("all", "enforce", &[80, 443], ""));
    fx.write_config(&ConfigSpec::default());
    // Only SIGHUP reloads: the file watch would add reloads of its own.
    let config = std::fs::read_to_string(fx.path("douane.toml")).unwrap();
    let config = config.replacen("[reload]\n", "[reload]\nwatch = false\n", 1);
    std::fs::write(fx.path("douane.toml"), config).unwrap();
    let socket_path = fx.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_douane"))
        .arg("run")
        .arg("--config")
        .arg(fx.path("douane.toml"))
        .current_dir(fx.dir.path())
        .env_remove("RUST_LOG")
        .env("NOTIFY_SOCKET", &socket_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn douane");
    let pid = child.id().to_string();
    let kill = |signal: &str| {
        let _ = Command::new("/bin/kill").args([signal, &pid]).status();
    };
    let reload_once = || -> Result<(), String> {
        let before = monotonic_usec();
        kill("-HUP");
        let reloading = receive(&socket)?;
        let after = monotonic_usec();
        if !reloading.lines().any(|l| l == "RELOADING=1") {
            return Err(format!("after SIGHUP: {reloading:?}, not RELOADING=1"));
        }
        let usec: u64 = reloading
            .lines()
            .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no MONOTONIC_USEC in {reloading:?}"))?;
        if !(before..=after).contains(&usec) {
            return Err(format!("MONOTONIC_USEC={usec} not in {before}..={after}"));
        }
        let ready = receive(&socket)?;
        if !ready.lines().any(|l| l == "READY=1") {
            return Err(format!("after RELOADING=1: {ready:?}, not READY=1"));
        }
        Ok(())
    };
    let outcome = (|| -> Result<(), String> {
        let ready = receive(&socket)?;
        if !ready.lines().any(|l| l == "READY=1") {
            return Err(format!("first notification is not READY=1: {ready:?}"));
        }
        reload_once()?;
        // A refused reload is over too: READY=1, the previous state serving.
        std::fs::write(fx.path("policies/00-test.toml"), "[policy\n").unwrap();
        reload_once()?;
        kill("-TERM");
        let stopping = receive(&socket)?;
        if !stopping.lines().any(|l| l == "STOPPING=1") {
            return Err(format!("after SIGTERM: {stopping:?}, not STOPPING=1"));
        }
        Ok(())
    })();
    if outcome.is_err() {
        kill("-KILL");
    }
    let status = child.wait().expect("wait for douane");
    if let Err(e) = outcome {
        panic!("{e}");
    }
    assert!(status.success(), "douane exited {status} after SIGTERM");
}
