//! The header section: an ordered list of (name, value) kept as received.
//! Values are `Bytes` slices of the received buffer (a folded value is the
//! one exception: it is copied once with the folding replaced by SP).
//! Typed views (Via, From, CSeq...) are parsed on demand.

use bytes::Bytes;
use thiserror::Error;

use super::lex;
use super::uri::UriError;

/// Headers the parser recognises by name so lookups compare one byte instead
/// of strings. Compact forms (RFC 3261 §7.3.3, RFC 3515, RFC 3892, RFC 4028,
/// RFC 6665, RFC 8224) map to the same key as their long name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    Other,
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    Contact,
    ContentLength,
    ContentType,
    ContentEncoding,
    Subject,
    Supported,
    Require,
    ProxyRequire,
    Event,
    AllowEvents,
    ReferTo,
    ReferredBy,
    SessionExpires,
    Identity,
    Accept,
    Route,
    RecordRoute,
    Allow,
    UserAgent,
    Server,
    MinSe,
    Expires,
    Unsupported,
    PAssertedIdentity,
    Privacy,
    RSeq,
    RAck,
    Reason,
    Authorization,
    WwwAuthenticate,
    ContentDisposition,
}

impl Key {
    pub(crate) fn of(name: &[u8]) -> Key {
        if name.len() == 1 {
            return match name[0].to_ascii_lowercase() {
                b'i' => Key::CallId,
                b'm' => Key::Contact,
                b'e' => Key::ContentEncoding,
                b'l' => Key::ContentLength,
                b'c' => Key::ContentType,
                b'f' => Key::From,
                b's' => Key::Subject,
                b'k' => Key::Supported,
                b't' => Key::To,
                b'v' => Key::Via,
                b'o' => Key::Event,
                b'u' => Key::AllowEvents,
                b'r' => Key::ReferTo,
                b'b' => Key::ReferredBy,
                b'x' => Key::SessionExpires,
                b'y' => Key::Identity,
                _ => Key::Other,
            };
        }
        Self::known(name).map_or(Key::Other, |(_, k)| k)
    }

    /// The key of a long name and its usual spelling (a name written that
    /// way is stored as a static string, not a slice of the buffer).
    /// Matching on the length first leaves one to four candidates.
    #[inline]
    pub(crate) fn known(name: &[u8]) -> Option<(&'static str, Key)> {
        let candidates: &[(&'static str, Key)] = match name.len() {
            2 => &[("To", Key::To)],
            3 => &[("Via", Key::Via)],
            4 => &[
                ("From", Key::From),
                ("CSeq", Key::CSeq),
                ("RSeq", Key::RSeq),
                ("RAck", Key::RAck),
            ],
            5 => &[
                ("Event", Key::Event),
                ("Route", Key::Route),
                ("Allow", Key::Allow),
            ],
            6 => &[
                ("Accept", Key::Accept),
                ("Server", Key::Server),
                ("Min-SE", Key::MinSe),
                ("Reason", Key::Reason),
            ],
            7 => &[
                ("Call-ID", Key::CallId),
                ("Contact", Key::Contact),
                ("Subject", Key::Subject),
                ("Require", Key::Require),
                ("Expires", Key::Expires),
                ("Privacy", Key::Privacy),
            ],
            8 => &[("Refer-To", Key::ReferTo), ("Identity", Key::Identity)],
            9 => &[("Supported", Key::Supported)],
            10 => &[("User-Agent", Key::UserAgent)],
            11 => &[
                ("Referred-By", Key::ReferredBy),
                ("Unsupported", Key::Unsupported),
            ],
            12 => &[
                ("Max-Forwards", Key::MaxForwards),
                ("Content-Type", Key::ContentType),
                ("Allow-Events", Key::AllowEvents),
                ("Record-Route", Key::RecordRoute),
            ],
            13 => &[
                ("Proxy-Require", Key::ProxyRequire),
                ("Authorization", Key::Authorization),
            ],
            14 => &[("Content-Length", Key::ContentLength)],
            15 => &[("Session-Expires", Key::SessionExpires)],
            16 => &[
                ("Content-Encoding", Key::ContentEncoding),
                ("WWW-Authenticate", Key::WwwAuthenticate),
            ],
            19 => &[
                ("P-Asserted-Identity", Key::PAssertedIdentity),
                ("Content-Disposition", Key::ContentDisposition),
            ],
            _ => &[],
        };
        candidates
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .copied()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    #[error("missing {name} header")]
    Missing { name: &'static str },
    #[error("{name} header is not UTF-8")]
    NotUtf8 { name: &'static str },
    #[error("malformed {name} header: {detail}")]
    Malformed {
        name: &'static str,
        detail: &'static str,
    },
    #[error("bad URI in {name} header: {source}")]
    Uri {
        name: &'static str,
        #[source]
        source: UriError,
    },
    #[error("{name} value {value:?} out of range")]
    OutOfRange { name: &'static str, value: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: Bytes,
    key: Key,
    value: Bytes,
}

/// Ordered header list; unknown headers, their order and the names as
/// written are kept byte for byte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<Entry>,
}

/// Up to how many header lines one message may carry; more is refused as a
/// resource attack rather than parsed (a real INVITE has 15-40).
pub const MAX_HEADERS: usize = 256;

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }

    pub(crate) fn with_capacity(n: usize) -> Headers {
        Headers {
            entries: Vec::with_capacity(n),
        }
    }

    pub(crate) fn push_raw(&mut self, name: Bytes, key: Key, value: Bytes) {
        self.entries.push(Entry { name, key, value });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn matcher(name: &str) -> impl Fn(&Entry) -> bool + '_ {
        let key = Key::of(name.as_bytes());
        move |e: &Entry| {
            if key == Key::Other {
                e.key == Key::Other && e.name.eq_ignore_ascii_case(name.as_bytes())
            } else {
                e.key == key
            }
        }
    }

    pub(crate) fn get_key(&self, key: Key) -> Option<&Bytes> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    pub(crate) fn all_key(&self, key: Key) -> impl Iterator<Item = &Bytes> {
        self.entries
            .iter()
            .filter(move |e| e.key == key)
            .map(|e| &e.value)
    }

    /// First value of `name`; case-insensitive, compact forms match long names.
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        let m = Self::matcher(name);
        self.entries.iter().find(|e| m(e)).map(|e| &e.value)
    }

    /// Every header line of that name, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Bytes> + 'a {
        let m = Self::matcher(name);
        self.entries.iter().filter(move |e| m(e)).map(|e| &e.value)
    }

