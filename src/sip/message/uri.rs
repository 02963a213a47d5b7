//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966) with IPv6 references
//! (RFC 5118). Every part is kept as received, escapes included, so that
//! printing a URI gives back what came in and nothing is unescaped twice
//! (RFC 4475 §3.1.1.3).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    /// Any other scheme, as written (`isbn`, `http`, `soap.beep`...). Such a
    /// URI keeps everything after the colon in `Uri::user`.
    Other(String),
}

impl Scheme {
    pub fn as_str(&self) -> &str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
            Scheme::Other(s) => s,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name as written (case kept). Empty for tel and other schemes,
    /// which have no host.
    Domain(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UriError {
    #[error("URI is empty")]
    Empty,
    #[error("URI has no scheme")]
    MissingScheme,
    #[error("bad URI scheme {scheme:?}")]
    BadScheme { scheme: String },
    #[error("illegal character {ch:?} at offset {at} in URI")]
    IllegalChar { ch: char, at: usize },
    #[error("empty user part before '@'")]
    EmptyUser,
    #[error("bad host {host:?}")]
    BadHost { host: String },
    #[error("bad IPv6 reference {addr:?}")]
    BadIpv6 { addr: String },
    #[error("bad port {port:?}")]
    BadPort { port: String },
    #[error("empty URI parameter")]
    EmptyParam,
    #[error("URI header without '=': {header:?}")]
    BadHeader { header: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Uri {
    pub scheme: Scheme,
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Vec<(String, Option<String>)>,
    /// `?name=value&...` headers, escapes kept (RFC 3261 §19.1.1).
    pub headers: Vec<(String, String)>,
}

impl Uri {
    /// Frees spare capacity, for a URI kept for long (a dialog's): parsing
    /// leaves room for four parameters where most URIs have one or none.
    pub fn shrink_to_fit(&mut self) {
        self.params.shrink_to_fit();
        self.headers.shrink_to_fit();
    }

    /// A `sip:` URI with only a host, for building requests.
    pub fn sip(host: Host) -> Uri {
        Uri {
            scheme: Scheme::Sip,
            user: None,
            password: None,
            host,
            port: None,
            params: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if s.is_empty() {
            return Err(UriError::Empty);
        }
        // White space, controls, quotes and angle brackets never occur in a
        // URI (RFC 3261 §25.1); finding one means the caller framed it wrong
        // (RFC 4475 §3.1.2.7, §3.1.2.8, §3.1.2.14).
        if let Some(at) = s
            .bytes()
            .position(|b| b < 0x21 || b == 0x7f || matches!(b, b'"' | b'<' | b'>'))
        {
            return Err(UriError::IllegalChar {
                ch: char::from(s.as_bytes()[at]),
                at,
            });
        }
        let colon = s.find(':').ok_or(UriError::MissingScheme)?;
        let scheme_str = &s[..colon];
        let valid_scheme = scheme_str
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphabetic)
            && scheme_str
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !valid_scheme {
            return Err(UriError::BadScheme {
                scheme: scheme_str.to_owned(),
            });
        }
        let rest = &s[colon + 1..];
        let scheme = if scheme_str.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme_str.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme_str.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            Scheme::Other(scheme_str.to_owned())
        };
        match scheme {
            Scheme::Sip | Scheme::Sips => parse_sip(scheme, rest),
            Scheme::Tel => {
                let (number, params) = rest.split_once(';').unwrap_or((rest, ""));
                if number.is_empty() {
                    return Err(UriError::EmptyUser);
                }
                Ok(Uri {
                    scheme,
                    user: Some(number.to_owned()),
                    password: None,
                    host: Host::Domain(String::new()),
                    port: None,
                    params: uri_params(params)?,
                    headers: Vec::new(),
                })
            }
            Scheme::Other(_) => {
                if rest.is_empty() {
                    return Err(UriError::Empty);
                }
                Ok(Uri {
                    scheme,
                    user: Some(rest.to_owned()),
                    password: None,
                    host: Host::Domain(String::new()),
                    port: None,
                    params: Vec::new(),
                    headers: Vec::new(),
                })
            }
        }
    }

    /// `Some(None)` for a flag parameter (`;lr`), `Some(Some(v))` for `;name=v`.
    /// Names compare case-insensitively (RFC 3261 §19.1.4).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// `host[:port]` as printed in a Via sent-by or a Host-like context.
    pub fn host_port(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.to_string(),
        }
    }
}

fn parse_sip(scheme: Scheme, rest: &str) -> Result<Uri, UriError> {
    // The user part may hold '?', ';' and ':' (RFC 4475 §3.1.1.2, §3.1.1.9)
    // but never an unescaped '@', so the first '@' ends it.
    let (userinfo, hostpart) = match rest.find('@') {
        Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
        None => (None, rest),
    };
    let (user, password) = match userinfo {
        Some(ui) => {
            let (u, p) = match ui.split_once(':') {
                Some((u, p)) => (u, Some(p.to_owned())),
                None => (ui, None),
            };
            if u.is_empty() {
                return Err(UriError::EmptyUser);
            }
            (Some(u.to_owned()), p)
        }
        None => (None, None),
    };
    let (before_headers, headers_str) = match hostpart.split_once('?') {
        Some((a, h)) => (a, Some(h)),
        None => (hostpart, None),
    };
    let (hostport, params_str) = before_headers
        .split_once(';')
        .unwrap_or((before_headers, ""));
    let (host, port) = parse_host_port(hostport)?;
    let mut headers = Vec::new();
    if let Some(h) = headers_str {
        for pair in h.split('&') {
            let (n, v) = pair.split_once('=').ok_or_else(|| UriError::BadHeader {
                header: pair.to_owned(),
            })?;
            if n.is_empty() {
                return Err(UriError::BadHeader {
                    header: pair.to_owned(),
                });
            }
            headers.push((n.to_owned(), v.to_owned()));
        }
    }
    Ok(Uri {
        scheme,
        user,
        password,
        host,
        port,
        params: uri_params(params_str)?,
        headers,
    })
}

fn uri_params(s: &str) -> Result<Vec<(String, Option<String>)>, UriError> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(';')
        .map(|p| {
            let (n, v) = match p.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (p, None),
            };
            if n.is_empty() {
                Err(UriError::EmptyParam)
            } else {
                Ok((n.to_owned(), v))
            }
        })
        .collect()
}

