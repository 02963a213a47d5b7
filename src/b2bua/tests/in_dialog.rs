//! Inside a confirmed call: hold, session refresh, media silence.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use super::*;

#[test]
fn trunk_hold_reaches_teams_as_inactive_on_the_same_media_address_tdr_inv_16_tdr_med_08() {
    let mut h = Harness::new("");
    let (call, b_invite, ok) = confirmed_call(&mut h);
    let first = SessionDescription::from_bytes(&ok.body).unwrap();
    let tx = h.server_tx();
    assert!(
        h.b2bua
            .on_dialog_request(Some(tx), trunk_hold_reinvite(&b_invite), h.now)
    );
    let (reinvite, re_tx) = offer_toward_teams(&mut h);
    let sdp = SessionDescription::from_bytes(&reinvite.body).unwrap();
    assert_eq!(
        sdp.media[0].direction(),
        Some(crate::sdp::Direction::Inactive)
    );
    assert_eq!(sdp.media[0].port, first.media[0].port);
    assert_eq!(sdp.origin.session_version, first.origin.session_version + 1);
    // Teams answers inactive; the trunk gets 200 with recvonly-or-inactive RTP/AVP.
    let acts = teams_answers_hold(&mut h, call, &reinvite, re_tx);
    assert!(acts.iter().any(|(a, _)| matches!(a, Action::Ack { .. })));
    let back = responses_to(acts, tx).pop().unwrap();
    assert_eq!(back.status, 200);
    let sdp = SessionDescription::from_bytes(&back.body).unwrap();
    assert_eq!(sdp.media[0].proto, "RTP/AVP");
    assert_eq!(
        sdp.media[0].direction(),
        Some(crate::sdp::Direction::Inactive)
    );
    // Teams is silent on purpose now (inactive): its silence does not end the call.
    h.b2bua.on_media_event(
        MediaEvent::Timeout {
            id: call,
            leg: crate::media::Leg::Teams,
            silent_for: Duration::from_secs(60),
        },
        h.now,
    );
    assert_eq!(h.b2bua.active_calls(), 1);
}

#[test]
fn the_200_to_a_udp_trunks_re_invite_is_resent_until_its_ack() {
    let mut h = Harness::new("");
    let (call, b_invite, _) = confirmed_call(&mut h);
    let tx = h.server_tx();
    assert!(
        h.b2bua
            .on_dialog_request(Some(tx), trunk_hold_reinvite(&b_invite), h.now)
    );
    let (reinvite, re_tx) = offer_toward_teams(&mut h);
    let ok = responses_to(teams_answers_hold(&mut h, call, &reinvite, re_tx), tx);
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].status, 200);

    // RFC 3261 §14.2/§13.3.1.4: lost 2xx are the UAS core's to resend, T1 then doubling.
    let t1 = h.now + Duration::from_millis(500);
    h.b2bua.handle_timeout(t1);
    let again = responses_to(h.run(), tx);
    assert_eq!(again.len(), 1, "resent after T1");
    assert_eq!(again[0].to_bytes(), ok[0].to_bytes());
    h.b2bua.handle_timeout(t1 + Duration::from_millis(900));
    assert!(
        responses_to(h.run(), tx).is_empty(),
        "next one after 2 × T1"
    );
    h.b2bua.handle_timeout(t1 + Duration::from_millis(1000));
    assert_eq!(responses_to(h.run(), tx).len(), 1);

    // An ACK for an older CSeq does not stop it; the re-INVITE's own ACK does.
    let ack = |cseq: &str| {
        let mut ack = trunk_hold_reinvite(&b_invite);
        ack.method = Method::Ack;
        ack.headers.set("CSeq", format!("{cseq} ACK"));
        ack.body = Bytes::new();
        ack
    };
    let later = t1 + Duration::from_millis(1000);
    h.b2bua.on_dialog_request(None, ack("1"), later);
    h.b2bua.handle_timeout(later + Duration::from_secs(2));
    assert_eq!(responses_to(h.run(), tx).len(), 1, "still resent");
    h.b2bua
        .on_dialog_request(None, ack("2"), later + Duration::from_secs(2));
    h.b2bua.handle_timeout(later + Duration::from_secs(40));
    assert!(responses_to(h.run(), tx).is_empty());
    assert_eq!(h.b2bua.active_calls(), 1, "the call goes on");
}

