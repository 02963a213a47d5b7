//! Symmetric RTP (RFC 4961 practice, rtpengine's "learned" address): which
//! source a socket accepts and where replies go.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What to do with a packet's source before (and, for SRTP, after) it is
/// authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceCheck {
    /// From the learned address.
    Latched,
    /// May become the learned address once accepted (authenticated, for SRTP).
    Candidate,
    /// Neither; drop without spending crypto on it.
    Foreign,
}

/// Who may latch when nothing is learned yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LatchRule {
    /// Any source whose packet authenticates (SRTP: the key is the proof).
    AnyAuthenticated,
    /// Plain RTP: only the signaled address, or any address while none is
    /// signaled (early media before the answer reaches us).
    SignaledElseAny,
}

/// Remote address state of one socket.
#[derive(Debug, Clone)]
pub(crate) struct Latch {
    rule: LatchRule,
    /// From SDP (c= and m= port, or a=rtcp).
    advertised: Option<SocketAddr>,
    /// From the wire: the source of the first accepted packet.
    learned: Option<SocketAddr>,
    /// Last packet accepted from `learned`.
    last_accepted: Option<Instant>,
    /// An unexpected source was reported since the last (re)latch.
    reported_foreign: bool,
}

impl Latch {
    pub(crate) fn new(rule: LatchRule) -> Self {
        Latch {
            rule,
            advertised: None,
            learned: None,
            last_accepted: None,
            reported_foreign: false,
        }
    }

    /// New SDP address: forget what was learned so the new peer can latch
    /// (a re-INVITE may move media to another host).
    pub(crate) fn set_advertised(&mut self, addr: SocketAddr) {
        if self.advertised != Some(addr) {
            self.advertised = Some(addr);
            self.learned = None;
            self.last_accepted = None;
            self.reported_foreign = false;
        }
    }

    /// Where packets to this peer go: the learned address, else the SDP one.
    pub(crate) fn destination(&self) -> Option<SocketAddr> {
        self.learned.or(self.advertised)
    }

    pub(crate) fn check(
        &self,
        src: SocketAddr,
        now: Instant,
        relatch_after: Option<Duration>,
    ) -> SourceCheck {
        match self.learned {
            Some(learned) if learned == src => SourceCheck::Latched,
            Some(_) => {
                let silent_long_enough = match (relatch_after, self.last_accepted) {
                    (Some(after), Some(last)) => now.saturating_duration_since(last) >= after,
                    _ => false,
                };
                if silent_long_enough && self.may_latch(src) {
                    SourceCheck::Candidate
                } else {
                    SourceCheck::Foreign
                }
            }
            None if self.may_latch(src) => SourceCheck::Candidate,
            None => SourceCheck::Foreign,
        }
    }

    fn may_latch(&self, src: SocketAddr) -> bool {
        match (self.rule, self.advertised) {
            (LatchRule::AnyAuthenticated, _) | (LatchRule::SignaledElseAny, None) => true,
            (LatchRule::SignaledElseAny, Some(advertised)) => advertised == src,
        }
    }

    /// The packet was accepted: learn its source when it was a candidate.
    /// Returns true when the learned address changed.
    pub(crate) fn accept(&mut self, src: SocketAddr, now: Instant) -> bool {
        self.last_accepted = Some(now);
        if self.learned == Some(src) {
            return false;
        }
        self.learned = Some(src);
        self.reported_foreign = false;
        true
    }

    /// True the first time a foreign source shows up since the last latch, so
    /// a flood from one stray peer yields one event, not one per packet.
    pub(crate) fn report_foreign(&mut self) -> bool {
        !std::mem::replace(&mut self.reported_foreign, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn srtp_latch_takes_first_accepted_source_then_refuses_others() {
        let now = crate::clock::now();
        let mut l = Latch::new(LatchRule::AnyAuthenticated);
        l.set_advertised(addr(1000));
        assert_eq!(l.check(addr(2000), now, None), SourceCheck::Candidate);
        assert!(l.accept(addr(2000), now));
        assert_eq!(l.destination(), Some(addr(2000)));
        assert_eq!(l.check(addr(2000), now, None), SourceCheck::Latched);
        assert_eq!(l.check(addr(1000), now, None), SourceCheck::Foreign);
    }

    #[test]
    fn rtp_latch_only_accepts_signaled_address_once_known() {
        let now = crate::clock::now();
        let mut l = Latch::new(LatchRule::SignaledElseAny);
        assert_eq!(l.check(addr(3000), now, None), SourceCheck::Candidate);
        l.set_advertised(addr(1000));
        assert_eq!(l.check(addr(3000), now, None), SourceCheck::Foreign);
        assert_eq!(l.check(addr(1000), now, None), SourceCheck::Candidate);
    }

    #[test]
    fn relatch_needs_configured_silence() {
        let t0 = crate::clock::now();
        let after = Some(Duration::from_millis(500));
        let mut l = Latch::new(LatchRule::AnyAuthenticated);
        l.accept(addr(2000), t0);
        let early = t0 + Duration::from_millis(499);
        assert_eq!(l.check(addr(2002), early, after), SourceCheck::Foreign);
        let late = t0 + Duration::from_millis(500);
        assert_eq!(l.check(addr(2002), late, after), SourceCheck::Candidate);
        assert_eq!(l.check(addr(2002), late, None), SourceCheck::Foreign);
    }

    #[test]
    fn foreign_source_is_reported_once_per_latch() {
        let now = crate::clock::now();
        let mut l = Latch::new(LatchRule::AnyAuthenticated);
        l.accept(addr(2000), now);
        assert!(l.report_foreign());
        assert!(!l.report_foreign());
        l.set_advertised(addr(4000));
        assert!(l.report_foreign());
    }
}
