//! Media plane: SRTP <-> RTP relay on worker threads.
//!
//! The signaling plane holds a [`MediaPlane`] handle: it creates a session per
//! call (ports are bound right away, in the caller's thread), updates it from
//! each offer/answer (remote addresses, SDES keys, hold) and destroys it. The
//! sockets then belong to one worker thread, which relays every datagram in
//! place (see [`relay`]) and reports [`MediaEvent`]s back on a bounded channel.

mod config;
mod control;
mod counters;
mod ports;
mod relay;
pub mod sdes;
pub mod session;
pub mod srtp;
pub mod tone;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

pub use config::{MediaConfig, MediaConfigError};
pub use counters::MediaCounters;
use mio::Interest;
use mio::unix::SourceFd;
pub use ports::PortError;
pub use relay::RECV_MAX;
pub use session::{Direction, DropReason, Forwarding, Leg, SessionError, SessionId, SessionStats};
use tokio::sync::oneshot;

use control::{Command, QueueFlags, SessionSockets, WorkerLink};
use counters::WorkerCounters;
use ports::{PairIndex, PortPools};
use relay::{SlotKeys, Worker};
use session::{Changes, Port, Session, SessionTimers};
use srtp::{MasterKey, SrtpContext, SrtpError};

/// What the media plane tells the signaling plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// Nothing was received on `leg` for `silent_for` (at least
    /// `[media] timeout_s`). Raised once per silence; media resuming re-arms it.
    Timeout {
        id: SessionId,
        leg: Leg,
        silent_for: Duration,
    },
    /// The first packet from a source that is neither latched nor allowed to
    /// latch; later ones are only counted (`wrong_source`).
    UnexpectedSource {
        id: SessionId,
        leg: Leg,
        addr: SocketAddr,
    },
}

/// Local addresses of a new session, as written into SDP (the public address
/// when configured behind NAT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Allocated {
    /// Teams leg: SRTP with RTCP multiplexed (RFC 5761).
    pub teams: SocketAddr,
    /// Trunk leg RTP.
    pub trunk: SocketAddr,
    /// Trunk leg RTCP (RTP port + 1) when created without rtcp-mux.
    pub trunk_rtcp: Option<SocketAddr>,
}

/// Results of an offer/answer exchange for [`MediaPlane::update_session`];
/// `None` leaves a setting as it is.
#[derive(Default)]
pub struct SessionUpdate {
    /// Teams' media address (SDP c= and m= port).
    pub teams_remote: Option<SocketAddr>,
    /// The trunk's RTP address.
    pub trunk_remote: Option<SocketAddr>,
    /// The trunk's RTCP address (a=rtcp); RTP port + 1 when `trunk_remote`
    /// is set and this is not.
    pub trunk_remote_rtcp: Option<SocketAddr>,
    /// Whether the trunk's answer (or offer) carries a=rtcp-mux.
    pub trunk_rtcp_mux: Option<bool>,
    /// Key Teams encrypts with (its a=crypto). A new key restarts the replay
    /// window and rollover counter (re-INVITE key change).
    pub teams_inbound_key: Option<MasterKey>,
    /// Key we encrypt toward Teams with (the a=crypto we sent).
    pub teams_outbound_key: Option<MasterKey>,
    /// Hold/resume: which directions relay RTP.
    pub forwarding: Option<Forwarding>,
    /// Ringback toward the trunk during a transfer (TDR-XFR-03).
    pub ringback: Option<tone::RingbackUpdate>,
}

