//! Per-tenant call counters, gauges and the setup-time histogram.
//!
//! Every series is registered in `new` from the configured tenant names, so
//! the label set is closed: an INVITE naming a tenant that is not configured
//! cannot add a series (it is only logged at debug level).

use std::collections::HashMap;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

use super::{CallDirection, TransferredBy};
use crate::metrics::{
    CALL_ATTEMPTS, CALL_SETUP, CALLS_ACTIVE, CALLS_ANSWERED, CALLS_FAILED, TRANSFERS,
};

const DIRECTIONS: [CallDirection; 2] = [CallDirection::TeamsToTrunk, CallDirection::TrunkToTeams];

/// `class` label values of `drawbridge_calls_failed_total`, indexed by
/// `failure_class`: a final status by its class, "timeout" when none came
/// (Timer B, no answer), "other" for a code no failure can have (1xx, 2xx,
/// out of range).
const FAILURE_CLASSES: [&str; 6] = ["3xx", "4xx", "5xx", "6xx", "timeout", "other"];

fn failure_class(status: Option<u16>) -> usize {
    match status {
        Some(300..=399) => 0,
        Some(400..=499) => 1,
        Some(500..=599) => 2,
        Some(600..=699) => 3,
        None => 4,
        Some(_) => 5,
    }
}

fn direction_index(dir: CallDirection) -> usize {
    match dir {
        CallDirection::TeamsToTrunk => 0,
        CallDirection::TrunkToTeams => 1,
    }
}

/// One tenant's series in one direction.
struct Series {
    active: Gauge,
    attempts: Counter,
    answered: Counter,
    failed: [Counter; FAILURE_CLASSES.len()],
    setup: Histogram,
}

/// A tenant's transfer counters: [requested by Teams, by the trunk] × [completed, failed].
type Transfers = [[Counter; 2]; 2];

fn transfer_series(tenant: &str) -> Transfers {
    [TransferredBy::Teams, TransferredBy::Trunk].map(|by| {
        ["completed", "failed"].map(|outcome| {
            metrics::counter!(
                TRANSFERS,
                "tenant" => tenant.to_owned(),
                "requested_by" => by.as_str(),
                "outcome" => outcome
            )
        })
    })
}

impl Series {
    fn new(tenant: &str, dir: CallDirection) -> Series {
        let t = tenant.to_owned();
        let d = dir.metric_label();
        Series {
            active: metrics::gauge!(CALLS_ACTIVE, "tenant" => t.clone(), "direction" => d),
            attempts: metrics::counter!(CALL_ATTEMPTS, "tenant" => t.clone(), "direction" => d),
            answered: metrics::counter!(CALLS_ANSWERED, "tenant" => t.clone(), "direction" => d),
            failed: FAILURE_CLASSES.map(|class| {
                metrics::counter!(
                    CALLS_FAILED,
                    "tenant" => t.clone(),
                    "direction" => d,
                    "class" => class
                )
            }),
            setup: metrics::histogram!(CALL_SETUP, "tenant" => t.clone(), "direction" => d),
        }
    }
}

/// Per-tenant call metrics. Per call: one [`attempt`](Self::attempt) when the
/// INVITE is admitted, then [`answered`](Self::answered) or
/// [`failed`](Self::failed) when the setup ends, and exactly one
/// [`ended`](Self::ended) when the call is gone (answered or not):
/// `drawbridge_calls_active` counts calls from attempt to end.
pub struct CallMetrics {
    tenants: HashMap<String, [Series; 2]>,
    transfers: HashMap<String, Transfers>,
}

impl std::fmt::Debug for CallMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallMetrics")
            .field("tenants", &self.tenants.len())
            .finish()
    }
}

impl CallMetrics {
    /// Registers every series of every tenant with the current recorder.
    pub fn new(tenants: &[String]) -> CallMetrics {
        let transfers = tenants
            .iter()
            .map(|t| (t.clone(), transfer_series(t)))
            .collect();
        let tenants = tenants
            .iter()
            .map(|t| (t.clone(), DIRECTIONS.map(|d| Series::new(t, d))))
            .collect();
        CallMetrics { tenants, transfers }
    }

    /// Registers the series of tenants a reload added; those of removed tenants stay, so
    /// their calls in progress are still counted out.
    pub fn add_tenants(&mut self, tenants: &[String]) {
        for t in tenants {
            if !self.tenants.contains_key(t) {
                let both = DIRECTIONS.map(|d| Series::new(t, d));
                self.tenants.insert(t.clone(), both);
                self.transfers.insert(t.clone(), transfer_series(t));
            }
        }
    }

    fn series(&self, tenant: &str, dir: CallDirection) -> Option<&Series> {
        let series = self
            .tenants
            .get(tenant)
            .map(|both| &both[direction_index(dir)]);
        if series.is_none() {
            tracing::debug!(tenant, "call metrics: tenant not configured, not counted");
        }
        series
    }

    /// An INVITE admitted for `tenant`: one more attempt and one more active call.
    pub fn attempt(&self, tenant: &str, dir: CallDirection) {
        if let Some(s) = self.series(tenant, dir) {
            s.attempts.increment(1);
            s.active.increment(1.0);
        }
    }

    /// The 200 OK relayed, `setup` after the INVITE arrived.
    pub fn answered(&self, tenant: &str, dir: CallDirection, setup: Duration) {
        if let Some(s) = self.series(tenant, dir) {
            s.answered.increment(1);
            s.setup.record(setup.as_secs_f64());
        }
    }

