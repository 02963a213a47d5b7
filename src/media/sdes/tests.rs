use super::*;

const B3_KEY: &str = "4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm";

#[test]
fn parses_teams_line_with_lifetime_and_mki_tdr_med_02() {
    let line = format!("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{B3_KEY}|2^31|1:1");
    let attr = CryptoAttribute::parse(&line).unwrap();
    assert_eq!(attr.tag(), 2);
    assert_eq!(attr.profile(), Some(SrtpProfile::AesCm128HmacSha1_80));
    let key = attr.master_key().unwrap();
    assert_eq!(key.lifetime(), Some(1 << 31));
    assert_eq!(key.mki().unwrap().as_bytes(), [1]);
    assert_eq!(key.inline_key(), B3_KEY);
    assert!(attr.is_usable());
    assert_eq!(attr.to_string(), line.trim_start_matches("a=crypto:"));
}

#[test]
fn parses_mki_without_lifetime_and_decimal_lifetime() {
    let attr = CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_32 inline:{B3_KEY}|258:2"))
        .unwrap();
    let key = attr.master_key().unwrap();
    assert_eq!(key.lifetime(), None);
    assert_eq!(key.mki().unwrap().as_bytes(), [1, 2]);
    let attr =
        CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{B3_KEY}|1000")).unwrap();
    assert_eq!(attr.master_key().unwrap().lifetime(), Some(1000));
    assert!(attr.to_string().ends_with("|1000"));
}

#[test]
fn unknown_suite_is_kept_as_unsupported_and_printed_back() {
    let line = "3 AEAD_AES_256_GCM inline:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA|2^20 KDR=1";
    let attr = CryptoAttribute::parse(line).unwrap();
    assert_eq!(
        attr.suite(),
        &CryptoSuite::Unsupported("AEAD_AES_256_GCM".into())
    );
    assert!(attr.master_key().is_none());
    assert!(!attr.is_usable());
    assert_eq!(attr.to_string(), line);
}

#[test]
fn select_picks_the_first_supported_usable_line() {
    let lines = [
        CryptoAttribute::parse("1 AES_256_CM_HMAC_SHA1_80 inline:xyz").unwrap(),
        CryptoAttribute::parse(&format!(
            "2 AES_CM_128_HMAC_SHA1_80 inline:{B3_KEY} UNENCRYPTED_SRTCP"
        ))
        .unwrap(),
        CryptoAttribute::parse(&format!(
            "3 AES_CM_128_HMAC_SHA1_32 inline:{B3_KEY}|2^31|1:1"
        ))
        .unwrap(),
        CryptoAttribute::parse(&format!("4 AES_CM_128_HMAC_SHA1_80 inline:{B3_KEY}")).unwrap(),
    ];
    assert_eq!(CryptoAttribute::select(&lines).unwrap().tag(), 3);
}

#[test]
fn malformed_lines_are_errors_not_panics() {
    let bad = [
        "",
        "1",
        "1 AES_CM_128_HMAC_SHA1_80",
        "x AES_CM_128_HMAC_SHA1_80 inline:abc",
        "1234567890 AES_CM_128_HMAC_SHA1_80 inline:abc",
        "1 AES_CM_128_HMAC_SHA1_80 uri:abc",
        "1 AES_CM_128_HMAC_SHA1_80 inline:not*base64",
        "1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYX",
        "1 AES_CM_128_HMAC_SHA1_80 inline:4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm|2^99",
        "1 AES_CM_128_HMAC_SHA1_80 inline:4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm|1:0",
        "1 AES_CM_128_HMAC_SHA1_80 inline:4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm|256:1",
        "1 AES_CM_128_HMAC_SHA1_80 inline:4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm|1:1|2^31",
        "1 AES_CM_128_HMAC_SHA1_80 inline:4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm|a:b",
    ];
    for line in bad {
        assert!(CryptoAttribute::parse(line).is_err(), "{line:?}");
    }
}

#[test]
fn generated_line_round_trips_without_mki_and_debug_hides_the_key() {
    let ours = CryptoAttribute::generate(1, SrtpProfile::AesCm128HmacSha1_80).unwrap();
    let text = ours.to_string();
    assert!(text.starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:"));
    assert!(!text.contains('|'));
    let back = CryptoAttribute::parse(&text).unwrap();
    assert_eq!(back, ours);
    let inline = ours.master_key().unwrap().inline_key();
    assert_eq!(inline.len(), 40);
    assert!(!format!("{ours:?}").contains(&inline));
    assert!(format!("{ours:?}").contains("MasterKey(<redacted>)"));
    let other = CryptoAttribute::generate(1, SrtpProfile::AesCm128HmacSha1_80).unwrap();
    assert_ne!(other.master_key().unwrap().inline_key(), inline);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_never_panics(line in "\\PC{0,120}") {
            let _ = CryptoAttribute::parse(&line);
        }

        #[test]
        fn print_then_parse_is_identity(
            tag in 0u32..1_000_000_000,
            key in proptest::array::uniform30(any::<u8>()),
            lifetime in proptest::option::of(1u64..u64::MAX),
            mki in proptest::option::of((1usize..=8, any::<u64>())),
            profile in prop_oneof![Just(SrtpProfile::AesCm128HmacSha1_80), Just(SrtpProfile::AesCm128HmacSha1_32)],
        ) {
            let mki = mki.map(|(len, v)| {
                let v = if len == 8 { v } else { v & ((1u64 << (8 * len)) - 1) };
                Mki::new(v, len).unwrap()
            });
            let mut mk = MasterKey::from_key_and_salt(profile, &key, mki).unwrap();
            if let Some(l) = lifetime {
                mk = mk.with_lifetime(l);
            }
            let attr = CryptoAttribute::new(tag, mk);
            let back = CryptoAttribute::parse(&attr.to_string()).unwrap();
            prop_assert_eq!(back, attr);
        }
    }
}
