//! The call state machine driven without sockets: SIP messages in, actions out. The media
//! plane is real (loopback ports), since every SDP goes through it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::sdp::SessionDescription;
use crate::sip::message::Message;
use crate::sip::transaction::{TimerConfig, TransactionKey, Transactions};

const TEAMS_SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 41000 RTP/SAVP 0 8 101\r\na=rtcp-mux\r\n\
a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31|1:1\r\n\
a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^31\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\n";

const TRUNK_SDP: &str = "v=0\r\no=cc 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
m=audio 42000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

struct Harness {
    b2bua: B2bua,
    txns: Transactions<()>,
    _certs: tempfile::TempDir,
    now: Instant,
    n: u32,
}

fn config(extra: &str) -> (tempfile::TempDir, Config) {
    config_with_ports(extra, 53000, 53999)
}

fn config_with_ports(extra: &str, port_min: u16, port_max: u16) -> (tempfile::TempDir, Config) {
    let text = crate::config::default::DEFAULT_TOML
        .replace("port_min = 40000", &format!("port_min = {port_min}"))
        .replace("port_max = 49999", &format!("port_max = {port_max}"))
        .replace(
            "allow = [\"127.0.0.1/32\"]",
            &format!("allow = [\"127.0.0.1/32\"]\n{extra}"),
        );
    crate::config::test_support::with_dev_certs(&text)
}

impl Harness {
    fn new(extra: &str) -> Harness {
        Harness::with_config(config(extra))
    }

    fn with_config((dir, config): (tempfile::TempDir, Config)) -> Harness {
        let (plane, _events) = MediaPlane::start(&config.media).unwrap();
        let local = LocalAddrs {
            teams_port: 5061,
            trunk_udp: Some("127.0.0.1:5060".parse().unwrap()),
            trunk_tcp: None,
            trunk_tls: None,
        };
        Harness {
            b2bua: B2bua::new(
                Arc::new(config),
                plane,
                local,
                crate::cdr::CdrWriter::disabled(),
            ),
            txns: Transactions::new(TimerConfig::default()),
            _certs: dir,
            now: crate::clock::now(),
            n: 0,
        }
    }

    fn server_tx(&mut self) -> TxId {
        self.n += 1;
        let key = TransactionKey::client(&format!("z9hG4bKs{}", self.n), &Method::Invite);
        match self
            .txns
            .on_request(key, &Method::Invite, true, (), self.now)
        {
            crate::sip::transaction::ServerDisposition::New(id) => id,
            other => panic!("{other:?}"),
        }
    }

    fn client_tx(&mut self) -> TxId {
        self.n += 1;
        let key = TransactionKey::client(&format!("z9hG4bKc{}", self.n), &Method::Invite);
        self.txns
            .start_client(key, &Method::Invite, Bytes::new(), true, (), self.now)
            .unwrap()
    }

    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.b2bua.poll_action()).collect()
    }

    /// Drains the actions, registering a client transaction for each request.
    fn run(&mut self) -> Vec<(Action, Option<TxId>)> {
        let mut out = Vec::new();
        for a in self.actions() {
            let tx = if let Action::Request { call, purpose, .. } = &a {
                let tx = self.client_tx();
                self.b2bua.on_request_sent(*call, *purpose, tx);
                Some(tx)
            } else {
                None
            };
            out.push((a, tx));
        }
        out
    }
}

fn request(text: &str) -> Request {
    match Message::parse(Bytes::from(
        text.replace('\n', "\r\n").replace("\r\r\n", "\r\n"),
    ))
    .unwrap()
    {
        Message::Request(r) => r,
        Message::Response(_) => panic!("not a request"),
    }
}

