//! The transports in-process with a local metrics recorder, shared by tests/transport.rs and
//! tests/tls_mtls.rs (included with `#[path]`).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::time::Duration;

use drawbridge::sip::transport::{Incoming, TlsMaterial, TransportSettings, Transports};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long a test waits for an event before it fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Sbc {
    pub transports: Transports,
    pub incoming: mpsc::Receiver<Incoming>,
    pub metrics: PrometheusHandle,
    shutdown: CancellationToken,
}

impl Drop for Sbc {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Sbc {
    /// Starts the transports; their metric handles register with a recorder of this test's
    /// own, so counters are not shared with other tests in the binary.
    pub fn start(settings: TransportSettings, tls: Option<TlsMaterial>) -> Self {
        let recorder = PrometheusBuilder::new().build_recorder();
        let metrics = recorder.handle();
        let shutdown = CancellationToken::new();
        let (transports, incoming) = metrics::with_local_recorder(&recorder, || {
            Transports::start(settings, tls, shutdown.clone())
        })
        .unwrap();
        Self {
            transports,
            incoming,
            metrics,
            shutdown,
        }
    }

    pub async fn next_incoming(&mut self) -> Incoming {
        tokio::time::timeout(WAIT, self.incoming.recv())
            .await
            .unwrap()
            .unwrap()
    }

    /// Waits (bounded) until the counter `name` with these labels reaches `want`; returns it.
    pub async fn counter_reaches(&self, name: &str, labels: &[(&str, &str)], want: u64) -> u64 {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let value = counter(&self.metrics.render(), name, labels);
            if value >= want || tokio::time::Instant::now() > deadline {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The value of one counter series in Prometheus text output (0 if absent).
pub fn counter(text: &str, name: &str, labels: &[(&str, &str)]) -> u64 {
    text.lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .find(|line| {
            labels
                .iter()
                .all(|(k, v)| line.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0, |v| v.parse().unwrap())
}
