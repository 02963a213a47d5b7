//! A trunk whose name resolves to several targets (DNS SRV): leg B's INVITE moves on to the
//! next one on silence, a 503, a timeout or a failed connection (RFC 3263 §4.3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn target(port: u16) -> Target {
    Target {
        transport: TransportKind::Udp,
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        conn: None,
        server_name: None,
        side: Side::Trunk,
    }
}

/// The INVITE among `acts` sent toward the trunk: the request, where it goes, its transaction.
fn invite_sent(acts: &[(Action, Option<TxId>)]) -> (Request, Target, TxId) {
    match sent(acts, Purpose::Invite) {
        Some((_, req, Dest::Target(t), tx)) => (req.clone(), t.clone(), tx.unwrap()),
        other => panic!("no INVITE to a target: {other:?}"),
    }
}

#[test]
fn a_silent_target_then_a_503_move_the_call_on_to_the_trunks_third_target() {
    let mut h = Harness::new("");
    let (a_tx, first, call, first_tx) = start_teams_call(&mut h);
    h.b2bua
        .on_alternatives(call, vec![target(5091), target(5092)], h.now);

    // The first says nothing within failover_timeout_ms (2 s by default).
    h.b2bua.handle_timeout(h.now + Duration::from_millis(1_999));
    assert!(h.run().is_empty());
    let t1 = h.now + Duration::from_secs(2);
    h.b2bua.handle_timeout(t1);
    let acts = h.run();
    let (second, to, second_tx) = invite_sent(&acts);
    assert_eq!(to.addr.port(), 5091);
    // The same dialog, a new transaction with the next CSeq; the Request-URI stays the
    // trunk's (only where it is sent changes).
    assert_eq!(second.headers.call_id(), first.headers.call_id());
    assert_eq!(
        second.headers.from().unwrap().tag(),
        first.headers.from().unwrap().tag()
    );
    assert_eq!(second.headers.cseq().unwrap().seq, 2);
    assert_eq!(second.uri, first.uri);
    assert!(
        responses_to(acts, a_tx).is_empty(),
        "Teams hears nothing of it"
    );

    // The second refuses 503: the third at once.
    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Invite,
        second_tx,
        response_to(&second, 503, "t2", None),
        t1,
    );
    let acts = h.run();
    let (third, to, third_tx) = invite_sent(&acts);
    assert_eq!(
        (to.addr.port(), third.headers.cseq().unwrap().seq),
        (5092, 3)
    );
    assert!(responses_to(acts, a_tx).is_empty());

    // The last target gets the full Timer B: no failover deadline is left.
    h.b2bua.handle_timeout(t1 + Duration::from_secs(10));
    assert!(h.run().is_empty());
    let (_, ok) = answer_and_ack(&mut h, call, &third, third_tx);
    assert_eq!(ok.status, 200);

    // A 200 the first target sends after all is ACKed and ended; the call stays.
    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Invite,
        first_tx,
        response_to(&first, 200, "late1", Some(TRUNK_SDP)),
        t1,
    );
    let acts = h.run();
    assert!(acts.iter().any(|(a, _)| matches!(a, Action::Ack { .. })));
    assert!(sent(&acts, Purpose::Bye).is_some());
    assert_eq!(h.b2bua.active_calls(), 1);
}

#[test]
fn a_refusal_other_than_503_is_passed_back_without_trying_other_targets() {
    let mut h = Harness::new("");
    let (a_tx, first, call, first_tx) = start_teams_call(&mut h);
    h.b2bua.on_alternatives(call, vec![target(5091)], h.now);
    let acts = b_answers(&mut h, call, first_tx, response_to(&first, 486, "t1", None));
    assert!(sent(&acts, Purpose::Invite).is_none());
    let to_teams: Vec<u16> = responses_to(acts, a_tx).iter().map(|r| r.status).collect();
    assert_eq!(to_teams, [486]);
}

#[test]
fn a_target_that_answered_100_keeps_the_call_until_its_connection_fails() {
    let mut h = Harness::new("");
    let (_, first, call, first_tx) = start_teams_call(&mut h);
    h.b2bua.on_alternatives(call, vec![target(5091)], h.now);
    // It answered 100: alive, so silence after that is not a reason to move on.
    b_answers(&mut h, call, first_tx, response_to(&first, 100, "", None));
    h.b2bua.handle_timeout(h.now + Duration::from_secs(5));
    assert!(sent(&h.run(), Purpose::Invite).is_none());
    // Its connection fails: the next target.
    h.b2bua
        .on_request_failed(call, LegId::B, Purpose::Invite, first_tx, 503, h.now);
    let (_, to, _) = invite_sent(&h.run());
    assert_eq!(to.addr.port(), 5091);
}

#[test]
fn a_trunk_its_pings_see_down_gets_no_call_from_teams_but_its_own_calls_go_through() {
    let mut h = Harness::new("");
    h.b2bua
        .set_trunks_down(std::collections::HashSet::from(["cc1".to_owned()]));
    let tx = h.server_tx();
    h.b2bua.on_invite(
        tx,
        teams_invite("customer1.sbc.example.test"),
        &teams_source(),
        h.now,
    );
    let acts = h.run();
    let refusals = responses_to(acts, tx);
    assert_eq!(refusals.len(), 1);
    assert_eq!(
        (refusals[0].status, refusals[0].reason.as_str()),
        (503, "Service Unavailable - trunk down")
    );
    assert_eq!(h.b2bua.active_calls(), 0);
    // The trunk itself still calls out: its INVITE proves it is there.
    trunk_call_to_teams(&mut h);
    assert!(sent(&h.run(), Purpose::Invite).is_some());
}
