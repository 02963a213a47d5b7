//! Relay worker: one thread, one `mio::Poll`, a disjoint set of sockets.
//!
//! Per datagram: `recv_from` into the worker's one buffer, apply any queued
//! commands (one relaxed load when there are none), find the session by the
//! socket's token (slot index, no hashing), transform in place with
//! [`Session::handle_packet`], `send_to` from the other leg's socket. No lock,
//! no allocation, no copy. Plain nonblocking sockets: on loopback the kernel
//! path costs ~2.9 µs per relayed packet and recvmmsg/sendmmsg saved ~5 %, not
//! worth their per-socket batching with one packet per socket per 20 ms. One
//! `recvmmsg` per ready socket in place of reading until `EWOULDBLOCK` (it
//! saves the empty second read per packet) measured no different under
//! `benches/relay_load.rs` (A/B, 2026-11-25), nor does a bare forwarder with
//! no SRTP and no session logic (`--floor`): the kernel's path sets the cost.

mod slots;
mod token;

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{self, TryRecvError};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Poll};
use tokio::sync::mpsc::error::TrySendError;

use crate::clock;
use crate::media::MediaEvent;
use crate::media::control::{Command, QueueFlags, SessionSockets};
use crate::media::counters::WorkerCounters;
use crate::media::session::{Direction, DropReason, LegEvent, Outcome, Port, Session, SessionId};
use crate::media::srtp::MAX_TRAILER;
pub(crate) use slots::SlotKeys;
use slots::Slots;
use token::ReadyList;
pub(crate) use token::{SocketToken, WAKER};

/// Largest datagram relayed. A datagram that fills this is treated as
/// truncated and dropped; media packets stay well below one Ethernet MTU.
pub const RECV_MAX: usize = 2048;

/// Datagrams read from one socket before the worker turns to the next ready
/// socket (quinn's `WorkLimiter` idea: one busy peer must not starve others).
const BUDGET_PER_SOCKET: usize = 16;

/// How often silent legs are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// Ringback packets go out every 20 ms (one G.711 packet's worth).
const TONE_EVERY: Duration = Duration::from_millis(20);

/// A session and its sockets, owned by one worker.
struct Slot {
    id: SessionId,
    session: Session,
    sockets: [Option<UdpSocket>; 3],
    /// Socket is already in the ready list (edge-triggered events may repeat).
    queued: [bool; 3],
}

/// Everything one worker thread owns.
pub(crate) struct Worker {
    poll: Poll,
    commands: mpsc::Receiver<Command>,
    flags: Arc<QueueFlags>,
    /// A `Stop` was read while relaying; the loop ends at its next turn.
    stopping: bool,
    slots: Slots<Slot>,
    by_id: HashMap<SessionId, usize>,
    counters: Arc<WorkerCounters>,
    events: tokio::sync::mpsc::Sender<MediaEvent>,
    buf: Box<[u8]>,
    ready: ReadyList,
    /// Slots playing ringback, and when their next packets are due.
    ringing: Vec<usize>,
    next_tone: Instant,
}

impl Worker {
    pub(crate) fn new(
        poll: Poll,
        commands: mpsc::Receiver<Command>,
        flags: Arc<QueueFlags>,
        counters: Arc<WorkerCounters>,
        events: tokio::sync::mpsc::Sender<MediaEvent>,
    ) -> Self {
        Worker {
            poll,
            commands,
            flags,
            stopping: false,
            slots: Slots::default(),
            by_id: HashMap::new(),
            counters,
            events,
            buf: vec![0u8; RECV_MAX + MAX_TRAILER].into_boxed_slice(),
            ready: ReadyList::default(),
            ringing: Vec::new(),
            next_tone: clock::now(),
        }
    }

