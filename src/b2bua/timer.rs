//! RFC 4028 session timers, per leg. The B2BUA ends each leg's timer itself: a refresh on one
//! leg is answered on that leg and never crosses to the other (TDR-INV-15).

use std::time::{Duration, Instant};

use crate::sip::message::{Headers, Response};

/// The smallest interval we accept (RFC 4028 §4: Min-SE defaults to 90 s).
pub(crate) const MIN_SE: u32 = 90;

/// A negotiated session timer on one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct SessionTimer {
    pub(crate) interval: u32,
    /// We refresh (at half the interval); otherwise the peer does and we watch for expiry.
    pub(crate) we_refresh: bool,
    #[serde(with = "crate::clock::as_wall_clock")]
    pub(crate) deadline: Instant,
}

impl SessionTimer {
    fn new(interval: u32, we_refresh: bool, now: Instant) -> SessionTimer {
        let mut t = SessionTimer {
            interval,
            we_refresh,
            deadline: now,
        };
        t.refreshed(now);
        t
    }

    /// A refresh went through: the next deadline is half the interval for the refresher
    /// (§7.4) and, for the other side, the interval minus min(32, interval/3) (§10).
    pub(crate) fn refreshed(&mut self, now: Instant) {
        let secs = u64::from(self.interval);
        let wait = if self.we_refresh {
            secs / 2
        } else {
            secs - (secs / 3).min(32)
        };
        self.deadline = now + Duration::from_secs(wait.max(1));
    }
}

/// `Session-Expires: delta[;refresher=uac|uas]`.
pub(crate) fn session_expires(h: &Headers) -> Option<(u32, Option<String>)> {
    // "x" is the compact form (RFC 4028 §4).
    let v = h.get("Session-Expires").or_else(|| h.get("x"))?;
    let s = std::str::from_utf8(v).ok()?;
    let mut parts = s.split(';');
    let delta = parts.next()?.trim().parse().ok()?;
    let refresher = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| v.trim().to_ascii_lowercase())
    });
    Some((delta, refresher))
}

/// What to do with a request's Session-Expires when we answer it as UAS (§9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UasTimer {
    /// No session timer asked for.
    None,
    /// §9: too small: answer 422 with our Min-SE.
    TooSmall,
    /// Use this interval; the peer (the UAC) refreshes unless it named us.
    Use { interval: u32, we_refresh: bool },
}

pub(crate) fn uas_timer(req_headers: &Headers) -> UasTimer {
    match session_expires(req_headers) {
        None => UasTimer::None,
        Some((delta, _)) if delta < MIN_SE => UasTimer::TooSmall,
        Some((delta, refresher)) => UasTimer::Use {
            interval: delta,
            we_refresh: refresher.as_deref() == Some("uas"),
        },
    }
}

/// Adds our side of the negotiation to a 2xx (§9): Require: timer when the UAC supports it,
/// so it knows to refresh.
pub(crate) fn stamp_2xx(
    rsp: &mut Response,
    req_headers: &Headers,
    interval: u32,
    we_refresh: bool,
) {
    let refresher = if we_refresh { "uas" } else { "uac" };
    rsp.headers.push(
        "Session-Expires",
        format!("{interval};refresher={refresher}"),
    );
    let supports = req_headers
        .option_tags("Supported")
        .iter()
        .any(|t| t.eq_ignore_ascii_case("timer"));
    if supports {
        rsp.headers.push("Require", "timer");
    }
}

/// The timer a 2xx to our INVITE set up on the leg where we are the UAC (§7.2): none unless
/// the answer carries Session-Expires.
pub(crate) fn uac_timer(rsp: &Response, now: Instant) -> Option<SessionTimer> {
    let (delta, refresher) = session_expires(&rsp.headers)?;
    let we_refresh = refresher.as_deref() != Some("uas");
    Some(SessionTimer::new(delta.max(MIN_SE), we_refresh, now))
}

pub(crate) fn uas_session_timer(interval: u32, we_refresh: bool, now: Instant) -> SessionTimer {
    SessionTimer::new(interval, we_refresh, now)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(se: &str) -> Headers {
        let mut h = Headers::new();
        h.push("Session-Expires", se.to_owned());
        h.push("Supported", "timer");
        h
    }

    #[test]
    fn teams_session_expires_1800_is_refreshed_by_teams_tdr_inv_15() {
        assert_eq!(
            uas_timer(&headers("1800")),
            UasTimer::Use {
                interval: 1800,
                we_refresh: false
            }
        );
        assert_eq!(
            uas_timer(&headers("1800;refresher=uas")),
            UasTimer::Use {
                interval: 1800,
                we_refresh: true
            }
        );
    }

    #[test]
    fn interval_below_min_se_gets_422_tdr_inv_15() {
        assert_eq!(uas_timer(&headers("60")), UasTimer::TooSmall);
    }

    #[test]
    fn watcher_deadline_leaves_a_margin_and_refresher_refreshes_at_half() {
        let now = crate::clock::now();
        let watch = uas_session_timer(1800, false, now);
        assert_eq!(watch.deadline - now, Duration::from_secs(1800 - 32));
        let refresh = uas_session_timer(1800, true, now);
        assert_eq!(refresh.deadline - now, Duration::from_secs(900));
    }

    #[test]
    fn two_hundred_says_who_refreshes_and_requires_timer_when_supported() {
        let mut rsp = Response::new(200, "OK");
        stamp_2xx(&mut rsp, &headers("1800"), 1800, false);
        assert_eq!(
            rsp.headers.get("Session-Expires").unwrap().as_ref(),
            b"1800;refresher=uac"
        );
        assert_eq!(rsp.headers.get("Require").unwrap().as_ref(), b"timer");
    }
}
