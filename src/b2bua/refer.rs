//! Transfers asked for by Teams (TDR-XFR-02): REFER is answered 202, a new INVITE goes to the
//! Microsoft proxy with the Refer-To URI and the Referred-By value as received, its progress is
//! reported in NOTIFYs on the REFER's dialog, and when it is answered the new dialog takes the
//! old one's place toward the trunk's party. Teams then ends the old dialog with BYE, which is
//! answered without touching the call. And INVITE with Replaces from Teams (TDR-INV-19).

use std::time::Instant;

use bytes::Bytes;

use super::body::{SdpBody, sdp_of};
use super::call::{CallKey, Leg, LegId, Purpose, Transfer};
use super::dialog::Dialog;
use super::setup::ALLOW;
use super::{Action, B2bua, Dest};
use crate::sip::Method;
use crate::sip::message::{NameAddr, Request, Response, Uri};
use crate::sip::transaction::TxId;
use crate::sip::transport::{Side, TransportKind};

impl B2bua {
    pub(super) fn on_refer(
        &mut self,
        key: CallKey,
        leg: LegId,
        tx: TxId,
        req: Request,
        _now: Instant,
    ) {
        let plane = self.media.clone();
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if call.leg(leg).side != Side::Teams {
            // TDR-XFR-04 would re-bridge locally; not supported yet, and said so plainly.
            return self.reject(tx, &req, 501, "Not Implemented - REFER from the trunk");
        }
        if !call.is_confirmed() || call.transfer.is_some() || call.offer_busy() {
            return self.reject(tx, &req, 491, "Request Pending");
        }
        let Some(refer_to) = req
            .headers
            .get("Refer-To")
            .or_else(|| req.headers.get("r"))
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| NameAddr::parse(v, "Refer-To").ok())
        else {
            return self.reject(tx, &req, 400, "Bad Request - Refer-To");
        };
        let mut target = refer_to.uri.clone();
        // URI headers of Refer-To become headers of the INVITE (RFC 3515 §2.1), except
        // Replaces, which Teams refuses (TDR-INV-19).
        let uri_headers = std::mem::take(&mut target.headers);
        let Some(proxy) = self.first_proxy() else {
            return self.reject(tx, &req, 503, "Service Unavailable - no Teams proxy");
        };
        let dest = self.proxy_dest(&proxy);
        let fqdn = call.tenant.clone();
        let teams_port = self.local.teams_port;
        let other = leg.other();
        let party = NameAddr::parse(&call.leg(other).dialog.remote, "To")
            .ok()
            .and_then(|n| n.uri.user)
            .unwrap_or_default();
        let call_id = self.token(24);
        let tag = self.token(10);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let offer = match call.media.transfer_offer(&plane) {
            Ok(o) => o,
            Err(e) => {
                let status = e.status();
                tracing::info!(call = key, error = %e, "transfer offer failed");
                return self.reject(tx, &req, status, &super::setup::reason_for(status));
            }
        };
        let mut from_uri = Uri::sip(crate::sip::message::Host::Domain(fqdn.clone()));
        if !party.is_empty() {
            from_uri.user = Some(party.clone());
        }
        from_uri.params.push(("user".into(), Some("phone".into())));
        let contact = if party.is_empty() {
            format!("<sip:{fqdn}:{teams_port};transport=tls>")
        } else {
            format!("<sip:{party}@{fqdn}:{teams_port};transport=tls>")
        };
        let mut dialog = Dialog::as_uac(
            call_id,
            tag,
            NameAddr::new(from_uri),
            NameAddr::new(target.clone()),
            target,
            contact,
        );
        let mut invite = dialog.request(Method::Invite);
        for (name, value) in uri_headers {
            if !name.eq_ignore_ascii_case("Replaces") {
                invite.headers.push(&name, percent_decode(&value));
            }
        }
        // TDR-XFR-02: Referred-By byte for byte.
        if let Some(rb) = req
            .headers
            .get("Referred-By")
            .or_else(|| req.headers.get("b"))
        {
            invite.headers.push("Referred-By", rb.clone());
        }
        invite.headers.push("Allow", ALLOW);
        invite.headers.push("Supported", "timer");
        invite
            .headers
            .push("User-Agent", self.config.sbc.product.clone());
        invite
            .headers
            .push("X-MS-SBC", self.config.sbc.product.clone());
        invite.headers.push("Content-Type", "application/sdp");
        invite.body = Bytes::from(offer.to_string());
        let via = format!("SIP/2.0/TLS {fqdn}:{teams_port}");
        let fallback = match &dest {
            Dest::Target(t) => t.clone(),
            Dest::Lookup { .. } => call.leg(leg).fallback.clone(),
        };
        let new_leg = Leg {
            side: Side::Teams,
            transport: TransportKind::Tls,
            dialog,
            fallback,
            via: via.clone(),
            allows_update: false,
            acked_cseq: None,
            session_timer: None,
            remote_origin: None,
        };
        let invite_cseq = new_leg.dialog.local_cseq;
        call.transfer = Some(Box::new(Transfer {
            refer_leg: leg,
            new_leg,
            invite_tx: None,
            invite_cseq,
        }));
        tracing::info!(call = key, tenant = %call.tenant, "transfer requested by Teams (REFER)");
        let rsp = Response::for_request(&req, 202, "Accepted", None);
        self.respond(tx, rsp);
        // RFC 3515 §2.4.5: the first NOTIFY follows the 202 at once.
        self.notify(key, "SIP/2.0 100 Trying", false);
        self.actions.push_back(Action::Request {
            call: key,
            leg,
            purpose: Purpose::Transfer,
            request: invite,
            via,
            dest,
        });
    }

    /// The transfer INVITE's answers: progress as NOTIFYs; a 2xx moves the call to the new
    /// dialog; anything else leaves the call as it was.
    pub(super) fn transfer_response(
        &mut self,
        key: CallKey,
        tx: TxId,
        rsp: Response,
        _now: Instant,
    ) {
        let plane = self.media.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(t) = call.transfer.as_mut() else {
            return;
        };
        if t.invite_tx != Some(tx) {
            return;
        }
        let frag = format!("SIP/2.0 {} {}", rsp.status, rsp.reason);
        match rsp.status {
            100 => {}
            101..=199 => {
                t.new_leg.dialog.update_from_response(&rsp);
                // TDR-XFR-03: the held party hears the new party ring. Its dialog is confirmed,
                // so no provisional can carry that: the media plane plays ringback to it.
                call.media.ringback(&plane, true);
                self.notify(key, &frag, false);
            }
            200..=299 => {
                t.new_leg.dialog.update_from_response(&rsp);
                let invite_cseq = t.invite_cseq;
                let ack = t.new_leg.dialog.ack(invite_cseq);
                let new_leg = t.new_leg.clone();
                let refer_leg = t.refer_leg;
                let dest = self.dest_of(&new_leg);
                self.actions.push_back(Action::Ack {
                    request: ack,
                    via: new_leg.via.clone(),
                    dest,
                });
                let Some(call) = self.calls.get_mut(&key) else {
                    return;
                };
                // Before the new answer's media: the trunk hears the new party, not the tone.
                call.media.ringback(&plane, false);
                if let SdpBody::Sdp(sd) = sdp_of(&rsp.headers, &rsp.body) {
                    if let Err(e) =
                        call.media
                            .answer(&plane, super::media::SdpSide::Teams, &sd, true)
                    {
                        tracing::warn!(call = key, error = %e, "transfer answer not usable");
                    }
                } else {
                    call.media.abandon_offer();
                }
                self.notify(key, &frag, true);
                // The new dialog takes the old one's place; the old one waits for Teams' BYE.
                let Some(call) = self.calls.get_mut(&key) else {
                    return;
                };
                call.transfer = None;
                let mut new_leg = new_leg;
                new_leg.acked_cseq = Some(invite_cseq);
                new_leg.allows_update = super::setup::allows(&rsp.headers, "UPDATE");
                let old = std::mem::replace(call.leg_mut(refer_leg), new_leg);
                let new_id = (
                    call.leg(refer_leg).dialog.call_id.clone(),
                    call.leg(refer_leg).dialog.local_tag.clone(),
                );
                let old_id = (old.dialog.call_id.clone(), old.dialog.local_tag.clone());
                self.dialogs.remove(&old_id);
                self.detached.insert(old_id, key);
                self.register_dialog(&new_id.0, &new_id.1, key, refer_leg);
                tracing::info!(
                    call = key,
                    "transfer completed: the call continues on the new Teams dialog"
                );
            }
            _ => {
                call.media.ringback(&plane, false);
                call.media.abandon_offer();
                call.transfer = None;
                self.notify(key, &frag, true);
            }
        }
    }

    /// A NOTIFY of the transfer's progress on the REFER's dialog (RFC 3515 §2.4.4).
    fn notify(&mut self, key: CallKey, sipfrag: &str, last: bool) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let leg = call
            .transfer
            .as_ref()
            .map(|t| t.refer_leg)
            .unwrap_or_else(|| call.leg_on(Side::Teams));
        let l = call.leg_mut(leg);
        let mut n = l.dialog.request(Method::Notify);
        n.headers.push("Event", "refer");
        n.headers.push(
            "Subscription-State",
            if last {
                "terminated;reason=noresource"
            } else {
                "active;expires=60"
            },
        );
        n.headers
            .push("Content-Type", "message/sipfrag;version=2.0");
        n.body = Bytes::from(format!("{sipfrag}\r\n"));
        self.send_in_dialog(key, leg, Purpose::Notify, n);
    }

    /// TDR-INV-19: an INVITE from Teams whose Replaces names the Teams dialog of one of our
    /// calls takes that dialog's place (RFC 3891 §3). Returns false when it has no Replaces.
    pub(super) fn on_replacing_invite(
        &mut self,
        tx: TxId,
        req: &Request,
        src: &super::Source,
        now: Instant,
    ) -> bool {
        let Some(replaces) = req
            .headers
            .get("Replaces")
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::to_owned)
        else {
            return false;
        };
        let plane = self.media.clone();
        let mut parts = replaces.split(';').map(str::trim);
        let call_id = parts.next().unwrap_or_default().to_owned();
        let (mut to_tag, mut from_tag) = (String::new(), String::new());
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "to-tag" => to_tag = v.trim().to_owned(),
                    "from-tag" => from_tag = v.trim().to_owned(),
                    _ => {}
                }
            }
        }
        // The to-tag is ours (RFC 3891 §3); some senders swap them, so both are tried.
        let found = self
            .find_dialog(&call_id, &to_tag)
            .or_else(|| self.find_dialog(&call_id, &from_tag));
        let Some((key, leg)) = found.filter(|(k, l)| {
            self.calls.get(k).is_some_and(|c| {
                c.is_confirmed() && c.leg(*l).side == Side::Teams && src.side == Side::Teams
            })
        }) else {
            self.reject(tx, req, 481, "Call/Transaction Does Not Exist");
            return true;
        };
        let SdpBody::Sdp(offer) = sdp_of(&req.headers, &req.body) else {
            self.reject(tx, req, 488, "Not Acceptable Here - SRTP offer required");
            return true;
        };
        let local_tag = self.token(10);
        let Some(call) = self.calls.get_mut(&key) else {
            return true;
        };
        let contact = call.leg(leg).dialog.contact.clone();
        let Some(dialog) = Dialog::as_uas(req, local_tag, contact) else {
            self.reject(tx, req, 400, "Bad Request - no Contact");
            return true;
        };
        let answer = match call.media.answer_replacing_teams(&plane, &offer) {
            Ok(a) => a,
            Err(e) => {
                let status = e.status();
                self.reject(tx, req, status, &super::setup::reason_for(status));
                return true;
            }
        };
        let mut rsp = Response::for_request(req, 200, "OK", Some(&dialog.local_tag));
        rsp.headers.push("Contact", dialog.contact.clone());
        rsp.headers.push("Allow", ALLOW);
        rsp.headers.push("Content-Type", "application/sdp");
        rsp.body = Bytes::from(answer.to_string());
        let new_leg = Leg {
            side: Side::Teams,
            transport: src.transport,
            fallback: src.reply_target(),
            via: call.leg(leg).via.clone(),
            allows_update: super::setup::allows(&req.headers, "UPDATE"),
            acked_cseq: None,
            session_timer: None,
            remote_origin: Some(super::call::origin_of(&offer)),
            dialog,
        };
        let new_id = (
            new_leg.dialog.call_id.clone(),
            new_leg.dialog.local_tag.clone(),
        );
        tracing::info!(
            call = key,
            "INVITE with Replaces: the Teams dialog is replaced (TDR-INV-19)"
        );
        self.respond(tx, rsp);
        // RFC 3891 §3: the replaced dialog ends with BYE from us.
        self.send_bye(key, leg);
        let Some(call) = self.calls.get_mut(&key) else {
            return true;
        };
        let old = std::mem::replace(call.leg_mut(leg), new_leg);
        let old_id = (old.dialog.call_id.clone(), old.dialog.local_tag.clone());
        self.dialogs.remove(&old_id);
        self.register_dialog(&new_id.0, &new_id.1, key, leg);
        let _ = now;
        true
    }

    fn first_proxy(&self) -> Option<crate::config::ProxyConfig> {
        let p = &self.config.teams.proxies;
        (0..p.len())
            .find(|&i| self.proxies_up.get(i).copied().unwrap_or(true))
            .or(if p.is_empty() { None } else { Some(0) })
            .and_then(|i| p.get(i).cloned())
    }

    /// A request on a dialog the call left behind (the leg replaced by a transfer or by
    /// INVITE/Replaces): its BYE is answered and the dialog forgotten.
    pub(super) fn on_detached_request(
        &mut self,
        tx: TxId,
        req: &Request,
        call_id: &str,
        to_tag: &str,
    ) -> bool {
        let id = (call_id.to_owned(), to_tag.to_owned());
        if !self.detached.contains_key(&id) {
            return false;
        }
        if req.method == Method::Bye {
            self.detached.remove(&id);
        }
        let rsp = Response::for_request(req, 200, "OK", None);
        self.respond(tx, rsp);
        true
    }
}

/// `%XX` escapes of a URI header value (RFC 3261 §19.1.1).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), b.get(i + 2).and_then(|c| hex(*c)))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}