    /// Runs until a `Stop` command or the command channel closes.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_sweep = clock::now() + SWEEP_EVERY;
        loop {
            let now = clock::now();
            let timeout = if self.ready.is_empty() {
                let wake = if self.ringing.is_empty() {
                    next_sweep
                } else {
                    next_sweep.min(self.next_tone)
                };
                wake.saturating_duration_since(now)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != io::ErrorKind::Interrupted
            {
                tracing::error!(error = %e, "media worker poll failed; worker stops");
                return;
            }
            let now = clock::now();
            // On every wake-up, not only on the waker's token, and before the
            // events: commands come without a wake-up, and an event may be the
            // first datagram of a session whose `Add` is still queued.
            self.apply_commands(now);
            for ev in &events {
                if let Some(t) = SocketToken::from_token(ev.token()) {
                    self.mark_ready(t);
                }
            }
            self.relay_ready(now);
            if self.stopping {
                return;
            }
            if !self.ringing.is_empty() && now >= self.next_tone {
                self.play_ringback();
                // A late turn (a busy worker) skips the packets it missed rather than
                // sending a burst to catch up.
                self.next_tone = if now >= self.next_tone + TONE_EVERY {
                    now + TONE_EVERY
                } else {
                    self.next_tone + TONE_EVERY
                };
            }
            if now >= next_sweep {
                // Unconditionally here: this also notices a signaling side that
                // went away without `Stop` (its flags are never set again).
                self.drain_commands(now);
                if self.stopping {
                    return;
                }
                self.sweep(now);
                next_sweep = now + SWEEP_EVERY;
            }
        }
    }

    fn mark_ready(&mut self, t: SocketToken) {
        if let Some(slot) = self.slots.get_mut(t.slot) {
            let queued = &mut slot.queued[t.port as usize];
            if !*queued {
                *queued = true;
                self.ready.push(t);
            }
        }
    }

    /// One round over the ready sockets; those that still had data after
    /// their budget stay queued for the next round.
    fn relay_ready(&mut self, now: Instant) {
        for _ in 0..self.ready.len() {
            if self.stopping {
                return;
            }
            let Some(t) = self.ready.pop() else { break };
            let drained = self.relay_socket(t, now);
            if let Some(slot) = self.slots.get_mut(t.slot) {
                if drained {
                    slot.queued[t.port as usize] = false;
                } else {
                    self.ready.push(t);
                }
                drain_events(slot, &self.events, &self.counters);
            }
        }
    }

    /// Reads up to the budget from one socket. True when it would block, or
    /// the socket is gone.
    fn relay_socket(&mut self, t: SocketToken, now: Instant) -> bool {
        let direction = match t.port {
            Port::Teams => Direction::TeamsToTrunk,
            Port::TrunkRtp | Port::TrunkRtcp => Direction::TrunkToTeams,
        };
        for _ in 0..BUDGET_PER_SOCKET {
            let Some(slot) = self.slots.get(t.slot) else {
                return true;
            };
            let Some(sock) = slot.sockets[t.port as usize].as_ref() else {
                return true;
            };
            let id = slot.id;
            let (len, src) = match sock.recv_from(&mut self.buf[..RECV_MAX]) {
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                // ICMP errors queued on the socket (e.g. port unreachable from an
                // earlier send) surface here; the next read goes on.
                Err(_) => continue,
            };
            self.counters.received(direction, len);
            // An update queued before this datagram was sent (a new key, hold)
            // must apply to it; a removal may take its session.
            self.apply_commands(now);
            let Some(slot) = self.slots.get_mut(t.slot).filter(|s| s.id == id) else {
                self.counters.dropped(DropReason::NoSession);
                return true;
            };
            if len >= RECV_MAX {
                self.counters.dropped(DropReason::TooLong);
                continue;
            }
            relay_datagram(slot, t.port, &mut self.buf, len, src, &self.counters, now);
            if self.stopping {
                return true;
            }
        }
        false
    }

    fn apply_commands(&mut self, now: Instant) {
        if self.flags.take_pending() {
            self.drain_commands(now);
        }
    }

