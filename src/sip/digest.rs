//! SIP digest authentication as the challenging side (RFC 3261 §22, RFC 2617 with qop=auth,
//! MD5): what a trunk that must prove itself with a password answers to our 407.
//!
//! Nonces carry their own issue time, a serial number (two challenges in one second must not
//! share a nonce, or the second client's first count would look like a replay) and a MAC over
//! both with a key made at start, so telling ours from others needs no table: a nonce we did
//! not make, or one older than [`NONCE_LIFETIME`], is refused (the second with `stale=true`,
//! so the peer retries with a fresh one at once). What is kept is each nonce's highest nonce
//! count (`nc`) among credentials that verified, until the nonce ages out: a request must count
//! higher than the last one on its nonce (one use only without qop), so credentials seen on
//! the wire cannot start another call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use md5::{Digest, Md5};

/// How long a nonce is good for after we issue it.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// Issues and checks nonces; the key never leaves the process.
pub struct Nonces {
    key: hmac::Key,
    /// The next nonce's serial number.
    serial: AtomicU64,
    /// Highest `nc` used per nonce, keyed by its issue time and serial number (~28 bytes an
    /// entry: with 1,400 authenticated calls/s, ~12 MB over a nonce's five minutes).
    used: HashMap<(u64, u64), u32>,
    /// Aged-out entries are dropped when the map reaches this size.
    prune_at: usize,
}

/// The map is pruned no more often than this many entries.
const MIN_PRUNE_AT: usize = 1024;

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonces(<key>)")
    }
}

/// What a nonce presented by a peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    Fresh,
    /// Ours, but too old: challenge again with `stale=true`.
    Stale,
    /// Not one of ours.
    Forged,
}

impl Nonces {
    pub fn new() -> Result<Nonces, aws_lc_rs::error::Unspecified> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)?;
        Ok(Nonces {
            key,
            serial: AtomicU64::new(0),
            used: HashMap::new(),
            prune_at: MIN_PRUNE_AT,
        })
    }

    /// A nonce for `now`: its time in seconds, its serial number and a MAC over both, in hex.
    pub fn issue(&self, now: SystemTime) -> String {
        let secs = unix_secs(now);
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let tag = hmac::sign(&self.key, &mac_input(secs, serial));
        format!("{secs:x}.{serial:x}.{}", hex(&tag.as_ref()[..16]))
    }

    pub fn check(&self, nonce: &str, now: SystemTime) -> NonceCheck {
        let Some(((secs, serial), mac)) = parse_nonce(nonce) else {
            return NonceCheck::Forged;
        };
        let expected = hmac::sign(&self.key, &mac_input(secs, serial));
        if !constant_time_eq::constant_time_eq(
            hex(&expected.as_ref()[..16]).as_bytes(),
            mac.as_bytes(),
        ) {
            return NonceCheck::Forged;
        }
        let age = unix_secs(now).saturating_sub(secs);
        // A nonce from the future is ours too (clock stepped back): fresh until it ages.
        if age > NONCE_LIFETIME.as_secs() {
            NonceCheck::Stale
        } else {
            NonceCheck::Fresh
        }
    }

    /// Records a use of `nonce` (one [`check`](Self::check) found fresh, by credentials that
    /// verified) with nonce count `nc` (hex, from the credentials; absent without qop). False
    /// when the count is not above the last one on this nonce: a replay of earlier credentials.
    pub fn first_use(&mut self, nonce: &str, nc: Option<&str>, now: SystemTime) -> bool {
        let Some(key) = use_key(nonce) else {
            return false;
        };
        // Without qop a client cannot count: such a nonce is good once.
        let nc = match nc.map(|h| u32::from_str_radix(h, 16)) {
            None => 1,
            Some(Ok(n)) if n > 0 => n,
            Some(_) => return false,
        };
        if self.used.len() >= self.prune_at {
            let now = unix_secs(now);
            self.used
                .retain(|&(issued, _), _| now.saturating_sub(issued) <= NONCE_LIFETIME.as_secs());
            self.prune_at = (self.used.len() * 2).max(MIN_PRUNE_AT);
        }
        let last = self.used.entry(key).or_insert(0);
        if nc <= *last {
            return false;
        }
        *last = nc;
        true
    }
}

