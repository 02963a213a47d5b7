//! One call's media: the Teams leg (SRTP, rtcp-mux) and the trunk leg (RTP,
//! rtcp-mux or an RTP/RTCP port pair). Pure: packets, updates and time go in,
//! a forwarding decision and events come out. The relay worker owns the
//! sockets and calls [`Session::handle_packet`] for every datagram; tests and
//! benches call the very same function.

mod latch;
mod stats;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use latch::{Latch, LatchRule, SourceCheck};
use stats::SeqTracker;
pub use stats::{DirectionStats, SessionStats};

use crate::media::srtp::{self, SrtpContext, SrtpError};
use crate::media::tone::{Ringback, RingbackTo};

/// Caller-chosen identifier of a session (the B2BUA's call handle).
pub type SessionId = u64;

/// RTP fixed header size (RFC 3550 §5.1); RTCP's is 8, checked by the SRTP layer.
const RTP_HEADER_LEN: usize = 12;

/// The two sides of the SBC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Leg {
    /// Toward Microsoft Teams media processors: SRTP.
    Teams,
    /// Toward the contact-center trunk: RTP.
    Trunk,
}

/// Which socket of a session a datagram came in on or leaves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The Teams leg's only socket (RTP and RTCP multiplexed, RFC 5761).
    Teams = 0,
    /// The trunk leg's RTP socket (and RTCP too when multiplexed).
    TrunkRtp = 1,
    /// The trunk leg's RTCP socket (RTP port + 1) when not multiplexed.
    TrunkRtcp = 2,
}

impl Port {
    /// All ports, indexable by `port as usize`.
    pub const ALL: [Port; 3] = [Port::Teams, Port::TrunkRtp, Port::TrunkRtcp];
}

/// Relay direction, for counters and stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// SRTP in from Teams, RTP out to the trunk.
    TeamsToTrunk = 0,
    /// RTP in from the trunk, SRTP out to Teams.
    TrunkToTeams = 1,
}

impl Direction {
    /// Both directions, indexable by `direction as usize`.
    pub const ALL: [Direction; 2] = [Direction::TeamsToTrunk, Direction::TrunkToTeams];

    /// Metric label value.
    pub fn label(self) -> &'static str {
        match self {
            Direction::TeamsToTrunk => "teams_to_trunk",
            Direction::TrunkToTeams => "trunk_to_teams",
        }
    }
}

/// Why a datagram was not relayed. Bounded set: each is a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than an RTP/RTCP header.
    TooShort = 0,
    /// Filled the receive buffer: possibly truncated.
    TooLong,
    /// Not RTP version 2 (e.g. STUN, garbage).
    NotRtp,
    /// SRTP/SRTCP authentication tag did not verify.
    Auth,
    /// SRTP/SRTCP index already seen or too old (RFC 3711 §3.3.2).
    Replay,
    /// Any other SRTP failure (bad MKI, unusable packet).
    Srtp,
    /// No SRTP key yet for this direction.
    NoKey,
    /// Source other than the latched one (or the signaled one, on the trunk).
    WrongSource,
    /// Nowhere to send: no address signaled or learned on the other leg.
    NoRemote,
    /// The direction is on hold (RTP only; RTCP keeps flowing, RFC 3264 §5.1).
    OnHold,
    /// The kernel refused the send (buffer full, unreachable).
    SendFailed,
    /// The socket has no session any more (late packet after destroy).
    NoSession,
}

impl DropReason {
    /// All reasons, indexable by `reason as usize`.
    pub const ALL: [DropReason; 12] = [
        DropReason::TooShort,
        DropReason::TooLong,
        DropReason::NotRtp,
        DropReason::Auth,
        DropReason::Replay,
        DropReason::Srtp,
        DropReason::NoKey,
        DropReason::WrongSource,
        DropReason::NoRemote,
        DropReason::OnHold,
        DropReason::SendFailed,
        DropReason::NoSession,
    ];

    /// Metric label value.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::TooShort => "too_short",
            DropReason::TooLong => "too_long",
            DropReason::NotRtp => "not_rtp",
            DropReason::Auth => "auth",
            DropReason::Replay => "replay",
            DropReason::Srtp => "srtp",
            DropReason::NoKey => "no_key",
            DropReason::WrongSource => "wrong_source",
            DropReason::NoRemote => "no_remote",
            DropReason::OnHold => "on_hold",
            DropReason::SendFailed => "send_failed",
            DropReason::NoSession => "no_session",
        }
    }

    fn from_srtp(e: &SrtpError) -> Self {
        match e.reason() {
            "auth" => DropReason::Auth,
            "replay" => DropReason::Replay,
            "too_short" => DropReason::TooShort,
            "too_old" => DropReason::Replay,
            _ => DropReason::Srtp,
        }
    }
}

