//! What stops `douane run` before it serves, said so an operator can fix it: the
//! `douane.toml` line at fault, what is wrong in words (not the OS error twice), and the fix.
//! Every such error is an invalid setup: `run` exits 3.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::commands::InvalidSetup;
use crate::config::{CertificatePaths, Config, Place, ReverseListener};
use crate::diag::{Errors, Located};
pub use crate::tls::io_reason;
use crate::tls::TlsError;

fn invalid_at(error: Located) -> InvalidSetup {
    InvalidSetup(Errors(vec![error]))
}

/// An invalid setup found while starting, in `section` of the config file.
pub fn invalid(config: &Config, section: &str, e: impl std::fmt::Display) -> InvalidSetup {
    invalid_at(Located {
        path: config.path.clone(),
        line: 0,
        column: 0,
        message: format!("{section}: {e}"),
    })
}

/// A config that serves no traffic is a mistake, not a quiet success.
pub fn require_a_listener(config: &Config) -> Result<(), InvalidSetup> {
    if config.forward.is_some() || !config.reverse.is_empty() {
        return Ok(());
    }
    let place = Place {
        path: config.path.clone(),
        ..Place::default()
    };
    Err(invalid_at(place.error(
        "no listener: `douane run` would serve nothing; add a [forward] table \
         (listen = \"127.0.0.1:3128\") or a [[reverse]] listener ([admin] alone serves no traffic)",
    )))
}

/// Binds a listener; the error names the `listen` line and says what to do.
pub async fn bind(
    address: SocketAddr,
    name: &str,
    at: &Place,
) -> Result<TcpListener, InvalidSetup> {
    TcpListener::bind(address)
        .await
        .map_err(|e| invalid_at(at.error(bind_message(address, name, &e))))
}

/// Binds one listening socket per worker on `address` (`SO_REUSEPORT`: the kernel spreads
/// new connections over them), or a single plain one for one worker. The address is first
/// bound alone, without `SO_REUSEPORT`: a port that another program holds, another douane
/// included, fails the start as it does with one worker, instead of douane quietly sharing
/// it; and port 0 becomes one real port for every worker.
pub fn bind_for_workers(
    address: SocketAddr,
    workers: usize,
    name: &str,
    at: &Place,
) -> Result<Vec<std::net::TcpListener>, InvalidSetup> {
    let failed = |e: io::Error| invalid_at(at.error(bind_message(address, name, &e)));
    let alone = bind_one(address, false).map_err(failed)?;
    if workers <= 1 {
        return Ok(vec![alone]);
    }
    let address = alone.local_addr().map_err(failed)?;
    drop(alone);
    (0..workers)
        .map(|_| bind_one(address, true).map_err(failed))
        .collect()
}

/// A non-blocking listening socket on `address` (`SO_REUSEADDR`, a backlog of 1024, as
/// tokio's own `bind`), with `TCP_NODELAY`: Linux hands it to every accepted socket, one
/// `setsockopt` fewer per connection.
fn bind_one(address: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&address.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

fn bind_message(address: SocketAddr, name: &str, e: &io::Error) -> String {
    let what = format!("listener `{name}` cannot listen on {address}");
    match e.kind() {
        io::ErrorKind::AddrInUse => format!(
            "{what}: the port is already in use (another douane, or another program); stop it or change `listen`"
        ),
        io::ErrorKind::PermissionDenied => format!(
            "{what}: ports below 1024 need the CAP_NET_BIND_SERVICE capability (systemd: \
             AmbientCapabilities=CAP_NET_BIND_SERVICE); or listen on a port above 1023"
        ),
        io::ErrorKind::AddrNotAvailable => format!(
            "{what}: no interface of this machine has the address {}; use one of its addresses, \
             127.0.0.1 or 0.0.0.0",
            address.ip()
        ),
        _ => format!("{what}: {e}"),
    }
}

/// A certificate or key that does not load, located at its `cert = …` and with the fix.
pub fn certificate_error(listener: &str, cert: &CertificatePaths, e: &TlsError) -> Located {
    let fix = match e {
        TlsError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound => format!(
            "; create one with `douane certs dev --cert {} --key {} --name HOST`, or set \
             `generate_if_missing = true` for a development certificate",
            cert.cert.display(),
            cert.key.display()
        ),
        TlsError::Read { source, .. } if source.kind() == io::ErrorKind::PermissionDenied => {
            "; give the user douane runs as read access to it".into()
        }
        TlsError::NoCertificate { .. } => {
            "; the file must hold the PEM certificate chain (-----BEGIN CERTIFICATE-----)".into()
        }
        TlsError::NoKey { .. } => {
            "; the key file must hold a PEM private key (PKCS#8, PKCS#1 or SEC1)".into()
        }
        _ => String::new(),
    };
    cert.at.error(format!("listener `{listener}`: {e}{fix}"))
}

/// The error of a listener whose certificates do not load: the first certificate that
/// fails, located, or the listener-wide error.
pub fn listener_tls_error(listener: &ReverseListener, e: &TlsError) -> Located {
    listener
        .certificates
        .iter()
        .find_map(|c| {
            crate::tls::load_certified_key(c)
                .err()
                .map(|e| certificate_error(&listener.name, c, &e))
        })
        .unwrap_or_else(|| Located::message(format!("TLS of listener `{}`: {e}", listener.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_messages_say_what_to_do() {
        let a: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let m = bind_message(a, "forward", &io::Error::from(io::ErrorKind::AddrInUse));
        assert!(
            m.contains("already in use") && m.contains("change `listen`"),
            "{m}"
        );
        assert!(!m.contains("os error"), "{m}");
        let m = bind_message(
            a,
            "forward",
            &io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert!(m.contains("CAP_NET_BIND_SERVICE"), "{m}");
    }

    /// The accept loop sets no `TCP_NODELAY` on Linux: the accepted socket must have it
    /// from the listener, with one worker and with several.
    #[cfg(target_os = "linux")]
    #[test]
    fn accepted_sockets_inherit_tcp_nodelay() {
        let at = Place::default();
        for workers in [1, 2] {
            let sockets = bind_for_workers("127.0.0.1:0".parse().unwrap(), workers, "f", &at)
                .unwrap_or_else(|e| panic!("{e}"));
            let address = sockets[0].local_addr().unwrap();
            let client = std::net::TcpStream::connect(address).unwrap();
            // The handshake is done when `connect` returns; SO_REUSEPORT put the
            // connection in one of the (non-blocking) listeners' queues.
            let accepted = sockets.iter().find_map(|socket| socket.accept().ok());
            let (accepted, _) = accepted.expect("a listener holds the connection");
            assert!(accepted.nodelay().unwrap(), "{workers} worker(s)");
            assert!(
                !client.nodelay().unwrap(),
                "the client's own default is off"
            );
        }
    }
}
