//! SIP transports: UDP, TCP and TLS (mutual TLS toward Teams), server and
//! client side, with a table of open connections for reuse.
//!
//! The transport frames messages (a datagram, or one Content-Length framed
//! message off a stream) and hands the raw bytes to the core as [`Incoming`];
//! it knows nothing else of SIP. The core answers with [`Transports::send`],
//! naming a [`Target`]: the connection a request came on (RFC 3261 §18.2.2),
//! or an address to reach over an existing or new connection.

mod connections;
pub mod dev_certs;
mod error;
pub mod expiry;
mod handshake;
mod material;
mod metrics;
mod names;
mod stream;
mod tcp;
mod tls;
mod udp;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::TransportError;
pub use material::{TlsMaterial, TlsMaterialError};
pub use metrics::HandshakeFailure;
pub use tls::TlsConfigError;

use connections::ConnectionTable;
use metrics::{ErrorReason, TransportMetrics};
use tls::TlsConfigs;

/// A SIP transport, displayed as its Via token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TransportKind {
    /// SIP over UDP.
    Udp,
    /// SIP over TCP.
    Tcp,
    /// SIP over TLS over TCP.
    Tls,
}

impl TransportKind {
    fn as_label(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }

    /// Whether the transport is reliable (RFC 3261 §17: no retransmission
    /// timers A/E/G for it).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Self::Udp)
    }
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        })
    }
}

/// Which network a socket faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Side {
    /// Microsoft Teams Direct Routing (TLS only, TDR-SIG-01).
    Teams,
    /// The contact-center trunks.
    Trunk,
}

impl Side {
    fn as_label(self) -> &'static str {
        match self {
            Self::Teams => "teams",
            Self::Trunk => "trunk",
        }
    }
}

/// One open TCP/TLS connection, valid until it closes; ids are never reused.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ConnId(u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// One framed SIP message as received, not yet parsed.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The whole message: one datagram, or one Content-Length framed message.
    pub data: Bytes,
    /// The transport it came over.
    pub transport: TransportKind,
    /// The listener's side (for outbound connections: the side we dialled).
    pub side: Side,
    /// The peer's address (for `received`/`rport`, RFC 3261 §18.2.1, 3581).
    pub source: SocketAddr,
    /// Our address it arrived at.
    pub local: SocketAddr,
    /// The connection, for TCP/TLS: answer on it (RFC 3261 §18.2.2).
    pub conn: Option<ConnId>,
    /// The peer name its client certificate proved (Teams mutual TLS): the
    /// configured peer name it matched, or, for a wildcard peer name, the
    /// concrete certificate name. For connections we dialled: the host name.
    pub peer_name: Option<Arc<str>>,
}

/// What [`Transports::send_now`] did.
#[derive(Debug)]
pub enum SendNow {
    /// Handed to the socket or queued on connection `.0`.
    Sent(Option<ConnId>),
    /// Needs [`Transports::send`]: a connection to open, or a full socket buffer.
    Later(Bytes),
    Failed(TransportError),
}

/// Where [`Transports::send`] delivers a message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Target {
    /// The transport to use.
    pub transport: TransportKind,
    /// The remote address (resolved): the request's next hop, or for a
    /// response the Via sent-by (with `received`/`rport` applied).
    pub addr: SocketAddr,
    /// Preferred connection (for a response: the one its request came on).
    /// If it has closed, an existing or new connection to `addr` is used.
    pub conn: Option<ConnId>,
    /// TLS: the host name to send as SNI and to verify the server certificate
    /// against. `None` checks the certificate against `addr`'s IP.
    pub server_name: Option<String>,
    /// The side, choosing socket, TLS profile and CA check.
    pub side: Side,
}

