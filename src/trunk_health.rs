//! Health of contact-center trunks from OPTIONS pings, sans-I/O: an operator sees a trunk go
//! down before its callers do, and calls from Teams for a trunk that is down get 503 at once,
//! so Teams tries its next route instead of waiting on a dead peer.
//!
//! Only trunks with `options_interval_s` above 0 are pinged. Each round resolves the trunk's
//! URI (RFC 3263: several targets when SRV lists them) and pings every target. Any final
//! answer but 503 shows a target alive (RFC 3261 §11: an OPTIONS answer may be 404 or 405 from
//! a peer that works); 503, silence past the trunk's `failover_timeout_ms` and a failed
//! connection mark it down. A trunk is up while any target is; only changes are reported.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::config::Config;
/// A target's or a trunk's health: the Teams proxies' kind (Unknown until the first answer).
pub use crate::teams::keepalive::Health;

/// A trunk changed health: logged once and mirrored in `drawbridge_trunk_up`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub trunk: String,
    pub to: Health,
    /// Why the last target to fail did (for a change to down).
    pub why: Option<String>,
}

/// A ping to send now: to `addr` of trunk `trunk` (an index that stays valid for the life of
/// the schedule), identified by `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ping {
    pub trunk: usize,
    pub addr: SocketAddr,
    pub seq: u64,
}

#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    health: Health,
    /// (seq, deadline) of the ping in flight.
    in_flight: Option<(u64, Instant)>,
}

#[derive(Debug)]
struct Trunk {
    name: String,
    interval: Duration,
    timeout: Duration,
    next_round: Instant,
    /// A round is resolving the trunk's name.
    resolving: bool,
    targets: Vec<Target>,
    health: Health,
    /// Dropped from the config by a reload: kept so indices stay put, never pinged again.
    retired: bool,
}

impl Trunk {
    fn judged(&self) -> Health {
        let any = |h| self.targets.iter().any(|t| t.health == h);
        if any(Health::Up) {
            Health::Up
        } else if !self.targets.is_empty() && self.targets.iter().all(|t| t.health == Health::Down)
        {
            Health::Down
        } else {
            self.health
        }
    }
}

/// Every pinged trunk's schedule and health.
#[derive(Debug, Default)]
pub struct TrunkHealth {
    trunks: Vec<Trunk>,
    next_seq: u64,
}

impl TrunkHealth {
    /// The trunks of `config` with pings on, each due at `now`.
    pub fn new(config: &Config, now: Instant) -> TrunkHealth {
        let mut h = TrunkHealth::default();
        h.reconfigure(config, now);
        h
    }

    /// A reload: trunks kept keep their health and schedule (with the new interval), new ones
    /// are due now, removed ones (or with pings now off) stop being pinged and are no longer
    /// reported down.
    pub fn reconfigure(&mut self, config: &Config, now: Instant) {
        let was_retired: Vec<bool> = self.trunks.iter().map(|t| t.retired).collect();
        for t in &mut self.trunks {
            t.retired = true;
        }
        for c in config.trunks.iter().filter(|t| t.options_interval_s > 0) {
            let interval = Duration::from_secs(c.options_interval_s);
            let timeout = Duration::from_millis(c.failover_timeout_ms).min(interval);
            match self
                .trunks
                .iter_mut()
                .enumerate()
                .find(|(_, t)| t.name == c.name)
            {
                Some((i, t)) => {
                    if was_retired[i] {
                        t.next_round = now;
                    }
                    t.retired = false;
                    t.interval = interval;
                    t.timeout = timeout;
                }
                None => self.trunks.push(Trunk {
                    name: c.name.clone(),
                    interval,
                    timeout,
                    next_round: now,
                    resolving: false,
                    targets: Vec::new(),
                    health: Health::Unknown,
                    retired: false,
                }),
            }
        }
        for t in self.trunks.iter_mut().filter(|t| t.retired) {
            t.targets.clear();
            t.resolving = false;
            t.health = Health::Unknown;
        }
    }

    /// The trunk's name, for an index handed out by this schedule.
    pub fn name(&self, trunk: usize) -> Option<&str> {
        self.trunks.get(trunk).map(|t| t.name.as_str())
    }

    /// Whether calls for `name` should be refused: its pings say down.
    pub fn is_down(&self, name: &str) -> bool {
        self.trunks
            .iter()
            .any(|t| !t.retired && t.name == name && t.health == Health::Down)
    }

    /// Whether `name`'s pings say up.
    pub fn is_up(&self, name: &str) -> bool {
        self.trunks
            .iter()
            .any(|t| !t.retired && t.name == name && t.health == Health::Up)
    }