/// Result of [`Session::handle_packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Send `buf[..len]` from this session's `via` socket to `to`.
    Forward {
        via: Port,
        to: SocketAddr,
        len: usize,
        direction: Direction,
    },
    /// Drop the datagram.
    Drop(DropReason),
}

/// Something the signaling plane should know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegEvent {
    /// Nothing accepted on `leg` for `silent_for` (raised once per silence).
    Timeout { leg: Leg, silent_for: Duration },
    /// First packet from a source that is neither latched nor may latch.
    UnexpectedSource { leg: Leg, addr: SocketAddr },
}

/// Which directions carry RTP (hold/resume from the SDP direction attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarding {
    /// Relay RTP from Teams to the trunk.
    pub teams_to_trunk: bool,
    /// Relay RTP from the trunk to Teams.
    pub trunk_to_teams: bool,
}

impl Default for Forwarding {
    fn default() -> Self {
        Forwarding {
            teams_to_trunk: true,
            trunk_to_teams: true,
        }
    }
}

/// Timers shared by all sessions (from `MediaConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionTimers {
    /// Silence after which a leg raises [`LegEvent::Timeout`]; None = never.
    pub timeout: Option<Duration>,
    /// Silence after which a latched socket may latch onto a new source.
    pub relatch_after: Option<Duration>,
}

/// Changes from an offer/answer exchange; `None` fields stay as they are.
#[derive(Default)]
pub struct Changes {
    /// Teams' media address from its SDP (c= and m= port).
    pub teams_remote: Option<SocketAddr>,
    /// The trunk's RTP address from its SDP.
    pub trunk_remote: Option<SocketAddr>,
    /// The trunk's RTCP address (a=rtcp, RFC 3605); RTP port + 1 when absent.
    pub trunk_remote_rtcp: Option<SocketAddr>,
    /// Whether the trunk accepted rtcp-mux (RFC 5761).
    pub trunk_rtcp_mux: Option<bool>,
    /// Decrypts what Teams sends (the key from Teams' a=crypto). A new context
    /// starts a fresh replay window and rollover counter.
    pub teams_inbound: Option<SrtpContext>,
    /// Encrypts what goes to Teams (the key we offered or answered).
    pub teams_outbound: Option<SrtpContext>,
    /// Hold/resume.
    pub forwarding: Option<Forwarding>,
    /// Ringback toward the trunk during a transfer.
    pub ringback: Option<RingbackChange>,
}

/// Starts or stops a ringback stream toward one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingbackChange {
    /// Play this stream; a session already ringing keeps its stream.
    Start(Ringback, RingbackTo),
    Stop,
}

/// Why [`Session::apply`] refused changes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    /// rtcp-mux turned off but no RTCP socket was allocated at creation.
    #[error("trunk leg has no RTCP port: the session was created with rtcp-mux")]
    NoTrunkRtcpPort,
}

/// One leg's liveness for the timeout event.
#[derive(Debug, Clone, Copy, Default)]
struct Liveness {
    /// Last accepted packet, or when the leg got a remote address.
    since: Option<Instant>,
    timed_out: bool,
}

/// A call's two legs.
pub struct Session {
    timers: SessionTimers,
    teams: Latch,
    trunk_rtp: Latch,
    trunk_rtcp: Latch,
    trunk_rtcp_mux: bool,
    has_trunk_rtcp_port: bool,
    teams_inbound: Option<SrtpContext>,
    teams_outbound: Option<SrtpContext>,
    forwarding: Forwarding,
    liveness: [Liveness; 2],
    stats: SessionStats,
    seq: [SeqTracker; 2],
    /// Fixed-size so raising an event never allocates; the worker drains it
    /// after every call.
    events: [Option<LegEvent>; 4],
    /// The tone the worker plays to the trunk while this is set.
    ringback: Option<(Ringback, RingbackTo)>,
}

