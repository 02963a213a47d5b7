use bytes::Bytes;

use super::*;
use crate::sip::message::Message;

fn policy() -> ValidationPolicy {
    ValidationPolicy {
        allowed_methods: vec![
            Method::Invite,
            Method::Ack,
            Method::Bye,
            Method::Cancel,
            Method::Options,
        ],
        supported_option_tags: vec!["timer", "replaces"],
        accepted_body_types: vec!["application/sdp"],
    }
}

fn check(raw: &str) -> Result<(), Rejection> {
    let Ok(Message::Request(r)) = Message::parse_datagram(Bytes::from(raw.to_owned())) else {
        panic!("does not parse: {raw}");
    };
    validate_request(&r, &policy())
}

const HEAD: &str = "Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: id1\r\n";

#[test]
fn a_plain_invite_passes() {
    let r = format!(
        "INVITE sip:c@d SIP/2.0\r\n{HEAD}CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nl: 3\r\n\r\nv=0"
    );
    assert_eq!(check(&r), Ok(()));
}

#[test]
fn missing_max_forwards_only_tolerated_from_rfc2543_elements() {
    let r = format!("OPTIONS sip:c@d SIP/2.0\r\n{HEAD}CSeq: 1 OPTIONS\r\n\r\n");
    assert_eq!(
        check(&r).unwrap_err().reason,
        "Bad Request - Missing Max-Forwards"
    );
    let old = r.replace(";branch=z9hG4bKx", "");
    assert_eq!(check(&old), Ok(()));
}

#[test]
fn reasons_name_the_problem() {
    let no_cid =
        format!("OPTIONS sip:c@d SIP/2.0\r\n{HEAD}CSeq: 1 OPTIONS\r\nMax-Forwards: 1\r\n\r\n")
            .replace("Call-ID: id1\r\n", "");
    assert_eq!(
        check(&no_cid).unwrap_err().reason,
        "Bad Request - Missing Call-ID"
    );
    let two_to = format!(
        "OPTIONS sip:c@d SIP/2.0\r\n{HEAD}To: <sip:e@f>\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 1\r\n\r\n"
    );
    assert_eq!(
        check(&two_to).unwrap_err().reason,
        "Bad Request - Multiple To"
    );
    let bare =
        format!("OPTIONS sip:c@d SIP/2.0\r\n{HEAD}CSeq: 1 OPTIONS\r\nMax-Forwards: 1\r\n\r\n")
            .replace("z9hG4bKx", "z9hG4bK");
    assert_eq!(check(&bare).unwrap_err().status, 400);
}

#[test]
fn method_errors_carry_allow() {
    let r = format!("FOO sip:c@d SIP/2.0\r\n{HEAD}CSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\r\n");
    let e = check(&r).unwrap_err();
    assert_eq!(e.status, 501);
    assert_eq!(
        e.extra_headers,
        vec![("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS".to_owned())]
    );
    let r =
        format!("REGISTER sip:c@d SIP/2.0\r\n{HEAD}CSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n\r\n");
    assert_eq!(check(&r).unwrap_err().status, 405);
}

#[test]
fn require_unknown_tag_gets_420_but_not_on_ack() {
    let r = format!(
        "OPTIONS sip:c@d SIP/2.0\r\n{HEAD}CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nRequire: timer, foo\r\n\r\n"
    );
    let e = check(&r).unwrap_err();
    assert_eq!(
        (e.status, e.extra_headers),
        (420, vec![("Unsupported", "foo".to_owned())])
    );
    let ack = format!(
        "ACK sip:c@d SIP/2.0\r\n{HEAD}CSeq: 1 ACK\r\nMax-Forwards: 70\r\nRequire: foo\r\n\r\n"
    );
    assert_eq!(check(&ack), Ok(()));
}

#[test]
fn response_to_broadcast_via_is_dropped() {
    let raw = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK2\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n";
    let Ok(Message::Response(r)) = Message::parse(Bytes::from(raw)) else {
        panic!()
    };
    assert!(matches!(
        validate_response(&r),
        Err(ResponseDefect::NonUnicastVia { .. })
    ));
    let ok = raw.replace("255.255.255.255", "192.0.2.2");
    let Ok(Message::Response(r)) = Message::parse(Bytes::from(ok)) else {
        panic!()
    };
    assert_eq!(validate_response(&r), Ok(()));
}
