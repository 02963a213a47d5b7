//! RFC 3262 as the UAS toward leg A: a caller that requires 100rel gets every provisional
//! reliably (Require: 100rel, RSeq), one at a time, resent until its PRACK, the first with the
//! SDP (§5); a PRACK for nothing we sent gets 481; no PRACK in 64 × T1 refuses the call.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

/// A trunk → Teams call whose INVITE requires 100rel.
fn trunk_call_requiring_100rel(h: &mut Harness) -> TxId {
    let tx = h.server_tx();
    let head = "INVITE sip:+15550100@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKrel1\r\n\
        Max-Forwards: 70\r\nFrom: <sip:+15550199@127.0.0.1:5080>;tag=cc1\r\nTo: <sip:+15550100@127.0.0.1>\r\n\
        Call-ID: cc-rel-1\r\nCSeq: 1 INVITE\r\nContact: <sip:cc@127.0.0.1:5080>\r\n\
        Supported: 100rel\r\nRequire: 100rel\r\n"
        .to_owned();
    h.b2bua.on_invite(
        tx,
        request(&with_body(head, TRUNK_SDP)),
        &trunk_source(),
        h.now,
    );
    tx
}

/// The trunk's PRACK on the early dialog the provisional `to` set up.
fn prack(to: &Response, rack: &str, n: u32) -> Request {
    let tag = to.headers.to().unwrap().tag().unwrap().to_owned();
    request(&format!(
        "PRACK sip:x@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKpr{n}\r\n\
         From: <sip:+15550199@127.0.0.1:5080>;tag=cc1\r\nTo: <sip:+15550100@127.0.0.1>;tag={tag}\r\n\
         Call-ID: cc-rel-1\r\nCSeq: {} PRACK\r\nRAck: {rack}\r\nContent-Length: 0\r\n\r\n",
        n + 1
    ))
}

/// The responses among `acts` sent on server transaction `tx` (the actions kept).
fn answers(acts: &[(Action, Option<TxId>)], tx: TxId) -> Vec<Response> {
    acts.iter()
        .filter_map(|(a, _)| match a {
            Action::Respond { tx: t, response } if *t == tx => Some(response.clone()),
            _ => None,
        })
        .collect()
}

fn header(r: &Response, name: &str) -> String {
    text(r.headers.get(name).unwrap_or_else(|| panic!("no {name}")))
}

#[test]
fn a_caller_requiring_100rel_gets_reliable_provisionals_one_at_a_time_until_each_prack() {
    let mut h = Harness::new("");
    let a_tx = trunk_call_requiring_100rel(&mut h);
    let (call, invite, b_tx) = invite_to_teams(h.run());
    let reply = |h: &mut Harness, status: u16, sdp: Option<&str>| {
        let mut r = response_to(&invite, status, "ms9", sdp);
        r.headers.set(
            "Contact",
            "<sip:sip.pstnhub.microsoft.com:5061;transport=tls>",
        );
        responses_to(b_answers(h, call, b_tx, r), a_tx)
    };

    // A 180 without SDP cannot be the first reliable provisional (RFC 3262 §5): held back.
    assert!(reply(&mut h, 180, None).is_empty());
    // Teams' 183 with its answer: ours goes reliably, with the SDP.
    let sent = reply(&mut h, 183, Some(TEAMS_SDP));
    let [first] = sent.as_slice() else {
        panic!("{sent:?}")
    };
    assert_eq!(first.status, 183);
    assert_eq!(header(first, "Require"), "100rel");
    let rseq: u32 = header(first, "RSeq").parse().unwrap();
    assert!((1..1 << 31).contains(&rseq));
    assert!(text(&first.body).contains("RTP/AVP"), "the trunk's answer");

    // Unacknowledged: resent at T1, then 2 × T1.
    let t0 = h.now;
    h.b2bua.handle_timeout(t0 + Duration::from_millis(500));
    let again = responses_to(h.run(), a_tx);
    assert_eq!(again.as_slice(), std::slice::from_ref(first));
    h.b2bua.handle_timeout(t0 + Duration::from_millis(1_000));
    assert!(responses_to(h.run(), a_tx).is_empty(), "next one at 1.5 s");
    h.b2bua.handle_timeout(t0 + Duration::from_millis(1_500));
    assert_eq!(responses_to(h.run(), a_tx).len(), 1);

    // A 180 now waits behind it (one unacknowledged at a time).
    assert!(reply(&mut h, 180, None).is_empty());

    // A PRACK acknowledging something else: 481, and nothing moves.
    let ptx = h.server_tx();
    assert!(h.b2bua.on_dialog_request(
        Some(ptx),
        prack(first, &format!("{} 1 INVITE", rseq + 7), 1),
        h.now
    ));
    let acts = h.run();
    assert_eq!(
        answers(&acts, ptx)
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>(),
        [481]
    );
    assert!(responses_to(acts, a_tx).is_empty());

    // The right one: 200, no more resending, and the 180 goes with the next RSeq.
    let ptx = h.server_tx();
    assert!(h.b2bua.on_dialog_request(
        Some(ptx),
        prack(first, &format!("{rseq} 1 INVITE"), 2),
        h.now
    ));
    let acts = h.run();
    assert_eq!(answers(&acts, ptx)[0].status, 200);
    let next = responses_to(acts, a_tx);
    let [ringing] = next.as_slice() else {
        panic!("{next:?}")
    };
    assert_eq!(ringing.status, 180);
    assert_eq!(header(ringing, "RSeq"), (rseq + 1).to_string());
    h.b2bua.handle_timeout(t0 + Duration::from_millis(1_900));
    let resent = responses_to(h.run(), a_tx);
    assert!(resent.iter().all(|r| r.status == 180), "{resent:?}");

    // No PRACK for the 180 within 64 × T1: the caller gets 504, Teams a CANCEL.
    h.b2bua.handle_timeout(h.now + Duration::from_secs(33));
    let acts = h.run();
    assert!(
        acts.iter()
            .any(|(a, _)| matches!(a, Action::Cancel { tx, .. } if *tx == b_tx)),
        "{acts:?}"
    );
    let last = responses_to(acts, a_tx);
    assert_eq!(last.last().map(|r| r.status), Some(504), "{last:?}");
}

