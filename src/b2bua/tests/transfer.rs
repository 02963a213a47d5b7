//! Transfers: REFER from Teams (TDR-XFR-02) and INVITE with Replaces (TDR-INV-19).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

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
    let ringback = |h: &Harness| h.b2bua.media.counters().ringback_packets;
    // At most 3 s: the first packet is due at the worker's next turn.
    for _ in 0..150 {
        if ringback(&h) >= 5 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ringback(&h) >= 5, "ringback packets sent while ringing");
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
    // The worker applies the stop at its next 20 ms turn; a packet may be on its way.
    let mut settled = false;
    for _ in 0..20 {
        let before = ringback(&h);
        std::thread::sleep(Duration::from_millis(100));
        if ringback(&h) == before {
            settled = true;
            break;
        }
    }
    assert!(settled, "ringback stops when the transfer is answered");
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
