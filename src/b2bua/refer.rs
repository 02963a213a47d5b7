//! Transfers asked for with REFER, completed here (RFC 3515): the REFER is answered 202, a new
//! INVITE goes out on the referring side with the Refer-To URI and the Referred-By value as
//! received, its progress is reported in NOTIFYs on the REFER's dialog, and when it is answered
//! the new dialog takes the old one's place. The referrer then ends the old dialog with BYE,
//! which is answered without touching the call.
//!
//! - From Teams (TDR-XFR-02): the INVITE goes to the Microsoft proxy; the trunk's party hears
//!   ringback meanwhile (TDR-XFR-03).
//! - From the trunk (TDR-XFR-04): Teams has no counterpart, so the SBC re-bridges locally. The
//!   INVITE goes to the tenant's trunk (never to a host the Refer-To names), offering what the
//!   trunk's leg had; once the new party answers, the media plane turns to it, and Teams gets
//!   a re-INVITE only when what it was told changes (codecs, or a hold the old party asked
//!   for). While the new party rings, the caller hears ringback (SRTP). Nothing with Replaces
//!   ever goes to Teams. A trunk that hangs up right after its REFER is accepted (blind
//!   transfer) leaves the Teams party waiting for the new one.
//!
//! And INVITE with Replaces from Teams (TDR-INV-19).

use std::time::Instant;

use bytes::Bytes;
use rand::Rng;

