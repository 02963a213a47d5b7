//! Per-call accounting: one CDR line per call and the per-tenant call metrics.

use std::time::{Duration, Instant};

use super::call::{Call, CallDirection};
use super::teardown::End;
use crate::cdr::{CallMetrics, CallRecord, CdrWriter, MediaRecord, WallAnchor};
use crate::media::SessionStats;

pub(crate) struct Records {
    cdr: CdrWriter,
    metrics: CallMetrics,
}

impl Records {
    pub(crate) fn new(cdr: CdrWriter, tenants: &[String]) -> Records {
        Records {
            cdr,
            metrics: CallMetrics::new(tenants),
        }
    }

    pub(crate) fn add_tenants(&mut self, tenants: &[String]) {
        self.metrics.add_tenants(tenants);
    }

    pub(crate) fn attempt(&self, tenant: &str, direction: CallDirection) {
        self.metrics.attempt(tenant, direction);
    }

    pub(crate) fn answered(&self, tenant: &str, direction: CallDirection, setup: Duration) {
        self.metrics.answered(tenant, direction, setup);
    }

    pub(crate) fn transferred(&self, tenant: &str, by: crate::cdr::TransferredBy, completed: bool) {
        self.metrics.transferred(tenant, by, completed);
    }

    /// The call's last word: metrics now, the CDR once the media plane has handed over the
    /// session's packet counts (at once on a runtime; without one, without media figures).
    pub(crate) fn ended(
        &self,
        call: &Call,
        end: End,
        now: Instant,
        stats: Option<tokio::sync::oneshot::Receiver<SessionStats>>,
    ) {
        if self.cdr.is_enabled() {
            tracing::debug!(call = call.key, tenant = %call.tenant, reason = end.reason.as_str(), by = ?end.by, status = ?call.final_status, "call ended");
        } else {
            // Without a CDR file, this line is the call's record: no numbers (the CDR masks
            // them as configured; a log does not), the Teams Call-ID to match Microsoft's.
            let teams = match call.a.side {
                crate::sip::transport::Side::Teams => &call.a,
                crate::sip::transport::Side::Trunk => &call.b,
            };
            let talk_s = call
                .answered
                .map(|(_, at)| now.saturating_duration_since(at).as_secs())
                .unwrap_or(0);
            tracing::info!(
                call = call.key,
                tenant = %call.tenant,
                trunk = %call.trunk,
                direction = call.direction.metric_label(),
                status = call.final_status.unwrap_or(0),
                reason = end.reason.as_str(),
                by = ?end.by,
                talk_s,
                teams_call_id = %teams.dialog.call_id,
                "call ended"
            );
        }
        if call.answered.is_none() {
            // A caller's CANCEL is a failed attempt as well, with its 487.
            self.metrics
                .failed(&call.tenant, call.direction, call.final_status);
        }
        self.metrics.ended(&call.tenant, call.direction);
        if !self.cdr.is_enabled() {
            return;
        }
        let anchor = WallAnchor::now();
        let answer_time = call.answered.map(|(wall, _)| wall);
        let end_time = anchor.system_time(now);
        let (teams_call_id, trunk_call_id) = match call.a.side {
            crate::sip::transport::Side::Teams => (&call.a, &call.b),
            crate::sip::transport::Side::Trunk => (&call.b, &call.a),
        };
        let record = CallRecord {
            call_id: format!("{:016x}", call.key),
            tenant: call.tenant.clone(),
            trunk: call.trunk.clone(),
            direction: call.direction,
            from: call.from_number.clone(),
            to: call.to_number.clone(),
            teams_call_id: Some(teams_call_id.dialog.call_id.clone()),
            trunk_call_id: Some(trunk_call_id.dialog.call_id.clone()),
            setup_time: call.setup_wall,
            answer_time,
            end_time,
            duration_s: CallRecord::talk_seconds(answer_time, end_time),
            status: call.final_status.unwrap_or(0),
            end_reason: end.reason.as_str().to_owned(),
            ended_by: end.by,
            media: None,
            transfers: call.transfers.iter().map(|t| t.record()).collect(),
        };
        let cdr = self.cdr.clone();
        match (stats, tokio::runtime::Handle::try_current()) {
            (Some(rx), Ok(rt)) => {
                rt.spawn(async move {
                    let mut record = record;
                    // The worker answers within one poll; a stopped plane gives no figures.
                    if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_secs(2), rx).await {
                        record.media = Some(MediaRecord::from_stats(&s));
                    }
                    cdr.write(record);
                });
            }
            _ => cdr.write(record),
        }
    }
}