/// Issue time and serial number of a nonce of ours.
fn use_key(nonce: &str) -> Option<(u64, u64)> {
    parse_nonce(nonce).map(|(key, _)| key)
}

/// `secs.serial.mac` → ((secs, serial), mac); the MAC is not checked here.
fn parse_nonce(nonce: &str) -> Option<((u64, u64), &str)> {
    let (secs, rest) = nonce.split_once('.')?;
    let (serial, mac) = rest.split_once('.')?;
    let secs = u64::from_str_radix(secs, 16).ok()?;
    let serial = u64::from_str_radix(serial, 16).ok()?;
    Some(((secs, serial), mac))
}

fn mac_input(secs: u64, serial: u64) -> [u8; 16] {
    let mut m = [0u8; 16];
    m[..8].copy_from_slice(&secs.to_be_bytes());
    m[8..].copy_from_slice(&serial.to_be_bytes());
    m
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The value of a `Proxy-Authenticate` header challenging for `realm` with `nonce`.
pub fn challenge(realm: &str, nonce: &str, stale: bool) -> String {
    let stale = if stale { ", stale=true" } else { "" };
    format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"{stale}")
}

/// The parameters of an `Authorization`/`Proxy-Authorization` value (RFC 2617 §3.2.2).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

impl Credentials {
    /// `Digest k=v, k="v", ...`; None when it is not Digest or lacks a required field.
    pub fn parse(value: &str) -> Option<Credentials> {
        let value = value.trim();
        let (scheme, rest) = value.split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let mut c = Credentials::default();
        for (k, v) in params(rest)? {
            match k.to_ascii_lowercase().as_str() {
                "username" => c.username = v,
                "realm" => c.realm = v,
                "nonce" => c.nonce = v,
                "uri" => c.uri = v,
                "response" => c.response = v,
                "algorithm" => c.algorithm = Some(v),
                "qop" => c.qop = Some(v),
                "nc" => c.nc = Some(v),
                "cnonce" => c.cnonce = Some(v),
                _ => {}
            }
        }
        let complete = !c.username.is_empty()
            && !c.nonce.is_empty()
            && !c.uri.is_empty()
            && !c.response.is_empty();
        complete.then_some(c)
    }

    /// Whether `response` is right for `method` and this password (MD5; qop=auth or none).
    pub fn verify(&self, method: &str, password: &str) -> bool {
        if self
            .algorithm
            .as_deref()
            .is_some_and(|a| !a.eq_ignore_ascii_case("MD5"))
        {
            return false;
        }
        let ha1 = md5_hex(&format!("{}:{}:{}", self.username, self.realm, password));
        let ha2 = md5_hex(&format!("{method}:{}", self.uri));
        let expected = match self.qop.as_deref() {
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (&self.nc, &self.cnonce) else {
                    return false;
                };
                md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce))
            }
            Some(_) => return false,
            None => md5_hex(&format!("{ha1}:{}:{ha2}", self.nonce)),
        };
        constant_time_eq::constant_time_eq(
            expected.as_bytes(),
            self.response.to_ascii_lowercase().as_bytes(),
        )
    }
}

fn md5_hex(s: &str) -> String {
    hex(&Md5::digest(s.as_bytes()))
}

