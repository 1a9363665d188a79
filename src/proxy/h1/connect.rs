//! `CONNECT host:port` on the direct path of the forward listener: decided, connected to a
//! checked address and answered `200` in the client connection's own task, without hyper's
//! upgrade machinery and without a task per tunnel; then the tunnel's first bytes are judged
//! and it is relayed (`crate::proxy::tunnel`). A head the path does not take (HTTP/1.0, a
//! body, a malformed authority) is handed to hyper's path, before anything was decided.

use std::mem::MaybeUninit;
use std::time::Instant;

use http::HeaderValue;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::message::MAX_HEADERS;
use super::plan::ForwardConnection;
use super::request::RequestShape;
use super::response::write_whole_response;
use super::rewind::Rewind;
use super::serve::Served;
use crate::proxy::connect::{self, Opening};
use crate::proxy::context::Proxy;
use crate::proxy::exchange::Life;
use crate::proxy::intercept::PageFor;
use crate::proxy::respond;
use crate::proxy::tunnel::TunnelEnd;
use crate::resolve::Destination;

/// Serves the CONNECT at the start of `buf` (a whole head, read by `serve`); the tunnel,
/// when it opens, runs to its end here.
pub async fn serve_connect(
    mut client: TcpStream,
    buf: Vec<u8>,
    proxy: &Proxy,
    conn: &ForwardConnection,
) -> Served<TcpStream> {
    let started = Instant::now();
    // Parsed in one stretch without an await, and the head buffer let go of: an idle tunnel
    // holds neither the header slots (4 KiB) nor the head (the authority is copied).
    let (target, destination, client_ip, wants_json, early) = {
        let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        let head_len = match req.parse_with_uninit_headers(&buf, &mut slots) {
            Ok(httparse::Status::Complete(n)) => n,
            _ => return Served::HandOver(Rewind::new(buf, client)),
        };
        let (Some("CONNECT"), Some(target), Some(1)) = (req.method, req.path, req.version) else {
            return Served::HandOver(Rewind::new(buf, client));
        };
        let shape = match RequestShape::read(req.headers) {
            Ok(shape) if shape.content_length == 0 && shape.hosts <= 1 => shape,
            _ => return Served::HandOver(Rewind::new(buf, client)),
        };
        let Ok(destination) = Destination::parse_authority(target) else {
            return Served::HandOver(Rewind::new(buf, client)); // hyper's path refuses it
        };
        let client_ip = proxy.client_address(conn.peer.ip(), shape.forwarded_for);
        let wants_json = respond::wants_json(
            shape
                .accept
                .and_then(|a| HeaderValue::from_bytes(a).ok())
                .as_ref(),
        );
        let early = buf[head_len..].to_vec();
        (target.to_owned(), destination, client_ip, wants_json, early)
    };
    // The head was read into a buffer lent by `serve`: back to the stock for the next one.
    crate::proxy::buffers::give_back(buf);

    let life = Life::new();
    let decision = proxy.check(client_ip, &destination, None).await;
    let request_id = proxy.next_request_id();
    let facts = connect::facts(
        &request_id,
        &conn.listener,
        client_ip,
        &destination,
        &target,
        (started, &life),
    );
    let mut out = Vec::with_capacity(256);
    let (upstream, addr, slot) = match connect::open(proxy, &facts, &decision, wants_json).await {
        Opening::Tunnel {
            upstream,
            addr,
            slot,
        } => (upstream, addr, slot),
        Opening::Intercept => {
            push_connected(&mut out, &request_id);
            if client.write_all(&out).await.is_err() {
                return Served::Closed;
            }
            let page = PageFor {
                request_id: &request_id,
                destination: &destination,
            };
            // Boxed: the block page's TLS server is the rare case.
            Box::pin(crate::proxy::intercept::blocked_tunnel(
                proxy, &page, &decision, client, early,
            ))
            .await;
            return Served::Closed;
        }
        Opening::Answer(response) => return answer(client, &mut out, response).await,
    };
    push_connected(&mut out, &request_id);
    let written = client.write_all(&out).await;
    let answered = started.elapsed();
    let running = connect::Running::new(proxy, &facts, &decision, addr, answered);
    let end = match written {
        Ok(()) => {
            let opened = connect::opened(&facts, &decision, addr);
            crate::proxy::tunnel_tcp(proxy, &opened, client, early, upstream).await
        }
        Err(_) => TunnelEnd::default(),
    };
    drop(slot);
    running.close(end);
    Served::Closed
}

/// `200` to a CONNECT, with the request id.
fn push_connected(out: &mut Vec<u8>, request_id: &str) {
    out.clear();
    out.extend_from_slice(b"HTTP/1.1 200 Connection established\r\n");
    out.extend_from_slice(respond::REQUEST_ID.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(request_id.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
}

/// Writes one of douane's own responses and closes.
async fn answer(
    mut client: TcpStream,
    out: &mut Vec<u8>,
    response: http::Response<crate::proxy::body::ProxyBody>,
) -> Served<TcpStream> {
    out.clear();
    write_whole_response(out, response, true);
    if client.write_all(out).await.is_ok() {
        let _ = client.shutdown().await;
    }
    Served::Closed
}
