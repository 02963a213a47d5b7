//! SIP messages (RFC 3261 §7) behind our own type: a byte-level, zero-copy
//! parser keeps header values as `Bytes` slices of the received buffer and
//! types them on demand, so the parser can be replaced without touching
//! callers. Tolerates what RFC 4475 and RFC 5118 say a robust element must
//! accept; reports everything else as a `ParseError` that knows its answer.

mod build;
mod cseq;
mod headers;
mod lex;
mod name_addr;
mod parse;
mod snapshot;
pub(crate) use snapshot::text_bytes;
mod uri;
mod via;

use bytes::Bytes;
use thiserror::Error;

pub use build::error_response_for_raw;
pub use cseq::CSeq;
pub use headers::{HeaderError, Headers, MAX_HEADERS};
pub(crate) use lex::find_byte;
pub use name_addr::NameAddr;
pub use parse::MAX_LINE_LEN;
pub(crate) use parse::parse_content_length;
pub use uri::{Host, Scheme, Uri, UriError};
pub use via::{BRANCH_MAGIC_COOKIE, Via};

use crate::sip::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// A request. The SIP-Version was checked by the parser (only 2.0 passes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Exactly as received (RFC 4475 §3.1.1.12), possibly empty.
    pub reason: String,
    pub headers: Headers,
    pub body: Bytes,
}

impl Message {
    /// One complete message cut by `framing::next_frame`: Content-Length is
    /// mandatory and the body must fill the buffer exactly (RFC 3261 §18.3).
    pub fn parse(buf: Bytes) -> Result<Message, ParseError> {
        parse::parse(buf, parse::Framing::Stream)
    }

    /// One UDP datagram: without Content-Length the body is the rest of the
    /// datagram; octets after Content-Length are ignored; a Content-Length
    /// larger than what arrived is an error (RFC 3261 §18.3).
    pub fn parse_datagram(buf: Bytes) -> Result<Message, ParseError> {
        parse::parse(buf, parse::Framing::Datagram)
    }

    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    /// Serializes; Content-Length is always written and equals the body length.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

/// Why a buffer is not a SIP message. Which side it came from decides what
/// to do: a request is answered (`status`), a response is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    #[error("no message: only line breaks")]
    Empty,
    #[error("malformed request: {0}")]
    Request(#[source] Defect),
    #[error("malformed response: {0}")]
    Response(#[source] Defect),
}

/// What is wrong with a message that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Defect {
    #[error("malformed start line")]
    BadStartLine,
    #[error("SIP version {version:?} not supported")]
    VersionNotSupported { version: String },
    #[error("bad Request-URI: {0}")]
    BadRequestUri(#[source] UriError),
    #[error("Request-URI is not UTF-8")]
    RequestUriNotUtf8,
    #[error("bad status code {code:?}")]
    BadStatusCode { code: String },
    #[error("reason phrase is not UTF-8")]
    ReasonNotUtf8,
    #[error("line {line} is {len} octets long, more than {MAX_LINE_LEN}")]
    LineTooLong { line: usize, len: usize },
    #[error("more than {limit} header lines")]
    TooManyHeaders { limit: usize },
    #[error("line {line} is not a header line")]
    BadHeaderLine { line: usize },
    #[error("header section not closed by an empty line")]
    MissingHeaderEnd,
    #[error("bad Content-Length {value:?}")]
    BadContentLength { value: String },
    #[error("two different Content-Length values: {first} and {second}")]
    ConflictingContentLength { first: usize, second: usize },
    #[error("no Content-Length on a stream transport")]
    MissingContentLength,
    #[error("Content-Length {declared} but only {available} octets of body")]
    BodyTruncated { declared: usize, available: usize },
    #[error("{count} octets after the body")]
    TrailingOctets { count: usize },
}

impl ParseError {
    /// A malformed response: drop it and count it, never answer it.
    pub fn is_response(&self) -> bool {
        matches!(self, ParseError::Response(_))
    }

    /// The stateless answer to a malformed request; `None`: drop silently.
    pub fn status(&self) -> Option<(u16, &'static str)> {
        let ParseError::Request(d) = self else {
            return None;
        };
        Some(match d {
            Defect::VersionNotSupported { .. } => (505, "Version Not Supported"),
            Defect::BadStartLine => (400, "Bad Request - Malformed Request-Line"),
            Defect::BadRequestUri(_) | Defect::RequestUriNotUtf8 => {
                (400, "Bad Request - Malformed Request-URI")
            }
            Defect::LineTooLong { .. } => (400, "Bad Request - Header Line Too Long"),
            Defect::TooManyHeaders { .. } => (400, "Bad Request - Too Many Headers"),
            Defect::BadHeaderLine { .. } => (400, "Bad Request - Malformed Header Line"),
            Defect::MissingHeaderEnd => (400, "Bad Request - Truncated Header Section"),
            Defect::BadContentLength { .. } => (400, "Bad Request - Malformed Content-Length"),
            Defect::ConflictingContentLength { .. } => {
                (400, "Bad Request - Conflicting Content-Length")
            }
            Defect::MissingContentLength => (400, "Bad Request - Missing Content-Length"),
            Defect::BodyTruncated { .. } => (400, "Bad Request - Content-Length Exceeds Message"),
            Defect::TrailingOctets { .. } => (400, "Bad Request - Octets After Body"),
            Defect::BadStatusCode { .. } | Defect::ReasonNotUtf8 => (400, "Bad Request"),
        })
    }
}

#[cfg(test)]
mod tests;
