//! Per-call accounting: the CDR line and the per-tenant call metrics.

use std::time::{Duration, Instant};

use super::call::{Call, CallDirection};
use super::teardown::End;
use crate::media::SessionStats;

pub(crate) struct Records {}

impl Records {
    pub(crate) fn new() -> Records {
        Records {}
    }

    pub(crate) fn attempt(&self, tenant: &str, direction: CallDirection) {
        tracing::debug!(tenant, direction = direction.label(), "call attempt");
    }

    pub(crate) fn answered(&self, tenant: &str, direction: CallDirection, setup: Duration) {
        tracing::debug!(
            tenant,
            direction = direction.label(),
            setup_ms = setup.as_millis() as u64,
            "call answered"
        );
    }

    pub(crate) fn ended(
        &self,
        call: &Call,
        end: End,
        _now: Instant,
        _stats: Option<tokio::sync::oneshot::Receiver<SessionStats>>,
    ) {
        tracing::info!(call = call.key, tenant = %call.tenant, reason = end.reason, by = end.by.label(), status = ?call.final_status, "call ended");
    }
}
