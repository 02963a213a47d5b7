//! One call's state: two legs, the media bridge, what is pending, and its deadlines. Plain
//! data that serializes (serde), for a high-availability store: instants are written as
//! wall-clock times, messages and SDP in their wire form, the SRTP key toward Teams as its
//! `a=crypto` line (so a snapshot is a secret). Transaction ids and connection ids only mean
//! something to the process that wrote them.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::dialog::Dialog;
use super::media::{CallMedia, SdpSide};
use super::timer::SessionTimer;
pub(crate) use crate::cdr::CallDirection;
use crate::sdp::SessionDescription;
use crate::sip::Method;
use crate::sip::message::{Request, Response};
use crate::sip::transaction::TxId;
use crate::sip::transport::{Side, Target, TransportKind};

/// The SBC's own id of a call: also its media session id and CDR `call_id`.
pub(crate) type CallKey = u64;

/// Leg A sent us the INVITE; leg B is the dialog we made toward the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub(crate) enum LegId {
    A,
    B,
}

impl LegId {
    pub(crate) fn other(self) -> LegId {
        match self {
            LegId::A => LegId::B,
            LegId::B => LegId::A,
        }
    }
}

/// What a client transaction of a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// The INVITE that sets up leg B.
    Invite,
    /// A re-INVITE or UPDATE carrying an offer from the other leg.
    Offer,
    /// A session refresh of ours (RFC 4028), answered on this leg only.
    Refresh,
    /// A request relayed from the other leg (INFO and the like); its answer goes back.
    Relay,
    /// BYE; nothing waits for its answer.
    Bye,
    /// PRACK for a reliable provisional (RFC 3262).
    Prack,
    /// The INVITE a REFER asked for (TDR-XFR-02 from Teams, TDR-XFR-04 from the trunk).
    Transfer,
    /// A re-INVITE of ours whose offer no peer request waits on: toward Teams, once a
    /// trunk's transfer is answered by a party Teams must hear of (TDR-XFR-04).
    Reoffer,
    /// NOTIFY of a transfer's progress; nothing waits for its answer.
    Notify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum State {
    /// INVITE sent on leg B, no answer yet.
    Calling,
    /// Leg B answered 1xx.
    Early,
    /// Leg A cancelled; waiting for leg B's INVITE to end.
    Cancelling,
    /// 2xx sent to leg A, its ACK not yet seen.
    Answered,
    Confirmed,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Leg {
    pub(crate) side: Side,
    pub(crate) transport: TransportKind,
    pub(crate) dialog: Dialog,
    /// Where requests go when the dialog's next hop is a name we do not resolve here: the
    /// connection or address the dialog was set up over.
    pub(crate) fallback: Target,
    /// Sent-protocol and sent-by of our Via on this leg.
    pub(crate) via: String,
    /// The peer listed UPDATE in Allow.
    pub(crate) allows_update: bool,
    /// CSeq of the INVITE whose 2xx we ACKed (leg B): each retransmitted 2xx gets the
    /// same ACK again (§13.2.2.4), rebuilt from the dialog rather than kept for the
    /// whole call.
    pub(crate) acked_cseq: Option<u32>,
    pub(crate) session_timer: Option<SessionTimer>,
    /// `o=` session id and version the peer last sent, to tell a refresh from a change.
    pub(crate) remote_origin: Option<(u64, u64)>,
}

impl Leg {
    /// A leg whose dialog we start (UAC): nothing negotiated on it yet.
    pub(crate) fn ours(
        side: Side,
        transport: TransportKind,
        dialog: Dialog,
        fallback: Target,
        via: String,
    ) -> Leg {
        Leg {
            side,
            transport,
            dialog,
            fallback,
            via,
            allows_update: false,
            acked_cseq: None,
            session_timer: None,
            remote_origin: None,
        }
    }

    pub(crate) fn sdp_side(&self) -> SdpSide {
        match self.side {
            Side::Teams => SdpSide::Teams,
            Side::Trunk => SdpSide::Trunk,
        }
    }
}

/// A re-INVITE/UPDATE (or relayed request) from one leg waiting for the other leg's answer.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Pending {
    pub(crate) from: LegId,
    pub(crate) server_tx: TxId,
    pub(crate) request: Request,
    pub(crate) client_tx: Option<TxId>,
}

