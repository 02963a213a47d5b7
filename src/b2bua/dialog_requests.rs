//! Requests inside a call's dialogs: ACK, BYE, re-INVITE/UPDATE (hold, resume, new keys,
//! session refreshes), OPTIONS, PRACK, and requests relayed as they are (INFO).

use std::time::Instant;

use bytes::Bytes;

use super::body::{SdpBody, sdp_of};
use super::call::{CallKey, LegId, Pending, Purpose, Resend, State, is_relayed, origin_of};
use super::setup::ALLOW;
use super::teardown::End;
use super::timer;
use super::{B2bua, is_session_method};
use crate::sip::Method;
use crate::sip::message::{Request, Response};
use crate::sip::transaction::TxId;
use crate::sip::transport::{Side, TransportKind};

impl B2bua {
    /// A request with a To tag. `tx` is its server transaction (None for ACK). Returns false
    /// when no call has this dialog; the endpoint then answers 481.
    pub(crate) fn on_dialog_request(
        &mut self,
        tx: Option<TxId>,
        req: Request,
        now: Instant,
    ) -> bool {
        let (Ok(call_id), Some(to_tag)) = (
            req.headers.call_id(),
            req.headers
                .to()
                .ok()
                .and_then(|t| t.tag().map(str::to_owned)),
        ) else {
            return false;
        };
        let Some((key, leg)) = self.find_dialog(call_id, &to_tag) else {
            return match tx {
                Some(tx) => {
                    let call_id = call_id.to_owned();
                    self.on_detached_request(tx, &req, &call_id, &to_tag)
                }
                None => false,
            };
        };
        let Some(tx) = tx else {
            self.on_ack(key, leg, &req, now);
            return true;
        };
        let cseq = req.headers.cseq().map(|c| c.seq).unwrap_or(0);
        let in_order = self
            .calls
            .get_mut(&key)
            .is_some_and(|c| c.leg_mut(leg).dialog.accept_remote_cseq(cseq));
        if !in_order {
            // §12.2.2: a lower CSeq than one seen is out of order.
            self.reject(tx, &req, 500, "Server Internal Error - CSeq out of order");
            return true;
        }
        match req.method {
            Method::Bye => {
                let rsp = Response::for_request(&req, 200, "OK", None);
                self.respond(tx, rsp);
                let side = self.calls.get(&key).map(|c| c.leg(leg).side);
                if let Some(side) = side
                    && !self.referrer_left(key, leg)
                {
                    let carried = self.reason_toward(key, leg.other(), &req.headers);
                    self.end_call_with_reason(key, End::bye(side), carried, now);
                }
            }
            ref m if is_session_method(m) => self.on_offer_request(key, leg, tx, req, now),
            Method::Options => {
                let mut rsp = Response::for_request(&req, 200, "OK", None);
                rsp.headers.push("Allow", ALLOW);
                rsp.headers.push("Accept", "application/sdp");
                rsp.headers.push("Supported", "timer");
                self.respond(tx, rsp);
            }
            Method::Prack => {
                let rsp = match self.prack_from_a(key, leg, &req, now) {
                    200 => Response::for_request(&req, 200, "OK", None),
                    status => {
                        Response::for_request(&req, status, "Call/Transaction Does Not Exist", None)
                    }
                };
                self.respond(tx, rsp);
            }
            ref m if is_relayed(m) => self.relay(key, leg, tx, req),
            Method::Refer => self.on_refer(key, leg, tx, req, now),
            _ => self.reject(tx, &req, 501, "Not Implemented"),
        }
        self.schedule(key);
        true
    }

    fn on_ack(&mut self, key: CallKey, leg: LegId, req: &Request, _now: Instant) {
        let plane = self.media.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call
            .resend_2xx
            .as_ref()
            .is_some_and(|r| r.acked_by(leg, req))
        {
            call.resend_2xx = None;
        }
        if leg == LegId::A && call.state == State::Answered {
            call.state = State::Confirmed;
            call.resend_2xx = None;
            call.guard_at = None;
        }
        // An answer in the ACK: to the offer we put in a 2xx (delayed offer, or a re-INVITE
        // without SDP).
        if let SdpBody::Sdp(sd) = sdp_of(&req.headers, &req.body) {
            let side = call.leg(leg).sdp_side();
            call.leg_mut(leg).remote_origin = Some(origin_of(&sd));
            if let Err(e) = call.media.late_answer(&plane, side, &sd) {
                tracing::info!(call = key, error = %e, "answer in ACK not usable");
            }
        }
    }

