//! Prometheus metrics (placeholder interface; filled in by the metrics work).

use std::time::Duration;

use crate::policy::Decision;
use crate::resolve::DnsFailure;

#[derive(Debug, Default)]
pub struct Metrics {}

/// Decrements the active-connections gauge when dropped.
pub struct ConnectionGauge;

impl Drop for ConnectionGauge {
    fn drop(&mut self) {}
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {}
    }
    pub fn observe_request(
        &self,
        _listener: &str,
        _route: Option<&str>,
        _decision: &Decision,
        _elapsed: Duration,
    ) {
    }
    pub fn observe_dns(&self, _elapsed: Duration, _failure: Option<DnsFailure>) {}
    pub fn observe_connect(&self, _elapsed: Duration) {}
    pub fn observe_bytes(&self, _decision: &Decision, _sent: u64, _received: u64) {}
    pub fn upstream_error(&self, _kind: &str) {}
    pub fn connection_opened(&self, _listener: &str) -> ConnectionGauge {
        ConnectionGauge
    }
    pub fn connection_refused(&self, _listener: &str) {}
    pub fn render(&self) -> String {
        String::new()
    }
}

impl Metrics {
    pub fn set_state(&self, _state: &crate::state::State) {}
    pub fn reload(&self, _ok: bool) {}
}
