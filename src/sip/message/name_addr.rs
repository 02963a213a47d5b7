//! `name-addr / addr-spec` with header parameters: From, To, Contact,
//! Route, Record-Route, Refer-To (RFC 3261 §20.10, §25.1).

use std::fmt;

use super::headers::{HeaderError, Headers, Key, split_values};
use super::lex;
use super::uri::Uri;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name without its quotes, quoted-pairs kept as written
    /// (`J Rosenberg \\\"`); a token display name is kept as written.
    pub display: Option<String>,
    pub uri: Uri,
    /// Header parameters (`;tag=...`), not URI parameters.
    pub params: Vec<(String, Option<String>)>,
}

impl NameAddr {
    /// As [`Uri::shrink_to_fit`], for the header parameters too.
    pub fn shrink_to_fit(&mut self) {
        self.uri.shrink_to_fit();
        self.params.shrink_to_fit();
    }

    pub fn new(uri: Uri) -> NameAddr {
        NameAddr {
            display: None,
            uri,
            params: Vec::new(),
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// Parses one element (no top-level comma) of a From/To/Contact value.
    pub fn parse(s: &str, name: &'static str) -> Result<NameAddr, HeaderError> {
        let s = lex::trim_ws(s);
        let bad = |detail| HeaderError::Malformed { name, detail };
        let (display, after_display) = if s.starts_with('"') {
            let (inner, rest) =
                lex::split_quoted(s).ok_or(bad("unterminated quoted display name"))?;
            let rest = lex::skip_ws(rest);
            if !rest.starts_with('<') {
                return Err(bad("quoted display name without <URI>"));
            }
            (Some(inner.to_owned()), rest)
        } else if let Some(lt) = s.find('<') {
            // display-name = *(token LWS): RFC 4475 §3.1.2.15 (a comma) must fail,
            // §3.1.1.6 (no LWS before '<') must pass.
            let d = lex::trim_ws(&s[..lt]);
            if !d.bytes().all(|b| lex::is_token_byte(b) || lex::is_ws(b)) {
                return Err(bad("display name is neither token nor quoted"));
            }
            ((!d.is_empty()).then(|| d.to_owned()), &s[lt..])
        } else {
            (None, s)
        };

        let (uri_str, rest) = if let Some(inner) = after_display.strip_prefix('<') {
            let gt = inner.find('>').ok_or(bad("'<' without '>'"))?;
            (&inner[..gt], &inner[gt + 1..])
        } else {
            // addr-spec form: the URI ends at the first ';' or white space, and
            // what follows are header parameters (RFC 3261 §20.10, RFC 4475 §3.3.12).
            let end = after_display
                .bytes()
                .position(|b| b == b';' || lex::is_ws(b))
                .unwrap_or(after_display.len());
            let (u, r) = after_display.split_at(end);
            // A URI with '?' headers (or ',' / ';' in it) needs <> (RFC 4475 §3.1.2.13).
            if u.contains('?') {
                return Err(bad("URI with headers outside <>"));
            }
            (u, r)
        };
        let uri = Uri::parse(uri_str).map_err(|source| HeaderError::Uri { name, source })?;
        let params = lex::parse_params(rest).map_err(|_| bad("bad parameters"))?;
        Ok(NameAddr {
            display,
            uri,
            params,
        })
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "\"{d}\" ")?;
        }
        write!(f, "<{}>", self.uri)?;
        lex::write_params(f, &self.params)
    }
}

impl Headers {
    fn single_name_addr(&self, key: Key, name: &'static str) -> Result<NameAddr, HeaderError> {
        let v = self.get_key(key).ok_or(HeaderError::Missing { name })?;
        let s = std::str::from_utf8(v).map_err(|_| HeaderError::NotUtf8 { name })?;
        NameAddr::parse(s, name)
    }

    pub fn from(&self) -> Result<NameAddr, HeaderError> {
        self.single_name_addr(Key::From, "From")
    }

    pub fn to(&self) -> Result<NameAddr, HeaderError> {
        self.single_name_addr(Key::To, "To")
    }

    /// Every Contact value of every Contact line. `Contact: *` (RFC 3261
    /// §10.2.2, REGISTER only) yields no entry.
    pub fn contacts(&self) -> Result<Vec<NameAddr>, HeaderError> {
        let mut out = Vec::new();
        for line in self.all_key(Key::Contact) {
            for v in split_values(line) {
                let s = std::str::from_utf8(&v)
                    .map_err(|_| HeaderError::NotUtf8 { name: "Contact" })?;
                if s == "*" {
                    continue;
                }
                out.push(NameAddr::parse(s, "Contact")?);
            }
        }
        Ok(out)
    }

    /// Every element of every line of a name-addr list header such as
    /// Route or Record-Route.
    pub fn name_addrs(&self, name: &'static str) -> Result<Vec<NameAddr>, HeaderError> {
        self.values(name)
            .map(|v| {
                let s = std::str::from_utf8(&v).map_err(|_| HeaderError::NotUtf8 { name })?;
                NameAddr::parse(s, name)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::uri::Scheme;

    fn p(s: &str) -> Result<NameAddr, HeaderError> {
        NameAddr::parse(s, "To")
    }

    #[test]
    fn addr_spec_params_belong_to_the_header() {
        let n = p("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert!(n.uri.params.is_empty());
        assert_eq!(n.param("unknownparam"), Some(None));
        let n = p("<sip:+19725552222@gw1.example.net;unknownparam>").unwrap();
        assert_eq!(n.uri.param("unknownparam"), Some(None));
        assert!(n.params.is_empty());
        let n = p("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(n.tag(), Some("1918181833n"));
    }

    #[test]
    fn display_names_quoted_token_and_glued() {
        let n =
            p(r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ;  tag = 98asjd8"#).unwrap();
        assert_eq!(n.display.as_deref(), Some(r#"J Rosenberg \\\""#));
        assert_eq!(n.tag(), Some("98asjd8"));
        let n = p("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        let n = p("A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe").unwrap();
        assert_eq!(n.display.as_deref(), Some("A. Bell"));
        let printed = p(r#""x \"y\"" <sip:a@b>;tag=1"#).unwrap().to_string();
        assert_eq!(printed, r#""x \"y\"" <sip:a@b>;tag=1"#);
    }

    #[test]
    fn torture_defects_are_rejected() {
        assert!(p("\"Mr. J. User <sip:j.user@example.com>").is_err()); // quotbal
        assert!(p("\"Watson, Thomas\" < sip:t.watson@example.org >").is_err()); // badaspec
        assert!(p("Watson, Thomas <sip:t.watson@example.org>").is_err()); // baddn
        assert!(p("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err()); // regbadct
        assert!(p("\"Joe\" <sip:joe@example.org>;;;;").is_err()); // badinv01
    }

    #[test]
    fn non_sip_uris_parse() {
        assert_eq!(
            p("isbn:2983792873").unwrap().uri.scheme,
            Scheme::Other("isbn".into())
        );
        let n = p("<http://www.example.com>;tag=3234233").unwrap();
        assert_eq!(n.uri.scheme, Scheme::Other("http".into()));
        assert_eq!(n.tag(), Some("3234233"));
    }
}
