//! CSeq (RFC 3261 §20.16): sequence number and method.

use std::fmt;

use super::headers::{HeaderError, Headers, Key, parse_decimal};
use super::lex;
use crate::sip::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(s: &[u8]) -> Result<CSeq, HeaderError> {
        let name = "CSeq";
        let t = lex::trim_ws_bytes(s);
        let digits = t.iter().take_while(|b| b.is_ascii_digit()).count();
        let rest = lex::trim_ws_bytes(&t[digits..]);
        if digits == 0 || digits == t.len() || !lex::is_ws(t[digits]) || !lex::is_token(rest) {
            return Err(HeaderError::Malformed {
                name,
                detail: "not 'number method'",
            });
        }
        // RFC 3261 §8.1.1.5: the sequence number is a 32-bit unsigned integer
        // (RFC 4475 §3.1.2.4 sends 2^65).
        let seq = parse_decimal(&t[..digits], name)?;
        let seq = u32::try_from(seq).map_err(|_| HeaderError::OutOfRange {
            name,
            value: seq.to_string(),
        })?;
        let method = std::str::from_utf8(rest).map_err(|_| HeaderError::NotUtf8 { name })?;
        Ok(CSeq {
            seq,
            method: Method::from_token(method),
        })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

impl Headers {
    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        CSeq::parse(
            self.get_key(Key::CSeq)
                .ok_or(HeaderError::Missing { name: "CSeq" })?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq_range_and_folding() {
        let c = CSeq::parse(b"0009 INVITE").unwrap();
        assert_eq!((c.seq, c.method), (9, Method::Invite));
        assert!(matches!(
            CSeq::parse(b"36893488147419103232 REGISTER"),
            Err(HeaderError::OutOfRange { .. })
        ));
        assert!(CSeq::parse(b"4294967296 INVITE").is_err());
        assert_eq!(CSeq::parse(b"4294967295 INVITE").unwrap().seq, u32::MAX);
        for bad in [
            &b"INVITE"[..],
            b"1",
            b"1INVITE",
            b"1 INVITE x",
            b"-1 INVITE",
        ] {
            assert!(CSeq::parse(bad).is_err());
        }
    }
}
