//! OPTIONS keepalive schedule and proxy health, sans-I/O.
//!
//! One ping target per (proxy, Contact FQDN): the carrier's base domain for every proxy
//! (TDR-OPT-08: carrier trunk FQDN only), plus each tenant configured as a Teams gateway of its
//! own (TDR-OPT-01). A target is up after a 2xx and down after a timeout, a transport failure or
//! any other final answer; only transitions are reported, so the log gets one line per change,
//! not one per ping (TDR-OPT-05 asks that a missing 200 be visible as "not paired").

use std::time::{Duration, Instant};

/// Health of one ping target as last observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// No answer yet since start.
    Unknown,
    Up,
    Down,
}

/// Why a ping failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PingFailure {
    /// No final response within the configured time.
    Timeout,
    /// Connection refused, TLS handshake failure, connection lost.
    Transport(String),
    /// A final response other than 2xx (403 usually means "not paired": TDR-OPT-05).
    Status(u16),
}

impl std::fmt::Display for PingFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PingFailure::Timeout => f.write_str("no answer"),
            PingFailure::Transport(e) => write!(f, "transport: {e}"),
            PingFailure::Status(s) => write!(f, "answered {s}"),
        }
    }
}

/// A change of health, to be logged once and mirrored in metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub target: usize,
    pub from: Health,
    pub to: Health,
    pub failure: Option<PingFailure>,
}

/// One (proxy, Contact FQDN) pair pinged on a schedule.
#[derive(Debug, Clone)]
pub struct PingTarget {
    /// Index into the configured proxy list.
    pub proxy: usize,
    /// FQDN written in Contact and From (TDR-OPT-04).
    pub contact_fqdn: String,
    /// True for the carrier FQDN target, whose health is the proxy's health in metrics.
    pub carrier: bool,
    health: Health,
    next_ping: Instant,
    in_flight: Option<InFlight>,
    /// Dropped by a reload: kept in place (answers find their target by index) but no
    /// longer pinged.
    retired: bool,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    /// Identifies the ping so a late answer to an older one is ignored.
    seq: u64,
    sent_at: Instant,
    deadline: Instant,
}

impl PingTarget {
    pub fn health(&self) -> Health {
        self.health
    }
}

/// The schedule for all targets.
#[derive(Debug)]
pub struct Pinger {
    targets: Vec<PingTarget>,
    interval: Duration,
    timeout: Duration,
    next_seq: u64,
}

/// What the owner should do now: send an OPTIONS for `target`, tagged with `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingDue {
    pub target: usize,
    pub seq: u64,
}

impl Pinger {
    /// `targets`: (proxy index, contact FQDN, carrier?). All are due at `now`: Teams starts
    /// pinging an SBC only after the SBC's own OPTIONS (TDR-OPT-01), so the first goes out at once.
    pub fn new(
        targets: impl IntoIterator<Item = (usize, String, bool)>,
        interval: Duration,
        timeout: Duration,
        now: Instant,
    ) -> Self {
        let targets = targets
            .into_iter()
            .map(|(proxy, contact_fqdn, carrier)| PingTarget {
                proxy,
                contact_fqdn,
                carrier,
                health: Health::Unknown,
                next_ping: now,
                in_flight: None,
                retired: false,
            })
            .collect();
        Pinger {
            targets,
            interval,
            // A ping must be judged before the next one is due.
            timeout: timeout.min(interval),
            next_seq: 1,
        }
    }

    pub fn targets(&self) -> &[PingTarget] {
        &self.targets
    }

    /// A reload's target list: targets already known keep their place, health and schedule;
    /// new ones are added, due now (TDR-OPT-01); those no longer listed stop being pinged.
    /// Indices never shift, so an answer to a ping in flight still finds its target.
    pub fn retarget(
        &mut self,
        targets: impl IntoIterator<Item = (usize, String, bool)>,
        now: Instant,
    ) {
        let wanted: Vec<(usize, String, bool)> = targets.into_iter().collect();
        let same = |t: &PingTarget, w: &(usize, String, bool)| {
            t.proxy == w.0 && t.contact_fqdn.eq_ignore_ascii_case(&w.1) && t.carrier == w.2
        };
        for t in &mut self.targets {
            t.retired = !wanted.iter().any(|w| same(t, w));
            if t.retired {
                t.in_flight = None;
            }
        }
        for w in wanted {
            match self.targets.iter_mut().find(|t| same(t, &w)) {
                Some(t) => t.retired = false,
                None => self.targets.push(PingTarget {
                    proxy: w.0,
                    contact_fqdn: w.1,
                    carrier: w.2,
                    health: Health::Unknown,
                    next_ping: now,
                    in_flight: None,
                    retired: false,
                }),
            }
        }
    }

