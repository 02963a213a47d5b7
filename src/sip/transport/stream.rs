//! One TCP or TLS connection: stream framing in, queued messages out.
//!
//! A single task owns the socket and `select!`s between reading, writing the
//! next queued message, the idle deadline and shutdown, so no lock sits
//! between the two directions.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::Instant as TokioInstant;
use tracing::debug;

use super::connections::Connection;
use super::metrics::ErrorReason;
use super::tls::PeerIdentity;
use super::{ConnId, Incoming, Shared, Side, TransportKind};
use crate::clock;
use crate::sip::framing::{Frame, FramingError, next_frame};

/// Messages queued toward one connection before `send` reports it busy (and the message is
/// dropped and counted as `queue_full`). One Teams proxy connection carries every call's
/// signaling: at 2,800 new calls/s (two messages each, a 100 and a 503, when overloaded) 256
/// lasted under 50 ms of the peer not reading, and the dropped answers left admitted calls
/// hanging. 4,096 covers about 0.7 s of that; the memory is taken only while it fills.
const OUTBOX_CAPACITY: usize = 4096;
/// Initial read buffer; grows up to the message size limit.
const READ_BUFFER: usize = 8 * 1024;
/// Most bytes joined into one write: a TLS record holds 16 KiB.
const WRITE_BATCH: usize = 16 * 1024;
/// How long a close (TLS close_notify, FIN) may take before we just drop.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// RFC 5626 §4.4.1: a double CRLF ping is answered with a single CRLF pong.
const PONG: &[u8] = b"\r\n";

pub(crate) struct StreamMeta {
    pub(crate) kind: TransportKind,
    pub(crate) side: Side,
    pub(crate) remote: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) peer: Option<PeerIdentity>,
}

/// Registers the connection in the table and runs it on its own task until
/// the peer closes, an error, the idle timeout or shutdown. The permit (one
/// of `max_connections`) is held for the connection's life.
pub(crate) fn spawn_connection<S>(
    shared: &Arc<Shared>,
    stream: S,
    meta: StreamMeta,
    permit: OwnedSemaphorePermit,
) -> (ConnId, mpsc::Sender<Bytes>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = shared.table.next_id();
    let (outbox, queue) = mpsc::channel(OUTBOX_CAPACITY);
    shared.table.insert(
        id,
        Connection {
            outbox: outbox.clone(),
            kind: meta.kind,
            side: meta.side,
            remote: meta.remote,
            peer: meta.peer.clone(),
        },
    );
    shared.metrics.connection_opened(meta.kind);
    let task_shared = Arc::clone(shared);
    shared.tracker.spawn(async move {
        let kind = meta.kind;
        let remote = meta.remote;
        let end = run(&task_shared, stream, id, meta, queue).await;
        debug!(peer = %remote, conn = %id, transport = %kind, ?end, "connection closed");
        task_shared.table.remove(id);
        task_shared.metrics.connection_closed(kind);
        drop(permit);
    });
    (id, outbox)
}

/// Why a connection ended (for the debug log and the error counter).
#[derive(Debug)]
#[expect(
    dead_code,
    reason = "the errors are read through Debug in the close log"
)]
enum End {
    PeerClosed,
    Io(std::io::Error),
    Framing(FramingError),
    IdleTimeout,
    Shutdown,
    /// The table dropped our sender or the core stopped listening.
    Abandoned,
}

async fn run<S>(
    shared: &Shared,
    mut stream: S,
    id: ConnId,
    meta: StreamMeta,
    mut queue: mpsc::Receiver<Bytes>,
) -> End
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let settings = &shared.settings;
    let peer_name = meta.peer.as_ref().map(|p| Arc::clone(&p.name));
    let idle_deadline = || TokioInstant::from_std(clock::now()) + settings.idle_timeout;
    let idle = tokio::time::sleep_until(idle_deadline());
    tokio::pin!(idle);
    let mut buf = BytesMut::with_capacity(READ_BUFFER);

    let end = loop {
        tokio::select! {
            () = shared.shutdown.cancelled() => break End::Shutdown,
            () = &mut idle => break End::IdleTimeout,
            read = stream.read_buf(&mut buf) => {
                match read {
                    Ok(0) => break End::PeerClosed,
                    Ok(_) => {}
                    Err(e) => break End::Io(e),
                }
                idle.as_mut().reset(idle_deadline());
                if let Err(end) = drain_frames(shared, &mut stream, &mut buf, id, &meta, &peer_name).await {
                    break end;
                }
            }
            next = queue.recv() => {
                let Some(data) = next else { break End::Abandoned };
                let data = with_queued(data, &mut queue);
                if let Err(e) = send_all(&mut stream, &data).await {
                    break End::Io(e);
                }
                idle.as_mut().reset(idle_deadline());
            }
        }
    };
    match &end {
        End::Io(_) => shared.metrics.error(meta.kind, ErrorReason::Io),
        End::Framing(FramingError::TooLarge { .. }) => {
            shared.metrics.error(meta.kind, ErrorReason::TooLarge);
        }
        End::Framing(_) => shared.metrics.error(meta.kind, ErrorReason::Framing),
        End::IdleTimeout => shared.metrics.error(meta.kind, ErrorReason::IdleTimeout),
        End::PeerClosed | End::Shutdown | End::Abandoned => {}
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, stream.shutdown()).await;
    end
}

