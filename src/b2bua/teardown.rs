//! How calls end: BYE or CANCEL on the legs still up, the final answer to a caller still
//! waiting, then the media session, the limits, the CDR and the metrics.

use std::time::Instant;

use bytes::Bytes;

use super::call::{CallKey, LegId, Purpose, State};
use super::{Action, B2bua, Dest};
use crate::sip::Method;
use crate::sip::message::{Headers, Host, Request, Response};
use crate::sip::transport::{Side, Target, TransportKind};

pub(crate) use crate::cdr::EndedBy;

/// Who ended a call from a side's point of view.
pub(crate) fn by_side(side: Side) -> EndedBy {
    match side {
        Side::Teams => EndedBy::Teams,
        Side::Trunk => EndedBy::Trunk,
    }
}

/// Why and by whom a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct End {
    pub(crate) reason: EndReason,
    pub(crate) by: EndedBy,
    /// The leg that is already gone (it sent BYE, or its dialog failed): no BYE to it.
    gone: Option<Side>,
}

/// Why a call ended, as the CDR's `end_reason` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum EndReason {
    Bye,
    Cancel,
    Rejected,
    MediaTimeout,
    Shutdown,
    NoAck,
    SessionExpired,
    DialogGone,
}

impl EndReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EndReason::Bye => "bye",
            EndReason::Cancel => "cancel",
            EndReason::Rejected => "rejected",
            EndReason::MediaTimeout => "media-timeout",
            EndReason::Shutdown => "shutdown",
            EndReason::NoAck => "no-ack",
            EndReason::SessionExpired => "session-expired",
            EndReason::DialogGone => "dialog-gone",
        }
    }
}

impl End {
    pub(crate) fn bye(side: Side) -> End {
        End {
            reason: EndReason::Bye,
            by: by_side(side),
            gone: Some(side),
        }
    }
    pub(crate) fn cancel(side: Side) -> End {
        End {
            reason: EndReason::Cancel,
            by: by_side(side),
            gone: Some(side),
        }
    }
    pub(crate) fn rejected(by: EndedBy) -> End {
        End {
            reason: EndReason::Rejected,
            by,
            gone: None,
        }
    }
    pub(crate) fn media_timeout() -> End {
        End {
            reason: EndReason::MediaTimeout,
            by: EndedBy::Sbc,
            gone: None,
        }
    }
    pub(crate) fn shutdown() -> End {
        End {
            reason: EndReason::Shutdown,
            by: EndedBy::Sbc,
            gone: None,
        }
    }
    pub(crate) fn no_ack() -> End {
        End {
            reason: EndReason::NoAck,
            by: EndedBy::Sbc,
            gone: None,
        }
    }
    pub(crate) fn session_expired(_leg: LegId) -> End {
        End {
            reason: EndReason::SessionExpired,
            by: EndedBy::Sbc,
            gone: None,
        }
    }
    pub(crate) fn dialog_gone(_leg: LegId) -> End {
        End {
            reason: EndReason::DialogGone,
            by: EndedBy::Sbc,
            gone: None,
        }
    }
}

impl B2bua {
    /// Ends a call from any state.
    pub(crate) fn end_call(&mut self, key: CallKey, end: End, now: Instant) {
        self.end_call_with_reason(key, end, None, now);
    }

    /// Ends a call from any state; a BYE we send carries `reason` (the Reason of the BYE that
    /// ended the other leg, as the trunk's policy has it).
    pub(crate) fn end_call_with_reason(
        &mut self,
        key: CallKey,
        end: End,
        reason: Option<Bytes>,
        now: Instant,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        match call.state {
            State::Calling | State::Early => {
                // Shutdown while ringing: the caller gets 503, leg B a CANCEL.
                self.fail_a(key, 503, "Service Unavailable", end.by, now);
                return;
            }
            State::Cancelling => return self.forget(key),
            State::Answered | State::Confirmed => {}
        }
        let (a_side, b_side) = (call.a.side, call.b.side);
        // A transfer's INVITE still ringing would call its party for a call that is gone
        // (§9.1: a CANCEL only after a provisional; a tagged one is what we keep).
        if let Some(t) = call.transfer.as_ref()
            && let Some(tx) = t.invite_tx
            && t.new_leg.dialog.remote_tag.is_some()
        {
            self.actions.push_back(Action::Cancel { tx, reason: None });
        }
        if end.gone != Some(a_side) {
            self.send_bye_with_reason(key, LegId::A, reason.clone());
        }
        if end.gone != Some(b_side) {
            self.send_bye_with_reason(key, LegId::B, reason);
        }
        self.finish(key, end, now);
        self.forget(key);
    }

