//! The SBC's offer/answer rewrite between the Teams leg (RTP/SAVP, SDES, rtcp-mux) and the
//! trunk leg (RTP/AVP).
//!
//! Every SDP the SBC sends is built fresh: our `o=` ([`OriginState`]), `s=-`, a session-level
//! `c=` with the SBC's address for that leg, `t=0 0`, and one anchored audio m-line. What is
//! copied from the peer's SDP is what describes the media itself (formats, rtpmap/fmtp, ptime,
//! media-level bandwidth and unknown attributes); what describes the peer's transport or keys (ICE, DTLS,
//! crypto, rtcp, `k=`, `c=`, e-mail and phone lines) never crosses.
//!
//! m-lines (RFC 3264): offers the SBC sends carry only the anchored audio stream, because both
//! legs are audio-only and the trunk side is shrunk (TDR-SIG-12). Answers the SBC sends mirror
//! the m-lines of the offer they answer, as RFC 3264 §6 requires: the anchored audio stream is
//! answered, every other m-line (video, a second audio) is rejected with port 0 and the offered
//! formats.

mod codecs;
mod endpoint;
mod origin;

use std::fmt;
use std::net::IpAddr;

use super::model::{
    Attribute, Connection, Direction, MediaDescription, SessionDescription, Timing,
};

pub use codecs::CodecPolicy;
pub use endpoint::{RemoteMedia, media_endpoint};
pub use origin::OriginState;

/// The SBC's own media address on one leg, as advertised in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegMedia {
    pub address: IpAddr,
    pub port: u16,
    /// The RTCP port on a trunk leg without rtcp-mux; advertised with `a=rtcp` (RFC 3605).
    /// `None` means the implicit RTP port + 1.
    pub rtcp_port: Option<u16>,
}

/// Which leg's SDP was at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Side {
    Teams,
    Trunk,
}

/// Why an SDP cannot be turned into one for the other leg.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// TDR-MED-01: the Teams audio stream is not RTP/SAVP with at least one `a=crypto`.
    #[error("the Teams SDP has no SRTP audio (RTP/SAVP with a=crypto), TDR-MED-01")]
    SrtpRequired,
    /// TDR-MED-05: after the codec policy (or the answer) no voice codec is left.
    #[error("no voice codec acceptable to both sides, TDR-MED-05")]
    NoCommonCodec,
    /// No audio m-line with a non-zero port.
    #[error("the {side} SDP has no active audio stream")]
    NoAudioStream { side: Side },
    /// The `a=crypto` value the caller gave is empty or contains a line break.
    #[error("the SBC's own a=crypto value is empty or contains a line break")]
    InvalidCrypto,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Teams => "Teams",
            Side::Trunk => "trunk",
        })
    }
}

impl RewriteError {
    /// The SIP status for the request whose SDP failed: 488 Not Acceptable Here for the peer's
    /// SDP (TDR-MED-01, TDR-MED-05), 500 for our own bad input.
    pub fn status_code(&self) -> u16 {
        match self {
            RewriteError::InvalidCrypto => 500,
            _ => 488,
        }
    }
}

/// Teams offer → offer toward the trunk: RTP/AVP on the SBC's trunk-side address, no crypto,
/// ICE or DTLS, codecs by policy, rtcp-mux only if the trunk uses it (TDR-SIG-12 shrink).
pub fn offer_to_trunk(
    teams_offer: &SessionDescription,
    leg: &LegMedia,
    policy: &CodecPolicy,
    trunk_mux: bool,
    origin: &mut OriginState,
) -> Result<SessionDescription, RewriteError> {
    let offered = active_audio(teams_offer, Side::Teams)?;
    require_srtp(offered)?;
    let formats = codecs::select_formats(offered, policy)?;
    let direction = teams_offer.effective_direction(offered);
    let media = anchored(
        offered,
        leg,
        "RTP/AVP",
        formats,
        rtcp_lead(leg, trunk_mux),
        direction,
    );
    Ok(origin.stamp(session(leg, teams_offer, vec![media])))
}

