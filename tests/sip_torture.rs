//! Every message of RFC 4475 and RFC 5118 (../shared/testdata/sip-torture)
//! through the path a UDP datagram takes: parse_datagram, then
//! validate_request / validate_response, and the outcome compared with the
//! manifest's action. Plus round trips of the ordinary example messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use drawbridge::sip::Method;
use drawbridge::sip::message::{Host, Message, Request, Response, Scheme, error_response_for_raw};
use drawbridge::sip::validate::{ValidationPolicy, validate_request, validate_response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Accept,
    Reply(u16),
    Drop,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata")
}

fn sbc_policy() -> ValidationPolicy {
    use Method::*;
    ValidationPolicy {
        allowed_methods: vec![
            Invite, Ack, Bye, Cancel, Options, Info, Notify, Refer, Prack, Update,
        ],
        supported_option_tags: vec!["replaces", "timer", "100rel"],
        accepted_body_types: vec![
            "application/sdp",
            "multipart/mixed",
            "application/pidf+xml",
            "message/sipfrag",
        ],
    }
}

/// The SBC policy plus REGISTER and MESSAGE, to show that the messages the
/// B2BUA turns away for their method are otherwise parsed and accepted.
fn registrar_policy() -> ValidationPolicy {
    let mut p = sbc_policy();
    p.allowed_methods
        .extend([Method::Register, Method::Message]);
    p
}

/// What the SBC does with one datagram. For a rejection it also proves the
/// answer can be built and read back.
fn outcome(raw: &[u8], policy: &ValidationPolicy) -> Outcome {
    outcome_and_reason(raw, policy).0
}

fn outcome_and_reason(raw: &[u8], policy: &ValidationPolicy) -> (Outcome, String) {
    match Message::parse_datagram(Bytes::copy_from_slice(raw)) {
        Ok(Message::Request(req)) => match validate_request(&req, policy) {
            Ok(()) => (Outcome::Accept, String::new()),
            Err(rej) => {
                let mut rsp = Response::for_request(&req, rej.status, &rej.reason, Some("sbc1"));
                for (n, v) in &rej.extra_headers {
                    rsp.headers.push(n, v.clone());
                }
                let back = Message::parse(rsp.to_bytes()).expect("our own answer parses");
                let Message::Response(back) = back else {
                    panic!("answer is not a response")
                };
                assert_eq!(back.status, rej.status);
                assert_eq!(
                    back.headers.get_all("Via").count(),
                    req.headers.get_all("Via").count()
                );
                (Outcome::Reply(rej.status), rej.reason.into_owned())
            }
        },
        Ok(Message::Response(rsp)) => match validate_response(&rsp) {
            Ok(()) => (Outcome::Accept, String::new()),
            Err(e) => (Outcome::Drop, e.to_string()),
        },
        Err(e) if e.is_response() => (Outcome::Drop, e.to_string()),
        Err(e) => match e.status() {
            Some((code, reason)) => {
                let answer = error_response_for_raw(raw, code, reason)
                    .unwrap_or_else(|| panic!("no answer could be built for {e}"));
                let Ok(Message::Response(a)) = Message::parse(answer) else {
                    panic!("bad answer")
                };
                assert_eq!(a.status, code);
                assert!(a.headers.get("Via").is_some());
                (Outcome::Reply(code), reason.to_owned())
            }
            None => (Outcome::Drop, e.to_string()),
        },
    }
}

/// The outcomes the manifest's action allows.
fn allowed(action: &str) -> Vec<Outcome> {
    if action == "accept and process" {
        return vec![Outcome::Accept];
    }
    if action == "drop" {
        return vec![Outcome::Drop];
    }
    let rest = action.strip_prefix("reply ").expect("unknown action");
    let mut out: Vec<Outcome> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|t| t.len() == 3)
        .map(|t| Outcome::Reply(t.parse().unwrap()))
        .collect();
    if rest.contains("or process") {
        out.push(Outcome::Accept);
    }
    assert!(!out.is_empty(), "no code in {action}");
    out
}