/// Comma-separated `k=v` pairs, values quoted or tokens; a quoted value may hold commas and
/// escaped quotes. None on an unterminated quote.
fn params(s: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    // Bounded: every turn consumes at least the key and its '='.
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '\\' => {
                        if let Some((_, esc)) = chars.next() {
                            value.push(esc);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    _ => value.push(ch),
                }
            }
            (value, &quoted[end?..])
        } else {
            let stop = after.find(',').unwrap_or(after.len());
            (after[..stop].trim().to_owned(), &after[stop..])
        };
        out.push((key, value));
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5's example.
    #[test]
    fn rfc_2617_example_verifies_and_a_wrong_password_does_not() {
        let value = r#"Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let c = Credentials::parse(value).unwrap();
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.uri, "/dir/index.html");
        assert!(c.verify("GET", "Circle Of Life"));
        assert!(!c.verify("GET", "circle of life"));
        assert!(!c.verify("POST", "Circle Of Life"));
    }

    #[test]
    fn without_qop_the_rfc_2069_form_is_checked() {
        let ha1 = md5_hex("alice:sbc:secret");
        let ha2 = md5_hex("INVITE:sip:+15550100@sbc");
        let response = md5_hex(&format!("{ha1}:n1:{ha2}"));
        let value = format!(
            "Digest username=\"alice\", realm=\"sbc\", nonce=\"n1\", uri=\"sip:+15550100@sbc\", response=\"{response}\""
        );
        let c = Credentials::parse(&value).unwrap();
        assert!(c.verify("INVITE", "secret"));
        assert!(!c.verify("INVITE", "Secret"));
    }

    #[test]
    fn nonces_are_ours_fresh_then_stale_and_forgeries_are_told_apart() {
        let n = Nonces::new().unwrap();
        let t0 = SystemTime::now();
        let nonce = n.issue(t0);
        assert_eq!(n.check(&nonce, t0), NonceCheck::Fresh);
        assert_ne!(n.issue(t0), nonce, "two challenges in one second");
        assert_eq!(
            n.check(&nonce, t0 + NONCE_LIFETIME + Duration::from_secs(1)),
            NonceCheck::Stale
        );
        let other = Nonces::new().unwrap().issue(t0);
        assert_eq!(n.check(&other, t0), NonceCheck::Forged);
        let (secs, mac) = nonce.split_once('.').unwrap();
        let later = format!("{:x}.{mac}", u64::from_str_radix(secs, 16).unwrap() + 600);
        assert_eq!(
            n.check(&later, t0),
            NonceCheck::Forged,
            "time changed, MAC kept"
        );
        let (head, mac) = nonce.rsplit_once('.').unwrap();
        let (secs, serial) = head.split_once('.').unwrap();
        let other_serial = format!(
            "{secs}.{:x}.{mac}",
            u64::from_str_radix(serial, 16).unwrap() + 1
        );
        assert_eq!(
            n.check(&other_serial, t0),
            NonceCheck::Forged,
            "serial changed, MAC kept"
        );
        for junk in ["", ".", "..", "zz.zz", "1.zz.zz", "abc"] {
            assert_eq!(n.check(junk, t0), NonceCheck::Forged, "{junk:?}");
        }
    }

    #[test]
    fn each_nonce_count_is_good_once_and_aged_out_nonces_are_forgotten() {
        let mut n = Nonces::new().unwrap();
        let t0 = SystemTime::now();
        let nonce = n.issue(t0);
        assert!(n.first_use(&nonce, Some("00000001"), t0));
        assert!(!n.first_use(&nonce, Some("00000001"), t0), "replayed");
        assert!(n.first_use(&nonce, Some("00000003"), t0), "counts may skip");
        assert!(
            !n.first_use(&nonce, Some("00000002"), t0),
            "lower than the last"
        );
        for bad in ["0", "zz", "100000000"] {
            assert!(!n.first_use(&n.issue(t0), Some(bad), t0), "{bad:?}");
        }
        // Without qop there is no count: one use per nonce.
        let plain = n.issue(t0);
        assert!(n.first_use(&plain, None, t0));
        assert!(!n.first_use(&plain, None, t0));
        assert!(!n.first_use("not-ours", None, t0));

        // Once past their lifetime, entries go at the next pruning (they would be stale now).
        let later = t0 + NONCE_LIFETIME + Duration::from_secs(1);
        for i in 0..MIN_PRUNE_AT {
            assert!(n.first_use(&n.issue(later), Some("1"), later), "{i}");
        }
        assert!(n.used.len() <= MIN_PRUNE_AT, "{}", n.used.len());
        assert!(!n.used.contains_key(&use_key(&nonce).unwrap()));
    }

    #[test]
    fn malformed_credentials_are_refused_without_panic() {
        for v in [
            "",
            "Basic dXNlcjpwYXNz",
            "Digest",
            "Digest username=\"a",
            "Digest username=a, nonce=b, uri=c",
            "Digest =, ,,=",
        ] {
            assert_eq!(Credentials::parse(v), None, "{v:?}");
        }
    }
}
