//! SDP (RFC 8866, formerly RFC 4566): parse, print, and the SBC's offer/answer rewrite.
//!
//! Every SDP that crosses the SBC is rewritten so media is anchored on the SBC: the Teams leg
//! speaks RTP/SAVP with SDES and rtcp-mux (TDR-MED-01/02/04), the trunk leg plain RTP/AVP.
//! Everything here is pure: no sockets, no SIP, no clock. The B2BUA supplies the SBC's
//! addresses and ports ([`LegMedia`]), the codec policy and the SDES line it generated, and
//! sends what comes back.
//!
//! Parsing is lossless for what we do not understand: unknown attributes and unknown line types
//! are kept in order and printed back unchanged, so a peer's extensions survive the SBC unless a
//! rewrite rule removes them on purpose (crypto, ICE, DTLS toward the trunk).

mod model;
mod parse;
mod print;
mod rewrite;
mod snapshot;

#[cfg(test)]
mod tests;

pub use model::{
    Attribute, Bandwidth, Codec, Connection, Direction, Line, MediaDescription, Origin, Rtcp,
    SessionDescription, Timing,
};
pub use parse::ParseError;
pub use rewrite::{
    CodecPolicy, LegMedia, OriginState, RemoteMedia, RewriteError, Side, answer_to_teams,
    answer_to_trunk, media_endpoint, offer_to_teams, offer_to_trunk,
};