    /// Leg A's INVITE gets a final non-2xx and the call ends (leg B is cancelled if ringing).
    pub(crate) fn fail_a(
        &mut self,
        key: CallKey,
        status: u16,
        reason: &str,
        by: EndedBy,
        now: Instant,
    ) {
        self.fail_a_with_reason(key, status, reason, None, by, now);
    }

    /// `fail_a`, the response carrying `reason_header` as its Reason (RFC 6432): the cause
    /// leg B's refusal gave, as the trunk's policy has it.
    pub(crate) fn fail_a_with_reason(
        &mut self,
        key: CallKey,
        status: u16,
        reason: &str,
        reason_header: Option<Bytes>,
        by: EndedBy,
        now: Instant,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let mut rsp = Response::for_request(
            &call.a_invite,
            status,
            reason,
            Some(&call.a.dialog.local_tag),
        );
        if let Some(value) = reason_header {
            rsp.headers.push("Reason", value);
        }
        let tx = call.a_invite_tx;
        call.final_status = Some(status);
        call.a_reliable = None;
        let ringing = matches!(call.state, State::Calling | State::Early);
        let cancel = match (ringing, call.b_invite_tx, call.provisional_seen) {
            (true, Some(tx), true) => Some(tx),
            _ => None,
        };
        self.respond(tx, rsp);
        self.finish(key, End::rejected(by), now);
        match cancel {
            Some(btx) => {
                // Keep the call until leg B's INVITE ends, to ACK/BYE a 2xx crossing the CANCEL.
                if let Some(call) = self.calls.get_mut(&key) {
                    call.state = State::Cancelling;
                    call.cancel_sent = true;
                    call.guard_at = Some(now + std::time::Duration::from_secs(32));
                }
                self.actions.push_back(Action::Cancel {
                    tx: btx,
                    reason: None,
                });
                self.schedule(key);
            }
            None => self.forget(key),
        }
    }

    /// CANCEL from leg A while leg B rings (§9.2): 487 to A, CANCEL to B once it has
    /// answered provisionally, with the Reason of A's CANCEL as the trunk's policy has it
    /// (`SIP;cause=200;text="Call completed elsewhere"` keeps a missed call off a Teams
    /// client when a contact center rang several agents).
    pub(crate) fn cancel_from_a(&mut self, key: CallKey, cancel: &Headers, now: Instant) {
        let carried = self.reason_toward(key, LegId::B, cancel);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if !call.is_invite_pending() {
            return;
        }
        let rsp = Response::for_request(
            &call.a_invite,
            487,
            "Request Terminated",
            Some(&call.a.dialog.local_tag),
        );
        let tx = call.a_invite_tx;
        let a_side = call.a.side;
        call.final_status = Some(487);
        call.a_reliable = None;
        call.state = State::Cancelling;
        call.failover_at = None;
        call.guard_at = Some(now + std::time::Duration::from_secs(32));
        if call.provisional_seen
            && let Some(btx) = call.b_invite_tx
        {
            call.cancel_sent = true;
            self.actions.push_back(Action::Cancel {
                tx: btx,
                reason: carried,
            });
        } else {
            // Sent with the CANCEL once leg B has answered provisionally.
            call.cancel_reason = carried;
        }
        self.respond(tx, rsp);
        self.finish(key, End::cancel(a_side), now);
        self.schedule(key);
    }

    pub(crate) fn send_bye(&mut self, key: CallKey, leg: LegId) {
        self.send_bye_with_reason(key, leg, None);
    }

