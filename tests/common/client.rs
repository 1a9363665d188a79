//! Clients for the tests: absolute-form requests to the forward proxy, raw CONNECT tunnels,
//! and HTTP/1.1 or HTTP/2 over TLS (the test CA) to a reverse listener. hyper only.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// A whole response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub async fn collect(response: Response<Incoming>) -> Reply {
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("response body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// An HTTP/1.1 connection over any stream (upgrades allowed).
pub async fn h1<S>(io: S) -> http1::SendRequest<Empty<Bytes>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(TokioIo::new(io))
        .await
        .expect("h1 handshake");
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    sender
}

/// An HTTP/2 connection over any stream.
pub async fn h2<S>(io: S) -> http2::SendRequest<Empty<Bytes>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .expect("h2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
}

/// A request with no body.
pub fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<Empty<Bytes>> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Empty::new()).expect("request")
}

/// An absolute-form request through the forward proxy (`Host` from the URL unless given).
pub async fn forward(
    proxy: SocketAddr,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Reply {
    collect(forward_response(proxy, method, url, headers).await).await
}

/// Like [`forward`], the body left to stream.
pub async fn forward_response(
    proxy: SocketAddr,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Response<Incoming> {
    let stream = TcpStream::connect(proxy).await.expect("connect to douane");
    let mut sender = h1(stream).await;
    let mut req = request(method, url, headers);
    if !req.headers().contains_key(http::header::HOST) {
        let uri: Uri = url.parse().expect("url");
        let host = uri.authority().expect("authority").as_str().to_owned();
        req.headers_mut()
            .insert(http::header::HOST, host.parse().expect("host"));
    }
    sender.send_request(req).await.expect("forward request")
}

/// The answer to a CONNECT: the open tunnel, or the refusal.
pub enum Connect {
    Tunnel(TcpStream, String),
    Refused(Reply),
}

impl Connect {
    pub fn refused(self) -> Reply {
        match self {
            Connect::Refused(r) => r,
            Connect::Tunnel(_, head) => panic!("expected a refusal, the tunnel opened: {head}"),
        }
    }

    pub fn tunnel(self) -> (TcpStream, String) {
        match self {
            Connect::Tunnel(s, head) => (s, head),
            Connect::Refused(r) => panic!("expected a tunnel, got {}: {}", r.status, r.text()),
        }
    }
}

/// `CONNECT authority` over a raw socket; the head is read byte by byte so that nothing of
/// the tunnel is consumed.
pub async fn connect(proxy: SocketAddr, authority: &str, headers: &[(&str, &str)]) -> Connect {
    let mut stream = TcpStream::connect(proxy).await.expect("connect to douane");
    let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .expect("write CONNECT");
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("read CONNECT answer");
        assert!(n > 0, "douane closed during the CONNECT answer: {raw:?}");
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    if status == 200 {
        return Connect::Tunnel(stream, head);
    }
    let mut headers = HeaderMap::new();
    for line in head.lines().skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            if let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(name.trim().as_bytes()),
                http::HeaderValue::from_str(value.trim()),
            ) {
                headers.append(n, v);
            }
        }
    }
    let len: usize = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.expect("refusal body");
    Connect::Refused(Reply {
        status: StatusCode::from_u16(status).expect("status"),
        headers,
        body: Bytes::from(body),
    })
}

/// A TLS client handshake with SNI `name`.
pub async fn tls(
    stream: TcpStream,
    config: Arc<ClientConfig>,
    name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(name.to_owned()).expect("server name");
    TlsConnector::from(config).connect(name, stream).await
}

/// A request to a reverse listener over TLS: SNI `sni`, `Host` (or `:authority`) `host`,
/// HTTP/2 when `h2` (ALPN), HTTP/1.1 otherwise.
pub async fn reverse(
    addr: SocketAddr,
    config_for: impl Fn(&[&[u8]]) -> Arc<ClientConfig>,
    sni: &str,
    host: &str,
    http2: bool,
    path: &str,
) -> Reply {
    let alpn: &[&[u8]] = if http2 { &[b"h2"] } else { &[b"http/1.1"] };
    let stream = TcpStream::connect(addr).await.expect("connect to douane");
    let stream = tls(stream, config_for(alpn), sni)
        .await
        .expect("tls to douane");
    if http2 {
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let mut sender = h2(stream).await;
        let req = request("GET", &format!("https://{host}{path}"), &[]);
        collect(sender.send_request(req).await.expect("h2 request")).await
    } else {
        let mut sender = h1(stream).await;
        let req = request("GET", path, &[("host", host)]);
        collect(sender.send_request(req).await.expect("h1 request")).await
    }
}
