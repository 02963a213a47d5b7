//! Byte-level parser: start line, header lines (folding, compact names, LWS
//! before the colon), Content-Length, body. Header names and values become
//! `Bytes` slices of the input; nothing is typed here except the start line.

use bytes::Bytes;

use super::headers::{Headers, Key, MAX_HEADERS};
use super::uri::Uri;
use super::{Defect, Message, ParseError, Request, Response};
use crate::sip::Method;

/// Longest accepted start line or header line (folded lines count together).
/// RFC 4475 §3.1.1.7 has 600-octet lines; 8 KiB leaves room for big
/// Identity or Record-Route values while bounding the work per line.
pub const MAX_LINE_LEN: usize = 8 * 1024;

/// How the body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Stream transports: Content-Length is mandatory and must match the
    /// buffer exactly (RFC 3261 §18.3).
    Stream,
    /// UDP: no Content-Length means "to the end of the datagram"; octets
    /// beyond Content-Length are dropped (RFC 3261 §18.3, RFC 4475 §3.1.1.8).
    Datagram,
}

/// Offset just past the end of the line starting at `from`, and the line's
/// end without its CR. Accepts a bare LF as line end: RFC 3261 §7 asks for
/// CRLF but a tolerant reader costs nothing here.
fn next_line(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let nl = super::lex::find_byte(&buf[from..], b'\n')? + from;
    let end = if nl > from && buf[nl - 1] == b'\r' {
        nl - 1
    } else {
        nl
    };
    Some((end, nl + 1))
}

pub(crate) fn parse(buf: Bytes, framing: Framing) -> Result<Message, ParseError> {
    let b: &[u8] = &buf;
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let mut start = 0;
    while start < b.len() && (b[start] == b'\r' || b[start] == b'\n') {
        start += 1;
    }
    if start == b.len() {
        return Err(ParseError::Empty);
    }
    let is_response = b[start..].starts_with(b"SIP/");
    let wrap = |d: Defect| {
        if is_response {
            ParseError::Response(d)
        } else {
            ParseError::Request(d)
        }
    };
    let (line_end, mut pos) = match next_line(b, start) {
        Some(x) => x,
        None => (b.len(), b.len()),
    };
    if line_end - start > MAX_LINE_LEN {
        return Err(wrap(Defect::LineTooLong {
            line: 1,
            len: line_end - start,
        }));
    }
    let start_line = &b[start..line_end];

    let mut headers = Headers::with_capacity(24);
    let mut content_length: Option<usize> = None;
    // The header being read: name range, value range, and whether a
    // continuation line was folded into it.
    let mut current: Option<(usize, usize, usize, usize, bool)> = None;
    let mut line_no = 1usize;
    let body_start = loop {
        let (end, next) = match next_line(b, pos) {
            Some(x) => x,
            // RFC 4475 §3.1.2.15 ends without the empty line; a datagram's end
            // still ends its header section. On a stream it is a framing fault.
            None if framing == Framing::Datagram => (b.len(), b.len()),
            None => return Err(wrap(Defect::MissingHeaderEnd)),
        };
        line_no += 1;
        let line = &b[pos..end];
        if line.is_empty() {
            if let Some(h) = current.take() {
                finish_header(&buf, h, &mut headers, &mut content_length).map_err(&wrap)?;
            }
            break next.min(b.len());
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // RFC 3261 §7.3.1: a line starting with white space continues the header above.
            let Some(h) = current.as_mut() else {
                return Err(wrap(Defect::BadHeaderLine { line: line_no }));
            };
            h.3 = end;
            h.4 = true;
            if h.3 - h.0 > MAX_LINE_LEN {
                return Err(wrap(Defect::LineTooLong {
                    line: line_no,
                    len: h.3 - h.0,
                }));
            }
        } else {
            if let Some(h) = current.take() {
                finish_header(&buf, h, &mut headers, &mut content_length).map_err(&wrap)?;
            }
            if line.len() > MAX_LINE_LEN {
                return Err(wrap(Defect::LineTooLong {
                    line: line_no,
                    len: line.len(),
                }));
            }
            if headers.len() >= MAX_HEADERS {
                return Err(wrap(Defect::TooManyHeaders { limit: MAX_HEADERS }));
            }
            let colon = line
                .iter()
                .position(|&c| c == b':')
                .ok_or(wrap(Defect::BadHeaderLine { line: line_no }))?;
            // HCOLON = *( SP / HTAB ) ":" SWS
            let name_end = line[..colon]
                .iter()
                .rposition(|&c| c != b' ' && c != b'\t')
                .map_or(0, |p| p + 1);
            if !super::lex::is_token(&line[..name_end]) {
                return Err(wrap(Defect::BadHeaderLine { line: line_no }));
            }
            current = Some((pos, pos + name_end, pos + colon + 1, end, false));
        }
        pos = next;
    };
    let available = b.len() - body_start;
    let body = match (content_length, framing) {
        (Some(n), _) if n > available => {
            return Err(wrap(Defect::BodyTruncated {
                declared: n,
                available,
            }));
        }
        (Some(n), Framing::Stream) if n < available => {
            return Err(wrap(Defect::TrailingOctets {
                count: available - n,
            }));
        }
        (Some(n), _) => buf.slice(body_start..body_start + n),
        (None, Framing::Datagram) => buf.slice(body_start..),
        (None, Framing::Stream) => return Err(wrap(Defect::MissingContentLength)),
    };

    if is_response {
        let (status, reason) = parse_status_line(start_line).map_err(ParseError::Response)?;
        Ok(Message::Response(Response {
            status,
            reason,
            headers,
            body,
        }))
    } else {
        let (method, uri) = parse_request_line(start_line).map_err(ParseError::Request)?;
        Ok(Message::Request(Request {
            method,
            uri,
            headers,
            body,
        }))
    }
}