/// RFC 3261 §17.1.1.2 T1 and T2, for resending our 2xx over UDP (§13.3.1.4).
pub(super) const T1: Duration = Duration::from_millis(500);
pub(super) const T2: Duration = Duration::from_secs(4);

/// A 2xx to an INVITE or re-INVITE resent over UDP until its ACK (§13.3.1.4, §14.2).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Resend {
    pub(crate) response: Response,
    /// The server transaction it answers, and the leg whose ACK stops it.
    pub(crate) tx: TxId,
    pub(crate) leg: LegId,
    /// The CSeq number an ACK for it carries.
    pub(crate) cseq: u32,
    #[serde(with = "crate::clock::as_wall_clock")]
    pub(crate) next: Instant,
    pub(crate) interval: Duration,
    #[serde(with = "crate::clock::as_wall_clock")]
    pub(crate) give_up: Instant,
}

impl Resend {
    /// Resends `response` from `now` on: T1, doubling up to T2, for 64 × T1.
    pub(crate) fn start(response: Response, tx: TxId, leg: LegId, now: Instant) -> Resend {
        let cseq = response.headers.cseq().map(|c| c.seq).unwrap_or(0);
        Resend {
            response,
            tx,
            leg,
            cseq,
            next: now + T1,
            interval: T1,
            give_up: now + 64 * T1,
        }
    }

    /// Whether `ack`, arriving on `leg`, acknowledges this 2xx.
    pub(crate) fn acked_by(&self, leg: LegId, ack: &Request) -> bool {
        leg == self.leg && ack.headers.cseq().map(|c| c.seq) == Ok(self.cseq)
    }
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Call {
    pub(crate) key: CallKey,
    pub(crate) direction: CallDirection,
    pub(crate) tenant: String,
    pub(crate) trunk: String,
    pub(crate) state: State,
    pub(crate) a: Leg,
    pub(crate) b: Leg,
    pub(crate) media: CallMedia,
    /// Leg A's INVITE and its server transaction, answered until the call is set up.
    /// Both INVITEs are boxed: inline they took a sixth of the call for its whole life,
    /// and after the answer only their Request-URIs are left (`shed_setup_messages`).
    pub(crate) a_invite: Box<Request>,
    pub(crate) a_invite_tx: TxId,
    /// Leg B's INVITE, kept to retry it at the next Teams proxy.
    pub(crate) b_invite: Box<Request>,
    pub(crate) b_invite_tx: Option<TxId>,
    pub(crate) b_invite_cseq: u32,
    /// Teams proxies still to try, by index (trunk → Teams).
    pub(crate) proxies_left: VecDeque<usize>,
    /// The trunk's other targets, in RFC 3263 order, when its name resolved to several
    /// (Teams → trunk).
    #[serde(default)]
    pub(crate) targets_left: VecDeque<Target>,
    /// When to give up on the current proxy if it has said nothing (not even 100).
    #[serde(with = "crate::clock::as_wall_clock::option")]
    pub(crate) failover_at: Option<Instant>,
    pub(crate) provisional_seen: bool,
    pub(crate) cancel_sent: bool,
    /// The Reason for leg B's CANCEL, kept while the CANCEL waits for a provisional.
    #[serde(default, with = "crate::sip::message::text_bytes::option")]
    pub(crate) cancel_reason: Option<Bytes>,
    pub(crate) resend_2xx: Option<Resend>,
    /// Boxed, as `transfer`: rare, and the call stays small without them.
    pub(crate) pending: Option<Box<Pending>>,
    /// Gives up on a call stuck in Cancelling or waiting for an ACK.
    #[serde(with = "crate::clock::as_wall_clock::option")]
    pub(crate) guard_at: Option<Instant>,
    pub(crate) setup_wall: SystemTime,
    #[serde(with = "crate::clock::as_wall_clock")]
    pub(crate) setup_at: Instant,
    #[serde(with = "answered_at")]
    pub(crate) answered: Option<(SystemTime, Instant)>,
    /// The final status of the call setup as leg A saw it.
    pub(crate) final_status: Option<u16>,
    pub(crate) from_number: Option<String>,
    pub(crate) to_number: Option<String>,
    /// Reliable provisionals already acknowledged (RSeq), RFC 3262.
    pub(crate) pracked: Vec<u32>,
    /// The body of the last reliable 18x we relayed, so the 2xx can carry the same answer.
    #[serde(with = "crate::sip::message::text_bytes::option")]
    pub(crate) early_answer: Option<Bytes>,
    /// Set once the call's accounting is done (it may linger to finish a CANCEL).
    pub(crate) ended: Option<super::teardown::End>,
    /// When to offer Teams again after our re-INVITE met glare (491, RFC 3261 §14.1).
    #[serde(default, with = "crate::clock::as_wall_clock::option")]
    pub(crate) reoffer_at: Option<Instant>,
    /// A transfer asked for with REFER, in progress.
    pub(crate) transfer: Option<Box<Transfer>>,
    /// Timer C of the INVITE of ours that is ringing: leg B's while the call is set up, the
    /// transfer's once it is confirmed (never both at once).
    #[serde(default, with = "crate::clock::as_wall_clock::option")]
    pub(crate) ring_until: Option<Instant>,
    /// Transfers that have ended, for the call's record.
    #[serde(default)]
    pub(crate) transfers: Vec<TransferNote>,
    /// Leg A's INVITE required 100rel: its provisionals go reliably (RFC 3262).
    #[serde(default)]
    pub(crate) a_reliable: Option<Box<Reliable>>,
}

/// Reliable provisionals toward leg A (RFC 3262 §3): one unacknowledged at a time, resent at
/// T1 doubling until its PRACK, for 64 × T1; later ones wait their turn.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Reliable {
    /// RSeq of the next one.
    pub(crate) next_rseq: u32,
    pub(crate) unacked: Option<Unacked>,
    pub(crate) queued: VecDeque<Response>,
    /// An SDP has gone in one: RFC 3262 §5 wants the answer (or our offer) in the first.
    #[serde(default)]
    pub(crate) sdp_sent: bool,
}

