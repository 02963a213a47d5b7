//! Metric names, descriptions and pre-built handles for hot paths.
//!
//! Every name the product exports is a `pub const` here so dashboards and code
//! agree. Labels take values from closed sets (`Method::metric_label`, status
//! class, transport) so no peer can grow the series count.
//!
//! The recorder is metrics-exporter-prometheus without its HTTP listener:
//! `admin` serves `/metrics` itself, beside `/healthz`.

use metrics::{Counter, Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use crate::dns::SipTransport;
use crate::sip::method::Method;

/// `{direction, transport, method, status_class}`: every SIP message sent or received.
pub const SIP_MESSAGES: &str = "drawbridge_sip_messages_total";
/// `{transport, kind}`: messages that failed to parse or frame.
pub const SIP_PARSE_ERRORS: &str = "drawbridge_sip_parse_errors_total";
/// `{kind, outcome}`: finished transactions (kind: ict, nict, ist, nist).
pub const SIP_TRANSACTIONS: &str = "drawbridge_sip_transactions_total";
/// `{side, outcome, reason}`: TLS handshakes as client or server.
pub const TLS_HANDSHAKES: &str = "drawbridge_tls_handshakes_total";
/// `{proxy}`: 1 while the Teams proxy answers OPTIONS, else 0.
pub const TEAMS_PROXY_UP: &str = "drawbridge_teams_proxy_up";
/// `{proxy}`: OPTIONS request to final response, seconds.
pub const OPTIONS_RTT: &str = "drawbridge_options_rtt_seconds";
/// `{tenant, direction}`: INVITE received to 200 OK relayed, seconds.
pub const CALL_SETUP: &str = "drawbridge_call_setup_seconds";
/// `{tenant, direction}`: calls from admitted INVITE to teardown.
pub const CALLS_ACTIVE: &str = "drawbridge_calls_active";
/// `{tenant, direction}`: INVITEs admitted as new calls.
pub const CALL_ATTEMPTS: &str = "drawbridge_call_attempts_total";
/// `{tenant, direction}`: calls answered (200 OK relayed).
pub const CALLS_ANSWERED: &str = "drawbridge_calls_answered_total";
/// `{tenant, direction, class}`: call setups that ended without an answer
/// (class: 3xx, 4xx, 5xx, 6xx, timeout, other).
pub const CALLS_FAILED: &str = "drawbridge_calls_failed_total";
/// `{trunk}`: 1 while a trunk with `options_interval_s` has a target answering its OPTIONS
/// pings, 0 otherwise (and until the first answer).
pub const TRUNK_UP: &str = "drawbridge_trunk_up";
/// `{tenant, requested_by, outcome}`: transfers asked for with REFER (requested_by: teams,
/// trunk; outcome: completed, failed).
pub const TRANSFERS: &str = "drawbridge_transfers_total";
/// `{tenant, reason}`: INVITEs refused by a limit with 503 (tenant_calls, tenant_rate,
/// trunk_rate).
pub const CALLS_REFUSED: &str = "drawbridge_calls_refused_total";
/// `{trunk}`: INVITEs from a trunk with `auth` whose digest credentials were wrong (bad
/// password, user, realm or URI, or a nonce we did not issue).
pub const SIP_AUTH_FAILURES: &str = "drawbridge_sip_auth_failures_total";
/// Call records written to the CDR file.
pub const CDR_WRITTEN: &str = "drawbridge_cdr_written_total";
/// `{reason}`: call records lost (queue_full, write_error).
pub const CDR_DROPPED: &str = "drawbridge_cdr_dropped_total";
/// `{transport}`: open stream connections (tcp, tls).
pub const CONNECTIONS_OPEN: &str = "drawbridge_connections_open";
/// `{direction}`: media packets relayed.
pub const MEDIA_PACKETS: &str = "drawbridge_media_packets_total";
/// `{direction}`: media payload bytes relayed.
pub const MEDIA_BYTES: &str = "drawbridge_media_bytes_total";
/// `{reason}`: media packets dropped.
pub const MEDIA_DROPS: &str = "drawbridge_media_drops_total";
/// Media sessions currently allocated.
pub const MEDIA_SESSIONS_ACTIVE: &str = "drawbridge_media_sessions_active";
/// Media ports currently bound (including quarantined ones).
pub const MEDIA_PORTS_IN_USE: &str = "drawbridge_media_ports_in_use";
/// Requests from a trunk-side source that no trunk's `allow` list admits.
pub const SIP_ACL_REJECTS: &str = "drawbridge_sip_acl_rejects_total";
/// INVITEs for a tenant FQDN that is not configured.
pub const SIP_UNKNOWN_TENANT: &str = "drawbridge_sip_unknown_tenant_total";
/// Requests refused with 503 because the transaction table is full.
pub const SIP_OVERLOAD_REJECTS: &str = "drawbridge_sip_overload_rejects_total";
/// New INVITEs refused with 503 while the SBC drains before stopping (TDR-MON-04).
pub const SIP_DRAIN_REJECTS: &str = "drawbridge_sip_drain_rejects_total";
/// Responses that match no client transaction.
pub const SIP_STRAY_RESPONSES: &str = "drawbridge_sip_stray_responses_total";

/// OPTIONS round trips: LAN-fast answers up to Timer F (32 s) timeouts.
pub const OPTIONS_RTT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0,
];
/// Call setup includes ringing, so the buckets reach a minute.
pub const CALL_SETUP_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0,
];

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("setting up the Prometheus recorder: {source}")]
    Recorder { source: BuildError },
}

