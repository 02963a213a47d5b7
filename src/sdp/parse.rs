//! RFC 8866 §5/§9 parser: one pass over the lines, LF or CRLF, no panics on any input.
//!
//! Lenient where real peers are sloppy and strictness buys nothing (blank lines, a missing `s=`
//! or `t=`, runs of spaces between fields), strict where a wrong guess would misroute media
//! (`o=`, `c=`, `m=`, numbers).

use std::str::FromStr;

use super::model::{
    Attribute, Bandwidth, Connection, Line, MediaDescription, Origin, SessionDescription, Timing,
};

/// Why an SDP body was refused. `line` is 1-based, counting every line of the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("SDP is not UTF-8 (valid up to byte {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    #[error("SDP is empty")]
    Empty,
    #[error("line {line}: expected `<letter>=<value>`")]
    MalformedLine { line: usize },
    #[error("line {line}: SDP must start with `v=0`")]
    BadVersion { line: usize },
    #[error("line {line}: `{kind}=` is not allowed here")]
    UnexpectedLine { line: usize, kind: char },
    #[error("line {line}: second `{kind}=` in the same section")]
    DuplicateLine { line: usize, kind: char },
    #[error("line {line}: bad {field} in `{kind}=`")]
    BadField {
        line: usize,
        kind: char,
        field: &'static str,
    },
    #[error("missing `{kind}=` line")]
    MissingLine { kind: char },
}

impl SessionDescription {
    /// Parse an SDP body.
    pub fn parse(text: &str) -> Result<SessionDescription, ParseError> {
        Parser::default().run(text)
    }

    /// Parse a SIP message body, which arrives as bytes.
    pub fn from_bytes(body: &[u8]) -> Result<SessionDescription, ParseError> {
        let text = std::str::from_utf8(body).map_err(|e| ParseError::NotUtf8 {
            valid_up_to: e.valid_up_to(),
        })?;
        SessionDescription::parse(text)
    }
}

impl FromStr for SessionDescription {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionDescription::parse(s)
    }
}

#[derive(Default)]
struct SessionParts {
    origin: Option<Origin>,
    session_name: Option<String>,
    information: Option<String>,
    uri: Option<String>,
    emails: Vec<String>,
    phones: Vec<String>,
    connection: Option<Connection>,
    bandwidths: Vec<Bandwidth>,
    times: Vec<Timing>,
    time_zones: Option<String>,
    encryption_key: Option<String>,
    unknown_lines: Vec<Line>,
    attributes: Vec<Attribute>,
}

#[derive(Default)]
struct Parser {
    session: SessionParts,
    media: Vec<MediaDescription>,
    seen_version: bool,
}

