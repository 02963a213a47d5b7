//! Transaction timers (RFC 3261 §17, Table 4; RFC 6026 §8.4/§8.7) and their configuration.

use std::time::{Duration, Instant};

/// Timer base values, in milliseconds (RFC 3261 §17.1.1.1, Table 4). Defaults are the RFC's
/// (and Kamailio tm's): T1 = 500 ms, T2 = 4 s, T4 = 5 s.
///
/// The other timers derive from these: B, F, H, J (unreliable), L and M are 64*T1; D is 32 s on
/// an unreliable transport; I and K are T4 on an unreliable transport; D, I, J and K are zero on
/// a reliable one.
#[derive(serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TimerConfig {
    /// RTT estimate; first retransmission interval of timers A, E and G.
    pub t1_ms: u64,
    /// Cap on the retransmission interval of non-INVITE requests (E) and INVITE finals (G).
    pub t2_ms: u64,
    /// Maximum time a message stays in the network; timers I and K on unreliable transports.
    pub t4_ms: u64,
    /// Use the RFC 6026 "Accepted" state in both INVITE machines (the default). With `false` the
    /// machines follow RFC 3261 to the letter: a 2xx ends the transaction, so an INVITE
    /// retransmission that crosses our 2xx looks like a new request and retransmitted 2xx
    /// responses arrive as stray responses. RFC 6026 updates RFC 3261 to fix exactly that.
    pub rfc6026_accepted: bool,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1_ms: 500,
            t2_ms: 4_000,
            t4_ms: 5_000,
            rfc6026_accepted: true,
        }
    }
}

/// Largest accepted base value: a minute is already far beyond any sane RTT or network lifetime,
/// and the bound keeps every `Instant + Duration` far from overflow.
const MAX_BASE_MS: u64 = 60_000;

/// Timer D on an unreliable transport: "at least 32 seconds" (RFC 3261 §17.1.1.2), long enough
/// to absorb every retransmission of a non-2xx final the server can send (64*T1 of timer H).
const TIMER_D_UNRELIABLE: Duration = Duration::from_secs(32);

/// Why a [`TimerConfig`] was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimerConfigError {
    #[error("{name} = {value_ms} ms: must be between 1 and {max_ms} ms")]
    OutOfRange {
        name: &'static str,
        value_ms: u64,
        max_ms: u64,
    },
    #[error("t2_ms = {t2_ms} is below t1_ms = {t1_ms}: T2 caps intervals that start at T1")]
    T2BelowT1 { t1_ms: u64, t2_ms: u64 },
}

impl TimerConfig {
    /// Checks the bounds the machines rely on. Machines given an unvalidated config still never
    /// panic (the durations below are clamped), but their timing would be meaningless.
    pub fn validate(&self) -> Result<(), TimerConfigError> {
        for (name, value_ms) in [
            ("t1_ms", self.t1_ms),
            ("t2_ms", self.t2_ms),
            ("t4_ms", self.t4_ms),
        ] {
            if value_ms == 0 || value_ms > MAX_BASE_MS {
                return Err(TimerConfigError::OutOfRange {
                    name,
                    value_ms,
                    max_ms: MAX_BASE_MS,
                });
            }
        }
        if self.t2_ms < self.t1_ms {
            return Err(TimerConfigError::T2BelowT1 {
                t1_ms: self.t1_ms,
                t2_ms: self.t2_ms,
            });
        }
        Ok(())
    }

    // Clamped to 1 ms..=MAX_BASE_MS so that a zero T1 cannot make a retransmission timer expire
    // at the instant it is set (a busy loop) and no deadline can overflow `Instant`.
    fn base(ms: u64) -> Duration {
        Duration::from_millis(ms.clamp(1, MAX_BASE_MS))
    }

    pub fn t1(&self) -> Duration {
        Self::base(self.t1_ms)
    }

    pub fn t2(&self) -> Duration {
        Self::base(self.t2_ms)
    }

