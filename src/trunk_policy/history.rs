//! Diversion (RFC 5806) <-> History-Info (RFC 7044), after RFC 7544 (which obsoletes RFC 6044)
//! (TDR-INV-11).
//!
//! What is mapped is the part both headers define the same way: who diverted the call, why
//! (Diversion `reason` <-> the SIP cause in the hi-entry's escaped `Reason`), and whether that
//! party is private (`privacy=full|name|uri` <-> escaped `Privacy=history`). Simplifications:
//! - Diversion `counter` is not expanded into several hi-entries; every Diversion entry is one
//!   hi-entry, and every mapped Diversion entry says `counter=1`.
//! - Only a SIP cause is read from `Reason`; a Q.850 cause maps to `unknown`.
//! - History-Info forks (1.1 and 1.2) are not mapped: only the branch from the first entry to
//!   the last entry (the current target), following the index tree, becomes Diversion. Without
//!   usable indexes the entries are taken in the order received.
//! - A `tel:` URI cannot carry an escaped `Reason` (RFC 3966 has no headers), so a tel: entry
//!   loses its cause when it becomes an hi-entry.
//! - At most [`MAX_ENTRIES`] diversions are mapped, the most recent ones: real chains are a few
//!   long, and an index grows by two bytes per entry.
//!
//! Unparsable entries (not UTF-8, bad URI) are skipped; the rest are still mapped.

use super::headers::{DIVERSION, HISTORY_INFO, history_private};
use crate::sip::message::{Headers, NameAddr, Uri};

pub(super) const MAX_ENTRIES: usize = 20;

/// Diversion reason -> SIP cause (RFC 7544's table; `unavailable` is 503 as RFC 6044 erratum
/// 3071 corrected).
fn cause_of(reason: &str) -> u16 {
    match reason.to_ascii_lowercase().as_str() {
        "unconditional" => 302,
        "user-busy" => 486,
        "no-answer" => 408,
        "deflection" => 480,
        "unavailable" => 503,
        // unknown, time-of-day, do-not-disturb, follow-me, out-of-service, away, others.
        _ => 404,
    }
}

/// SIP cause -> Diversion reason (the reverse table; 487 is a deflection during alerting).
fn reason_of(cause: u16) -> &'static str {
    match cause {
        302 => "unconditional",
        486 => "user-busy",
        408 => "no-answer",
        480 | 487 => "deflection",
        503 => "unavailable",
        _ => "unknown",
    }
}

/// The hi-entries for the Diversion list of `incoming`, in chronological order, each a
/// complete `History-Info` value. `target` (the URI the request now goes to) becomes the last
/// entry.
pub(super) fn diversion_to_history_info(incoming: &Headers, target: Option<Uri>) -> Vec<String> {
    // RFC 5806: the top-most Diversion entry is the most recent diversion.
    let mut diversions: Vec<NameAddr> = incoming
        .values(DIVERSION)
        .filter_map(|v| NameAddr::parse(std::str::from_utf8(&v).ok()?, "Diversion").ok())
        .take(MAX_ENTRIES)
        .collect();
    if diversions.is_empty() {
        return Vec::new();
    }
    diversions.reverse();

    let mut out = Vec::with_capacity(diversions.len() + 1);
    let mut index = String::from("1");
    let mut parent: Option<String> = None;
    for d in diversions {
        // RFC 7044: the Reason goes in the entry that was retargeted away from.
        let cause = cause_of(d.param("reason").flatten().map(unquote).unwrap_or(""));
        let private = d
            .param("privacy")
            .flatten()
            .map(unquote)
            .is_some_and(|p| !p.eq_ignore_ascii_case("off"));
        let mut uri = d.uri;
        uri.headers
            .push(("Reason".into(), format!("SIP%3Bcause%3D{cause}")));
        if private {
            uri.headers.push(("Privacy".into(), "history".into()));
        }
        out.push(hi_entry(d.display, uri, &index, parent.as_deref()));
        parent = Some(index.clone());
        index.push_str(".1");
    }
    if let Some(mut uri) = target {
        uri.headers.clear();
        out.push(hi_entry(None, uri, &index, parent.as_deref()));
    }
    out
}

