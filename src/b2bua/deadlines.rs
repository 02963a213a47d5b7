//! Time-driven work of a call: the next Teams proxy when one stays silent, the 2xx to an INVITE
//! or re-INVITE resent to a UDP peer until its ACK, guards on calls stuck waiting, and RFC 4028
//! session refreshes and expiries.

use std::time::{Duration, Instant};

use super::call::{CallKey, LegId, Purpose, State, T2};
use super::teardown::{End, EndedBy};
use super::{Action, B2bua};
use crate::sip::Method;
use crate::sip::transport::Side;

impl B2bua {
    /// Time-driven work of one call.
    pub(super) fn on_call_timer(&mut self, key: CallKey, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.failover_at.is_some_and(|t| t <= now) {
            call.failover_at = None;
            // The proxy or trunk target said nothing at all: no CANCEL is possible (§9.1);
            // its transaction is left to end on its own and the next one gets the call.
            if call.b.side == Side::Trunk {
                self.try_next_target(key, now);
            } else if call.proxies_left.is_empty() {
                call.b_invite_tx = None;
                self.fail_a(key, 504, "Server Time-out", EndedBy::Sbc, now);
            } else {
                self.try_next_proxy(key, now);
            }
            self.schedule(key);
            return;
        }
        if let Some(r) = call.resend_2xx.as_mut() {
            if r.give_up <= now {
                call.resend_2xx = None;
                // §13.3.1.4: no ACK for the 2xx: end the dialog.
                self.end_call(key, End::no_ack(), now);
                return;
            }
            if r.next <= now {
                r.interval = (r.interval * 2).min(T2);
                r.next = now + r.interval;
                let (tx, rsp) = (r.tx, r.response.clone());
                self.respond(tx, rsp);
            }
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.guard_at.is_some_and(|t| t <= now) {
            call.guard_at = None;
            match call.state {
                State::Answered => return self.end_call(key, End::no_ack(), now),
                State::Cancelling => return self.forget(key),
                _ => {}
            }
        }
        if let Some(u) = call.a_reliable.as_mut().and_then(|r| r.unacked.as_mut()) {
            if u.give_up <= now {
                // RFC 3262 §3: no PRACK in 64 × T1: the INVITE is refused with a 5xx.
                tracing::info!(
                    call = key,
                    "no PRACK for a reliable provisional: 504 to the caller"
                );
                return self.fail_a(key, 504, "Server Time-out - no PRACK", EndedBy::Sbc, now);
            }
            if u.next <= now {
                // Doubling without T2's cap, as timer A (RFC 3262 §3).
                u.interval *= 2;
                u.next = now + u.interval;
                let (tx, rsp) = (call.a_invite_tx, u.response.clone());
                self.respond(tx, rsp);
            }
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.ring_until.is_some_and(|t| t <= now) {
            call.ring_until = None;
            self.ring_timed_out(key, now);
        }
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.reoffer_at.is_some_and(|t| t <= now) {
            call.reoffer_at = None;
            self.offer_teams_again(key);
        }
        for leg in [LegId::A, LegId::B] {
            let Some(call) = self.calls.get_mut(&key) else {
                return;
            };
            let Some(t) = call.leg(leg).session_timer else {
                continue;
            };
            if t.deadline > now {
                continue;
            }
            if t.we_refresh && call.state == State::Confirmed {
                if let Some(t) = call.leg_mut(leg).session_timer.as_mut() {
                    // Until the refresh is answered, the peer's expiry is the limit.
                    t.deadline = now + Duration::from_secs(u64::from(t.interval) / 2);
                }
                self.send_refresh(key, leg);
            } else if !t.we_refresh {
                tracing::info!(
                    call = key,
                    ?leg,
                    "session timer expired (RFC 4028): ending the call"
                );
                return self.end_call(key, End::session_expired(leg), now);
            }
        }
        self.schedule(key);
    }

    /// Timer C (`[sip] ring_timeout_s`): the INVITE of ours that rings is CANCELled. A
    /// call being set up gives its caller 480 (not 408 or 5xx, which would send Teams to
    /// another SBC for a call that has rung out); a transfer keeps its call as it was once
    /// the CANCEL ends its INVITE, and the referrer hears 480.
    fn ring_timed_out(&mut self, key: CallKey, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.is_invite_pending() {
            tracing::info!(
                call = key,
                tenant = %call.tenant,
                "no answer within ring_timeout_s: CANCEL, 480 to the caller"
            );
            return self.fail_a(key, 480, "Temporarily Unavailable", EndedBy::Sbc, now);
        }
        let Some(t) = call.transfer.as_mut() else {
            return;
        };
        if t.timed_out {
            return;
        }
        t.timed_out = true;
        tracing::info!(
            call = key,
            tenant = %call.tenant,
            "transfer target did not answer within ring_timeout_s: CANCEL"
        );
        match t.invite_tx {
            // §9.1: cancellable once it has rung; a target that said only 100 gets the
            // CANCEL too (the transaction is in Proceeding).
            Some(tx) => self.actions.push_back(Action::Cancel { tx, reason: None }),
            None => self.transfer_failed(key, "SIP/2.0 480 Temporarily Unavailable", now),
        }
    }

    /// RFC 4028 refresh of ours: UPDATE without a body where the peer allows it, else a
    /// re-INVITE with the SDP we sent last (same version: no change, §7.4 / RFC 3264 §8).
    fn send_refresh(&mut self, key: CallKey, leg: LegId) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let side = call.leg(leg).side;
        let last = match side {
            Side::Teams => call.media.last_to_teams.clone(),
            Side::Trunk => call.media.last_to_trunk.clone(),
        };
        let l = call.leg_mut(leg);
        let interval = l.session_timer.map(|t| t.interval).unwrap_or(1800);
        let mut req = if l.allows_update || last.is_none() {
            l.dialog.request(Method::Update)
        } else {
            let mut r = l.dialog.request(Method::Invite);
            if let Some(sd) = last {
                r.headers.push("Content-Type", "application/sdp");
                r.body = sd;
            }
            r
        };
        req.headers
            .push("Session-Expires", format!("{interval};refresher=uac"));
        req.headers.push("Supported", "timer");
        self.send_in_dialog(key, leg, Purpose::Refresh, req);
    }
}
