use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::*;

mod properties;

/// The SDP body of a SIP message in the shared test data (after the first empty line).
fn testdata_body(name: &str) -> String {
    let path = format!("../shared/testdata/sip/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (_, body) = text.split_once("\r\n\r\n").expect("message has a body");
    body.to_owned()
}

fn parse(text: &str) -> SessionDescription {
    SessionDescription::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

const MINIMAL: &str = "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n";

#[test]
fn parses_the_teams_sdes_offer_from_shared_testdata() {
    let sd = parse(&testdata_body("invite-srtp-sdes.sip"));
    assert_eq!(sd.origin.session_id, 4125512718);
    assert_eq!(sd.origin.address, "203.0.113.40");
    assert_eq!(
        sd.bandwidths,
        vec![Bandwidth {
            bwtype: "CT".into(),
            bandwidth: 10_000_000
        }]
    );
    let m = &sd.media[0];
    assert_eq!(
        (m.media.as_str(), m.port, m.proto.as_str()),
        ("audio", 52000, "RTP/SAVP")
    );
    assert_eq!(m.formats, ["8", "0", "101", "13"]);
    assert_eq!(m.crypto_lines().len(), 2);
    assert!(m.crypto_lines()[1].starts_with("2 AES_CM_128_HMAC_SHA1_32 inline:"));
    assert_eq!(
        m.rtcp(),
        Some(Rtcp {
            port: 52001,
            connection: None
        })
    );
    assert!(!m.rtcp_mux());
    assert_eq!(m.fmtp("101"), Some("0-16"));
    let te = m.codec("101").unwrap();
    assert!(te.is_telephone_event());
    assert_eq!(te.clock_rate, 8000);
    assert_eq!(sd.effective_direction(m), Direction::SendRecv);
}

#[test]
fn printing_a_crlf_body_gives_it_back_byte_for_byte() {
    for name in [
        "invite-srtp-sdes.sip",
        "invite-200-ok.sip",
        "invite-trunk-rtp.sip",
    ] {
        let body = testdata_body(name);
        assert_eq!(parse(&body).to_string(), body, "{name}");
    }
}

#[test]
fn lf_only_input_parses_like_crlf_and_prints_crlf() {
    let body = testdata_body("invite-trunk-rtp.sip");
    let lf = body.replace("\r\n", "\n");
    assert_eq!(parse(&lf), parse(&body));
    assert_eq!(parse(&lf).to_string(), body);
}

#[test]
fn blank_lines_and_a_missing_final_newline_are_tolerated() {
    let sd = parse("v=0\r\n\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 5 RTP/AVP 0");
    assert_eq!(sd.media[0].formats, ["0"]);
}

#[test]
fn errors_name_the_offending_line() {
    let cases: &[(&str, ParseError)] = &[
        ("", ParseError::Empty),
        ("\r\n\r\n", ParseError::Empty),
        ("hello\r\n", ParseError::MalformedLine { line: 1 }),
        ("v=1\r\n", ParseError::BadVersion { line: 1 }),
        (
            "o=- 1 1 IN IP4 192.0.2.1\r\n",
            ParseError::BadVersion { line: 1 },
        ),
        ("v=0\r\ns=-\r\n", ParseError::MissingLine { kind: 'o' }),
        (
            "v=0\r\no=- x 1 IN IP4 h\r\n",
            ParseError::BadField {
                line: 2,
                kind: 'o',
                field: "sess-id",
            },
        ),
        (
            "v=0\r\no=- 1 +1 IN IP4 h\r\n",
            ParseError::BadField {
                line: 2,
                kind: 'o',
                field: "sess-version",
            },
        ),
        (
            "v=0\r\no=- 1 1 IN IP4\r\n",
            ParseError::BadField {
                line: 2,
                kind: 'o',
                field: "unicast-address",
            },
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 h extra\r\n",
            ParseError::BadField {
                line: 2,
                kind: 'o',
                field: "field count",
            },
        ),
        ("v=0\r\n=x\r\n", ParseError::MalformedLine { line: 2 }),
        ("v=0\r\n1=x\r\n", ParseError::MalformedLine { line: 2 }),
        (
            "v=0\r\nv=0\r\n",
            ParseError::UnexpectedLine { line: 2, kind: 'v' },
        ),
        (
            "v=0\r\nr=7d 1h 0 25h\r\n",
            ParseError::UnexpectedLine { line: 2, kind: 'r' },
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            SessionDescription::parse(text).as_ref(),
            Err(expected),
            "{text:?}"
        );
    }
    let at = |tail: &str| SessionDescription::parse(&format!("{MINIMAL}{tail}")).unwrap_err();
    assert_eq!(
        at("m=audio 70000 RTP/AVP 0\n"),
        ParseError::BadField {
            line: 6,
            kind: 'm',
            field: "port"
        }
    );
    assert_eq!(
        at("m=audio 5/x RTP/AVP 0\n"),
        ParseError::BadField {
            line: 6,
            kind: 'm',
            field: "number of ports"
        }
    );
    assert_eq!(
        at("m=audio 5\n"),
        ParseError::BadField {
            line: 6,
            kind: 'm',
            field: "proto"
        }
    );
    assert_eq!(
        at("c=IN IP4 192.0.2.2\n"),
        ParseError::DuplicateLine { line: 6, kind: 'c' }
    );
    assert_eq!(
        at("b=AS\n"),
        ParseError::BadField {
            line: 6,
            kind: 'b',
            field: "bwtype"
        }
    );
    assert_eq!(
        at("b=AS:-1\n"),
        ParseError::BadField {
            line: 6,
            kind: 'b',
            field: "bandwidth"
        }
    );
    assert_eq!(
        at("t=0\n"),
        ParseError::BadField {
            line: 6,
            kind: 't',
            field: "stop-time"
        }
    );
    assert_eq!(
        at("a=\n"),
        ParseError::BadField {
            line: 6,
            kind: 'a',
            field: "attribute name"
        }
    );
    assert_eq!(
        at("a=bad name:1\n"),
        ParseError::BadField {
            line: 6,
            kind: 'a',
            field: "attribute name"
        }
    );
    assert_eq!(
        at("m=audio 5 RTP/AVP 0\nc=IN IP4 192.0.2.3\nc=IN IP4 192.0.2.4\n"),
        ParseError::DuplicateLine { line: 8, kind: 'c' }
    );
    assert_eq!(
        at("m=audio 5 RTP/AVP 0\ns=x\n"),
        ParseError::UnexpectedLine { line: 7, kind: 's' }
    );
    assert_eq!(
        at("m=audio 5 RTP/AVP 0\nt=0 0\n"),
        ParseError::UnexpectedLine { line: 7, kind: 't' }
    );
    assert_eq!(
        SessionDescription::from_bytes(b"v=0\r\ns=\xff\r\n"),
        Err(ParseError::NotUtf8 { valid_up_to: 7 })
    );
    assert_eq!(
        at("o=- 2 2 IN IP4 h\n").to_string(),
        "line 6: second `o=` in the same section"
    );
}

#[test]
fn unknown_lines_and_attributes_pass_through_in_order() {
    let text = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\ni=info\r\nu=http://example.com/\r\n\
                e=a@example.com\r\np=+1 555\r\nc=IN IP4 192.0.2.1\r\nb=AS:64\r\nt=0 0\r\n\
                r=7d 1h 0 25h\r\nz=2882844526 -1h\r\nk=prompt\r\nx=session extension\r\n\
                a=x-ms-session:abc\r\na=tool:me\r\n\
                m=audio 49170/2 RTP/AVP 0 96\r\ni=voice\r\nc=IN IP4 192.0.2.2/127\r\nb=TIAS:64000\r\n\
                k=prompt\r\ny=media extension\r\na=label:main-audio\r\na=x-ssrc-range:1-2\r\n\
                a=rtpmap:96 opus/48000/2\r\na=empty:\r\n";
    let sd = parse(text);
    assert_eq!(sd.to_string(), text);
    assert_eq!(
        sd.unknown_lines,
        [Line {
            kind: 'x',
            value: "session extension".into()
        }]
    );
    let m = &sd.media[0];
    assert_eq!(m.port_count, Some(2));
    let names: Vec<&str> = m.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["label", "x-ssrc-range", "rtpmap", "empty"]);
    assert_eq!(m.attribute("empty").unwrap().value.as_deref(), Some(""));
    assert_eq!(
        m.connection.as_ref().unwrap().ip(),
        Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)))
    );
    assert_eq!(
        m.codec("96"),
        Some(Codec {
            payload_type: 96,
            encoding: "opus".into(),
            clock_rate: 48000,
            channels: Some(2)
        })
    );
}

