//! Commands from the signaling plane to one relay worker.
//!
//! A plain `std::sync::mpsc` channel plus a `mio::Waker`: the worker sleeps in
//! `epoll_wait`, so a command is queued first and the waker then makes the
//! poll return. Commands are rare (a few per call), packets are not; the
//! channel is only read when the waker's token shows up.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::media::ports::PairIndex;
use crate::media::session::{Changes, Session, SessionId, SessionStats};

/// Sockets of a new session, bound by the caller and owned by the worker from
/// then on.
#[derive(Debug)]
pub(crate) struct SessionSockets {
    /// Indexed by `Port as usize`: Teams, trunk RTP, trunk RTCP.
    pub(crate) sockets: [Option<std::net::UdpSocket>; 3],
    /// Pairs to hand back to the pools when the session ends.
    pub(crate) pairs: [(IpAddr, PairIndex); 2],
}

pub(crate) enum Command {
    Add {
        id: SessionId,
        session: Box<Session>,
        sockets: SessionSockets,
    },
    Update {
        id: SessionId,
        changes: Box<Changes>,
    },
    Remove {
        id: SessionId,
        reply: oneshot::Sender<SessionStats>,
    },
    Stop,
}

/// The signaling plane's end of one worker's command channel.
#[derive(Debug, Clone)]
pub(crate) struct WorkerLink {
    tx: mpsc::Sender<Command>,
    waker: Arc<mio::Waker>,
}

/// The worker has exited (shut down or panicked).
#[derive(Debug, thiserror::Error)]
#[error("media worker is gone")]
pub(crate) struct WorkerGone;

impl WorkerLink {
    pub(crate) fn new(tx: mpsc::Sender<Command>, waker: Arc<mio::Waker>) -> Self {
        WorkerLink { tx, waker }
    }

    pub(crate) fn send(&self, cmd: Command) -> Result<(), WorkerGone> {
        self.tx.send(cmd).map_err(|_| WorkerGone)?;
        self.wake().map_err(|_| WorkerGone)
    }

    fn wake(&self) -> io::Result<()> {
        self.waker.wake()
    }
}