/// A reliable provisional waiting for its PRACK.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Unacked {
    pub(crate) response: Response,
    pub(crate) rseq: u32,
    #[serde(with = "crate::clock::as_wall_clock")]
    pub(crate) next: Instant,
    pub(crate) interval: Duration,
    #[serde(with = "crate::clock::as_wall_clock")]
    pub(crate) give_up: Instant,
}

impl Reliable {
    /// Provisionals of the last kind waiting are enough to tell the caller how the call goes.
    pub(crate) const MAX_QUEUED: usize = 4;

    /// RFC 3262 §3: the first RSeq is random in 1..2^31, leaving room to count up.
    pub(crate) fn new(first_rseq: u32) -> Box<Reliable> {
        Box::new(Reliable {
            next_rseq: first_rseq,
            unacked: None,
            queued: VecDeque::new(),
            sdp_sent: false,
        })
    }
}

/// A transfer that has ended, as the call's record will tell it (`cdr::TransferRecord`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct TransferNote {
    pub(crate) at: SystemTime,
    pub(crate) by: crate::cdr::TransferredBy,
    pub(crate) target: Option<String>,
    pub(crate) status: u16,
    pub(crate) completed: bool,
    pub(crate) replaced_call_id: Option<String>,
    pub(crate) new_call_id: Option<String>,
}

impl TransferNote {
    pub(crate) fn record(&self) -> crate::cdr::TransferRecord {
        crate::cdr::TransferRecord {
            time: self.at,
            requested_by: self.by,
            target: self.target.clone(),
            status: self.status,
            completed: self.completed,
            replaced_call_id: self.replaced_call_id.clone(),
            new_call_id: self.new_call_id.clone(),
        }
    }
}

