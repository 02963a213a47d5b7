//! TLS handshakes on accepted and dialled TCP connections, each bounded by
//! the handshake timeout and counted by outcome.

use std::sync::Arc;

use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tracing::{debug, info};

use super::metrics::{Direction, HandshakeFailure};
use super::stream::{StreamMeta, spawn_connection};
use super::tls::{PeerIdentity, classify};
use super::{ConnId, Shared, Side, Target, TransportError};

pub(crate) async fn accept(
    shared: &Arc<Shared>,
    tcp: TcpStream,
    mut meta: StreamMeta,
    permit: OwnedSemaphorePermit,
) {
    let Some(configs) = shared.tls_configs() else {
        return;
    };
    let config = match meta.side {
        Side::Teams => Arc::clone(&configs.teams_server),
        Side::Trunk => Arc::clone(&configs.trunk_server),
    };
    let handshake = TlsAcceptor::from(config).accept(tcp);
    let outcome = tokio::time::timeout(shared.settings.handshake_timeout, handshake).await;
    let tls = match outcome {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            let reason = classify(&e);
            shared
                .metrics
                .handshake(meta.side, Direction::Inbound, Err(reason));
            info!(peer = %meta.remote, side = ?meta.side, %reason, error = %e, "TLS handshake refused");
            return;
        }
        Err(_) => {
            shared.metrics.handshake(
                meta.side,
                Direction::Inbound,
                Err(HandshakeFailure::Timeout),
            );
            debug!(peer = %meta.remote, "TLS handshake timed out");
            return;
        }
    };
    if meta.side == Side::Teams {
        // The verifier already insisted on one of the peer names; this only
        // recovers which one, for the core and for connection reuse.
        meta.peer = PeerIdentity::from_certificates(
            tls.get_ref().1.peer_certificates(),
            &configs.peer_names,
        );
    }
    shared
        .metrics
        .handshake(meta.side, Direction::Inbound, Ok(()));
    spawn_connection(shared, tls, meta, permit);
}

pub(crate) async fn connect(
    shared: &Arc<Shared>,
    tcp: TcpStream,
    mut meta: StreamMeta,
    target: &Target,
    permit: OwnedSemaphorePermit,
) -> Result<(ConnId, mpsc::Sender<bytes::Bytes>), TransportError> {
    let configs = shared
        .tls_configs()
        .ok_or(TransportError::TlsNotConfigured { side: target.side })?;
    let config = match target.side {
        Side::Teams => Arc::clone(&configs.teams_client),
        Side::Trunk => Arc::clone(&configs.trunk_client),
    };
    // SNI = the host we dial, and the name its certificate must carry. A
    // trunk addressed by IP gets its IP checked against the certificate's
    // IP SANs instead.
    let (server_name, expected) = match &target.server_name {
        Some(host) => (
            ServerName::try_from(host.clone())
                .map_err(|_| TransportError::InvalidServerName { name: host.clone() })?,
            host.to_ascii_lowercase(),
        ),
        None => (
            ServerName::IpAddress(target.addr.ip().into()),
            target.addr.ip().to_string(),
        ),
    };
    let addr = target.addr;
    let handshake = TlsConnector::from(config).connect(server_name, tcp);
    let tls = match tokio::time::timeout(shared.settings.handshake_timeout, handshake).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(source)) => {
            let reason = classify(&source);
            shared
                .metrics
                .handshake(meta.side, Direction::Outbound, Err(reason));
            return Err(TransportError::Handshake {
                addr,
                reason,
                source,
            });
        }
        Err(_) => {
            shared.metrics.handshake(
                meta.side,
                Direction::Outbound,
                Err(HandshakeFailure::Timeout),
            );
            return Err(TransportError::HandshakeTimeout { addr });
        }
    };
    shared
        .metrics
        .handshake(meta.side, Direction::Outbound, Ok(()));
    let cert_names = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(super::names::certificate_names)
        .unwrap_or_default();
    meta.peer = Some(PeerIdentity {
        name: Arc::from(expected),
        cert_names: cert_names.into(),
    });
    Ok(spawn_connection(shared, tls, meta, permit))
}