/// `host [":" port]` where host is a name, an IPv4 address or a bracketed
/// IPv6 reference (RFC 3261 §25.1, RFC 5118).
pub(crate) fn parse_host_port(s: &str) -> Result<(Host, Option<u16>), UriError> {
    let (host, port_str) = if let Some(inner_and_rest) = s.strip_prefix('[') {
        let close = inner_and_rest
            .find(']')
            .ok_or_else(|| UriError::BadIpv6 { addr: s.to_owned() })?;
        let addr = parse_ipv6(&inner_and_rest[..close])?;
        let after = &inner_and_rest[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(UriError::BadHost { host: s.to_owned() }),
        };
        (Host::V6(addr), port)
    } else {
        let (h, p) = match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        (parse_host_name(h)?, p)
    };
    let port = match port_str {
        Some(p) => Some(parse_port(p)?),
        None => None,
    };
    Ok((host, port))
}

fn parse_port(p: &str) -> Result<u16, UriError> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UriError::BadPort { port: p.to_owned() });
    }
    p.parse()
        .map_err(|_| UriError::BadPort { port: p.to_owned() })
}

/// An IPv6 reference's inside. RFC 3261's ABNF let `2001:db8:::192.0.2.1`
/// through; RFC 5118 §4.10 asks receivers to tolerate it as `2001:db8::192.0.2.1`.
pub(crate) fn parse_ipv6(s: &str) -> Result<Ipv6Addr, UriError> {
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return Ok(a);
    }
    if s.contains(":::")
        && let Ok(a) = s.replacen(":::", "::", 1).parse::<Ipv6Addr>()
    {
        return Ok(a);
    }
    Err(UriError::BadIpv6 { addr: s.to_owned() })
}

