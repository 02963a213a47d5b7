//! Answers to the requests we sent on either leg, and their transaction outcomes.

use std::time::Instant;

use bytes::Bytes;

use super::body::{SdpBody, sdp_of};
use super::call::{Call, CallKey, Leg, LegId, Purpose, Resend, State, T1};
use super::dialog::Dialog;
use super::setup::ALLOW;
use super::teardown::{End, EndedBy};
use super::timer;
use super::{Action, B2bua};
use crate::sip::Method;
use crate::sip::message::{Request, Response};
use crate::sip::transaction::TxId;
use crate::sip::transport::{Side, Target, TransportKind};

impl B2bua {
    /// The endpoint started client transaction `tx` for an [`Action::Request`].
    pub(crate) fn on_request_sent(&mut self, key: CallKey, purpose: Purpose, tx: TxId) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        match purpose {
            Purpose::Invite => call.b_invite_tx = Some(tx),
            Purpose::Offer | Purpose::Relay => {
                if let Some(p) = call.pending.as_mut() {
                    p.client_tx = Some(tx);
                }
            }
            Purpose::Transfer => {
                if let Some(t) = call.transfer.as_mut() {
                    t.invite_tx = Some(tx);
                }
            }
            Purpose::Refresh
            | Purpose::Reoffer
            | Purpose::Bye
            | Purpose::Prack
            | Purpose::Notify => {}
        }
    }

    /// A response to a request of ours on `leg`.
    pub(crate) fn on_response(
        &mut self,
        key: CallKey,
        leg: LegId,
        purpose: Purpose,
        tx: TxId,
        rsp: Response,
        now: Instant,
    ) {
        if !self.calls.contains_key(&key) {
            // The call ended: what still arrives for it is dropped (a 2xx to one of its
            // INVITEs is ended by `end_orphan_dialog`, which the endpoint calls).
            return;
        }
        self.log_teams_refusal(key, leg, &rsp);
        match purpose {
            Purpose::Invite => self.invite_response(key, tx, rsp, now),
            Purpose::Offer | Purpose::Relay => self.pending_response(key, leg, tx, rsp, now),
            Purpose::Refresh => self.refresh_response(key, leg, rsp, now),
            Purpose::Transfer => self.transfer_response(key, tx, rsp, now),
            Purpose::Reoffer => self.reoffer_response(key, leg, rsp, now),
            Purpose::Bye | Purpose::Prack | Purpose::Notify => {}
        }
        self.schedule(key);
    }

    /// TDR-MON-02: Teams explains a refusal in its response's headers (ms-diagnostics, Reason):
    /// the whole response head is logged with the call and tenant, at info, so an operator
    /// sees it without a SIP trace. Statuses we make up for a timeout carry no Call-ID and
    /// are not Teams'.
    fn log_teams_refusal(&self, key: CallKey, leg: LegId, rsp: &Response) {
        if rsp.status < 300 || rsp.headers.call_id().is_err() {
            return;
        }
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.leg(leg).side != Side::Teams {
            return;
        }
        let wire = rsp.to_bytes();
        let head = match wire.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(end) => &wire[..end],
            None => &wire[..],
        };
        tracing::info!(
            call = key,
            tenant = %call.tenant,
            status = rsp.status,
            // Debug: one line, its line breaks escaped, for log tools that split on them.
            response = ?String::from_utf8_lossy(head),
            "Teams answered with an error"
        );
    }

    /// Timer B/F or a transport failure, treated as 408/503 (§8.1.3.1, §17.1.4).
    pub(crate) fn on_request_failed(
        &mut self,
        key: CallKey,
        leg: LegId,
        purpose: Purpose,
        tx: TxId,
        status: u16,
        now: Instant,
    ) {
        let reason = if status == 408 {
            "Request Timeout"
        } else {
            "Service Unavailable"
        };
        if purpose != Purpose::Invite {
            return self.on_response(key, leg, purpose, tx, Response::new(status, reason), now);
        }
        if self.calls.get(&key).and_then(|c| c.b_invite_tx) == Some(tx) {
            self.invite_final_failure(key, status, reason, None, true, now);
        }
        self.schedule(key);
    }

    /// A request of ours whose next hop did not resolve: it never had a transaction.
    pub(crate) fn on_request_unroutable(
        &mut self,
        key: CallKey,
        leg: LegId,
        purpose: Purpose,
        now: Instant,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        match purpose {
            Purpose::Invite if call.b_invite_tx.is_none() => {
                self.invite_final_failure(key, 503, "Service Unavailable", None, true, now);
            }
            Purpose::Offer | Purpose::Relay
                if call.pending.as_ref().is_some_and(|p| p.from == leg.other()) =>
            {
                call.media.abandon_offer();
                if let Some(p) = call.pending.take() {
                    let rsp = Response::for_request(&p.request, 503, "Service Unavailable", None);
                    self.respond(p.server_tx, rsp);
                }
            }
            // Nothing waits for these but their own offer: it is given up.
            Purpose::Reoffer => call.media.abandon_offer(),
            Purpose::Transfer
                if call
                    .transfer
                    .as_ref()
                    .is_some_and(|t| t.invite_tx.is_none()) =>
            {
                self.transfer_failed(key, "SIP/2.0 503 Service Unavailable", now);
            }
            _ => {}
        }
        self.schedule(key);
    }

    fn invite_response(&mut self, key: CallKey, tx: TxId, rsp: Response, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.b_invite_tx != Some(tx) {
            // An INVITE to a proxy we already gave up on. Its 2xx would be a second call
            // there: ACK it (§13.2.2.4) and end it. Anything else from it changes nothing.
            if (200..300).contains(&rsp.status) {
                tracing::info!(
                    call = key,
                    "2xx from a Teams proxy given up on: ACK and BYE"
                );
                self.end_stray_dialog(key, &rsp);
            } else {
                tracing::debug!(
                    call = key,
                    status = rsp.status,
                    "answer from an abandoned proxy ignored"
                );
            }
            return;
        }
        match rsp.status {
            100 => {
                call.failover_at = None;
                // §9.1: 100 is a provisional too, so a CANCEL may go now; without it a
                // callee that never rings would keep the INVITE for good.
                call.provisional_seen = true;
                if call.state == State::Cancelling && !call.cancel_sent {
                    call.cancel_sent = true;
                    let reason = call.cancel_reason.take();
                    self.actions.push_back(Action::Cancel { tx, reason });
                }
            }
            101..=199 => self.invite_provisional(key, rsp, now),
            200..=299 => self.invite_success(key, rsp, now),
            status => {
                let reason = rsp.reason.clone();
                let carried = self.reason_toward(key, LegId::A, &rsp.headers);
                self.invite_final_failure(key, status, &reason, carried, false, now);
            }
        }
    }

    fn invite_provisional(&mut self, key: CallKey, rsp: Response, now: Instant) {
        let plane = self.media.clone();
        let ring_until = self.ring_deadline(now);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.failover_at = None;
        // RFC 3261 §16.7 step 2: each provisional but 100 restarts Timer C.
        call.ring_until = ring_until;
        call.provisional_seen = true;
        call.b.dialog.update_from_response(&rsp);
        if call.state == State::Calling {
            call.state = State::Early;
        }
        // §9.1: a CANCEL waits for a provisional.
        if call.state == State::Cancelling && !call.cancel_sent {
            if let Some(tx) = call.b_invite_tx {
                call.cancel_sent = true;
                let reason = call.cancel_reason.take();
                self.actions.push_back(Action::Cancel { tx, reason });
            }
            return;
        }
        if call.state == State::Cancelling {
            return;
        }
        self.prack_if_asked(key, &rsp);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        // Early media: an SDP in a 18x is the answer (RFC 3261 §13.2.1 with RFC 3960).
        let mut out = provisional_for_a(call, &rsp);
        match sdp_of(&rsp.headers, &rsp.body) {
            SdpBody::Sdp(sd) => match call.media.answer(&plane, call.b.sdp_side(), &sd, false) {
                Ok(answer) => {
                    let body = Bytes::from(answer.to_string());
                    call.early_answer = Some(body.clone());
                    out.headers.push("Content-Type", "application/sdp");
                    out.body = body;
                }
                Err(e) => {
                    tracing::info!(call = key, error = %e, "early SDP not usable: relayed without it");
                }
            },
            SdpBody::Invalid | SdpBody::None => {}
        }
        self.provisional_to_a(key, out, now);
    }

    /// A provisional for leg A: as it is, or reliably (RFC 3262 §3) when A's INVITE required
    /// 100rel: `Require: 100rel` and the next RSeq, resent until its PRACK; while one waits
    /// for its PRACK, later ones wait behind it.
    pub(super) fn provisional_to_a(&mut self, key: CallKey, mut out: Response, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let tx = call.a_invite_tx;
        let Some(rel) = call.a_reliable.as_mut() else {
            return self.respond(tx, out);
        };
        // RFC 3262 §5: the first reliable provisional carries the SDP (the answer to the
        // caller's offer, or our offer). Until leg B's answer gives us one, a bodiless 180
        // cannot be sent reliably, and the caller required reliability: it is held back.
        // A caller that made no offer would answer ours in its PRACK, which is not taken as
        // an answer here: it gets no provisional at all, and the offer in the 2xx as before.
        if call.a_invite.body.is_empty() || (!rel.sdp_sent && out.body.is_empty()) {
            tracing::debug!(
                call = key,
                status = out.status,
                "provisional held back: no SDP yet for a reliable one"
            );
            return;
        }
        rel.sdp_sent = true;
        if rel.unacked.is_some() {
            if rel.queued.len() >= super::call::Reliable::MAX_QUEUED {
                rel.queued.pop_front();
            }
            rel.queued.push_back(out);
            return;
        }
        let rseq = rel.next_rseq;
        rel.next_rseq = rel.next_rseq.wrapping_add(1).max(1);
        out.headers.push("Require", "100rel");
        out.headers.push("RSeq", rseq.to_string());
        rel.unacked = Some(super::call::Unacked {
            response: out.clone(),
            rseq,
            next: now + T1,
            interval: T1,
            give_up: now + 64 * T1,
        });
        self.respond(tx, out);
        self.schedule(key);
    }

    /// A PRACK from leg A (RFC 3262 §3, §7.2): the status to answer it with. A PRACK for the
    /// reliable provisional waiting stops its resending and lets the next one go; one that
    /// acknowledges nothing we sent gets 481. Without reliable provisionals of ours (the
    /// caller did not require them) any PRACK gets its 200, as before.
    pub(super) fn prack_from_a(
        &mut self,
        key: CallKey,
        leg: LegId,
        prack: &Request,
        now: Instant,
    ) -> u16 {
        let Some(call) = self.calls.get_mut(&key) else {
            return 481;
        };
        let invite_cseq = call.a_invite.headers.cseq().map(|c| c.seq).ok();
        let Some(rel) = call.a_reliable.as_mut().filter(|_| leg == LegId::A) else {
            return 200;
        };
        // RAck: response-num CSeq-num Method.
        let rack = prack
            .headers
            .get("RAck")
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .unwrap_or_default();
        let matches = match (&rel.unacked, rack.as_slice()) {
            (Some(u), [rseq, cseq, method]) => {
                rseq.parse::<u32>().ok() == Some(u.rseq)
                    && cseq.parse::<u32>().ok() == invite_cseq
                    && method.eq_ignore_ascii_case("INVITE")
            }
            _ => false,
        };
        if !matches {
            return 481;
        }
        rel.unacked = None;
        if let Some(next) = rel.queued.pop_front() {
            self.provisional_to_a(key, next, now);
        }
        200
    }

    fn invite_success(&mut self, key: CallKey, rsp: Response, now: Instant) {
        let plane = self.media.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.failover_at = None;
        call.ring_until = None;
        call.b.dialog.update_from_response(&rsp);
        call.b.allows_update = super::setup::allows(&rsp.headers, "UPDATE");
        // §13.2.2.4: ACK every 2xx at once (TDR-INV-08), a retransmission with the same ACK.
        if let Some(cseq) = call.b.acked_cseq {
            self.ack_in_dialog(key, LegId::B, cseq);
            return;
        }
        let cseq = call.b_invite_cseq;
        self.ack_in_dialog(key, LegId::B, cseq);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.b.acked_cseq = Some(cseq);
        if call.state == State::Cancelling {
            // The 2xx crossed our CANCEL: the call is not wanted any more (§9.1).
            self.send_bye(key, LegId::B);
            self.forget(key);
            return;
        }
        call.b.session_timer = timer::uac_timer(&rsp, now);
        let answer_body = match sdp_of(&rsp.headers, &rsp.body) {
            SdpBody::Sdp(sd) => {
                call.b.remote_origin = Some(super::call::origin_of(&sd));
                match call.media.answer(&plane, call.b.sdp_side(), &sd, true) {
                    Ok(answer) => Some(Bytes::from(answer.to_string())),
                    Err(e) => {
                        tracing::warn!(call = key, error = %e, "answer not usable: ending the call");
                        let status = e.status();
                        self.send_bye(key, LegId::B);
                        self.fail_a(
                            key,
                            status,
                            &super::setup::reason_for(status),
                            EndedBy::Sbc,
                            now,
                        );
                        return;
                    }
                }
            }
            // The answer came in a reliable 18x already (RFC 3262 §5).
            _ => call.early_answer.clone(),
        };
        let mut out = Response::for_request(
            &call.a_invite,
            rsp.status,
            &rsp.reason,
            Some(&call.a.dialog.local_tag),
        );
        out.headers.push("Contact", call.a.dialog.contact.clone());
        out.headers.push("Allow", ALLOW);
        out.headers.push("Supported", "timer");
        if let timer::UasTimer::Use {
            interval,
            we_refresh,
        } = timer::uas_timer(&call.a_invite.headers)
        {
            timer::stamp_2xx(&mut out, &call.a_invite.headers, interval, we_refresh);
            call.a.session_timer = Some(timer::uas_session_timer(interval, we_refresh, now));
        }
        if let Some(body) = answer_body {
            out.headers.push("Content-Type", "application/sdp");
            out.body = body;
        }
        call.state = State::Answered;
        call.answered = Some((std::time::SystemTime::now(), now));
        call.final_status = Some(rsp.status);
        // A final answer ends the resending of reliable provisionals (RFC 3262 §3).
        call.a_reliable = None;
        let tx = call.a_invite_tx;
        // The 2xx is resent over UDP until the ACK; over TLS/TCP once is enough (§13.3.1.4).
        if call.a.transport == TransportKind::Udp {
            call.resend_2xx = Some(Resend::start(out.clone(), tx, LegId::A, now));
        } else {
            call.guard_at = Some(now + 64 * T1);
        }
        let setup = now.saturating_duration_since(call.setup_at);
        let (tenant, direction) = (call.tenant.clone(), call.direction);
        tracing::debug!(call = key, tenant = %tenant, setup_ms = setup.as_millis() as u64, "call answered");
        self.records.answered(&tenant, direction, setup);
        call.shed_setup_messages();
        self.invites.remove(&tx);
        self.respond(tx, out);
    }

    /// Leg B's INVITE ended without a call: the next Teams proxy (TDR-INV-13 codes), or the
    /// status back to leg A with its reason (3xx–6xx passed back as they came).
    fn invite_final_failure(
        &mut self,
        key: CallKey,
        status: u16,
        reason: &str,
        reason_header: Option<Bytes>,
        no_response: bool,
        now: Instant,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.state == State::Cancelling {
            self.forget(key);
            return;
        }
        let failover_code = matches!(status, 408 | 503 | 504) || no_response;
        if call.b.side == Side::Teams && failover_code && !call.proxies_left.is_empty() {
            self.try_next_proxy(key, now);
            return;
        }
        // RFC 3263 §4.3: a timeout, a failed connection or a 503 moves on to the next target.
        if call.b.side == Side::Trunk
            && (no_response || status == 503)
            && !call.targets_left.is_empty()
        {
            self.try_next_target(key, now);
            return;
        }
        // TDR-INV-07: a 486 is not retried; nor is anything else we pass back.
        let (status, reason) = if call.b.side == Side::Teams && status == 408 && no_response {
            (504, "Server Time-out")
        } else {
            (status, reason)
        };
        let ended_by = if no_response {
            EndedBy::Sbc
        } else {
            super::teardown::by_side(call.b.side)
        };
        self.fail_a_with_reason(key, status, reason, reason_header, ended_by, now);
    }

    /// Sends leg B's INVITE to the next Teams proxy in order (TDR-SIG-07, issue: failover).
    pub(super) fn try_next_proxy(&mut self, key: CallKey, now: Instant) {
        let timeout = self.failover_timeout();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(next) = call.proxies_left.pop_front() else {
            return;
        };
        let Some(proxy) = self.config.teams.proxies.get(next).cloned() else {
            return;
        };
        tracing::info!(call = key, proxy = %proxy.host, "trying the next Teams proxy");
        let dest = self.proxy_dest(&proxy);
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let mut uri = call.b_invite.uri.clone();
        uri.host = crate::sip::message::Host::Domain(proxy.host.clone());
        uri.port = Some(proxy.port);
        self.retry_b_invite(key, Some(uri), dest, Some(now + timeout), now);
    }

    /// Leg B's INVITE again, to `dest`: a new transaction with the same dialog identifiers and
    /// the next CSeq (§8.1.3.5 allows the retry), its Request-URI replaced by `uri` when given.
    /// `failover_at`: when to give up on `dest` if it says nothing at all.
    fn retry_b_invite(
        &mut self,
        key: CallKey,
        uri: Option<crate::sip::message::Uri>,
        dest: super::Dest,
        failover_at: Option<Instant>,
        now: Instant,
    ) {
        let ring_until = self.ring_deadline(now);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.b.dialog.local_cseq += 1;
        call.b_invite_cseq = call.b.dialog.local_cseq;
        let mut req = (*call.b_invite).clone();
        if let Some(uri) = uri {
            req.uri = uri.clone();
            call.b.dialog.remote_target = uri;
        }
        req.headers
            .set("CSeq", format!("{} INVITE", call.b_invite_cseq));
        *call.b_invite = req.clone();
        call.b_invite_tx = None;
        call.provisional_seen = false;
        call.failover_at = failover_at;
        call.ring_until = ring_until;
        if let super::Dest::Target(t) = &dest {
            call.b.fallback = t.clone();
        }
        let via = call.b.via.clone();
        self.actions.push_back(Action::Request {
            call: key,
            leg: LegId::B,
            purpose: Purpose::Invite,
            request: req,
            via,
            dest,
        });
    }

    /// The trunk's name resolved to several targets; leg B's INVITE went to the first, and
    /// `rest` are tried in order if it fails (RFC 3263 §4.3).
    pub(crate) fn on_alternatives(&mut self, key: CallKey, rest: Vec<Target>, now: Instant) {
        let timeout = self.trunk_failover_timeout(key);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if rest.is_empty() || call.b.side != Side::Trunk || !call.is_invite_pending() {
            return;
        }
        call.targets_left = rest.into();
        // Only if the first target has not answered already.
        if !call.provisional_seen {
            call.failover_at = Some(now + timeout);
        }
        self.schedule(key);
    }

    /// Sends leg B's INVITE to the trunk's next target (the Request-URI stays the trunk's).
    pub(super) fn try_next_target(&mut self, key: CallKey, now: Instant) {
        let timeout = self.trunk_failover_timeout(key);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(next) = call.targets_left.pop_front() else {
            return;
        };
        tracing::info!(call = key, trunk = %call.trunk, target = %next.addr, "trying the trunk's next target");
        let failover_at = (!call.targets_left.is_empty()).then(|| now + timeout);
        self.retry_b_invite(key, None, super::Dest::Target(next), failover_at, now);
    }

    fn trunk_failover_timeout(&self, key: CallKey) -> std::time::Duration {
        let ms = self
            .calls
            .get(&key)
            .and_then(|c| self.config.trunk(&c.trunk))
            .map_or(2000, |t| t.failover_timeout_ms);
        std::time::Duration::from_millis(ms)
    }

    /// ACK and BYE for the dialog a 2xx from an abandoned INVITE set up on leg B: the call's
    /// leg B with that 2xx's tag, target and route set (same Call-ID and local tag).
    fn end_stray_dialog(&mut self, key: CallKey, rsp: &Response) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let mut stray = call.b.clone();
        stray.dialog.update_from_response(rsp);
        self.ack_and_bye(key, LegId::B, stray, rsp);
    }

    /// A 2xx to an INVITE of a call that has ended (answered as it was cancelled, a proxy
    /// given up on, a transfer target as the caller hung up): ACKed (§13.2.2.4) and its
    /// dialog ended with BYE, both built from the 2xx, so the peer keeps no call nobody is
    /// on. `sent_to` is where the INVITE went: the way back when the 2xx's Contact names a
    /// host we do not resolve here.
    pub(crate) fn end_orphan_dialog(&mut self, key: CallKey, rsp: &Response, sent_to: Target) {
        if self.calls.contains_key(&key) || !(200..300).contains(&rsp.status) {
            return;
        }
        if rsp.headers.cseq().map(|c| c.method) != Ok(Method::Invite) {
            return;
        }
        let (Some(dialog), Ok(via)) = (Dialog::from_2xx(rsp), rsp.headers.top_via()) else {
            return;
        };
        let sent_by = match via.port {
            Some(p) => format!("{}:{p}", via.host),
            None => via.host.to_string(),
        };
        tracing::info!(call = key, "2xx for a call that has ended: ACK and BYE");
        let via = format!("SIP/2.0/{} {sent_by}", via.transport);
        let orphan = Leg::ours(sent_to.side, sent_to.transport, dialog, sent_to, via);
        self.ack_and_bye(key, LegId::B, orphan, rsp);
    }

    fn ack_and_bye(&mut self, key: CallKey, leg: LegId, mut stray: Leg, rsp: &Response) {
        let cseq = rsp.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let ack = stray.dialog.ack(cseq);
        let bye = stray.dialog.request(Method::Bye);
        let dest = self.dest_of(&stray);
        self.actions.push_back(Action::Ack {
            request: ack,
            via: stray.via.clone(),
            dest: dest.clone(),
        });
        self.actions.push_back(Action::Request {
            call: key,
            leg,
            purpose: Purpose::Bye,
            request: bye,
            via: stray.via,
            dest,
        });
    }

    /// RFC 3262 §4: a reliable provisional gets a PRACK on leg B's early dialog.
    fn prack_if_asked(&mut self, key: CallKey, rsp: &Response) {
        let requires = rsp
            .headers
            .option_tags("Require")
            .iter()
            .any(|t| t.eq_ignore_ascii_case("100rel"));
        let rseq = rsp
            .headers
            .get("RSeq")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u32>().ok());
        let (true, Some(rseq)) = (requires, rseq) else {
            return;
        };
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.pracked.contains(&rseq) {
            return;
        }
        call.pracked.push(rseq);
        let cseq = call.b_invite_cseq;
        let mut prack = call.b.dialog.request(Method::Prack);
        prack.headers.push("RAck", format!("{rseq} {cseq} INVITE"));
        self.send_in_dialog(key, LegId::B, Purpose::Prack, prack);
    }

    /// The other leg answered the request we relayed for a pending re-INVITE/UPDATE/INFO.
    fn pending_response(
        &mut self,
        key: CallKey,
        leg: LegId,
        tx: TxId,
        rsp: Response,
        now: Instant,
    ) {
        let plane = self.media.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(pending) = call.pending.clone() else {
            return;
        };
        if pending.client_tx != Some(tx) || pending.from != leg.other() {
            return;
        }
        if rsp.status < 200 {
            return;
        }
        let method = pending.request.method.clone();
        let from = pending.from;
        let mut out = Response::for_request(&pending.request, rsp.status, &rsp.reason, None);
        if (200..300).contains(&rsp.status) {
            if matches!(method, Method::Invite | Method::Update) {
                out.headers
                    .push("Contact", call.leg(from).dialog.contact.clone());
                out.headers.push("Allow", ALLOW);
                if let Some(t) = call.leg(from).session_timer {
                    let we = t.we_refresh;
                    timer::stamp_2xx(&mut out, &pending.request.headers, t.interval, we);
                }
                match sdp_of(&rsp.headers, &rsp.body) {
                    SdpBody::Sdp(sd) => {
                        call.leg_mut(leg).remote_origin = Some(super::call::origin_of(&sd));
                        match call
                            .media
                            .answer(&plane, call.leg(leg).sdp_side(), &sd, true)
                        {
                            Ok(answer) => {
                                out.headers.push("Content-Type", "application/sdp");
                                out.body = Bytes::from(answer.to_string());
                            }
                            Err(e) => {
                                tracing::info!(call = key, error = %e, "re-INVITE answer not usable");
                                call.media.abandon_offer();
                                out = Response::for_request(
                                    &pending.request,
                                    e.status(),
                                    &super::setup::reason_for(e.status()),
                                    None,
                                );
                            }
                        }
                    }
                    _ => call.media.abandon_offer(),
                }
                if let Some(t) = call.leg_mut(from).session_timer.as_mut() {
                    t.refreshed(now);
                }
            } else if is_body_forwarded(&rsp) {
                copy_body(&rsp, &mut out);
            }
        } else {
            call.media.abandon_offer();
        }
        // Our re-INVITE's 2xx needs our ACK.
        if (200..300).contains(&rsp.status)
            && rsp.headers.cseq().map(|c| c.method) == Ok(Method::Invite)
        {
            let cseq = rsp.headers.cseq().map(|c| c.seq).unwrap_or(0);
            self.ack_in_dialog(key, leg, cseq);
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.pending = None;
        let status = rsp.status;
        // A re-INVITE's 2xx to a UDP peer is resent until its ACK, as the first one is
        // (§14.2): the transaction absorbs a retransmitted re-INVITE and answers nothing.
        if method == Method::Invite
            && (200..300).contains(&out.status)
            && call.leg(from).transport == TransportKind::Udp
        {
            call.resend_2xx = Some(Resend::start(out.clone(), pending.server_tx, from, now));
        }
        self.respond(pending.server_tx, out);
        // §14.1 / RFC 5057: 481 or 408 to a mid-dialog request means the dialog is gone.
        if matches!(status, 408 | 481) {
            self.end_call(key, End::dialog_gone(leg), now);
        }
    }

    fn refresh_response(&mut self, key: CallKey, leg: LegId, rsp: Response, now: Instant) {
        if rsp.status < 200 || !self.calls.contains_key(&key) {
            return;
        }
        if (200..300).contains(&rsp.status) {
            if rsp.headers.cseq().map(|c| c.method) == Ok(Method::Invite) {
                let cseq = rsp.headers.cseq().map(|c| c.seq).unwrap_or(0);
                self.ack_in_dialog(key, leg, cseq);
            }
            if let Some(call) = self.calls.get_mut(&key)
                && let Some(t) = call.leg_mut(leg).session_timer.as_mut()
            {
                t.refreshed(now);
            }
        } else if matches!(rsp.status, 408 | 481) {
            self.end_call(key, End::session_expired(leg), now);
        }
    }
}

/// A 18x from leg B as leg A sees it: our tag and Contact, its status and reason.
fn provisional_for_a(call: &Call, rsp: &Response) -> Response {
    let mut out = Response::for_request(
        &call.a_invite,
        rsp.status,
        &rsp.reason,
        Some(&call.a.dialog.local_tag),
    );
    out.headers.push("Contact", call.a.dialog.contact.clone());
    out.headers.push("Allow", ALLOW);
    out
}

fn is_body_forwarded(rsp: &Response) -> bool {
    !rsp.body.is_empty() && rsp.headers.content_type().is_some()
}

fn copy_body(from: &Response, to: &mut Response) {
    if let Some(ct) = from.headers.get("Content-Type") {
        to.headers.push("Content-Type", ct.clone());
        to.body = from.body.clone();
    }
}