#[test]
fn silent_media_on_an_active_call_ends_it_on_both_legs() {
    let mut h = Harness::new("");
    let (call, _, _) = confirmed_call(&mut h);
    h.b2bua.on_media_event(
        MediaEvent::Timeout {
            id: call,
            leg: crate::media::Leg::Trunk,
            silent_for: Duration::from_secs(60),
        },
        h.now,
    );
    let byes: Vec<LegId> = h
        .run()
        .into_iter()
        .filter_map(|(a, _)| match a {
            Action::Request { request, leg, .. } if request.method == Method::Bye => Some(leg),
            _ => None,
        })
        .collect();
    assert_eq!(byes, vec![LegId::A, LegId::B]);
    assert_eq!(h.b2bua.active_calls(), 0);
}

#[test]
fn session_refresh_from_teams_is_answered_locally_tdr_inv_15() {
    let mut h = Harness::new("");
    let (_, _, ok) = confirmed_call(&mut h);
    let tag = ok.headers.to().unwrap().tag().unwrap().to_owned();
    let head = format!(
        "INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5062;branch=z9hG4bKref\r\n\
         From: <sip:+15550199@sip.pstnhub.microsoft.com>;tag=ms1\r\nTo: <sip:+15550100@x>;tag={tag}\r\n\
         Call-ID: teams-call-1@pstnhub\r\nCSeq: 2 INVITE\r\nContact: <sip:+15550199@127.0.0.1:5062;transport=tls>\r\n\
         Supported: timer\r\nSession-Expires: 1800;refresher=uac\r\n"
    );
    let tx = h.server_tx();
    assert!(
        h.b2bua
            .on_dialog_request(Some(tx), request(&with_body(head, TEAMS_SDP)), h.now)
    );
    let acts = h.run();
    match &acts[..] {
        [(Action::Respond { response, .. }, _)] => {
            assert_eq!(response.status, 200);
            assert_eq!(response.body, ok.body, "the same SDP, same version");
        }
        other => panic!("refresh crossed to the trunk: {other:?}"),
    }
}

/// TDR-HDR-02: with media bypass set on the trunk, Teams adds X-MS-UserLocation,
/// X-MS-UserSite and X-MS-MediaPath to INVITEs and re-INVITEs. They are accepted, and stay on
/// the Teams side: they describe Microsoft's media path, not the contact center's.
#[test]
fn lmo_headers_from_teams_are_tolerated_and_stay_on_the_teams_side_tdr_hdr_02() {
    const LMO: &str = "X-MS-UserLocation: internal\r\nX-MS-UserSite: site-7f3a\r\n\
                       X-MS-MediaPath: sbc1.sbc.example.test, customer1.sbc.example.test\r\n";
    let mut h = Harness::new("");
    let a_tx = h.server_tx();
    let invite = request(
        &text(&teams_invite("customer1.sbc.example.test").to_bytes()).replacen(
            "Supported: timer\r\n",
            &format!("Supported: timer\r\n{LMO}"),
            1,
        ),
    );
    assert!(invite.headers.get("X-MS-MediaPath").is_some());
    h.b2bua.on_invite(a_tx, invite, &teams_source(), h.now);
    let acts = h.run();
    let (call, b_invite, _, b_tx) = sent(&acts, Purpose::Invite).expect("INVITE toward the trunk");
    let (b_invite, b_tx) = (b_invite.clone(), b_tx.unwrap());
    assert!(!text(&b_invite.to_bytes()).contains("X-MS-"));
    let (_, ok) = answer_and_ack(&mut h, call, &b_invite, b_tx);

    // A re-INVITE with a new offer, carrying them again, crosses as an offer without them.
    let tag = ok.headers.to().unwrap().tag().unwrap().to_owned();
    let head = format!(
        "INVITE sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5062;branch=z9hG4bKlmo\r\n\
         From: <sip:+15550199@sip.pstnhub.microsoft.com>;tag=ms1\r\nTo: <sip:+15550100@x>;tag={tag}\r\n\
         Call-ID: teams-call-1@pstnhub\r\nCSeq: 2 INVITE\r\nContact: <sip:+15550199@127.0.0.1:5062;transport=tls>\r\n{LMO}"
    );
    let held = TEAMS_SDP
        .replace("o=- 1 1", "o=- 1 2")
        .replace("a=ptime:20\r\n", "a=ptime:20\r\na=sendonly\r\n");
    let tx = h.server_tx();
    assert!(
        h.b2bua
            .on_dialog_request(Some(tx), request(&with_body(head, &held)), h.now)
    );
    let acts = h.run();
    let (_, offer, _, _) = sent(&acts, Purpose::Offer).expect("the offer toward the trunk");
    assert!(!text(&offer.to_bytes()).contains("X-MS-"));
    assert!(
        text(&offer.body).contains("a=sendonly"),
        "{}",
        text(&offer.body)
    );
}