    /// Earliest instant at which `poll_due` or `handle_timeout` has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.targets
            .iter()
            .filter(|t| !t.retired)
            .map(|t| match t.in_flight {
                Some(f) => f.deadline,
                None => t.next_ping,
            })
            .min()
    }

    /// The next ping to send now, if any. Marks it in flight; call until `None`.
    pub fn poll_due(&mut self, now: Instant) -> Option<PingDue> {
        let (target, t) = self
            .targets
            .iter_mut()
            .enumerate()
            .find(|(_, t)| !t.retired && t.in_flight.is_none() && t.next_ping <= now)?;
        let seq = self.next_seq;
        self.next_seq += 1;
        t.in_flight = Some(InFlight {
            seq,
            sent_at: now,
            deadline: now + self.timeout,
        });
        // TDR-OPT-02: at most one per interval, measured from send to send.
        t.next_ping = now + self.interval;
        Some(PingDue { target, seq })
    }

    /// Expires pings without an answer by their deadline.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Transition> {
        let expired: Vec<(usize, u64)> = self
            .targets
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                t.in_flight
                    .filter(|f| f.deadline <= now)
                    .map(|f| (i, f.seq))
            })
            .collect();
        expired
            .into_iter()
            .filter_map(|(i, seq)| self.fail(i, seq, PingFailure::Timeout))
            .collect()
    }

    /// A final response arrived for ping `seq` of `target`. Returns the round-trip time for
    /// metrics (2xx only) and a transition if health changed.
    pub fn on_final(
        &mut self,
        target: usize,
        seq: u64,
        status: u16,
        now: Instant,
    ) -> (Option<Duration>, Option<Transition>) {
        if !(200..300).contains(&status) {
            return (None, self.fail(target, seq, PingFailure::Status(status)));
        }
        let Some(t) = self.targets.get_mut(target) else {
            return (None, None);
        };
        let Some(f) = t.in_flight.filter(|f| f.seq == seq) else {
            return (None, None);
        };
        t.in_flight = None;
        let rtt = now.saturating_duration_since(f.sent_at);
        let from = t.health;
        t.health = Health::Up;
        let tr = (from != Health::Up).then_some(Transition {
            target,
            from,
            to: Health::Up,
            failure: None,
        });
        (Some(rtt), tr)
    }

    /// The ping could not be sent or its connection failed.
    pub fn on_transport_failure(
        &mut self,
        target: usize,
        seq: u64,
        reason: String,
    ) -> Option<Transition> {
        self.fail(target, seq, PingFailure::Transport(reason))
    }

    fn fail(&mut self, target: usize, seq: u64, failure: PingFailure) -> Option<Transition> {
        let t = self.targets.get_mut(target)?;
        t.in_flight.filter(|f| f.seq == seq)?;
        t.in_flight = None;
        let from = t.health;
        t.health = Health::Down;
        (from != Health::Down).then_some(Transition {
            target,
            from,
            to: Health::Down,
            failure: Some(failure),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinger(now: Instant) -> Pinger {
        Pinger::new(
            [
                (0, "sbc.example.test".to_owned(), true),
                (1, "sbc.example.test".to_owned(), true),
            ],
            Duration::from_secs(60),
            Duration::from_secs(5),
            now,
        )
    }

    #[test]
    fn first_pings_go_out_at_start_tdr_opt_01() {
        let t0 = crate::clock::now();
        let mut p = pinger(t0);
        assert_eq!(p.poll_due(t0).map(|d| d.target), Some(0));
        assert_eq!(p.poll_due(t0).map(|d| d.target), Some(1));
        assert_eq!(p.poll_due(t0), None);
    }

    #[test]
    fn a_reload_adds_and_retires_tenant_targets_without_moving_the_others_tdr_opt_08() {
        let t0 = crate::clock::now();
        let mut p = Pinger::new(
            [
                (0, "sbc.example.test".to_owned(), true),
                (0, "old.sbc.example.test".to_owned(), false),
            ],
            Duration::from_secs(60),
            Duration::from_secs(5),
            t0,
        );
        let carrier = p.poll_due(t0).unwrap();
        let old = p.poll_due(t0).unwrap();
        p.retarget(
            [
                (0, "sbc.example.test".to_owned(), true),
                (0, "new.sbc.example.test".to_owned(), false),
            ],
            t0,
        );
        // The carrier's ping in flight is still answered, at its index; the new tenant is
        // pinged at once; the retired one never again.
        let (_, tr) = p.on_final(carrier.target, carrier.seq, 200, t0);
        assert_eq!(tr.unwrap().to, Health::Up);
        assert_eq!(p.on_final(old.target, old.seq, 200, t0), (None, None));
        let new = p.poll_due(t0).unwrap();
        assert_eq!(p.targets()[new.target].contact_fqdn, "new.sbc.example.test");
        p.on_final(new.target, new.seq, 200, t0);
        assert_eq!(
            p.poll_due(t0 + Duration::from_secs(3600)).map(|d| d.target),
            Some(carrier.target)
        );
        assert_eq!(
            p.poll_due(t0 + Duration::from_secs(3600)).map(|d| d.target),
            Some(new.target)
        );
        assert_eq!(p.poll_due(t0 + Duration::from_secs(3600)), None);
    }

    #[test]
    fn pings_repeat_once_per_interval_tdr_opt_02() {
        let t0 = crate::clock::now();
        let mut p = pinger(t0);
        let d = p.poll_due(t0).unwrap();
        let (rtt, tr) = p.on_final(d.target, d.seq, 200, t0 + Duration::from_millis(30));
        assert_eq!(rtt, Some(Duration::from_millis(30)));
        assert_eq!(tr.unwrap().to, Health::Up);
        let d1 = p.poll_due(t0).unwrap();
        p.on_final(d1.target, d1.seq, 200, t0);
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_secs(60)));
        assert_eq!(p.poll_due(t0 + Duration::from_secs(59)), None);
        assert!(p.poll_due(t0 + Duration::from_secs(60)).is_some());
    }

    #[test]
    fn silence_marks_down_once_and_answer_marks_up_once() {
        let t0 = crate::clock::now();
        let mut p = pinger(t0);
        let d = p.poll_due(t0).unwrap();
        let _ = p.poll_due(t0);
        assert_eq!(p.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        let trs = p.handle_timeout(t0 + Duration::from_secs(5));
        assert_eq!(trs.len(), 2);
        assert_eq!(trs[0].failure, Some(PingFailure::Timeout));
        // Still down on the next round: no new transition to log.
        let t1 = t0 + Duration::from_secs(60);
        let d2 = p.poll_due(t1).unwrap();
        assert_eq!(d2.target, d.target);
        assert!(
            p.on_transport_failure(d2.target, d2.seq, "refused".into())
                .is_none()
        );
        let t2 = t0 + Duration::from_secs(120);
        let d3 = p.poll_due(t2).unwrap();
        let (_, tr) = p.on_final(d3.target, d3.seq, 200, t2);
        assert_eq!(tr.map(|t| (t.from, t.to)), Some((Health::Down, Health::Up)));
    }

    #[test]
    fn non_2xx_answer_is_down_and_says_the_status() {
        let t0 = crate::clock::now();
        let mut p = pinger(t0);
        let d = p.poll_due(t0).unwrap();
        let (rtt, tr) = p.on_final(d.target, d.seq, 403, t0);
        assert_eq!(rtt, None);
        assert_eq!(tr.unwrap().failure, Some(PingFailure::Status(403)));
    }

    #[test]
    fn late_answer_to_an_expired_ping_is_ignored() {
        let t0 = crate::clock::now();
        let mut p = pinger(t0);
        let d = p.poll_due(t0).unwrap();
        p.handle_timeout(t0 + Duration::from_secs(5));
        let (rtt, tr) = p.on_final(d.target, d.seq, 200, t0 + Duration::from_secs(6));
        assert_eq!((rtt, tr), (None, None));
        assert_eq!(p.targets()[d.target].health(), Health::Down);
    }
}