    /// re-INVITE or UPDATE: a refresh is answered on this leg; a changed offer goes to the
    /// other leg and its answer comes back (TDR-INV-17, TDR-INV-16, TDR-MED-08).
    fn on_offer_request(&mut self, key: CallKey, leg: LegId, tx: TxId, req: Request, now: Instant) {
        let plane = self.media.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if !call.is_confirmed() {
            // An UPDATE in an early dialog: we keep offers to the confirmed dialog.
            let mut rsp = Response::for_request(&req, 491, "Request Pending", None);
            rsp.headers.push("Retry-After", "1");
            return self.respond(tx, rsp);
        }
        if call.offer_busy() {
            // RFC 3261 §14.2, RFC 3311 §5.2: one offer/answer at a time.
            let rsp = Response::for_request(&req, 491, "Request Pending", None);
            return self.respond(tx, rsp);
        }
        let sdp = match sdp_of(&req.headers, &req.body) {
            SdpBody::Sdp(sd) => Some(*sd),
            SdpBody::None => None,
            SdpBody::Invalid => {
                let rsp =
                    Response::for_request(&req, 400, "Bad Request - SDP does not parse", None);
                return self.respond(tx, rsp);
            }
        };
        let refresh = match &sdp {
            None => true,
            Some(sd) => call.leg(leg).remote_origin == Some(origin_of(sd)),
        };
        if refresh {
            // RFC 4028 refresh (or a re-INVITE asking for our offer): answered here with the
            // SDP this leg already has, so nothing changes on the other leg.
            if let Some(t) = call.leg_mut(leg).session_timer.as_mut() {
                t.refreshed(now);
            }
            let mut rsp = Response::for_request(&req, 200, "OK", None);
            rsp.headers
                .push("Contact", call.leg(leg).dialog.contact.clone());
            rsp.headers.push("Allow", ALLOW);
            rsp.headers.push("Supported", "timer");
            if let timer::UasTimer::Use {
                interval,
                we_refresh,
            } = timer::uas_timer(&req.headers)
            {
                timer::stamp_2xx(&mut rsp, &req.headers, interval, we_refresh);
                call.leg_mut(leg).session_timer =
                    Some(timer::uas_session_timer(interval, we_refresh, now));
            }
            let last = match call.leg(leg).side {
                Side::Teams => call.media.last_to_teams.clone(),
                Side::Trunk => call.media.last_to_trunk.clone(),
            };
            if req.method == Method::Invite
                && let Some(sd) = last
            {
                rsp.headers.push("Content-Type", "application/sdp");
                rsp.body = sd;
            }
            if req.method == Method::Invite && call.leg(leg).transport == TransportKind::Udp {
                call.resend_2xx = Some(Resend::start(rsp.clone(), tx, leg, now));
                self.schedule(key);
            }
            return self.respond(tx, rsp);
        }
        let Some(sd) = sdp else {
            return;
        };
        let side = call.leg(leg).sdp_side();
        let offer = match call.media.offer(&plane, side, Some(&sd)) {
            Ok(o) => o,
            Err(e) => {
                let status = e.status();
                tracing::info!(call = key, error = %e, "re-INVITE offer refused");
                let rsp =
                    Response::for_request(&req, status, &super::setup::reason_for(status), None);
                return self.respond(tx, rsp);
            }
        };
        call.leg_mut(leg).remote_origin = Some(origin_of(&sd));
        let other = leg.other();
        let method = if req.method == Method::Update && call.leg(other).allows_update {
            Method::Update
        } else {
            Method::Invite
        };
        let mut out = call.leg_mut(other).dialog.request(method);
        out.headers.push("Allow", ALLOW);
        out.headers.push("Supported", "timer");
        out.headers.push("Content-Type", "application/sdp");
        out.body = Bytes::from(offer.to_string());
        call.pending = Some(Box::new(Pending {
            from: leg,
            server_tx: tx,
            request: req,
            client_tx: None,
        }));
        self.send_in_dialog(key, other, Purpose::Offer, out);
    }

    /// INFO and the like go to the other leg unchanged in body; the answer comes back.
    fn relay(&mut self, key: CallKey, leg: LegId, tx: TxId, req: Request) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.pending.is_some() || !call.is_confirmed() {
            let mut rsp = Response::for_request(&req, 500, "Server Internal Error - busy", None);
            rsp.headers.push("Retry-After", "1");
            return self.respond(tx, rsp);
        }
        let other = leg.other();
        let mut out = call.leg_mut(other).dialog.request(req.method.clone());
        for name in ["Content-Type", "Info-Package", "Content-Disposition"] {
            if let Some(v) = req.headers.get(name) {
                out.headers.push(name, v.clone());
            }
        }
        out.body = req.body.clone();
        call.pending = Some(Box::new(Pending {
            from: leg,
            server_tx: tx,
            request: req,
            client_tx: None,
        }));
        self.send_in_dialog(key, other, Purpose::Relay, out);
    }
}
