//! Cutting a byte stream (TCP, TLS) into SIP messages by Content-Length
//! (RFC 3261 §18.3), and recognising RFC 5626 §3.5.1 CRLF keepalives.
//! Any error is fatal for the connection: once a length is wrong or missing
//! the framing is lost and nothing after it can be trusted (RFC 4475 §3.1.2.3).

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::sip::message::{MAX_HEADERS, find_byte};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One complete message: start line, headers, and Content-Length octets of body.
    Message(Bytes),
    /// Double CRLF: the peer's keepalive ping; answer with one CRLF.
    Ping,
    /// A lone CRLF: the answer to our ping; nothing to do.
    Pong,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FramingError {
    #[error("message larger than {limit} octets")]
    TooLarge { limit: usize },
    #[error("bad Content-Length {value:?}")]
    BadContentLength { value: String },
    #[error("no Content-Length on a stream transport")]
    MissingContentLength,
    #[error("two different Content-Length values: {first} and {second}")]
    DuplicateContentLength { first: usize, second: usize },
    #[error("more than {limit} header lines")]
    TooManyHeaders { limit: usize },
}

/// Takes the next frame off the front of `buf`. `Ok(None)`: need more bytes.
///
/// A buffer holding exactly one CRLF waits for more: it may be the first half
/// of a ping split across TCP segments or TLS records, and an unanswered ping
/// makes the peer tear the flow down (RFC 5626 §4.4.1). Waiting only delays a
/// pong until the peer's next octets, and we act on no pong.
pub fn next_frame(buf: &mut BytesMut, max_size: usize) -> Result<Option<Frame>, FramingError> {
    // Stray LFs between messages are skipped (RFC 3261 §7.5).
    let stray = buf.iter().take_while(|&&b| b == b'\n').count();
    if stray > 0 {
        let _ = buf.split_to(stray);
    }
    if buf.starts_with(b"\r\n\r\n") {
        let _ = buf.split_to(4);
        return Ok(Some(Frame::Ping));
    }
    if buf[..] == b"\r\n"[..] {
        return Ok(None);
    }
    if buf.starts_with(b"\r\n") && !buf[2..].starts_with(b"\r") {
        let _ = buf.split_to(2);
        return Ok(Some(Frame::Pong));
    }
    if buf.is_empty() || buf[..] == b"\r\n\r"[..buf.len().min(3)] {
        return Ok(None);
    }
    let Some(head_len) = header_section_len(buf, max_size) else {
        if buf.len() > max_size {
            return Err(FramingError::TooLarge { limit: max_size });
        }
        return Ok(None);
    };
    let body_len = content_length(&buf[..head_len])?;
    let total = head_len
        .checked_add(body_len)
        .filter(|&t| t <= max_size)
        .ok_or(FramingError::TooLarge { limit: max_size })?;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    Ok(Some(Frame::Message(buf.split_to(total).freeze())))
}

/// Length of the start line and headers including the empty line, if the
/// empty line is within the first `max_size` octets.
fn header_section_len(buf: &[u8], max_size: usize) -> Option<usize> {
    let window = &buf[..buf.len().min(max_size)];
    let mut from = 0;
    while let Some(p) = find_byte(&window[from..], b'\n') {
        let nl = from + p;
        match window.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if window.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => from = nl + 1,
        }
    }
    None
}

fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let mut found: Option<usize> = None;
    let mut lines = 0usize;
    // The start line is not a header, whatever colons its URI holds.
    let mut rest = match find_byte(head, b'\n') {
        Some(p) => &head[p + 1..],
        None => return Err(FramingError::MissingContentLength),
    };
    while let Some(p) = find_byte(rest, b'\n') {
        let mut line = &rest[..p];
        rest = &rest[p + 1..];
        lines += 1;
        if lines > MAX_HEADERS + 1 {
            return Err(FramingError::TooManyHeaders { limit: MAX_HEADERS });
        }
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &line[..colon];
        let name = &name[..name
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(0, |p| p + 1)];
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        // The value may be folded onto the next line.
        let mut value = line[colon + 1..].to_vec();
        while rest.first().is_some_and(|&b| b == b' ' || b == b'\t') {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            value.extend_from_slice(&rest[..end]);
            rest = &rest[(end + 1).min(rest.len())..];
        }
        let n = crate::sip::message::parse_content_length(&value).map_err(|_| {
            FramingError::BadContentLength {
                value: String::from_utf8_lossy(&value[..value.len().min(32)])
                    .trim()
                    .to_owned(),
            }
        })?;
        match found {
            Some(first) if first != n => {
                return Err(FramingError::DuplicateContentLength { first, second: n });
            }
            _ => found = Some(n),
        }
    }
    found.ok_or(FramingError::MissingContentLength)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 4\r\n\r\nbody";

    fn frames(input: &[u8], max: usize) -> Result<Vec<Frame>, FramingError> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(f) = next_frame(&mut buf, max)? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn several_messages_and_pings_in_one_read() {
        let mut input = OPTIONS.to_vec();
        input.extend_from_slice(b"\r\n\r\n");
        input.extend_from_slice(OPTIONS);
        input.extend_from_slice(b"\r\n");
        let f = frames(&input, 65535).unwrap();
        assert_eq!(
            f,
            vec![
                Frame::Message(Bytes::from_static(OPTIONS)),
                Frame::Ping,
                Frame::Message(Bytes::from_static(OPTIONS)),
                // The trailing lone CRLF waits: it may be half a ping.
            ]
        );
        let mut pong_then_message = b"\r\n".to_vec();
        pong_then_message.extend_from_slice(OPTIONS);
        assert_eq!(
            frames(&pong_then_message, 65535).unwrap(),
            vec![Frame::Pong, Frame::Message(Bytes::from_static(OPTIONS))]
        );
    }

    #[test]
    fn ping_split_after_its_first_crlf_is_still_a_ping() {
        let mut buf = BytesMut::from(&b"\r\n"[..]);
        assert_eq!(next_frame(&mut buf, 65535), Ok(None));
        buf.extend_from_slice(b"\r\n");
        assert_eq!(next_frame(&mut buf, 65535), Ok(Some(Frame::Ping)));
        assert!(buf.is_empty());
    }

    #[test]
    fn message_split_across_reads_every_octet() {
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in OPTIONS {
            buf.extend_from_slice(&[b]);
            if let Some(f) = next_frame(&mut buf, 65535).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, vec![Frame::Message(Bytes::from_static(OPTIONS))]);
        assert!(buf.is_empty());
    }

    #[test]
    fn framing_errors_are_fatal() {
        let no_cl = b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n";
        assert_eq!(
            frames(no_cl, 65535),
            Err(FramingError::MissingContentLength)
        );
        let neg = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -999\r\n\r\n";
        assert!(matches!(
            frames(neg, 65535),
            Err(FramingError::BadContentLength { .. })
        ));
        let two = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 13\r\nl: 5\r\n\r\n";
        assert_eq!(
            frames(two, 65535),
            Err(FramingError::DuplicateContentLength {
                first: 13,
                second: 5
            })
        );
        let big = b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 9999\r\n\r\n";
        assert_eq!(
            frames(big, 4096),
            Err(FramingError::TooLarge { limit: 4096 })
        );
        // No end of headers within the limit.
        let endless = vec![b'a'; 5000];
        assert_eq!(
            frames(&endless, 4096),
            Err(FramingError::TooLarge { limit: 4096 })
        );
    }

    #[test]
    fn waits_for_the_body_then_cuts_exactly() {
        let mut buf = BytesMut::from(&OPTIONS[..OPTIONS.len() - 2]);
        assert_eq!(next_frame(&mut buf, 65535).unwrap(), None);
        buf.extend_from_slice(b"dyINVITE");
        assert_eq!(
            next_frame(&mut buf, 65535).unwrap(),
            Some(Frame::Message(Bytes::from_static(OPTIONS)))
        );
        assert_eq!(&buf[..], b"INVITE");
        assert_eq!(next_frame(&mut buf, 65535).unwrap(), None);
    }

    #[test]
    fn start_line_is_not_read_as_a_header() {
        let m = b"OPTIONS l:5 SIP/2.0\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            frames(m, 65535).unwrap(),
            vec![Frame::Message(Bytes::from_static(m))]
        );
    }

    #[test]
    fn folded_and_compact_content_length() {
        let m = b"OPTIONS sip:a@b SIP/2.0\r\nl :\r\n 2\r\n\r\nok";
        assert_eq!(
            frames(m, 65535).unwrap(),
            vec![Frame::Message(Bytes::from_static(m))]
        );
    }
}