    /// Sets `stopping` on `Stop` or when the signaling side is gone.
    fn drain_commands(&mut self, now: Instant) {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Add {
                    id,
                    slot,
                    session,
                    sockets,
                }) => self.add(id, slot, *session, sockets),
                Ok(Command::Update { id, changes }) => {
                    let Some(&key) = self.by_id.get(&id) else {
                        continue;
                    };
                    let Some(slot) = self.slots.get_mut(key) else {
                        continue;
                    };
                    if let Err(e) = slot.session.apply(*changes, now) {
                        tracing::warn!(session = id, error = %e, "media update refused");
                    }
                    if slot.session.is_ringing() && !self.ringing.contains(&key) {
                        if self.ringing.is_empty() {
                            self.next_tone = now;
                        }
                        self.ringing.push(key);
                    }
                }
                Ok(Command::Remove { id, reply }) => {
                    if let Some(stats) = self.remove(id) {
                        // The caller may have stopped waiting; nothing to do then.
                        let _ = reply.send(stats);
                    }
                }
                Ok(Command::Stop) | Err(TryRecvError::Disconnected) => {
                    self.stopping = true;
                    return;
                }
                Err(TryRecvError::Empty) => return,
            }
        }
    }

    /// The sockets are already in this worker's epoll set under `key`.
    fn add(&mut self, id: SessionId, key: usize, session: Session, sockets: SessionSockets) {
        let slot = Slot {
            id,
            session,
            sockets: sockets.sockets.map(|s| s.map(UdpSocket::from_std)),
            queued: [false; 3],
        };
        if let Some(old) = self.slots.insert(key, slot) {
            // Cannot happen while keys come from one `SlotKeys`; if it did,
            // the session that was there must still close its sockets.
            tracing::error!(
                session = id,
                slot = key,
                old = old.id,
                "media slot was taken"
            );
            self.by_id.remove(&old.id);
            Self::release(old);
        }
        self.by_id.insert(id, key);
        self.counters.set_sessions(self.slots.len());
    }

    fn remove(&mut self, id: SessionId) -> Option<crate::media::SessionStats> {
        let key = self.by_id.remove(&id)?;
        let slot = self.slots.remove(key)?;
        self.ready.forget_slot(key);
        let stats = slot.session.stats();
        // Counted before the caller gets the stats: whoever waited for them
        // then sees the session gone from the gauge too.
        self.counters.set_sessions(self.slots.len());
        Self::release(slot);
        Some(stats)
    }

    /// Closes the slot's sockets. Their ports went into quarantine when the
    /// signaling side ended the session.
    fn release(slot: Slot) {
        // No deregistering: epoll forgets a descriptor when its last copy
        // closes, and these are never duplicated (opened close-on-exec, never
        // `dup`ed), while mio's epoll registry keeps no state of its own. That
        // saves an `epoll_ctl` per socket, three per call.
        drop(slot.sockets);
    }

    /// One packet of ringback for every ringing session, from the socket of the leg it plays
    /// to. Slots that stopped ringing (or whose session went) leave the list here.
    fn play_ringback(&mut self) {
        let (slots, buf, counters) = (&mut self.slots, &mut self.buf, &self.counters);
        self.ringing.retain(|&key| {
            let Some(slot) = slots.get_mut(key) else {
                return false;
            };
            if !slot.session.is_ringing() {
                return false;
            }
            if let Some((to, len, port)) = slot.session.ringback_packet(buf)
                && let Some(sock) = slot.sockets[port as usize].as_ref()
            {
                match sock.send_to(&buf[..len], to) {
                    Ok(_) => counters.ringback_sent(),
                    Err(_) => counters.dropped(DropReason::SendFailed),
                }
            }
            true
        });
    }

    fn sweep(&mut self, now: Instant) {
        for slot in self.slots.iter_mut() {
            slot.session.handle_timeout(now);
            drain_events(slot, &self.events, &self.counters);
        }
    }
}

/// Turns one datagram of `port` around in place and sends it on.
fn relay_datagram(
    slot: &mut Slot,
    port: Port,
    buf: &mut [u8],
    len: usize,
    src: std::net::SocketAddr,
    counters: &WorkerCounters,
    now: Instant,
) {
    match slot.session.handle_packet(port, buf, len, src, now) {
        Outcome::Forward {
            via,
            to,
            len,
            direction,
        } => {
            let sent = slot.sockets[via as usize]
                .as_ref()
                .map(|out| out.send_to(&buf[..len], to));
            match sent {
                Some(Ok(_)) => counters.sent(direction, len),
                // Real-time media is not queued: a full send buffer or an
                // unreachable peer loses this packet only.
                Some(Err(_)) | None => {
                    slot.session.unsend(direction, len);
                    counters.dropped(DropReason::SendFailed);
                }
            }
        }
        Outcome::Drop(reason) => counters.dropped(reason),
    }
}

fn drain_events(
    slot: &mut Slot,
    events: &tokio::sync::mpsc::Sender<MediaEvent>,
    counters: &WorkerCounters,
) {
    while let Some(ev) = slot.session.poll_event() {
        let id = slot.id;
        let ev = match ev {
            LegEvent::Timeout { leg, silent_for } => MediaEvent::Timeout {
                id,
                leg,
                silent_for,
            },
            LegEvent::UnexpectedSource { leg, addr } => {
                MediaEvent::UnexpectedSource { id, leg, addr }
            }
        };
        match events.try_send(ev) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => counters.event_dropped(),
        }
    }
}
