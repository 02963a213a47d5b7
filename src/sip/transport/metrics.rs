//! Transport counters and gauges, as handles registered once.
//!
//! A `counter!` lookup costs ~100 ns (label hashing, registry lock); a
//! pre-built handle ~10 ns. Every label set is bounded and known up front, so
//! all handles are built when the transports start, from whichever recorder is
//! installed then (the global one in the daemon, a local one in tests).

use metrics::{Counter, Gauge};

use super::{Side, TransportKind};

/// Why a TLS handshake failed: the `reason` label of
/// `drawbridge_tls_handshakes_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The peer sent no certificate where one is required.
    NoCertificate,
    /// The certificate does not chain to a configured CA root.
    UnknownCa,
    /// The certificate chains, but carries none of the expected names.
    NameMismatch,
    /// The certificate is expired or not yet valid.
    Expired,
    /// The certificate is otherwise unacceptable (encoding, usage, revoked).
    BadCertificate,
    /// A TLS protocol failure (version, cipher suite, bad message, alert).
    Protocol,
    /// The handshake did not finish within the handshake timeout.
    Timeout,
    /// Anything else (socket errors, EOF mid-handshake).
    Other,
}

impl HandshakeFailure {
    const ALL: [Self; 8] = [
        Self::NoCertificate,
        Self::UnknownCa,
        Self::NameMismatch,
        Self::Expired,
        Self::BadCertificate,
        Self::Protocol,
        Self::Timeout,
        Self::Other,
    ];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoCertificate => "no_certificate",
            Self::UnknownCa => "unknown_ca",
            Self::NameMismatch => "name_mismatch",
            Self::Expired => "expired",
            Self::BadCertificate => "bad_certificate",
            Self::Protocol => "protocol",
            Self::Timeout => "timeout",
            Self::Other => "other",
        }
    }
}

impl std::fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which end started the TLS connection: the `direction` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    const ALL: [Self; 2] = [Self::Inbound, Self::Outbound];

    fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// Why the transport dropped a message or a connection: the `reason` label of
/// `drawbridge_transport_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorReason {
    /// Stream bytes that do not frame as SIP (bad or missing Content-Length).
    Framing,
    /// A message above `max_message_bytes`.
    TooLarge,
    /// No traffic for `idle_timeout`.
    IdleTimeout,
    /// `max_connections` reached: the new connection was refused.
    ConnectionLimit,
    /// The core's queue or a connection's send queue was full.
    QueueFull,
    /// accept/recv/send/connect failed at the socket.
    Io,
    /// A connection to the Teams listener from outside `[teams] allow` (TDR-SIG-08).
    SourceNotAllowed,
}

impl ErrorReason {
    const ALL: [Self; 7] = [
        Self::Framing,
        Self::TooLarge,
        Self::IdleTimeout,
        Self::ConnectionLimit,
        Self::QueueFull,
        Self::Io,
        Self::SourceNotAllowed,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Framing => "framing",
            Self::TooLarge => "too_large",
            Self::IdleTimeout => "idle_timeout",
            Self::ConnectionLimit => "connection_limit",
            Self::QueueFull => "queue_full",
            Self::Io => "io",
            Self::SourceNotAllowed => "source_not_allowed",
        }
    }
}

// Arrays below are indexed by `enum as usize`: each `ALL` lists its enum's
// variants in declaration order.
const KINDS: [TransportKind; 3] = [TransportKind::Udp, TransportKind::Tcp, TransportKind::Tls];
const SIDES: [Side; 2] = [Side::Teams, Side::Trunk];

/// One handshake counter per (side, direction): `ok` plus each failure.
struct HandshakeCounters {
    ok: Counter,
    failed: [Counter; HandshakeFailure::ALL.len()],
}

pub(crate) struct TransportMetrics {
    open: [Gauge; KINDS.len()],
    handshakes: [[HandshakeCounters; Direction::ALL.len()]; SIDES.len()],
    errors: [[Counter; ErrorReason::ALL.len()]; KINDS.len()],
}

impl TransportMetrics {
    pub(crate) fn register() -> Self {
        let handshake = |side: Side, direction: Direction| HandshakeCounters {
            ok: metrics::counter!("drawbridge_tls_handshakes_total",
                "side" => side.as_label(), "direction" => direction.as_str(),
                "outcome" => "ok", "reason" => "none"),
            failed: HandshakeFailure::ALL.map(|reason| {
                metrics::counter!("drawbridge_tls_handshakes_total",
                    "side" => side.as_label(), "direction" => direction.as_str(),
                    "outcome" => "failed", "reason" => reason.as_str())
            }),
        };
        Self {
            open: KINDS.map(|kind| {
                metrics::gauge!("drawbridge_connections_open", "transport" => kind.as_label())
            }),
            handshakes: SIDES.map(|side| Direction::ALL.map(|dir| handshake(side, dir))),
            errors: KINDS.map(|kind| {
                ErrorReason::ALL.map(|reason| {
                    metrics::counter!("drawbridge_transport_errors_total",
                        "transport" => kind.as_label(), "reason" => reason.as_str())
                })
            }),
        }
    }

    pub(crate) fn connection_opened(&self, kind: TransportKind) {
        self.open[kind as usize].increment(1.0);
    }

    pub(crate) fn connection_closed(&self, kind: TransportKind) {
        self.open[kind as usize].decrement(1.0);
    }

    pub(crate) fn handshake(
        &self,
        side: Side,
        direction: Direction,
        outcome: Result<(), HandshakeFailure>,
    ) {
        let counters = &self.handshakes[side as usize][direction as usize];
        match outcome {
            Ok(()) => counters.ok.increment(1),
            Err(reason) => counters.failed[reason as usize].increment(1),
        }
    }

    pub(crate) fn error(&self, kind: TransportKind, reason: ErrorReason) {
        self.errors[kind as usize][reason as usize].increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_tables_follow_declaration_order() {
        for (i, kind) in KINDS.iter().enumerate() {
            assert_eq!(*kind as usize, i);
        }
        for (i, side) in SIDES.iter().enumerate() {
            assert_eq!(*side as usize, i);
        }
        for (i, dir) in Direction::ALL.iter().enumerate() {
            assert_eq!(*dir as usize, i);
        }
        for (i, reason) in HandshakeFailure::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i);
        }
        for (i, reason) in ErrorReason::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i);
        }
    }
}
