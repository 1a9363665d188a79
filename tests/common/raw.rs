//! Raw HTTP/1.1 on both sides, for hostile input: an upstream that records every request it
//! parses — as a lenient origin would parse it, so a request douane lets through unframed
//! shows up as two — and a client that sends exact bytes and reads every response back.
//!
//! The upstream answers each request with `200`, `x-path: <target>` and the target as the
//! body; `/big` a 48 MiB body; `/slow…` after 600 ms; a request with `Upgrade: h2c` gets `101` (an h2c-capable
//! origin) and whatever follows is recorded as one more "request".
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The body length of `/big`: more than any socket buffers hold.
pub const BIG: usize = 48 * 1024 * 1024;

/// One request as the upstream parsed it.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The request line.
    pub line: String,
    /// The header lines, as received.
    pub headers: Vec<String>,
    pub body: Vec<u8>,
}

impl Parsed {
    pub fn target(&self) -> &str {
        self.line.split_whitespace().nth(1).unwrap_or("")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The head as a sorted set of lines, for comparisons across engines.
    pub fn head_set(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .headers
            .iter()
            .map(|l| l.to_ascii_lowercase())
            .collect();
        lines.sort();
        lines.insert(0, self.line.clone());
        lines
    }
}

/// The recording upstream, on `127.0.0.2`.
pub struct RawUpstream {
    pub port: u16,
    pub connections: Arc<AtomicUsize>,
    /// Connections open now.
    pub open: Arc<AtomicUsize>,
    pub parsed: Arc<Mutex<Vec<Parsed>>>,
}

/// Listens on 127.0.0.2 (`fr.test` in the fixtures) and serves each connection with
/// `serve`, on a task of its own; returns the port and the count of connections accepted.
pub async fn serve_counted<F, Fut>(serve: F) -> (u16, Arc<AtomicUsize>)
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.2:0")
        .await
        .expect("bind upstream");
    let port = listener.local_addr().expect("addr").port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(stream));
        }
    });
    (port, accepted)
}

impl RawUpstream {
    pub async fn start() -> RawUpstream {
        let open = Arc::new(AtomicUsize::new(0));
        let parsed = Arc::new(Mutex::new(Vec::new()));
        let (now, seen) = (open.clone(), parsed.clone());
        let (port, connections) = serve_counted(move |stream| {
            now.fetch_add(1, Ordering::SeqCst);
            let (now, seen) = (now.clone(), seen.clone());
            async move {
                serve(stream, seen).await;
                now.fetch_sub(1, Ordering::SeqCst);
            }
        })
        .await;
        RawUpstream {
            port,
            connections,
            open,
            parsed,
        }
    }

    pub fn parsed(&self) -> Vec<Parsed> {
        self.parsed.lock().expect("parsed").clone()
    }

    /// Every target the upstream parsed.
    pub fn targets(&self) -> Vec<String> {
        self.parsed()
            .iter()
            .map(|p| p.target().to_owned())
            .collect()
    }

    pub fn open_now(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    pub fn clear(&self) {
        self.parsed.lock().expect("parsed").clear();
    }
}

async fn serve(mut stream: TcpStream, seen: Arc<Mutex<Vec<Parsed>>>) {
    let mut buf = Vec::new();
    loop {
        let Some(req) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        seen.lock().expect("parsed").push(req.clone());
        let upgrade = req
            .header("upgrade")
            .is_some_and(|u| u.to_ascii_lowercase().contains("h2c"));
        if upgrade {
            let _ = stream
                .write_all(b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n")
                .await;
            // Whatever comes now would be HTTP/2 frames that no one decided.
            let mut rest = buf.clone();
            let mut chunk = [0u8; 4096];
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(500), stream.read(&mut chunk)).await
            {
                if n == 0 {
                    break;
                }
                rest.extend_from_slice(&chunk[..n]);
            }
            if !rest.is_empty() {
                seen.lock().expect("parsed").push(Parsed {
                    line: "<h2c tunnel>".into(),
                    headers: Vec::new(),
                    body: rest,
                });
            }
            return;
        }
        let target = req.target().to_owned();
        if target == "/big" {
            let mut reply =
                format!("HTTP/1.1 200 OK\r\ncontent-length: {BIG}\r\n\r\n").into_bytes();
            reply.resize(reply.len() + BIG, b'x');
            if stream.write_all(&reply).await.is_err() {
                return;
            }
            continue;
        }
        if target.starts_with("/slow") {
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        let reply = format!(
            "HTTP/1.1 200 OK\r\nx-path: {target}\r\ncontent-length: {}\r\n\r\n{target}",
            target.len()
        );
        if stream.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads one request the lenient way: head to the empty line, body by `Content-Length`
/// (the last one) or chunked.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Parsed> {
    let end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if !fill(stream, buf).await {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end - 4]).into_owned();
    let mut lines = head.split("\r\n");
    let line = lines.next().unwrap_or("").to_owned();
    let headers: Vec<String> = lines.map(str::to_owned).collect();
    let mut parsed = Parsed {
        line,
        headers,
        body: Vec::new(),
    };
    let chunked = parsed
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body_len = if chunked {
        loop {
            if let Some(i) = find(&buf[end..], b"0\r\n\r\n") {
                break i + 5;
            }
            if !fill(stream, buf).await {
                return None;
            }
        }
    } else {
        parsed
            .headers
            .iter()
            .rev()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0)
    };
    while buf.len() < end + body_len {
        if !fill(stream, buf).await {
            return None;
        }
    }
    parsed.body = buf[end..end + body_len].to_vec();
    buf.drain(..end + body_len);
    Some(parsed)
}

/// The next request head on `stream` (through its empty line), taken from the front of
/// `buf`, which keeps what was read beyond it; `None` once the stream ends or fails.
pub async fn next_head<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> Option<String> {
    let end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if !fill(stream, buf).await {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    Some(head)
}

async fn fill<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16384];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Sends `bytes` and reads whatever comes back until the server closes or is quiet for
/// `quiet`.
pub async fn exchange<S>(stream: &mut S, bytes: &[u8], quiet: Duration) -> Vec<u8>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = stream.write_all(bytes).await;
    let _ = stream.flush().await;
    let mut out = Vec::new();
    let mut chunk = [0u8; 16384];
    while let Ok(Ok(n)) = tokio::time::timeout(quiet, stream.read(&mut chunk)).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
    }
    out
}

/// Sends raw bytes to a plain listener (the forward proxy) on a new connection.
pub async fn plain(addr: SocketAddr, bytes: &[u8], quiet: Duration) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    exchange(&mut stream, bytes, quiet).await
}

/// Sends raw bytes over TLS (ALPN http/1.1, SNI `sni`) on a new connection.
pub async fn tls(
    addr: SocketAddr,
    ca: &super::pki::TestCa,
    sni: &str,
    bytes: &[u8],
    quiet: Duration,
) -> Vec<u8> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let mut stream = super::client::tls(tcp, ca.client_config(&[b"http/1.1"]), sni)
        .await
        .expect("tls");
    exchange(&mut stream, bytes, quiet).await
}

/// The status codes of the responses in `bytes`, in order (status lines at the start of
/// a line).
pub fn statuses(bytes: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    for (i, _) in text.match_indices("HTTP/1.") {
        if i == 0 || text[..i].ends_with('\n') {
            if let Some(code) = text[i..]
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
            {
                out.push(code);
            }
        }
    }
    out
}
