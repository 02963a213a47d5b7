//! `[sip] ring_timeout_s` (RFC 3261 Timer C): an INVITE of ours that rings without a final
//! answer is CANCELled, for a call being set up and for a transfer's target.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

const RING: Duration = Duration::from_secs(180);

/// Whether `acts` CANCEL client transaction `tx`.
fn cancels(acts: &[(Action, Option<TxId>)], tx: TxId) -> bool {
    acts.iter()
        .any(|(a, _)| matches!(a, Action::Cancel { tx: t, .. } if *t == tx))
}

#[test]
fn a_call_ringing_past_ring_timeout_is_cancelled_and_its_caller_gets_480() {
    let mut h = Harness::new("");
    let (a_tx, b_invite, call, b_tx) = ringing_call(&mut h);
    let rang = h.now;
    h.b2bua
        .handle_timeout(rang + RING - Duration::from_secs(10));
    assert!(h.run().is_empty(), "still ringing");
    // A second provisional restarts the timer (RFC 3261 §16.7 step 2).
    let later = rang + RING - Duration::from_secs(5);
    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Invite,
        b_tx,
        response_to(&b_invite, 183, "cc1", None),
        later,
    );
    h.run();
    h.b2bua.handle_timeout(rang + RING + Duration::from_secs(1));
    assert!(h.run().is_empty(), "the 183 gave it another {RING:?}");

    h.b2bua.handle_timeout(later + RING);
    let acts = h.run();
    assert!(cancels(&acts, b_tx), "{acts:?}");
    let to_teams: Vec<u16> = responses_to(acts, a_tx).iter().map(|r| r.status).collect();
    assert_eq!(to_teams, [480]);
    // The trunk's 487 ends what is left of the call.
    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Invite,
        b_tx,
        response_to(&b_invite, 487, "cc1", None),
        later + RING,
    );
    h.run();
    assert_eq!(h.b2bua.active_calls(), 0);
}

#[test]
fn a_callee_that_sent_only_100_trying_is_cancelled_at_once_when_the_caller_cancels() {
    let mut h = Harness::new("");
    let (a_tx, b_invite, call, b_tx) = start_teams_call(&mut h);
    b_answers(&mut h, call, b_tx, response_to(&b_invite, 100, "", None));
    h.b2bua.on_cancel(a_tx, &teams_cancel(None), h.now);
    let acts = h.run();
    assert!(cancels(&acts, b_tx), "§9.1: 100 is a provisional: {acts:?}");
}

#[test]
fn a_callee_that_sent_only_100_trying_is_cancelled_after_ring_timeout() {
    let mut h = Harness::new("");
    let (a_tx, b_invite, call, b_tx) = start_teams_call(&mut h);
    b_answers(&mut h, call, b_tx, response_to(&b_invite, 100, "", None));
    // 100 does not restart the timer: it runs from the INVITE.
    h.b2bua.handle_timeout(h.now + RING);
    let acts = h.run();
    assert!(cancels(&acts, b_tx), "{acts:?}");
    let to_teams: Vec<u16> = responses_to(acts, a_tx).iter().map(|r| r.status).collect();
    assert_eq!(to_teams, [480]);
}

#[test]
fn ring_timeout_0_lets_a_call_ring_until_its_caller_gives_up() {
    let (dir, mut config) = config("");
    config.sip.ring_timeout_s = 0;
    let mut h = Harness::with_config((dir, config));
    let (_, _, _, _) = ringing_call(&mut h);
    h.b2bua.handle_timeout(h.now + Duration::from_secs(86_400));
    assert!(h.run().is_empty());
    assert_eq!(h.b2bua.active_calls(), 1);
}

#[test]
fn a_trunk_transfer_target_ringing_past_ring_timeout_is_cancelled_and_the_caller_stays_tdr_xfr_04()
{
    let mut h = Harness::new("");
    let (call, b_invite, _) = confirmed_call(&mut h);
    let old_call_id = b_invite.headers.call_id().unwrap().to_owned();
    let (_, acts) = transfer::trunk_refers(&mut h, &b_invite, "<sip:+15550142@cc.example.test>");
    let (invite, _, itx) = transfer::transfer_invite(&acts);
    let rang = h.now + Duration::from_secs(2);
    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Transfer,
        itx,
        response_to(&invite, 180, "new1", None),
        rang,
    );
    h.run();
    h.b2bua.handle_timeout(rang + RING - Duration::from_secs(1));
    assert!(!cancels(&h.run(), itx));
    h.b2bua.handle_timeout(rang + RING);
    let acts = h.run();
    assert!(cancels(&acts, itx), "{acts:?}");
    assert!(
        transfer::notifies(&acts).is_empty(),
        "the outcome waits for the INVITE's final answer"
    );
    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Transfer,
        itx,
        response_to(&invite, 487, "new1", None),
        rang + RING,
    );
    let acts = h.run();
    assert_eq!(
        transfer::notifies(&acts),
        [(
            "SIP/2.0 480 Temporarily Unavailable\r\n".to_owned(),
            old_call_id
        )]
    );
    assert!(
        sent(&acts, Purpose::Bye).is_none(),
        "the agent keeps the caller"
    );
    assert_eq!(h.b2bua.active_calls(), 1);
    assert!(!h.b2bua.calls[&call].offer_busy());
}