/// Why a media plane call failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error(transparent)]
    Config(#[from] MediaConfigError),
    #[error("starting media worker {worker}: {source}")]
    Start { worker: usize, source: io::Error },
    #[error(transparent)]
    Ports(#[from] PortError),
    #[error("media session {id} already exists")]
    DuplicateSession { id: SessionId },
    #[error("no media session {id}")]
    UnknownSession { id: SessionId },
    #[error("media session {id}: {source}")]
    Session { id: SessionId, source: SessionError },
    #[error("media session {id}: SRTP key: {source}")]
    Key { id: SessionId, source: SrtpError },
    #[error("media worker {worker} has stopped")]
    WorkerGone { worker: usize },
    #[error("media session {id}: socket not registered with its worker: {source}")]
    Register { id: SessionId, source: io::Error },
}

/// Where a live session is, as known to the signaling side.
#[derive(Debug, Clone, Copy)]
struct SessionEntry {
    worker: usize,
    slot: usize,
    /// Teams and trunk pairs, handed back to the pools when the session ends (their
    /// addresses are the configured media addresses).
    pairs: [PairIndex; 2],
    has_trunk_rtcp_port: bool,
}

/// Live sessions, and which slots of each worker they hold.
struct Sessions {
    by_id: HashMap<SessionId, SessionEntry>,
    keys: Vec<SlotKeys>,
}

struct Shared {
    config: MediaConfig,
    timers: SessionTimers,
    links: Vec<WorkerLink>,
    counters: Vec<Arc<WorkerCounters>>,
    pools: Arc<Mutex<PortPools>>,
    sessions: Mutex<Sessions>,
    next_worker: AtomicUsize,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    /// Puts a session's Teams and trunk port pairs into quarantine.
    fn release(&self, [teams, trunk]: [PairIndex; 2]) {
        let now = crate::clock::now();
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        pools.release(self.config.teams_ip, teams, now);
        pools.release(self.config.trunk_ip, trunk, now);
    }
}

/// Handle to the media plane; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct MediaPlane {
    shared: Arc<Shared>,
}

impl MediaPlane {
    /// Validates `config`, spawns the workers and returns the handle and the
    /// event receiver (bounded by `event_capacity`; when full, workers count
    /// and drop events rather than wait).
    pub fn start(
        config: &MediaConfig,
    ) -> Result<(MediaPlane, tokio::sync::mpsc::Receiver<MediaEvent>), MediaError> {
        config.validate()?;
        let (event_tx, event_rx) = tokio::sync::mpsc::channel(config.event_capacity);
        let pools = Arc::new(Mutex::new(PortPools::new(
            &[config.teams_ip, config.trunk_ip],
            config.first_rtp_port(),
            config.pair_count(),
            config.quarantine(),
        )));
        let mut links = Vec::new();
        let mut counters = Vec::new();
        let mut threads = Vec::new();
        for worker in 0..config.worker_count() {
            let start = |source| MediaError::Start { worker, source };
            let poll = mio::Poll::new().map_err(start)?;
            let waker = mio::Waker::new(poll.registry(), relay::WAKER).map_err(start)?;
            let registry = poll.registry().try_clone().map_err(start)?;
            let (tx, rx) = mpsc::channel();
            let c = Arc::new(WorkerCounters::default());
            let flags = Arc::new(QueueFlags::default());
            let w = Worker::new(poll, rx, flags.clone(), c.clone(), event_tx.clone());
            let thread = std::thread::Builder::new()
                .name(format!("media-{worker}"))
                .spawn(move || w.run())
                .map_err(start)?;
            links.push(WorkerLink::new(tx, Arc::new(waker), flags, registry));
            counters.push(c);
            threads.push(thread);
        }
        let timers = SessionTimers {
            timeout: config.timeout(),
            relatch_after: config.relatch_after(),
        };
        let shared = Shared {
            config: config.clone(),
            timers,
            links,
            counters,
            pools,
            sessions: Mutex::new(Sessions {
                by_id: HashMap::new(),
                keys: std::iter::repeat_with(SlotKeys::default)
                    .take(config.worker_count())
                    .collect(),
            }),
            next_worker: AtomicUsize::new(0),
            threads: Mutex::new(threads),
        };
        Ok((
            MediaPlane {
                shared: Arc::new(shared),
            },
            event_rx,
        ))
    }

