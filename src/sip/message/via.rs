//! Via (RFC 3261 §20.42) with RFC 3581 rport and RFC 5118 IPv6 sent-by /
//! received.

use std::fmt;

use super::headers::{HeaderError, Headers, Key, split_values};
use super::lex;
use super::uri::{Host, parse_host_port};

/// RFC 3261 §8.1.1.7: a branch starting with this was made by an RFC 3261 element.
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token as written (`UDP`, `TLS`, `SCTP`, or an unknown one).
    pub transport: String,
    pub host: Host,
    pub port: Option<u16>,
    pub branch: Option<String>,
    /// As written: with or without brackets for IPv6 (RFC 5118 §4.5).
    pub received: Option<String>,
    /// `Some(None)`: `;rport` asked for; `Some(Some(p))`: filled in (RFC 3581).
    pub rport: Option<Option<u16>>,
    /// The other parameters, in order (maddr, ttl, alias, extensions).
    pub params: Vec<(String, Option<String>)>,
}

impl Via {
    pub fn new(transport: &str, host: Host, port: Option<u16>, branch: &str) -> Via {
        Via {
            transport: transport.to_owned(),
            host,
            port,
            branch: Some(branch.to_owned()),
            received: None,
            rport: None,
            params: Vec::new(),
        }
    }

    /// `host[:port]`, IPv6 in brackets.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.to_string(),
        }
    }

    /// The branch carries the RFC 3261 magic cookie (so transactions match by branch).
    pub fn is_rfc3261_branch(&self) -> bool {
        self.branch
            .as_deref()
            .is_some_and(|b| b.starts_with(BRANCH_MAGIC_COOKIE))
    }

    /// `received` as an address, brackets or not.
    pub fn received_addr(&self) -> Option<std::net::IpAddr> {
        let r = self.received.as_deref()?;
        let r = r
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(r);
        r.parse().ok()
    }

    pub fn parse(s: &str) -> Result<Via, HeaderError> {
        let bad = |detail| HeaderError::Malformed {
            name: "Via",
            detail,
        };
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport,
        // SLASH = SWS "/" SWS (RFC 4475 §3.1.1.1 spreads it over three lines).
        let mut rest = lex::skip_ws(s);
        let mut parts = [""; 3];
        for (i, part) in parts.iter_mut().enumerate() {
            if i > 0 {
                rest = lex::skip_ws(
                    rest.strip_prefix('/')
                        .ok_or(bad("sent-protocol needs '/'"))?,
                );
            }
            let n = rest.bytes().take_while(|&b| lex::is_token_byte(b)).count();
            if n == 0 {
                return Err(bad("empty sent-protocol part"));
            }
            *part = &rest[..n];
            rest = lex::skip_ws(&rest[n..]);
        }
        if !parts[0].eq_ignore_ascii_case("SIP") || parts[1] != "2.0" {
            return Err(bad("protocol is not SIP/2.0"));
        }
        let end = rest
            .bytes()
            .position(|b| b == b';' || lex::is_ws(b))
            .unwrap_or(rest.len());
        let (host, port) = parse_host_port(&rest[..end]).map_err(|_| bad("bad sent-by"))?;
        let all = lex::parse_params(&rest[end..]).map_err(|_| bad("bad parameters"))?;
        let mut via = Via {
            transport: parts[2].to_owned(),
            host,
            port,
            branch: None,
            received: None,
            rport: None,
            params: Vec::new(),
        };
        for (name, value) in all {
            if name.eq_ignore_ascii_case("branch") {
                via.branch = Some(value.ok_or(bad("branch without value"))?);
            } else if name.eq_ignore_ascii_case("received") {
                via.received = Some(value.ok_or(bad("received without value"))?);
            } else if name.eq_ignore_ascii_case("rport") {
                via.rport = Some(match value {
                    Some(v) => Some(v.parse().map_err(|_| bad("bad rport"))?),
                    None => None,
                });
            } else {
                via.params.push((name, value));
            }
        }
        Ok(via)
    }
}

impl fmt::Display for Via {
    /// Prints branch, received and rport first, then the other parameters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if let Some(b) = &self.branch {
            write!(f, ";branch={b}")?;
        }
        if let Some(r) = &self.received {
            write!(f, ";received={r}")?;
        }
        match self.rport {
            Some(Some(p)) => write!(f, ";rport={p}")?,
            Some(None) => f.write_str(";rport")?,
            None => {}
        }
        lex::write_params(f, &self.params)
    }
}

impl Headers {
    pub fn top_via(&self) -> Result<Via, HeaderError> {
        let line = self
            .get_key(Key::Via)
            .ok_or(HeaderError::Missing { name: "Via" })?;
        let first = split_values(line).next().unwrap_or_default();
        let s = std::str::from_utf8(&first).map_err(|_| HeaderError::NotUtf8 { name: "Via" })?;
        Via::parse(s)
    }

    /// Every Via value, top first, across lines and commas.
    pub fn vias(&self) -> Result<Vec<Via>, HeaderError> {
        let mut out = Vec::new();
        for line in self.all_key(Key::Via) {
            for v in split_values(line) {
                let s =
                    std::str::from_utf8(&v).map_err(|_| HeaderError::NotUtf8 { name: "Via" })?;
                out.push(Via::parse(s)?);
            }
        }
        if out.is_empty() {
            return Err(HeaderError::Missing { name: "Via" });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_lws_everywhere() {
        let v = Via::parse("SIP  /   2.0 /UDP    192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, Host::V4("192.0.2.2".parse().unwrap()));
        assert_eq!(v.branch.as_deref(), Some("390skdjuw"));
        assert!(!v.is_rfc3261_branch());
        let v =
            Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8")
                .unwrap();
        assert_eq!(v.sent_by(), "spindle.example.com");
        assert!(v.is_rfc3261_branch());
    }

    #[test]
    fn via_ipv6_received_with_and_without_brackets() {
        let v = Via::parse(
            "SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3-111",
        )
        .unwrap();
        assert_eq!(v.received.as_deref(), Some("[2001:db8::9:255]"));
        assert_eq!(v.received_addr(), Some("2001:db8::9:255".parse().unwrap()));
        let v =
            Via::parse("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3")
                .unwrap();
        assert_eq!(v.received_addr(), Some("2001:db8::9:255".parse().unwrap()));
        assert_eq!(v.branch.as_deref(), Some("z9hG4bKas3"));
        let v = Via::parse("SIP/2.0/UDP [2001:db8::9:1]:6050;rport").unwrap();
        assert_eq!((v.port, v.rport), (Some(6050), Some(None)));
        assert_eq!(v.sent_by(), "[2001:db8::9:1]:6050");
        assert_eq!(v.to_string(), "SIP/2.0/UDP [2001:db8::9:1]:6050;rport");
    }

    #[test]
    fn via_defects() {
        for bad in [
            "SIP/2.0/UDP 192.0.2.15;;",
            ";",
            "",
            "SIP/7.0/UDP c.example.com",
            "SIP/2.0 host",
            "SIP/2.0/UDP host;branch=",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad:?}");
        }
    }
}
