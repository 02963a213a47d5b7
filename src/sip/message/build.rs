//! Building and printing messages: constructors, RFC 3261 §8.2.6.2 response
//! skeletons, serialization, and the best-effort answer to a request that
//! did not parse.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

use super::headers::{Headers, Key, MAX_HEADERS};
use super::name_addr::NameAddr;
use super::parse::MAX_LINE_LEN;
use super::{Request, Response, Uri};
use crate::sip::Method;

impl Request {
    pub fn new(method: Method, uri: Uri) -> Request {
        Request {
            method,
            uri,
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut start = String::with_capacity(64);
        // Writing to a String cannot fail.
        let _ = write!(start, "{} {} SIP/2.0\r\n", self.method, self.uri);
        serialize(start.as_bytes(), &self.headers, &self.body)
    }
}

impl Response {
    pub fn new(status: u16, reason: impl Into<String>) -> Response {
        Response {
            status,
            reason: reason.into(),
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// RFC 3261 §8.2.6.2: copies all Via (in order), From, To, Call-ID and
    /// CSeq; adds `to_tag` to To when given and To has no tag yet.
    pub fn for_request(req: &Request, status: u16, reason: &str, to_tag: Option<&str>) -> Response {
        let mut rsp = Response::new(status, reason);
        let h = &req.headers;
        for v in h.all_key(Key::Via) {
            rsp.headers.push("Via", v.clone());
        }
        if let Some(v) = h.get_key(Key::From) {
            rsp.headers.push("From", v.clone());
        }
        if let Some(v) = h.get_key(Key::To) {
            rsp.headers.push("To", with_to_tag(v, to_tag));
        }
        if let Some(v) = h.get_key(Key::CallId) {
            rsp.headers.push("Call-ID", v.clone());
        }
        if let Some(v) = h.get_key(Key::CSeq) {
            rsp.headers.push("CSeq", v.clone());
        }
        rsp
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut start = String::with_capacity(32 + self.reason.len());
        // A reason phrase cannot carry a line break (RFC 3261 §25.1).
        let reason = self.reason.split(['\r', '\n']).next().unwrap_or_default();
        let _ = write!(start, "SIP/2.0 {} {}\r\n", self.status, reason);
        serialize(start.as_bytes(), &self.headers, &self.body)
    }
}

/// Appends `;tag=` to a To value that has none. A To that does not parse is
/// left alone: it is the peer's, and we are answering its fault anyway.
fn with_to_tag(to: &Bytes, tag: Option<&str>) -> Bytes {
    let Some(tag) = tag else {
        return to.clone();
    };
    let has_tag = std::str::from_utf8(to)
        .ok()
        .and_then(|s| NameAddr::parse(s, "To").ok())
        .map(|n| n.tag().is_some());
    if has_tag == Some(false) {
        let mut v = BytesMut::with_capacity(to.len() + 5 + tag.len());
        v.put_slice(to);
        v.put_slice(b";tag=");
        v.put_slice(tag.as_bytes());
        v.freeze()
    } else {
        to.clone()
    }
}

/// Start line, headers in order with names as written, empty line, body.
/// The first Content-Length keeps its place and name but gets the real body
/// length; later ones are dropped; without one it is appended.
fn serialize(start: &[u8], headers: &Headers, body: &Bytes) -> Bytes {
    let size = start.len()
        + headers
            .iter_raw()
            .map(|(n, _, v)| n.len() + v.len() + 4)
            .sum::<usize>()
        + 24
        + body.len();
    let mut out = BytesMut::with_capacity(size);
    out.put_slice(start);
    let mut len_written = false;
    let len = body.len().to_string();
    for (name, key, value) in headers.iter_raw() {
        if key == Key::ContentLength {
            if !len_written {
                out.put_slice(name);
                out.put_slice(b": ");
                out.put_slice(len.as_bytes());
                out.put_slice(b"\r\n");
                len_written = true;
            }
            continue;
        }
        out.put_slice(name);
        out.put_slice(b": ");
        out.put_slice(value);
        out.put_slice(b"\r\n");
    }
    if !len_written {
        out.put_slice(b"Content-Length: ");
        out.put_slice(len.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    out.put_slice(body);
    out.freeze()
}

/// Best effort for a request that failed to parse: the error response built
/// from whatever Via, From, To, Call-ID and CSeq lines can be found in the
/// raw bytes (RFC 3261 §8.2, "reply 400"). `None` when the bytes are a
/// response (never answered), have no request line, or carry no Via to send
/// the answer back along.
///
/// The To tag, if To has none, is derived from Call-ID and the top Via so a
/// retransmission gets the same answer (a stateless UAS, RFC 3261 §8.2.7).
pub fn error_response_for_raw(raw: &[u8], status: u16, reason: &str) -> Option<Bytes> {
    let mut pos = raw.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let first_end = line_end(raw, pos);
    let first = &raw[pos..first_end.0];
    if first.starts_with(b"SIP/") || first.len() > MAX_LINE_LEN {
        return None;
    }
    let sp = first.iter().position(|&b| b == b' ')?;
    if !super::lex::is_token(&first[..sp]) || !first[sp + 1..].contains(&b' ') {
        return None;
    }
    pos = first_end.1;

    let mut via = Vec::new();
    let (mut from, mut to, mut call_id, mut cseq) = (None, None, None, None);
    let mut lines = 0;
    while pos < raw.len() && lines < MAX_HEADERS {
        let (end, mut next) = line_end(raw, pos);
        if end == pos {
            break;
        }
        // Gather continuation lines into this header.
        let mut value_end = end;
        while next < raw.len() && matches!(raw[next], b' ' | b'\t') {
            let (e, n) = line_end(raw, next);
            value_end = e;
            next = n;
        }
        lines += 1;
        let line = &raw[pos..value_end];
        pos = next;
        if line.len() > MAX_LINE_LEN {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = super::lex::trim_ws_bytes(&line[..colon]);
        let value = clean_value(&line[colon + 1..]);
        if value.is_empty() {
            continue;
        }
        match Key::of(name) {
            Key::Via => via.push(value),
            Key::From if from.is_none() => from = Some(value),
            Key::To if to.is_none() => to = Some(value),
            Key::CallId if call_id.is_none() => call_id = Some(value),
            Key::CSeq if cseq.is_none() => cseq = Some(value),
            _ => {}
        }
    }
    let top_via = via.first()?.clone();
    let mut rsp = Response::new(status, reason);
    for v in via {
        rsp.headers.push("Via", v);
    }
    if let Some(v) = from {
        rsp.headers.push("From", v);
    }
    if let Some(v) = to {
        let tag = stateless_tag(&top_via, call_id.as_deref().unwrap_or_default());
        rsp.headers
            .push("To", with_to_tag(&Bytes::from(v), Some(&tag)));
    }
    if let Some(v) = call_id {
        rsp.headers.push("Call-ID", v);
    }
    if let Some(v) = cseq {
        rsp.headers.push("CSeq", v);
    }
    Some(rsp.to_bytes())
}

fn line_end(raw: &[u8], from: usize) -> (usize, usize) {
    match super::lex::find_byte(&raw[from..], b'\n') {
        Some(p) => {
            let nl = from + p;
            let end = if nl > from && raw[nl - 1] == b'\r' {
                nl - 1
            } else {
                nl
            };
            (end, nl + 1)
        }
        None => (raw.len(), raw.len()),
    }
}

/// Trimmed, folding replaced by SP, and no octet that could break the
/// response we print it into.
fn clean_value(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for &b in super::lex::trim_ws_bytes(v) {
        match b {
            b'\r' | b'\n' | b'\t' => {
                if out.last() != Some(&b' ') {
                    out.push(b' ');
                }
            }
            0 => out.push(b' '),
            _ => out.push(b),
        }
    }
    out
}

/// FNV-1a of the top Via and Call-ID, in hex.
fn stateless_tag(via: &[u8], call_id: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in via.iter().chain(b"\n").chain(call_id) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}