#[test]
fn without_require_100rel_provisionals_go_as_before_and_any_prack_gets_200() {
    let mut h = Harness::new("");
    let (a_tx, b_invite, call, b_tx) = start_teams_call(&mut h);
    let ringing = response_to(&b_invite, 180, "cc1", None);
    let sent = responses_to(b_answers(&mut h, call, b_tx, ringing), a_tx);
    assert_eq!(sent.len(), 1);
    assert!(sent[0].headers.get("RSeq").is_none());
    h.b2bua.handle_timeout(h.now + Duration::from_secs(1));
    assert!(responses_to(h.run(), a_tx).is_empty(), "not resent");
    let tag = sent[0].headers.to().unwrap().tag().unwrap().to_owned();
    let ptx = h.server_tx();
    assert!(h.b2bua.on_dialog_request(
        Some(ptx),
        teams_in_dialog("PRACK", 2, "z9hG4bKpr", &tag),
        h.now
    ));
    assert_eq!(answers(&h.run(), ptx)[0].status, 200);
}

#[test]
fn a_caller_requiring_100rel_without_an_offer_gets_no_provisional_and_the_offer_in_the_2xx() {
    let mut h = Harness::new("");
    let a_tx = h.server_tx();
    let invite = "INVITE sip:+15550100@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKrel2\r\n\
        Max-Forwards: 70\r\nFrom: <sip:+15550199@127.0.0.1:5080>;tag=cc1\r\nTo: <sip:+15550100@127.0.0.1>\r\n\
        Call-ID: cc-rel-1\r\nCSeq: 1 INVITE\r\nContact: <sip:cc@127.0.0.1:5080>\r\n\
        Require: 100rel\r\nContent-Length: 0\r\n\r\n";
    h.b2bua
        .on_invite(a_tx, request(invite), &trunk_source(), h.now);
    let (call, invite, b_tx) = invite_to_teams(h.run());
    let mut early = response_to(&invite, 183, "ms9", Some(TEAMS_SDP));
    early.headers.set(
        "Contact",
        "<sip:sip.pstnhub.microsoft.com:5061;transport=tls>",
    );
    // Its answer would come in a PRACK: the 183 is not sent at all.
    assert!(responses_to(b_answers(&mut h, call, b_tx, early), a_tx).is_empty());
    let mut ok = response_to(&invite, 200, "ms9", Some(TEAMS_SDP));
    ok.headers.set(
        "Contact",
        "<sip:sip.pstnhub.microsoft.com:5061;transport=tls>",
    );
    let to_trunk = responses_to(b_answers(&mut h, call, b_tx, ok), a_tx);
    assert_eq!(to_trunk.len(), 1);
    assert_eq!(to_trunk[0].status, 200);
    assert!(text(&to_trunk[0].body).contains("m=audio"), "our offer");
}
