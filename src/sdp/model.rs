//! The session description as data, and the lookups the rewrite needs.
//!
//! Fields follow RFC 8866 §5 in print order. Lines whose type letter we do not know are kept in
//! [`Line`] lists (RFC 8866 §5 lets a parser reject them; an SBC that passes a peer's extensions
//! through is more useful) and printed just before the attributes of their section.

use std::net::IpAddr;

/// One SDP: the session-level part and its media sections.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionDescription {
    pub origin: Origin,
    /// `s=`; RFC 8866 §5.3 wants a single space or `-` when there is nothing to say.
    pub session_name: String,
    /// `i=`
    pub information: Option<String>,
    /// `u=`
    pub uri: Option<String>,
    /// `e=` lines.
    pub emails: Vec<String>,
    /// `p=` lines.
    pub phones: Vec<String>,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    pub bandwidths: Vec<Bandwidth>,
    /// `t=` lines, each with its `r=` lines. RFC 8866 requires at least one.
    pub times: Vec<Timing>,
    /// `z=` value, raw.
    pub time_zones: Option<String>,
    /// `k=` value, raw (obsolete, RFC 8866 §5.12).
    pub encryption_key: Option<String>,
    /// Lines with a type letter RFC 8866 does not define, in order.
    pub unknown_lines: Vec<Line>,
    pub attributes: Vec<Attribute>,
    pub media: Vec<MediaDescription>,
}

/// `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub username: String,
    pub session_id: u64,
    pub session_version: u64,
    pub net_type: String,
    pub addr_type: String,
    /// An IP literal or a domain name; see [`Origin::ip`].
    pub address: String,
}

/// `c=<nettype> <addrtype> <connection-address>`. The address is kept as text because it may be
/// a domain name or a multicast address with `/ttl/count`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Connection {
    pub net_type: String,
    pub addr_type: String,
    pub address: String,
}

/// `b=<bwtype>:<bandwidth>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bandwidth {
    pub bwtype: String,
    pub bandwidth: u64,
}

/// `t=<start> <stop>` and the `r=` lines that follow it (kept raw).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Timing {
    pub start: u64,
    pub stop: u64,
    pub repeats: Vec<String>,
}

/// A line whose type letter we do not know, e.g. `x=foo` is `Line { kind: 'x', value: "foo" }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Line {
    pub kind: char,
    pub value: String,
}

/// `a=<name>` or `a=<name>:<value>`. `a=foo:` keeps `Some("")` so it prints back the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MediaDescription {
    /// `audio`, `video`, `application`, ...
    pub media: String,
    /// 0 means the stream is rejected or disabled (RFC 3264 §6, §8.2).
    pub port: u16,
    /// The `/<number of ports>` suffix, if present.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVP`, ...
    pub proto: String,
    /// Payload type numbers for RTP profiles, kept as text as RFC 8866 §5.14 defines them.
    pub formats: Vec<String>,
    pub information: Option<String>,
    /// Media-level `c=`; overrides the session-level one.
    pub connection: Option<Connection>,
    pub bandwidths: Vec<Bandwidth>,
    pub encryption_key: Option<String>,
    pub unknown_lines: Vec<Line>,
    pub attributes: Vec<Attribute>,
}

/// RFC 3264 §5.1 stream direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

/// A payload type resolved through `a=rtpmap`, or the RFC 3551 static table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Codec {
    pub payload_type: u8,
    /// Encoding name as written (`PCMU`, `telephone-event`); compare case-insensitively.
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u16>,
}

/// `a=rtcp:<port> [<nettype> <addrtype> <address>]` (RFC 3605).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rtcp {
    pub port: u16,
    pub connection: Option<Connection>,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    pub fn from_attribute_name(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    /// The direction an answerer mirrors (RFC 3264 §6.1): sendonly is answered recvonly.
    pub fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        }
    }
}

impl Attribute {
    pub fn flag(name: &str) -> Attribute {
        Attribute {
            name: name.to_owned(),
            value: None,
        }
    }

    pub fn with_value(name: &str, value: impl Into<String>) -> Attribute {
        Attribute {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }
}

impl Connection {
    /// `IN IP4 a.b.c.d` or `IN IP6 x::y` for an IP address.
    pub fn from_ip(ip: IpAddr) -> Connection {
        Connection {
            net_type: "IN".to_owned(),
            addr_type: addr_type_of(ip).to_owned(),
            address: ip.to_string(),
        }
    }

    /// The unicast IP, if the address is an IP literal. A multicast `/ttl` suffix is ignored;
    /// a domain name gives `None` (the caller would have to resolve it, which an SBC should not
    /// do for media). The address type is not checked against the literal: RFC 5118 §4.9 shows
    /// IPv4-mapped literals under `IP6`.
    pub fn ip(&self) -> Option<IpAddr> {
        let literal = self.address.split('/').next().unwrap_or_default();
        literal.parse().ok()
    }
}

impl Origin {
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }
}

pub(crate) fn addr_type_of(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// RFC 3551 §6 static audio payload types an SBC meets in practice.
pub(crate) fn static_codec(payload_type: u8) -> Option<(&'static str, u32)> {
    Some(match payload_type {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        13 => ("CN", 8000),
        15 => ("G728", 8000),
        18 => ("G729", 8000),
        _ => return None,
    })
}

fn find_attr<'a>(attrs: &'a [Attribute], name: &str) -> Option<&'a Attribute> {
    attrs.iter().find(|a| a.name == name)
}