/// Listening addresses and limits. Bind to port 0 in tests and ask
/// [`Transports::local_addr`].
#[derive(Debug, Clone)]
pub struct TransportSettings {
    /// TLS listener for Teams (mutual TLS).
    pub teams_tls: Option<SocketAddr>,
    /// Trunk-side UDP listener; also the source of every UDP send.
    pub trunk_udp: Option<SocketAddr>,
    /// Trunk-side TCP listener.
    pub trunk_tcp: Option<SocketAddr>,
    /// Trunk-side TLS listener (server authentication only).
    pub trunk_tls: Option<SocketAddr>,
    /// Largest message accepted, datagram or stream (TDR-SIG-12: Teams sends
    /// well over 1,500 bytes). Larger stream messages close the connection.
    pub max_message_bytes: usize,
    /// A connection with no traffic either way for this long is closed.
    pub idle_timeout: Duration,
    /// A TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    /// Cap on open TCP + TLS connections, inbound and outbound together.
    pub max_connections: usize,
    /// A TCP connect must finish within this.
    pub connect_timeout: Duration,
    /// Allow TLS 1.3 toward Teams besides TLS 1.2 (TDR-SIG-02 requires 1.2;
    /// Microsoft accepts 1.3 too).
    pub teams_tls13: bool,
    /// Allow TLS 1.3 on the trunk side besides TLS 1.2.
    pub trunk_tls13: bool,
    /// Messages queued toward the core before UDP datagrams are dropped and
    /// stream connections stop being read.
    pub incoming_queue: usize,
    /// Source networks the Teams listener accepts connections from (TDR-SIG-08); `None`
    /// accepts any source.
    pub teams_allow: Option<Arc<[ipnet::IpNet]>>,
}

impl Default for TransportSettings {
    fn default() -> Self {
        Self {
            teams_tls: None,
            trunk_udp: None,
            trunk_tcp: None,
            trunk_tls: None,
            max_message_bytes: 64 * 1024,
            idle_timeout: Duration::from_secs(600),
            handshake_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            connect_timeout: Duration::from_secs(5),
            teams_tls13: true,
            trunk_tls13: true,
            incoming_queue: 4096,
            teams_allow: None,
        }
    }
}

/// Everything the tasks share.
pub(crate) struct Shared {
    settings: TransportSettings,
    table: ConnectionTable,
    tls: RwLock<Option<Arc<TlsConfigs>>>,
    metrics: TransportMetrics,
    incoming: mpsc::Sender<Incoming>,
    connection_limit: Arc<Semaphore>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    udp: Option<Arc<UdpSocket>>,
    local: HashMap<(TransportKind, Side), SocketAddr>,
    #[allow(clippy::type_complexity)]
    dialing: tokio::sync::Mutex<
        HashMap<(TransportKind, Side, SocketAddr, Option<String>), Arc<tokio::sync::Mutex<()>>>,
    >,
}

impl Shared {
    fn tls_configs(&self) -> Option<Arc<TlsConfigs>> {
        self.tls
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Handle on the running transports; clones share them.
#[derive(Clone)]
pub struct Transports {
    shared: Arc<Shared>,
}

impl fmt::Debug for Transports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transports")
            .field("local", &self.shared.local)
            .field("connections", &self.shared.table.len())
            .finish()
    }
}