/// Trunk answer → answer toward Teams for `teams_offer`: the offer's SRTP profile, our
/// `a=crypto` (`crypto` is the attribute value, e.g. `1 AES_CM_128_HMAC_SHA1_80 inline:...`),
/// rtcp-mux as Teams offered it, codecs as the trunk answered. A trunk-side hold becomes
/// `a=inactive` (TDR-INV-16).
pub fn answer_to_teams(
    trunk_answer: &SessionDescription,
    teams_offer: &SessionDescription,
    leg: &LegMedia,
    crypto: &str,
    origin: &mut OriginState,
) -> Result<SessionDescription, RewriteError> {
    check_crypto(crypto)?;
    let offer_index = first_active_audio(teams_offer, Side::Teams)?;
    let offered = &teams_offer.media[offer_index];
    require_srtp(offered)?;
    let answered = active_audio(trunk_answer, Side::Trunk)?;
    let formats = codecs::answered_formats(answered, offered)?;

    // RFC 3264 §6.1 lets the answer narrow the offer's direction. Narrowing that merely mirrors
    // a Teams hold (Teams sendonly, trunk recvonly) is kept; any other narrowing, or the
    // RFC 2543 c=0.0.0.0, is the trunk holding, which Teams only understands as a=inactive
    // (TDR-INV-16).
    let allowed = teams_offer.effective_direction(offered).reversed();
    let said = intersect(allowed, trunk_answer.effective_direction(answered));
    let direction = if zero_address(trunk_answer, answered) {
        Direction::Inactive
    } else if said == Direction::SendRecv || said == allowed {
        said
    } else {
        Direction::Inactive
    };

    let lead = teams_lead(offered.rtcp_mux(), leg, crypto);
    let media = anchored(answered, leg, &offered.proto, formats, lead, direction);
    Ok(origin.stamp(session(
        leg,
        trunk_answer,
        mirror(teams_offer, offer_index, media),
    )))
}

/// Trunk offer → offer toward Teams: RTP/SAVP with our `a=crypto` and rtcp-mux on the SBC's
/// Teams-side address. A delayed-offer trunk INVITE (`None`) gets an offer built from the
/// policy (TDR-INV-05). Any trunk-side hold is offered as `a=inactive` (TDR-INV-16).
pub fn offer_to_teams(
    trunk_offer: Option<&SessionDescription>,
    leg: &LegMedia,
    policy: &CodecPolicy,
    crypto: &str,
    origin: &mut OriginState,
) -> Result<SessionDescription, RewriteError> {
    check_crypto(crypto)?;
    let lead = teams_lead(true, leg, crypto);
    let sd = match trunk_offer {
        None => {
            let (formats, attributes) = codecs::built_offer(policy)?;
            let mut media = audio_line(leg.port, "RTP/SAVP", formats);
            media.attributes = lead.into_iter().chain(attributes).collect();
            media.set_direction(Direction::SendRecv);
            blank_session(leg, vec![media])
        }
        Some(offer) => {
            let offered = active_audio(offer, Side::Trunk)?;
            let formats = codecs::select_formats(offered, policy)?;
            let direction = match offer.effective_direction(offered) {
                Direction::SendRecv if !zero_address(offer, offered) => Direction::SendRecv,
                _ => Direction::Inactive,
            };
            let media = anchored(offered, leg, "RTP/SAVP", formats, lead, direction);
            session(leg, offer, vec![media])
        }
    };
    Ok(origin.stamp(sd))
}