impl Parser {
    fn run(mut self, text: &str) -> Result<SessionDescription, ParseError> {
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.is_empty() {
                continue;
            }
            let mut chars = raw.chars();
            let (Some(kind), Some('=')) = (chars.next(), chars.next()) else {
                return Err(ParseError::MalformedLine { line });
            };
            if !kind.is_ascii_alphabetic() {
                return Err(ParseError::MalformedLine { line });
            }
            // The type letter and '=' are ASCII, so byte 2 is a char boundary.
            let value = raw.get(2..).unwrap_or_default();
            self.line(line, kind, value)?;
        }
        self.finish()
    }

    fn line(&mut self, line: usize, kind: char, value: &str) -> Result<(), ParseError> {
        if !self.seen_version {
            // RFC 8866 §5.1: the description starts with v=0.
            if kind != 'v' || value != "0" {
                return Err(ParseError::BadVersion { line });
            }
            self.seen_version = true;
            return Ok(());
        }
        if kind == 'm' {
            self.media.push(parse_media(line, value)?);
            return Ok(());
        }
        match self.media.last_mut() {
            Some(media) => media_line(media, line, kind, value),
            None => self.session_line(line, kind, value),
        }
    }

    fn session_line(&mut self, line: usize, kind: char, value: &str) -> Result<(), ParseError> {
        let s = &mut self.session;
        match kind {
            'v' => return Err(ParseError::UnexpectedLine { line, kind }),
            'o' => set_once(&mut s.origin, parse_origin(line, value)?, line, kind)?,
            's' => set_once(&mut s.session_name, value.to_owned(), line, kind)?,
            'i' => set_once(&mut s.information, value.to_owned(), line, kind)?,
            'u' => set_once(&mut s.uri, value.to_owned(), line, kind)?,
            'e' => s.emails.push(value.to_owned()),
            'p' => s.phones.push(value.to_owned()),
            'c' => set_once(
                &mut s.connection,
                parse_connection(line, value)?,
                line,
                kind,
            )?,
            'b' => s.bandwidths.push(parse_bandwidth(line, value)?),
            't' => s.times.push(parse_timing(line, value)?),
            'r' => match s.times.last_mut() {
                Some(timing) => timing.repeats.push(value.to_owned()),
                None => return Err(ParseError::UnexpectedLine { line, kind }),
            },
            'z' => set_once(&mut s.time_zones, value.to_owned(), line, kind)?,
            'k' => set_once(&mut s.encryption_key, value.to_owned(), line, kind)?,
            'a' => s.attributes.push(parse_attribute(line, value)?),
            _ => s.unknown_lines.push(Line {
                kind,
                value: value.to_owned(),
            }),
        }
        Ok(())
    }

    fn finish(self) -> Result<SessionDescription, ParseError> {
        if !self.seen_version {
            return Err(ParseError::Empty);
        }
        let s = self.session;
        Ok(SessionDescription {
            origin: s.origin.ok_or(ParseError::MissingLine { kind: 'o' })?,
            session_name: s.session_name.unwrap_or_default(),
            information: s.information,
            uri: s.uri,
            emails: s.emails,
            phones: s.phones,
            connection: s.connection,
            bandwidths: s.bandwidths,
            times: s.times,
            time_zones: s.time_zones,
            encryption_key: s.encryption_key,
            unknown_lines: s.unknown_lines,
            attributes: s.attributes,
            media: self.media,
        })
    }
}

fn media_line(
    media: &mut MediaDescription,
    line: usize,
    kind: char,
    value: &str,
) -> Result<(), ParseError> {
    match kind {
        // RFC 8866 §5: these belong to the session part only.
        'v' | 'o' | 's' | 'u' | 'e' | 'p' | 't' | 'r' | 'z' => {
            return Err(ParseError::UnexpectedLine { line, kind });
        }
        'i' => set_once(&mut media.information, value.to_owned(), line, kind)?,
        // RFC 8866 §5.7 allows several c= per media for layered multicast; an SBC never
        // anchors multicast, so a second one is refused rather than half-understood.
        'c' => set_once(
            &mut media.connection,
            parse_connection(line, value)?,
            line,
            kind,
        )?,
        'b' => media.bandwidths.push(parse_bandwidth(line, value)?),
        'k' => set_once(&mut media.encryption_key, value.to_owned(), line, kind)?,
        'a' => media.attributes.push(parse_attribute(line, value)?),
        _ => media.unknown_lines.push(Line {
            kind,
            value: value.to_owned(),
        }),
    }
    Ok(())
}

fn set_once<T>(slot: &mut Option<T>, value: T, line: usize, kind: char) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(ParseError::DuplicateLine { line, kind });
    }
    *slot = Some(value);
    Ok(())
}

fn bad(line: usize, kind: char, field: &'static str) -> ParseError {
    ParseError::BadField { line, kind, field }
}

fn token<'a>(
    parts: &mut impl Iterator<Item = &'a str>,
    line: usize,
    kind: char,
    field: &'static str,
) -> Result<&'a str, ParseError> {
    parts.next().ok_or(bad(line, kind, field))
}

fn number<T: FromStr>(
    text: &str,
    line: usize,
    kind: char,
    field: &'static str,
) -> Result<T, ParseError> {
    // `u64::from_str` accepts a leading '+', which RFC 8866's 1*DIGIT does not.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(line, kind, field));
    }
    text.parse().map_err(|_| bad(line, kind, field))
}

