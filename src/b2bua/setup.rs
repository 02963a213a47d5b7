//! A new call: routing (tenant FQDN ⇄ trunk), admission, the media session, leg A's dialog,
//! and the start of leg B (its INVITE is shaped in `outbound`).

use std::time::{Duration, Instant};

use rand::Rng;

use super::body::{SdpBody, sdp_of};
use super::call::{Call, CallDirection, CallKey, Leg, LegId, Purpose, State};
use super::dialog::Dialog;
use super::media::{CallMedia, SdpSide};
use super::timer::{self, UasTimer};
use super::{Action, B2bua, Source};
use crate::config::{TenantConfig, TrunkConfig};
use crate::sdp::{CodecPolicy, SessionDescription};
use crate::sip::message::{Headers, Request, Response};
use crate::sip::transaction::TxId;
use crate::sip::transport::Side;

/// Methods we handle, for Allow (TDR-HDR-03, TDR-XFR-01).
pub(crate) const ALLOW: &str =
    "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER, PRACK, UPDATE";

/// Where leg B goes: the tenant's trunk, or the Teams proxies.
pub(super) struct Route {
    pub(super) tenant: TenantConfig,
    pub(super) trunk: TrunkConfig,
    pub(super) direction: CallDirection,
}

impl B2bua {
    /// An INVITE outside any dialog, with its new server transaction `tx`.
    pub(crate) fn on_invite(&mut self, tx: TxId, req: Request, src: &Source, now: Instant) {
        if self.on_replacing_invite(tx, &req, src, now) {
            return;
        }
        let route = match self.route(&req, src) {
            Ok(r) => r,
            Err((status, reason)) => {
                tracing::debug!(peer = %src.addr, status, reason, uri = %req.uri, "INVITE refused");
                return self.reject(tx, &req, status, reason);
            }
        };
        if src.side == Side::Trunk && !self.trunk_authenticated(tx, &req, &route.trunk) {
            return;
        }
        // RFC 4028 §9: a Session-Expires below our Min-SE is refused before anything else.
        let a_timer = timer::uas_timer(&req.headers);
        if a_timer == UasTimer::TooSmall {
            let tag = self.token(10);
            let mut rsp =
                Response::for_request(&req, 422, "Session Interval Too Small", Some(&tag));
            rsp.headers.push("Min-SE", timer::MIN_SE.to_string());
            return self.respond(tx, rsp);
        }
        let offer = match sdp_of(&req.headers, &req.body) {
            SdpBody::Sdp(sd) => Some(*sd),
            SdpBody::None => None,
            SdpBody::Invalid => {
                return self.reject(tx, &req, 400, "Bad Request - SDP does not parse");
            }
        };
        if offer.is_none() && src.side == Side::Teams {
            // TDR-INV-05 concerns our INVITEs; Teams always offers. Without one we could not
            // keep the Teams leg SRTP (TDR-MED-01).
            return self.reject(tx, &req, 488, "Not Acceptable Here - SRTP offer required");
        }
        if src.side == Side::Teams && self.trunks_down.contains(&route.trunk.name) {
            // Its pings say nobody answers there: 503 now lets Teams try its next route
            // rather than wait on a dead peer.
            tracing::info!(tenant = %route.tenant.fqdn, trunk = %route.trunk.name, "call refused: trunk down");
            metrics::counter!(
                crate::metrics::CALLS_REFUSED,
                "tenant" => route.tenant.fqdn.clone(),
                "reason" => "trunk_down"
            )
            .increment(1);
            let tag = self.token(10);
            let mut rsp =
                Response::for_request(&req, 503, "Service Unavailable - trunk down", Some(&tag));
            rsp.headers.push("Retry-After", "30");
            return self.respond(tx, rsp);
        }
        if let Err(refusal) = self
            .limits
            .admit(&route.tenant.fqdn, &route.trunk.name, now)
        {
            tracing::debug!(tenant = %route.tenant.fqdn, trunk = %route.trunk.name, why = refusal.label(), "call refused: limit");
            metrics::counter!(
                crate::metrics::CALLS_REFUSED,
                "tenant" => route.tenant.fqdn.clone(),
                "reason" => refusal.label()
            )
            .increment(1);
            let tag = self.token(10);
            let mut rsp = Response::for_request(&req, 503, refusal.reason(), Some(&tag));
            rsp.headers
                .push("Retry-After", refusal.retry_after().as_secs().to_string());
            return self.respond(tx, rsp);
        }
        // The 100 goes out before anything slow (TDR-INV-13: answer at once).
        self.respond(tx, Response::for_request(&req, 100, "Trying", None));

        let key = self.new_key();
        match self.start_call(key, tx, req.clone(), src, route, offer, now) {
            Ok(()) => self.schedule(key),
            Err((status, reason, tenant)) => {
                self.limits.release(&tenant);
                let tag = self.token(10);
                let mut rsp = Response::for_request(&req, status, &reason, Some(&tag));
                if status == 503 {
                    // Out of media ports or descriptors: for a moment, like a full tenant, and
                    // with Retry-After Teams tries another SBC (TDR-INV-13).
                    rsp.headers.push("Retry-After", "1");
                }
                self.respond(tx, rsp);
            }
        }
    }