/// Teams answer → answer toward the trunk: the trunk offer's RTP profile, no crypto, the SBC's
/// trunk-side address, codecs as Teams answered. With a delayed-offer trunk (`None`) this is
/// the SBC's offer in the 200, made of what Teams answered.
pub fn answer_to_trunk(
    teams_answer: &SessionDescription,
    trunk_offer: Option<&SessionDescription>,
    leg: &LegMedia,
    trunk_mux: bool,
    origin: &mut OriginState,
) -> Result<SessionDescription, RewriteError> {
    let answered = active_audio(teams_answer, Side::Teams)?;
    require_srtp(answered)?;
    let said = teams_answer.effective_direction(answered);
    let sd = match trunk_offer {
        None => {
            let media = anchored(
                answered,
                leg,
                "RTP/AVP",
                answered.formats.clone(),
                rtcp_lead(leg, trunk_mux),
                said,
            );
            session(leg, teams_answer, vec![media])
        }
        Some(offer) => {
            let offer_index = first_active_audio(offer, Side::Trunk)?;
            let offered = &offer.media[offer_index];
            let formats = codecs::answered_formats(answered, offered)?;
            let direction = intersect(offer.effective_direction(offered).reversed(), said);
            // RFC 5761 §5.1.1: the answer may only mux if the offer asked for it.
            let lead = rtcp_lead(leg, trunk_mux && offered.rtcp_mux());
            let media = anchored(answered, leg, &offered.proto, formats, lead, direction);
            session(leg, teams_answer, mirror(offer, offer_index, media))
        }
    };
    Ok(origin.stamp(sd))
}

/// Attributes that describe the sender's transport, keys or bundling: never copied to the
/// other leg, where the SBC is the endpoint.
const TRANSPORT_ATTRIBUTES: [&str; 18] = [
    "crypto",
    "candidate",
    "remote-candidates",
    "end-of-candidates",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "ice-mismatch",
    "fingerprint",
    "setup",
    "tls-id",
    "rtcp",
    "rtcp-mux",
    "rtcp-mux-only",
    "group",
    "mid",
    "connection",
];

/// Attributes whose first token is a payload type; they follow their format in or out.
const PER_PAYLOAD_ATTRIBUTES: [&str; 3] = ["rtpmap", "fmtp", "rtcp-fb"];

fn carried(attributes: &[Attribute], formats: Option<&[String]>) -> Vec<Attribute> {
    attributes
        .iter()
        .filter(|a| {
            if TRANSPORT_ATTRIBUTES.contains(&a.name.as_str())
                || Direction::from_attribute_name(&a.name).is_some()
            {
                return false;
            }
            match formats {
                Some(formats) if PER_PAYLOAD_ATTRIBUTES.contains(&a.name.as_str()) => {
                    let pt = a.value.as_deref().unwrap_or_default();
                    let pt = pt.split_ascii_whitespace().next().unwrap_or_default();
                    pt == "*" || formats.iter().any(|f| f == pt)
                }
                _ => true,
            }
        })
        .cloned()
        .collect()
}

fn anchored(
    source: &MediaDescription,
    leg: &LegMedia,
    proto: &str,
    formats: Vec<String>,
    lead: Vec<Attribute>,
    direction: Direction,
) -> MediaDescription {
    let mut media = audio_line(leg.port, proto, formats);
    media.information = source.information.clone();
    media.bandwidths = source.bandwidths.clone();
    media.unknown_lines = source.unknown_lines.clone();
    media.attributes = lead
        .into_iter()
        .chain(carried(&source.attributes, Some(&media.formats)))
        .collect();
    media.set_direction(direction);
    media
}

fn audio_line(port: u16, proto: &str, formats: Vec<String>) -> MediaDescription {
    MediaDescription {
        media: "audio".to_owned(),
        port,
        port_count: None,
        proto: proto.to_owned(),
        formats,
        information: None,
        connection: None,
        bandwidths: Vec::new(),
        encryption_key: None,
        unknown_lines: Vec::new(),
        attributes: Vec::new(),
    }
}

/// RFC 3264 §6: one answer m-line per offer m-line; all but the anchored one get port 0.
fn mirror(
    offer: &SessionDescription,
    anchored_index: usize,
    anchored: MediaDescription,
) -> Vec<MediaDescription> {
    let mut anchored = Some(anchored);
    offer
        .media
        .iter()
        .enumerate()
        .map(
            |(index, offered)| match anchored.take_if(|_| index == anchored_index) {
                Some(media) => media,
                None => MediaDescription {
                    media: offered.media.clone(),
                    port: 0,
                    port_count: None,
                    proto: offered.proto.clone(),
                    formats: offered.formats.clone(),
                    information: None,
                    connection: None,
                    bandwidths: Vec::new(),
                    encryption_key: None,
                    unknown_lines: Vec::new(),
                    attributes: Vec::new(),
                },
            },
        )
        .collect()
}