fn finish_header(
    buf: &Bytes,
    (name_start, name_end, value_start, value_end, folded): (usize, usize, usize, usize, bool),
    headers: &mut Headers,
    content_length: &mut Option<usize>,
) -> Result<(), Defect> {
    let raw = &buf[value_start..value_end];
    let lead = raw
        .iter()
        .position(|&c| !super::lex::is_ws(c))
        .unwrap_or(raw.len());
    let trail = raw
        .iter()
        .rposition(|&c| !super::lex::is_ws(c))
        .map_or(lead, |p| p + 1);
    let value = if folded && raw[lead..trail].iter().any(|&c| c == b'\r' || c == b'\n') {
        Bytes::from(unfold(&raw[lead..trail]))
    } else {
        buf.slice(value_start + lead..value_start + trail)
    };
    let name = &buf[name_start..name_end];
    // A name spelt the usual way costs no reference count.
    let (key, name_bytes) = if name.len() == 1 {
        (Key::of(name), buf.slice(name_start..name_end))
    } else {
        match Key::known(name) {
            Some((spelling, key)) if spelling.as_bytes() == name => {
                (key, Bytes::from_static(spelling.as_bytes()))
            }
            Some((_, key)) => (key, buf.slice(name_start..name_end)),
            None => (Key::Other, buf.slice(name_start..name_end)),
        }
    };
    if key == Key::ContentLength {
        let n = parse_content_length(&value)?;
        match *content_length {
            // RFC 4475 §3.3.9: two different lengths leave the framing undefined.
            Some(prev) if prev != n => {
                return Err(Defect::ConflictingContentLength {
                    first: prev,
                    second: n,
                });
            }
            _ => *content_length = Some(n),
        }
    }
    headers.push_raw(name_bytes, key, value);
    Ok(())
}

