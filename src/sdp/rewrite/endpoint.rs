//! What the media plane needs from a peer's SDP.

use std::net::SocketAddr;

use crate::sdp::model::{Codec, Direction, SessionDescription};

/// The peer's audio stream as the media plane sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Where to send RTP: the media-level `c=` over the session-level one, and the m-line port.
    pub addr: SocketAddr,
    /// Where to send RTCP: `a=rtcp` (RFC 3605) or RTP port + 1; `None` when the peer muxes.
    pub rtcp: Option<SocketAddr>,
    /// The peer listed `a=rtcp-mux` (RFC 5761).
    pub mux: bool,
    pub direction: Direction,
    /// Raw `a=crypto` values, in order, for `media::sdes`.
    pub crypto_lines: Vec<String>,
    /// The peer holds the stream: not sendrecv, or the RFC 2543 `c=0.0.0.0` style.
    pub hold: bool,
    /// The formats resolved to codecs, in the m-line's order (telephone-event payload type etc.).
    pub codecs: Vec<Codec>,
}

/// The first audio m-line that is not disabled; `None` if there is none or its address is not
/// an IP literal.
pub fn media_endpoint(sd: &SessionDescription) -> Option<RemoteMedia> {
    let media = sd.media.get(sd.first_active_audio()?)?;
    let ip = sd.connection_for(media)?.ip()?;
    let addr = SocketAddr::new(ip, media.port);
    let mux = media.rtcp_mux();
    let rtcp = if mux {
        None
    } else {
        match media.rtcp() {
            Some(rtcp) => {
                let rtcp_ip = rtcp.connection.as_ref().and_then(|c| c.ip()).unwrap_or(ip);
                Some(SocketAddr::new(rtcp_ip, rtcp.port))
            }
            None => media
                .port
                .checked_add(1)
                .map(|port| SocketAddr::new(ip, port)),
        }
    };
    let direction = sd.effective_direction(media);
    Some(RemoteMedia {
        addr,
        rtcp,
        mux,
        direction,
        crypto_lines: media
            .crypto_lines()
            .into_iter()
            .map(str::to_owned)
            .collect(),
        hold: direction != Direction::SendRecv || ip.is_unspecified(),
        codecs: media.codecs(),
    })
}