#[test]
fn codecs_resolve_through_rtpmap_or_the_static_table() {
    let sd = parse(&format!(
        "{MINIMAL}m=audio 5 RTP/AVP 0 9 97 98 200 x\na=rtpmap:98 telephone-event\n"
    ));
    let m = &sd.media[0];
    assert_eq!(m.codec("0").unwrap().encoding, "PCMU");
    assert_eq!(m.codec("9").unwrap().encoding, "G722");
    assert_eq!(m.codec("97"), None, "dynamic without rtpmap");
    assert_eq!(m.codec("98"), None, "rtpmap without clock rate");
    assert_eq!(m.codec("200"), None);
    assert_eq!(m.codec("x"), None);
    assert_eq!(m.codecs().len(), 2);
}

#[test]
fn set_direction_replaces_in_place_and_drops_duplicates() {
    let mut sd = parse(&format!(
        "{MINIMAL}a=recvonly\nm=audio 5 RTP/AVP 0\na=sendonly\na=ptime:20\na=inactive\n"
    ));
    assert_eq!(sd.direction(), Some(Direction::RecvOnly));
    assert_eq!(sd.effective_direction(&sd.media[0]), Direction::SendOnly);
    sd.media[0].set_direction(Direction::SendRecv);
    let names: Vec<&str> = sd.media[0]
        .attributes
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(names, ["sendrecv", "ptime"]);
    sd.media[0].attributes.clear();
    assert_eq!(
        sd.effective_direction(&sd.media[0]),
        Direction::RecvOnly,
        "session level applies"
    );
    sd.media[0].set_direction(Direction::Inactive);
    assert_eq!(sd.media[0].direction(), Some(Direction::Inactive));
}

