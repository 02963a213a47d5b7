//! Pre-built metric handles for the endpoint's per-message path (a handle costs ~10 ns, the
//! `counter!` macro ~100 ns with its registry lookup).

use metrics::Counter;

use crate::dns::SipTransport;
use crate::metrics::{Direction, SipCounters};
use crate::sip::Method;
use crate::sip::message::ParseError;
use crate::sip::transaction::TransactionKind;
use crate::sip::transport::TransportKind;

const TRANSPORTS: [TransportKind; 3] = [TransportKind::Udp, TransportKind::Tcp, TransportKind::Tls];
/// Bounded `kind` label of `drawbridge_sip_parse_errors_total`.
const PARSE_KINDS: [&str; 4] = ["request", "response", "empty", "response_headers"];
const TX_KINDS: [&str; 4] = [
    "invite_client",
    "non_invite_client",
    "invite_server",
    "non_invite_server",
];
/// How a transaction ended: the class of its final response, or why it had none.
const TX_OUTCOMES: [&str; 8] = [
    "2xx",
    "3xx",
    "4xx",
    "5xx",
    "6xx",
    "timeout",
    "transport_error",
    "ack_timeout",
];

/// How a transaction ended, for `drawbridge_sip_transactions_total`.
#[derive(Debug, Clone, Copy)]
pub(super) enum TxOutcome {
    Final(u16),
    Timeout,
    TransportError,
    AckTimeout,
}

pub(super) struct Counters {
    sip: SipCounters,
    parse: Vec<Counter>,
    acl: Vec<Counter>,
    unknown_tenant: Counter,
    stray: Counter,
    overload: Counter,
    drain: Counter,
    txn: Vec<Counter>,
}

fn idx(t: TransportKind) -> usize {
    match t {
        TransportKind::Udp => 0,
        TransportKind::Tcp => 1,
        TransportKind::Tls => 2,
    }
}

fn sip_transport(t: TransportKind) -> SipTransport {
    match t {
        TransportKind::Udp => SipTransport::Udp,
        TransportKind::Tcp => SipTransport::Tcp,
        TransportKind::Tls => SipTransport::Tls,
    }
}

impl Counters {
    pub(super) fn new() -> Self {
        let mut parse = Vec::new();
        for t in TRANSPORTS {
            for kind in PARSE_KINDS {
                parse.push(metrics::counter!(
                    crate::metrics::SIP_PARSE_ERRORS,
                    "transport" => sip_transport(t).as_str(),
                    "kind" => kind,
                ));
            }
        }
        let acl = TRANSPORTS
            .iter()
            .map(|t| metrics::counter!(crate::metrics::SIP_ACL_REJECTS, "transport" => sip_transport(*t).as_str()))
            .collect();
        let mut txn = Vec::new();
        for kind in TX_KINDS {
            for outcome in TX_OUTCOMES {
                txn.push(metrics::counter!(
                    crate::metrics::SIP_TRANSACTIONS,
                    "kind" => kind,
                    "outcome" => outcome,
                ));
            }
        }
        Counters {
            txn,
            sip: SipCounters::new(),
            parse,
            acl,
            unknown_tenant: metrics::counter!(crate::metrics::SIP_UNKNOWN_TENANT),
            stray: metrics::counter!(crate::metrics::SIP_STRAY_RESPONSES),
            overload: metrics::counter!(crate::metrics::SIP_OVERLOAD_REJECTS),
            drain: metrics::counter!(crate::metrics::SIP_DRAIN_REJECTS),
        }
    }

    /// A message in or out; `status` None for a request, and for a response `method` is the
    /// CSeq method.
    pub(super) fn message(
        &self,
        dir: Direction,
        t: TransportKind,
        method: &Method,
        status: Option<u16>,
    ) {
        self.sip
            .message(dir, sip_transport(t), method, status)
            .increment(1);
    }

    pub(super) fn parse_error(&self, t: TransportKind, e: &ParseError) {
        let kind = match e {
            ParseError::Request(_) => 0,
            ParseError::Response(_) => 1,
            ParseError::Empty => 2,
        };
        self.parse_kind(t, kind);
    }

    /// A response that parsed but lacks the Via or CSeq needed to match it.
    pub(super) fn response_headers_error(&self, t: TransportKind) {
        self.parse_kind(t, 3);
    }

    fn parse_kind(&self, t: TransportKind, kind: usize) {
        if let Some(c) = self.parse.get(idx(t) * PARSE_KINDS.len() + kind) {
            c.increment(1);
        }
    }

    pub(super) fn acl_reject(&self, t: TransportKind) {
        if let Some(c) = self.acl.get(idx(t)) {
            c.increment(1);
        }
    }

    pub(super) fn unknown_tenant(&self) {
        self.unknown_tenant.increment(1);
    }

    pub(super) fn transaction(&self, kind: TransactionKind, outcome: TxOutcome) {
        let k = match kind {
            TransactionKind::InviteClient => 0,
            TransactionKind::NonInviteClient => 1,
            TransactionKind::InviteServer => 2,
            TransactionKind::NonInviteServer => 3,
        };
        let o = match outcome {
            // Finals only; a provisional never ends a transaction.
            TxOutcome::Final(s) => (usize::from(s.clamp(200, 699) / 100)) - 2,
            TxOutcome::Timeout => 5,
            TxOutcome::TransportError => 6,
            TxOutcome::AckTimeout => 7,
        };
        if let Some(c) = self.txn.get(k * TX_OUTCOMES.len() + o) {
            c.increment(1);
        }
    }

    pub(super) fn overload(&self) {
        self.overload.increment(1);
    }

    pub(super) fn drain_reject(&self) {
        self.drain.increment(1);
    }

    pub(super) fn stray_response(&self) {
        self.stray.increment(1);
    }
}