/// `name-addr;index=I[;mp=P]`: `mp` tags a target reached by retargeting from entry P
/// (RFC 7044), which a diversion is.
fn hi_entry(display: Option<String>, uri: Uri, index: &str, parent: Option<&str>) -> String {
    let mut na = NameAddr::new(uri);
    na.display = display;
    na.params.push(("index".into(), Some(index.to_owned())));
    if let Some(p) = parent {
        na.params.push(("mp".into(), Some(p.to_owned())));
    }
    na.to_string()
}

struct HiEntry {
    na: NameAddr,
    index: Option<String>,
}

/// The Diversion entries for the History-Info of `incoming`, most recent first, each a complete
/// `Diversion` value.
pub(super) fn history_info_to_diversion(incoming: &Headers) -> Vec<String> {
    let entries: Vec<HiEntry> = incoming
        .values(HISTORY_INFO)
        .filter_map(|v| {
            let na = NameAddr::parse(std::str::from_utf8(&v).ok()?, "History-Info").ok()?;
            let index = na.param("index").flatten().map(str::to_owned);
            Some(HiEntry { na, index })
        })
        .collect();
    let all_private = history_private(incoming);
    let chain = chain(&entries);
    let mut out = Vec::new();
    for pair in chain.windows(2) {
        let (Some(from), Some(to)) = (entries.get(pair[0]), entries.get(pair[1])) else {
            continue;
        };
        // RFC 7044: `rc` marks a target that is the registered contact of the previous
        // one, a change of address, not a diversion.
        if to.na.param("rc").is_some() {
            continue;
        }
        // The cause is in the Reason of the entry retargeted away from (RFC 7044), or,
        // from an RFC 4458 voicemail server, in a `cause` URI parameter of the new target.
        let cause = sip_cause(&from.na.uri).or_else(|| {
            to.na
                .uri
                .param("cause")
                .flatten()
                .and_then(|c| c.parse().ok())
        });
        let private = all_private
            || from.na.uri.headers.iter().any(|(n, v)| {
                n.eq_ignore_ascii_case("Privacy") && v.eq_ignore_ascii_case("history")
            });
        let mut na = NameAddr::new(Uri {
            headers: Vec::new(),
            ..from.na.uri.clone()
        });
        na.display = from.na.display.clone();
        na.params = vec![
            (
                "reason".into(),
                Some(cause.map_or("unknown", reason_of).into()),
            ),
            ("counter".into(), Some("1".into())),
            (
                "privacy".into(),
                Some(if private { "full" } else { "off" }.into()),
            ),
        ];
        out.push(na.to_string());
    }
    // RFC 5806: most recent first.
    out.reverse();
    out
}

/// Positions in `entries` of the branch that led to the last entry, first to last. Follows the
/// index tree (`1.2.1`'s parent is `1.2`) when every entry has an index; else takes the
/// entries as received. At most [`MAX_ENTRIES`] + 1 positions, the most recent.
fn chain(entries: &[HiEntry]) -> Vec<usize> {
    let Some(last) = entries.len().checked_sub(1) else {
        return Vec::new();
    };
    let indexed = entries
        .iter()
        .all(|e| e.index.as_deref().is_some_and(is_index));
    let mut chain = Vec::new();
    if indexed {
        chain.push(last);
        let mut at = last;
        while chain.len() <= MAX_ENTRIES {
            let Some((parent, _)) = entries[at]
                .index
                .as_deref()
                .and_then(|i| i.rsplit_once('.'))
            else {
                break;
            };
            let Some(p) = entries[..at]
                .iter()
                .rposition(|e| e.index.as_deref() == Some(parent))
            else {
                break;
            };
            chain.push(p);
            at = p;
        }
        chain.reverse();
    } else {
        chain.extend(last.saturating_sub(MAX_ENTRIES)..=last);
    }
    chain
}

/// `1*DIGIT *("." 1*DIGIT)` (RFC 7044 index).
fn is_index(s: &str) -> bool {
    s.split('.')
        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

/// The cause of an escaped `Reason: SIP ;cause=NNN` header in an hi-entry's URI (RFC 7044).
fn sip_cause(uri: &Uri) -> Option<u16> {
    let (_, escaped) = uri
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Reason"))?;
    let reason = percent_decode(escaped);
    let mut parts = reason.split(';');
    if !parts.next()?.trim().eq_ignore_ascii_case("SIP") {
        return None;
    }
    parts.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        if name.trim().eq_ignore_ascii_case("cause") {
            value.trim().parse().ok()
        } else {
            None
        }
    })
}

/// `%HH` escapes decoded; a malformed escape is kept as written.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}