    /// The setup ended without an answer: `status` is the final response
    /// relayed to the caller, `None` when none came (timeout).
    pub fn failed(&self, tenant: &str, dir: CallDirection, status: Option<u16>) {
        if let Some(s) = self.series(tenant, dir) {
            s.failed[failure_class(status)].increment(1);
        }
    }

    /// A transfer asked for by `by` on one of `tenant`'s calls has ended.
    pub fn transferred(&self, tenant: &str, by: TransferredBy, completed: bool) {
        let by = match by {
            TransferredBy::Teams => 0,
            TransferredBy::Trunk => 1,
        };
        if let Some(t) = self.transfers.get(tenant) {
            t[by][usize::from(!completed)].increment(1);
        }
    }

    /// The call is gone; pairs with `attempt`.
    pub fn ended(&self, tenant: &str, dir: CallDirection) {
        if let Some(s) = self.series(tenant, dir) {
            s.active.decrement(1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "customer1.sbc.example.test";
    const T2: &str = "customer2.sbc.example.test";

    fn with_metrics(f: impl FnOnce(&CallMetrics)) -> String {
        let recorder = crate::metrics::builder().unwrap().build_recorder();
        let handle = recorder.handle();
        let m = metrics::with_local_recorder(&recorder, || {
            crate::metrics::describe();
            CallMetrics::new(&[T1.to_owned(), T2.to_owned()])
        });
        f(&m);
        handle.render()
    }

    fn has(text: &str, line: &str) {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }

    #[test]
    fn answered_call_counts_attempt_answer_setup_time_and_leaves_no_active_call() {
        let out = with_metrics(|m| {
            m.attempt(T1, CallDirection::TeamsToTrunk);
            m.answered(
                T1,
                CallDirection::TeamsToTrunk,
                Duration::from_millis(2_400),
            );
            m.ended(T1, CallDirection::TeamsToTrunk);
        });
        let l = r#"tenant="customer1.sbc.example.test",direction="teams_to_trunk""#;
        has(&out, &format!("drawbridge_call_attempts_total{{{l}}} 1"));
        has(&out, &format!("drawbridge_calls_answered_total{{{l}}} 1"));
        has(&out, &format!("drawbridge_calls_active{{{l}}} 0"));
        has(
            &out,
            &format!(r#"drawbridge_call_setup_seconds_bucket{{{l},le="2"}} 0"#),
        );
        has(
            &out,
            &format!(r#"drawbridge_call_setup_seconds_bucket{{{l},le="3"}} 1"#),
        );
        has(
            &out,
            &format!("drawbridge_call_setup_seconds_count{{{l}}} 1"),
        );
        // The other direction and tenant exist (pre-built) and stay at zero.
        has(
            &out,
            r#"drawbridge_call_attempts_total{tenant="customer2.sbc.example.test",direction="trunk_to_teams"} 0"#,
        );
    }

    #[test]
    fn active_gauge_counts_calls_from_attempt_to_end() {
        let out = with_metrics(|m| {
            for _ in 0..3 {
                m.attempt(T2, CallDirection::TrunkToTeams);
            }
            m.answered(T2, CallDirection::TrunkToTeams, Duration::from_secs(1));
            m.failed(T2, CallDirection::TrunkToTeams, Some(486));
            m.ended(T2, CallDirection::TrunkToTeams);
        });
        let l = r#"tenant="customer2.sbc.example.test",direction="trunk_to_teams""#;
        has(&out, &format!("drawbridge_calls_active{{{l}}} 2"));
        has(&out, &format!("drawbridge_call_attempts_total{{{l}}} 3"));
    }

    #[test]
    fn failures_are_counted_by_status_class_and_timeout() {
        let out = with_metrics(|m| {
            let d = CallDirection::TeamsToTrunk;
            for status in [
                Some(302),
                Some(404),
                Some(486),
                Some(503),
                Some(603),
                None,
                Some(180),
            ] {
                m.attempt(T1, d);
                m.failed(T1, d, status);
                m.ended(T1, d);
            }
        });
        let l = r#"tenant="customer1.sbc.example.test",direction="teams_to_trunk""#;
        for (class, n) in [
            ("3xx", 1),
            ("4xx", 2),
            ("5xx", 1),
            ("6xx", 1),
            ("timeout", 1),
            ("other", 1),
        ] {
            has(
                &out,
                &format!(r#"drawbridge_calls_failed_total{{{l},class="{class}"}} {n}"#),
            );
        }
        has(&out, &format!("drawbridge_calls_answered_total{{{l}}} 0"));
        has(&out, &format!("drawbridge_calls_active{{{l}}} 0"));
    }

    #[test]
    fn unknown_tenant_creates_no_series() {
        let out = with_metrics(|m| {
            let d = CallDirection::TeamsToTrunk;
            m.attempt("evil.example.test", d);
            m.answered("evil.example.test", d, Duration::from_secs(1));
            m.failed("evil.example.test", d, Some(500));
            m.ended("evil.example.test", d);
        });
        assert!(!out.contains("evil"), "{out}");
        // Known tenants untouched.
        has(
            &out,
            r#"drawbridge_call_attempts_total{tenant="customer1.sbc.example.test",direction="teams_to_trunk"} 0"#,
        );
    }
}
