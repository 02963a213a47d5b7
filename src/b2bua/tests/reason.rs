//! The Reason header across the legs (RFC 3326, RFC 6432): on refusals, CANCELs and BYEs, as
//! the trunk's `[trunk.headers] reason` and `[[trunk.q850_rewrite]]` say (TDR-INV-07).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::sip::message::Headers;

const REWRITE_17: &str = "[[trunk.q850_rewrite]]\ncause = 17\nto = 34\n";

fn reason_of(h: &Headers) -> Option<String> {
    h.get("Reason").map(text)
}

#[test]
fn teams_refusing_busy_reaches_the_trunk_with_its_q850_cause_rewritten_tdr_inv_07() {
    let mut h = Harness::new(REWRITE_17);
    let a_tx = trunk_call_to_teams(&mut h);
    let (call, invite, tx) = invite_to_teams(h.run());
    let mut busy = Response::for_request(&invite, 486, "Busy Here", Some("ms9"));
    busy.headers
        .push("Reason", "Q.850;cause=17;text=\"User busy\"");
    busy.headers.push("ms-diagnostics", "1000;reason=\"busy\"");
    let to_trunk = responses_to(b_answers(&mut h, call, tx, busy), a_tx);
    let [refusal] = to_trunk.as_slice() else {
        panic!("{to_trunk:?}");
    };
    assert_eq!(refusal.status, 486, "passed back once, never retried");
    assert_eq!(
        reason_of(&refusal.headers).as_deref(),
        Some("Q.850;cause=34")
    );
    assert!(
        refusal.headers.get("ms-diagnostics").is_none(),
        "Teams' diagnostics stay ours"
    );
}

#[test]
fn a_trunk_refusal_reaches_teams_with_its_reason_as_sent() {
    let mut h = Harness::new(REWRITE_17);
    let (a_tx, b_invite, call, b_tx) = start_teams_call(&mut h);
    let mut busy = response_to(&b_invite, 486, "cc1", None);
    busy.headers.push("Reason", "Q.850;cause=17");
    let to_teams = responses_to(b_answers(&mut h, call, b_tx, busy), a_tx);
    assert_eq!(to_teams.len(), 1);
    // The rewrite is for the trunk's sake only.
    assert_eq!(
        reason_of(&to_teams[0].headers).as_deref(),
        Some("Q.850;cause=17")
    );
}

#[test]
fn a_reason_on_teams_cancel_goes_with_the_cancel_to_the_trunk_even_when_it_waits_for_a_provisional()
{
    let elsewhere = "SIP;cause=200;text=\"Call completed elsewhere\"";
    let mut h = Harness::new("");
    let (a_tx, b_invite, call, b_tx) = start_teams_call(&mut h);
    // No answer from the trunk yet: the CANCEL waits (§9.1), its Reason with it.
    h.b2bua
        .on_cancel(a_tx, &teams_cancel(Some(elsewhere)), h.now);
    let acts = h.run();
    assert!(!acts.iter().any(|(a, _)| matches!(a, Action::Cancel { .. })));
    let ringing = response_to(&b_invite, 180, "cc1", None);
    let reasons: Vec<Option<String>> = b_answers(&mut h, call, b_tx, ringing)
        .into_iter()
        .filter_map(|(a, _)| match a {
            Action::Cancel { tx, reason } if tx == b_tx => Some(reason.map(|r| text(&r))),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, [Some(elsewhere.to_owned())]);
}

#[test]
fn a_reason_on_a_bye_is_carried_to_the_other_leg_unless_the_trunk_strips_it() {
    for (extra, expected) in [
        ("", Some("Q.850;cause=16")),
        ("[trunk.headers]\nreason = \"strip\"\n", None),
    ] {
        let mut h = Harness::new(extra);
        let (call, _, ok) = confirmed_call(&mut h);
        let tag = ok.headers.to().unwrap().tag().unwrap().to_owned();
        let bye = request(
            &text(&teams_in_dialog("BYE", 2, "z9hG4bKbye2", &tag).to_bytes()).replace(
                "CSeq: 2 BYE\r\n",
                "CSeq: 2 BYE\r\nReason: Q.850;cause=16\r\n",
            ),
        );
        let tx = h.server_tx();
        assert!(h.b2bua.on_dialog_request(Some(tx), bye, h.now));
        let acts = h.run();
        let (bye_call, to_trunk, _, _) = sent(&acts, Purpose::Bye).expect("BYE to the trunk");
        assert_eq!(bye_call, call);
        assert_eq!(reason_of(&to_trunk.headers).as_deref(), expected, "{extra}");
    }
}
