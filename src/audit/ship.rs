//! Shipping records to a syslog collector: RFC 5424 messages over TLS with RFC 5425 octet
//! counting, read from the files on disk behind a persisted cursor (`<stem>.tlog/ship-cursor`:
//! the `seq` of the next record to send). A collector outage or a douane restart resumes at
//! the cursor: nothing is lost, nothing sent twice, as long as the collector closes the
//! connection between batches (a syslog-over-TLS sender gets no acknowledgement: a collector
//! that dies in the middle of a batch may lose what was in flight — RELP would be needed).
//!
//! ```text
//! <109>1 <record ts> <host> douane - audit [douane@32473 seq="N"] <the JSON line>
//! ```

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::files::{self, Target};
use super::tlog::write_atomic;

/// `[audit.ship]`: where records go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipConfig {
    /// The collector, `host:port` (RFC 5425's port is 6514).
    pub address: String,
    /// The name its certificate must carry; default the host of `address`.
    #[serde(default)]
    pub server_name: Option<String>,
    /// The CA that signed the collector's certificate (PEM).
    pub ca_file: PathBuf,
    /// HOSTNAME of the messages; default the machine's host name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// Where the cursor is kept; default `<stem>.tlog/ship-cursor` beside the log.
    #[serde(default)]
    pub cursor_file: Option<PathBuf>,
    /// How often the log is read for new records, and the wait before a reconnection.
    #[serde(default = "default_poll_ms")]
    pub poll_ms: u64,
}

fn default_poll_ms() -> u64 {
    200
}

/// What the metrics show of the shipper.
#[derive(Debug, Default)]
pub struct ShipStats {
    pub sent: AtomicU64,
    pub failures: AtomicU64,
    /// The `seq` of the next record to send.
    pub cursor: AtomicU64,
    /// Records written to the log and not yet sent (at the last read).
    pub backlog: AtomicU64,
}

/// Records taken in one write.
const BATCH: usize = 256;

#[derive(Deserialize)]
struct Head {
    ts: String,
    seq: u64,
}

/// Frames one record: `MSG-LEN SP <PRI>1 TS HOST APP - MSGID SD MSG`.
pub fn frame(out: &mut Vec<u8>, hostname: &str, line: &[u8]) -> Option<u64> {
    let head: Head = serde_json::from_slice(line).ok()?;
    let msg = format!(
        "<109>1 {} {hostname} douane - audit [douane@32473 seq=\"{}\"] ",
        head.ts, head.seq
    );
    let len = msg.len() + line.len();
    out.extend_from_slice(format!("{len} ").as_bytes());
    out.extend_from_slice(msg.as_bytes());
    out.extend_from_slice(line);
    Some(head.seq)
}

fn hostname(config: &ShipConfig) -> String {
    config.hostname.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty() && h.is_ascii() && !h.contains(' '))
            .unwrap_or_else(|| "-".into())
    })
}

/// The cursor file for the log at `target`.
pub fn cursor_path(config: &ShipConfig, dir: &Path, stem: &str) -> PathBuf {
    config
        .cursor_file
        .clone()
        .unwrap_or_else(|| dir.join(format!("{stem}.tlog")).join("ship-cursor"))
}

fn read_cursor(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Records from `cursor` on, at most `max`, read from the files (complete lines only).
fn read_from(files: &[PathBuf], cursor: u64, max: usize) -> (Vec<(u64, Vec<u8>)>, u64) {
    let mut out = Vec::new();
    let mut last_seq = None;
    for (i, f) in files.iter().enumerate() {
        // Skip a file whose successor starts at or before the cursor.
        if let Some(next) = files.get(i + 1) {
            if first_seq(next).is_some_and(|s| s <= cursor) {
                continue;
            }
        }
        let Ok(file) = std::fs::File::open(f) else {
            continue;
        };
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if buf.last() != Some(&b'\n') {
                break; // a line being written
            }
            buf.pop();
            let Ok(head) = serde_json::from_slice::<Head>(&buf) else {
                continue;
            };
            last_seq = Some(head.seq);
            if head.seq >= cursor && out.len() < max {
                out.push((head.seq, buf.clone()));
            }
        }
    }
    let backlog = last_seq.map_or(0, |l| (l + 1).saturating_sub(cursor));
    (out, backlog)
}

fn first_seq(path: &Path) -> Option<u64> {
    let f = std::fs::File::open(path).ok()?;
    let mut line = Vec::new();
    BufReader::new(f).read_until(b'\n', &mut line).ok()?;
    serde_json::from_slice::<Head>(line.trim_ascii_end())
        .ok()
        .map(|h| h.seq)
}