/// Writes `data`, then flushes. A TLS stream (tokio-rustls) takes the plaintext once it is
/// encrypted into its own buffer and reports it written even when the socket could not take
/// all the records; without the flush those wait for the connection's next write, which may
/// never come: under load, answers sat there until the peer gave up on them.
async fn send_all<S: AsyncWrite + Unpin>(stream: &mut S, data: &[u8]) -> std::io::Result<()> {
    stream.write_all(data).await?;
    stream.flush().await
}

/// Joins what else is already queued to `first`, up to [`WRITE_BATCH`] bytes: under load one
/// write (one TLS record, one system call) then carries several messages instead of one each.
/// Order is kept; a message never waits for more to arrive.
fn with_queued(first: Bytes, queue: &mut mpsc::Receiver<Bytes>) -> Bytes {
    let Ok(second) = queue.try_recv() else {
        return first;
    };
    let mut joined = BytesMut::with_capacity(first.len() + second.len() * 4);
    joined.extend_from_slice(&first);
    joined.extend_from_slice(&second);
    while joined.len() < WRITE_BATCH {
        match queue.try_recv() {
            Ok(more) => joined.extend_from_slice(&more),
            Err(_) => break,
        }
    }
    joined.freeze()
}

/// Hands every complete frame in `buf` to the core. A framing error is fatal
/// for the connection: after a bad Content-Length the next message boundary
/// is unknowable (RFC 3261 §18.3).
async fn drain_frames<S>(
    shared: &Shared,
    stream: &mut S,
    buf: &mut BytesMut,
    id: ConnId,
    meta: &StreamMeta,
    peer_name: &Option<Arc<str>>,
) -> Result<(), End>
where
    S: AsyncWrite + Unpin,
{
    loop {
        match next_frame(buf, shared.settings.max_message_bytes) {
            Ok(None) => return Ok(()),
            Ok(Some(Frame::Message(data))) => {
                let incoming = Incoming {
                    data,
                    transport: meta.kind,
                    side: meta.side,
                    source: meta.remote,
                    local: meta.local,
                    conn: Some(id),
                    peer_name: peer_name.clone(),
                };
                // Waiting here is TCP back-pressure: we stop reading while
                // the core is behind.
                if shared.incoming.send(incoming).await.is_err() {
                    return Err(End::Abandoned);
                }
            }
            Ok(Some(Frame::Ping)) => send_all(stream, PONG).await.map_err(End::Io)?,
            Ok(Some(Frame::Pong)) => {}
            Err(e) => return Err(End::Framing(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::send_all;
    use tokio::io::{AsyncReadExt, BufWriter};

    /// A writer that keeps what it is given until flushed, as tokio-rustls does with records
    /// the socket would not take: what `send_all` wrote reaches the peer with no later write.
    #[tokio::test]
    async fn written_data_reaches_the_peer_without_a_later_write() {
        let (ours, mut peer) = tokio::io::duplex(64 * 1024);
        let mut ours = BufWriter::new(ours);
        send_all(&mut ours, b"SIP/2.0 200 OK\r\n\r\n")
            .await
            .unwrap();
        let mut got = [0u8; 18];
        tokio::time::timeout(std::time::Duration::from_secs(5), peer.read_exact(&mut got))
            .await
            .expect("the data stayed in the writer's buffer")
            .unwrap();
        assert_eq!(&got, b"SIP/2.0 200 OK\r\n\r\n");
    }
}