fn parse_origin(line: usize, value: &str) -> Result<Origin, ParseError> {
    let mut parts = value.split_ascii_whitespace();
    let username = token(&mut parts, line, 'o', "username")?.to_owned();
    let session_id = number(
        token(&mut parts, line, 'o', "sess-id")?,
        line,
        'o',
        "sess-id",
    )?;
    let session_version = number(
        token(&mut parts, line, 'o', "sess-version")?,
        line,
        'o',
        "sess-version",
    )?;
    let net_type = token(&mut parts, line, 'o', "nettype")?.to_owned();
    let addr_type = token(&mut parts, line, 'o', "addrtype")?.to_owned();
    let address = token(&mut parts, line, 'o', "unicast-address")?.to_owned();
    if parts.next().is_some() {
        return Err(bad(line, 'o', "field count"));
    }
    Ok(Origin {
        username,
        session_id,
        session_version,
        net_type,
        addr_type,
        address,
    })
}

fn parse_connection(line: usize, value: &str) -> Result<Connection, ParseError> {
    let mut parts = value.split_ascii_whitespace();
    let net_type = token(&mut parts, line, 'c', "nettype")?.to_owned();
    let addr_type = token(&mut parts, line, 'c', "addrtype")?.to_owned();
    let address = token(&mut parts, line, 'c', "connection-address")?.to_owned();
    if parts.next().is_some() {
        return Err(bad(line, 'c', "field count"));
    }
    Ok(Connection {
        net_type,
        addr_type,
        address,
    })
}

fn parse_bandwidth(line: usize, value: &str) -> Result<Bandwidth, ParseError> {
    let (bwtype, bandwidth) = value.split_once(':').ok_or(bad(line, 'b', "bwtype"))?;
    if bwtype.is_empty() || bwtype.contains(char::is_whitespace) {
        return Err(bad(line, 'b', "bwtype"));
    }
    Ok(Bandwidth {
        bwtype: bwtype.to_owned(),
        bandwidth: number(bandwidth, line, 'b', "bandwidth")?,
    })
}

fn parse_timing(line: usize, value: &str) -> Result<Timing, ParseError> {
    let mut parts = value.split_ascii_whitespace();
    let start = number(
        token(&mut parts, line, 't', "start-time")?,
        line,
        't',
        "start-time",
    )?;
    let stop = number(
        token(&mut parts, line, 't', "stop-time")?,
        line,
        't',
        "stop-time",
    )?;
    if parts.next().is_some() {
        return Err(bad(line, 't', "field count"));
    }
    Ok(Timing {
        start,
        stop,
        repeats: Vec::new(),
    })
}

fn parse_attribute(line: usize, value: &str) -> Result<Attribute, ParseError> {
    let (name, value) = match value.split_once(':') {
        Some((name, rest)) => (name, Some(rest.to_owned())),
        None => (value, None),
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(bad(line, 'a', "attribute name"));
    }
    Ok(Attribute {
        name: name.to_owned(),
        value,
    })
}

fn parse_media(line: usize, value: &str) -> Result<MediaDescription, ParseError> {
    let mut parts = value.split_ascii_whitespace();
    let media = token(&mut parts, line, 'm', "media")?.to_owned();
    let port_text = token(&mut parts, line, 'm', "port")?;
    let (port, port_count) = match port_text.split_once('/') {
        Some((port, count)) => (port, Some(number(count, line, 'm', "number of ports")?)),
        None => (port_text, None),
    };
    let port = number(port, line, 'm', "port")?;
    let proto = token(&mut parts, line, 'm', "proto")?.to_owned();
    // RFC 8866 wants at least one format, but port-0 rejections in the wild sometimes have
    // none; refusing the whole SDP for that would fail the call for nothing.
    let formats = parts.map(str::to_owned).collect();
    Ok(MediaDescription {
        media,
        port,
        port_count,
        proto,
        formats,
        information: None,
        connection: None,
        bandwidths: Vec::new(),
        encryption_key: None,
        unknown_lines: Vec::new(),
        attributes: Vec::new(),
    })
}
