//! What can go wrong starting the transports or sending a message.

use std::net::SocketAddr;

use super::{ConnId, HandshakeFailure, Side, TlsConfigError, TransportKind};

/// Transport failures; bind errors name the address.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// `start` was called outside a tokio runtime.
    #[error("transports must start inside a tokio runtime")]
    NoRuntime,
    /// A listener could not bind.
    #[error("cannot listen on {kind} {addr}: {source}")]
    Bind {
        /// The transport.
        kind: TransportKind,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// TLS was asked for but no material was given.
    #[error("no TLS certificate configured for the {side:?} side")]
    TlsNotConfigured {
        /// The side.
        side: Side,
    },
    /// A Teams TLS listener needs at least one peer name to accept.
    #[error("Teams mutual TLS needs at least one peer name")]
    NoPeerNames,
    /// The rustls configuration could not be built.
    #[error(transparent)]
    TlsConfig(#[from] TlsConfigError),
    /// UDP send with no UDP listener (its socket is the sending socket).
    #[error("no {kind} socket on the {side:?} side")]
    NotListening {
        /// The transport.
        kind: TransportKind,
        /// The side.
        side: Side,
    },
    /// TCP connect failed.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// TCP connect timed out.
    #[error("connect to {addr}: timed out")]
    ConnectTimeout {
        /// The address.
        addr: SocketAddr,
    },
    /// The TLS handshake of an outgoing connection failed.
    #[error("TLS handshake with {addr} failed ({reason}): {source}")]
    Handshake {
        /// The address.
        addr: SocketAddr,
        /// Why, as counted.
        reason: HandshakeFailure,
        /// rustls' error inside an io::Error.
        source: std::io::Error,
    },
    /// The TLS handshake of an outgoing connection timed out.
    #[error("TLS handshake with {addr}: timed out")]
    HandshakeTimeout {
        /// The address.
        addr: SocketAddr,
    },
    /// `server_name` is not a valid DNS name.
    #[error("invalid TLS server name {name:?}")]
    InvalidServerName {
        /// The name.
        name: String,
    },
    /// `max_connections` reached.
    #[error("connection limit of {limit} reached")]
    ConnectionLimit {
        /// The limit.
        limit: usize,
    },
    /// The connection's send queue is full (the peer is not reading).
    #[error("connection {conn} is not keeping up")]
    QueueFull {
        /// The connection.
        conn: ConnId,
    },
    /// A UDP send failed.
    #[error("send to {addr}: {source}")]
    Send {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The message is above `max_message_bytes`.
    #[error("message of {len} bytes is above the {limit} byte limit")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        limit: usize,
    },
}
