//! Trunks with `auth`: a new call without good digest credentials gets 407; with them it goes
//! on to Teams, and nothing of the credentials crosses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use md5::{Digest, Md5};

use super::*;

const AUTH: &str = "[trunk.auth]\nusername = \"cc1\"\npassword = \"s3cret\"\n";
const URI: &str = "sip:+15550100@127.0.0.1:5060";

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn trunk_invite(cseq: u32, authorization: Option<&str>) -> Request {
    let mut head = format!(
        "INVITE {URI} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKauth{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:+15550199@127.0.0.1:5080>;tag=cc1\r\nTo: <sip:+15550100@127.0.0.1>\r\n\
         Call-ID: cc-auth-1\r\nCSeq: {cseq} INVITE\r\nContact: <sip:cc@127.0.0.1:5080>\r\n"
    );
    if let Some(a) = authorization {
        head.push_str(&format!("Proxy-Authorization: {a}\r\n"));
    }
    request(&with_body(head, TRUNK_SDP))
}

/// What a client answers to `challenge` (RFC 2617 §3.2.2, qop=auth).
fn answer(challenge: &str, user: &str, password: &str, uri: &str) -> String {
    let param = |name: &str| {
        let start = challenge.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        let end = start + challenge[start..].find('"').unwrap();
        challenge[start..end].to_owned()
    };
    let (realm, nonce) = (param("realm"), param("nonce"));
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("INVITE:{uri}"));
    let response = md5_hex(&format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"));
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\""
    )
}

/// Sends the INVITE; returns the 407's challenge, or None when the call went on to Teams
/// (the INVITE toward Teams is checked for leaked credentials).
fn offer(h: &mut Harness, req: Request) -> Option<String> {
    let tx = h.server_tx();
    h.b2bua.on_invite(tx, req, &trunk_source(), h.now);
    let mut challenge = None;
    for (a, _) in h.run() {
        match a {
            Action::Respond { response, .. } if response.status == 407 => {
                let v = response.headers.get("Proxy-Authenticate").unwrap();
                challenge = Some(text(v));
            }
            Action::Request { request, .. } => {
                let raw = text(&request.to_bytes());
                assert!(!raw.contains("Authorization"), "{raw}");
                assert!(!raw.contains("s3cret"), "{raw}");
            }
            _ => {}
        }
    }
    challenge
}

#[test]
fn a_trunk_with_auth_is_challenged_and_its_answer_lets_the_call_through() {
    let mut h = Harness::new(AUTH);
    let challenge = offer(&mut h, trunk_invite(1, None)).expect("407 without credentials");
    assert!(
        challenge.starts_with("Digest realm=\"sbc.example.test\", nonce=\""),
        "{challenge}"
    );
    assert!(challenge.contains("qop=\"auth\""), "{challenge}");
    assert!(!challenge.contains("stale"), "{challenge}");
    assert_eq!(h.b2bua.active_calls(), 0);

    let good = answer(&challenge, "cc1", "s3cret", URI);
    assert_eq!(offer(&mut h, trunk_invite(2, Some(&good))), None);
    assert_eq!(h.b2bua.active_calls(), 1, "the call went on to Teams");
}

#[test]
fn wrong_password_user_or_a_forged_nonce_get_another_407() {
    let mut h = Harness::new(AUTH);
    let challenge = offer(&mut h, trunk_invite(1, None)).unwrap();
    let forged = challenge.replacen("nonce=\"", "nonce=\"1", 1);
    for (cseq, creds) in [
        (2, answer(&challenge, "cc1", "S3cret", URI)),
        (3, answer(&challenge, "cc2", "s3cret", URI)),
        (4, answer(&forged, "cc1", "s3cret", URI)),
    ] {
        assert!(
            offer(&mut h, trunk_invite(cseq, Some(&creds))).is_some(),
            "accepted: {creds}"
        );
    }
    assert_eq!(h.b2bua.active_calls(), 0);
}

#[test]
fn credentials_that_let_a_call_through_do_not_let_a_second_one_through() {
    let mut h = Harness::new(AUTH);
    let challenge = offer(&mut h, trunk_invite(1, None)).unwrap();
    let good = answer(&challenge, "cc1", "s3cret", URI);
    assert_eq!(offer(&mut h, trunk_invite(2, Some(&good))), None);
    assert_eq!(h.b2bua.active_calls(), 1);
    // The same Proxy-Authorization on a new call, as someone who saw it on the wire would
    // send it: another 407, with a new nonce, and no second call.
    let again = offer(
        &mut h,
        another_call(trunk_invite(3, Some(&good)), "cc-auth-2"),
    )
    .expect("replayed credentials challenged");
    assert!(!again.contains("stale"), "{again}");
    assert_ne!(again, challenge);
    assert_eq!(h.b2bua.active_calls(), 1);
    // The peer that answers the new challenge gets its call.
    let fresh = answer(&again, "cc1", "s3cret", URI);
    assert_eq!(
        offer(
            &mut h,
            another_call(trunk_invite(4, Some(&fresh)), "cc-auth-3")
        ),
        None
    );
    assert_eq!(h.b2bua.active_calls(), 2);
}

/// The INVITE as another call (its own Call-ID).
fn another_call(mut req: Request, call_id: &str) -> Request {
    req.headers.set("Call-ID", call_id.to_owned());
    req
}

#[test]
fn a_trunk_without_auth_is_not_challenged() {
    let mut h = Harness::new("");
    assert_eq!(offer(&mut h, trunk_invite(1, None)), None);
    assert_eq!(h.b2bua.active_calls(), 1);
}
