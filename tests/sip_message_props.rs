//! Properties of the SIP message code: print∘parse is the identity on
//! generated requests, and no input, random or a mangled torture message,
//! makes parsing, typed access, validation or framing panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use bytes::{Bytes, BytesMut};
use drawbridge::sip::Method;
use drawbridge::sip::framing::next_frame;
use drawbridge::sip::message::{Host, Message, Request, Scheme, Uri, error_response_for_raw};
use drawbridge::sip::validate::{ValidationPolicy, validate_request, validate_response};
use proptest::prelude::*;

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Invite),
        Just(Method::Ack),
        Just(Method::Bye),
        Just(Method::Options),
        Just(Method::Refer),
        "[A-Z][A-Z0-9_.!%*+-]{0,10}".prop_map(|s| Method::from_token(&s)),
    ]
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5}){0,2}".prop_map(Host::Domain),
        any::<[u8; 4]>().prop_map(|o| Host::V4(o.into())),
        any::<[u16; 8]>().prop_map(|s| Host::V6(s.into())),
    ]
}

fn uri() -> impl Strategy<Value = Uri> {
    (
        prop_oneof![Just(Scheme::Sip), Just(Scheme::Sips)],
        proptest::option::of("[a-zA-Z0-9._~+-]{1,12}"),
        host(),
        proptest::option::of(1u16..),
        proptest::collection::vec(
            (
                "[a-z][a-z0-9-]{0,6}",
                proptest::option::of("[a-zA-Z0-9.-]{1,8}"),
            ),
            0..4,
        ),
    )
        .prop_map(|(scheme, user, host, port, params)| Uri {
            scheme,
            user,
            password: None,
            host,
            port,
            params,
            headers: Vec::new(),
        })
}

fn header() -> impl Strategy<Value = (String, String)> {
    (
        "[A-Za-z][A-Za-z0-9-]{0,15}",
        // Printable, no white space at either end (it would be trimmed).
        "[!-~]([ -~]{0,40}[!-~])?",
    )
        .prop_filter("Content-Length is written by to_bytes", |(n, _)| {
            !n.eq_ignore_ascii_case("content-length") && !n.eq_ignore_ascii_case("l")
        })
}

proptest! {
    #[test]
    fn print_then_parse_gives_the_same_request(
        method in method(),
        uri in uri(),
        headers in proptest::collection::vec(header(), 0..20),
        body in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut req = Request::new(method, uri);
        for (n, v) in &headers {
            req.headers.push(n, Bytes::from(v.clone()));
        }
        req.headers.push("Content-Length", Bytes::from(body.len().to_string()));
        req.body = Bytes::from(body);
        let printed = req.to_bytes();
        let parsed = Message::parse(printed.clone()).unwrap();
        prop_assert_eq!(&parsed, &Message::Request(req.clone()));
        let datagram = Message::parse_datagram(printed.clone()).unwrap();
        prop_assert_eq!(datagram, Message::Request(req));
        // And on a stream, whatever way the octets are cut.
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for chunk in printed.chunks(7) {
            buf.extend_from_slice(chunk);
            while let Some(f) = next_frame(&mut buf, 65_535).unwrap() {
                frames.push(f);
            }
        }
        prop_assert_eq!(frames, vec![drawbridge::sip::framing::Frame::Message(printed)]);
    }

    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..2000)) {
        exercise(&raw);
    }

    #[test]
    fn sip_like_noise_never_panics(
        lines in proptest::collection::vec("[A-Za-z:;,<>\"\\[\\]@= /\\\\0-9.\t-]{0,60}", 0..30),
        sep in prop_oneof![Just("\r\n"), Just("\n"), Just("\r\n "), Just("\r")],
    ) {
        let mut raw = String::from("INVITE sip:a@b SIP/2.0\r\n");
        for l in &lines {
            raw.push_str(l);
            raw.push_str(sep);
        }
        exercise(raw.as_bytes());
    }

    #[test]
    fn mangled_torture_messages_never_panic(
        file in 0usize..61,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut raw = torture_files()[file].clone();
        for (at, byte, op) in edits {
            if raw.is_empty() {
                break;
            }
            let i = at.index(raw.len());
            match op {
                0 => raw[i] = byte,
                1 => raw.insert(i, byte),
                _ => { raw.remove(i); }
            }
        }
        exercise(&raw);
    }
}

fn torture_files() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/sip-torture");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dat"))
        .collect();
    names.sort();
    names.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn policy() -> ValidationPolicy {
    ValidationPolicy {
        allowed_methods: vec![Method::Invite, Method::Ack, Method::Bye, Method::Options],
        supported_option_tags: vec!["timer"],
        accepted_body_types: vec!["application/sdp"],
    }
}

/// Everything a received buffer can go through.
fn exercise(raw: &[u8]) {
    let bytes = Bytes::copy_from_slice(raw);
    for parsed in [
        Message::parse(bytes.clone()),
        Message::parse_datagram(bytes),
    ] {
        match parsed {
            Ok(m) => {
                let h = m.headers();
                let _ = (
                    h.top_via(),
                    h.vias(),
                    h.from(),
                    h.to(),
                    h.call_id(),
                    h.cseq(),
                );
                let _ = (
                    h.max_forwards(),
                    h.contacts(),
                    h.content_type(),
                    h.option_tags("Require"),
                );
                let _ = h.values("Route").count();
                match &m {
                    Message::Request(r) => {
                        let _ = validate_request(r, &policy());
                    }
                    Message::Response(r) => {
                        let _ = validate_response(r);
                    }
                }
                // What we print, we can read back.
                let again = Message::parse(m.to_bytes()).expect("reprint parses");
                assert_eq!(again.body(), m.body());
            }
            Err(e) => {
                if let Some((code, reason)) = e.status()
                    && let Some(answer) = error_response_for_raw(raw, code, reason)
                {
                    Message::parse(answer).expect("our error answer parses");
                }
            }
        }
    }
    let mut buf = BytesMut::from(raw);
    for _ in 0..raw.len() + 1 {
        match next_frame(&mut buf, 4096) {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
}