impl Transports {
    /// Binds every configured listener and spawns its task; received messages
    /// arrive on the returned channel. Must be called inside a tokio runtime.
    ///
    /// Synchronous on purpose: metric handles are registered here, from the
    /// recorder current at the call (a test may wrap it in
    /// `metrics::with_local_recorder`), and binding never blocks.
    /// Tasks stop when `shutdown` is cancelled; [`Transports::closed`] waits.
    pub fn start(
        settings: TransportSettings,
        tls: Option<TlsMaterial>,
        shutdown: CancellationToken,
    ) -> Result<(Self, mpsc::Receiver<Incoming>), TransportError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TransportError::NoRuntime);
        }
        let metrics = TransportMetrics::register();
        let configs = match &tls {
            Some(material) => {
                if settings.teams_tls.is_some() && material.peer_names.is_empty() {
                    return Err(TransportError::NoPeerNames);
                }
                Some(Arc::new(TlsConfigs::build(
                    material,
                    settings.teams_tls13,
                    settings.trunk_tls13,
                )?))
            }
            None => None,
        };
        for (addr, side) in [
            (settings.teams_tls, Side::Teams),
            (settings.trunk_tls, Side::Trunk),
        ] {
            if addr.is_some() && configs.is_none() {
                return Err(TransportError::TlsNotConfigured { side });
            }
        }

        let mut local = HashMap::new();
        let mut listeners = Vec::new();
        for (addr, kind, side) in [
            (settings.teams_tls, TransportKind::Tls, Side::Teams),
            (settings.trunk_tcp, TransportKind::Tcp, Side::Trunk),
            (settings.trunk_tls, TransportKind::Tls, Side::Trunk),
        ] {
            if let Some(addr) = addr {
                let listener = tcp::bind(addr, kind)?;
                let bound = listener
                    .local_addr()
                    .map_err(|source| TransportError::Bind { kind, addr, source })?;
                local.insert((kind, side), bound);
                listeners.push((listener, kind, side));
            }
        }
        let udp = match settings.trunk_udp {
            Some(addr) => {
                let socket = udp::bind(addr)?;
                let bound = socket.local_addr().map_err(|source| TransportError::Bind {
                    kind: TransportKind::Udp,
                    addr,
                    source,
                })?;
                local.insert((TransportKind::Udp, Side::Trunk), bound);
                Some(Arc::new(socket))
            }
            None => None,
        };

        let (incoming, receiver) = mpsc::channel(settings.incoming_queue.max(1));
        let shared = Arc::new(Shared {
            connection_limit: Arc::new(Semaphore::new(settings.max_connections)),
            settings,
            table: ConnectionTable::default(),
            tls: RwLock::new(configs),
            metrics,
            incoming,
            shutdown,
            tracker: TaskTracker::new(),
            udp,
            local,
            dialing: tokio::sync::Mutex::default(),
        });
        for (listener, kind, side) in listeners {
            shared
                .tracker
                .spawn(tcp::accept_loop(Arc::clone(&shared), listener, kind, side));
        }
        if let Some(socket) = &shared.udp {
            shared.tracker.spawn(udp::recv_loop(
                Arc::clone(&shared),
                Arc::clone(socket),
                Side::Trunk,
            ));
        }
        Ok((Self { shared }, receiver))
    }

    /// The bound address of a listener (after binding to port 0).
    pub fn local_addr(&self, kind: TransportKind, side: Side) -> Option<SocketAddr> {
        self.shared.local.get(&(kind, side)).copied()
    }

    /// Sends one message. UDP goes from the listening socket. TCP/TLS uses,
    /// in order: `target.conn` if still open; an open connection to
    /// `target.addr` (or, for TLS, one whose peer certificate covers
    /// `target.server_name` from the same IP); else a new connection. Returns
    /// the connection used, for the core to pin a dialog or transaction to.
    ///
    /// Returns once the message is queued on the connection; a write error
    /// afterwards closes the connection (the transaction layer times out).
    pub async fn send(
        &self,
        target: &Target,
        data: Bytes,
    ) -> Result<Option<ConnId>, TransportError> {
        let shared = &self.shared;
        let limit = shared.settings.max_message_bytes;
        if data.len() > limit {
            return Err(TransportError::TooLarge {
                len: data.len(),
                limit,
            });
        }
        if target.transport == TransportKind::Udp {
            let socket = match (target.side, &shared.udp) {
                (Side::Trunk, Some(socket)) => socket,
                (side, _) => {
                    return Err(TransportError::NotListening {
                        kind: TransportKind::Udp,
                        side,
                    });
                }
            };
            socket.send_to(&data, target.addr).await.map_err(|source| {
                shared.metrics.error(TransportKind::Udp, ErrorReason::Io);
                TransportError::Send {
                    addr: target.addr,
                    source,
                }
            })?;
            return Ok(None);
        }

        let preferred = target
            .conn
            .and_then(|id| shared.table.get(id).map(|c| (id, c.outbox)));
        let existing = preferred.or_else(|| {
            shared
                .table
                .find(
                    target.transport,
                    target.side,
                    target.addr,
                    target.server_name.as_deref(),
                )
                .map(|(id, c)| (id, c.outbox))
        });
        let data = match existing {
            Some((id, outbox)) => match outbox.try_send(data) {
                Ok(()) => return Ok(Some(id)),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    shared
                        .metrics
                        .error(target.transport, ErrorReason::QueueFull);
                    return Err(TransportError::QueueFull { conn: id });
                }
                // Closed between lookup and send: dial afresh.
                Err(mpsc::error::TrySendError::Closed(data)) => {
                    shared.table.remove(id);
                    data
                }
            },
            None => data,
        };
        let (id, outbox) = tcp::dial(shared, target).await?;
        match outbox.try_send(data) {
            Ok(()) => Ok(Some(id)),
            Err(_) => {
                shared
                    .metrics
                    .error(target.transport, ErrorReason::QueueFull);
                Err(TransportError::QueueFull { conn: id })
            }
        }
    }

    /// Sends at once when nothing has to be waited for: a UDP datagram the socket takes now,
    /// or a message queued on an open connection. Otherwise the message comes back in
    /// [`SendNow::Later`] for [`Transports::send`], which may dial. Saves the caller a task
    /// per message on the common path (measured: a spawned task per message cost more CPU
    /// than the send itself).
    pub fn send_now(&self, target: &Target, data: Bytes) -> SendNow {
        let shared = &self.shared;
        let limit = shared.settings.max_message_bytes;
        if data.len() > limit {
            return SendNow::Failed(TransportError::TooLarge {
                len: data.len(),
                limit,
            });
        }
        if target.transport == TransportKind::Udp {
            let Some(socket) = shared.udp.as_ref().filter(|_| target.side == Side::Trunk) else {
                return SendNow::Failed(TransportError::NotListening {
                    kind: TransportKind::Udp,
                    side: target.side,
                });
            };
            return match socket.try_send_to(&data, target.addr) {
                Ok(_) => SendNow::Sent(None),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => SendNow::Later(data),
                Err(source) => {
                    shared.metrics.error(TransportKind::Udp, ErrorReason::Io);
                    SendNow::Failed(TransportError::Send {
                        addr: target.addr,
                        source,
                    })
                }
            };
        }
        let existing = target
            .conn
            .and_then(|id| shared.table.get(id).map(|c| (id, c.outbox)))
            .or_else(|| {
                shared
                    .table
                    .find(
                        target.transport,
                        target.side,
                        target.addr,
                        target.server_name.as_deref(),
                    )
                    .map(|(id, c)| (id, c.outbox))
            });
        match existing {
            Some((id, outbox)) => match outbox.try_send(data) {
                Ok(()) => SendNow::Sent(Some(id)),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    shared
                        .metrics
                        .error(target.transport, ErrorReason::QueueFull);
                    SendNow::Failed(TransportError::QueueFull { conn: id })
                }
                Err(mpsc::error::TrySendError::Closed(data)) => {
                    shared.table.remove(id);
                    SendNow::Later(data)
                }
            },
            None => SendNow::Later(data),
        }
    }

    /// Installs new TLS material (certificate renewal, TDR-SIG-06): new
    /// handshakes, inbound and outbound, use it; open connections keep theirs.
    pub fn reload_tls(&self, tls: TlsMaterial) -> Result<(), TransportError> {
        let settings = &self.shared.settings;
        if settings.teams_tls.is_some() && tls.peer_names.is_empty() {
            return Err(TransportError::NoPeerNames);
        }
        let configs = TlsConfigs::build(&tls, settings.teams_tls13, settings.trunk_tls13)?;
        *self
            .shared
            .tls
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(configs));
        Ok(())
    }

    /// Number of open TCP/TLS connections.
    pub fn connection_count(&self) -> usize {
        self.shared.table.len()
    }

    /// Waits until every transport task has ended (after `shutdown`).
    pub async fn closed(&self) {
        self.shared.tracker.close();
        self.shared.tracker.wait().await;
    }
}