fn with_body(mut head: String, body: &str) -> String {
    head.push_str(&format!(
        "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    head
}

fn teams_invite(host: &str) -> Request {
    let head = format!(
        "INVITE sip:+15550100@{host}:5061;user=phone;transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:5062;branch=z9hG4bKteams1\r\n\
         Max-Forwards: 70\r\n\
         From: \"Teams\" <sip:+15550199@sip.pstnhub.microsoft.com;user=phone>;tag=ms1\r\n\
         To: <sip:+15550100@{host};user=phone>\r\n\
         Call-ID: teams-call-1@pstnhub\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:+15550199@127.0.0.1:5062;transport=tls>\r\n\
         Supported: timer\r\nSession-Expires: 1800\r\n"
    );
    request(&with_body(head, TEAMS_SDP))
}

fn teams_source() -> Source {
    Source {
        side: Side::Teams,
        transport: TransportKind::Tls,
        addr: "127.0.0.1:40001".parse().unwrap(),
        conn: None,
        peer_name: Some("sip.pstnhub.microsoft.com".into()),
    }
}

/// The trunk-side source every trunk request of these tests comes from.
fn trunk_source() -> Source {
    Source {
        side: Side::Trunk,
        transport: TransportKind::Udp,
        addr: "127.0.0.1:5080".parse().unwrap(),
        conn: None,
        peer_name: None,
    }
}

/// Teams' CANCEL of the INVITE `teams_invite` made, with a Reason if given.
fn teams_cancel(reason: Option<&str>) -> Request {
    let reason = reason
        .map(|r| format!("Reason: {r}\r\n"))
        .unwrap_or_default();
    request(&format!(
        "CANCEL sip:+15550100@customer1.sbc.example.test:5061;user=phone;transport=tls SIP/2.0\r\n\
         Via: SIP/2.0/TLS 127.0.0.1:5062;branch=z9hG4bKteams1\r\nMax-Forwards: 70\r\n\
         From: \"Teams\" <sip:+15550199@sip.pstnhub.microsoft.com;user=phone>;tag=ms1\r\n\
         To: <sip:+15550100@customer1.sbc.example.test;user=phone>\r\n\
         Call-ID: teams-call-1@pstnhub\r\nCSeq: 1 CANCEL\r\n{reason}Content-Length: 0\r\n\r\n"
    ))
}

/// A bodiless request from Teams inside the call `teams_invite` started (ACK, BYE).
fn teams_in_dialog(method: &str, cseq: u32, branch: &str, to_tag: &str) -> Request {
    request(&format!(
        "{method} sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5062;branch={branch}\r\n\
         From: <sip:+15550199@sip.pstnhub.microsoft.com>;tag=ms1\r\nTo: <sip:+15550100@x>;tag={to_tag}\r\n\
         Call-ID: teams-call-1@pstnhub\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
    ))
}

/// The trunk putting the call on hold: a re-INVITE with its SDP turned sendonly.
fn trunk_hold_reinvite(b_invite: &Request) -> Request {
    let from_tag = b_invite.headers.from().unwrap().tag().unwrap().to_owned();
    let held = TRUNK_SDP
        .replace("o=cc 7 7", "o=cc 7 8")
        .replace("a=sendrecv", "a=sendonly");
    let head = format!(
        "INVITE sip:x@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKhold\r\n\
         From: <sip:+15550100@127.0.0.1:5080>;tag=cc1\r\nTo: <sip:+15550199@127.0.0.1>;tag={from_tag}\r\n\
         Call-ID: {}\r\nCSeq: 2 INVITE\r\nContact: <sip:cc@127.0.0.1:5080>\r\n",
        b_invite.headers.call_id().unwrap()
    );
    request(&with_body(head, &held))
}

/// The re-INVITE (or UPDATE) the B2BUA sent toward Teams with an offer, and its transaction.
fn offer_toward_teams(h: &mut Harness) -> (Request, TxId) {
    h.run()
        .into_iter()
        .find_map(|(a, t)| match a {
            Action::Request {
                request,
                leg: LegId::A,
                purpose: Purpose::Offer,
                ..
            } => Some((request, t.unwrap())),
            _ => None,
        })
        .expect("re-INVITE toward Teams")
}

/// Teams accepts the hold offer `reinvite` with an inactive answer; what the B2BUA did then.
fn teams_answers_hold(
    h: &mut Harness,
    call: CallKey,
    reinvite: &Request,
    re_tx: TxId,
) -> Vec<(Action, Option<TxId>)> {
    let teams_answer = TEAMS_SDP
        .replace("o=- 1 1", "o=- 1 2")
        .replace("a=ptime:20\r\n", "a=ptime:20\r\na=inactive\r\n");
    let mut rsp = response_to(reinvite, 200, "ms1", Some(&teams_answer));
    rsp.headers.set("CSeq", "1 INVITE");
    h.b2bua
        .on_response(call, LegId::A, Purpose::Offer, re_tx, rsp, h.now);
    h.run()
}

/// Leg B's answer `rsp`, now, to our INVITE of `call` (its client transaction `tx`); what the
/// B2BUA did with it.
fn b_answers(
    h: &mut Harness,
    call: CallKey,
    tx: TxId,
    rsp: Response,
) -> Vec<(Action, Option<TxId>)> {
    h.b2bua
        .on_response(call, LegId::B, Purpose::Invite, tx, rsp, h.now);
    h.run()
}

/// The responses sent on server transaction `tx`.
fn responses_to(acts: Vec<(Action, Option<TxId>)>, tx: TxId) -> Vec<Response> {
    acts.into_iter()
        .filter_map(|(a, _)| match a {
            Action::Respond { tx: t, response } if t == tx => Some(response),
            _ => None,
        })
        .collect()
}

fn response_to(req: &Request, status: u16, to_tag: &str, sdp: Option<&str>) -> Response {
    let mut r = Response::for_request(req, status, "X", Some(to_tag));
    r.headers.push("Contact", "<sip:cc@127.0.0.1:5080>");
    if let Some(sdp) = sdp {
        r.headers.push("Content-Type", "application/sdp");
        r.body = Bytes::from(sdp.to_owned());
    }
    r
}

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Sets up a Teams → trunk call up to the trunk's INVITE.
fn start_teams_call(h: &mut Harness) -> (TxId, Request, CallKey, TxId) {
    let a_tx = h.server_tx();
    let invite = teams_invite("customer1.sbc.example.test");
    h.b2bua
        .on_invite(a_tx, invite.clone(), &teams_source(), h.now);
    let mut sent = None;
    for (a, tx) in h.run() {
        match a {
            Action::Respond { response, .. } => assert_eq!(response.status, 100),
            Action::Request {
                call,
                request,
                purpose,
                ..
            } => {
                assert_eq!(purpose, Purpose::Invite);
                sent = Some((request, call, tx.unwrap()));
            }
            other => panic!("{other:?}"),
        }
    }
    let (b_invite, call, b_tx) = sent.expect("INVITE toward the trunk");
    (a_tx, b_invite, call, b_tx)
}

/// A Teams → trunk call the trunk has answered 180 (relayed to Teams).
fn ringing_call(h: &mut Harness) -> (TxId, Request, CallKey, TxId) {
    let (a_tx, b_invite, call, b_tx) = start_teams_call(h);
    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Invite,
        b_tx,
        response_to(&b_invite, 180, "cc1", None),
        h.now,
    );
    h.run();
    (a_tx, b_invite, call, b_tx)
}

/// The trunk answers 200 and Teams ACKs it; returns the server transaction the 200 went on
/// and the 200 itself.
fn answer_and_ack(
    h: &mut Harness,
    call: CallKey,
    b_invite: &Request,
    b_tx: TxId,
) -> (TxId, Response) {
    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Invite,
        b_tx,
        response_to(b_invite, 200, "cc1", Some(TRUNK_SDP)),
        h.now,
    );
    let (tx, ok) = h
        .run()
        .into_iter()
        .find_map(|(a, _)| match a {
            Action::Respond { tx, response } if response.status == 200 => Some((tx, response)),
            _ => None,
        })
        .expect("200 toward Teams");
    let tag = ok.headers.to().unwrap().tag().unwrap().to_owned();
    let ack = teams_in_dialog("ACK", 1, "z9hG4bKack", &tag);
    assert!(h.b2bua.on_dialog_request(None, ack, h.now));
    (tx, ok)
}