    /// Binds the session's sockets (Teams leg; trunk RTP, plus RTCP on the
    /// next port unless `trunk_rtcp_mux`) and hands them to a worker. Pass
    /// `trunk_rtcp_mux = true` only when the trunk is known to multiplex (it
    /// offered a=rtcp-mux); when we offer it, allocate the pair and switch with
    /// [`SessionUpdate::trunk_rtcp_mux`] once the answer says so.
    pub fn create_session(
        &self,
        id: SessionId,
        trunk_rtcp_mux: bool,
    ) -> Result<Allocated, MediaError> {
        let s = &*self.shared;
        let mut sessions = s.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.by_id.contains_key(&id) {
            return Err(MediaError::DuplicateSession { id });
        }
        let now = crate::clock::now();
        let (teams, trunk) = {
            let mut pools = s.pools.lock().unwrap_or_else(PoisonError::into_inner);
            let teams = pools.bind(s.config.teams_ip, false, now)?;
            match pools.bind(s.config.trunk_ip, !trunk_rtcp_mux, now) {
                Ok(trunk) => (teams, trunk),
                Err(e) => {
                    pools.release(s.config.teams_ip, teams.pair, now);
                    return Err(e.into());
                }
            }
        };
        let teams_ip = s.config.teams_advertised_ip();
        let trunk_ip = s.config.trunk_advertised_ip();
        let allocated = Allocated {
            teams: SocketAddr::new(teams_ip, teams.port),
            trunk: SocketAddr::new(trunk_ip, trunk.port),
            trunk_rtcp: trunk
                .rtcp
                .as_ref()
                .map(|_| SocketAddr::new(trunk_ip, trunk.port.wrapping_add(1))),
        };
        let has_trunk_rtcp_port = trunk.rtcp.is_some();
        let pairs = [teams.pair, trunk.pair];
        let sockets = SessionSockets {
            sockets: [Some(teams.rtp), Some(trunk.rtp), trunk.rtcp],
        };
        let fds = sockets
            .sockets
            .each_ref()
            .map(|s| s.as_ref().map(|s| s.as_raw_fd()));
        let session = Box::new(Session::new(s.timers, trunk_rtcp_mux, has_trunk_rtcp_port));
        let worker = s.next_worker.fetch_add(1, Ordering::Relaxed) % s.links.len();
        let slot = sessions.keys[worker].take();
        let cmd = Command::Add {
            id,
            slot,
            session,
            sockets,
        };
        let link = &s.links[worker];
        if link.send(cmd).is_err() {
            // The sockets went down with the command; their pairs wait out
            // the quarantine like any other.
            sessions.keys[worker].give_back(slot);
            s.release(pairs);
            return Err(MediaError::WorkerGone { worker });
        }
        // Registered here, after the `Add` is queued, instead of by the worker:
        // no wake-up per call, and the first datagram finds the `Add` queued
        // (see `control`). The descriptors stay open: only a later `Remove`
        // from this side, or the worker stopping, closes them.
        for (port, fd) in Port::ALL.into_iter().zip(fds) {
            let Some(fd) = fd else { continue };
            let token = relay::SocketToken { slot, port }.token();
            if let Err(source) =
                link.registry()
                    .register(&mut SourceFd(&fd), token, Interest::READABLE)
            {
                let (reply, _) = oneshot::channel();
                let _ = link.send(Command::Remove { id, reply });
                sessions.keys[worker].give_back(slot);
                s.release(pairs);
                return Err(MediaError::Register { id, source });
            }
        }
        sessions.by_id.insert(
            id,
            SessionEntry {
                worker,
                slot,
                pairs,
                has_trunk_rtcp_port,
            },
        );
        Ok(allocated)
    }

    /// Applies offer/answer results. SRTP contexts are built here, in the
    /// caller's thread, so a bad key is an error now and the worker only swaps
    /// a pointer.
    pub fn update_session(&self, id: SessionId, update: SessionUpdate) -> Result<(), MediaError> {
        let entry = self.entry(id)?;
        if update.trunk_rtcp_mux == Some(false) && !entry.has_trunk_rtcp_port {
            return Err(MediaError::Session {
                id,
                source: SessionError::NoTrunkRtcpPort,
            });
        }
        let context = |key: Option<MasterKey>| {
            key.map(|k| SrtpContext::new(&k))
                .transpose()
                .map_err(|source| MediaError::Key { id, source })
        };
        let changes = Changes {
            teams_remote: update.teams_remote,
            trunk_remote: update.trunk_remote,
            trunk_remote_rtcp: update.trunk_remote_rtcp,
            trunk_rtcp_mux: update.trunk_rtcp_mux,
            teams_inbound: context(update.teams_inbound_key)?,
            teams_outbound: context(update.teams_outbound_key)?,
            forwarding: update.forwarding,
            ringback: update.ringback.and_then(|r| self.ringback_change(r)),
        };
        self.send(
            entry.worker,
            Command::Update {
                id,
                changes: Box::new(changes),
            },
        )
    }

