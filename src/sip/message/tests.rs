use super::*;

fn req(raw: &[u8]) -> Request {
    match Message::parse_datagram(Bytes::copy_from_slice(raw)) {
        Ok(Message::Request(r)) => r,
        other => panic!("not a request: {other:?}"),
    }
}

const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.example.com\r\n\
CSeq: 314159 INVITE\r\n\
X-Zeta: keep me\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\r";

#[test]
fn values_are_slices_of_the_received_buffer() {
    let buf = Bytes::from_static(INVITE);
    let Message::Request(r) = Message::parse(buf.clone()).unwrap() else {
        panic!()
    };
    let cid = r.headers.get("Call-ID").unwrap();
    let base = buf.as_ptr() as usize;
    let p = cid.as_ptr() as usize;
    assert!(
        p >= base && p + cid.len() <= base + buf.len(),
        "value was copied"
    );
    assert_eq!(r.body, Bytes::from_static(b"v=0\r"));
    assert_eq!(
        r.headers.cseq().unwrap(),
        CSeq {
            seq: 314159,
            method: Method::Invite
        }
    );
    assert_eq!(r.headers.from().unwrap().tag(), Some("1928301774"));
    assert_eq!(r.headers.top_via().unwrap().sent_by(), "192.0.2.1:5060");
}

#[test]
fn to_bytes_round_trips_exactly_for_canonical_input() {
    let m = Message::parse(Bytes::from_static(INVITE)).unwrap();
    assert_eq!(&m.to_bytes()[..], INVITE);
}

#[test]
fn folding_is_unfolded_and_lws_before_colon_accepted() {
    let r = req(b"OPTIONS sip:a@b SIP/2.0\r\nSubject  :  one\r\n  two\r\n\tthree\r\nTO :\r\n sip:x@y\r\n\r\n");
    assert_eq!(&r.headers.get("subject").unwrap()[..], b"one two three");
    assert_eq!(&r.headers.get("to").unwrap()[..], b"sip:x@y");
}

#[test]
fn stream_parse_is_strict_about_content_length() {
    let no_cl = Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
    assert_eq!(
        Message::parse(no_cl.clone()),
        Err(ParseError::Request(Defect::MissingContentLength))
    );
    assert!(Message::parse_datagram(no_cl).is_ok());
    let extra = Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\nxx");
    assert!(matches!(
        Message::parse(extra.clone()),
        Err(ParseError::Request(Defect::TrailingOctets { count: 2 }))
    ));
    assert_eq!(Message::parse_datagram(extra).unwrap().body().len(), 0);
    let short = Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\nl: 9\r\n\r\nxx");
    let e = Message::parse_datagram(short).unwrap_err();
    assert_eq!(
        e.status(),
        Some((400, "Bad Request - Content-Length Exceeds Message"))
    );
}