    fn route(&self, req: &Request, src: &Source) -> Result<Route, (u16, &'static str)> {
        match src.side {
            Side::Teams => {
                // TDR-INV-09, TDR-MT-05: the Request-URI host names the tenant.
                let host = req.uri.host.to_string();
                let tenant = self
                    .routes
                    .tenant_by_fqdn(&host)
                    .ok_or((404, "Not Found - unknown tenant"))?;
                let trunk = self
                    .routes
                    .trunk_of(tenant)
                    .ok_or((404, "Not Found - tenant has no trunk"))?;
                Ok(Route {
                    tenant: tenant.clone(),
                    trunk: trunk.clone(),
                    direction: CallDirection::TeamsToTrunk,
                })
            }
            Side::Trunk => {
                let trunk = self
                    .routes
                    .trunk_by_source(src.addr.ip())
                    .ok_or((403, "Forbidden"))?;
                // TDR-MT-07: a trunk serving several tenants names one in the Request-URI
                // host; one serving a single tenant needs not.
                let host = req.uri.host.to_string();
                let tenants: Vec<&TenantConfig> = self.routes.tenants_of(trunk).collect();
                let tenant = tenants
                    .iter()
                    .find(|t| t.fqdn.eq_ignore_ascii_case(&host))
                    .or(if tenants.len() == 1 {
                        tenants.first()
                    } else {
                        None
                    })
                    .ok_or((404, "Not Found - no tenant for this trunk and host"))?;
                Ok(Route {
                    tenant: (*tenant).clone(),
                    trunk: trunk.clone(),
                    direction: CallDirection::TrunkToTeams,
                })
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn start_call(
        &mut self,
        key: CallKey,
        tx: TxId,
        req: Request,
        src: &Source,
        route: Route,
        offer: Option<SessionDescription>,
        now: Instant,
    ) -> Result<(), (u16, String, String)> {
        let tenant = route.tenant.fqdn.clone();
        let fail = |status: u16, reason: String| (status, reason, tenant.clone());
        let policy = self
            .codecs
            .get(&route.trunk.name)
            .cloned()
            .unwrap_or_else(|| codec_policy(&route.trunk));
        let mut media = CallMedia::create(&self.media, key, policy, false)
            .map_err(|e| {
                // The reason goes to the log; the peer learns only that we are busy.
                tracing::warn!(call = key, tenant = %tenant, error = %e, "no media session for a call: 503");
                fail(503, "Service Unavailable".into())
            })?;
        let a_side = src.side;
        let a_local_tag = self.token(10);
        let a_contact = self.contact_for(a_side, &route, &req, src.transport);
        let Some(mut a_dialog) = Dialog::as_uas(&req, a_local_tag, a_contact) else {
            let _ = self.media.destroy_session(key);
            return Err(fail(400, "Bad Request - no Contact".into()));
        };
        a_dialog.remote_cseq = req.headers.cseq().map(|c| c.seq).unwrap_or(0);

        // Leg B's offer.
        let (from_side, b_side) = match route.direction {
            CallDirection::TeamsToTrunk => (SdpSide::Teams, Side::Trunk),
            CallDirection::TrunkToTeams => (SdpSide::Trunk, Side::Teams),
        };
        let b_offer = match media.offer(&self.media, from_side, offer.as_ref()) {
            Ok(sd) => sd,
            Err(e) => {
                let _ = self.media.destroy_session(key);
                tracing::info!(call = key, tenant = %route.tenant.fqdn, error = %e, "offer refused");
                return Err(fail(e.status(), reason_for(e.status())));
            }
        };

        let from_user = req.headers.from().ok().and_then(|f| f.uri.user.clone());
        let to_user = req.uri.user.clone();
        let (b_invite, b_leg, dest, proxies_left) = self.build_b_invite(
            &route,
            &req,
            b_side,
            from_user.as_deref(),
            to_user.as_deref(),
            &b_offer,
        );
        let Some(dest) = dest else {
            let _ = self.media.destroy_session(key);
            return Err(fail(503, "Service Unavailable - no Teams proxy".into()));
        };

        let a_transport = src.transport;
        let a = Leg {
            side: a_side,
            transport: a_transport,
            dialog: a_dialog,
            fallback: src.reply_target(),
            // Requests we start on leg A (BYE, re-INVITE) need our own sent-by, like leg B's.
            via: self.via_for(a_side, &route, a_transport),
            allows_update: allows(&req.headers, "UPDATE"),
            acked_cseq: None,
            // Started when the call is answered.
            session_timer: None,
            remote_origin: offer.as_ref().map(super::call::origin_of),
        };
        let b_cseq = 1;
        let mut call = Call {
            key,
            direction: route.direction,
            tenant: route.tenant.fqdn.clone(),
            trunk: route.trunk.name.clone(),
            state: State::Calling,
            a,
            b: b_leg,
            media,
            a_invite: Box::new(req),
            a_invite_tx: tx,
            b_invite: Box::new(b_invite.clone()),
            b_invite_tx: None,
            b_invite_cseq: b_cseq,
            proxies_left,
            targets_left: Default::default(),
            failover_at: None,
            provisional_seen: false,
            cancel_sent: false,
            cancel_reason: None,
            resend_2xx: None,
            pending: None,
            guard_at: None,
            setup_wall: std::time::SystemTime::now(),
            setup_at: now,
            answered: None,
            final_status: None,
            from_number: from_user,
            to_number: to_user,
            pracked: Vec::new(),
            early_answer: None,
            ended: None,
            reoffer_at: None,
            transfer: None,
            ring_until: self.ring_deadline(now),
            transfers: Vec::new(),
            a_reliable: None,
        };
        call.b.dialog.local_cseq = b_cseq;
        // RFC 3262 §3: a caller that requires 100rel gets every provisional reliably.
        if call
            .a_invite
            .headers
            .option_tags("Require")
            .iter()
            .any(|t| t.eq_ignore_ascii_case("100rel"))
        {
            let first = self.rng.random_range(1..(1u32 << 30));
            call.a_reliable = Some(super::call::Reliable::new(first));
        }
        if call.b.side == Side::Teams {
            call.failover_at = Some(now + self.failover_timeout());
        }
        let a_dlg = (
            call.a.dialog.call_id.clone(),
            call.a.dialog.local_tag.clone(),
        );
        let b_dlg = (
            call.b.dialog.call_id.clone(),
            call.b.dialog.local_tag.clone(),
        );
        let via = call.b.via.clone();
        tracing::debug!(call = key, tenant = %call.tenant, trunk = %call.trunk, direction = call.direction.metric_label(), "call started");
        self.calls.insert(key, Box::new(call));
        self.register_dialog(&a_dlg.0, &a_dlg.1, key, LegId::A);
        self.register_dialog(&b_dlg.0, &b_dlg.1, key, LegId::B);
        self.invites.insert(tx, key);
        self.records.attempt(&route.tenant.fqdn, route.direction);
        self.actions.push_back(Action::Request {
            call: key,
            leg: LegId::B,
            purpose: Purpose::Invite,
            request: b_invite,
            via,
            dest,
        });
        Ok(())
    }

    /// When an INVITE of ours that went out or rang at `now` is given up (`[sip]
    /// ring_timeout_s`, RFC 3261 Timer C), if ever.
    pub(super) fn ring_deadline(&self, now: Instant) -> Option<Instant> {
        match self.config.sip.ring_timeout_s {
            0 => None,
            s => Some(now + Duration::from_secs(s)),
        }
    }

    pub(super) fn failover_timeout(&self) -> Duration {
        Duration::from_millis(self.config.teams.failover_timeout_ms)
    }
}

pub(super) fn codec_policy(trunk: &TrunkConfig) -> CodecPolicy {
    CodecPolicy {
        allow: trunk.codecs.as_slice().into(),
        keep_telephone_event: true,
        keep_cn: true,
    }
}

/// Whether a message's Allow lists `method`.
pub(super) fn allows(headers: &Headers, method: &str) -> bool {
    headers
        .values("Allow")
        .any(|v| v.as_ref().eq_ignore_ascii_case(method.as_bytes()))
}

pub(super) fn reason_for(status: u16) -> String {
    match status {
        488 => "Not Acceptable Here".into(),
        500 => "Server Internal Error".into(),
        _ => "Service Unavailable".into(),
    }
}
