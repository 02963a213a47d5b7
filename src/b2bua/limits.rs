//! Admission: concurrent calls per tenant and new calls per second per tenant and per trunk.
//! A refused call gets 503 with Retry-After, which makes Teams try another SBC (TDR-INV-13)
//! and tells a trunk to back off.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::config::Config;

/// A token bucket holding up to one second's worth of calls.
#[derive(Debug, Clone)]
struct Rate {
    per_second: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl Rate {
    fn new(per_second: u32) -> Rate {
        Rate {
            per_second: f64::from(per_second),
            tokens: f64::from(per_second),
            at: None,
        }
    }

    fn unlimited(&self) -> bool {
        self.per_second <= 0.0
    }

    fn refill(&mut self, now: Instant) {
        if let Some(at) = self.at {
            let dt = now.saturating_duration_since(at).as_secs_f64();
            self.tokens = (self.tokens + dt * self.per_second).min(self.per_second.max(1.0));
        }
        self.at = Some(now);
    }

    fn available(&mut self, now: Instant) -> bool {
        if self.unlimited() {
            return true;
        }
        self.refill(now);
        self.tokens >= 1.0
    }

    fn take(&mut self) {
        if !self.unlimited() {
            self.tokens -= 1.0;
        }
    }
}

#[derive(Debug, Clone)]
struct TenantLimit {
    max_calls: u32,
    active: u32,
    rate: Rate,
}

/// Why a call was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    TenantBusy,
    TenantRate,
    TrunkRate,
}