/// Replaces each `*WSP CRLF 1*WSP` by one SP (RFC 3261 §7.3.1).
fn unfold(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let c = v[i];
        if c == b'\r' || c == b'\n' {
            while out.last().is_some_and(|&l| l == b' ' || l == b'\t') {
                out.pop();
            }
            while i < v.len() && super::lex::is_ws(v[i]) {
                i += 1;
            }
            out.push(b' ');
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// `Content-Length = 1*DIGIT` (RFC 3261 §20.14); a sign, junk or a value
/// that does not fit is a framing error (RFC 4475 §3.1.2.3), never a size.
pub(crate) fn parse_content_length(v: &[u8]) -> Result<usize, Defect> {
    let t = super::lex::trim_ws_bytes(v);
    let bad = || Defect::BadContentLength {
        value: String::from_utf8_lossy(&t[..t.len().min(32)]).into_owned(),
    };
    if t.is_empty() || t.len() > 10 || !t.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let n = t
        .iter()
        .fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0'));
    usize::try_from(n)
        .ok()
        .filter(|&n| n <= u32::MAX as usize)
        .ok_or_else(bad)
}

/// `SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT`, case-insensitive (RFC 3261 §7.1).
fn version_ok(v: &[u8]) -> Result<(), Defect> {
    let well_formed = v.len() > 4
        && v[..4].eq_ignore_ascii_case(b"SIP/")
        && v[4..].split(|&c| c == b'.').count() == 2
        && v[4..]
            .split(|&c| c == b'.')
            .all(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit));
    if !well_formed {
        return Err(Defect::BadStartLine);
    }
    if &v[4..] != b"2.0" {
        return Err(Defect::VersionNotSupported {
            version: String::from_utf8_lossy(v).into_owned(),
        });
    }
    Ok(())
}

/// `Request-Line = Method SP Request-URI SP SIP-Version`: exactly two SP
/// (RFC 4475 §3.1.2.8-10 put extra ones in).
fn parse_request_line(line: &[u8]) -> Result<(Method, Uri), Defect> {
    let first = line
        .iter()
        .position(|&c| c == b' ')
        .ok_or(Defect::BadStartLine)?;
    let last = line
        .iter()
        .rposition(|&c| c == b' ')
        .ok_or(Defect::BadStartLine)?;
    if last <= first {
        return Err(Defect::BadStartLine);
    }
    let method = &line[..first];
    if !super::lex::is_token(method) {
        return Err(Defect::BadStartLine);
    }
    version_ok(&line[last + 1..])?;
    let uri_bytes = &line[first + 1..last];
    if uri_bytes.is_empty() || uri_bytes.iter().any(|&c| c == b' ' || c == b'\t') {
        return Err(Defect::BadStartLine);
    }
    let uri_str = std::str::from_utf8(uri_bytes).map_err(|_| Defect::RequestUriNotUtf8)?;
    let uri = Uri::parse(uri_str).map_err(Defect::BadRequestUri)?;
    // Token characters are ASCII, so this cannot fail.
    let method = Method::from_token(std::str::from_utf8(method).map_err(|_| Defect::BadStartLine)?);
    Ok((method, uri))
}

/// `Status-Line = SIP-Version SP Status-Code SP Reason-Phrase`; the reason is
/// kept exactly, and may be empty (RFC 4475 §3.1.1.13).
fn parse_status_line(line: &[u8]) -> Result<(u16, String), Defect> {
    let sp = line
        .iter()
        .position(|&c| c == b' ')
        .ok_or(Defect::BadStartLine)?;
    version_ok(&line[..sp])?;
    let rest = &line[sp + 1..];
    let code_end = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
    let code = &rest[..code_end];
    // Status-Code is exactly three digits, 100-699 (RFC 4475 §3.1.2.19 sends 4294967301).
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(Defect::BadStatusCode {
            code: String::from_utf8_lossy(&code[..code.len().min(16)]).into_owned(),
        });
    }
    let status = code
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    if !(100..=699).contains(&status) {
        return Err(Defect::BadStatusCode {
            code: status.to_string(),
        });
    }
    let reason = rest.get(code_end + 1..).unwrap_or_default();
    let reason = std::str::from_utf8(reason).map_err(|_| Defect::ReasonNotUtf8)?;
    Ok((status, reason.to_owned()))
}