fn connector(config: &ShipConfig) -> Result<TlsConnector, String> {
    let pem =
        std::fs::read(&config.ca_file).map_err(|e| format!("{}: {e}", config.ca_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("{}: {e}", config.ca_file.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", config.ca_file.display()))?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(tls)))
}

async fn connect(config: &ShipConfig, tls: &TlsConnector) -> Result<TlsStream<TcpStream>, String> {
    let host = config
        .server_name
        .clone()
        .or_else(|| {
            config
                .address
                .rsplit_once(':')
                .map(|(h, _)| h.trim_matches(['[', ']']).to_owned())
        })
        .unwrap_or_default();
    let name = ServerName::try_from(host).map_err(|e| e.to_string())?;
    let tcp = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&config.address))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(5), tls.connect(name, tcp))
        .await
        .map_err(|_| "TLS handshake timed out".to_owned())?
        .map_err(|e| e.to_string())
}

/// Whether the collector closed the connection (checked before each batch).
async fn closed(stream: &mut TlsStream<TcpStream>) -> bool {
    let mut b = [0u8; 64];
    match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut b)).await {
        Err(_) => false,
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
    }
}

/// Runs the shipper until the process ends.
pub async fn run(config: ShipConfig, target: Target, stats: Arc<ShipStats>) {
    let Target::Rotating { dir, stem } = &target else {
        tracing::warn!(
            "audit.ship needs a rotating log (a file base or a directory): not shipping"
        );
        return;
    };
    let cursor_file = cursor_path(&config, dir, stem);
    let mut cursor = read_cursor(&cursor_file);
    stats.cursor.store(cursor, Ordering::Relaxed);
    let host = hostname(&config);
    let poll = Duration::from_millis(config.poll_ms.max(10));
    let tls = match connector(&config) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "audit shipping: bad TLS configuration: not shipping");
            return;
        }
    };
    let mut conn: Option<TlsStream<TcpStream>> = None;
    let mut framed = Vec::with_capacity(64 * 1024);
    loop {
        let listed = files::list(dir, Some(stem)).unwrap_or_default();
        let paths: Vec<PathBuf> = listed.into_iter().map(|f| f.path).collect();
        let read = tokio::task::spawn_blocking(move || read_from(&paths, cursor, BATCH));
        let (batch, backlog) = read.await.unwrap_or_default();
        stats.backlog.store(backlog, Ordering::Relaxed);
        if batch.is_empty() {
            tokio::time::sleep(poll).await;
            continue;
        }
        if let Some(c) = conn.as_mut() {
            if closed(c).await {
                conn = None;
            }
        }
        if conn.is_none() {
            match connect(&config, &tls).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, collector = %config.address, backlog, "audit shipping: collector unreachable");
                    tokio::time::sleep(poll).await;
                    continue;
                }
            }
        }
        framed.clear();
        let mut next = cursor;
        for (seq, line) in &batch {
            if frame(&mut framed, &host, line).is_some() {
                next = seq + 1;
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let sent = async {
            c.write_all(&framed).await?;
            c.flush().await
        };
        match tokio::time::timeout(Duration::from_secs(10), sent).await {
            Ok(Ok(())) => {
                let n = next - cursor;
                cursor = next;
                if let Err(e) = write_atomic(&cursor_file, format!("{cursor}\n").as_bytes()) {
                    tracing::warn!(error = %e, "audit shipping: cursor not saved");
                }
                stats.sent.fetch_add(n, Ordering::Relaxed);
                stats.cursor.store(cursor, Ordering::Relaxed);
                stats
                    .backlog
                    .store(backlog.saturating_sub(n), Ordering::Relaxed);
            }
            Ok(Err(e)) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, collector = %config.address, "audit shipping: write failed; resending from the cursor");
                conn = None;
                tokio::time::sleep(poll).await;
            }
            Err(_) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(collector = %config.address, "audit shipping: write timed out; resending from the cursor");
                conn = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_octet_counted_rfc5424() {
        let mut out = Vec::new();
        let line = br#"{"ts":"2026-03-01T10:00:00Z","seq":7,"host":"a"}"#;
        assert_eq!(frame(&mut out, "mairie", line), Some(7));
        let text = String::from_utf8(out).expect("utf8");
        let (len, msg) = text.split_once(' ').expect("length");
        assert_eq!(len.parse::<usize>().expect("n"), msg.len());
        assert!(
            msg.starts_with(
                "<109>1 2026-03-01T10:00:00Z mairie douane - audit [douane@32473 seq=\"7\"] {"
            ),
            "{msg}"
        );
        assert!(frame(&mut Vec::new(), "h", b"not json").is_none());
    }
}