use super::body::{SdpBody, sdp_of};
use super::call::{CallKey, Leg, LegId, Purpose, Transfer, TransferNote};
use super::dialog::Dialog;
use super::media::BridgeError;
use super::outbound::{trunk_contact, trunk_hop};
use super::setup::ALLOW;
use super::teardown::End;
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
        now: Instant,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        if !call.is_confirmed() || call.transfer.is_some() || call.offer_busy() {
            return self.reject(tx, &req, 491, "Request Pending");
        }
        let side = call.leg(leg).side;
        let Some(refer_to) = req
            .headers
            .get("Refer-To")
            .or_else(|| req.headers.get("r"))
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| NameAddr::parse(v, "Refer-To").ok())
        else {
            return self.reject(tx, &req, 400, "Bad Request - Refer-To");
        };
        match side {
            Side::Teams => self.transfer_toward_teams(key, leg, tx, req, refer_to),
            Side::Trunk => self.transfer_toward_trunk(key, leg, tx, req, refer_to),
        }
        let ring_until = self.ring_deadline(now);
        if let Some(call) = self.calls.get_mut(&key)
            && call.transfer.is_some()
        {
            call.ring_until = ring_until;
        }
    }

    /// TDR-XFR-02: the new party is reached through the Microsoft proxy.
    fn transfer_toward_teams(
        &mut self,
        key: CallKey,
        leg: LegId,
        tx: TxId,
        req: Request,
        refer_to: NameAddr,
    ) {
        let plane = self.media.clone();
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let mut target = refer_to.uri.clone();
        // URI headers of Refer-To: `carry_referral` decides which go into the INVITE.
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
        let offer = Bytes::from(offer.to_string());
        let product = &self.config.sbc.product;
        let invite = transfer_invite(&mut dialog, &req, uri_headers, Side::Teams, offer, product);
        let via = format!("SIP/2.0/TLS {fqdn}:{teams_port}");
        let fallback = match &dest {
            Dest::Target(t) => t.clone(),
            Dest::Lookup { .. } => call.leg(leg).fallback.clone(),
        };
        let new_leg = Leg::ours(
            Side::Teams,
            TransportKind::Tls,
            dialog,
            fallback,
            via.clone(),
        );
        call.transfer = Some(Transfer::start(
            leg,
            new_leg,
            None,
            refer_to.uri.user.clone(),
        ));
        tracing::info!(call = key, tenant = %call.tenant, "transfer requested by Teams (REFER)");
        self.accept_refer(key, leg, tx, &req, invite, via, dest);
    }

    /// TDR-XFR-04: the new party is reached through the call's trunk, whatever host the
    /// Refer-To names: a REFER must not make the SBC call out anywhere else.
    fn transfer_toward_trunk(
        &mut self,
        key: CallKey,
        leg: LegId,
        tx: TxId,
        req: Request,
        refer_to: NameAddr,
    ) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let Some(trunk) = self.config.trunk(&call.trunk) else {
            return self.reject(tx, &req, 503, "Service Unavailable - trunk not configured");
        };
        let hop = trunk_hop(&trunk.uri);
        let Some(dest) = hop.dest.clone() else {
            return self.reject(tx, &req, 503, "Service Unavailable - trunk unroutable");
        };
        // The new party sees the Teams party as the old one did.
        let Ok(local) = NameAddr::parse(&call.leg(leg).dialog.local, "From") else {
            return self.reject(tx, &req, 500, "Server Internal Error");
        };
        let (our_host, our_port) = self.trunk_sent_by(hop.transport);
        let user = local.uri.user.clone().unwrap_or_default();
        let contact = trunk_contact(&user, &our_host, our_port, hop.transport);
        let via = format!("SIP/2.0/{} {our_host}:{our_port}", hop.transport);
        let target_number = refer_to.uri.user.clone();
        let mut target = refer_to.uri;
        let uri_headers = std::mem::take(&mut target.headers);
        let call_id = self.token(24);
        let tag = self.token(10);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let offer = match call.media.trunk_transfer_offer() {
            Ok(o) => Bytes::from(o.to_string()),
            Err(e) => {
                let status = e.status();
                tracing::info!(call = key, error = %e, "transfer offer failed");
                return self.reject(tx, &req, status, &super::setup::reason_for(status));
            }
        };
        let mut dialog = Dialog::as_uac(
            call_id,
            tag,
            local,
            NameAddr::new(target.clone()),
            target,
            contact,
        );
        let product = &self.config.sbc.product;
        let invite = transfer_invite(
            &mut dialog,
            &req,
            uri_headers,
            Side::Trunk,
            offer.clone(),
            product,
        );
        let new_leg = Leg::ours(
            Side::Trunk,
            hop.transport,
            dialog,
            hop.fallback,
            via.clone(),
        );
        call.transfer = Some(Transfer::start(leg, new_leg, Some(offer), target_number));
        tracing::info!(
            call = key,
            tenant = %call.tenant,
            trunk = %call.trunk,
            "transfer requested by the trunk (REFER): re-bridging locally (TDR-XFR-04)"
        );
        self.accept_refer(key, leg, tx, &req, invite, via, dest);
    }

    /// 202 to the REFER, the first NOTIFY at once (RFC 3515 §2.4.5), then the new INVITE.
    #[allow(clippy::too_many_arguments)]
    fn accept_refer(
        &mut self,
        key: CallKey,
        leg: LegId,
        tx: TxId,
        req: &Request,
        invite: Request,
        via: String,
        dest: Dest,
    ) {
        let rsp = Response::for_request(req, 202, "Accepted", None);
        self.respond(tx, rsp);
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

    /// RFC 5589 §6: a trunk may hang up as soon as its REFER is accepted. Its BYE then ends
    /// only its dialog; the Teams party stays for the new one. True when that is the case.
    pub(super) fn referrer_left(&mut self, key: CallKey, leg: LegId) -> bool {
        let Some(t) = self.calls.get_mut(&key).and_then(|c| c.transfer.as_mut()) else {
            return false;
        };
        if t.refer_leg != leg || t.new_leg.side != Side::Trunk {
            return false;
        }
        t.referrer_gone = true;
        tracing::info!(
            call = key,
            "the trunk hung up on its REFER: the Teams party waits for the transfer"
        );
        true
    }

    /// The transfer INVITE's answers: progress as NOTIFYs; a 2xx moves the call to the new
    /// dialog; anything else leaves the call as it was.
    pub(super) fn transfer_response(
        &mut self,
        key: CallKey,
        tx: TxId,
        rsp: Response,
        now: Instant,
    ) {
        let plane = self.media.clone();
        let ring_until = self.ring_deadline(now);
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(t) = call.transfer.as_mut() else {
            // A 2xx resent after the transfer completed: the same ACK again (§13.2.2.4).
            if (200..300).contains(&rsp.status) {
                self.ack_again(key, &rsp);
            }
            return;
        };
        if t.invite_tx != Some(tx) {
            return;
        }
        let toward = t.new_leg.side;
        let frag = format!("SIP/2.0 {} {}", rsp.status, rsp.reason);
        match rsp.status {
            100 => {}
            101..=199 => {
                t.new_leg.dialog.update_from_response(&rsp);
                call.ring_until = ring_until;
                // TDR-XFR-03: the held party hears the new party ring. Its dialog is
                // confirmed, so no provisional can carry that: the media plane plays ringback
                // to it, on whichever side it is.
                match toward {
                    Side::Teams => call.media.ringback(&plane, true),
                    Side::Trunk => call.media.ringback_to_teams(&plane, true),
                }
                self.notify(key, &frag, false);
            }
            200..=299 => {
                t.new_leg.dialog.update_from_response(&rsp);
                let t = Transfer::clone(t);
                let ack = t.new_leg.dialog.ack(t.invite_cseq);
                let dest = self.dest_of(&t.new_leg);
                self.actions.push_back(Action::Ack {
                    request: ack,
                    via: t.new_leg.via.clone(),
                    dest,
                });
                let sdp = sdp_of(&rsp.headers, &rsp.body);
                match toward {
                    Side::Teams => self.teams_transfer_answered(key, sdp),
                    Side::Trunk => {
                        if !self.trunk_transfer_answered(key, &t, sdp, now) {
                            return;
                        }
                    }
                }
                self.notify(key, &frag, true);
                self.complete_transfer(key, t, &rsp);
            }
            _ if t.timed_out => {
                self.transfer_failed(key, "SIP/2.0 480 Temporarily Unavailable", now);
            }
            _ => self.transfer_failed(key, &frag, now),
        }
    }

    /// The transfer INVITE failed (a final non-2xx, a timeout, or a next hop that does not
    /// resolve): the call stays as it was, unless the referrer has hung up already.
    pub(super) fn transfer_failed(&mut self, key: CallKey, frag: &str, now: Instant) {
        let plane = self.media.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(gone) = call.transfer.as_ref().map(|t| t.referrer_gone) else {
            return;
        };
        call.media.ringback(&plane, false);
        call.media.abandon_offer();
        self.notify(key, frag, true);
        if let Some(call) = self.calls.get_mut(&key)
            && let Some(t) = call.transfer.take()
        {
            // `frag` is always "SIP/2.0 CODE REASON".
            let status = frag
                .split(' ')
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            self.note_transfer(key, t.refer_leg, t.target, status, None);
        }
        if let Some(call) = self.calls.get_mut(&key) {
            call.ring_until = None;
        }
        if gone {
            tracing::info!(
                call = key,
                outcome = frag,
                "transfer failed and the trunk has hung up: ending the call"
            );
            self.end_call(key, End::bye(Side::Trunk), now);
        }
    }

    /// TDR-XFR-02: the new Teams party's answer goes to the media plane.
    fn teams_transfer_answered(&mut self, key: CallKey, sdp: SdpBody) {
        let plane = self.media.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        // Before the new answer's media: the trunk hears the new party, not the tone.
        call.media.ringback(&plane, false);
        if let SdpBody::Sdp(sd) = sdp {
            if let Err(e) = call
                .media
                .answer(&plane, super::media::SdpSide::Teams, &sd, true)
            {
                tracing::warn!(call = key, error = %e, "transfer answer not usable");
            }
        } else {
            call.media.abandon_offer();
        }
    }

    /// TDR-XFR-04: the media plane turns to the new trunk party, and Teams hears of it when
    /// what it was told changes. An answer we cannot bridge ends the new dialog and leaves
    /// the call with the old party; returns false then.
    fn trunk_transfer_answered(
        &mut self,
        key: CallKey,
        t: &Transfer,
        sdp: SdpBody,
        now: Instant,
    ) -> bool {
        let plane = self.media.clone();
        let Some(call) = self.calls.get_mut(&key) else {
            return false;
        };
        // The caller hears the new party now, not the tone.
        call.media.ringback(&plane, false);
        let offer = t.offer.clone().unwrap_or_default();
        let rebridged = match sdp {
            SdpBody::Sdp(sd) => call.media.rebridge_trunk(&plane, offer, &sd),
            _ => Err(BridgeError::NoOffer),
        };
        let reoffer = match rebridged {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(call = key, error = %e, "transfer answer not usable: ending it");
                call.media.abandon_offer();
                let status = e.status();
                let bye = t.new_leg.dialog.clone().request(Method::Bye);
                let dest = self.dest_of(&t.new_leg);
                self.actions.push_back(Action::Request {
                    call: key,
                    leg: t.refer_leg,
                    purpose: Purpose::Bye,
                    request: bye,
                    via: t.new_leg.via.clone(),
                    dest,
                });
                let frag = format!("SIP/2.0 {status} {}", super::setup::reason_for(status));
                self.notify(key, &frag, true);
                if let Some(call) = self.calls.get_mut(&key) {
                    call.transfer = None;
                }
                if t.referrer_gone {
                    self.end_call(key, End::bye(Side::Trunk), now);
                }
                return false;
            }
        };
        if let Some(offer) = reoffer {
            self.send_teams_reoffer(key, &offer);
        }
        true
    }

    /// A re-INVITE of ours toward Teams with `offer` (TDR-XFR-04).
    fn send_teams_reoffer(&mut self, key: CallKey, offer: &crate::sdp::SessionDescription) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let teams = call.leg_on(Side::Teams);
        let mut req = call.leg_mut(teams).dialog.request(Method::Invite);
        req.headers.push("Allow", ALLOW);
        req.headers.push("Supported", "timer");
        req.headers.push("Content-Type", "application/sdp");
        req.body = Bytes::from(offer.to_string());
        self.send_in_dialog(key, teams, Purpose::Reoffer, req);
    }

    /// The glare timer of a re-INVITE toward Teams ran out: Teams is offered what the trunk
    /// side says now (unless an offer is open by then).
    pub(super) fn offer_teams_again(&mut self, key: CallKey) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        match call.media.teams_reoffer() {
            Ok(Some(offer)) => self.send_teams_reoffer(key, &offer),
            Ok(None) => {}
            Err(e) => tracing::warn!(call = key, error = %e, "no offer for Teams after glare"),
        }
    }

    /// The new dialog takes the old one's place; the old one waits for the referrer's BYE
    /// (unless it has hung up already).
    fn complete_transfer(&mut self, key: CallKey, t: Transfer, rsp: &Response) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        call.transfer = None;
        call.ring_until = None;
        let refer_leg = t.refer_leg;
        let mut new_leg = t.new_leg;
        new_leg.acked_cseq = Some(t.invite_cseq);
        new_leg.allows_update = super::setup::allows(&rsp.headers, "UPDATE");
        let toward = new_leg.side;
        let old = std::mem::replace(call.leg_mut(refer_leg), new_leg);
        let new_id = (
            call.leg(refer_leg).dialog.call_id.clone(),
            call.leg(refer_leg).dialog.local_tag.clone(),
        );
        let old_id = (old.dialog.call_id.clone(), old.dialog.local_tag.clone());
        let call_ids = (old.dialog.call_id.clone(), new_id.0.clone());
        self.dialogs.remove(&old_id);
        if !t.referrer_gone {
            self.detached.insert(old_id, key);
        }
        self.register_dialog(&new_id.0, &new_id.1, key, refer_leg);
        tracing::info!(
            call = key,
            toward = ?toward,
            "transfer completed: the call continues on the new dialog"
        );
        self.note_transfer(key, refer_leg, t.target, rsp.status, Some(call_ids));
    }

    /// Keeps a transfer's outcome for the call's record and counts it
    /// (`drawbridge_transfers_total`). `call_ids`: the replaced and the new dialog's, when it
    /// completed.
    fn note_transfer(
        &mut self,
        key: CallKey,
        refer_leg: LegId,
        target: Option<String>,
        status: u16,
        call_ids: Option<(String, String)>,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        // The new party is on the referrer's side, so its leg says who asked either way.
        let by = match call.leg(refer_leg).side {
            Side::Teams => crate::cdr::TransferredBy::Teams,
            Side::Trunk => crate::cdr::TransferredBy::Trunk,
        };
        let completed = call_ids.is_some();
        let (replaced_call_id, new_call_id) = call_ids.unzip();
        call.transfers.push(TransferNote {
            at: std::time::SystemTime::now(),
            by,
            target,
            status,
            completed,
            replaced_call_id,
            new_call_id,
        });
        self.records.transferred(&call.tenant, by, completed);
    }

    /// A retransmitted 2xx to a transfer INVITE that already took its leg's place.
    fn ack_again(&mut self, key: CallKey, rsp: &Response) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let (Ok(call_id), Ok(cseq)) = (rsp.headers.call_id(), rsp.headers.cseq()) else {
            return;
        };
        let leg = [LegId::A, LegId::B].into_iter().find(|&l| {
            let l = call.leg(l);
            l.dialog.call_id == call_id && l.acked_cseq == Some(cseq.seq)
        });
        if let Some(leg) = leg {
            self.ack_in_dialog(key, leg, cseq.seq);
        }
    }

    /// Teams' answer to our re-INVITE after a trunk's transfer (TDR-XFR-04).
    pub(super) fn reoffer_response(
        &mut self,
        key: CallKey,
        leg: LegId,
        rsp: Response,
        now: Instant,
    ) {
        let plane = self.media.clone();
        if rsp.status < 200 {
            return;
        }
        if (200..300).contains(&rsp.status) {
            let cseq = rsp.headers.cseq().map(|c| c.seq).unwrap_or(0);
            self.ack_in_dialog(key, leg, cseq);
            let Some(call) = self.calls.get_mut(&key) else {
                return;
            };
            if !call.media.offer_pending() {
                // A resent 2xx: acknowledged again above, already applied.
                return;
            }
            let applied = match sdp_of(&rsp.headers, &rsp.body) {
                SdpBody::Sdp(sd) => call.media.teams_answered_reoffer(&plane, &sd),
                _ => Err(BridgeError::NoOffer),
            };
            if let Err(e) = applied {
                call.media.abandon_offer();
                tracing::warn!(call = key, error = %e, "Teams' answer after the transfer not usable");
            }
            return;
        }
        if rsp.status == 491 {
            // RFC 3261 §14.1 glare: try again after a random wait, 2.1-4 s if we made the
            // dialog's Call-ID (leg B), else 0-2 s, in 10 ms steps. Teams' own re-INVITE is
            // taken meanwhile.
            let ten_ms: u64 = if leg == LegId::B {
                self.rng.random_range(210..=400)
            } else {
                self.rng.random_range(0..=200)
            };
            if let Some(call) = self.calls.get_mut(&key) {
                call.media.abandon_offer();
                call.reoffer_at = Some(now + std::time::Duration::from_millis(ten_ms * 10));
            }
            self.schedule(key);
            return;
        }
        if let Some(call) = self.calls.get_mut(&key) {
            call.media.abandon_offer();
        }
        tracing::warn!(
            call = key,
            status = rsp.status,
            "Teams refused the re-INVITE after the transfer: its media stays as it was"
        );
        if matches!(rsp.status, 408 | 481) {
            self.end_call(key, End::dialog_gone(leg), now);
        }
    }

    /// A NOTIFY of the transfer's progress on the REFER's dialog (RFC 3515 §2.4.4).
    fn notify(&mut self, key: CallKey, sipfrag: &str, last: bool) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        if call.transfer.as_ref().is_some_and(|t| t.referrer_gone) {
            return;
        }
        let Some(leg) = call.transfer.as_ref().map(|t| t.refer_leg) else {
            return;
        };
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

