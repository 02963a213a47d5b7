//! A call written out (serde, JSON) and read back carries on as the call it was: the state a
//! high-availability store would keep is all in the snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;

use super::*;

/// The instants of a call, written as wall-clock microseconds: reading one back re-derives it
/// from both clocks, so a second write may differ by a microsecond or two.
const INSTANT_FIELDS: [&str; 7] = [
    "next",
    "ring_until",
    "give_up",
    "failover_at",
    "guard_at",
    "setup_at",
    "deadline",
];

fn without_instants(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for f in INSTANT_FIELDS {
                map.remove(f);
            }
            map.values_mut().for_each(without_instants);
        }
        Value::Array(items) => items.iter_mut().for_each(without_instants),
        _ => {}
    }
}

/// Replaces the live call with its snapshot read back, and returns the snapshot.
fn restore_from_snapshot(h: &mut Harness, key: CallKey) -> Value {
    let live = h.b2bua.calls.get(&key).expect("live call");
    let json = serde_json::to_string(live).expect("a call serializes");
    let restored: Call = serde_json::from_str(&json).expect("and reads back");

    let mut first: Value = serde_json::from_str(&json).unwrap();
    let mut again = serde_json::to_value(&restored).unwrap();
    without_instants(&mut first);
    without_instants(&mut again);
    assert_eq!(
        first, again,
        "every field but the instants comes back the same"
    );

    let close = |a: Instant, b: Instant| a.max(b) - a.min(b) < Duration::from_millis(2);
    assert!(close(restored.setup_at, live.setup_at));
    let timer = |c: &Call| c.a.session_timer.map(|t| t.deadline);
    match (timer(&restored), timer(live)) {
        (Some(r), Some(l)) => assert!(close(r, l), "session timer deadline moved"),
        (None, None) => {}
        other => panic!("session timer lost: {other:?}"),
    }
    h.b2bua.calls.insert(key, Box::new(restored));
    serde_json::from_str(&json).unwrap()
}

#[test]
fn a_confirmed_call_read_back_from_its_snapshot_holds_on_the_same_media_address_and_key_tdr_med_08()
{
    let mut h = Harness::new("");
    let (call, b_invite, ok) = confirmed_call(&mut h);
    let snapshot = restore_from_snapshot(&mut h, call);
    assert_eq!(snapshot["state"], "Confirmed");
    assert_eq!(snapshot["tenant"], "customer1.sbc.example.test");
    assert_eq!(snapshot["a"]["dialog"]["call_id"], "teams-call-1@pstnhub");

    // Hold from the trunk: the re-INVITE to Teams keeps the media address and our key,
    // and the SDP version goes on from where it was (RFC 3264 §8).
    let first = SessionDescription::from_bytes(&ok.body).unwrap();
    let tx = h.server_tx();
    assert!(
        h.b2bua
            .on_dialog_request(Some(tx), trunk_hold_reinvite(&b_invite), h.now)
    );
    let (reinvite, _) = offer_toward_teams(&mut h);
    let raw = text(&reinvite.to_bytes());
    assert!(raw.contains("Call-ID: teams-call-1@pstnhub\r\n"), "{raw}");
    assert!(
        raw.contains("CSeq: 1 INVITE\r\n"),
        "our first request on leg A: {raw}"
    );
    let sdp = SessionDescription::from_bytes(&reinvite.body).unwrap();
    assert_eq!(sdp.media[0].port, first.media[0].port);
    assert_eq!(sdp.media[0].crypto_lines(), first.media[0].crypto_lines());
    assert_eq!(sdp.origin.session_version, first.origin.session_version + 1);
    assert_eq!(
        sdp.media[0].direction(),
        Some(crate::sdp::Direction::Inactive)
    );
}

#[test]
fn a_ringing_call_read_back_from_its_snapshot_is_answered_and_ended_by_teams() {
    let mut h = Harness::new("");
    let (a_tx, b_invite, call, b_tx) = ringing_call(&mut h);
    let snapshot = restore_from_snapshot(&mut h, call);
    assert_eq!(snapshot["state"], "Early");
    assert!(
        snapshot["b_invite"]
            .as_str()
            .is_some_and(|s| s.starts_with("INVITE sip:+15550100@127.0.0.1:5080 SIP/2.0\r\n")),
        "the INVITE is kept in its wire form: {}",
        snapshot["b_invite"]
    );

    let (tx, ok) = answer_and_ack(&mut h, call, &b_invite, b_tx);
    assert_eq!(
        tx, a_tx,
        "the answer reaches Teams on its INVITE transaction"
    );
    let tag = ok.headers.to().unwrap().tag().unwrap().to_owned();
    let bye = teams_in_dialog("BYE", 2, "z9hG4bKbye", &tag);
    let bye_tx = h.server_tx();
    assert!(h.b2bua.on_dialog_request(Some(bye_tx), bye, h.now));
    let to_trunk = h
        .run()
        .into_iter()
        .find_map(|(a, _)| match a {
            Action::Request {
                request,
                leg: LegId::B,
                ..
            } => Some(request),
            _ => None,
        })
        .expect("BYE toward the trunk");
    assert_eq!(to_trunk.method, Method::Bye);
    assert_eq!(to_trunk.uri.to_string(), "sip:cc@127.0.0.1:5080");
    assert_eq!(
        to_trunk.headers.call_id().unwrap(),
        b_invite.headers.call_id().unwrap()
    );
    assert_eq!(to_trunk.headers.to().unwrap().tag(), Some("cc1"));
    assert_eq!(h.b2bua.active_calls(), 0);
}

#[test]
fn a_snapshot_that_is_not_a_call_is_refused_with_the_field_at_fault() {
    let mut h = Harness::new("");
    let (call, _, _) = confirmed_call(&mut h);
    let mut v = serde_json::to_value(h.b2bua.calls.get(&call).unwrap()).unwrap();
    v["a"]["dialog"]["remote_target"] = Value::from("not a uri");
    let err = serde_json::from_value::<Call>(v).unwrap_err().to_string();
    assert!(
        err.contains("uri") || err.contains("URI") || err.contains("scheme"),
        "{err}"
    );
}