fn blank_session(leg: &LegMedia, media: Vec<MediaDescription>) -> SessionDescription {
    SessionDescription {
        // Replaced by OriginState::stamp.
        origin: super::model::Origin {
            username: String::new(),
            session_id: 0,
            session_version: 0,
            net_type: String::new(),
            addr_type: String::new(),
            address: String::new(),
        },
        session_name: "-".to_owned(),
        information: None,
        uri: None,
        emails: Vec::new(),
        phones: Vec::new(),
        connection: Some(Connection::from_ip(leg.address)),
        bandwidths: Vec::new(),
        times: vec![Timing {
            start: 0,
            stop: 0,
            repeats: Vec::new(),
        }],
        time_zones: None,
        encryption_key: None,
        unknown_lines: Vec::new(),
        attributes: Vec::new(),
        media,
    }
}

/// Our session around `media`, carrying the source's unknown lines and media-neutral
/// attributes. Session-level `b=` is not carried: `b=CT` states the peer's conference total
/// (RFC 8866 §5.8), not something the SBC's leg promises (and TDR-SIG-12 asks for less).
fn session(
    leg: &LegMedia,
    source: &SessionDescription,
    media: Vec<MediaDescription>,
) -> SessionDescription {
    let mut sd = blank_session(leg, media);
    sd.unknown_lines = source.unknown_lines.clone();
    sd.attributes = carried(&source.attributes, None);
    sd
}

fn first_active_audio(sd: &SessionDescription, side: Side) -> Result<usize, RewriteError> {
    sd.first_active_audio()
        .ok_or(RewriteError::NoAudioStream { side })
}

fn active_audio(sd: &SessionDescription, side: Side) -> Result<&MediaDescription, RewriteError> {
    let index = first_active_audio(sd, side)?;
    sd.media
        .get(index)
        .ok_or(RewriteError::NoAudioStream { side })
}

/// TDR-MED-01: RTP/SAVP (or its TCP/DTLS/feedback variants) and SDES keys to go with it.
fn require_srtp(media: &MediaDescription) -> Result<(), RewriteError> {
    let savp = media.proto.ends_with("/SAVP") || media.proto.ends_with("/SAVPF");
    if savp && !media.crypto_lines().is_empty() {
        Ok(())
    } else {
        Err(RewriteError::SrtpRequired)
    }
}

fn check_crypto(crypto: &str) -> Result<(), RewriteError> {
    if crypto.trim().is_empty() || crypto.contains(['\r', '\n']) {
        return Err(RewriteError::InvalidCrypto);
    }
    Ok(())
}

/// Toward Teams: rtcp-mux (TDR-MED-04) when the peer can take it, else a=rtcp; then our key.
fn teams_lead(mux: bool, leg: &LegMedia, crypto: &str) -> Vec<Attribute> {
    let mut lead = rtcp_lead(leg, mux);
    lead.push(Attribute::with_value("crypto", crypto));
    lead
}

fn rtcp_lead(leg: &LegMedia, mux: bool) -> Vec<Attribute> {
    if mux {
        vec![Attribute::flag("rtcp-mux")]
    } else {
        leg.rtcp_port
            .map(|port| Attribute::with_value("rtcp", port.to_string()))
            .into_iter()
            .collect()
    }
}

fn zero_address(sd: &SessionDescription, media: &MediaDescription) -> bool {
    sd.connection_for(media)
        .and_then(Connection::ip)
        .is_some_and(|ip| ip.is_unspecified())
}

/// Both may send only if both allow it; likewise for receiving.
fn intersect(a: Direction, b: Direction) -> Direction {
    let sends = |d| matches!(d, Direction::SendRecv | Direction::SendOnly);
    let receives = |d| matches!(d, Direction::SendRecv | Direction::RecvOnly);
    match (sends(a) && sends(b), receives(a) && receives(b)) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}