/// What of the REFER goes into the INVITE it asks for. Referred-By byte for byte
/// (TDR-XFR-02). The Refer-To URI's headers become headers of the INVITE (RFC 3515 §2.1),
/// except those that make the message itself (RFC 3261 §19.1.5: a URI header must not forge
/// the dialog, its route or its body), and Replaces toward Teams, which refuses it
/// (TDR-INV-19, TDR-XFR-04). Toward the trunk Replaces goes: it names one of the trunk's own
/// dialogs (an attended transfer inside the contact center).
/// The transfer's INVITE on its new `dialog` toward `toward`, carrying what the REFER may pass
/// on (`carry_referral`) and `offer`; `product` names us (User-Agent, and X-MS-SBC toward
/// Teams, TDR-HDR-01).
fn transfer_invite(
    dialog: &mut Dialog,
    refer: &Request,
    uri_headers: Vec<(String, String)>,
    toward: Side,
    offer: Bytes,
    product: &str,
) -> Request {
    let mut invite = dialog.request(Method::Invite);
    carry_referral(refer, uri_headers, toward, &mut invite);
    let h = &mut invite.headers;
    h.push("Allow", ALLOW);
    h.push("Supported", "timer");
    h.push("User-Agent", product.to_owned());
    if toward == Side::Teams {
        h.push("X-MS-SBC", product.to_owned());
    }
    h.push("Content-Type", "application/sdp");
    invite.body = offer;
    invite
}