    fn send_bye_with_reason(&mut self, key: CallKey, leg: LegId, reason: Option<Bytes>) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let mut bye = call.leg_mut(leg).dialog.request(Method::Bye);
        if let Some(value) = reason {
            bye.headers.push("Reason", value);
        }
        self.send_in_dialog(key, leg, Purpose::Bye, bye);
    }

    /// Sends `request` inside the dialog of `leg`, with our Via for that leg, to its next hop.
    pub(crate) fn send_in_dialog(
        &mut self,
        key: CallKey,
        leg: LegId,
        purpose: Purpose,
        request: Request,
    ) {
        let Some(l) = self.calls.get(&key).map(|c| c.leg(leg)) else {
            return;
        };
        let (via, dest) = (l.via.clone(), self.dest_of(l));
        self.actions.push_back(Action::Request {
            call: key,
            leg,
            purpose,
            request,
            via,
            dest,
        });
    }

    /// ACKs the 2xx to our INVITE or re-INVITE with CSeq `cseq` on `leg` (§13.2.2.4), each
    /// retransmission of it too: built from the dialog every time, so it is the same ACK.
    pub(crate) fn ack_in_dialog(&mut self, key: CallKey, leg: LegId, cseq: u32) {
        let Some(l) = self.calls.get(&key).map(|c| c.leg(leg)) else {
            return;
        };
        let (request, via, dest) = (l.dialog.ack(cseq), l.via.clone(), self.dest_of(l));
        self.actions.push_back(Action::Ack { request, via, dest });
    }

    /// Where a request inside the dialog of `l` goes: its next hop when that is an IP literal
    /// or a configured Teams proxy, otherwise the connection or address the dialog was set up
    /// over (a Contact host name we do not resolve here).
    pub(crate) fn dest_of(&self, l: &super::call::Leg) -> Dest {
        let uri = l.dialog.next_hop();
        let transport = uri
            .param("transport")
            .flatten()
            .map(|t| match t.to_ascii_lowercase().as_str() {
                "tls" => TransportKind::Tls,
                "tcp" => TransportKind::Tcp,
                _ => TransportKind::Udp,
            })
            .unwrap_or(l.transport);
        // The Teams side is TLS only (TDR-SIG-01), whatever a Contact says.
        let transport = if l.side == Side::Teams {
            TransportKind::Tls
        } else {
            transport
        };
        let default_port = if transport == TransportKind::Tls {
            5061
        } else {
            5060
        };
        let ip = match &uri.host {
            Host::V4(a) => Some(std::net::IpAddr::V4(*a)),
            Host::V6(a) => Some(std::net::IpAddr::V6(*a)),
            Host::Domain(name) => {
                if l.side == Side::Teams
                    && let Some(p) = self
                        .config
                        .teams
                        .proxies
                        .iter()
                        .find(|p| p.host.eq_ignore_ascii_case(name))
                {
                    return self.proxy_dest(p);
                }
                None
            }
        };
        match ip {
            Some(ip) => Dest::Target(Target {
                transport,
                addr: std::net::SocketAddr::new(ip, uri.port.unwrap_or(default_port)),
                conn: None,
                // Toward Teams the certificate must still name the peer we talked to.
                server_name: l.fallback.server_name.clone(),
                side: l.side,
            }),
            None => Dest::Target(l.fallback.clone()),
        }
    }

    /// The bookkeeping of an ended call, once: limits, media, CDR and metrics.
    fn finish(&mut self, key: CallKey, end: End, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.ended.is_some() {
            return;
        }
        call.ended = Some(end);
        call.resend_2xx = None;
        call.failover_at = None;
        let tenant = call.tenant.clone();
        self.limits.release(&tenant);
        let stats = self.media.destroy_session(key).ok();
        if let Some(call) = self.calls.get(&key) {
            self.records.ended(call, end, now, stats);
        }
    }

    /// Drops every trace of the call.
    pub(crate) fn forget(&mut self, key: CallKey) {
        let Some(call) = self.calls.remove(&key) else {
            return;
        };
        self.dialogs.remove(&(
            call.a.dialog.call_id.clone(),
            call.a.dialog.local_tag.clone(),
        ));
        self.dialogs.remove(&(
            call.b.dialog.call_id.clone(),
            call.b.dialog.local_tag.clone(),
        ));
        self.invites.remove(&call.a_invite_tx);
        // A referrer that never sent its BYE leaves no entry behind the call.
        if !self.detached.is_empty() {
            self.detached.retain(|_, k| *k != key);
        }
        if call.ended.is_none() {
            // A call dropped without finish() (stuck in Cancelling past its guard) still
            // frees its tenant slot and media.
            self.limits.release(&call.tenant);
            let _ = self.media.destroy_session(key);
        }
    }
}

impl B2bua {
    /// The Reason to carry onto a message for `toward`'s side of call `key`, from the headers
    /// of the one that arrived on the other leg: the call's trunk policy decides (pass, strip,
    /// Q.850 rewrite toward the trunk, TDR-INV-07).
    pub(crate) fn reason_toward(
        &self,
        key: CallKey,
        toward: LegId,
        incoming: &Headers,
    ) -> Option<Bytes> {
        let call = self.calls.get(&key)?;
        let policy = self.policies.get(&call.trunk)?;
        let side = match call.leg(toward).side {
            Side::Teams => crate::trunk_policy::Toward::Teams,
            Side::Trunk => crate::trunk_policy::Toward::Trunk,
        };
        policy.carry_reason(side, incoming)
    }
}
