//! A call's media: its media-plane session and the offer/answer rewrite between the legs.
//!
//! Every SDP that crosses the call passes through here, so the media plane always knows what
//! the last offer/answer said (remote addresses, the key Teams encrypts with, hold), and each
//! leg's `o=` version grows only when what we send changes (RFC 3264 §8). The SBC's own media
//! address never changes during the call (TDR-MED-08): the ports are allocated once.

use bytes::Bytes;

use crate::media::sdes::CryptoAttribute;
use crate::media::srtp::SrtpProfile;
use crate::media::tone::{G711, RingbackUpdate};
use crate::media::{Allocated, Forwarding, MediaError, MediaPlane, SessionId, SessionUpdate};
use crate::sdp::{
    CodecPolicy, Direction, LegMedia, OriginState, RewriteError, SessionDescription,
    answer_to_teams, answer_to_trunk, media_endpoint, offer_to_teams, offer_to_trunk,
};

/// Which side an SDP came from: the rewrite's own name for the two legs.
pub(crate) use crate::sdp::Side as SdpSide;

/// Why an SDP could not be bridged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BridgeError {
    #[error(transparent)]
    Rewrite(#[from] RewriteError),
    #[error("no usable a=crypto line (TDR-MED-02)")]
    NoUsableCrypto,
    #[error("making our SDES key: {0}")]
    Key(String),
    #[error("media plane: {0}")]
    Media(#[from] MediaError),
    #[error("an answer arrived with no offer outstanding")]
    NoOffer,
}

impl BridgeError {
    /// The status for the request whose SDP failed: 488 for the peer's SDP (TDR-MED-01/05),
    /// 500 for our own trouble.
    pub(crate) fn status(&self) -> u16 {
        match self {
            BridgeError::Rewrite(e) => e.status_code(),
            BridgeError::NoUsableCrypto => 488,
            BridgeError::Key(_) | BridgeError::Media(_) | BridgeError::NoOffer => 500,
        }
    }
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct CallMedia {
    pub(crate) id: SessionId,
    pub(crate) allocated: Allocated,
    teams_origin: OriginState,
    trunk_origin: OriginState,
    /// Our a=crypto toward Teams; kept across re-INVITEs so the SDP (and key) stay the same
    /// unless Teams picks another suite or tag.
    crypto: CryptoAttribute,
    policy: CodecPolicy,
    trunk_mux: bool,
    /// The offer waiting for its answer, by the side that made it.
    /// Boxed: held only between an offer and its answer.
    pending: Option<(SdpSide, Option<Box<SessionDescription>>)>,
    /// What each side last said (offer or answer), for hold.
    teams_direction: Direction,
    trunk_direction: Direction,
    /// The last SDP sent to each side, for answering refreshes locally.
    /// Printed, not parsed: kept for the whole call, a parsed SDP costs several times more.
    #[serde(with = "crate::sip::message::text_bytes::option")]
    pub(crate) last_to_teams: Option<Bytes>,
    #[serde(with = "crate::sip::message::text_bytes::option")]
    pub(crate) last_to_trunk: Option<Bytes>,
    /// The trunk's last offer or answer: a transfer's new offer to Teams is made from it.
    #[serde(with = "crate::sip::message::text_bytes::option")]
    pub(crate) last_from_trunk: Option<Bytes>,
}

impl CallMedia {
    pub(crate) fn create(
        plane: &MediaPlane,
        id: SessionId,
        policy: CodecPolicy,
        trunk_mux: bool,
    ) -> Result<CallMedia, BridgeError> {
        let crypto = CryptoAttribute::generate(1, SrtpProfile::AesCm128HmacSha1_80)
            .map_err(|e| BridgeError::Key(e.to_string()))?;
        let allocated = plane.create_session(id, false)?;
        Ok(CallMedia {
            id,
            teams_origin: OriginState::new(id, allocated.teams.ip()),
            trunk_origin: OriginState::new(id, allocated.trunk.ip()),
            allocated,
            crypto,
            policy,
            trunk_mux,
            pending: None,
            teams_direction: Direction::SendRecv,
            trunk_direction: Direction::SendRecv,
            last_to_teams: None,
            last_to_trunk: None,
            last_from_trunk: None,
        })
    }

    fn leg(&self, side: SdpSide) -> LegMedia {
        match side {
            SdpSide::Teams => LegMedia {
                address: self.allocated.teams.ip(),
                port: self.allocated.teams.port(),
                rtcp_port: None,
            },
            SdpSide::Trunk => LegMedia {
                address: self.allocated.trunk.ip(),
                port: self.allocated.trunk.port(),
                rtcp_port: self.allocated.trunk_rtcp.map(|a| a.port()),
            },
        }
    }

    /// An offer from `from` (`None`: a delayed-offer INVITE from the trunk, TDR-INV-05)
    /// becomes the offer for the other side.
    pub(crate) fn offer(
        &mut self,
        plane: &MediaPlane,
        from: SdpSide,
        sdp: Option<&SessionDescription>,
    ) -> Result<SessionDescription, BridgeError> {
        let out = match (from, sdp) {
            (SdpSide::Teams, Some(offer)) => {
                let key = self.teams_key(offer)?;
                let leg = self.leg(SdpSide::Trunk);
                let out = offer_to_trunk(
                    offer,
                    &leg,
                    &self.policy,
                    self.trunk_mux,
                    &mut self.trunk_origin,
                )?;
                let mut update = remote_update(SdpSide::Teams, offer);
                update.teams_inbound_key = key;
                plane.update_session(self.id, update)?;
                self.last_to_trunk = Some(printed(&out));
                out
            }
            (SdpSide::Teams, None) => return Err(RewriteError::SrtpRequired.into()),
            (SdpSide::Trunk, offer) => {
                let leg = self.leg(SdpSide::Teams);
                let crypto = self.crypto.to_string();
                let out =
                    offer_to_teams(offer, &leg, &self.policy, &crypto, &mut self.teams_origin)?;
                if let Some(offer) = offer {
                    plane.update_session(self.id, remote_update(SdpSide::Trunk, offer))?;
                    self.last_from_trunk = Some(printed(offer));
                }
                self.last_to_teams = Some(printed(&out));
                out
            }
        };
        self.pending = Some((from, sdp.cloned().map(Box::new)));
        Ok(out)
    }

    /// The answer to the outstanding offer, from `from`, becomes the answer for the side that
    /// offered. The media plane then knows both ends and the keys both ways.
    /// `final_answer` false: an early answer (18x); the offer stays outstanding so the 2xx
    /// can carry the answer again.
    pub(crate) fn answer(
        &mut self,
        plane: &MediaPlane,
        from: SdpSide,
        sdp: &SessionDescription,
        final_answer: bool,
    ) -> Result<SessionDescription, BridgeError> {
        let (offerer, offer) = self.pending.clone().ok_or(BridgeError::NoOffer)?;
        if offerer == from {
            return Err(BridgeError::NoOffer);
        }
        let out = match from {
            SdpSide::Trunk => {
                let teams_offer = offer.ok_or(BridgeError::NoOffer)?;
                self.answer_crypto_for(&teams_offer)?;
                let leg = self.leg(SdpSide::Teams);
                let crypto = self.crypto.to_string();
                let out =
                    answer_to_teams(sdp, &teams_offer, &leg, &crypto, &mut self.teams_origin)?;
                let mut update = remote_update(SdpSide::Trunk, sdp);
                update.teams_outbound_key = self.crypto.master_key().cloned();
                self.trunk_direction = direction_of(sdp);
                self.teams_direction = direction_of(&teams_offer);
                update.forwarding = Some(self.forwarding());
                plane.update_session(self.id, update)?;
                self.last_to_teams = Some(printed(&out));
                out
            }
            SdpSide::Teams => {
                let key = self.teams_key(sdp)?;
                let leg = self.leg(SdpSide::Trunk);
                let out = answer_to_trunk(
                    sdp,
                    offer.as_deref(),
                    &leg,
                    self.trunk_mux,
                    &mut self.trunk_origin,
                )?;
                let mut update = remote_update(SdpSide::Teams, sdp);
                update.teams_inbound_key = key;
                update.teams_outbound_key = self.crypto.master_key().cloned();
                self.teams_direction = direction_of(sdp);
                if let Some(o) = &offer {
                    self.trunk_direction = direction_of(o);
                }
                update.forwarding = Some(self.forwarding());
                plane.update_session(self.id, update)?;
                self.last_to_trunk = Some(printed(&out));
                out
            }
        };
        if from == SdpSide::Trunk {
            self.last_from_trunk = Some(printed(sdp));
        }
        if final_answer {
            self.pending = None;
        }
        Ok(out)
    }

    /// The answer to an offer we put in a 2xx, arriving in the ACK: only the media plane
    /// needs it, nothing is sent on.
    pub(crate) fn late_answer(
        &mut self,
        plane: &MediaPlane,
        from: SdpSide,
        sdp: &SessionDescription,
    ) -> Result<(), BridgeError> {
        let mut update = remote_update(from, sdp);
        match from {
            SdpSide::Teams => {
                update.teams_inbound_key = self.teams_key(sdp)?;
                self.teams_direction = direction_of(sdp);
            }
            SdpSide::Trunk => {
                self.trunk_direction = direction_of(sdp);
                self.last_from_trunk = Some(printed(sdp));
            }
        }
        update.forwarding = Some(self.forwarding());
        plane.update_session(self.id, update)?;
        Ok(())
    }

    /// What the trunk last offered or answered, parsed again (rare: transfers, Replaces).
    fn trunk_said(&self) -> Result<Option<SessionDescription>, BridgeError> {
        match &self.last_from_trunk {
            None => Ok(None),
            Some(b) => SessionDescription::from_bytes(b)
                .map(Some)
                .map_err(|_| BridgeError::NoOffer),
        }
    }

    /// Starts or stops ringback toward the trunk (TDR-XFR-03). A trunk without G.711 in
    /// its SDP gets none; either way the transfer goes on.
    pub(crate) fn ringback(&self, plane: &MediaPlane, on: bool) {
        self.ring(plane, on, RingbackUpdate::Start);
    }

    /// Starts or stops ringback toward Teams (TDR-XFR-04: the caller waits for the party a
    /// trunk's REFER named), as SRTP with the call's key, in the G.711 law both legs share.
    pub(crate) fn ringback_to_teams(&self, plane: &MediaPlane, on: bool) {
        self.ring(plane, on, RingbackUpdate::StartTowardTeams);
    }

    fn ring(&self, plane: &MediaPlane, on: bool, start: fn(G711) -> RingbackUpdate) {
        let update = if on {
            match self.trunk_g711() {
                Some(law) => start(law),
                None => {
                    tracing::debug!(call = self.id, "no G.711 on the call: no ringback");
                    return;
                }
            }
        } else {
            RingbackUpdate::Stop
        };
        let update = SessionUpdate {
            ringback: Some(update),
            ..SessionUpdate::default()
        };
        if let Err(e) = plane.update_session(self.id, update) {
            tracing::warn!(call = self.id, error = %e, "ringback not changed");
        }
    }

    /// The G.711 law a ringback toward the trunk is sent in: the first PCMU or PCMA the
    /// trunk listed in its last SDP (RFC 3264 §6.1: any format of that list may be sent to
    /// it). None if it listed neither: we do not encode other codecs.
    pub(crate) fn trunk_g711(&self) -> Option<G711> {
        let sdp = self.trunk_said().ok()??;
        let audio = &sdp.media[sdp.first_active_audio()?];
        audio
            .formats
            .iter()
            .find_map(|f| f.parse::<u8>().ok().and_then(G711::from_payload_type))
    }

    /// The offer for a transfer's new Teams dialog, made from what the trunk's party last
    /// said, so the codec it uses now is what Teams is offered (no transcoding here).
    pub(crate) fn transfer_offer(
        &mut self,
        plane: &MediaPlane,
    ) -> Result<SessionDescription, BridgeError> {
        let last = self.trunk_said()?;
        self.offer(plane, SdpSide::Trunk, last.as_ref())
    }

    /// The offer to the party a trunk's REFER names (TDR-XFR-04): what the trunk's leg last
    /// got from us (Teams' codecs on our trunk-side address), its audio stream alone and
    /// sendrecv, since the new party is nobody's hold. Other offers wait (491) until
    /// `rebridge_trunk` or `abandon_offer`.
    pub(crate) fn trunk_transfer_offer(&mut self) -> Result<SessionDescription, BridgeError> {
        let last = self.last_to_trunk.as_ref().ok_or(BridgeError::NoOffer)?;
        let mut sd = SessionDescription::from_bytes(last).map_err(|_| BridgeError::NoOffer)?;
        let i = sd.first_active_audio().ok_or(RewriteError::NoAudioStream {
            side: SdpSide::Trunk,
        })?;
        let mut audio = sd.media.swap_remove(i);
        audio.set_direction(Direction::SendRecv);
        sd.media = vec![audio];
        let out = self.trunk_origin.stamp(sd);
        self.pending = Some((SdpSide::Teams, None));
        Ok(out)
    }

    /// The new trunk party's answer to `offer` (TDR-XFR-04): the media plane turns to it at
    /// once. Returns the offer to put to Teams when what we last told Teams no longer holds
    /// (other codecs, or a hold the old party had asked for), None when Teams' SDP stays.
    pub(crate) fn rebridge_trunk(
        &mut self,
        plane: &MediaPlane,
        offer: Bytes,
        answer: &SessionDescription,
    ) -> Result<Option<SessionDescription>, BridgeError> {
        // What Teams would be offered is made first: an answer it cannot be made from (no
        // codec left by policy) leaves the media plane with the old party.
        let teams = self.teams_offer_from(answer)?;
        self.late_answer(plane, SdpSide::Trunk, answer)?;
        self.pending = None;
        self.last_to_trunk = Some(offer);
        Ok(self.put_to_teams(teams, answer))
    }

    /// After a re-INVITE toward Teams met glare (491): the offer for Teams from what the
    /// trunk's side says now. Sent even when it is the refused one again (same SDP, same
    /// version): Teams never took that one. None while another offer is open.
    pub(crate) fn teams_reoffer(&mut self) -> Result<Option<SessionDescription>, BridgeError> {
        if self.pending.is_some() {
            return Ok(None);
        }
        let Some(trunk) = self.trunk_said()? else {
            return Ok(None);
        };
        let (out, origin) = self.teams_offer_from(&trunk)?;
        self.teams_origin = origin;
        self.last_to_teams = Some(printed(&out));
        self.pending = Some((SdpSide::Trunk, Some(Box::new(trunk))));
        Ok(Some(out))
    }

    /// Teams' offer made from the trunk side's `trunk` SDP, with the origin it would leave.
    fn teams_offer_from(
        &self,
        trunk: &SessionDescription,
    ) -> Result<(SessionDescription, OriginState), BridgeError> {
        let mut origin = self.teams_origin.clone();
        let leg = self.leg(SdpSide::Teams);
        let crypto = self.crypto.to_string();
        let out = offer_to_teams(Some(trunk), &leg, &self.policy, &crypto, &mut origin)?;
        Ok((out, origin))
    }

    /// Takes a `teams_offer_from` result: the offer to send, or None when it is what Teams was
    /// last told (same SDP, same version: `OriginState::stamp`).
    fn put_to_teams(
        &mut self,
        (out, origin): (SessionDescription, OriginState),
        trunk: &SessionDescription,
    ) -> Option<SessionDescription> {
        let unchanged = origin.version() == self.teams_origin.version();
        self.teams_origin = origin;
        if unchanged {
            return None;
        }
        self.last_to_teams = Some(printed(&out));
        self.pending = Some((SdpSide::Trunk, Some(Box::new(trunk.clone()))));
        Some(out)
    }

    /// Teams' answer to a `rebridge_trunk` offer: only the media plane needs it.
    pub(crate) fn teams_answered_reoffer(
        &mut self,
        plane: &MediaPlane,
        answer: &SessionDescription,
    ) -> Result<(), BridgeError> {
        self.pending = None;
        self.late_answer(plane, SdpSide::Teams, answer)
    }

    /// A new Teams dialog replacing the current one (INVITE with Replaces, TDR-INV-19):
    /// its offer is answered here from what the trunk's party last said; the trunk leg
    /// notices nothing.
    pub(crate) fn answer_replacing_teams(
        &mut self,
        plane: &MediaPlane,
        teams_offer: &SessionDescription,
    ) -> Result<SessionDescription, BridgeError> {
        let trunk = self.trunk_said()?.ok_or(BridgeError::NoOffer)?;
        self.answer_crypto_for(teams_offer)?;
        let key = self.teams_key(teams_offer)?;
        let leg = self.leg(SdpSide::Teams);
        let crypto = self.crypto.to_string();
        let out = answer_to_teams(&trunk, teams_offer, &leg, &crypto, &mut self.teams_origin)?;
        let mut update = remote_update(SdpSide::Teams, teams_offer);
        update.teams_inbound_key = key;
        update.teams_outbound_key = self.crypto.master_key().cloned();
        self.teams_direction = direction_of(teams_offer);
        update.forwarding = Some(self.forwarding());
        plane.update_session(self.id, update)?;
        self.last_to_teams = Some(printed(&out));
        Ok(out)
    }

    /// An offer/answer exchange that failed (a non-2xx to the re-INVITE): the old session
    /// stays (RFC 3264 §8).
    pub(crate) fn abandon_offer(&mut self) {
        self.pending = None;
    }

    pub(crate) fn offer_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// RFC 4568 §7.1.2: the answer uses the tag and suite of the offer line it accepts. Our
    /// key is remade only when those change, so a repeated offer gets the same answer.
    fn answer_crypto_for(&mut self, teams_offer: &SessionDescription) -> Result<(), BridgeError> {
        let chosen = usable_crypto(teams_offer).ok_or(BridgeError::NoUsableCrypto)?;
        let profile = chosen.profile().ok_or(BridgeError::NoUsableCrypto)?;
        if chosen.tag() != self.crypto.tag() || Some(profile) != self.crypto.profile() {
            self.crypto = CryptoAttribute::generate(chosen.tag(), profile)
                .map_err(|e| BridgeError::Key(e.to_string()))?;
        }
        Ok(())
    }

    /// The key Teams encrypts with, from its offer or answer.
    fn teams_key(
        &self,
        sdp: &SessionDescription,
    ) -> Result<Option<crate::media::srtp::MasterKey>, BridgeError> {
        let chosen = usable_crypto(sdp).ok_or(BridgeError::NoUsableCrypto)?;
        Ok(chosen.master_key().cloned())
    }

    /// Whether the offer/answer says `side` sends RTP now. A held or inactive stream is
    /// silent on purpose, and its silence is no reason to end the call.
    pub(crate) fn expects_media_from(&self, side: SdpSide) -> bool {
        match side {
            SdpSide::Teams => sends(self.teams_direction),
            SdpSide::Trunk => sends(self.trunk_direction),
        }
    }

    /// Hold: RTP flows one way only if the sender says it sends and the receiver says it
    /// receives.
    fn forwarding(&self) -> Forwarding {
        Forwarding {
            teams_to_trunk: sends(self.teams_direction) && receives(self.trunk_direction),
            trunk_to_teams: sends(self.trunk_direction) && receives(self.teams_direction),
        }
    }
}

/// Kept for the whole call (`last_to_*`): without the spare capacity of a
/// string grown while printing, up to half of it.
fn printed(sd: &SessionDescription) -> Bytes {
    let mut s = sd.to_string();
    s.shrink_to_fit();
    Bytes::from(s)
}

fn usable_crypto(sdp: &SessionDescription) -> Option<CryptoAttribute> {
    let remote = media_endpoint(sdp)?;
    let parsed: Vec<CryptoAttribute> = remote
        .crypto_lines
        .iter()
        .filter_map(|l| CryptoAttribute::parse(l).ok())
        .collect();
    CryptoAttribute::select(parsed.iter()).cloned()
}

fn direction_of(sdp: &SessionDescription) -> Direction {
    media_endpoint(sdp)
        .map(|m| {
            if m.addr.ip().is_unspecified() {
                Direction::Inactive
            } else {
                m.direction
            }
        })
        .unwrap_or(Direction::Inactive)
}

fn sends(d: Direction) -> bool {
    matches!(d, Direction::SendRecv | Direction::SendOnly)
}

fn receives(d: Direction) -> bool {
    matches!(d, Direction::SendRecv | Direction::RecvOnly)
}

/// Remote addresses from a peer's SDP. A held stream at 0.0.0.0 (RFC 2543) keeps the old
/// address: there is nowhere to send anyway, and resuming brings the real one back.
fn remote_update(from: SdpSide, sdp: &SessionDescription) -> SessionUpdate {
    let mut u = SessionUpdate::default();
    let Some(m) = media_endpoint(sdp) else {
        return u;
    };
    if m.addr.ip().is_unspecified() || m.addr.port() == 0 {
        return u;
    }
    match from {
        SdpSide::Teams => u.teams_remote = Some(m.addr),
        SdpSide::Trunk => {
            u.trunk_remote = Some(m.addr);
            u.trunk_remote_rtcp = m.rtcp;
            u.trunk_rtcp_mux = Some(m.mux);
        }
    }
    u
}