/// Where the B2BUA role gives another answer than the manifest's proxy/registrar view.
fn b2bua_answer(file: &str) -> Option<(Outcome, &'static str)> {
    const NOT_A_REGISTRAR: &str = "REGISTER: the SBC is not a registrar, so 405 with Allow (RFC 3261 §8.2.1); accepted with REGISTER allowed";
    Some(match file {
        "escnull.dat"
        | "dblreq.dat"
        | "cparam01.dat"
        | "cparam02.dat"
        | "regescrt.dat"
        | "ipv6-good.dat"
        | "port-ambiguous.dat"
        | "port-unambiguous.dat" => (Outcome::Reply(405), NOT_A_REGISTRAR),
        // The manifest's 400 is a registrar refusing a non-SIP AOR in To; the
        // SBC refuses the method first, and with REGISTER allowed it accepts
        // (it does not bind AORs).
        "unksm2.dat" => (Outcome::Reply(405), NOT_A_REGISTRAR),
        // The SBC does not carry MESSAGE; with MESSAGE allowed it is accepted.
        "mpart01.dat" => (
            Outcome::Reply(405),
            "MESSAGE is not bridged by the SBC: 405 with Allow",
        ),
        _ => return None,
    })
}

/// A 400 must be for the defect the message was built to carry.
fn why_400(file: &str) -> Option<&'static str> {
    Some(match file {
        "badaspec.dat" | "quotbal.dat" => "Malformed To",
        "badbranch.dat" => "magic cookie",
        "baddn.dat" => "Malformed From",
        "badinv01.dat" => "Malformed Via",
        "clerr.dat" => "Content-Length Exceeds Message",
        "escruri.dat" => "Headers in Request-URI",
        "insuf.dat" => "Missing Call-ID",
        "ipv6-bad.dat" | "ltgtruri.dat" => "Malformed Request-URI",
        "lwsruri.dat" | "lwsstart.dat" | "trws.dat" => "Malformed Request-Line",
        "mcl01.dat" => "Conflicting Content-Length",
        "mismatch01.dat" => "CSeq method",
        "multi01.dat" => "Multiple",
        "ncl.dat" => "Malformed Content-Length",
        "regbadct.dat" => "Malformed Contact",
        "scalar02.dat" => "CSeq out of range",
        _ => return None,
    })
}

fn manifest() -> Vec<(String, String)> {
    let text = fs::read_to_string(dir().join("sip-torture/MANIFEST.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols[0].to_owned(), cols[4].to_owned())
        })
        .collect()
}

fn read(file: &str) -> Vec<u8> {
    fs::read(dir().join("sip-torture").join(file)).unwrap()
}

