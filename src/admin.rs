//! The admin listener: `/metrics` (Prometheus text), `/healthz` (the process answers),
//! `/readyz` (policy, databases and audit log usable), `/policy` (what is loaded, as JSON),
//! `/audit/checkpoint` (the audit log's latest signed checkpoint),
//! `/audit/consistency?from=N&to=M` (an RFC 9162 consistency proof, one base64 hash a line);
//! `/proxy.pac` and `/wpad.dat` (the PAC file, without a token: browsers have none) when
//! `[pac]` is configured.
//! Loopback by default; a bearer token is required when one is configured.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::audit::AuditLog;
use crate::metrics::Metrics;
use crate::state::State;

pub struct Admin {
    pub state: Arc<ArcSwap<State>>,
    pub metrics: Arc<Metrics>,
    pub audit: Option<AuditLog>,
    /// `Bearer <token>`, when one is required.
    pub authorization: Option<String>,
    /// `[pac]`: serve the PAC file.
    pub pac: Option<crate::pac::PacConfig>,
}

pub async fn serve(admin: Arc<Admin>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, std::convert::Infallible>(admin.answer_async(&req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[derive(Serialize)]
struct PolicyView<'a> {
    policy: crate::policy::PolicySummary<'a>,
    exemptions: Vec<crate::policy::Exemption>,
    provenance: &'a crate::policy::Provenance,
    databases: Vec<&'a crate::geo::DatabaseInfo>,
    operators: usize,
}

impl Admin {
    /// What needs the audit writer (a proof) is awaited; the rest is answered at once.
    async fn answer_async(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let authorized = match &self.authorization {
            Some(expected) => {
                req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes)
                    == Some(expected.as_bytes())
            }
            None => true,
        };
        if authorized && req.method() == Method::GET && req.uri().path() == "/audit/consistency" {
            return self.consistency(req.uri().query().unwrap_or("")).await;
        }
        self.answer(req)
    }

    async fn consistency(&self, query: &str) -> Response<Full<Bytes>> {
        let Some(audit) = &self.audit else {
            return text(StatusCode::NOT_FOUND, "no audit log\n");
        };
        let mut from = None;
        let mut to = None;
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("from", v)) => from = v.parse::<u64>().ok(),
                Some(("to", v)) => to = v.parse::<u64>().ok(),
                _ => {}
            }
        }
        let (Some(from), Some(to)) = (from, to) else {
            return text(
                StatusCode::BAD_REQUEST,
                "give ?from=N&to=M (two tree sizes, 0 < N <= M)\n",
            );
        };
        match audit.consistency_proof(from, to).await {
            Ok(proof) => {
                use base64::Engine;
                let mut body = String::with_capacity(proof.len() * 45);
                for h in &proof {
                    body.push_str(&base64::engine::general_purpose::STANDARD.encode(h));
                    body.push('\n');
                }
                text(StatusCode::OK, &body)
            }
            Err(e) => text(StatusCode::BAD_REQUEST, &format!("{e}\n")),
        }
    }

    fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if let Some(pac) = &self.pac {
            if crate::pac::is_pac_path(req.uri().path()) && req.method() == Method::GET {
                return crate::pac::response(pac, &self.state.load()).map(Full::new);
            }
        }
        if let Some(expected) = &self.authorization {
            let given = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
            if given != Some(expected.as_bytes()) {
                return text(StatusCode::UNAUTHORIZED, "a bearer token is required\n");
            }
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        match req.uri().path() {
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" => match self.not_ready() {
                None => text(StatusCode::OK, "ready\n"),
                Some(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("not ready: {why}\n"),
                ),
            },
            "/metrics" => {
                if let Some(audit) = &self.audit {
                    self.metrics.set_audit(&audit.health());
                    self.metrics.set_audit_tlog(&audit.tlog_status());
                }
                let mut response = Response::new(Full::new(Bytes::from(self.metrics.render())));
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                response
            }
            "/policy" => {
                let state = self.state.load();
                let view = PolicyView {
                    policy: state.policy.summary(),
                    exemptions: state.policy.exemptions(),
                    provenance: &state.provenance,
                    databases: [&state.geo.country, &state.geo.asn]
                        .into_iter()
                        .flatten()
                        .map(|db| &db.info)
                        .collect(),
                    operators: state.geo.registry.len(),
                };
                let body = serde_json::to_vec_pretty(&view).unwrap_or_default();
                let mut response = Response::new(Full::new(Bytes::from(body)));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }
            "/audit/checkpoint" => match self.audit.as_ref().and_then(AuditLog::checkpoint) {
                Some(cp) => text(StatusCode::OK, &cp),
                None => text(StatusCode::NOT_FOUND, "no signed checkpoint yet\n"),
            },
            _ => text(
                StatusCode::NOT_FOUND,
                "not found: /metrics /healthz /readyz /policy /audit/checkpoint /audit/consistency\n",
            ),
        }
    }

    /// Why douane is not ready, if it is not.
    fn not_ready(&self) -> Option<String> {
        let state = self.state.load();
        if state.geo.country.is_none() {
            return Some("no country database loaded".into());
        }
        if let Some(audit) = &self.audit {
            let health = audit.health();
            if !health.ok {
                return Some(format!(
                    "audit log unusable: {}",
                    health
                        .last_error
                        .as_deref()
                        .map_or("writer stopped", |s| s.as_str())
                ));
            }
        }
        None
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