    pub fn t4(&self) -> Duration {
        Self::base(self.t4_ms)
    }

    /// Timers B, F, H, L, M and J (unreliable): 64*T1.
    pub fn transaction_timeout(&self) -> Duration {
        self.t1() * 64
    }

    /// Timer D: wait time for response retransmissions after a non-2xx final.
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            TIMER_D_UNRELIABLE
        }
    }

    /// Timer I: wait time for ACK retransmissions.
    pub fn timer_i(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4() }
    }

    /// Timer J: wait time for non-INVITE request retransmissions.
    pub fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.transaction_timeout()
        }
    }

    /// Timer K: wait time for non-INVITE response retransmissions.
    pub fn timer_k(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4() }
    }
}

/// The transaction timers of RFC 3261 §17 (Table 4) plus RFC 6026's L and M.
///
/// Which machine uses which: INVITE client A, B, D, M; non-INVITE client E, F, K; INVITE server
/// G, H, I, L; non-INVITE server J. C belongs to proxies, which drawbridge is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE request retransmission (unreliable only); doubles each time, no cap.
    A,
    /// INVITE transaction timeout in Calling.
    B,
    /// Wait for response retransmissions in the INVITE client's Completed state.
    D,
    /// Non-INVITE request retransmission (unreliable only); doubles up to T2.
    E,
    /// Non-INVITE transaction timeout.
    F,
    /// INVITE final response retransmission (unreliable only); doubles up to T2.
    G,
    /// Wait for the ACK of a non-2xx final.
    H,
    /// Wait for ACK retransmissions in Confirmed.
    I,
    /// Wait for non-INVITE request retransmissions in Completed.
    J,
    /// Wait for non-INVITE response retransmissions in Completed.
    K,
    /// RFC 6026: INVITE server in Accepted, absorbing INVITE retransmissions after a 2xx.
    L,
    /// RFC 6026: INVITE client in Accepted, passing retransmitted and forked 2xx to the TU.
    M,
}

impl Timer {
    pub const COUNT: usize = 12;
}

/// Timers a single machine runs: each uses four of the twelve (see [`Timer`]).
const PER_MACHINE: usize = 4;