#[test]
fn every_torture_message_gets_the_manifest_answer() {
    let entries = manifest();
    assert_eq!(entries.len(), 61, "manifest should list 61 messages");
    let mut table = BTreeMap::new();
    let mut failures = Vec::new();
    for (file, action) in &entries {
        let raw = read(file);
        let (got, reason) = outcome_and_reason(&raw, &sbc_policy());
        let ok = match b2bua_answer(file) {
            Some((expected, _why)) => got == expected,
            None => allowed(action).contains(&got),
        };
        if !ok {
            failures.push(format!("{file}: manifest '{action}', got {got:?} {reason}"));
        }
        if let Some(why) = why_400(file)
            && !reason.contains(why)
        {
            failures.push(format!(
                "{file}: 400 for the wrong reason: {reason:?}, expected {why:?}"
            ));
        }
        table.insert(file.clone(), (got, reason));
    }
    for (file, (got, reason)) in &table {
        println!("| {file} | {got:?} | {reason} |");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn messages_refused_only_for_their_method_are_accepted_when_it_is_allowed() {
    for file in [
        "escnull.dat",
        "dblreq.dat",
        "cparam01.dat",
        "cparam02.dat",
        "regescrt.dat",
        "ipv6-good.dat",
        "port-ambiguous.dat",
        "port-unambiguous.dat",
        "unksm2.dat",
        "mpart01.dat",
        "regaut01.dat",
    ] {
        assert_eq!(
            outcome(&read(file), &registrar_policy()),
            Outcome::Accept,
            "{file}"
        );
    }
}

fn request(file: &str) -> Request {
    match Message::parse_datagram(Bytes::from(read(file))).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => panic!("{file} is a response"),
    }
}

fn v6(s: &str) -> Host {
    Host::V6(s.parse().unwrap())
}

#[test]
fn tricky_but_valid_messages_are_read_right() {
    // wsinv: folding, LWS around colons, leading zeros, unknown headers verbatim.
    let r = request("wsinv.dat");
    assert_eq!(r.headers.max_forwards().unwrap(), Some(68));
    assert_eq!(r.headers.cseq().unwrap().seq, 9);
    assert_eq!(
        &r.headers.get("NewFangledHeader").unwrap()[..],
        b"newfangled value continued newfangled value"
    );
    assert_eq!(
        &r.headers.get("UnknownHeaderWithUnusualValue").unwrap()[..],
        b";;,,;;,;"
    );
    assert_eq!(r.headers.vias().unwrap().len(), 3);
    assert_eq!(r.headers.from().unwrap().tag(), Some("98asjd8"));
    assert_eq!(r.headers.to().unwrap().tag(), Some("1918181833n"));
    assert_eq!(
        r.headers.contacts().unwrap()[0].param("q"),
        Some(Some("0.33"))
    );
    assert_eq!(r.headers.get("s").map(|v| v.len()), Some(0));
    assert_eq!(r.body.len(), 150);

    // intmeth: unknown method, quoted NUL/BEL/DEL in To's display name.
    let r = request("intmeth.dat");
    assert_eq!(
        r.method,
        Method::Other("!interesting-Method0123456789_*+`.%indeed'~".into())
    );
    assert!(r.headers.to().unwrap().display.unwrap().contains('\0'));

    // esc01 / escnull / esc02: escapes kept, never unescaped twice or cut at %00.
    let r = request("esc01.dat");
    assert_eq!(r.uri.user.as_deref(), Some("sips%3Auser%40example.com"));
    assert_eq!(
        r.headers.contacts().unwrap()[0].uri.param("n%61me"),
        Some(Some("v%61lue%25%34%31"))
    );
    let users: Vec<String> = request("escnull.dat")
        .headers
        .contacts()
        .unwrap()
        .into_iter()
        .map(|c| c.uri.user.unwrap())
        .collect();
    assert_eq!(users, ["%00", "%00%00"]);
    let r = request("esc02.dat");
    assert_eq!(r.method, Method::Other("RE%47IST%45R".into()));
    assert_eq!(r.headers.contacts().unwrap().len(), 2);
    assert_eq!(r.headers.from().unwrap().display.as_deref(), Some("%Z%45"));

    // dblreq: only the REGISTER, its Content-Length 0 body.
    let r = request("dblreq.dat");
    assert_eq!(r.method, Method::Register);
    assert!(r.body.is_empty());

    // semiuri: ;par belongs to the user part.
    let r = request("semiuri.dat");
    assert_eq!(r.uri.user.as_deref(), Some("user;par=u%40example.net"));
    assert!(r.uri.params.is_empty());

    let transports: Vec<String> = request("transports.dat")
        .headers
        .vias()
        .unwrap()
        .into_iter()
        .map(|v| v.transport)
        .collect();
    assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);

    // mpart01: binary body with NUL octets, cut by Content-Length.
    let raw = read("mpart01.dat");
    let r = request("mpart01.dat");
    assert_eq!(r.body.len(), 553);
    assert!(r.body.contains(&0));
    assert_eq!(&r.body[..], &raw[raw.len() - 553..]);

    // unreason / noreason: reason phrases exactly as sent.
    let raw = read("unreason.dat");
    let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
    let Message::Response(rsp) = Message::parse_datagram(Bytes::from(raw.clone())).unwrap() else {
        panic!()
    };
    assert_eq!(rsp.reason.as_bytes(), &raw[12..line_end]);
    let Message::Response(rsp) =
        Message::parse_datagram(Bytes::from(read("noreason.dat"))).unwrap()
    else {
        panic!()
    };
    assert_eq!((rsp.status, rsp.reason.as_str()), (100, ""));

    // longreq: nothing truncated.
    let r = request("longreq.dat");
    assert_eq!(r.headers.vias().unwrap().len(), 34);
    assert!(r.headers.call_id().unwrap().ends_with("reallylongcallid"));

    // cparam01 / cparam02 / regescrt: header parameter vs URI parameter vs URI header.
    let c = &request("cparam01.dat").headers.contacts().unwrap()[0];
    assert_eq!(
        (c.param("unknownparam"), c.uri.param("unknownparam")),
        (Some(None), None)
    );
    let c = &request("cparam02.dat").headers.contacts().unwrap()[0];
    assert_eq!(
        (c.param("unknownparam"), c.uri.param("unknownparam")),
        (None, Some(None))
    );
    let c = &request("regescrt.dat").headers.contacts().unwrap()[0];
    assert_eq!(
        c.uri.headers,
        vec![("Route".to_owned(), "%3Csip:sip.example.com%3E".to_owned())]
    );

    // inv2543: no Content-Length, the body is the rest of the datagram.
    let raw = read("inv2543.dat");
    let r = request("inv2543.dat");
    let head = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(r.body.len(), raw.len() - head);

    // unksm2: non-SIP URIs in To, From and Contact parse without crashing.
    let r = request("unksm2.dat");
    assert_eq!(
        r.headers.to().unwrap().uri.scheme,
        Scheme::Other("isbn".into())
    );
    assert_eq!(
        r.headers.contacts().unwrap()[0].uri.scheme,
        Scheme::Other("name".into())
    );
}