fn direction_of(attrs: &[Attribute]) -> Option<Direction> {
    attrs
        .iter()
        .find_map(|a| Direction::from_attribute_name(&a.name))
}

impl SessionDescription {
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        find_attr(&self.attributes, name)
    }

    /// Session-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// RFC 8866 §6.7: a media-level direction overrides the session level; none means sendrecv.
    pub fn effective_direction(&self, media: &MediaDescription) -> Direction {
        media
            .direction()
            .or(self.direction())
            .unwrap_or(Direction::SendRecv)
    }

    /// The `c=` that applies to `media`: media level over session level.
    pub fn connection_for<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Connection> {
        media.connection.as_ref().or(self.connection.as_ref())
    }

    /// Index of the first audio m-line that is not disabled (port 0): the stream the SBC anchors.
    pub fn first_active_audio(&self) -> Option<usize> {
        self.media
            .iter()
            .position(|m| m.media.eq_ignore_ascii_case("audio") && m.port != 0)
    }
}

impl MediaDescription {
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        find_attr(&self.attributes, name)
    }

    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> {
        self.attributes.iter().filter(move |a| a.name == name)
    }

    pub fn has_attribute(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }

    /// Media-level direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.attributes)
    }

    /// Replace the direction attribute in place (keeping its position), or append one.
    /// Extra direction attributes, which RFC 3264 does not allow, are removed.
    pub fn set_direction(&mut self, direction: Direction) {
        let mut placed = false;
        self.attributes.retain_mut(|a| {
            if Direction::from_attribute_name(&a.name).is_none() {
                return true;
            }
            if placed {
                return false;
            }
            placed = true;
            *a = Attribute::flag(direction.as_str());
            true
        });
        if !placed {
            self.attributes.push(Attribute::flag(direction.as_str()));
        }
    }

    /// `a=rtcp-mux` (RFC 5761).
    pub fn rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }

    /// `a=rtcp` (RFC 3605); `None` if absent or malformed.
    pub fn rtcp(&self) -> Option<Rtcp> {
        let value = self.attribute("rtcp")?.value.as_deref()?;
        let mut parts = value.split_ascii_whitespace();
        let port = parts.next()?.parse().ok()?;
        let connection = match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(t), Some(a)) => Some(Connection {
                net_type: n.to_owned(),
                addr_type: t.to_owned(),
                address: a.to_owned(),
            }),
            _ => None,
        };
        Some(Rtcp { port, connection })
    }

    /// The raw values of the `a=crypto` lines (RFC 4568), in order, for `media::sdes` to parse.
    pub fn crypto_lines(&self) -> Vec<&str> {
        self.attributes_named("crypto")
            .filter_map(|a| a.value.as_deref())
            .collect()
    }

    /// The `a=rtpmap` value for a payload type, e.g. `PCMU/8000`.
    pub fn rtpmap(&self, payload_type: &str) -> Option<&str> {
        self.attr_for_payload("rtpmap", payload_type)
    }

    /// The `a=fmtp` parameters for a payload type, e.g. `0-16`.
    pub fn fmtp(&self, payload_type: &str) -> Option<&str> {
        self.attr_for_payload("fmtp", payload_type)
    }

    fn attr_for_payload<'a>(&'a self, name: &'a str, payload_type: &str) -> Option<&'a str> {
        self.attributes_named(name).find_map(|a| {
            let value = a.value.as_deref()?;
            let (pt, rest) = value.split_once(' ')?;
            (pt == payload_type).then(|| rest.trim_start())
        })
    }

    /// The codec behind a format: its `a=rtpmap`, else the RFC 3551 static assignment.
    /// `None` for non-numeric formats and dynamic types without a usable rtpmap.
    pub fn codec(&self, format: &str) -> Option<Codec> {
        let payload_type: u8 = format.parse().ok().filter(|pt| *pt <= 127)?;
        if let Some(map) = self.rtpmap(format) {
            let mut parts = map.split('/');
            let encoding = parts.next().filter(|e| !e.is_empty())?.to_owned();
            let clock_rate = parts.next()?.trim().parse().ok()?;
            let channels = parts.next().and_then(|c| c.trim().parse().ok());
            return Some(Codec {
                payload_type,
                encoding,
                clock_rate,
                channels,
            });
        }
        let (encoding, clock_rate) = static_codec(payload_type)?;
        Some(Codec {
            payload_type,
            encoding: encoding.to_owned(),
            clock_rate,
            channels: None,
        })
    }

    /// All formats resolved to codecs, skipping the ones [`MediaDescription::codec`] cannot name.
    pub fn codecs(&self) -> Vec<Codec> {
        self.formats.iter().filter_map(|f| self.codec(f)).collect()
    }
}

impl Codec {
    pub fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("telephone-event")
    }

    pub fn is_comfort_noise(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("CN")
    }

    /// Same codec: encoding name (case-insensitive), clock rate and channels (absent = 1).
    pub fn same_codec(&self, other: &Codec) -> bool {
        self.encoding.eq_ignore_ascii_case(&other.encoding)
            && self.clock_rate == other.clock_rate
            && self.channels.unwrap_or(1) == other.channels.unwrap_or(1)
    }
}
