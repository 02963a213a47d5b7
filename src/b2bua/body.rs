//! The SDP in a message body: `application/sdp`, or the SDP part of a `multipart/mixed` body
//! (Teams sends SDP next to a PIDF-LO location, TDR-INV-12; RFC 2046 §5.1).

use crate::sdp::SessionDescription;
use crate::sip::message::Headers;

/// What a body holds as far as offer/answer goes.
#[derive(Debug)]
pub(crate) enum SdpBody {
    None,
    Sdp(SessionDescription),
    /// An SDP (or a body that should be one) that does not parse: 400/488 territory.
    Invalid,
}

pub(crate) fn sdp_of(headers: &Headers, body: &[u8]) -> SdpBody {
    if body.is_empty() {
        return SdpBody::None;
    }
    let Some(ct) = headers.content_type() else {
        return SdpBody::Invalid;
    };
    let media_type = ct.split(';').next().unwrap_or("").trim();
    if media_type.eq_ignore_ascii_case("application/sdp") {
        return parse(body);
    }
    if media_type.eq_ignore_ascii_case("multipart/mixed") {
        return match boundary(ct).and_then(|b| sdp_part(body, &b)) {
            Some(part) => parse(part),
            None => SdpBody::None,
        };
    }
    SdpBody::None
}

fn parse(bytes: &[u8]) -> SdpBody {
    match SessionDescription::from_bytes(bytes) {
        Ok(sd) => SdpBody::Sdp(sd),
        Err(_) => SdpBody::Invalid,
    }
}

fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The body of the first part whose Content-Type is application/sdp.
fn sdp_part<'a>(body: &'a [u8], boundary: &str) -> Option<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(i) = find(rest, delimiter.as_bytes()) {
        let after = &rest[i + delimiter.len()..];
        parts.push(&rest[..i]);
        rest = after;
    }
    parts.into_iter().skip(1).find_map(|part| {
        let part = part.strip_prefix(b"\r\n").unwrap_or(part);
        let split = find(part, b"\r\n\r\n")?;
        let (head, content) = (&part[..split], &part[split + 4..]);
        let head = std::str::from_utf8(head).ok()?;
        let is_sdp = head.lines().any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("content-type")
                    && v.trim().to_ascii_lowercase().starts_with("application/sdp")
            })
        });
        // The CRLF before the next delimiter belongs to the delimiter (RFC 2046 §5.1.1).
        is_sdp.then(|| content.strip_suffix(b"\r\n").unwrap_or(content))
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20\r\n";

    #[test]
    fn multipart_sdp_with_pidf_lo_yields_the_sdp_tdr_inv_12() {
        let mut h = Headers::new();
        h.push("Content-Type", "multipart/mixed;boundary=boundary1");
        let body = format!(
            "--boundary1\r\nContent-Type: application/sdp\r\n\r\n{SDP}\r\n--boundary1\r\nContent-Type: application/pidf+xml\r\nContent-ID: <x@y>\r\n\r\n<presence/>\r\n--boundary1--\r\n"
        );
        match sdp_of(&h, body.as_bytes()) {
            SdpBody::Sdp(sd) => assert_eq!(sd.media.len(), 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_sdp_is_invalid_and_no_body_is_none() {
        let mut h = Headers::new();
        h.push("Content-Type", "application/sdp");
        assert!(matches!(sdp_of(&h, b"hello"), SdpBody::Invalid));
        assert!(matches!(sdp_of(&h, b""), SdpBody::None));
    }
}
