//! Commands from the signaling plane to one relay worker.
//!
//! A plain `std::sync::mpsc` channel, a `mio::Waker`, and a counter. Waking a
//! sleeping worker costs a context switch on its core (tens of µs of CPU per
//! call on a VM, where it is an IPI), so only `Stop` wakes it, and a queue
//! that has grown to [`WAKE_AFTER`] commands. A new
//! session's sockets are put in the worker's epoll set by the signaling side
//! itself, after its `Add` is queued, so the session's first datagram is what
//! wakes the worker, and it applies the queued `Add` before looking at any
//! event. Updates and removals only mark the queue: the worker applies queued
//! commands after every datagram it reads and before handling it (a packet
//! sent after an update is read after the update was queued, so it always
//! sees it), on every wake-up, and at its sweep, so timers and stats see them
//! within a sweep.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use tokio::sync::oneshot;

use crate::media::session::{Changes, Session, SessionId, SessionStats};

/// Sockets of a new session, bound by the caller and owned by the worker from
/// then on.
#[derive(Debug)]
pub(crate) struct SessionSockets {
    /// Indexed by `Port as usize`: Teams, trunk RTP, trunk RTCP.
    pub(crate) sockets: [Option<std::net::UdpSocket>; 3],
}

pub(crate) enum Command {
    Add {
        id: SessionId,
        /// The worker's slot for it, chosen by the signaling side: its
        /// sockets are registered under tokens naming this slot.
        slot: usize,
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

/// Commands queued since the worker last drained the queue: counted up by a
/// sender, reset by the worker.
#[derive(Debug, Default)]
pub(crate) struct QueueFlags {
    pending: AtomicUsize,
}

/// Queued commands after which a sender wakes an idle worker anyway. Each
/// holds boxed session state (a new session's SRTP contexts are kilobytes)
/// until the worker takes it: at a few hundred calls/s, a quarter second of
/// them is megabytes, so they are not left for the sweep. A wake-up per this
/// many commands costs a small share of one per call.
const WAKE_AFTER: usize = 16;

impl QueueFlags {
    /// Clears the count; true when commands were queued since the last call.
    /// The worker drains the channel after a true answer, so a command queued
    /// between the two is drained now or counts again.
    pub(crate) fn take_pending(&self) -> bool {
        // A relaxed load first keeps the per-datagram check a plain read of
        // a line nobody writes, except when a command has just come.
        self.pending.load(Ordering::Relaxed) != 0 && self.pending.swap(0, Ordering::SeqCst) != 0
    }
}

/// The signaling plane's end of one worker's command channel.
#[derive(Debug, Clone)]
pub(crate) struct WorkerLink {
    tx: mpsc::Sender<Command>,
    waker: Arc<mio::Waker>,
    flags: Arc<QueueFlags>,
    registry: Arc<mio::Registry>,
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
        registry: mio::Registry,
    ) -> Self {
        WorkerLink {
            tx,
            waker,
            flags,
            registry: Arc::new(registry),
        }
    }

    /// Queues `cmd`; wakes the worker for `Stop`, and once when
    /// [`WAKE_AFTER`] commands wait.
    pub(crate) fn send(&self, cmd: Command) -> Result<(), WorkerGone> {
        let stop = matches!(cmd, Command::Stop);
        self.tx.send(cmd).map_err(|_| WorkerGone)?;
        // SeqCst, and before any registration of the command's sockets: an
        // event from them is only seen after this count is.
        let queued = self.flags.pending.fetch_add(1, Ordering::SeqCst) + 1;
        if stop || queued == WAKE_AFTER {
            self.waker.wake().map_err(|_| WorkerGone)?;
        }
        Ok(())
    }

    /// The worker's epoll set, for registering a new session's sockets.
    pub(crate) fn registry(&self) -> &mio::Registry {
        &self.registry
    }
}