    /// The names of the trunks whose pings say down.
    pub fn down_trunks(&self) -> std::collections::HashSet<String> {
        self.trunks
            .iter()
            .filter(|t| !t.retired && t.health == Health::Down)
            .map(|t| t.name.clone())
            .collect()
    }

    /// Whether `addr` is a target of `name` that its pings say is down.
    pub fn target_down(&self, name: &str, addr: SocketAddr) -> bool {
        self.trunks
            .iter()
            .filter(|t| !t.retired && t.name == name)
            .flat_map(|t| &t.targets)
            .any(|t| t.addr == addr && t.health == Health::Down)
    }

    /// Earliest instant at which `poll_round` or `handle_timeout` has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.trunks
            .iter()
            .filter(|t| !t.retired)
            .flat_map(|t| {
                let round = (!t.resolving).then_some(t.next_round);
                round
                    .into_iter()
                    .chain(t.targets.iter().filter_map(|g| g.in_flight.map(|(_, d)| d)))
            })
            .min()
    }

    /// A trunk whose round is due: resolve its URI, then call `resolved`. Call until `None`.
    pub fn poll_round(&mut self, now: Instant) -> Option<usize> {
        let (i, t) = self
            .trunks
            .iter_mut()
            .enumerate()
            .find(|(_, t)| !t.retired && !t.resolving && t.next_round <= now)?;
        t.resolving = true;
        t.next_round = now + t.interval;
        Some(i)
    }

    /// Trunk `trunk`'s URI resolved to `addrs` (none: it did not resolve, `why` says why). The
    /// pings to send now; targets no longer listed are forgotten.
    pub fn resolved(
        &mut self,
        trunk: usize,
        addrs: &[SocketAddr],
        why: &str,
        now: Instant,
    ) -> (Vec<Ping>, Option<Transition>) {
        let Some(t) = self.trunks.get_mut(trunk).filter(|t| !t.retired) else {
            return (Vec::new(), None);
        };
        t.resolving = false;
        if addrs.is_empty() {
            for g in &mut t.targets {
                g.health = Health::Down;
                g.in_flight = None;
            }
            return (Vec::new(), self.settle(trunk, Some(why.to_owned())));
        }
        t.targets.retain(|g| addrs.contains(&g.addr));
        let mut pings = Vec::with_capacity(addrs.len());
        for &addr in addrs {
            let seq = self.next_seq;
            self.next_seq += 1;
            let deadline = now + t.timeout;
            match t.targets.iter_mut().find(|g| g.addr == addr) {
                Some(g) => g.in_flight = Some((seq, deadline)),
                None => t.targets.push(Target {
                    addr,
                    health: Health::Unknown,
                    in_flight: Some((seq, deadline)),
                }),
            }
            pings.push(Ping { trunk, addr, seq });
        }
        (pings, None)
    }

    /// A final answer to ping `seq`.
    pub fn on_final(&mut self, ping: Ping, status: u16) -> Option<Transition> {
        if status == 503 {
            return self.on_failure(ping, format!("{} answered 503", ping.addr));
        }
        let g = self.in_flight(ping)?;
        g.in_flight = None;
        g.health = Health::Up;
        self.settle(ping.trunk, None)
    }

    /// Ping `seq` got no answer (its connection failed, or its transaction timed out).
    pub fn on_failure(&mut self, ping: Ping, why: String) -> Option<Transition> {
        let g = self.in_flight(ping)?;
        g.in_flight = None;
        g.health = Health::Down;
        self.settle(ping.trunk, Some(why))
    }

    /// Pings past their deadline count as failed.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Transition> {
        let late: Vec<Ping> = self
            .trunks
            .iter()
            .enumerate()
            .flat_map(|(trunk, t)| {
                t.targets.iter().filter_map(move |g| match g.in_flight {
                    Some((seq, deadline)) if deadline <= now => Some(Ping {
                        trunk,
                        addr: g.addr,
                        seq,
                    }),
                    _ => None,
                })
            })
            .collect();
        late.into_iter()
            .filter_map(|p| self.on_failure(p, format!("{} did not answer", p.addr)))
            .collect()
    }

    fn in_flight(&mut self, ping: Ping) -> Option<&mut Target> {
        self.trunks
            .get_mut(ping.trunk)
            .filter(|t| !t.retired)?
            .targets
            .iter_mut()
            .find(|g| g.addr == ping.addr && g.in_flight.is_some_and(|(s, _)| s == ping.seq))
    }

    fn settle(&mut self, trunk: usize, why: Option<String>) -> Option<Transition> {
        let t = self.trunks.get_mut(trunk)?;
        let now = t.judged();
        if now == t.health {
            return None;
        }
        t.health = now;
        Some(Transition {
            trunk: t.name.clone(),
            to: now,
            why: if now == Health::Down { why } else { None },
        })
    }
}

#[cfg(test)]
mod tests;