/// The builder with our histogram buckets; `install` uses it, tests may call
/// `build_recorder()` on it for a local recorder.
pub fn builder() -> Result<PrometheusBuilder, MetricsError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(OPTIONS_RTT.to_owned()), OPTIONS_RTT_BUCKETS)
        .and_then(|b| {
            b.set_buckets_for_metric(Matcher::Full(CALL_SETUP.to_owned()), CALL_SETUP_BUCKETS)
        })
        .map_err(|source| MetricsError::Recorder { source })
}

/// Installs the global recorder and describes every metric, before any handle struct is built
/// (handles built earlier are no-ops). Idempotent: the recorder is process-wide, and tests start
/// several daemons in one process; later calls get the same handle.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    // A poisoned lock only means another installer panicked; installing is still safe.
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = builder()?
        .install_recorder()
        .map_err(|source| MetricsError::Recorder { source })?;
    describe();
    Ok(HANDLE.get_or_init(|| handle).clone())
}

/// `# HELP` and units for every metric, on the current recorder.
pub fn describe() {
    describe_counter!(
        SIP_MESSAGES,
        Unit::Count,
        "SIP messages by direction, transport, method and status class"
    );
    describe_counter!(
        SIP_PARSE_ERRORS,
        Unit::Count,
        "SIP messages rejected by the parser or framer"
    );
    describe_counter!(
        SIP_TRANSACTIONS,
        Unit::Count,
        "SIP transactions finished, by kind and outcome"
    );
    describe_counter!(
        TLS_HANDSHAKES,
        Unit::Count,
        "TLS handshakes by side, outcome and failure reason"
    );
    describe_gauge!(
        TEAMS_PROXY_UP,
        "1 if the Teams SIP proxy answers OPTIONS, else 0"
    );
    describe_histogram!(
        OPTIONS_RTT,
        Unit::Seconds,
        "OPTIONS keepalive round-trip time per proxy"
    );
    describe_histogram!(
        CALL_SETUP,
        Unit::Seconds,
        "Time from INVITE received to 200 OK relayed, by tenant and direction"
    );
    describe_gauge!(
        CALLS_ACTIVE,
        "Calls from admitted INVITE to teardown, by tenant and direction"
    );
    describe_counter!(
        CALL_ATTEMPTS,
        Unit::Count,
        "INVITEs admitted as new calls, by tenant and direction"
    );
    describe_counter!(
        CALLS_ANSWERED,
        Unit::Count,
        "Calls answered, by tenant and direction"
    );
    describe_counter!(
        CALLS_FAILED,
        Unit::Count,
        "Call setups ended without an answer, by tenant, direction and status class"
    );
    describe_gauge!(
        TRUNK_UP,
        Unit::Count,
        "1 while a pinged trunk has a target answering OPTIONS, 0 otherwise"
    );
    describe_counter!(
        TRANSFERS,
        Unit::Count,
        "Transfers asked for with REFER, by tenant, the side that asked, and outcome"
    );
    describe_counter!(
        CALLS_REFUSED,
        Unit::Count,
        "INVITEs refused with 503 by a tenant or trunk limit"
    );
    describe_counter!(
        SIP_AUTH_FAILURES,
        Unit::Count,
        "INVITEs from a trunk with wrong digest credentials, by trunk"
    );
    describe_counter!(CDR_WRITTEN, Unit::Count, "Call records written");
    describe_counter!(
        CDR_DROPPED,
        Unit::Count,
        "Call records lost: queue full or write error"
    );
    describe_gauge!(CONNECTIONS_OPEN, "Open SIP stream connections by transport");
    describe_counter!(
        MEDIA_PACKETS,
        Unit::Count,
        "Media packets relayed, by direction"
    );
    describe_counter!(
        MEDIA_BYTES,
        Unit::Bytes,
        "Media bytes relayed, by direction"
    );
    describe_counter!(MEDIA_DROPS, Unit::Count, "Media packets dropped, by reason");
    describe_gauge!(MEDIA_SESSIONS_ACTIVE, "Media sessions currently allocated");
    describe_gauge!(MEDIA_PORTS_IN_USE, "Media ports currently bound");
    describe_counter!(
        SIP_ACL_REJECTS,
        Unit::Count,
        "Trunk-side requests dropped because no trunk allows their source"
    );
    describe_counter!(
        SIP_UNKNOWN_TENANT,
        Unit::Count,
        "INVITEs refused with 404 for an unknown tenant FQDN"
    );
    describe_counter!(
        SIP_OVERLOAD_REJECTS,
        Unit::Count,
        "Requests refused with 503 because sip.max_transactions was reached"
    );
    describe_counter!(
        SIP_DRAIN_REJECTS,
        Unit::Count,
        "New INVITEs refused with 503 while draining before a stop"
    );
    describe_counter!(
        SIP_STRAY_RESPONSES,
        Unit::Count,
        "Responses dropped because they match no transaction"
    );
}

