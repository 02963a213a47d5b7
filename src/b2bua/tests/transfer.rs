//! Transfers: REFER from Teams (TDR-XFR-02), REFER from the trunk (TDR-XFR-04) and INVITE with
//! Replaces (TDR-INV-19).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::sdp::Direction;
use crate::sip::transport::TransportKind;

#[test]
fn refer_from_teams_invites_the_target_rings_back_to_the_trunk_and_moves_the_call_on_200_tdr_xfr_02_03()
 {
    let mut h = Harness::new("");
    let (call, _, ok) = confirmed_call(&mut h);
    let tag = ok.headers.to().unwrap().tag().unwrap().to_owned();
    let refer = request(&format!(
        "REFER sip:customer1.sbc.example.test:5061;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5062;branch=z9hG4bKref1\r\n\
         From: <sip:+15550199@sip.pstnhub.microsoft.com>;tag=ms1\r\nTo: <sip:+15550100@x>;tag={tag}\r\n\
         Call-ID: teams-call-1@pstnhub\r\nCSeq: 3 REFER\r\nContact: <sip:+15550199@127.0.0.1:5062;transport=tls>\r\n\
         Refer-To: <sip:sip.pstnhub.microsoft.com:5061;transport=tls;x-m=8:orgid:abc>\r\n\
         Referred-By: <sip:sip.pstnhub.microsoft.com:5061;x-m=8:orgid:abc;x-t=t1;x-ti=corr;x-tt=enc>\r\nContent-Length: 0\r\n\r\n"
    ));
    let tx = h.server_tx();
    assert!(h.b2bua.on_dialog_request(Some(tx), refer, h.now));
    let acts = h.run();
    assert!(
        acts.iter()
            .any(|(a, _)| matches!(a, Action::Respond { response, .. } if response.status == 202))
    );
    let notify = sent(&acts, Purpose::Notify).expect("NOTIFY 100").1.clone();
    assert_eq!(notify.body.as_ref(), b"SIP/2.0 100 Trying\r\n");
    let (invite, itx) = acts
        .iter()
        .find_map(|(a, t)| match a {
            Action::Request {
                request,
                purpose: Purpose::Transfer,
                ..
            } => Some((request.clone(), t.unwrap())),
            _ => None,
        })
        .expect("transfer INVITE");
    assert_eq!(
        invite.uri.to_string(),
        "sip:sip.pstnhub.microsoft.com:5061;transport=tls;x-m=8:orgid:abc"
    );
    let raw = text(&invite.to_bytes());
    assert!(raw.contains("Referred-By: <sip:sip.pstnhub.microsoft.com:5061;x-m=8:orgid:abc;x-t=t1;x-ti=corr;x-tt=enc>\r\n"), "{raw}");
    assert!(
        raw.contains("From: <sip:+15550100@customer1.sbc.example.test;user=phone>;tag="),
        "{raw}"
    );
    assert!(!raw.contains("Replaces"), "TDR-INV-19: {raw}");
    let sdp = SessionDescription::from_bytes(&invite.body).unwrap();
    assert_eq!(sdp.media[0].proto, "RTP/SAVP");
    // TDR-XFR-03: while the new party rings, the media plane plays ringback to the trunk
    // (in PCMU, the trunk's codec), and stops once the transfer is answered.
    h.b2bua.on_response(
        call,
        LegId::A,
        Purpose::Transfer,
        itx,
        response_to(&invite, 180, "new1", None),
        h.now,
    );
    let acts = h.run();
    assert!(acts.iter().any(|(a, _)| matches!(
        a,
        Action::Request { request, purpose: Purpose::Notify, .. }
            if request.body.starts_with(b"SIP/2.0 180 ")
    )));
    ringback_plays(&h);
    // The new party answers; the call continues on the new dialog.
    let answer = TEAMS_SDP
        .replace("o=- 1 1", "o=- 9 1")
        .replace("41000", "41010");
    h.b2bua.on_response(
        call,
        LegId::A,
        Purpose::Transfer,
        itx,
        response_to(&invite, 200, "new1", Some(&answer)),
        h.now,
    );
    let acts = h.run();
    assert!(acts.iter().any(|(a, _)| matches!(a, Action::Ack { .. })));
    let last = acts
        .iter()
        .find_map(|(a, _)| match a {
            Action::Request {
                request,
                purpose: Purpose::Notify,
                ..
            } => Some(request.clone()),
            _ => None,
        })
        .unwrap();
    assert!(last.body.starts_with(b"SIP/2.0 200 "), "{last:?}");
    assert!(text(&last.to_bytes()).contains("Subscription-State: terminated"));
    ringback_stops(&h);
    // TDR-XFR-02 step 4: Teams' BYE on the old dialog does not end the call.
    let bye = teams_in_dialog("BYE", 4, "z9hG4bKbye2", &tag);
    let btx = h.server_tx();
    assert!(h.b2bua.on_dialog_request(Some(btx), bye, h.now));
    let acts = h.run();
    assert!(
        matches!(&acts[..], [(Action::Respond { response, .. }, _)] if response.status == 200),
        "{acts:?}"
    );
    assert_eq!(h.b2bua.active_calls(), 1);
}