#[test]
fn ipv6_references_of_rfc5118() {
    assert_eq!(request("ipv6-good.dat").uri.host, v6("2001:db8::10"));
    let r = request("port-ambiguous.dat");
    assert_eq!((r.uri.host, r.uri.port), (v6("2001:db8::10:5070"), None));
    let r = request("port-unambiguous.dat");
    assert_eq!((r.uri.host, r.uri.port), (v6("2001:db8::10"), Some(5070)));
    for f in [
        "via-received-param-with-delim.dat",
        "via-received-param-no-delim.dat",
    ] {
        let via = request(f).headers.top_via().unwrap();
        assert_eq!(
            via.received_addr(),
            Some("2001:db8::9:255".parse().unwrap()),
            "{f}"
        );
        assert!(via.branch.unwrap().starts_with("z9hG4bKas3"), "{f}");
    }
    let hosts: Vec<Host> = request("mult-ip-in-header.dat")
        .headers
        .vias()
        .unwrap()
        .into_iter()
        .map(|v| v.host)
        .collect();
    assert_eq!(
        hosts,
        [
            v6("2001:db8::9:1"),
            Host::V4("192.0.2.1".parse().unwrap()),
            v6("2001:db8::9:255")
        ]
    );
    let via = request("ipv4-mapped-ipv6.dat").headers.top_via().unwrap();
    assert_eq!((via.host, via.port), (v6("::ffff:192.0.2.10"), Some(19823)));
    assert_eq!(
        request("ipv6-bug-abnf-3-colons.dat").uri,
        request("ipv6-correct-abnf-2-colons.dat").uri
    );
}

/// Parse, print, parse again: same start line, headers (Content-Length aside,
/// it is always written) and body.
fn assert_round_trip(name: &str, first: &Message) {
    let printed = first.to_bytes();
    let second = Message::parse(printed.clone())
        .unwrap_or_else(|e| panic!("{name}: reprint does not parse: {e}"));
    let strip = |m: &Message| -> Vec<(String, Bytes)> {
        m.headers()
            .iter()
            .filter(|(n, _)| {
                !n.eq_ignore_ascii_case("content-length") && !n.eq_ignore_ascii_case("l")
            })
            .map(|(n, v)| (n.to_owned(), v.clone()))
            .collect()
    };
    assert_eq!(strip(first), strip(&second), "{name}: headers changed");
    assert_eq!(first.body(), second.body(), "{name}: body changed");
    match (first, &second) {
        (Message::Request(a), Message::Request(b)) => {
            assert_eq!((&a.method, &a.uri), (&b.method, &b.uri), "{name}")
        }
        (Message::Response(a), Message::Response(b)) => {
            assert_eq!((a.status, &a.reason), (b.status, &b.reason), "{name}")
        }
        _ => panic!("{name}: kind changed"),
    }
}

#[test]
fn example_messages_parse_and_round_trip_byte_exact() {
    let mut n = 0;
    for entry in fs::read_dir(dir().join("sip")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("sip") {
            continue;
        }
        let raw = Bytes::from(fs::read(&path).unwrap());
        let name = path.display().to_string();
        let m = Message::parse(raw.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        m.headers().top_via().unwrap();
        m.headers().from().unwrap();
        m.headers().to().unwrap();
        m.headers().cseq().unwrap();
        m.headers().call_id().unwrap();
        assert_round_trip(&name, &m);
        // These are written canonically, so printing gives back the same octets.
        assert_eq!(m.to_bytes(), raw, "{name}");
        n += 1;
    }
    assert_eq!(n, 8);
}

#[test]
fn every_parseable_torture_message_round_trips() {
    for (file, _) in manifest() {
        if let Ok(m) = Message::parse_datagram(Bytes::from(read(&file))) {
            assert_round_trip(&file, &m);
        }
    }
}