/// A Teams → trunk call answered and ACKed; returns (call, trunk INVITE, 200 sent to Teams).
fn confirmed_call(h: &mut Harness) -> (CallKey, Request, Response) {
    let (_, b_invite, call, b_tx) = start_teams_call(h);
    let (_, ok) = answer_and_ack(h, call, &b_invite, b_tx);
    (call, b_invite, ok)
}

/// Another INVITE from Teams while a call is up; returns what the B2BUA did with it.
fn another_teams_invite(h: &mut Harness) -> Vec<Action> {
    let tx = h.server_tx();
    h.b2bua.on_invite(
        tx,
        teams_invite("customer1.sbc.example.test"),
        &teams_source(),
        h.now,
    );
    h.actions()
}

#[test]
fn teams_call_reaches_the_trunk_as_plain_rtp_with_its_own_identifiers() {
    let mut h = Harness::new("");
    let (_, b_invite, _, _) = start_teams_call(&mut h);
    let raw = text(&b_invite.to_bytes());
    assert_eq!(b_invite.uri.to_string(), "sip:+15550100@127.0.0.1:5080");
    // Topology hiding: nothing of the Teams side's identifiers or addresses.
    assert!(!raw.contains("teams-call-1"), "{raw}");
    assert!(!raw.contains("5062"), "{raw}");
    assert!(!raw.contains("pstnhub"), "{raw}");
    assert!(raw.contains("Max-Forwards: 69\r\n"), "{raw}");
    assert!(
        raw.contains("From: \"Teams\" <sip:+15550199@127.0.0.1>;tag="),
        "{raw}"
    );
    let sdp = SessionDescription::from_bytes(&b_invite.body).unwrap();
    let m = &sdp.media[0];
    assert_eq!(m.proto, "RTP/AVP");
    assert!(m.crypto_lines().is_empty());
    assert!(!raw.contains("a=rtcp-mux"));
}