/// Whether the SBC received or sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

const DIRECTIONS: [Direction; 2] = [Direction::In, Direction::Out];
const TRANSPORTS: [SipTransport; 3] = [SipTransport::Udp, SipTransport::Tcp, SipTransport::Tls];
/// Same order as `method_index`.
const METHOD_LABELS: [&str; 15] = [
    "INVITE",
    "ACK",
    "BYE",
    "CANCEL",
    "OPTIONS",
    "REGISTER",
    "PRACK",
    "UPDATE",
    "REFER",
    "NOTIFY",
    "SUBSCRIBE",
    "INFO",
    "MESSAGE",
    "PUBLISH",
    "other",
];
/// Requests, the six response classes, and "other" for a code outside 100-699.
const STATUS_CLASSES: [&str; 8] = ["req", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx", "other"];

fn method_index(method: &Method) -> usize {
    match method {
        Method::Invite => 0,
        Method::Ack => 1,
        Method::Bye => 2,
        Method::Cancel => 3,
        Method::Options => 4,
        Method::Register => 5,
        Method::Prack => 6,
        Method::Update => 7,
        Method::Refer => 8,
        Method::Notify => 9,
        Method::Subscribe => 10,
        Method::Info => 11,
        Method::Message => 12,
        Method::Publish => 13,
        Method::Other(_) => 14,
    }
}

fn status_index(status: Option<u16>) -> usize {
    match status {
        None => 0,
        Some(code @ 100..=699) => usize::from(code / 100),
        Some(_) => 7,
    }
}

fn transport_index(transport: SipTransport) -> usize {
    match transport {
        SipTransport::Udp => 0,
        SipTransport::Tcp => 1,
        SipTransport::Tls => 2,
    }
}

/// One `drawbridge_sip_messages_total` counter per label combination, looked
/// up by index on the hot path: no label strings, no registry hashing.
#[derive(Clone)]
pub struct SipCounters {
    counters: Vec<Counter>,
}

impl std::fmt::Debug for SipCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipCounters")
            .field("series", &self.counters.len())
            .finish()
    }
}