#[test]
fn invite_with_replaces_from_teams_takes_over_the_teams_dialog_tdr_inv_19() {
    let mut h = Harness::new("");
    let (call, b_invite, ok) = confirmed_call(&mut h);
    let our_tag = ok.headers.to().unwrap().tag().unwrap().to_owned();
    let head = format!(
        "INVITE sip:+15550100@customer1.sbc.example.test:5061;transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:5062;branch=z9hG4bKrep1\r\nMax-Forwards: 70\r\n\
         From: <sip:+15550177@sip.pstnhub.microsoft.com>;tag=q1\r\nTo: <sip:+15550100@customer1.sbc.example.test>\r\n\
         Call-ID: queue-agent-2@pstnhub\r\nCSeq: 1 INVITE\r\nContact: <sip:127.0.0.1:5062;transport=tls>\r\n\
         Replaces: teams-call-1@pstnhub;to-tag={our_tag};from-tag=ms1\r\n"
    );
    let offer = TEAMS_SDP
        .replace("o=- 1 1", "o=- 5 1")
        .replace("41000", "41020");
    let tx = h.server_tx();
    h.b2bua.on_invite(
        tx,
        request(&with_body(head, &offer)),
        &teams_source(),
        h.now,
    );
    let acts = h.run();
    let ok2 = acts
        .iter()
        .find_map(|(a, _)| match a {
            Action::Respond { tx: t, response } if *t == tx => Some(response.clone()),
            _ => None,
        })
        .expect("answer to the replacing INVITE");
    assert_eq!(ok2.status, 200);
    let sdp = SessionDescription::from_bytes(&ok2.body).unwrap();
    let first = SessionDescription::from_bytes(&ok.body).unwrap();
    assert_eq!(sdp.media[0].port, first.media[0].port, "TDR-MED-08");
    // The replaced dialog gets BYE; nothing reaches the trunk.
    let byes: Vec<_> = acts
        .iter()
        .filter_map(|(a, _)| match a {
            Action::Request { request, leg, .. } => Some((
                request.method.clone(),
                *leg,
                request.headers.call_id().unwrap().to_owned(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        byes,
        vec![(Method::Bye, LegId::A, "teams-call-1@pstnhub".to_owned())]
    );
    assert_eq!(h.b2bua.active_calls(), 1);
    // A BYE on the new dialog now ends the call and reaches the trunk.
    let new_tag = ok2.headers.to().unwrap().tag().unwrap().to_owned();
    let bye = request(&format!(
        "BYE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5062;branch=z9hG4bKbye3\r\n\
         From: <sip:+15550177@sip.pstnhub.microsoft.com>;tag=q1\r\nTo: <sip:+15550100@x>;tag={new_tag}\r\n\
         Call-ID: queue-agent-2@pstnhub\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    ));
    let btx = h.server_tx();
    assert!(h.b2bua.on_dialog_request(Some(btx), bye, h.now));
    let acts = h.run();
    assert!(acts.iter().any(|(a, _)| matches!(a, Action::Request { request, leg: LegId::B, .. } if request.method == Method::Bye && request.headers.call_id().unwrap() == b_invite.headers.call_id().unwrap())));
    assert_eq!(h.b2bua.active_calls(), 0);
    let _ = call;
}

#[test]
fn replaces_naming_no_dialog_gets_481() {
    let mut h = Harness::new("");
    let head = "INVITE sip:+15550100@customer1.sbc.example.test:5061;transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:5062;branch=z9hG4bKrep2\r\nMax-Forwards: 70\r\n\
         From: <sip:+15550177@sip.pstnhub.microsoft.com>;tag=q1\r\nTo: <sip:+15550100@customer1.sbc.example.test>\r\n\
         Call-ID: queue-agent-3@pstnhub\r\nCSeq: 1 INVITE\r\nContact: <sip:127.0.0.1:5062;transport=tls>\r\n\
         Replaces: nothing@x;to-tag=a;from-tag=b\r\n"
        .to_owned();
    let tx = h.server_tx();
    h.b2bua.on_invite(
        tx,
        request(&with_body(head, TEAMS_SDP)),
        &teams_source(),
        h.now,
    );
    let acts = h.actions();
    assert!(
        matches!(&acts[..], [Action::Respond { response, .. }] if response.status == 481),
        "{acts:?}"
    );
}

fn ringback_sent(h: &Harness) -> u64 {
    h.b2bua.media.counters().ringback_packets
}

/// Waits for the media plane to send ringback (at most 3 s: the first packet is due at the
/// worker's next turn).
fn ringback_plays(h: &Harness) {
    let before = ringback_sent(h);
    for _ in 0..150 {
        if ringback_sent(h) >= before + 5 {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no ringback packets sent while ringing");
}

/// Waits for ringback to stop: the worker applies the stop at its next 20 ms turn, and a
/// packet may be on its way.
fn ringback_stops(h: &Harness) {
    for _ in 0..20 {
        let before = ringback_sent(h);
        std::thread::sleep(Duration::from_millis(100));
        if ringback_sent(h) == before {
            return;
        }
    }
    panic!("ringback goes on after the transfer was answered");
}

/// A request from the trunk's party inside the trunk dialog of the call `b_invite` set up.
fn trunk_in_dialog(b_invite: &Request, method: &str, cseq: u32, extra: &str) -> Request {
    let our_tag = b_invite.headers.from().unwrap().tag().unwrap().to_owned();
    request(&format!(
        "{method} sip:x@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK{method}{cseq}\r\n\
         From: <sip:+15550100@127.0.0.1:5080>;tag=cc1\r\nTo: <sip:+15550199@127.0.0.1>;tag={our_tag}\r\n\
         Call-ID: {}\r\nCSeq: {cseq} {method}\r\nContact: <sip:cc@127.0.0.1:5080>\r\n{extra}Content-Length: 0\r\n\r\n",
        b_invite.headers.call_id().unwrap()
    ))
}

/// The trunk's REFER to `refer_to`, and what the B2BUA did with it.
pub(super) fn trunk_refers(
    h: &mut Harness,
    b_invite: &Request,
    refer_to: &str,
) -> (TxId, Vec<(Action, Option<TxId>)>) {
    let refer = trunk_in_dialog(
        b_invite,
        "REFER",
        3,
        &format!("Refer-To: {refer_to}\r\nReferred-By: <sip:agent7@cc.example.test>\r\n"),
    );
    let tx = h.server_tx();
    assert!(h.b2bua.on_dialog_request(Some(tx), refer, h.now));
    (tx, h.run())
}

/// The transfer INVITE among `acts`, with its transaction.
pub(super) fn transfer_invite(acts: &[(Action, Option<TxId>)]) -> (Request, Dest, TxId) {
    let (_, invite, dest, tx) = sent(acts, Purpose::Transfer).expect("transfer INVITE");
    (invite.clone(), dest.clone(), tx.unwrap())
}

/// The body of each NOTIFY among `acts`, with the Call-ID it went on.
pub(super) fn notifies(acts: &[(Action, Option<TxId>)]) -> Vec<(String, String)> {
    acts.iter()
        .filter_map(|(a, _)| match a {
            Action::Request {
                request,
                purpose: Purpose::Notify,
                ..
            } => Some((
                text(&request.body),
                request.headers.call_id().unwrap().to_owned(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn refer_from_the_trunk_calls_the_target_through_the_trunk_rings_back_to_teams_and_moves_the_call_on_200_tdr_xfr_04()
 {
    let mut h = Harness::new("");
    let (call, b_invite, _) = confirmed_call(&mut h);
    let old_call_id = b_invite.headers.call_id().unwrap().to_owned();
    let (refer_tx, acts) = trunk_refers(
        &mut h,
        &b_invite,
        "<sip:+15550142@cc.example.test?Replaces=c2%40cc%3Bto-tag%3D7%3Bfrom-tag%3D8&Call-ID=forged&X-Queue=sales>",
    );
    let answered: Vec<u16> = acts
        .iter()
        .filter_map(|(a, _)| match a {
            Action::Respond { tx, response } if *tx == refer_tx => Some(response.status),
            _ => None,
        })
        .collect();
    assert_eq!(answered, [202]);
    assert_eq!(
        notifies(&acts),
        [("SIP/2.0 100 Trying\r\n".to_owned(), old_call_id.clone())]
    );
    let (invite, dest, itx) = transfer_invite(&acts);
    // To the configured trunk (127.0.0.1:5080 over UDP), whatever host the Refer-To names.
    match &dest {
        Dest::Target(t) => {
            assert_eq!(t.addr, "127.0.0.1:5080".parse().unwrap());
            assert_eq!(t.transport, TransportKind::Udp);
        }
        other => panic!("transfer INVITE not sent to the trunk: {other:?}"),
    }
    assert_eq!(invite.uri.to_string(), "sip:+15550142@cc.example.test");
    let raw = text(&invite.to_bytes());
    // The new party sees the Teams caller as the old one did.
    assert!(
        raw.contains("From: \"Teams\" <sip:+15550199@127.0.0.1>;tag="),
        "{raw}"
    );
    assert!(
        raw.contains("Referred-By: <sip:agent7@cc.example.test>\r\n"),
        "{raw}"
    );
    // An attended transfer inside the contact center: Replaces names the trunk's own dialog.
    assert!(
        raw.contains("Replaces: c2@cc;to-tag=7;from-tag=8\r\n"),
        "{raw}"
    );
    assert!(raw.contains("X-Queue: sales\r\n"), "{raw}");
    assert!(
        !raw.contains("forged"),
        "a URI header must not set Call-ID: {raw}"
    );
    assert_ne!(invite.headers.call_id().unwrap(), old_call_id);
    let offer = SessionDescription::from_bytes(&invite.body).unwrap();
    let first = SessionDescription::from_bytes(&b_invite.body).unwrap();
    assert_eq!(offer.media.len(), 1);
    assert_eq!(offer.media[0].proto, "RTP/AVP");
    assert_eq!(offer.media[0].port, first.media[0].port, "TDR-MED-08");
    assert_eq!(
        offer.effective_direction(&offer.media[0]),
        Direction::SendRecv
    );

    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Transfer,
        itx,
        response_to(&invite, 180, "new1", None),
        h.now,
    );
    let acts = h.run();
    assert_eq!(
        notifies(&acts),
        [("SIP/2.0 180 X\r\n".to_owned(), old_call_id.clone())]
    );
    // The Teams caller hears the target ring (SRTP toward Teams' address).
    ringback_plays(&h);
    let answer = TRUNK_SDP
        .replace("o=cc 7 7", "o=cc2 3 3")
        .replace("42000", "42010");
    let ok = response_to(&invite, 200, "new1", Some(&answer));
    h.b2bua
        .on_response(call, LegId::B, Purpose::Transfer, itx, ok.clone(), h.now);
    let acts = h.run();
    let acks: Vec<_> = acts
        .iter()
        .filter_map(|(a, _)| match a {
            Action::Ack { request, .. } => Some(request.headers.call_id().unwrap().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(acks, [invite.headers.call_id().unwrap().to_owned()]);
    let last = notifies(&acts);
    assert_eq!(
        last,
        [("SIP/2.0 200 X\r\n".to_owned(), old_call_id.clone())]
    );
    ringback_stops(&h);
    // Same codecs, nobody on hold: Teams is not disturbed.
    assert!(sent(&acts, Purpose::Reoffer).is_none(), "{acts:?}");
    let media = &h.b2bua.calls[&call].media;
    let said = SessionDescription::from_bytes(media.last_from_trunk.as_ref().unwrap()).unwrap();
    assert_eq!(
        said.media[0].port, 42010,
        "the media plane follows the new party"
    );
    // The call's record will say who it went on with, and both trunk dialogs.
    let notes = &h.b2bua.calls[&call].transfers;
    assert_eq!(notes.len(), 1);
    let n = &notes[0];
    assert_eq!(
        (n.by, n.target.as_deref(), n.status, n.completed),
        (
            crate::cdr::TransferredBy::Trunk,
            Some("+15550142"),
            200,
            true
        )
    );
    assert_eq!(n.replaced_call_id.as_deref(), Some(old_call_id.as_str()));
    assert_eq!(n.new_call_id.as_deref(), invite.headers.call_id().ok());

    // A resent 200 gets the same ACK again.
    h.b2bua
        .on_response(call, LegId::B, Purpose::Transfer, itx, ok, h.now);
    let acts = h.run();
    assert!(
        matches!(&acts[..], [(Action::Ack { request, .. }, _)]
            if request.headers.call_id().unwrap() == invite.headers.call_id().unwrap()),
        "{acts:?}"
    );

    // The referrer's BYE on the old dialog leaves the call up.
    let bye = trunk_in_dialog(&b_invite, "BYE", 4, "");
    let btx = h.server_tx();
    assert!(h.b2bua.on_dialog_request(Some(btx), bye, h.now));
    let acts = h.run();
    assert!(
        matches!(&acts[..], [(Action::Respond { response, .. }, _)] if response.status == 200),
        "{acts:?}"
    );
    assert_eq!(h.b2bua.active_calls(), 1);

    // Teams hangs up: the BYE goes to the new party.
    let teams_tag = h.b2bua.calls[&call].a.dialog.local_tag.clone();
    let bye = teams_in_dialog("BYE", 5, "z9hG4bKbye5", &teams_tag);
    let btx = h.server_tx();
    assert!(h.b2bua.on_dialog_request(Some(btx), bye, h.now));
    let acts = h.run();
    let (_, to_trunk, _, _) = sent(&acts, Purpose::Bye).expect("BYE toward the trunk");
    assert_eq!(
        to_trunk.headers.call_id().unwrap(),
        invite.headers.call_id().unwrap()
    );
    assert_eq!(h.b2bua.active_calls(), 0);
}

#[test]
fn after_a_trunk_hold_the_transfer_resumes_teams_with_a_re_invite_retried_after_glare_tdr_xfr_04_inv_16()
 {
    let mut h = Harness::new("");
    let (call, b_invite, ok) = confirmed_call(&mut h);
    let key_before = SessionDescription::from_bytes(&ok.body).unwrap().media[0]
        .crypto_lines()
        .concat();
    // The agent puts the caller on hold (Teams is told a=inactive), then transfers.
    let tx = h.server_tx();
    assert!(
        h.b2bua
            .on_dialog_request(Some(tx), trunk_hold_reinvite(&b_invite), h.now)
    );
    let (reinvite, re_tx) = offer_toward_teams(&mut h);
    teams_answers_hold(&mut h, call, &reinvite, re_tx);
    let ack = trunk_in_dialog(&b_invite, "ACK", 2, "");
    assert!(h.b2bua.on_dialog_request(None, ack, h.now));
    let (_, acts) = trunk_refers(&mut h, &b_invite, "<sip:+15550142@cc.example.test>");
    let (invite, _, itx) = transfer_invite(&acts);
    let offer = SessionDescription::from_bytes(&invite.body).unwrap();
    assert_eq!(
        offer.effective_direction(&offer.media[0]),
        Direction::SendRecv,
        "the new party is not on hold"
    );
    let answer = TRUNK_SDP
        .replace("o=cc 7 7", "o=cc2 3 3")
        .replace("42000", "42010");
    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Transfer,
        itx,
        response_to(&invite, 200, "new1", Some(&answer)),
        h.now,
    );
    let acts = h.run();
    let (_, reoffer, _, rtx) = sent(&acts, Purpose::Reoffer).expect("re-INVITE toward Teams");
    assert_eq!(reoffer.method, Method::Invite);
    assert_eq!(reoffer.headers.call_id().unwrap(), "teams-call-1@pstnhub");
    let sdp = SessionDescription::from_bytes(&reoffer.body).unwrap();
    assert_eq!(sdp.effective_direction(&sdp.media[0]), Direction::SendRecv);
    assert_eq!(
        sdp.media[0].crypto_lines().concat(),
        key_before,
        "the key toward Teams stays"
    );
    let (first, first_tx) = (reoffer.clone(), rtx.unwrap());
    // Glare: Teams sent a re-INVITE of its own at the same time and answers ours 491. We
    // wait (RFC 3261 §14.1: 0-2 s, Teams made this dialog's Call-ID), taking offers meanwhile,
    // then offer again what Teams still has to hear.
    h.b2bua.on_response(
        call,
        LegId::A,
        Purpose::Reoffer,
        first_tx,
        response_to(&first, 491, "ms1", None),
        h.now,
    );
    assert!(sent(&h.run(), Purpose::Reoffer).is_none(), "not at once");
    assert!(!h.b2bua.calls[&call].offer_busy());
    h.b2bua.handle_timeout(h.now + Duration::from_millis(2010));
    let acts = h.run();
    let (_, reoffer, _, rtx) = sent(&acts, Purpose::Reoffer).expect("offered again after 491");
    let again = SessionDescription::from_bytes(&reoffer.body).unwrap();
    assert_eq!(
        again.effective_direction(&again.media[0]),
        Direction::SendRecv
    );
    assert!(reoffer.headers.cseq().unwrap().seq > first.headers.cseq().unwrap().seq);
    let reoffer = reoffer.clone();
    let rtx = rtx.unwrap();
    // Teams answers: ACKed, and the call takes offers again.
    let teams_answer = TEAMS_SDP.replace("o=- 1 1", "o=- 1 3");
    let mut rsp = response_to(&reoffer, 200, "ms1", Some(&teams_answer));
    rsp.headers
        .set("Contact", "<sip:127.0.0.1:5062;transport=tls>");
    h.b2bua
        .on_response(call, LegId::A, Purpose::Reoffer, rtx, rsp, h.now);
    let acts = h.run();
    assert!(
        acts.iter()
            .any(|(a, _)| matches!(a, Action::Ack { request, .. }
            if request.headers.call_id().unwrap() == "teams-call-1@pstnhub")),
        "{acts:?}"
    );
    assert!(!h.b2bua.calls[&call].offer_busy());
}

#[test]
fn a_trunk_that_hangs_up_after_its_refer_leaves_teams_waiting_and_a_failed_transfer_ends_the_call_tdr_xfr_04()
 {
    let mut h = Harness::new("");
    let (call, b_invite, _) = confirmed_call(&mut h);
    let (_, acts) = trunk_refers(&mut h, &b_invite, "<sip:+15550142@cc.example.test>");
    let (invite, _, itx) = transfer_invite(&acts);
    // Blind transfer (RFC 5589 §6): the agent hangs up at once.
    let bye = trunk_in_dialog(&b_invite, "BYE", 4, "");
    let btx = h.server_tx();
    assert!(h.b2bua.on_dialog_request(Some(btx), bye, h.now));
    let acts = h.run();
    assert!(
        matches!(&acts[..], [(Action::Respond { response, .. }, _)] if response.status == 200),
        "the Teams party is not hung up on: {acts:?}"
    );
    assert_eq!(h.b2bua.active_calls(), 1);
    // The trunk side is silent now; the target may ring past the media timeout.
    h.b2bua.on_media_event(
        MediaEvent::Timeout {
            id: call,
            leg: crate::media::Leg::Trunk,
            silent_for: Duration::from_secs(60),
        },
        h.now,
    );
    assert_eq!(
        h.b2bua.active_calls(),
        1,
        "ended for silence while the target rings"
    );
    // The target is busy: nobody is left for the Teams party.
    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Transfer,
        itx,
        response_to(&invite, 486, "new1", None),
        h.now,
    );
    let acts = h.run();
    assert!(
        notifies(&acts).is_empty(),
        "no NOTIFY to a dialog that is gone"
    );
    let byes: Vec<_> = acts
        .iter()
        .filter_map(|(a, _)| match a {
            Action::Request {
                request,
                purpose: Purpose::Bye,
                ..
            } => Some(request.headers.call_id().unwrap().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(byes, ["teams-call-1@pstnhub"]);
    assert_eq!(h.b2bua.active_calls(), 0);
}

#[test]
fn a_failed_trunk_transfer_leaves_the_call_with_the_old_party_and_teams_hanging_up_cancels_a_ringing_one_tdr_xfr_04()
 {
    let mut h = Harness::new("");
    let (call, b_invite, _) = confirmed_call(&mut h);
    let (_, acts) = trunk_refers(&mut h, &b_invite, "<sip:+15550142@cc.example.test>");
    let (invite, _, itx) = transfer_invite(&acts);
    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Transfer,
        itx,
        response_to(&invite, 480, "new1", None),
        h.now,
    );
    let acts = h.run();
    let old_call_id = b_invite.headers.call_id().unwrap().to_owned();
    assert_eq!(
        notifies(&acts),
        [("SIP/2.0 480 X\r\n".to_owned(), old_call_id)]
    );
    assert!(sent(&acts, Purpose::Bye).is_none());
    assert_eq!(h.b2bua.active_calls(), 1);
    assert!(!h.b2bua.calls[&call].offer_busy(), "offers are taken again");
    let n = &h.b2bua.calls[&call].transfers[0];
    assert_eq!(
        (n.status, n.completed, n.new_call_id.as_deref()),
        (480, false, None)
    );

    // A second transfer rings; Teams hangs up: the ringing INVITE is cancelled.
    let refer = trunk_in_dialog(
        &b_invite,
        "REFER",
        5,
        "Refer-To: <sip:+15550143@cc.example.test>\r\n",
    );
    let tx = h.server_tx();
    assert!(h.b2bua.on_dialog_request(Some(tx), refer, h.now));
    let (invite, _, itx) = transfer_invite(&h.run());
    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Transfer,
        itx,
        response_to(&invite, 180, "new2", None),
        h.now,
    );
    h.run();
    let teams_tag = h.b2bua.calls[&call].a.dialog.local_tag.clone();
    let bye = teams_in_dialog("BYE", 5, "z9hG4bKbye5", &teams_tag);
    let btx = h.server_tx();
    assert!(h.b2bua.on_dialog_request(Some(btx), bye, h.now));
    let acts = h.run();
    assert!(
        acts.iter()
            .any(|(a, _)| matches!(a, Action::Cancel { tx, .. } if *tx == itx)),
        "{acts:?}"
    );
    assert_eq!(h.b2bua.active_calls(), 0);
}

#[test]
fn a_trunk_transfer_target_answering_an_unbridgeable_codec_is_hung_up_and_the_caller_stays_tdr_xfr_04()
 {
    let mut h = Harness::new("");
    let (call, b_invite, _) = confirmed_call(&mut h);
    let (_, acts) = trunk_refers(&mut h, &b_invite, "<sip:+15550142@cc.example.test>");
    let (invite, _, itx) = transfer_invite(&acts);
    // Only a codec the trunk's policy (PCMU, PCMA, G722, G729) does not allow.
    let answer = "v=0\r\no=cc2 3 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 42010 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n";
    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Transfer,
        itx,
        response_to(&invite, 200, "new1", Some(answer)),
        h.now,
    );
    let acts = h.run();
    assert!(acts.iter().any(|(a, _)| matches!(a, Action::Ack { .. })));
    let (_, bye, _, _) = sent(&acts, Purpose::Bye).expect("the target is hung up on");
    assert_eq!(
        bye.headers.call_id().unwrap(),
        invite.headers.call_id().unwrap()
    );
    let old_call_id = b_invite.headers.call_id().unwrap().to_owned();
    assert_eq!(
        notifies(&acts),
        [(
            "SIP/2.0 488 Not Acceptable Here\r\n".to_owned(),
            old_call_id
        )]
    );
    // The media plane still sends to the agent, and the call takes offers again.
    let media = &h.b2bua.calls[&call].media;
    let said = SessionDescription::from_bytes(media.last_from_trunk.as_ref().unwrap()).unwrap();
    assert_eq!(said.media[0].port, 42000);
    assert!(!h.b2bua.calls[&call].offer_busy());
    assert_eq!(h.b2bua.active_calls(), 1);
}

#[test]
fn a_trunk_transfer_whose_next_hop_does_not_resolve_fails_and_the_call_takes_offers_again_tdr_xfr_04()
 {
    let mut h = Harness::new("");
    let (call, b_invite, _) = confirmed_call(&mut h);
    let refer = trunk_in_dialog(
        &b_invite,
        "REFER",
        3,
        "Refer-To: <sip:+15550142@cc.example.test>\r\n",
    );
    let tx = h.server_tx();
    assert!(h.b2bua.on_dialog_request(Some(tx), refer, h.now));
    // The INVITE never gets a transaction: its next hop's lookup failed.
    let acts = h.actions();
    assert!(acts.iter().any(|a| matches!(
        a,
        Action::Request {
            purpose: Purpose::Transfer,
            ..
        }
    )));
    h.b2bua
        .on_request_unroutable(call, LegId::B, Purpose::Transfer, h.now);
    let acts = h.run();
    let old_call_id = b_invite.headers.call_id().unwrap().to_owned();
    assert_eq!(
        notifies(&acts),
        [(
            "SIP/2.0 503 Service Unavailable\r\n".to_owned(),
            old_call_id
        )]
    );
    let c = &h.b2bua.calls[&call];
    assert!(c.transfer.is_none() && !c.offer_busy(), "the call is stuck");
}
