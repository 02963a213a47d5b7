//! Property tests: no input panics the parser or the rewrite, and print/parse round-trips.

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;

use crate::sdp::*;

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.+*/-]{1,10}"
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,16}"
}

fn connection() -> impl Strategy<Value = Connection> {
    (token(), token(), token()).prop_map(|(net_type, addr_type, address)| Connection {
        net_type,
        addr_type,
        address,
    })
}

fn bandwidths() -> impl Strategy<Value = Vec<Bandwidth>> {
    proptest::collection::vec(
        ("[A-Za-z0-9-]{1,6}", any::<u64>())
            .prop_map(|(bwtype, bandwidth)| Bandwidth { bwtype, bandwidth }),
        0..3,
    )
}

fn attributes() -> impl Strategy<Value = Vec<Attribute>> {
    proptest::collection::vec(
        (
            prop_oneof![
                "[A-Za-z0-9_.-]{1,10}",
                proptest::sample::select(vec!["crypto", "rtpmap", "rtcp-mux", "rtcp", "sendonly"])
                    .prop_map(str::to_owned),
            ],
            proptest::option::of(prop_oneof![
                text(),
                Just("101 telephone-event/8000".to_owned())
            ]),
        )
            .prop_map(|(name, value)| Attribute { name, value }),
        0..6,
    )
}

fn unknown_lines() -> impl Strategy<Value = Vec<Line>> {
    proptest::collection::vec(
        (
            proptest::sample::select(vec!['x', 'y', 'w', 'q', 'X']),
            text(),
        )
            .prop_map(|(kind, value)| Line { kind, value }),
        0..2,
    )
}

fn media() -> impl Strategy<Value = MediaDescription> {
    (
        (
            prop_oneof![Just("audio".to_owned()), token()],
            any::<u16>(),
            proptest::option::of(any::<u16>()),
            prop_oneof![
                Just("RTP/SAVP".to_owned()),
                Just("RTP/AVP".to_owned()),
                token()
            ],
        ),
        proptest::collection::vec(
            prop_oneof!["[0-9]{1,3}", Just("0".to_owned()), Just("101".to_owned())],
            0..5,
        ),
        (
            proptest::option::of(text()),
            proptest::option::of(connection()),
            bandwidths(),
        ),
        (proptest::option::of(text()), unknown_lines(), attributes()),
    )
        .prop_map(
            |(
                (media, port, port_count, proto),
                formats,
                (information, connection, bandwidths),
                (encryption_key, unknown_lines, attributes),
            )| MediaDescription {
                media,
                port,
                port_count,
                proto,
                formats,
                information,
                connection,
                bandwidths,
                encryption_key,
                unknown_lines,
                attributes,
            },
        )
}

fn session() -> impl Strategy<Value = SessionDescription> {
    let origin = (
        token(),
        any::<u64>(),
        any::<u64>(),
        token(),
        token(),
        token(),
    )
        .prop_map(
            |(username, session_id, session_version, net_type, addr_type, address)| Origin {
                username,
                session_id,
                session_version,
                net_type,
                addr_type,
                address,
            },
        );
    let timing = (
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(text(), 0..2),
    )
        .prop_map(|(start, stop, repeats)| Timing {
            start,
            stop,
            repeats,
        });
    (
        (
            origin,
            text(),
            proptest::option::of(text()),
            proptest::option::of(text()),
        ),
        (
            proptest::collection::vec(text(), 0..2),
            proptest::collection::vec(text(), 0..2),
        ),
        (
            proptest::option::of(connection()),
            bandwidths(),
            proptest::collection::vec(timing, 0..3),
        ),
        (
            proptest::option::of(text()),
            proptest::option::of(text()),
            unknown_lines(),
        ),
        (attributes(), proptest::collection::vec(media(), 0..4)),
    )
        .prop_map(
            |(
                (origin, session_name, information, uri),
                (emails, phones),
                (connection, bandwidths, times),
                (time_zones, encryption_key, unknown_lines),
                (attributes, media),
            )| SessionDescription {
                origin,
                session_name,
                information,
                uri,
                emails,
                phones,
                connection,
                bandwidths,
                times,
                time_zones,
                encryption_key,
                unknown_lines,
                attributes,
                media,
            },
        )
}

fn policy() -> impl Strategy<Value = CodecPolicy> {
    (
        proptest::collection::vec(
            proptest::sample::select(vec!["PCMU", "PCMA", "G722", "SILK/16000", "opus", "x"]),
            0..4,
        ),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(allow, keep_telephone_event, keep_cn)| CodecPolicy {
            allow: allow.into_iter().map(str::to_owned).collect(),
            keep_telephone_event,
            keep_cn,
        })
}

proptest! {
    #[test]
    fn parse_never_panics_on_any_string(s in "\\PC*") {
        let _ = SessionDescription::parse(&s);
    }

    #[test]
    fn parse_never_panics_on_sdp_shaped_lines(lines in proptest::collection::vec("[vosicbtrmaxz]=[ -~]{0,30}", 0..20)) {
        let text = format!("v=0\r\n{}", lines.join("\r\n"));
        if let Ok(sd) = SessionDescription::parse(&text) {
            prop_assert_eq!(SessionDescription::parse(&sd.to_string()), Ok(sd));
        }
    }

    #[test]
    fn from_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = SessionDescription::from_bytes(&bytes);
    }

    #[test]
    fn parse_of_print_is_identity(sd in session()) {
        let printed = sd.to_string();
        let parsed = SessionDescription::parse(&printed);
        prop_assert_eq!(parsed.as_ref(), Ok(&sd), "{}", printed);
        prop_assert_eq!(parsed.map(|p| p.to_string()), Ok(printed));
    }

    #[test]
    fn rewrites_never_panic(sd in session(), other in session(), policy in policy(), mux in any::<bool>(), port in any::<u16>()) {
        let leg = LegMedia { address: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), port, rtcp_port: port.checked_add(1) };
        let mut origin = OriginState::new(1, leg.address);
        let crypto = "1 AES_CM_128_HMAC_SHA1_80 inline:KEY";
        let outputs = [
            offer_to_trunk(&sd, &leg, &policy, mux, &mut origin),
            answer_to_teams(&sd, &other, &leg, crypto, &mut origin),
            offer_to_teams(Some(&sd), &leg, &policy, crypto, &mut origin),
            offer_to_teams(None, &leg, &policy, crypto, &mut origin),
            answer_to_trunk(&sd, Some(&other), &leg, mux, &mut origin),
            answer_to_trunk(&sd, None, &leg, mux, &mut origin),
        ];
        // Whatever the SBC sends must itself be SDP it can read back unchanged.
        for out in outputs.into_iter().flatten() {
            prop_assert_eq!(SessionDescription::parse(&out.to_string()), Ok(out));
        }
        let _ = media_endpoint(&sd);
    }
}
