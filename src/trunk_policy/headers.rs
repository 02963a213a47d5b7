//! Pass, strip or map the caller-identity and call-history headers between the legs
//! (TDR-INV-10, TDR-INV-11), and rebuild the caller number from P-Asserted-Identity
//! (TDR-INV-02).
//!
//! Nothing here fails: a header value that is not UTF-8 or does not parse is skipped when it
//! has to be read (mapped, searched); passed headers are copied as received, byte for byte.

use super::Toward;
use super::history;
use super::numbers::is_e164;
use crate::config::{DiversionPolicy, HistoryInfoPolicy, PassOrStrip, TrunkHeaders};
use crate::sip::message::{Headers, Host, NameAddr, Scheme};

const PAI: &str = "P-Asserted-Identity";
const PRIVACY: &str = "Privacy";
pub(super) const DIVERSION: &str = "Diversion";
pub(super) const HISTORY_INFO: &str = "History-Info";

pub(super) fn carry(p: &TrunkHeaders, toward: Toward, incoming: &Headers, outgoing: &mut Headers) {
    // RFC 3325 leaves it to the trust between networks whether PAI crosses; the operator
    // states that trust per trunk. Privacy is kept apart because some carriers refuse a
    // Privacy value they do not know while still wanting PAI.
    if p.p_asserted_identity == PassOrStrip::Pass {
        copy(PAI, incoming, outgoing);
    }
    if p.privacy == PassOrStrip::Pass {
        copy(PRIVACY, incoming, outgoing);
    }

    // The mappings run in the direction their names give (Diversion from the trunk becomes
    // History-Info toward Teams, History-Info from Teams becomes Diversion toward the trunk);
    // the other way the header is passed. Teams never sends Diversion, and turning a trunk's
    // History-Info into Diversion toward Teams would hide it from Teams.
    let map_diversion = p.diversion == DiversionPolicy::ToHistoryInfo && toward == Toward::Teams;
    let map_history = p.history_info == HistoryInfoPolicy::ToDiversion && toward == Toward::Trunk;
    let pass_diversion = p.diversion != DiversionPolicy::Strip && !map_diversion;
    let pass_history = p.history_info != HistoryInfoPolicy::Strip && !map_history;
    let has = |name| incoming.get(name).is_some();

    if pass_diversion {
        copy(DIVERSION, incoming, outgoing);
    }
    if pass_history {
        copy(HISTORY_INFO, incoming, outgoing);
    }
    // When the request already carries the header a mapping would produce and that header is
    // passed, it wins: the mapped copy could only contradict it (two History-Info index trees,
    // two Diversion lists).
    if map_diversion && !(pass_history && has(HISTORY_INFO)) {
        // The last hi-entry is the target the request now goes to: the To the B2BUA built
        // for this leg, else the To that came in.
        let target = outgoing.to().or_else(|_| incoming.to()).ok().map(|t| t.uri);
        for entry in history::diversion_to_history_info(incoming, target) {
            outgoing.push(HISTORY_INFO, entry);
        }
    }
    if map_history && !(pass_diversion && has(DIVERSION)) {
        for entry in history::history_info_to_diversion(incoming) {
            outgoing.push(DIVERSION, entry);
        }
    }
}

fn copy(name: &str, incoming: &Headers, outgoing: &mut Headers) {
    for v in incoming.get_all(name) {
        outgoing.push(name, v.clone());
    }
}

/// TDR-INV-02: the caller number for From toward Teams when From's user is not +E.164: the
/// user of the first P-Asserted-Identity URI that is a `tel:` URI or a `sip:`/`sips:` URI with
/// `user=phone` and holds a `+E.164` number (visual separators `-.()` removed, RFC 3966 §5.1.1).
///
/// `None` means keep From as it is: it already holds `+E.164`; it is anonymous (RFC 3323,
/// which Teams accepts, TDR-INV-10); the caller asked for privacy (`Privacy: id`,
/// `user` or `header`), so the PAI number must not move into the From that Teams displays; or
/// no PAI entry holds a `+E.164` number.
pub fn caller_from_pai(incoming: &Headers) -> Option<String> {
    // A From that does not parse is not kept: rebuilding it is the point.
    if let Ok(from) = incoming.from()
        && (from
            .uri
            .user
            .as_deref()
            .is_some_and(|u| is_e164(number_part(u)))
            || is_anonymous(&from))
    {
        return None;
    }
    if privacy_requested(incoming) {
        return None;
    }
    incoming.values(PAI).find_map(|v| {
        let s = std::str::from_utf8(&v).ok()?;
        // An unparsable PAI entry is skipped; a later one may still be good.
        let na = NameAddr::parse(s, "P-Asserted-Identity").ok()?;
        phone_number(&na)
    })
}

fn phone_number(na: &NameAddr) -> Option<String> {
    let phone = match na.uri.scheme {
        Scheme::Tel => true,
        // RFC 3261 §19.1.1: only `user=phone` says the user part is a telephone-subscriber.
        Scheme::Sip | Scheme::Sips => na
            .uri
            .param("user")
            .flatten()
            .is_some_and(|v| v.eq_ignore_ascii_case("phone")),
        Scheme::Other(_) => false,
    };
    if !phone {
        return None;
    }
    let number: String = number_part(na.uri.user.as_deref()?)
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
        .collect();
    is_e164(&number).then_some(number)
}

/// The number of a telephone-subscriber without its `;` parameters (RFC 3966 §3).
fn number_part(user: &str) -> &str {
    user.split(';').next().unwrap_or(user)
}

/// RFC 3323 anonymous From: `anonymous` as user (common practice) or the
/// `anonymous.invalid` host the RFC recommends.
fn is_anonymous(from: &NameAddr) -> bool {
    from.uri
        .user
        .as_deref()
        .is_some_and(|u| u.eq_ignore_ascii_case("anonymous"))
        || matches!(&from.uri.host, Host::Domain(d) if d.eq_ignore_ascii_case("anonymous.invalid"))
}

/// `Privacy: id` (RFC 3325), `user` or `header` (RFC 3323), in any line, in any
/// `;`-separated position.
fn privacy_requested(incoming: &Headers) -> bool {
    incoming
        .get_all(PRIVACY)
        .flat_map(|line| line.split(|b| *b == b';' || *b == b','))
        .map(|v| v.trim_ascii())
        .any(|v| {
            v.eq_ignore_ascii_case(b"id")
                || v.eq_ignore_ascii_case(b"user")
                || v.eq_ignore_ascii_case(b"header")
        })
}

/// Whether the request asks for its whole history to be private (`Privacy: history`, RFC 7044).
pub(super) fn history_private(incoming: &Headers) -> bool {
    incoming
        .get_all(PRIVACY)
        .flat_map(|line| line.split(|b| *b == b';' || *b == b','))
        .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"history"))
}