impl Session {
    /// A session whose trunk leg multiplexes RTCP, or has a separate RTCP port
    /// when `has_trunk_rtcp_port`.
    pub fn new(timers: SessionTimers, trunk_rtcp_mux: bool, has_trunk_rtcp_port: bool) -> Self {
        Session {
            timers,
            teams: Latch::new(LatchRule::AnyAuthenticated),
            trunk_rtp: Latch::new(LatchRule::SignaledElseAny),
            trunk_rtcp: Latch::new(LatchRule::SignaledElseAny),
            trunk_rtcp_mux: trunk_rtcp_mux || !has_trunk_rtcp_port,
            has_trunk_rtcp_port,
            teams_inbound: None,
            teams_outbound: None,
            forwarding: Forwarding::default(),
            liveness: [Liveness::default(); 2],
            stats: SessionStats::default(),
            seq: [SeqTracker::default(); 2],
            events: [None; 4],
            ringback: None,
        }
    }

    /// Applies offer/answer results. A new remote address re-opens latching
    /// on that socket and starts the leg's silence clock.
    pub fn apply(&mut self, changes: Changes, now: Instant) -> Result<(), SessionError> {
        if changes.trunk_rtcp_mux == Some(false) && !self.has_trunk_rtcp_port {
            return Err(SessionError::NoTrunkRtcpPort);
        }
        if let Some(mux) = changes.trunk_rtcp_mux {
            self.trunk_rtcp_mux = mux;
        }
        if let Some(addr) = changes.teams_remote {
            self.teams.set_advertised(addr);
            self.arm(Leg::Teams, now);
        }
        if let Some(addr) = changes.trunk_remote {
            self.trunk_rtp.set_advertised(addr);
            if changes.trunk_remote_rtcp.is_none() {
                // RFC 3605 §2.1: without a=rtcp, RTCP is on the RTP port + 1.
                let rtcp = SocketAddr::new(addr.ip(), addr.port().wrapping_add(1));
                self.trunk_rtcp.set_advertised(rtcp);
            }
            self.arm(Leg::Trunk, now);
        }
        if let Some(addr) = changes.trunk_remote_rtcp {
            self.trunk_rtcp.set_advertised(addr);
        }
        if let Some(ctx) = changes.teams_inbound {
            self.teams_inbound = Some(ctx);
        }
        if let Some(ctx) = changes.teams_outbound {
            self.teams_outbound = Some(ctx);
        }
        if let Some(f) = changes.forwarding {
            self.forwarding = f;
        }
        match changes.ringback {
            Some(RingbackChange::Start(stream, to)) => {
                // Each 18x of the transfer asks again; the stream goes on unbroken.
                self.ringback.get_or_insert((stream, to));
            }
            Some(RingbackChange::Stop) => self.ringback = None,
            None => {}
        }
        Ok(())
    }

    pub fn is_ringing(&self) -> bool {
        self.ringback.is_some()
    }

    /// The next 20 ms of ringback written into `buf`, with where to send it and from which
    /// port: the trunk's RTP address as RTP, or Teams' as SRTP (`buf` needs room for the
    /// tag). None when not ringing, or the leg's address or key is not known.
    pub fn ringback_packet(&mut self, buf: &mut [u8]) -> Option<(SocketAddr, usize, Port)> {
        let (stream, to) = self.ringback.as_mut()?;
        match to {
            RingbackTo::Trunk => {
                let dest = self.trunk_rtp.destination()?;
                let len = stream.next_packet(buf)?;
                Some((dest, len, Port::TrunkRtp))
            }
            RingbackTo::Teams => {
                let dest = self.teams.destination()?;
                let ctx = self.teams_outbound.as_mut()?;
                let len = stream.next_packet(buf)?;
                let len = ctx.protect_rtp(buf, len).ok()?;
                Some((dest, len, Port::Teams))
            }
        }
    }

    fn ringing_toward(&self, leg: RingbackTo) -> bool {
        self.ringback.is_some_and(|(_, to)| to == leg)
    }

    fn arm(&mut self, leg: Leg, now: Instant) {
        let l = &mut self.liveness[leg as usize];
        l.since = Some(now);
        l.timed_out = false;
    }