#[test]
fn rtcp_attribute_with_address_rfc3605() {
    let sd = parse(&format!(
        "{MINIMAL}m=audio 49170 RTP/AVP 0\na=rtcp:53020 IN IP4 126.16.64.4\n"
    ));
    let rtcp = sd.media[0].rtcp().unwrap();
    assert_eq!(rtcp.port, 53020);
    let remote = media_endpoint(&sd).unwrap();
    assert_eq!(remote.rtcp, Some("126.16.64.4:53020".parse().unwrap()));
}

#[test]
fn ipv6_sdp_rfc5118_4_6() {
    let sd = parse(
        "v=0\r\no=assistant 971731711378798081 0 IN IP6 2001:db8::20\r\ns=Live video feed\r\n\
         c=IN IP6 2001:db8::20\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
    );
    assert_eq!(sd.origin.session_id, 971731711378798081);
    let remote = media_endpoint(&sd).unwrap();
    assert_eq!(
        remote.addr,
        "[2001:db8::20]:6000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(remote.rtcp, Some("[2001:db8::20]:6001".parse().unwrap()));
}

#[test]
fn mixed_ipv4_and_ipv6_media_lines_rfc5118_4_8() {
    let sd = parse(
        "v=0\r\no=bob 280744730 28977631 IN IP4 host.example.com\r\ns=\r\nt=0 0\r\n\
         a=group:ANAT 1 2\r\nm=audio 25000 RTP/AVP 0\r\nc=IN IP6 2001:db8::1\r\na=mid:1\r\n\
         m=audio 22334 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\na=mid:2\r\n",
    );
    assert_eq!(sd.origin.ip(), None, "origin address is a host name");
    let ips: Vec<_> = sd
        .media
        .iter()
        .map(|m| sd.connection_for(m).unwrap().ip().unwrap())
        .collect();
    assert_eq!(
        ips,
        [
            "2001:db8::1".parse::<IpAddr>().unwrap(),
            "192.0.2.1".parse().unwrap()
        ]
    );
    assert_eq!(
        media_endpoint(&sd).unwrap().addr,
        "[2001:db8::1]:25000".parse().unwrap()
    );
}

#[test]
fn ipv4_mapped_ipv6_address_rfc5118_4_9() {
    let sd = parse(
        "v=0\r\no=- 1 1 IN IP6 ::ffff:192.0.2.128\r\ns=-\r\nc=IN IP6 ::ffff:192.0.2.128\r\nt=0 0\r\n\
         m=audio 3456 RTP/AVP 0\r\n",
    );
    let ip = sd.connection.as_ref().unwrap().ip().unwrap();
    assert_eq!(
        ip,
        IpAddr::V6(Ipv4Addr::new(192, 0, 2, 128).to_ipv6_mapped())
    );
}

#[test]
fn media_endpoint_prefers_media_level_connection_and_honours_mux() {
    let sd = parse(&format!(
        "{MINIMAL}m=video 0 RTP/AVP 31\nm=audio 40000 RTP/SAVP 0\nc=IN IP4 192.0.2.9\na=rtcp-mux\n\
         a=rtcp:40000\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY\na=sendrecv\n"
    ));
    let remote = media_endpoint(&sd).unwrap();
    assert_eq!(remote.addr, "192.0.2.9:40000".parse().unwrap());
    assert!(remote.mux);
    assert_eq!(remote.rtcp, None);
    assert_eq!(
        remote.crypto_lines,
        ["1 AES_CM_128_HMAC_SHA1_80 inline:KEY"]
    );
    assert!(!remote.hold);
}

#[test]
fn media_endpoint_reports_hold_for_zero_address_and_non_sendrecv() {
    let zero = MINIMAL.replace("c=IN IP4 192.0.2.1", "c=IN IP4 0.0.0.0") + "m=audio 5 RTP/AVP 0\n";
    let zero = parse(&zero);
    assert!(media_endpoint(&zero).unwrap().hold);
    for dir in ["sendonly", "recvonly", "inactive"] {
        let sd = parse(&format!("{MINIMAL}m=audio 5 RTP/AVP 0\na={dir}\n"));
        let remote = media_endpoint(&sd).unwrap();
        assert!(remote.hold, "{dir}");
        assert_eq!(remote.direction.as_str(), dir);
    }
}

#[test]
fn media_endpoint_is_none_without_a_usable_audio_stream() {
    assert_eq!(media_endpoint(&parse(MINIMAL)), None);
    assert_eq!(
        media_endpoint(&parse(&format!("{MINIMAL}m=audio 0 RTP/AVP 0\n"))),
        None
    );
    let fqdn = MINIMAL.replace("c=IN IP4 192.0.2.1", "c=IN IP4 media.example.com");
    assert_eq!(
        media_endpoint(&parse(&format!("{fqdn}m=audio 5 RTP/AVP 0\n"))),
        None
    );
    let top = parse(&format!("{MINIMAL}m=audio 65535 RTP/AVP 0\n"));
    assert_eq!(
        media_endpoint(&top).unwrap().rtcp,
        None,
        "no port + 1 above 65535"
    );
}

#[test]
fn origin_version_grows_only_when_the_sdp_changes_rfc3264_s8() {
    let ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let mut state = OriginState::new(42, ip).with_username("sbc");
    let body = parse(&format!("{MINIMAL}m=audio 5 RTP/AVP 0\n"));
    let first = state.stamp(body.clone());
    assert_eq!(first.origin.to_string(), "sbc 42 1 IN IP6 ::1");
    assert_eq!(state.stamp(body.clone()).origin.session_version, 1);
    let mut changed = body.clone();
    changed.media[0].set_direction(Direction::Inactive);
    assert_eq!(state.stamp(changed).origin.session_version, 2);
    assert_eq!(
        state.stamp(body).origin.session_version,
        3,
        "going back is a change too"
    );
    assert_eq!((state.version(), state.session_id()), (3, 42));
    let kept = OriginState::new(1, ip).with_username("two words");
    assert_eq!(kept.origin_username_for_test(), "drawbridge");
}

impl OriginState {
    fn origin_username_for_test(&self) -> String {
        self.clone().stamp(parse(MINIMAL)).origin.username
    }
}

#[test]
fn rewrite_errors_map_to_sip_status() {
    assert_eq!(RewriteError::SrtpRequired.status_code(), 488);
    assert_eq!(RewriteError::NoCommonCodec.status_code(), 488);
    assert_eq!(
        RewriteError::NoAudioStream { side: Side::Trunk }.status_code(),
        488
    );
    assert_eq!(RewriteError::InvalidCrypto.status_code(), 500);
}
