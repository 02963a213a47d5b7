//! Printing in RFC 8866 §5 order with CRLF line ends (RFC 8866 §5: CRLF is the line end an
//! SDP sender MUST use, even though receivers should accept LF).

use std::fmt::{self, Display, Formatter};

use super::model::{
    Attribute, Bandwidth, Connection, Line, MediaDescription, Origin, SessionDescription,
};

impl Display for SessionDescription {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("v=0\r\n")?;
        write!(f, "o={}\r\n", self.origin)?;
        write!(f, "s={}\r\n", self.session_name)?;
        optional(f, 'i', self.information.as_deref())?;
        optional(f, 'u', self.uri.as_deref())?;
        for email in &self.emails {
            write!(f, "e={email}\r\n")?;
        }
        for phone in &self.phones {
            write!(f, "p={phone}\r\n")?;
        }
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        bandwidths(f, &self.bandwidths)?;
        for timing in &self.times {
            write!(f, "t={} {}\r\n", timing.start, timing.stop)?;
            for repeat in &timing.repeats {
                write!(f, "r={repeat}\r\n")?;
            }
        }
        optional(f, 'z', self.time_zones.as_deref())?;
        optional(f, 'k', self.encryption_key.as_deref())?;
        unknown(f, &self.unknown_lines)?;
        attributes(f, &self.attributes)?;
        for media in &self.media {
            write!(f, "{media}")?;
        }
        Ok(())
    }
}

impl Display for MediaDescription {
    /// The whole media section, each line ending in CRLF.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.proto)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        f.write_str("\r\n")?;
        optional(f, 'i', self.information.as_deref())?;
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        bandwidths(f, &self.bandwidths)?;
        optional(f, 'k', self.encryption_key.as_deref())?;
        unknown(f, &self.unknown_lines)?;
        attributes(f, &self.attributes)
    }
}

impl Display for Origin {
    /// The value of the `o=` line.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {}",
            self.username,
            self.session_id,
            self.session_version,
            self.net_type,
            self.addr_type,
            self.address
        )
    }
}

impl Display for Connection {
    /// The value of the `c=` line.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.net_type, self.addr_type, self.address)
    }
}

impl Display for Attribute {
    /// The value of the `a=` line.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}:{value}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

fn optional(f: &mut Formatter<'_>, kind: char, value: Option<&str>) -> fmt::Result {
    match value {
        Some(value) => write!(f, "{kind}={value}\r\n"),
        None => Ok(()),
    }
}

fn bandwidths(f: &mut Formatter<'_>, list: &[Bandwidth]) -> fmt::Result {
    list.iter()
        .try_for_each(|b| write!(f, "b={}:{}\r\n", b.bwtype, b.bandwidth))
}

fn unknown(f: &mut Formatter<'_>, lines: &[Line]) -> fmt::Result {
    lines
        .iter()
        .try_for_each(|l| write!(f, "{}={}\r\n", l.kind, l.value))
}

fn attributes(f: &mut Formatter<'_>, list: &[Attribute]) -> fmt::Result {
    list.iter().try_for_each(|a| write!(f, "a={a}\r\n"))
}
