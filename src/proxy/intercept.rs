//! The block page inside a refused tunnel. With `[local_ca]`, a blocked CONNECT (or a name
//! refused inside a tunnel) is TLS-terminated with a certificate minted for the host the
//! browser asked for, and every request on it — HTTP/1.1 or h2, by ALPN — gets the 451 page
//! with the CONNECT's request id: the person sees why, instead of the browser's own
//! "tunnel connection failed". A plain request inside a tunnel gets the page without TLS.
//! Only refused tunnels come here: allowed tunnels are never decrypted.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::context::Proxy;
use super::h1::Rewind;
use crate::mint::Minter;
use crate::policy::Decision;
use crate::resolve::Destination;

/// What the page of a refused tunnel names: the request id of its log line and audit
/// record, and the destination refused.
#[derive(Debug, Clone, Copy)]
pub struct PageFor<'a> {
    pub request_id: &'a str,
    pub destination: &'a Destination,
}

/// How long an intercepted connection may stay open: long enough to read the page.
const INTERCEPT_LIFETIME: Duration = Duration::from_secs(30);
/// How long a blocked CONNECT waits for the client's ClientHello.
const HELLO_WAIT: Duration = Duration::from_secs(10);

/// The page in both forms, made once per refused tunnel.
struct Pages {
    html: Response<Bytes>,
    json: Response<Bytes>,
}

impl Pages {
    fn new(proxy: &Proxy, facts: &PageFor<'_>, decision: &Decision) -> Pages {
        let host = facts.destination.to_string();
        let page = proxy.block_facts(decision, &host, facts.request_id);
        Pages {
            html: crate::block_page::response(&page, false),
            json: crate::block_page::response(&page, true),
        }
    }

    /// The page for one request (its `Accept`), with the request id.
    fn answer(&self, json: bool, request_id: &str) -> Response<Full<Bytes>> {
        let page = if json { &self.json } else { &self.html };
        let mut r = Response::new(Full::new(page.body().clone()));
        *r.status_mut() = page.status();
        *r.headers_mut() = page.headers().clone();
        if let Ok(id) = http::HeaderValue::from_str(request_id) {
            r.headers_mut().insert(super::respond::REQUEST_ID, id);
        }
        r
    }
}

/// A blocked CONNECT answered `200` (with `[local_ca]`): waits for the client's first bytes
/// and serves the block page over TLS (or plain HTTP), then closes.
pub async fn blocked_tunnel<C>(
    proxy: &Proxy,
    facts: &PageFor<'_>,
    decision: &Decision,
    mut client: C,
    mut early: Vec<u8>,
) where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let max = crate::client_hello::MAX_CLIENT_HELLO;
    let read = crate::client_hello::read_first(&mut client, &mut early, max, HELLO_WAIT).await;
    if let Err(e) = read {
        tracing::debug!(request_id = facts.request_id, error = %e, "blocked tunnel: no first bytes");
        return;
    }
    super::tunnel::refuse_inside(proxy, facts, decision, &mut client, &early, true).await;
}

/// Serves the block page over TLS with a certificate minted for `host`; `early` holds the
/// ClientHello already read.
pub async fn serve_block_page<C>(
    proxy: &Proxy,
    minter: &Minter,
    facts: &PageFor<'_>,
    decision: &Decision,
    host: &str,
    client: &mut C,
    early: Vec<u8>,
) where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let config = match minter.server_config(host) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(request_id = facts.request_id, error = %e, "no certificate for the block page");
            let _ = client.write_all(&super::tunnel::ACCESS_DENIED_ALERT).await;
            return;
        }
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let pages = Pages::new(proxy, facts, decision);
    let request_id = facts.request_id;
    let work = async {
        let tls = match acceptor.accept(Rewind::new(early, client)).await {
            Ok(t) => t,
            Err(e) => {
                // A browser that does not trust the local CA ends here.
                tracing::info!(request_id, error = %e, "block page: TLS handshake failed (is the local CA deployed?)");
                return;
            }
        };
        let service = hyper::service::service_fn(|req: Request<Incoming>| {
            let json = crate::block_page::wants_json(req.headers().get(header::ACCEPT));
            std::future::ready(Ok::<_, Infallible>(pages.answer(json, request_id)))
        });
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        let served = if h2 {
            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(io, service)
                .await
        } else {
            hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .serve_connection(io, service)
                .await
        };
        if let Err(e) = served {
            tracing::debug!(request_id, error = %e, "block page connection ended");
        }
    };
    let _ = tokio::time::timeout(INTERCEPT_LIFETIME, work).await;
}

/// The block page to a plain HTTP request inside a tunnel, then the close.
pub async fn plain_block_page<C>(
    proxy: &Proxy,
    facts: &PageFor<'_>,
    decision: &Decision,
    client: &mut C,
) where
    C: AsyncWrite + Unpin,
{
    let pages = Pages::new(proxy, facts, decision);
    let page = pages.answer(false, facts.request_id);
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(page.status().as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(
        page.status()
            .canonical_reason()
            .unwrap_or("Blocked")
            .as_bytes(),
    );
    out.extend_from_slice(b"\r\n");
    for (name, value) in page.headers() {
        if name == header::CONTENT_LENGTH || name == header::CONNECTION {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let body = pages.html.body();
    out.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
    let _ = client.write_all(&out).await;
    let _ = client.flush().await;
}