#[test]
fn version_and_status_line_errors_know_their_answer() {
    let e = Message::parse_datagram(Bytes::from_static(b"OPTIONS sip:a@b SIP/7.0\r\n\r\n"))
        .unwrap_err();
    assert_eq!(e.status(), Some((505, "Version Not Supported")));
    let e = Message::parse_datagram(Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0  \r\n\r\n"))
        .unwrap_err();
    assert_eq!(e.status().map(|s| s.0), Some(400));
    let e =
        Message::parse_datagram(Bytes::from_static(b"SIP/2.0 4294967301 big\r\n\r\n")).unwrap_err();
    assert!(e.is_response());
    assert_eq!(e.status(), None);
    let e =
        Message::parse_datagram(Bytes::from_static(b"SIP/2.0 200 \xff\xfe\r\n\r\n")).unwrap_err();
    assert_eq!(e, ParseError::Response(Defect::ReasonNotUtf8));
}

#[test]
fn reason_phrase_kept_byte_exact_and_may_be_empty() {
    let raw = "SIP/2.0 200 = 2**3 * 5**2 но сто девяносто девять\r\nl: 0\r\n\r\n";
    let Message::Response(r) = Message::parse(Bytes::from(raw)).unwrap() else {
        panic!()
    };
    assert_eq!(r.reason, "= 2**3 * 5**2 но сто девяносто девять");
    assert_eq!(&r.to_bytes()[..], raw.as_bytes());
    let Message::Response(r) =
        Message::parse_datagram(Bytes::from_static(b"SIP/2.0 100 \r\n\r\n")).unwrap()
    else {
        panic!()
    };
    assert_eq!((r.status, r.reason.as_str()), (100, ""));
}

#[test]
fn limits_on_lines_and_header_count() {
    let mut long = b"OPTIONS sip:a@b SIP/2.0\r\nX: ".to_vec();
    long.extend(std::iter::repeat_n(b'a', MAX_LINE_LEN + 1));
    long.extend_from_slice(b"\r\n\r\n");
    assert!(matches!(
        Message::parse_datagram(Bytes::from(long)),
        Err(ParseError::Request(Defect::LineTooLong { .. }))
    ));
    let mut many = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
    for _ in 0..=MAX_HEADERS {
        many.extend_from_slice(b"X: y\r\n");
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(
        Message::parse_datagram(Bytes::from(many)),
        Err(ParseError::Request(Defect::TooManyHeaders {
            limit: MAX_HEADERS
        }))
    );
}

#[test]
fn for_request_copies_dialog_headers_and_adds_to_tag() {
    let r = req(b"BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP p1;branch=z9hG4bK1, SIP/2.0/UDP p2;branch=z9hG4bK2\r\nv: SIP/2.0/UDP p3;branch=z9hG4bK3\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d>\r\ni: cid\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nSubject: x\r\n\r\n");
    let rsp = Response::for_request(&r, 481, "Call/Transaction Does Not Exist", Some("srv1"));
    let vias: Vec<String> = rsp
        .headers
        .vias()
        .unwrap()
        .iter()
        .map(|v| v.sent_by())
        .collect();
    assert_eq!(vias, ["p1", "p2", "p3"]);
    assert_eq!(rsp.headers.to().unwrap().tag(), Some("srv1"));
    assert_eq!(rsp.headers.call_id().unwrap(), "cid");
    assert!(rsp.headers.get("Subject").is_none());
    let printed = rsp.to_bytes();
    assert!(printed.starts_with(b"SIP/2.0 481 Call/Transaction Does Not Exist\r\n"));
    assert!(printed.ends_with(b"Content-Length: 0\r\n\r\n"));
    // An existing tag is never replaced.
    let again = Message::parse(printed).unwrap();
    let Message::Response(again) = again else {
        panic!()
    };
    let mut fake = Request::new(Method::Bye, Uri::parse("sip:a@b").unwrap());
    fake.headers = again.headers;
    assert_eq!(
        Response::for_request(&fake, 200, "OK", Some("other"))
            .headers
            .to()
            .unwrap()
            .tag(),
        Some("srv1")
    );
}

#[test]
fn error_response_for_raw_uses_what_it_finds() {
    let raw = b"INVITE sip:a@b SIP/7.0\r\nVia: SIP/2.0/UDP h:5060;branch=z9hG4bK1\r\nTo: <sip:a@b>\r\nFrom: <sip:c@d>;tag=9\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n";
    let out = error_response_for_raw(raw, 505, "Version Not Supported").unwrap();
    let Message::Response(r) = Message::parse(out).unwrap() else {
        panic!()
    };
    assert_eq!(r.status, 505);
    assert_eq!(
        r.headers.top_via().unwrap().branch.as_deref(),
        Some("z9hG4bK1")
    );
    assert!(r.headers.to().unwrap().tag().is_some());
    assert_eq!(r.headers.cseq().unwrap().seq, 1);
    // Same request, same tag: a stateless answer is repeatable.
    let again = error_response_for_raw(raw, 505, "Version Not Supported").unwrap();
    assert_eq!(
        error_response_for_raw(raw, 505, "Version Not Supported").unwrap(),
        again
    );
    assert_eq!(
        error_response_for_raw(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n", 400, "x"),
        None
    );
    assert_eq!(
        error_response_for_raw(b"INVITE sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n", 400, "x"),
        None
    );
    assert_eq!(error_response_for_raw(b"\x00\x01garbage", 400, "x"), None);
}

#[test]
fn binary_body_with_nul_is_untouched() {
    let mut raw = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Type: application/octet-stream\r\nContent-Length: 6\r\n\r\n".to_vec();
    raw.extend_from_slice(&[0, 1, b'\r', b'\n', 0, 0xff]);
    let m = Message::parse(Bytes::from(raw.clone())).unwrap();
    assert_eq!(&m.body()[..], &[0, 1, b'\r', b'\n', 0, 0xff]);
    assert_eq!(&m.to_bytes()[..], &raw[..]);
}

#[test]
fn content_length_rewritten_in_place_on_print() {
    let mut r = req(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nl: 0\r\nX: y\r\n\r\n");
    r.body = Bytes::from_static(b"hello");
    assert_eq!(
        &r.to_bytes()[..],
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nl: 5\r\nX: y\r\n\r\nhello"
    );
    let mut built = Request::new(
        Method::Options,
        Uri::parse("sip:[2001:db8::1]:5061").unwrap(),
    );
    built
        .headers
        .push("Via", "SIP/2.0/TLS [2001:db8::2];branch=z9hG4bK9");
    assert_eq!(
        &built.to_bytes()[..],
        b"OPTIONS sip:[2001:db8::1]:5061 SIP/2.0\r\nVia: SIP/2.0/TLS [2001:db8::2];branch=z9hG4bK9\r\nContent-Length: 0\r\n\r\n"
    );
}