    /// Relays one datagram in place. `buf[..len]` holds it as received; `buf`
    /// must have at least `srtp::MAX_TRAILER` bytes after `len` for the tag
    /// added toward Teams. On `Forward`, send `buf[..len]` of the outcome.
    pub fn handle_packet(
        &mut self,
        port: Port,
        buf: &mut [u8],
        len: usize,
        src: SocketAddr,
        now: Instant,
    ) -> Outcome {
        let Some(packet) = buf.get(..len) else {
            return Outcome::Drop(DropReason::TooLong);
        };
        if packet.len() < 8 {
            return Outcome::Drop(DropReason::TooShort);
        }
        // RFC 3550 §5.1: version 2 in the top two bits; STUN and others differ.
        if packet[0] >> 6 != 2 {
            return Outcome::Drop(DropReason::NotRtp);
        }
        // RFC 5761 §4: payload types 64-95 on a shared port are RTCP. A
        // separate RTCP port carries RTCP only.
        let rtcp = port == Port::TrunkRtcp || srtp::is_rtcp(packet);
        if !rtcp && packet.len() < RTP_HEADER_LEN {
            return Outcome::Drop(DropReason::TooShort);
        }
        // Plain RTP from the trunk is checked whole before we encrypt it for Teams: CSRC
        // count, extension and padding lengths must fit the packet (RFC 3550 §5.1, §5.3.1).
        // rtp-rs reads the header in place. SRTP from Teams is not checked this way: its
        // tail is the auth tag, and authentication is the check that matters there.
        if port == Port::TrunkRtp
            && !rtcp
            && let Err(e) = rtp_rs::RtpReader::new(packet)
        {
            return Outcome::Drop(match e {
                rtp_rs::RtpReaderError::BufferTooShort(_)
                | rtp_rs::RtpReaderError::HeadersTruncated { .. } => DropReason::TooShort,
                _ => DropReason::NotRtp,
            });
        }
        match port {
            Port::Teams => self.teams_to_trunk(buf, len, rtcp, src, now),
            Port::TrunkRtp | Port::TrunkRtcp => self.trunk_to_teams(port, buf, len, rtcp, src, now),
        }
    }

    fn teams_to_trunk(
        &mut self,
        buf: &mut [u8],
        len: usize,
        rtcp: bool,
        src: SocketAddr,
        now: Instant,
    ) -> Outcome {
        if self.teams.check(src, now, self.timers.relatch_after) == SourceCheck::Foreign {
            return self.foreign(Leg::Teams, src);
        }
        let Some(ctx) = self.teams_inbound.as_mut() else {
            return Outcome::Drop(DropReason::NoKey);
        };
        let packet = &mut buf[..len];
        let unprotected = if rtcp {
            ctx.unprotect_rtcp(packet)
        } else {
            ctx.unprotect_rtp(packet)
        };
        let plain_len = match unprotected {
            Ok(n) => n,
            Err(e) => return Outcome::Drop(DropReason::from_srtp(&e)),
        };
        // Only an authenticated packet may move the latch (symmetric RTP
        // without letting an off-path sender hijack the stream).
        self.teams.accept(src, now);
        self.heard(Leg::Teams, now);
        let d = Direction::TeamsToTrunk;
        self.count_in(d, len, rtcp, &buf[..plain_len]);
        // While ringback plays, the trunk hears only the tone, not two streams at once.
        if !rtcp && (!self.forwarding.teams_to_trunk || self.ringing_toward(RingbackTo::Trunk)) {
            return Outcome::Drop(DropReason::OnHold);
        }
        let (via, to) = if rtcp && !self.trunk_rtcp_mux {
            (Port::TrunkRtcp, self.trunk_rtcp.destination())
        } else {
            (Port::TrunkRtp, self.trunk_rtp.destination())
        };
        match to {
            Some(to) => self.forward(d, via, to, plain_len),
            None => Outcome::Drop(DropReason::NoRemote),
        }
    }

    fn trunk_to_teams(
        &mut self,
        port: Port,
        buf: &mut [u8],
        len: usize,
        rtcp: bool,
        src: SocketAddr,
        now: Instant,
    ) -> Outcome {
        let latch = if port == Port::TrunkRtcp {
            &mut self.trunk_rtcp
        } else {
            &mut self.trunk_rtp
        };
        if latch.check(src, now, self.timers.relatch_after) == SourceCheck::Foreign {
            return self.foreign(Leg::Trunk, src);
        }
        latch.accept(src, now);
        self.heard(Leg::Trunk, now);
        let d = Direction::TrunkToTeams;
        self.count_in(d, len, rtcp, &buf[..len]);
        // The same toward Teams: the caller hears the tone, not the agent's hold music too.
        if !rtcp && (!self.forwarding.trunk_to_teams || self.ringing_toward(RingbackTo::Teams)) {
            return Outcome::Drop(DropReason::OnHold);
        }
        let Some(to) = self.teams.destination() else {
            return Outcome::Drop(DropReason::NoRemote);
        };
        let Some(ctx) = self.teams_outbound.as_mut() else {
            return Outcome::Drop(DropReason::NoKey);
        };
        let protected = if rtcp {
            ctx.protect_rtcp(buf, len)
        } else {
            ctx.protect_rtp(buf, len)
        };
        match protected {
            Ok(out_len) => self.forward(d, Port::Teams, to, out_len),
            Err(e) => Outcome::Drop(DropReason::from_srtp(&e)),
        }
    }

