//! The table of open TCP/TLS connections, for reuse.
//!
//! RFC 3261 §18.2.2 sends a response back on the connection its request came
//! on, so connections are found by id first. Requests look for a connection
//! to the same remote address (one we opened, or one the peer opened from
//! that exact address). For TLS, a connection whose peer proved, with a
//! certificate, a name covering the target host at the target's IP is reused
//! too: Microsoft proxies connect from ephemeral ports, and a request toward
//! `sip.pstnhub.microsoft.com:5061` should ride the connection that proxy
//! already opened (TDR-SIG-10 asks us to accept that, not to depend on it).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::tls::PeerIdentity;
use super::{ConnId, Side, TransportKind};

/// What the table knows of one connection; the socket itself is owned by the
/// connection's task, reached through `outbox`.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    pub(crate) outbox: mpsc::Sender<Bytes>,
    pub(crate) kind: TransportKind,
    pub(crate) side: Side,
    pub(crate) remote: SocketAddr,
    pub(crate) peer: Option<PeerIdentity>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<ConnId, Connection>,
    /// Latest connection per (transport, side, remote address).
    by_addr: HashMap<(TransportKind, Side, SocketAddr), ConnId>,
}

#[derive(Default)]
pub(crate) struct ConnectionTable {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
}

impl ConnectionTable {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere cannot leave the maps half-updated (each method
        // is a few map operations), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn next_id(&self) -> ConnId {
        ConnId(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    pub(crate) fn insert(&self, id: ConnId, conn: Connection) {
        let mut inner = self.lock();
        inner
            .by_addr
            .insert((conn.kind, conn.side, conn.remote), id);
        inner.by_id.insert(id, conn);
    }

    pub(crate) fn remove(&self, id: ConnId) {
        let mut inner = self.lock();
        if let Some(conn) = inner.by_id.remove(&id) {
            let key = (conn.kind, conn.side, conn.remote);
            if inner.by_addr.get(&key) == Some(&id) {
                inner.by_addr.remove(&key);
            }
        }
    }

    pub(crate) fn get(&self, id: ConnId) -> Option<Connection> {
        self.lock().by_id.get(&id).cloned()
    }

    /// A connection a request toward `addr` (and, for TLS, `host`) may use.
    pub(crate) fn find(
        &self,
        kind: TransportKind,
        side: Side,
        addr: SocketAddr,
        host: Option<&str>,
    ) -> Option<(ConnId, Connection)> {
        let inner = self.lock();
        let exact = inner
            .by_addr
            .get(&(kind, side, addr))
            .and_then(|id| Some((*id, inner.by_id.get(id)?)));
        if let Some((id, conn)) = exact {
            // Dialled by IP earlier but now asked for a name: only reuse
            // when the peer's certificate covers that name.
            let name_ok = match (kind, host, &conn.peer) {
                (TransportKind::Tls, Some(host), Some(peer)) => peer.covers(host),
                (TransportKind::Tls, Some(_), None) => false,
                _ => true,
            };
            if name_ok {
                return Some((id, conn.clone()));
            }
        }
        let host = host.filter(|_| kind == TransportKind::Tls)?;
        // Linear in the number of connections, only for TLS requests with no
        // exact match: a handful of Microsoft proxies per SBC.
        inner
            .by_id
            .iter()
            .filter(|(_, c)| c.kind == kind && c.side == side && c.remote.ip() == addr.ip())
            .find(|(_, c)| c.peer.as_ref().is_some_and(|p| p.covers(host)))
            .map(|(id, c)| (*id, c.clone()))
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().by_id.len()
    }
}