/// A machine's running timers, as (deadline, timer) slots (after quinn-proto's
/// `connection/timer.rs`, one slot per timer): the next wake-up is the earliest slot, and
/// stopping a timer is clearing its slot. Four slots rather than one per [`Timer`]: a slot
/// is 24 bytes, and every transaction (two per call for 32 s after its answer, RFC 6026)
/// carries a table.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TimerTable([Option<(Instant, Timer)>; PER_MACHINE]);

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, deadline: Instant) {
        let at = self
            .position(timer)
            .or_else(|| self.0.iter().position(Option::is_none));
        debug_assert!(at.is_some(), "a machine runs at most {PER_MACHINE} timers");
        // Unreachable with the four machines; were it reached, a release build overwrites
        // the last slot rather than stop the process.
        let at = at.unwrap_or(PER_MACHINE - 1);
        self.0[at] = Some((deadline, timer));
    }

    fn position(&self, timer: Timer) -> Option<usize> {
        self.0
            .iter()
            .position(|slot| matches!(slot, Some((_, t)) if *t == timer))
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.0[self.position(timer)?].map(|(at, _)| at)
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        if let Some(at) = self.position(timer) {
            self.0[at] = None;
        }
    }

    pub(crate) fn stop_all(&mut self) {
        self.0 = [None; PER_MACHINE];
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.0.iter().flatten().map(|&(at, _)| at).min()
    }

    /// The timer that expired first at or before `now`; ties go to the earlier letter.
    pub(crate) fn first_expired(&self, now: Instant) -> Option<Timer> {
        self.0
            .iter()
            .flatten()
            .filter(|&&(at, _)| at <= now)
            .min_by_key(|&&(at, t)| (at, t as usize))
            .map(|&(_, t)| t)
    }

    /// Clears and returns the first expired timer. Machines call this in a loop bounded by
    /// [`Timer::COUNT`], so each `handle_timeout` does a bounded amount of work.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let timer = self.first_expired(now)?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock;

    #[test]
    fn default_config_is_rfc_3261_table_4_and_valid() {
        let t = TimerConfig::default();
        assert_eq!(t.t1(), Duration::from_millis(500));
        assert_eq!(t.t2(), Duration::from_secs(4));
        assert_eq!(t.t4(), Duration::from_secs(5));
        assert_eq!(t.transaction_timeout(), Duration::from_secs(32));
        assert_eq!(t.timer_d(false), Duration::from_secs(32));
        assert!(t.rfc6026_accepted);
        assert_eq!(t.validate(), Ok(()));
    }

    #[test]
    fn config_zeroes_timers_d_i_j_k_only_for_reliable_transports() {
        let t = TimerConfig::default();
        assert_eq!(t.timer_d(true), Duration::ZERO);
        assert_eq!(t.timer_i(true), Duration::ZERO);
        assert_eq!(t.timer_j(true), Duration::ZERO);
        assert_eq!(t.timer_k(true), Duration::ZERO);
        assert_eq!(t.timer_i(false), t.t4());
        assert_eq!(t.timer_j(false), t.t1() * 64);
        assert_eq!(t.timer_k(false), t.t4());
    }

    #[test]
    fn config_parses_from_toml_and_rejects_unknown_keys() {
        let t: TimerConfig = toml::from_str("t1_ms = 250\nrfc6026_accepted = false").unwrap();
        assert_eq!(t.t1_ms, 250);
        assert_eq!(t.t2_ms, 4_000);
        assert!(!t.rfc6026_accepted);
        assert!(toml::from_str::<TimerConfig>("t3_ms = 1").is_err());
    }

    #[test]
    fn validate_rejects_zero_huge_and_inverted_values() {
        let zero = TimerConfig {
            t1_ms: 0,
            ..TimerConfig::default()
        };
        assert!(matches!(
            zero.validate(),
            Err(TimerConfigError::OutOfRange { name: "t1_ms", .. })
        ));
        let huge = TimerConfig {
            t4_ms: u64::MAX,
            ..TimerConfig::default()
        };
        assert!(matches!(
            huge.validate(),
            Err(TimerConfigError::OutOfRange { name: "t4_ms", .. })
        ));
        let inverted = TimerConfig {
            t1_ms: 5_000,
            t2_ms: 4_000,
            ..TimerConfig::default()
        };
        assert_eq!(
            inverted.validate(),
            Err(TimerConfigError::T2BelowT1 {
                t1_ms: 5_000,
                t2_ms: 4_000
            })
        );
        // Unvalidated configs are clamped rather than trusted.
        assert_eq!(zero.t1(), Duration::from_millis(1));
        assert_eq!(huge.t4(), Duration::from_millis(MAX_BASE_MS));
    }

    #[test]
    fn timer_table_reports_earliest_deadline_and_expiry_order() {
        let now = clock::now();
        let mut table = TimerTable::default();
        assert_eq!(table.next_timeout(), None);
        table.set(Timer::B, now + Duration::from_secs(32));
        table.set(Timer::A, now + Duration::from_millis(500));
        assert_eq!(table.next_timeout(), Some(now + Duration::from_millis(500)));
        assert_eq!(table.first_expired(now), None);
        assert_eq!(
            table.take_expired(now + Duration::from_secs(40)),
            Some(Timer::A)
        );
        assert_eq!(
            table.take_expired(now + Duration::from_secs(40)),
            Some(Timer::B)
        );
        assert_eq!(table.take_expired(now + Duration::from_secs(40)), None);
        table.set(Timer::K, now);
        table.set(Timer::E, now);
        assert_eq!(table.first_expired(now), Some(Timer::E));
        table.stop_all();
        assert_eq!(table.next_timeout(), None);
    }
}