    fn foreign(&mut self, leg: Leg, addr: SocketAddr) -> Outcome {
        let latch = match leg {
            Leg::Teams => &mut self.teams,
            Leg::Trunk => &mut self.trunk_rtp,
        };
        if latch.report_foreign() {
            self.push_event(LegEvent::UnexpectedSource { leg, addr });
        }
        Outcome::Drop(DropReason::WrongSource)
    }

    fn heard(&mut self, leg: Leg, now: Instant) {
        let l = &mut self.liveness[leg as usize];
        l.since = Some(now);
        l.timed_out = false;
    }

    fn count_in(&mut self, d: Direction, wire_len: usize, rtcp: bool, plain: &[u8]) {
        let s = self.direction_stats(d);
        s.packets_in += 1;
        s.bytes_in += wire_len as u64;
        if !rtcp && plain.len() >= RTP_HEADER_LEN {
            let seq = u16::from_be_bytes([plain[2], plain[3]]);
            let ssrc = u32::from_be_bytes([plain[8], plain[9], plain[10], plain[11]]);
            self.seq[d as usize].on_rtp(ssrc, seq);
        }
    }

    fn forward(&mut self, direction: Direction, via: Port, to: SocketAddr, len: usize) -> Outcome {
        let s = self.direction_stats(direction);
        s.packets_out += 1;
        s.bytes_out += len as u64;
        Outcome::Forward {
            via,
            to,
            len,
            direction,
        }
    }

    /// The worker could not send a forwarded packet: take it back out of the
    /// "out" figures.
    pub fn unsend(&mut self, direction: Direction, len: usize) {
        let s = self.direction_stats(direction);
        s.packets_out = s.packets_out.saturating_sub(1);
        s.bytes_out = s.bytes_out.saturating_sub(len as u64);
    }

    fn direction_stats(&mut self, d: Direction) -> &mut DirectionStats {
        match d {
            Direction::TeamsToTrunk => &mut self.stats.teams_to_trunk,
            Direction::TrunkToTeams => &mut self.stats.trunk_to_teams,
        }
    }

    /// Raises [`LegEvent::Timeout`] for legs silent longer than the timeout.
    /// A leg is watched once it has a remote address or received a packet.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(timeout) = self.timers.timeout else {
            return;
        };
        for leg in [Leg::Teams, Leg::Trunk] {
            let l = self.liveness[leg as usize];
            let Some(since) = l.since else { continue };
            let silent_for = now.saturating_duration_since(since);
            if !l.timed_out && silent_for >= timeout {
                self.liveness[leg as usize].timed_out = true;
                self.push_event(LegEvent::Timeout { leg, silent_for });
            }
        }
    }

    fn push_event(&mut self, ev: LegEvent) {
        // A full queue keeps the older events: the worker drains after every
        // call, so this only happens if it stops draining.
        if let Some(slot) = self.events.iter_mut().find(|s| s.is_none()) {
            *slot = Some(ev);
        }
    }

    /// Next event to report, oldest first.
    pub fn poll_event(&mut self) -> Option<LegEvent> {
        let first = self.events[0].take()?;
        self.events.rotate_left(1);
        Some(first)
    }

    /// Figures so far.
    pub fn stats(&self) -> SessionStats {
        let mut s = self.stats;
        s.teams_to_trunk.lost = self.seq[Direction::TeamsToTrunk as usize].lost();
        s.trunk_to_teams.lost = self.seq[Direction::TrunkToTeams as usize].lost();
        s
    }

    /// Where packets to `leg` go now: the learned address, else the signaled one.
    pub fn remote(&self, leg: Leg) -> Option<SocketAddr> {
        match leg {
            Leg::Teams => self.teams.destination(),
            Leg::Trunk => self.trunk_rtp.destination(),
        }
    }
}

#[cfg(test)]
mod tests;