    /// The comma-separated elements of every line of `name` (RFC 3261 §7.3.1),
    /// split outside quotes and `<>`, trimmed. Only meaningful for list
    /// headers: `Date` or `WWW-Authenticate` carry commas of their own.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Bytes> + 'a {
        self.get_all(name).flat_map(split_values)
    }

    pub fn push(&mut self, name: &str, value: impl Into<Bytes>) {
        self.entries.push(Entry::new(name, value.into()));
    }

    pub fn push_front(&mut self, name: &str, value: impl Into<Bytes>) {
        self.entries.insert(0, Entry::new(name, value.into()));
    }

    /// Replaces every line of `name` by one, at the place of the first, or
    /// appends it.
    pub fn set(&mut self, name: &str, value: impl Into<Bytes>) {
        let m = Self::matcher(name);
        match self.entries.iter().position(&m) {
            Some(i) => {
                self.entries[i].value = value.into();
                let mut seen = 0usize;
                self.entries.retain(|e| {
                    if m(e) {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.push(name, value),
        }
    }

    /// Removes every line of `name`; returns how many.
    pub fn remove(&mut self, name: &str) -> usize {
        let m = Self::matcher(name);
        let before = self.entries.len();
        self.entries.retain(|e| !m(e));
        before - self.entries.len()
    }

    /// (name as written, value) in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        // Names are token characters (checked when parsed) or came in as &str.
        self.entries
            .iter()
            .map(|e| (std::str::from_utf8(&e.name).unwrap_or(""), &e.value))
    }

    pub(crate) fn iter_raw(&self) -> impl Iterator<Item = (&Bytes, Key, &Bytes)> {
        self.entries.iter().map(|e| (&e.name, e.key, &e.value))
    }

    pub(crate) fn str_of(&self, key: Key, name: &'static str) -> Result<&str, HeaderError> {
        let v = self.get_key(key).ok_or(HeaderError::Missing { name })?;
        std::str::from_utf8(v).map_err(|_| HeaderError::NotUtf8 { name })
    }

    /// Call-ID (RFC 3261 §20.8): one `word ["@" word]`, so no white space.
    pub fn call_id(&self) -> Result<&str, HeaderError> {
        let v = self.str_of(Key::CallId, "Call-ID")?;
        if v.is_empty()
            || v.bytes()
                .any(|b| lex::is_ws(b) || b == b',' || b.is_ascii_control())
        {
            return Err(HeaderError::Malformed {
                name: "Call-ID",
                detail: "not one word",
            });
        }
        Ok(v)
    }

    /// Max-Forwards (RFC 3261 §20.22): 0-255.
    pub fn max_forwards(&self) -> Result<Option<u32>, HeaderError> {
        let Some(v) = self.get_key(Key::MaxForwards) else {
            return Ok(None);
        };
        let n = parse_decimal(v, "Max-Forwards")?;
        if n > 255 {
            return Err(HeaderError::OutOfRange {
                name: "Max-Forwards",
                value: String::from_utf8_lossy(v).into_owned(),
            });
        }
        Ok(Some(n as u32))
    }

    /// The media type of Content-Type with parameters, trimmed.
    pub fn content_type(&self) -> Option<&str> {
        self.get_key(Key::ContentType)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(lex::trim_ws)
    }

    /// Option tags of Require / Supported / Proxy-Require (or any list header).
    pub fn option_tags(&self, name: &str) -> Vec<String> {
        self.values(name)
            .filter(|v| !v.is_empty())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .collect()
    }
}

impl Entry {
    fn new(name: &str, value: Bytes) -> Entry {
        Entry {
            name: Bytes::copy_from_slice(name.as_bytes()),
            key: Key::of(name.as_bytes()),
            value,
        }
    }
}

pub(crate) fn split_values(line: &Bytes) -> impl Iterator<Item = Bytes> + '_ {
    lex::comma_ranges(line).map(move |r| line.slice(r))
}

/// `1*DIGIT` as u64; leading zeros allowed (RFC 4475 §3.1.1.1), overflow is
/// an out-of-range error, never a wrap.
pub(crate) fn parse_decimal(v: &[u8], name: &'static str) -> Result<u64, HeaderError> {
    let t = lex::trim_ws_bytes(v);
    if t.is_empty() || !t.iter().all(u8::is_ascii_digit) {
        return Err(HeaderError::Malformed {
            name,
            detail: "not a number",
        });
    }
    t.iter()
        .try_fold(0u64, |acc, &d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or_else(|| HeaderError::OutOfRange {
            name,
            value: String::from_utf8_lossy(t).into_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_long_names_match_case_insensitively() {
        let mut h = Headers::new();
        h.push("v", "SIP/2.0/UDP a");
        h.push("VIA", "SIP/2.0/UDP b");
        h.push("X-Custom", "1");
        h.push("i", "abc@host");
        assert_eq!(h.get_all("Via").count(), 2);
        assert_eq!(h.get("call-id").map(|b| &b[..]), Some(&b"abc@host"[..]));
        assert_eq!(h.get("x-custom").map(|b| &b[..]), Some(&b"1"[..]));
        assert_eq!(h.get("X"), None);
        assert_eq!(h.call_id().unwrap(), "abc@host");
        let names: Vec<&str> = h.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["v", "VIA", "X-Custom", "i"]);
    }

    #[test]
    fn set_remove_and_push_front() {
        let mut h = Headers::new();
        h.push("Via", "SIP/2.0/UDP a");
        h.push("Route", "<sip:r1>");
        h.push("v", "SIP/2.0/UDP b");
        h.push_front("Via", "SIP/2.0/TLS us");
        assert_eq!(h.get("via").map(|b| &b[..]), Some(&b"SIP/2.0/TLS us"[..]));
        h.set("Via", "SIP/2.0/UDP only");
        assert_eq!(h.get_all("Via").count(), 1);
        let names: Vec<&str> = h.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["Via", "Route"]);
        assert_eq!(h.remove("route"), 1);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn values_split_lists_and_option_tags() {
        let mut h = Headers::new();
        h.push("Supported", "timer, replaces");
        h.push("k", "100rel");
        assert_eq!(h.option_tags("Supported"), ["timer", "replaces", "100rel"]);
        h.push("Contact", "\"a,b\" <sip:x@y>;q=1, <sip:z@w>");
        assert_eq!(h.values("m").count(), 2);
    }

    #[test]
    fn max_forwards_limits() {
        let mut h = Headers::new();
        h.push("Max-Forwards", "0068");
        assert_eq!(h.max_forwards().unwrap(), Some(68));
        h.set("Max-Forwards", "300");
        assert!(matches!(
            h.max_forwards(),
            Err(HeaderError::OutOfRange { .. })
        ));
        h.set("Max-Forwards", "99999999999999999999999");
        assert!(h.max_forwards().is_err());
        h.set("Max-Forwards", "-1");
        assert!(h.max_forwards().is_err());
    }
}