#[test]
fn trunk_answer_reaches_teams_as_srtp_with_our_key_and_the_call_ends_on_trunk_bye() {
    let mut h = Harness::new("");
    let (a_tx, b_invite, call, b_tx) = start_teams_call(&mut h);
    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Invite,
        b_tx,
        response_to(&b_invite, 180, "cc1", None),
        h.now,
    );
    let ringing = h.run();
    assert!(
        matches!(&ringing[..], [(Action::Respond { tx, response }, _)] if *tx == a_tx && response.status == 180)
    );
    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Invite,
        b_tx,
        response_to(&b_invite, 200, "cc1", Some(TRUNK_SDP)),
        h.now,
    );
    let answered = h.run();
    let mut ok = None;
    for (a, _) in answered {
        match a {
            // TDR-INV-08: the 2xx is ACKed at once.
            Action::Ack { request, .. } => assert_eq!(
                text(&request.to_bytes()).lines().next().unwrap(),
                "ACK sip:cc@127.0.0.1:5080 SIP/2.0"
            ),
            Action::Respond { response, .. } => ok = Some(response),
            other => panic!("{other:?}"),
        }
    }
    let ok = ok.expect("200 to Teams");
    assert_eq!(ok.status, 200);
    let raw = text(&ok.to_bytes());
    // TDR-INV-15: Teams refreshes.
    assert!(
        raw.contains("Session-Expires: 1800;refresher=uac\r\n"),
        "{raw}"
    );
    assert!(raw.contains("REFER"), "TDR-XFR-01: {raw}");
    let sdp = SessionDescription::from_bytes(&ok.body).unwrap();
    let m = &sdp.media[0];
    assert_eq!(m.proto, "RTP/SAVP");
    assert!(m.rtcp_mux());
    // TDR-MED-02: answered with the offer's first usable tag and a key of our own.
    let crypto = m.crypto_lines();
    assert_eq!(crypto.len(), 1);
    assert!(
        crypto[0].starts_with("2 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{crypto:?}"
    );
    assert!(!crypto[0].contains("WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"));
    assert_eq!(h.b2bua.active_calls(), 1);

    // BYE from the trunk: 200 there, BYE to Teams at its Contact with the dialog's tags.
    let to_tag = ok.headers.to().unwrap().tag().unwrap().to_owned();
    let from_tag = b_invite.headers.from().unwrap().tag().unwrap().to_owned();
    let bye = request(&format!(
        "BYE sip:+15550199@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKbye1\r\n\
         From: <sip:+15550100@127.0.0.1:5080>;tag=cc1\r\nTo: <sip:+15550199@127.0.0.1>;tag={from_tag}\r\n\
         Call-ID: {}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n",
        b_invite.headers.call_id().unwrap()
    ));
    let bye_tx = h.server_tx();
    assert!(h.b2bua.on_dialog_request(Some(bye_tx), bye, h.now));
    let ended = h.run();
    let mut saw_bye = false;
    for (a, _) in ended {
        match a {
            Action::Respond { tx, response } => {
                assert_eq!(tx, bye_tx);
                assert_eq!(response.status, 200);
            }
            Action::Request {
                request,
                leg,
                dest,
                via,
                ..
            } => {
                assert_eq!(leg, LegId::A);
                assert_eq!(via, "SIP/2.0/TLS customer1.sbc.example.test:5061");
                assert_eq!(request.method, Method::Bye);
                assert_eq!(
                    request.uri.to_string(),
                    "sip:+15550199@127.0.0.1:5062;transport=tls"
                );
                let raw = text(&request.to_bytes());
                assert!(raw.contains(&format!(";tag={to_tag}\r\n")), "{raw}");
                assert!(raw.contains("To: \"Teams\" <sip:+15550199@sip.pstnhub.microsoft.com;user=phone>;tag=ms1\r\n"), "{raw}");
                match dest {
                    Dest::Target(t) => {
                        assert_eq!(t.addr, "127.0.0.1:5062".parse().unwrap());
                        assert_eq!(t.server_name.as_deref(), Some("sip.pstnhub.microsoft.com"));
                    }
                    other => panic!("{other:?}"),
                }
                saw_bye = true;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(saw_bye);
    assert_eq!(h.b2bua.active_calls(), 0);
}

#[test]
fn cancel_while_ringing_gives_487_to_teams_and_cancels_the_trunk() {
    let mut h = Harness::new("");
    let (a_tx, b_invite, call, b_tx) = ringing_call(&mut h);
    h.b2bua.on_cancel(a_tx, &teams_cancel(None), h.now);
    let acts = h.run();
    assert!(
        acts.iter()
            .any(|(a, _)| matches!(a, Action::Cancel { tx, .. } if *tx == b_tx))
    );
    assert!(acts.iter().any(|(a, _)| matches!(a, Action::Respond { tx, response } if *tx == a_tx && response.status == 487)));
    h.b2bua.on_response(
        call,
        LegId::B,
        Purpose::Invite,
        b_tx,
        response_to(&b_invite, 487, "cc1", None),
        h.now,
    );
    assert_eq!(h.b2bua.active_calls(), 0);
}

/// Where the harness's trunk INVITEs go.
fn the_trunk() -> Target {
    Target {
        transport: TransportKind::Udp,
        addr: "127.0.0.1:5080".parse().unwrap(),
        conn: None,
        server_name: None,
        side: Side::Trunk,
    }
}

#[test]
fn a_2xx_after_its_call_has_ended_is_acked_and_ended_with_bye() {
    let mut h = Harness::new("");
    let (a_tx, b_invite, call, _) = ringing_call(&mut h);
    h.b2bua.on_cancel(a_tx, &teams_cancel(None), h.now);
    h.run();
    // The trunk never answers the CANCEL's INVITE: the guard gives up on the call.
    h.b2bua.handle_timeout(h.now + Duration::from_secs(40));
    h.run();
    assert_eq!(h.b2bua.active_calls(), 0);
    // Then its 200 comes after all (via a proxy: Record-Route).
    let mut ok = response_to(&b_invite, 200, "late9", Some(TRUNK_SDP));
    ok.headers
        .set("Contact", "<sip:cc9@127.0.0.1:5090;transport=udp>");
    ok.headers.push("Record-Route", "<sip:10.9.9.9;lr>");
    // Our Via, as every response to our requests carries it (the harness sends none).
    ok.headers.set(
        "Via",
        "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKlate;rport=5060",
    );
    h.b2bua.end_orphan_dialog(call, &ok, the_trunk());
    let acts = h.run();
    let (ack, ack_via, ack_dest) = acts
        .iter()
        .find_map(|(a, _)| match a {
            Action::Ack { request, via, dest } => {
                Some((request.clone(), via.clone(), dest.clone()))
            }
            _ => None,
        })
        .expect("the late 2xx is ACKed");
    assert_eq!(ack_via, "SIP/2.0/UDP 127.0.0.1:5060");
    let raw = text(&ack.to_bytes());
    assert!(
        raw.starts_with("ACK sip:cc9@127.0.0.1:5090;transport=udp SIP/2.0\r\n"),
        "{raw}"
    );
    assert!(raw.contains("Route: <sip:10.9.9.9;lr>\r\n"), "{raw}");
    assert_eq!(ack.headers.to().unwrap().tag(), Some("late9"));
    assert_eq!(
        ack.headers.from().unwrap().tag(),
        b_invite.headers.from().unwrap().tag()
    );
    assert_eq!(
        ack.headers.cseq().unwrap().seq,
        b_invite.headers.cseq().unwrap().seq
    );
    assert_eq!(
        ack.headers.call_id().unwrap(),
        b_invite.headers.call_id().unwrap()
    );
    assert!(matches!(ack_dest, Dest::Target(t) if t.addr == "10.9.9.9:5060".parse().unwrap()));
    let (_, bye, _, _) = sent(&acts, Purpose::Bye).expect("and ended with a BYE");
    assert_eq!(bye.headers.to().unwrap().tag(), Some("late9"));
    assert_eq!(
        bye.headers.cseq().unwrap().seq,
        b_invite.headers.cseq().unwrap().seq + 1
    );
    // Anything but a 2xx to an INVITE is left alone.
    let mut not_invite = response_to(&b_invite, 200, "late9", None);
    not_invite.headers.set("CSeq", "2 BYE");
    h.b2bua.end_orphan_dialog(call, &not_invite, the_trunk());
    assert!(h.run().is_empty());
}

#[test]
fn tenant_call_limit_gives_503_with_retry_after() {
    let mut h = Harness::new("");
    // max_calls of the default tenant is replaced by a test-only limit of 1.
    h.b2bua.limits = limits::Limits::new(&{
        let (_d, mut c) = config("");
        c.tenants[0].max_calls = 1;
        c
    });
    start_teams_call(&mut h);
    let acts = another_teams_invite(&mut h);
    match &acts[..] {
        [Action::Respond { response, .. }] => {
            assert_eq!(response.status, 503);
            assert!(response.headers.get("Retry-After").is_some());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.b2bua.active_calls(), 1);
}

#[test]
fn out_of_media_ports_gives_503_with_retry_after_and_leaves_the_first_call_alone() {
    // Four ports: the two pairs of one call (a range of its own, away from the other tests').
    let mut h = Harness::with_config(config_with_ports("", 54100, 54103));
    let (_, _, first, _) = start_teams_call(&mut h);
    let refused = another_teams_invite(&mut h)
        .into_iter()
        .find_map(|a| match a {
            Action::Respond { response, .. } if response.status >= 200 => Some(response),
            _ => None,
        })
        .expect("a final answer to the second INVITE");
    assert_eq!(refused.status, 503);
    // TDR-INV-13: with Retry-After Teams tries another SBC rather than this one again at once.
    assert_eq!(
        refused.headers.get("Retry-After").map(|v| v.as_ref()),
        Some(&b"1"[..])
    );
    assert_eq!(h.b2bua.active_calls(), 1);
    assert!(h.b2bua.calls.contains_key(&first));
}

/// A call from the trunk toward Teams, up to the B2BUA's actions after the INVITE.
fn trunk_call_to_teams(h: &mut Harness) -> TxId {
    let tx = h.server_tx();
    let head = "INVITE sip:+15550100@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKcc1\r\n\
        Max-Forwards: 70\r\nFrom: <sip:+15550199@127.0.0.1:5080>;tag=cc1\r\nTo: <sip:+15550100@127.0.0.1>\r\n\
        Call-ID: cc-call-1\r\nCSeq: 1 INVITE\r\nContact: <sip:cc@127.0.0.1:5080>\r\n"
        .to_owned();
    h.b2bua.on_invite(
        tx,
        request(&with_body(head, TRUNK_SDP)),
        &trunk_source(),
        h.now,
    );
    tx
}

/// The first request among `acts` sent for `purpose`: its call, the request, where it goes
/// and its client transaction.
fn sent(
    acts: &[(Action, Option<TxId>)],
    purpose: Purpose,
) -> Option<(CallKey, &Request, &Dest, Option<TxId>)> {
    acts.iter().find_map(|(a, t)| match a {
        Action::Request {
            call,
            request,
            purpose: p,
            dest,
            ..
        } if *p == purpose => Some((*call, request, dest, *t)),
        _ => None,
    })
}

/// The INVITE the B2BUA sent toward a Teams proxy, with its call and transaction.
fn invite_to_teams(acts: Vec<(Action, Option<TxId>)>) -> (CallKey, Request, TxId) {
    let (call, invite, _, tx) = sent(&acts, Purpose::Invite).expect("an INVITE toward Teams");
    (call, invite.clone(), tx.unwrap())
}

#[test]
fn a_2xx_from_a_proxy_given_up_on_is_acked_and_ended_and_the_call_stays_on_the_next_tdr_sig_09() {
    let mut h = Harness::new("");
    let a_tx = trunk_call_to_teams(&mut h);
    let acts = h.run();
    let (call, first, first_tx) = invite_to_teams(acts);
    h.b2bua.handle_timeout(h.now + Duration::from_secs(3));
    let (_, second, _) = invite_to_teams(h.run());
    assert_ne!(
        first.headers.cseq().unwrap().seq,
        second.headers.cseq().unwrap().seq
    );

    // The first proxy answers after all.
    let mut late = response_to(&first, 200, "late1", Some(TEAMS_SDP));
    late.headers.set(
        "Contact",
        "<sip:sip.pstnhub.microsoft.com:5061;transport=tls>",
    );
    h.b2bua
        .on_response(call, LegId::B, Purpose::Invite, first_tx, late, h.now);
    let acts = h.run();
    let first_cseq = first.headers.cseq().unwrap().seq;
    let ack = acts
        .iter()
        .find_map(|(a, _)| match a {
            Action::Ack { request, dest, .. } => Some((request, dest)),
            _ => None,
        })
        .expect("the late 2xx is ACKed");
    assert_eq!(ack.0.headers.cseq().unwrap().seq, first_cseq);
    assert_eq!(ack.0.headers.to().unwrap().tag(), Some("late1"));
    assert!(
        matches!(ack.1, Dest::Target(t) if t.addr.port() == 15061),
        "{:?}",
        ack.1
    );
    let (_, bye, bye_dest, _) = sent(&acts, Purpose::Bye).expect("and ended with a BYE");
    assert_eq!(bye.headers.to().unwrap().tag(), Some("late1"));
    assert_eq!(
        bye.headers.call_id().unwrap(),
        first.headers.call_id().unwrap()
    );
    assert!(bye.headers.cseq().unwrap().seq > second.headers.cseq().unwrap().seq);
    assert!(matches!(bye_dest, Dest::Target(t) if t.addr.port() == 15061));
    // Nothing of it reaches the trunk, and the call waits for the second proxy.
    assert!(
        !acts
            .iter()
            .any(|(a, _)| matches!(a, Action::Respond { tx, .. } if *tx == a_tx))
    );
    assert_eq!(h.b2bua.active_calls(), 1);
}

#[test]
fn silent_first_proxy_makes_the_call_go_to_the_second() {
    let mut h = Harness::new("");
    trunk_call_to_teams(&mut h);
    let first: Vec<_> = h
        .run()
        .into_iter()
        .filter_map(|(a, _)| match a {
            Action::Request { request, dest, .. } => Some((request, dest)),
            _ => None,
        })
        .collect();
    let (invite, dest) = &first[0];
    // TDR-INV-01/-03/-05, TDR-HDR-01.
    assert_eq!(
        invite.uri.to_string(),
        "sip:+15550100@sip.pstnhub.microsoft.com:5061;user=phone;transport=tls"
    );
    let raw = text(&invite.to_bytes());
    assert!(
        raw.contains("Contact: <sip:+15550199@customer1.sbc.example.test:5061;transport=tls>\r\n"),
        "{raw}"
    );
    assert!(raw.contains("X-MS-SBC: "), "{raw}");
    assert!(!raw.contains("Record-Route"), "{raw}");
    assert!(
        raw.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{raw}"
    );
    assert!(matches!(dest, Dest::Target(t) if t.addr.port() == 15061));
    let later = h.now + Duration::from_secs(3);
    h.b2bua.handle_timeout(later);
    let second: Vec<_> = h
        .run()
        .into_iter()
        .filter_map(|(a, _)| match a {
            Action::Request { request, dest, .. } => Some((request, dest)),
            _ => None,
        })
        .collect();
    let (invite2, dest2) = &second[0];
    assert!(
        matches!(dest2, Dest::Target(t) if t.addr.port() == 15062),
        "{dest2:?}"
    );
    assert_eq!(invite2.uri.host.to_string(), "sip2.pstnhub.microsoft.com");
}

#[test]
fn trunk_number_rules_and_header_policy_shape_the_trunk_invite_tdr_inv_10() {
    let mut h = Harness::new(
        "[trunk.headers]\np_asserted_identity = \"strip\"\n\
         [[trunk.number_rewrite]]\ntoward = \"trunk\"\nfields = [\"request-uri\", \"to\"]\nmatch = '\\+1(\\d+)'\nreplace = '$1'\n",
    );
    let a_tx = h.server_tx();
    let mut invite = teams_invite("customer1.sbc.example.test");
    invite.headers.push(
        "P-Asserted-Identity",
        "<sip:+15550199@sip.pstnhub.microsoft.com;user=phone>",
    );
    h.b2bua.on_invite(a_tx, invite, &teams_source(), h.now);
    let b_invite = h
        .run()
        .into_iter()
        .find_map(|(a, _)| match a {
            Action::Request { request, .. } => Some(request),
            _ => None,
        })
        .unwrap();
    assert_eq!(b_invite.uri.user.as_deref(), Some("5550100"));
    let raw = text(&b_invite.to_bytes());
    assert!(
        raw.contains("To: <sip:5550100@127.0.0.1:5080>\r\n"),
        "{raw}"
    );
    assert!(
        raw.contains("From: \"Teams\" <sip:+15550199@127.0.0.1>"),
        "From keeps its number: {raw}"
    );
    assert!(!raw.contains("P-Asserted-Identity"), "{raw}");
}

mod auth;
mod in_dialog;
mod reason;
mod reliable;
mod ring_timeout;
mod snapshot;
mod transfer;
mod trunk_failover;

/// Log lines written while `f` runs (info and above), for tests of what an operator reads.
fn logged(f: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let out = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || out.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = buf.0.lock().unwrap().clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn a_refusal_from_teams_is_logged_whole_with_call_and_tenant_tdr_mon_02() {
    let mut h = Harness::new("");
    trunk_call_to_teams(&mut h);
    let (call, invite, tx) = invite_to_teams(h.run());
    let mut refusal = response_to(&invite, 403, "ms9", None);
    refusal.reason = "Forbidden".into();
    refusal.headers.push(
        "ms-diagnostics",
        "10199;reason=\"Not a valid tenant\";source=\"sip.pstnhub.microsoft.com\"",
    );
    let log = logged(|| {
        h.b2bua
            .on_response(call, LegId::B, Purpose::Invite, tx, refusal, h.now);
    });
    let line = log
        .lines()
        .find(|l| l.contains("Teams answered with an error"))
        .unwrap_or_else(|| panic!("no log line for the refusal:\n{log}"));
    assert!(line.contains("tenant=customer1.sbc.example.test"), "{line}");
    assert!(line.contains(&format!("call={call}")), "{line}");
    assert!(line.contains("SIP/2.0 403 Forbidden"), "{line}");
    assert!(
        line.contains("ms-diagnostics: 10199;reason=\\\"Not a valid tenant\\\""),
        "{line}"
    );
}

#[test]
fn without_a_cdr_file_each_call_ends_with_one_info_line_and_no_numbers() {
    let mut h = Harness::new("");
    let (call, _, ok) = confirmed_call(&mut h);
    let tag = ok.headers.to().unwrap().tag().unwrap().to_owned();
    let bye = teams_in_dialog("BYE", 2, "z9hG4bKbye9", &tag);
    let btx = h.server_tx();
    let log = logged(|| {
        assert!(h.b2bua.on_dialog_request(Some(btx), bye, h.now));
    });
    let ended: Vec<&str> = log.lines().filter(|l| l.contains("call ended")).collect();
    assert_eq!(ended.len(), 1, "{log}");
    let line = ended[0];
    for want in [
        format!("call={call}"),
        "tenant=customer1.sbc.example.test".to_owned(),
        "trunk=cc1".to_owned(),
        "status=200".to_owned(),
        "direction=\"teams_to_trunk\"".to_owned(),
        "reason=\"bye\"".to_owned(),
        "by=Teams".to_owned(),
        "teams_call_id=teams-call-1@pstnhub".to_owned(),
    ] {
        assert!(line.contains(&want), "{want} missing: {line}");
    }
    assert!(!line.contains("5550"), "a number in the log: {line}");
}
