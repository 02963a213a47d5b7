//! TCP listeners and dialers; TLS rides on them through `handshake`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, warn};

use super::handshake;
use super::metrics::ErrorReason;
use super::stream::{StreamMeta, spawn_connection};
use super::{ConnId, Shared, Side, Target, TransportError, TransportKind};

/// After a failed accept (EMFILE and the like) the error repeats at once;
/// pausing keeps the loop from spinning while descriptors are short.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts until shutdown. A TLS handshake runs on the connection's own task
/// so a slow peer never holds up the next accept.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    kind: TransportKind,
    side: Side,
) {
    let local = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            warn!(error = %e, "listener has no local address");
            return;
        }
    };
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (tcp, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                shared.metrics.error(kind, ErrorReason::Io);
                debug!(error = %e, %local, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if side == Side::Teams && !source_allowed(shared.settings.teams_allow.as_deref(), remote) {
            shared.metrics.error(kind, ErrorReason::SourceNotAllowed);
            debug!(peer = %remote, "connection refused: source outside [teams] allow");
            continue;
        }
        let Ok(permit) = Arc::clone(&shared.connection_limit).try_acquire_owned() else {
            shared.metrics.error(kind, ErrorReason::ConnectionLimit);
            debug!(peer = %remote, "connection refused: max_connections reached");
            continue;
        };
        // SIP messages are written whole; Nagle would only delay them.
        let _ = tcp.set_nodelay(true);
        let meta = StreamMeta {
            kind,
            side,
            remote,
            local,
            peer: None,
        };
        match kind {
            TransportKind::Tls => {
                let shared = Arc::clone(&shared);
                shared.tracker.clone().spawn(async move {
                    handshake::accept(&shared, tcp, meta, permit).await;
                });
            }
            TransportKind::Tcp | TransportKind::Udp => {
                spawn_connection(&shared, tcp, meta, permit);
            }
        }
    }
}

/// TDR-SIG-08: whether `remote` is in `allow` (`None`: no list, any source). An IPv4 peer
/// on a dual-stack listener shows as `::ffff:a.b.c.d` and is matched as IPv4.
fn source_allowed(allow: Option<&[ipnet::IpNet]>, remote: SocketAddr) -> bool {
    let ip = remote.ip().to_canonical();
    allow.is_none_or(|nets| nets.iter().any(|n| n.contains(&ip)))
}

/// Opens a new connection for `target`, once per target at a time: a burst
/// of requests toward a peer that has none waits for the first dial and then
/// shares its connection.
pub(crate) async fn dial(
    shared: &Arc<Shared>,
    target: &Target,
) -> Result<(ConnId, tokio::sync::mpsc::Sender<bytes::Bytes>), TransportError> {
    let key = (
        target.transport,
        target.side,
        target.addr,
        target.server_name.clone(),
    );
    let gate = shared
        .dialing
        .lock()
        .await
        .entry(key.clone())
        .or_default()
        .clone();
    let result = {
        let _turn = gate.lock().await;
        match shared.table.find(
            target.transport,
            target.side,
            target.addr,
            target.server_name.as_deref(),
        ) {
            Some((id, conn)) => Ok((id, conn.outbox)),
            None => open(shared, target).await,
        }
    };
    shared.dialing.lock().await.remove(&key);
    result
}

async fn open(
    shared: &Arc<Shared>,
    target: &Target,
) -> Result<(ConnId, tokio::sync::mpsc::Sender<bytes::Bytes>), TransportError> {
    let kind = target.transport;
    let permit: OwnedSemaphorePermit = Arc::clone(&shared.connection_limit)
        .try_acquire_owned()
        .map_err(|_| {
            shared.metrics.error(kind, ErrorReason::ConnectionLimit);
            TransportError::ConnectionLimit {
                limit: shared.settings.max_connections,
            }
        })?;
    let addr = target.addr;
    let tcp = match tokio::time::timeout(shared.settings.connect_timeout, TcpStream::connect(addr))
        .await
    {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(source)) => {
            shared.metrics.error(kind, ErrorReason::Io);
            return Err(TransportError::Connect { addr, source });
        }
        Err(_) => {
            shared.metrics.error(kind, ErrorReason::Io);
            return Err(TransportError::ConnectTimeout { addr });
        }
    };
    let _ = tcp.set_nodelay(true);
    let local = tcp
        .local_addr()
        .map_err(|source| TransportError::Connect { addr, source })?;
    let meta = StreamMeta {
        kind,
        side: target.side,
        remote: addr,
        local,
        peer: None,
    };
    match kind {
        TransportKind::Tls => handshake::connect(shared, tcp, meta, target, permit).await,
        TransportKind::Tcp | TransportKind::Udp => Ok(spawn_connection(shared, tcp, meta, permit)),
    }
}

/// Binds a TCP listener without awaiting (see `Transports::start`).
pub(crate) fn bind(addr: SocketAddr, kind: TransportKind) -> Result<TcpListener, TransportError> {
    let bind_error = |source| TransportError::Bind { kind, addr, source };
    let std = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    std.set_nonblocking(true).map_err(bind_error)?;
    TcpListener::from_std(std).map_err(bind_error)
}
