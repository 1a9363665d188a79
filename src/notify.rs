//! systemd readiness (`Type=notify`, `Type=notify-reload`): `READY=1` once every listener
//! is bound, `RELOADING=1` with `MONOTONIC_USEC` when a reload starts and `READY=1` again
//! when it is over (applied or refused), `STOPPING=1` when the drain starts, sent as one
//! datagram to `$NOTIFY_SOCKET` (a path, or `@name` for
//! the abstract namespace). Without `$NOTIFY_SOCKET` (not started by systemd) nothing is sent.
//! A failed send is logged, never fatal: the proxy serves either way.

use std::os::unix::net::UnixDatagram;

/// Tells the service manager that douane serves (all listeners bound and accepting).
pub fn ready() {
    send("READY=1\nSTATUS=serving");
}

/// Tells the service manager that a reload starts; [`reloaded`] says it is over. systemd
/// wants the start time on `CLOCK_MONOTONIC` to tell this reload from an older one.
pub fn reloading() {
    send(&reloading_message(monotonic_usec()));
}

/// Tells the service manager that the reload is over: douane serves (the new state, or the
/// old one when the new one was refused).
pub fn reloaded() {
    send("READY=1\nSTATUS=serving");
}

fn reloading_message(monotonic_usec: Option<u64>) -> String {
    match monotonic_usec {
        Some(usec) => format!("RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=reloading"),
        None => "RELOADING=1\nSTATUS=reloading".to_owned(),
    }
}

/// Now on `CLOCK_MONOTONIC`, in microseconds (the clock systemd compares with).
#[cfg(target_os = "linux")]
fn monotonic_usec() -> Option<u64> {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(now.tv_sec).ok()?;
    let nanos = u64::try_from(now.tv_nsec).ok()?;
    Some(secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000))
}

#[cfg(not(target_os = "linux"))]
fn monotonic_usec() -> Option<u64> {
    None
}

/// Tells the service manager that douane stops: no new connections, draining.
pub fn stopping() {
    send("STOPPING=1\nSTATUS=draining");
}

fn send(message: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(e) = send_to(&target, message) {
        tracing::warn!(socket = ?target, error = %e, "could not notify the service manager");
    }
}

fn send_to(target: &std::ffi::OsStr, message: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let socket = UnixDatagram::unbound()?;
    let bytes = target.as_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        return send_abstract(&socket, name, message);
    }
    socket.send_to(message.as_bytes(), target)?;
    Ok(())
}

#[cfg(target_os = "linux")]
fn send_abstract(socket: &UnixDatagram, name: &[u8], message: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(message.as_bytes(), &address)?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, _: &[u8], _: &str) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "abstract socket names exist on Linux only",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_one_datagram_to_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        send_to(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn sends_to_an_abstract_name() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("douane-notify-test-{}", std::process::id());
        let address = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        let receiver = UnixDatagram::bind_addr(&address).unwrap();
        send_to(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn reloading_carries_the_monotonic_time() {
        assert_eq!(
            reloading_message(Some(42)),
            "RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=reloading"
        );
        #[cfg(target_os = "linux")]
        {
            let a = monotonic_usec().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
            let b = monotonic_usec().unwrap();
            assert!(b >= a + 1_000, "{a} then {b}");
        }
    }

    #[test]
    fn a_missing_socket_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        assert!(send_to(dir.path().join("absent").as_os_str(), "READY=1").is_err());
    }
}