/// `Call::answered` in a snapshot: the wall-clock time of the answer (its instant is derived
/// from it when read back, as every instant of a snapshot is).
mod answered_at {
    use std::time::{Instant, SystemTime};

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(
        at: &Option<(SystemTime, Instant)>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        at.map(|(wall, _)| wall).serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<(SystemTime, Instant)>, D::Error> {
        Ok(Option::<SystemTime>::deserialize(d)?
            .map(|wall| (wall, crate::clock::as_wall_clock::instant_of(wall))))
    }
}

/// The new dialog that will replace the leg that sent REFER: toward Teams (TDR-XFR-02) or
/// toward the trunk (TDR-XFR-04), the side `new_leg` is on.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Transfer {
    pub(crate) refer_leg: LegId,
    pub(crate) new_leg: Leg,
    pub(crate) invite_tx: Option<TxId>,
    pub(crate) invite_cseq: u32,
    /// Toward the trunk: the SDP offered to the new party. It becomes what the trunk's leg
    /// last got from us once the party answers; until then the old party's stays.
    #[serde(default, with = "crate::sip::message::text_bytes::option")]
    pub(crate) offer: Option<Bytes>,
    /// The trunk hung up on its REFER's dialog (a blind transfer, RFC 5589 §6): no NOTIFY
    /// goes there, and a transfer that fails ends the call.
    #[serde(default)]
    pub(crate) referrer_gone: bool,
    /// Its INVITE rang past `[sip] ring_timeout_s` and was CANCELled: its final answer
    /// (the 487, or a 2xx that crossed the CANCEL) still decides the outcome.
    #[serde(default)]
    pub(crate) timed_out: bool,
    /// The user part of the Refer-To URI, for the call's record.
    #[serde(default)]
    pub(crate) target: Option<String>,
}

impl Transfer {
    /// The transfer INVITE `new_leg`'s dialog is about to send, asked for on `refer_leg`.
    pub(crate) fn start(
        refer_leg: LegId,
        new_leg: Leg,
        offer: Option<Bytes>,
        target: Option<String>,
    ) -> Box<Transfer> {
        let invite_cseq = new_leg.dialog.local_cseq;
        Box::new(Transfer {
            refer_leg,
            new_leg,
            invite_tx: None,
            invite_cseq,
            offer,
            referrer_gone: false,
            timed_out: false,
            target,
        })
    }
}

impl Call {
    pub(crate) fn leg(&self, id: LegId) -> &Leg {
        match id {
            LegId::A => &self.a,
            LegId::B => &self.b,
        }
    }

    pub(crate) fn leg_mut(&mut self, id: LegId) -> &mut Leg {
        match id {
            LegId::A => &mut self.a,
            LegId::B => &mut self.b,
        }
    }

    pub(crate) fn is_confirmed(&self) -> bool {
        matches!(self.state, State::Answered | State::Confirmed)
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        [
            self.failover_at,
            self.resend_2xx.as_ref().map(|r| r.next.min(r.give_up)),
            self.guard_at,
            self.reoffer_at,
            self.ring_until,
            self.a_reliable
                .as_ref()
                .and_then(|r| r.unacked.as_ref())
                .map(|u| u.next.min(u.give_up)),
            self.a.session_timer.map(|t| t.deadline),
            self.b.session_timer.map(|t| t.deadline),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The leg of a side.
    pub(crate) fn leg_on(&self, side: Side) -> LegId {
        if self.a.side == side {
            LegId::A
        } else {
            LegId::B
        }
    }

    /// Once answered, the INVITEs are not needed any more (they served the answers to leg A
    /// and a retry at another proxy); a long call should not hold two full messages.
    pub(crate) fn shed_setup_messages(&mut self) {
        *self.a_invite = Request::new(Method::Invite, self.a_invite.uri.clone());
        *self.b_invite = Request::new(Method::Invite, self.b_invite.uri.clone());
        self.early_answer = None;
        self.pracked = Vec::new();
    }

    pub(crate) fn is_invite_pending(&self) -> bool {
        matches!(self.state, State::Calling | State::Early)
    }

    /// Whether a re-INVITE/UPDATE may start now (RFC 3261 §14.1, RFC 3311 §5.2: one offer at
    /// a time; else 491).
    pub(crate) fn offer_busy(&self) -> bool {
        self.pending.is_some() || self.media.offer_pending()
    }
}

/// `o=` session id and version of an SDP.
pub(crate) fn origin_of(sdp: &SessionDescription) -> (u64, u64) {
    (sdp.origin.session_id, sdp.origin.session_version)
}

/// Whether `method` is one we relay to the other leg as is.
pub(crate) fn is_relayed(method: &Method) -> bool {
    matches!(method, Method::Info | Method::Message)
}