fn carry_referral(
    refer: &Request,
    uri_headers: Vec<(String, String)>,
    toward: Side,
    invite: &mut Request,
) {
    for (name, value) in uri_headers {
        let replaces = name.eq_ignore_ascii_case("Replaces");
        let made_here = MADE_HERE.iter().any(|h| h.eq_ignore_ascii_case(&name));
        if made_here || (replaces && toward == Side::Teams) {
            continue;
        }
        invite.headers.push(&name, percent_decode(&value));
    }
    if let Some(rb) = refer
        .headers
        .get("Referred-By")
        .or_else(|| refer.headers.get("b"))
    {
        invite.headers.push("Referred-By", rb.clone());
    }
}

/// Headers the INVITE's own dialog, route, body or our policy set; long and compact forms.
const MADE_HERE: [&str; 30] = [
    "Via",
    "v",
    "From",
    "f",
    "To",
    "t",
    "Call-ID",
    "i",
    "CSeq",
    "Max-Forwards",
    "Contact",
    "m",
    "Route",
    "Record-Route",
    "Content-Length",
    "l",
    "Content-Type",
    "c",
    "Content-Encoding",
    "e",
    "body",
    "Allow",
    "Supported",
    "k",
    "Require",
    "Proxy-Require",
    "User-Agent",
    "X-MS-SBC",
    "Referred-By",
    "b",
];

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