impl SipCounters {
    /// Registers all 720 series with the current recorder.
    pub fn new() -> Self {
        let mut counters = Vec::with_capacity(
            DIRECTIONS.len() * TRANSPORTS.len() * METHOD_LABELS.len() * STATUS_CLASSES.len(),
        );
        for direction in DIRECTIONS {
            for transport in TRANSPORTS {
                for method in METHOD_LABELS {
                    for class in STATUS_CLASSES {
                        counters.push(metrics::counter!(
                            SIP_MESSAGES,
                            "direction" => direction.as_str(),
                            "transport" => transport.as_str(),
                            "method" => method,
                            "status_class" => class,
                        ));
                    }
                }
            }
        }
        Self { counters }
    }

    /// The counter for one message; `status` is `None` for a request, and for
    /// a response `method` is the CSeq method.
    pub fn message(
        &self,
        direction: Direction,
        transport: SipTransport,
        method: &Method,
        status: Option<u16>,
    ) -> &Counter {
        let d = match direction {
            Direction::In => 0,
            Direction::Out => 1,
        };
        let idx = ((d * TRANSPORTS.len() + transport_index(transport)) * METHOD_LABELS.len()
            + method_index(method))
            * STATUS_CLASSES.len()
            + status_index(status);
        // In range by construction: every index is below the product of the
        // four set sizes `new` registered (checked by a test).
        &self.counters[idx]
    }
}

impl Default for SipCounters {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_match_method_metric_label() {
        for label in &METHOD_LABELS[..14] {
            let m = Method::from_token(label);
            assert_eq!(METHOD_LABELS[method_index(&m)], m.metric_label());
        }
        let other = Method::from_token("FOO");
        assert_eq!(METHOD_LABELS[method_index(&other)], other.metric_label());
    }

    #[test]
    fn every_label_combination_has_its_own_counter() {
        let mut seen = std::collections::HashSet::new();
        let counters = SipCounters::new();
        for direction in DIRECTIONS {
            for transport in TRANSPORTS {
                for method in METHOD_LABELS {
                    for status in [
                        None,
                        Some(100),
                        Some(200),
                        Some(302),
                        Some(404),
                        Some(503),
                        Some(603),
                        Some(700),
                    ] {
                        let c = counters.message(
                            direction,
                            transport,
                            &Method::from_token(method),
                            status,
                        );
                        assert!(seen.insert(std::ptr::from_ref(c)));
                    }
                }
            }
        }
        assert_eq!(seen.len(), counters.counters.len());
    }

    #[test]
    fn sip_counters_increment_the_labelled_series() {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        let counters = metrics::with_local_recorder(&recorder, || {
            describe();
            SipCounters::new()
        });
        counters
            .message(Direction::In, SipTransport::Tls, &Method::Invite, None)
            .increment(1);
        counters
            .message(
                Direction::Out,
                SipTransport::Udp,
                &Method::from_token("FOO"),
                Some(486),
            )
            .increment(2);
        counters
            .message(Direction::Out, SipTransport::Tcp, &Method::Bye, Some(42))
            .increment(1);
        let text = handle.render();
        let line = |labels: &str| format!("{SIP_MESSAGES}{{{labels}}} ");
        assert!(
            text.contains(
                &(line(r#"direction="in",transport="tls",method="INVITE",status_class="req""#)
                    + "1")
            ),
            "{text}"
        );
        assert!(
            text.contains(
                &(line(r#"direction="out",transport="udp",method="other",status_class="4xx""#)
                    + "2")
            ),
            "{text}"
        );
        assert!(
            text.contains(
                &(line(r#"direction="out",transport="tcp",method="BYE",status_class="other""#)
                    + "1")
            ),
            "{text}"
        );
        assert!(
            text.contains(&format!("# HELP {SIP_MESSAGES} SIP messages")),
            "{text}"
        );
    }

    #[test]
    fn histograms_use_the_configured_buckets() {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!(OPTIONS_RTT, "proxy" => "sip.pstnhub.microsoft.com").record(0.03);
            metrics::histogram!(CALL_SETUP).record(2.5);
        });
        let text = handle.render();
        assert!(
            text.contains(r#"drawbridge_options_rtt_seconds_bucket{proxy="sip.pstnhub.microsoft.com",le="0.05"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"drawbridge_options_rtt_seconds_bucket{proxy="sip.pstnhub.microsoft.com",le="0.025"} 0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"drawbridge_call_setup_seconds_bucket{le="3"} 1"#),
            "{text}"
        );
        assert!(
            !text.contains("quantile"),
            "summaries instead of histograms: {text}"
        );
    }
}