    /// Closes the session's sockets; its ports enter quarantine now. The
    /// worker lets go of the session at its next datagram, wake-up or sweep
    /// (at most a quarter second). The returned receiver yields the session's
    /// figures then (await it, `blocking_recv()` it outside a runtime, or
    /// drop it).
    pub fn destroy_session(
        &self,
        id: SessionId,
    ) -> Result<oneshot::Receiver<SessionStats>, MediaError> {
        let stats = {
            let mut sessions = self
                .shared
                .sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let entry = sessions
                .by_id
                .remove(&id)
                .ok_or(MediaError::UnknownSession { id })?;
            let (reply, stats) = oneshot::channel();
            let sent = self.send(entry.worker, Command::Remove { id, reply });
            // Only once the `Remove` is queued: the worker empties the slot
            // before it reads an `Add` that reuses it.
            if let Some(keys) = sessions.keys.get_mut(entry.worker) {
                keys.give_back(entry.slot);
            }
            // The quarantine counts from the end of the call. The worker closes
            // the sockets at its next datagram, wake-up or sweep (a quarter
            // second at most), and a port is bound again only when that bind
            // succeeds.
            self.shared.release(entry.pairs);
            sent?;
            stats
        };
        Ok(stats)
    }

    /// Sums of all workers' counters, plus ports in use now.
    pub fn counters(&self) -> MediaCounters {
        let ports = {
            let mut pools = self
                .shared
                .pools
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            pools.ports_in_use(crate::clock::now())
        };
        MediaCounters::sum(self.shared.counters.iter().map(|c| &**c), ports)
    }

    /// Writes the current sums into the `metrics` recorder; the admin endpoint
    /// calls this before rendering /metrics.
    pub fn publish_metrics(&self) {
        self.counters().publish();
    }

    /// Stops every worker and waits for them. Sessions still open are closed
    /// without stats.
    pub fn shutdown(self) {
        self.shared.stop();
    }

    /// A ringback start gets the configured tone and a fresh stream: random SSRC, first
    /// sequence number and timestamp (RFC 3550 §5.1). None when ringback is off.
    fn ringback_change(&self, update: tone::RingbackUpdate) -> Option<session::RingbackChange> {
        let (law, to) = match update {
            tone::RingbackUpdate::Stop => return Some(session::RingbackChange::Stop),
            tone::RingbackUpdate::Start(law) => (law, tone::RingbackTo::Trunk),
            tone::RingbackUpdate::StartTowardTeams(law) => (law, tone::RingbackTo::Teams),
        };
        let mut ids = [0u8; 10];
        if aws_lc_rs::rand::fill(&mut ids).is_err() {
            tracing::warn!("no random numbers for a ringback stream; no ringback played");
            return None;
        }
        let [a, b, c, d, e, f, g, h, i, j] = ids;
        tone::Ringback::new(
            self.shared.config.ringback,
            law,
            u32::from_be_bytes([a, b, c, d]),
            u16::from_be_bytes([e, f]),
            u32::from_be_bytes([g, h, i, j]),
        )
        .map(|stream| session::RingbackChange::Start(stream, to))
    }

    fn entry(&self, id: SessionId) -> Result<SessionEntry, MediaError> {
        let sessions = self
            .shared
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        sessions
            .by_id
            .get(&id)
            .copied()
            .ok_or(MediaError::UnknownSession { id })
    }

    fn send(&self, worker: usize, cmd: Command) -> Result<(), MediaError> {
        let link = self
            .shared
            .links
            .get(worker)
            .ok_or(MediaError::WorkerGone { worker })?;
        link.send(cmd)
            .map_err(|_| MediaError::WorkerGone { worker })
    }
}

impl Shared {
    fn stop(&self) {
        for link in &self.links {
            // A worker already gone needs no stop.
            let _ = link.send(Command::Stop);
        }
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for t in threads {
            if t.join().is_err() {
                tracing::error!("media worker panicked");
            }
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop();
    }
}
