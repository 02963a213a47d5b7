//! Commands from the signaling plane to one relay worker.
//!
//! A plain `std::sync::mpsc` channel, a `mio::Waker`, and two flags. Waking a
//! sleeping worker costs a context switch on its core (tens of µs of CPU per
//! call on a VM, where it is an IPI), so only commands that cannot wait wake
//! it: `Stop` always, `Add` only while the worker sleeps (a new session's
//! sockets are not polled before it lands). Updates and removals only mark
//! the queue: the worker applies queued commands after every datagram it
//! reads and before handling it (a packet sent after an update is read after
//! the update was queued, so it always sees it), on every wake-up, and at its
//! sweep, so timers and stats see them within a sweep.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

impl Command {
    fn wake(&self) -> Wake {
        match self {
            Command::Stop => Wake::Always,
            Command::Add { .. } => Wake::IfAsleep,
            Command::Update { .. } | Command::Remove { .. } => Wake::Never,
        }
    }
}

enum Wake {
    Always,
    IfAsleep,
    Never,
}

/// Flags shared by a worker and its link. Both are read and written SeqCst:
/// the worker sets `asleep` then reads `pending`, a sender sets `pending` then
/// reads `asleep`, so at least one of them sees the other and no `Add` waits
/// for a sweep.
#[derive(Debug, Default)]
pub(crate) struct QueueFlags {
    pending: AtomicBool,
    asleep: AtomicBool,
}

impl QueueFlags {
    /// Called by the worker right before `epoll_wait`; true when commands are
    /// already waiting (then it must not sleep).
    pub(crate) fn going_to_sleep(&self) -> bool {
        self.asleep.store(true, Ordering::SeqCst);
        self.pending.load(Ordering::SeqCst)
    }

    pub(crate) fn awake(&self) {
        self.asleep.store(false, Ordering::SeqCst);
    }

    /// Clears the mark; true when commands were queued since the last call.
    /// The worker drains the channel after a true answer, so a command queued
    /// between the two is drained now or marks the queue again.
    pub(crate) fn take_pending(&self) -> bool {
        // A relaxed load first keeps the per-datagram check a plain read of
        // a line nobody writes, except when a command has just come.
        self.pending.load(Ordering::Relaxed) && self.pending.swap(false, Ordering::SeqCst)
    }
}

/// The signaling plane's end of one worker's command channel.
#[derive(Debug, Clone)]
pub(crate) struct WorkerLink {
    tx: mpsc::Sender<Command>,
    waker: Arc<mio::Waker>,
    flags: Arc<QueueFlags>,
}

/// The worker has exited (shut down or panicked).
#[derive(Debug, thiserror::Error)]
#[error("media worker is gone")]
pub(crate) struct WorkerGone;

impl WorkerLink {
    pub(crate) fn new(
        tx: mpsc::Sender<Command>,
        waker: Arc<mio::Waker>,
        flags: Arc<QueueFlags>,
    ) -> Self {
        WorkerLink { tx, waker, flags }
    }

    pub(crate) fn send(&self, cmd: Command) -> Result<(), WorkerGone> {
        let wake = cmd.wake();
        self.tx.send(cmd).map_err(|_| WorkerGone)?;
        self.flags.pending.store(true, Ordering::SeqCst);
        let wake = match wake {
            Wake::Always => true,
            Wake::IfAsleep => self.flags.asleep.load(Ordering::SeqCst),
            Wake::Never => false,
        };
        if wake {
            self.wake().map_err(|_| WorkerGone)?;
        }
        Ok(())
    }

    fn wake(&self) -> io::Result<()> {
        self.waker.wake()
    }
}
