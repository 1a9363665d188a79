//! Downloads for `douane geodb update`: one GET over HTTP or HTTPS (rustls, the upstream
//! roots of the config), redirects followed (MaxMind answers with one), a size cap and a
//! deadline. hyper's client connection, no pool: a few files a day.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;

/// The largest file accepted (GeoIP2 City is about 130 MB).
const MAX_BYTES: usize = 1 << 30;
const MAX_REDIRECTS: usize = 5;

#[derive(Debug, thiserror::Error)]
#[error("{url}: {message}")]
pub struct FetchError {
    /// The URL as it may be shown (licence key hidden).
    pub url: String,
    pub message: String,
}

pub struct Fetcher {
    pub tls: Arc<ClientConfig>,
    pub timeout: Duration,
    /// `[upstream] parent_proxy` (`host:port`) and its `Proxy-Authorization`: downloads
    /// go out through it with CONNECT, like every allowed connection.
    pub parent: Option<(String, Option<String>)>,
}

impl Fetcher {
    /// GETs `url`; `shown` is what errors print instead of it (the licence key hidden).
    pub async fn get(&self, url: &str, shown: &str) -> Result<Vec<u8>, FetchError> {
        let err = |message: String| FetchError {
            url: shown.to_owned(),
            message,
        };
        match tokio::time::timeout(self.timeout, self.follow(url)).await {
            Ok(result) => result.map_err(err),
            Err(_) => Err(err(format!(
                "no complete answer within {} s",
                self.timeout.as_secs()
            ))),
        }
    }

    async fn follow(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        for _ in 0..=MAX_REDIRECTS {
            let response = self.once(&uri).await?;
            let status = response.status();
            if status.is_redirection() {
                let location = response
                    .headers()
                    .get(http::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("HTTP {status} without a Location"))?;
                uri = redirect_target(&uri, location)?;
                continue;
            }
            if status != http::StatusCode::OK {
                return Err(format!("HTTP {status}"));
            }
            let body = Limited::new(response.into_body(), MAX_BYTES)
                .collect()
                .await
                .map_err(|e| format!("the download broke off: {e}"))?;
            return Ok(body.to_bytes().to_vec());
        }
        Err(format!("more than {MAX_REDIRECTS} redirects"))
    }

    async fn once(&self, uri: &http::Uri) -> Result<http::Response<hyper::body::Incoming>, String> {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("only http:// and https:// URLs are fetched".into()),
        };
        let host = uri.host().ok_or("the URL has no host")?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = match &self.parent {
            None => TcpStream::connect((bare, port))
                .await
                .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?,
            Some((parent, auth)) => connect_via(parent, auth.as_deref(), host, port).await?,
        };
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let request = http::Request::get(target)
            .header(
                http::header::HOST,
                uri.authority().map_or(host, |a| a.as_str()),
            )
            .header(
                http::header::USER_AGENT,
                concat!("douane/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        if https {
            let name = ServerName::try_from(bare.to_owned())
                .map_err(|e| format!("`{bare}` is not a TLS server name: {e}"))?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {host}: {e}"))?;
            send(TokioIo::new(tls), request).await
        } else {
            send(TokioIo::new(tcp), request).await
        }
    }
}

async fn send<T>(
    io: T,
    request: http::Request<Empty<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    tokio::spawn(connection);
    sender
        .send_request(request)
        .await
        .map_err(|e| format!("HTTP: {e}"))
}

/// A tunnel to `host:port` through the parent proxy.
async fn connect_via(
    parent: &str,
    authorization: Option<&str>,
    host: &str,
    port: u16,
) -> Result<TcpStream, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(parent)
        .await
        .map_err(|e| format!("cannot reach the parent proxy {parent}: {e}"))?;
    let auth = authorization
        .map(|a| format!("Proxy-Authorization: {a}\r\n"))
        .unwrap_or_default();
    let head = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}\r\n");
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| format!("parent proxy {parent}: {e}"))?;
    // Byte by byte: what follows the head belongs to the tunnel.
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        let n = stream
            .read(&mut byte)
            .await
            .map_err(|e| format!("parent proxy {parent}: {e}"))?;
        if n == 0 || answer.len() > 8192 {
            return Err(format!("parent proxy {parent} gave no CONNECT answer"));
        }
        answer.push(byte[0]);
    }
    let status = String::from_utf8_lossy(&answer);
    let status = status.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(stream)
    } else {
        Err(format!(
            "parent proxy {parent} refused CONNECT {host}:{port}: {status}"
        ))
    }
}

/// Where a `Location` points, relative to the URL that answered it.
fn redirect_target(base: &http::Uri, location: &str) -> Result<http::Uri, String> {
    let bad = |e: String| format!("a redirect to `{location}`: {e}");
    if location.starts_with("http://") || location.starts_with("https://") {
        return location
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(e.to_string()));
    }
    if !location.starts_with('/') {
        return Err(bad("only absolute redirects are followed".into()));
    }
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(
        location
            .parse()
            .map_err(|e: http::uri::InvalidUri| bad(e.to_string()))?,
    );
    http::Uri::from_parts(parts).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_against_the_base() {
        let base: http::Uri = "https://download.example/app/x?a=1".parse().unwrap();
        assert_eq!(
            redirect_target(&base, "/files/y.tar.gz")
                .unwrap()
                .to_string(),
            "https://download.example/files/y.tar.gz"
        );
        assert_eq!(
            redirect_target(&base, "https://cdn.example/z")
                .unwrap()
                .to_string(),
            "https://cdn.example/z"
        );
        assert!(redirect_target(&base, "relative").is_err());
    }
}
