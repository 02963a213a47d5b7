//! The UDP listener: one socket both receives and sends, so replies leave
//! from the listening port (RFC 3261 §18.2.2 responses and symmetric-response
//! peers, RFC 3581, expect that source port).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tracing::debug;

use super::metrics::ErrorReason;
use super::{Incoming, Shared, Side, TransportError, TransportKind};

/// Largest UDP payload; a datagram is read whole or truncated by the kernel.
const MAX_DATAGRAM: usize = 65_535;

pub(crate) async fn recv_loop(shared: Arc<Shared>, socket: Arc<UdpSocket>, side: Side) {
    let Ok(local) = socket.local_addr() else {
        return;
    };
    // One receive buffer reused; each datagram is copied out at its own size
    // (a ~1 KiB memcpy), so a queued message never pins a 64 KiB block.
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            received = socket.recv_from(&mut buf) => received,
        };
        let (len, source) = match received {
            Ok(pair) => pair,
            Err(e) => {
                // ICMP port unreachable from an earlier send shows up here on
                // Linux; it says nothing about the socket itself.
                shared.metrics.error(TransportKind::Udp, ErrorReason::Io);
                debug!(error = %e, "UDP receive failed");
                continue;
            }
        };
        let Some(datagram) = buf.get(..len) else {
            continue;
        };
        if datagram.len() > shared.settings.max_message_bytes {
            shared
                .metrics
                .error(TransportKind::Udp, ErrorReason::TooLarge);
            continue;
        }
        // RFC 5626 §3.5.1 keepalives are STUN over UDP, but peers also send
        // bare CRLF: nothing to deliver.
        if datagram.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            continue;
        }
        let incoming = Incoming {
            data: Bytes::copy_from_slice(datagram),
            transport: TransportKind::Udp,
            side,
            source,
            local,
            conn: None,
            peer_name: None,
        };
        // A full queue sheds load: the peer retransmits (Timer A/E), which a
        // blocked socket could not offer the other peers.
        if shared.incoming.try_send(incoming).is_err() {
            shared
                .metrics
                .error(TransportKind::Udp, ErrorReason::QueueFull);
        }
    }
}

pub(crate) fn bind(addr: SocketAddr) -> Result<UdpSocket, TransportError> {
    let bind_error = |source| TransportError::Bind {
        kind: TransportKind::Udp,
        addr,
        source,
    };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(bind_error)?;
    // The default receive buffer (~208 KB) overflows on bursts of a few hundred requests
    // while the task is between reads, and those requests are lost to the kernel (visible as
    // drops in /proc/net/udp, then as retransmissions). The kernel caps the size at
    // net.core.rmem_max; a smaller grant is not an error.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    socket.bind(&addr.into()).map_err(bind_error)?;
    socket.set_nonblocking(true).map_err(bind_error)?;
    UdpSocket::from_std(socket.into()).map_err(bind_error)
}

/// Socket buffer asked for on SIP UDP listeners.
const UDP_BUFFER_BYTES: usize = 4 << 20;
