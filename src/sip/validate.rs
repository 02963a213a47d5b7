//! What a UAS (and so each leg of the B2BUA) checks before a request reaches
//! the transaction layer: RFC 3261 §8.2 in its order (method, headers,
//! content), after the well-formedness checks of §8.1.1 / RFC 4475 that the
//! lazy parser left for later. Responses get `validate_response`: a broken
//! response is dropped, never answered.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use thiserror::Error;

use crate::sip::Method;
use crate::sip::message::{
    BRANCH_MAGIC_COOKIE, HeaderError, Headers, Host, Request, Response, Scheme,
};

/// The answer to a request that fails validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub reason: Cow<'static, str>,
    /// Headers the status code requires: Allow (405, 501), Unsupported (420),
    /// Accept (415, 406).
    pub extra_headers: Vec<(&'static str, String)>,
}

impl Rejection {
    fn bad(reason: &'static str) -> Rejection {
        Rejection {
            status: 400,
            reason: Cow::Borrowed(reason),
            extra_headers: Vec::new(),
        }
    }

    fn with(status: u16, reason: &'static str, extra: Vec<(&'static str, String)>) -> Rejection {
        Rejection {
            status,
            reason: Cow::Borrowed(reason),
            extra_headers: extra,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationPolicy {
    pub allowed_methods: Vec<Method>,
    pub supported_option_tags: Vec<&'static str>,
    /// Media types (no parameters) we can read in a body.
    pub accepted_body_types: Vec<&'static str>,
}

/// Headers that occur once, and what to call them in the reason phrase.
const SINGLE: [(&str, &str, &str); 5] = [
    (
        "Call-ID",
        "Bad Request - Missing Call-ID",
        "Bad Request - Multiple Call-ID",
    ),
    (
        "From",
        "Bad Request - Missing From",
        "Bad Request - Multiple From",
    ),
    (
        "To",
        "Bad Request - Missing To",
        "Bad Request - Multiple To",
    ),
    (
        "CSeq",
        "Bad Request - Missing CSeq",
        "Bad Request - Multiple CSeq",
    ),
    ("Max-Forwards", "", "Bad Request - Multiple Max-Forwards"),
];

pub fn validate_request(req: &Request, policy: &ValidationPolicy) -> Result<(), Rejection> {
    let h = &req.headers;

    // Well-formedness first (RFC 3261 §8.1.1: the mandatory six).
    let vias = h.vias().map_err(|e| match e {
        HeaderError::Missing { .. } => Rejection::bad("Bad Request - Missing Via"),
        _ => Rejection::bad("Bad Request - Malformed Via"),
    })?;
    let top = &vias[0];
    // RFC 4475 §3.2.1: the bare cookie claims RFC 3261 matching with no unique part.
    if top.branch.as_deref() == Some(BRANCH_MAGIC_COOKIE) {
        return Err(Rejection::bad(
            "Bad Request - Via branch is only the magic cookie",
        ));
    }
    for (name, missing, multiple) in SINGLE {
        let lines = h.get_all(name).count();
        if lines == 0 && !missing.is_empty() {
            return Err(Rejection::bad(missing));
        }
        // RFC 4475 §3.3.8: repeated lines in single-valued headers.
        if lines > 1 {
            return Err(Rejection::bad(multiple));
        }
    }
    h.call_id()
        .map_err(|_| Rejection::bad("Bad Request - Malformed Call-ID"))?;
    h.from()
        .map_err(|_| Rejection::bad("Bad Request - Malformed From"))?;
    h.to()
        .map_err(|_| Rejection::bad("Bad Request - Malformed To"))?;
    for (name, _, multiple) in SINGLE {
        // ... or a comma list in one line.
        if h.values(name).count() > 1 {
            return Err(Rejection::bad(multiple));
        }
    }
    let cseq = h.cseq().map_err(|e| match e {
        HeaderError::OutOfRange { .. } => Rejection::bad("Bad Request - CSeq out of range"),
        _ => Rejection::bad("Bad Request - Malformed CSeq"),
    })?;
    let max_forwards = h.max_forwards().map_err(|e| match e {
        HeaderError::OutOfRange { .. } => Rejection::bad("Bad Request - Max-Forwards out of range"),
        _ => Rejection::bad("Bad Request - Malformed Max-Forwards"),
    })?;
    // An RFC 2543 element (no magic cookie) may omit Max-Forwards (RFC 4475
    // §3.4.1); an RFC 3261 element must send it (§8.1.1.6).
    if max_forwards.is_none() && top.is_rfc3261_branch() {
        return Err(Rejection::bad("Bad Request - Missing Max-Forwards"));
    }
    h.contacts()
        .map_err(|_| Rejection::bad("Bad Request - Malformed Contact"))?;

    // §8.2.1 method inspection: 501 for a method we do not know at all
    // (preferred over the CSeq mismatch, RFC 4475 §3.1.2.18), 405 for one we
    // know but do not serve on this leg.
    if !policy.allowed_methods.contains(&req.method) {
        let allow = vec![(
            "Allow",
            join(policy.allowed_methods.iter().map(Method::as_str)),
        )];
        return Err(if matches!(req.method, Method::Other(_)) {
            Rejection::with(501, "Not Implemented", allow)
        } else {
            Rejection::with(405, "Method Not Allowed", allow)
        });
    }
    if cseq.method != req.method {
        return Err(Rejection::bad("Bad Request - CSeq method does not match"));
    }

    // §8.2.2.1: a scheme we cannot route gets 416, never a guess from To.
    if matches!(req.uri.scheme, Scheme::Other(_)) {
        return Err(Rejection::with(416, "Unsupported URI Scheme", Vec::new()));
    }
    // RFC 3261 §19.1.5: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
    if !req.uri.headers.is_empty() {
        return Err(Rejection::bad("Bad Request - Headers in Request-URI"));
    }
    // The B2BUA forwards every request it accepts on its other leg, so it
    // obeys the hop limit like a proxy (RFC 3261 §16.3 step 3).
    if max_forwards == Some(0) {
        return Err(Rejection::with(483, "Too Many Hops", Vec::new()));
    }

    // §8.2.2.3: a UAS must understand every Require tag. The B2BUA does not
    // pass Proxy-Require on either, so those tags must be ours too. Never for
    // ACK (cannot be answered) or CANCEL (Require does not apply, §9.1).
    if !matches!(req.method, Method::Ack | Method::Cancel) {
        let unsupported: Vec<String> = h
            .option_tags("Require")
            .into_iter()
            .chain(h.option_tags("Proxy-Require"))
            .filter(|t| {
                !policy
                    .supported_option_tags
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(t))
            })
            .collect();
        if !unsupported.is_empty() {
            return Err(Rejection::with(
                420,
                "Bad Extension",
                vec![("Unsupported", unsupported.join(", "))],
            ));
        }
    }

    // §8.2.3 content processing.
    if !req.body.is_empty() && req.method != Method::Cancel {
        let Some(ct) = h.content_type() else {
            return Err(Rejection::bad("Bad Request - Body without Content-Type"));
        };
        let media = media_type(ct);
        if !policy
            .accepted_body_types
            .iter()
            .any(|a| a.eq_ignore_ascii_case(media))
        {
            return Err(Rejection::with(
                415,
                "Unsupported Media Type",
                vec![("Accept", join(policy.accepted_body_types.iter().copied()))],
            ));
        }
    }
    // RFC 3261 §21.4.7: our answer to INVITE or UPDATE carries SDP; if the
    // request's Accept rules it out we cannot answer (RFC 4475 §3.3.15).
    if matches!(req.method, Method::Invite | Method::Update) && !accepts_sdp(h) {
        return Err(Rejection::with(
            406,
            "Not Acceptable",
            vec![("Accept", "application/sdp".to_owned())],
        ));
    }
    Ok(())
}

fn media_type(ct: &str) -> &str {
    ct.split(';').next().unwrap_or_default().trim()
}

fn accepts_sdp(h: &Headers) -> bool {
    if h.get("Accept").is_none() {
        return true;
    }
    h.values("Accept").any(|v| {
        let v = String::from_utf8_lossy(&v);
        let m = media_type(&v);
        m.is_empty()
            || m == "*/*"
            || m.eq_ignore_ascii_case("application/*")
            || m.eq_ignore_ascii_case("application/sdp")
    })
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// Why a response is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResponseDefect {
    #[error("response header: {0}")]
    Header(#[from] HeaderError),
    #[error("{name} header appears more than once")]
    Repeated { name: &'static str },
    #[error("Via sent-by {sent_by} is not a unicast address")]
    NonUnicastVia { sent_by: String },
}

/// The checks a response must pass before it is matched to a transaction.
/// Failing ones are dropped and counted (RFC 4475 §3.1.2.5, §3.3.10).
pub fn validate_response(rsp: &Response) -> Result<(), ResponseDefect> {
    let h = &rsp.headers;
    for (name, _, _) in SINGLE.iter().take(4) {
        if h.get_all(name).count() > 1 {
            return Err(ResponseDefect::Repeated { name });
        }
    }
    h.from()?;
    h.to()?;
    h.call_id()?;
    h.cseq()?;
    for via in h.vias()? {
        // Never send anything toward a broadcast or unspecified sent-by.
        let bad = match via.host {
            Host::V4(a) => a == Ipv4Addr::BROADCAST || a.is_unspecified() || a.is_multicast(),
            Host::V6(a) => a.is_unspecified() || a.is_multicast(),
            Host::Domain(_) => false,
        };
        if bad {
            return Err(ResponseDefect::NonUnicastVia {
                sent_by: via.sent_by(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
