//! Local upstream servers on loopback addresses (127.0.0.2, .3, …: Linux routes all of
//! 127/8 to lo): plain HTTP or HTTPS (test CA, ALPN h2 and http/1.1). Every server answers
//! with its own address, so a test sees which checked address douane really dialled.
//!
//! Paths: anything → a JSON echo of what the upstream saw (`server`, `method`, `uri`,
//! `version`, `headers`, `body_len`); `/slow` → 10 chunks over 2 s; `/sleep` → the echo
//! after 2 s; a request with `Upgrade` → `101` and a raw echo of the bytes that follow.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

/// Chunks of `/slow`, and the pause between them.
pub const SLOW_CHUNKS: usize = 10;
pub const SLOW_PAUSE: Duration = Duration::from_millis(200);

/// The response body of the upstreams: a buffer, or chunks fed over time.
pub enum UpBody {
    Full(Option<Bytes>),
    Chunks(mpsc::Receiver<Bytes>),
}

impl Body for UpBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            UpBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            UpBody::Chunks(rx) => rx.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b)))),
        }
    }
}

/// Binds one listener per address, all on the same port (a name that resolves to several
/// addresses has one port).
pub async fn bind_same_port(ips: &[&str]) -> Vec<TcpListener> {
    'retry: for _ in 0..50 {
        let first = TcpListener::bind((ips[0].parse::<IpAddr>().expect("ip"), 0))
            .await
            .expect("bind upstream");
        let port = first.local_addr().expect("addr").port();
        let mut listeners = vec![first];
        for ip in &ips[1..] {
            match TcpListener::bind((ip.parse::<IpAddr>().expect("ip"), port)).await {
                Ok(l) => listeners.push(l),
                Err(_) => continue 'retry,
            }
        }
        return listeners;
    }
    panic!("no common free port on {ips:?}");
}

/// Starts servers on `ips` (same port), with TLS when `tls` is given; returns the port.
pub async fn start(ips: &[&str], tls: Option<Arc<ServerConfig>>) -> u16 {
    let listeners = bind_same_port(ips).await;
    let port = listeners[0].local_addr().expect("addr").port();
    for listener in listeners {
        tokio::spawn(serve(listener, tls.clone().map(TlsAcceptor::from)));
    }
    port
}

async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>) {
    let local = listener.local_addr().expect("addr");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(local, req));
            let http = auto::Builder::new(TokioExecutor::new());
            match tls {
                None => {
                    let _ = http
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                }
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let _ = http
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                }
            }
        });
    }
}

async fn answer(
    local: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<UpBody>, Infallible> {
    if let Some(protocol) = req.headers().get(header::UPGRADE).cloned() {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on.await {
                let (mut r, mut w) = tokio::io::split(TokioIo::new(upgraded));
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let mut response = Response::new(UpBody::Full(None));
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        response.headers_mut().insert(header::UPGRADE, protocol);
        response
            .headers_mut()
            .insert(header::CONNECTION, "upgrade".parse().expect("value"));
        return Ok(response);
    }
    match req.uri().path() {
        "/slow" => {
            let (tx, rx) = mpsc::channel(1);
            tokio::spawn(async move {
                for i in 0..SLOW_CHUNKS {
                    if tx.send(Bytes::from(format!("chunk-{i}\n"))).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(SLOW_PAUSE).await;
                }
            });
            return Ok(Response::new(UpBody::Chunks(rx)));
        }
        "/sleep" => tokio::time::sleep(Duration::from_secs(2)).await,
        _ => {}
    }
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in req.headers() {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let version = format!("{:?}", req.version());
    let body_len = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let echo = serde_json::json!({
        "server": local.ip().to_string(),
        "method": method,
        "uri": uri,
        "version": version,
        "headers": headers,
        "body_len": body_len,
    });
    let mut response = Response::new(UpBody::Full(Some(Bytes::from(echo.to_string()))));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("value"),
    );
    Ok(response)
}