impl Refusal {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::TenantBusy => "Service Unavailable - tenant call limit",
            Refusal::TenantRate => "Service Unavailable - tenant call rate",
            Refusal::TrunkRate => "Service Unavailable - trunk call rate",
        }
    }

    /// Seconds for Retry-After: a rate limit clears within a second; a full tenant needs a
    /// call to end.
    pub(crate) fn retry_after(self) -> Duration {
        match self {
            Refusal::TenantBusy => Duration::from_secs(5),
            Refusal::TenantRate | Refusal::TrunkRate => Duration::from_secs(1),
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Refusal::TenantBusy => "tenant_calls",
            Refusal::TenantRate => "tenant_rate",
            Refusal::TrunkRate => "trunk_rate",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Limits {
    tenants: HashMap<String, TenantLimit>,
    trunks: HashMap<String, Rate>,
}

impl Limits {
    pub(crate) fn new(config: &Config) -> Limits {
        Limits {
            tenants: config
                .tenants
                .iter()
                .map(|t| {
                    (
                        t.fqdn.to_ascii_lowercase(),
                        TenantLimit {
                            max_calls: t.max_calls,
                            active: 0,
                            rate: Rate::new(t.calls_per_second),
                        },
                    )
                })
                .collect(),
            trunks: config
                .trunks
                .iter()
                .map(|t| (t.name.clone(), Rate::new(t.calls_per_second)))
                .collect(),
        }
    }

    /// The limits of a reloaded config. Calls in progress stay counted: a tenant keeps its
    /// active count under its new `max_calls`, and a tenant removed while it has calls keeps
    /// an entry that admits nothing, so their ends are still released. Rates start afresh.
    pub(crate) fn reconfigure(&mut self, config: &Config) {
        let mut next = Limits::new(config);
        for (fqdn, old) in self.tenants.drain() {
            if old.active == 0 {
                continue;
            }
            next.tenants
                .entry(fqdn)
                .and_modify(|t| t.active = old.active)
                .or_insert(TenantLimit {
                    max_calls: 0,
                    active: old.active,
                    rate: old.rate,
                });
        }
        *self = next;
    }

    /// Admits a new call (counting it) or says why not. Nothing is taken when refused.
    pub(crate) fn admit(&mut self, tenant: &str, trunk: &str, now: Instant) -> Result<(), Refusal> {
        let t = self
            .tenants
            .get_mut(&tenant.to_ascii_lowercase())
            .ok_or(Refusal::TenantBusy)?;
        if t.active >= t.max_calls {
            return Err(Refusal::TenantBusy);
        }
        if !t.rate.available(now) {
            return Err(Refusal::TenantRate);
        }
        if let Some(r) = self.trunks.get_mut(trunk)
            && !r.available(now)
        {
            return Err(Refusal::TrunkRate);
        }
        t.rate.take();
        t.active += 1;
        if let Some(r) = self.trunks.get_mut(trunk) {
            r.take();
        }
        Ok(())
    }

    pub(crate) fn release(&mut self, tenant: &str) {
        if let Some(t) = self.tenants.get_mut(&tenant.to_ascii_lowercase()) {
            t.active = t.active.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn limits(max_calls: u32, tenant_cps: u32, trunk_cps: u32) -> Limits {
        let mut tenants = HashMap::new();
        tenants.insert(
            "t1.example.test".to_owned(),
            TenantLimit {
                max_calls,
                active: 0,
                rate: Rate::new(tenant_cps),
            },
        );
        let mut trunks = HashMap::new();
        trunks.insert("cc1".to_owned(), Rate::new(trunk_cps));
        Limits { tenants, trunks }
    }

    #[test]
    fn concurrent_limit_refuses_until_a_call_ends() {
        let now = crate::clock::now();
        let mut l = limits(2, 0, 0);
        assert!(l.admit("t1.example.test", "cc1", now).is_ok());
        assert!(l.admit("T1.example.test", "cc1", now).is_ok());
        assert_eq!(
            l.admit("t1.example.test", "cc1", now),
            Err(Refusal::TenantBusy)
        );
        l.release("t1.example.test");
        assert!(l.admit("t1.example.test", "cc1", now).is_ok());
    }

    #[test]
    fn a_reload_keeps_calls_in_progress_counted_and_a_removed_tenant_admits_nothing() {
        let now = crate::clock::now();
        let (_certs, mut config) =
            crate::config::test_support::with_dev_certs(crate::config::default::DEFAULT_TOML);
        config.tenants[0].max_calls = 2;
        let mut l = Limits::new(&config);
        let t1 = config.tenants[0].fqdn.clone();
        assert!(l.admit(&t1, "cc1", now).is_ok());
        assert!(l.admit(&t1, "cc1", now).is_ok());
        // A higher limit: the two calls still count against it.
        config.tenants[0].max_calls = 3;
        l.reconfigure(&config);
        assert!(l.admit(&t1, "cc1", now).is_ok());
        assert_eq!(l.admit(&t1, "cc1", now), Err(Refusal::TenantBusy));
        // Removed: no new call, and the calls in progress are still released.
        config.tenants.clear();
        l.reconfigure(&config);
        l.release(&t1);
        assert_eq!(l.admit(&t1, "cc1", now), Err(Refusal::TenantBusy));
        l.release(&t1);
        l.release(&t1);
        // Its last call gone, a later reload forgets it.
        l.reconfigure(&config);
        assert!(l.tenants.is_empty());
    }

    #[test]
    fn rate_limits_refill_over_time() {
        let now = crate::clock::now();
        let mut l = limits(100, 2, 0);
        assert!(l.admit("t1.example.test", "cc1", now).is_ok());
        assert!(l.admit("t1.example.test", "cc1", now).is_ok());
        assert_eq!(
            l.admit("t1.example.test", "cc1", now),
            Err(Refusal::TenantRate)
        );
        let later = now + Duration::from_millis(600);
        assert!(l.admit("t1.example.test", "cc1", later).is_ok());
    }

    #[test]
    fn trunk_rate_refusal_takes_nothing_from_the_tenant() {
        let now = crate::clock::now();
        let mut l = limits(1, 0, 1);
        assert!(l.admit("t1.example.test", "cc1", now).is_ok());
        l.release("t1.example.test");
        assert_eq!(
            l.admit("t1.example.test", "cc1", now),
            Err(Refusal::TrunkRate)
        );
        assert!(
            l.admit("t1.example.test", "cc1", now + Duration::from_secs(1))
                .is_ok()
        );
    }
}