/// A host name or IPv4 address (`hostname / IPv4address`).
pub(crate) fn parse_host_name(h: &str) -> Result<Host, UriError> {
    if h.is_empty()
        || !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(UriError::BadHost { host: h.to_owned() });
    }
    if h.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return h
            .parse::<Ipv4Addr>()
            .map(Host::V4)
            .map_err(|_| UriError::BadHost { host: h.to_owned() });
    }
    Ok(Host::Domain(h.to_owned()))
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme.as_str())?;
        f.write_str(":")?;
        match self.scheme {
            Scheme::Sip | Scheme::Sips => {
                if let Some(u) = &self.user {
                    f.write_str(u)?;
                    if let Some(p) = &self.password {
                        write!(f, ":{p}")?;
                    }
                    f.write_str("@")?;
                }
                write!(f, "{}", self.host)?;
                if let Some(p) = self.port {
                    write!(f, ":{p}")?;
                }
            }
            Scheme::Tel | Scheme::Other(_) => {
                if let Some(u) = &self.user {
                    f.write_str(u)?;
                }
            }
        }
        super::lex::write_params(f, &self.params)?;
        for (i, (n, v)) in self.headers.iter().enumerate() {
            f.write_str(if i == 0 { "?" } else { "&" })?;
            write!(f, "{n}={v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &str) -> Uri {
        let u = Uri::parse(s).unwrap();
        assert_eq!(u.to_string(), s, "printing {s} changed it");
        u
    }

    #[test]
    fn escapes_are_kept_and_not_unescaped_twice() {
        let u = round_trip("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
        assert_eq!(u.user.as_deref(), Some("cal%6Cer"));
        assert_eq!(u.param("n%61me"), Some(Some("v%61lue%25%34%31")));
        let u = round_trip("sip:sips%3Auser%40example.com@example.net");
        assert_eq!(u.host, Host::Domain("example.net".into()));
    }

    #[test]
    fn unusual_user_part_with_password() {
        let u = round_trip(
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        );
        assert_eq!(
            u.user.as_deref(),
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(
            u.password.as_deref(),
            Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        );
    }

    #[test]
    fn semicolon_in_user_part_is_not_a_parameter() {
        let u = round_trip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert!(u.params.is_empty());
    }

    #[test]
    fn ipv6_references_per_rfc5118() {
        let u = round_trip("sip:[2001:db8::10]:5070");
        assert_eq!(u.host, Host::V6("2001:db8::10".parse().unwrap()));
        assert_eq!(u.port, Some(5070));
        // §4.3: the last group belongs to the address, there is no port.
        let u = round_trip("sip:[2001:db8::10:5070]");
        assert_eq!(u.port, None);
        // §4.10: three colons tolerated.
        let u = Uri::parse("sip:user@[2001:db8:::192.0.2.1]").unwrap();
        assert_eq!(u.host, Host::V6("2001:db8::192.0.2.1".parse().unwrap()));
        // §4.2: an IPv6 address without brackets is not a host.
        assert!(Uri::parse("sip:2001:db8::10").is_err());
    }

    #[test]
    fn headers_and_other_schemes() {
        let u = round_trip("sip:user@example.com?Route=%3Csip:sip.example.com%3E");
        assert_eq!(
            u.headers,
            vec![("Route".into(), "%3Csip:sip.example.com%3E".into())]
        );
        let u = round_trip("nobodyKnowsThisScheme:totallyopaquecontent");
        assert_eq!(u.scheme, Scheme::Other("nobodyKnowsThisScheme".into()));
        let u = round_trip("soap.beep://192.0.2.103:3002");
        assert!(matches!(u.scheme, Scheme::Other(_)));
        let u = round_trip("tel:+1-201-555-0123;phone-context=example.com");
        assert_eq!(u.user.as_deref(), Some("+1-201-555-0123"));
        assert_eq!(u.param("phone-context"), Some(Some("example.com")));
    }

    #[test]
    fn malformed_uris_are_errors() {
        for bad in [
            "",
            "<sip:user@example.com>",
            "sip:user@example.com; lr",
            "sip:@example.com",
            "sip:host:99999",
            "sip:host;;lr",
            "sip:[::1",
            "1sip:host",
            "sip:user@",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
