//! SIP transactions (RFC 3261 §17, as updated by RFC 6026): the four state machines and the
//! table that matches messages to them. Sans-I/O and independent of the message type.
//!
//! # Division of labour
//! The owner (a tokio task) parses messages, builds [`TransactionKey`]s from their Via, CSeq,
//! Call-ID, tags and Request-URI, serialises outgoing messages to [`Bytes`] and does all I/O.
//! The machines only see status codes and opaque bytes: they decide *when* to (re)transmit and
//! what to tell the transaction user (TU), never *what* a message contains. This keeps them
//! independent of the parser and lets a test drive every timer on a hand-held clock.
//!
//! # Contract (str0m's run loop)
//! `handle_*` / `start` / `respond` feed a machine; after each, drain [`poll_output`] until it
//! returns `None`, then sleep until [`poll_timeout`] and call `handle_timeout(now)` (a call before
//! any deadline is a no-op). `Output::NeedAck` must be answered with `set_ack` before the next
//! `handle_timeout`: on a reliable transport timer D is zero and would end the transaction first.
//!
//! # Choices worth knowing
//! * RFC 6026's "Accepted" state is on by default in both INVITE machines
//!   ([`TimerConfig::rfc6026_accepted`]): after a 2xx the server transaction lives on for 64*T1
//!   to absorb INVITE retransmissions (RFC 3261 would have ended it, so a retransmission crossing
//!   the 2xx would be taken for a new INVITE), and the client transaction lives on to hand
//!   retransmitted and forked 2xx to the TU, which ACKs them (RFC 3261 would have made them stray
//!   responses, which RFC 6026 §7.2 says to drop).
//! * The INVITE server does not send 100 Trying by itself: it cannot build messages. The TU
//!   responds 100 through `respond` at once when it will not answer within 200 ms (§17.2.1).
//! * Every provisional response is delivered (the machine cannot tell a retransmitted 180 from a
//!   new one); only retransmitted finals are absorbed.
//!
//! [`poll_output`]: InviteClient::poll_output
//! [`poll_timeout`]: InviteClient::poll_timeout

mod invite_client;
mod invite_server;
mod key;
mod non_invite_client;
mod non_invite_server;
mod shell;
mod table;
mod timer;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;

use bytes::Bytes;

pub use invite_client::{InviteClient, InviteClientState};
pub use invite_server::{AckRouting, InviteServer, InviteServerState};
pub use key::{MAGIC_COOKIE, RequestFields, Rfc2543Key, TransactionKey};
pub use non_invite_client::{NonInviteClient, NonInviteClientState};
pub use non_invite_server::{NonInviteServer, NonInviteServerState};
pub use table::{ServerDisposition, TransactionKind, Transactions, TxId};
pub use timer::{Timer, TimerConfig, TimerConfigError};

/// What a machine asks of its owner. Client machines emit all but `AckTimeout`; server
/// machines emit `Transmit`, `TransportError`, `AckTimeout` and `Terminated`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes to the transaction's peer (a request, response or ACK retransmission).
    Transmit(Bytes),
    /// Pass the response with this status to the TU (each provisional, the first final of a
    /// non-2xx, every 2xx).
    Deliver { status: u16 },
    /// A non-2xx final arrived at an INVITE client: the TU builds the ACK (it needs that
    /// response's To tag, §17.1.1.3) and hands it to `set_ack`.
    NeedAck { status: u16 },
    /// Timer B or F fired without a final response: the TU acts as if a 408 arrived (§8.1.3.1).
    Timeout,
    /// The owner reported a failed send (§17.1.4, §17.2.4): the TU treats it like a 503.
    TransportError,
    /// Timer H fired: the peer never ACKed our non-2xx final (§17.2.1).
    AckTimeout,
    /// The machine reached Terminated; it is always the last output.
    Terminated,
}

/// Why the table or a machine refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("status {status} is not a SIP status code (100..=699)")]
    InvalidStatus { status: u16 },
    #[error("a {status} response is not allowed in the {state} state")]
    ResponseNotAllowed { status: u16, state: &'static str },
    #[error("no live transaction {id:?}")]
    UnknownTransaction { id: TxId },
    #[error("transaction {id:?} is a {actual:?} transaction, the operation needs {expected:?}")]
    WrongKind {
        id: TxId,
        actual: TransactionKind,
        expected: TransactionKind,
    },
    #[error("a client transaction with this key already exists: {existing:?}")]
    DuplicateKey { existing: TxId },
    #[error("ACK is never its own client transaction (§17.1.1.3, §13.2.2.4): send it directly")]
    AckIsNotATransaction,
}

/// The response classes the machines branch on (RFC 3261 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusClass {
    Provisional,
    Success,
    /// 300-699: redirection and failures, all handled alike by the transaction layer.
    Failure,
}

impl StatusClass {
    fn of(status: u16) -> Result<StatusClass, TxError> {
        match status {
            100..=199 => Ok(StatusClass::Provisional),
            200..=299 => Ok(StatusClass::Success),
            300..=699 => Ok(StatusClass::Failure),
            _ => Err(TxError::InvalidStatus { status }),
        }
    }
}
