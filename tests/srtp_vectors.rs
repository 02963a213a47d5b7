//! Known-answer tests from ../shared/testdata/srtp/vectors.json (RFC 3711 appendix B,
//! libsrtp's srtp_driver validate vectors, computed _32 / wrap / CSRC+extension vectors)
//! and its negative cases. Every vector is either run or named in `OUT_OF_SCOPE`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use drawbridge::media::sdes::CryptoAttribute;
use drawbridge::media::srtp::{
    MAX_TRAILER, MasterKey, Mki, SrtpContext, SrtpError, SrtpProfile, aes_cm_keystream,
    derive_session_keys,
};
use serde_json::Value;

/// Vectors for profiles we do not implement (TDR-MED-02 needs only AES_CM_128 with
/// HMAC-SHA1 80/32): AEAD GCM (RFC 7714), AES-192/256-CM (RFC 6188) and the NULL cipher.
const OUT_OF_SCOPE: &[&str] = &[
    "rfc6188-7.1-aes-cm-256",
    "rfc6188-7.3-aes-cm-192",
    "rfc6188-7.2-kdf-aes-256",
    "rfc6188-7.4-kdf-aes-192",
    "libsrtp-validate-null-sha1-80",
    "libsrtp-validate-aead-aes-128-gcm",
    "libsrtp-validate-aes-192-cm-sha1-80",
    "libsrtp-validate-aes-256-cm-sha1-80",
    "rfc7714-16.1.1-aead-aes-128-gcm",
    "rfc7714-16.2.1-aead-aes-256-gcm",
    "computed-aead-aes-256-gcm-kdf",
    "libsrtp-validate-null-sha1-80-rtcp",
    "libsrtp-validate-aead-aes-128-gcm-rtcp",
    "rfc7714-17.1.1-aead-aes-128-gcm-rtcp",
    "rfc7714-17.2.1-aead-aes-256-gcm-rtcp",
    "aead-gcm-tag-bit-flipped",
    "aead-gcm-header-changed",
];

fn vectors() -> Value {
    let text = std::fs::read_to_string("../shared/testdata/srtp/vectors.json").unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["schema"], "srtp-test-vectors/1");
    v
}

fn hex(v: &Value) -> Vec<u8> {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a hex string: {v}"));
    assert!(s.len().is_multiple_of(2));
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

fn profile(v: &Value) -> Option<SrtpProfile> {
    SrtpProfile::from_sdes_name(v["profile"].as_str().unwrap())
}

/// Each vector of `section` that we run, after checking that the others are listed as
/// out of scope (so none is skipped silently).
fn in_scope<'a>(
    all: &'a Value,
    section: &str,
    runnable: impl Fn(&Value) -> bool,
) -> Vec<&'a Value> {
    let mut run = Vec::new();
    for v in all[section].as_array().unwrap() {
        let listed = OUT_OF_SCOPE.contains(&id(v));
        assert_eq!(
            runnable(v),
            !listed,
            "{section} vector {} must be run or listed out of scope, not both/neither",
            id(v)
        );
        if !listed {
            run.push(v);
        }
    }
    run
}

fn master_key(v: &Value) -> MasterKey {
    let mki = v.get("mki").map(|m| Mki::from_bytes(&hex(m)).unwrap());
    MasterKey::new(
        profile(v).unwrap(),
        &hex(&v["master_key"]),
        &hex(&v["master_salt"]),
        mki,
    )
    .unwrap()
}

#[test]
fn aes_cm_keystream_matches_rfc3711_b2() {
    let all = vectors();
    let run = in_scope(&all, "aes_cm_keystream", |v| {
        v["cipher"].as_str().unwrap().starts_with("AES-128")
    });
    assert_eq!(run.len(), 1);
    for v in run {
        let key: [u8; 16] = hex(&v["session_key"]).try_into().unwrap();
        let iv: [u8; 16] = hex(&v["iv"]).try_into().unwrap();
        let blocks = v["blocks"].as_array().unwrap();
        let last = blocks
            .iter()
            .map(|b| b["block"].as_u64().unwrap())
            .max()
            .unwrap();
        let mut stream = vec![0u8; (last as usize + 1) * 16];
        aes_cm_keystream(&key, iv, &mut stream).unwrap();
        for b in blocks {
            let n = b["block"].as_u64().unwrap() as usize;
            assert_eq!(
                &stream[n * 16..n * 16 + 16],
                hex(&b["keystream"]),
                "{} block {n}",
                id(v)
            );
        }
    }
}

#[test]
fn key_derivation_matches_rfc3711_b3_and_all_labels() {
    let all = vectors();
    let run = in_scope(&all, "key_derivation", |v| v["prf"] == "AES-128-CM");
    assert_eq!(run.len(), 2);
    for v in run {
        let master = MasterKey::new(
            SrtpProfile::AesCm128HmacSha1_80,
            &hex(&v["master_key"]),
            &hex(&v["master_salt"]),
            None,
        )
        .unwrap();
        let rtp = derive_session_keys(&master, false).unwrap();
        let rtcp = derive_session_keys(&master, true).unwrap();
        if let Some(derivations) = v["derivations"].as_array() {
            let mk: [u8; 16] = hex(&v["master_key"]).try_into().unwrap();
            for d in derivations {
                // The PRF itself: AES-CM under the master key at IV x || 0000.
                let mut iv = [0u8; 16];
                iv[..14].copy_from_slice(&hex(&d["x"])[..14]);
                assert_eq!(hex(&d["x"])[14..], [0, 0]);
                let mut out = vec![0u8; d["length"].as_u64().unwrap() as usize];
                aes_cm_keystream(&mk, iv, &mut out).unwrap();
                assert_eq!(out, hex(&d["expected"]), "{} label {}", id(v), d["label"]);
                let expected = hex(&d["expected"]);
                match d["label"].as_u64().unwrap() {
                    0 => assert_eq!(rtp.cipher_key[..], expected[..16]),
                    1 => assert_eq!(rtp.auth_key[..], expected[..20]),
                    2 => assert_eq!(rtp.salt[..], expected[..14]),
                    other => panic!("label {other}"),
                }
            }
        } else {
            let e = &v["expected"];
            assert_eq!(rtp.cipher_key.to_vec(), hex(&e["rtp_cipher_key"]));
            assert_eq!(rtp.auth_key.to_vec(), hex(&e["rtp_auth_key"]));
            assert_eq!(rtp.salt.to_vec(), hex(&e["rtp_salt"]));
            assert_eq!(rtcp.cipher_key.to_vec(), hex(&e["rtcp_cipher_key"]));
            assert_eq!(rtcp.auth_key.to_vec(), hex(&e["rtcp_auth_key"]));
            assert_eq!(rtcp.salt.to_vec(), hex(&e["rtcp_salt"]));
        }
    }
}

fn check_session_keys(v: &Value, rtcp: bool) {
    let keys = derive_session_keys(&master_key(v), rtcp).unwrap();
    let sk = &v["session_keys"];
    let p = if rtcp { "rtcp" } else { "rtp" };
    assert_eq!(
        keys.cipher_key.to_vec(),
        hex(&sk[format!("{p}_cipher_key")]),
        "{}",
        id(v)
    );
    assert_eq!(
        keys.auth_key.to_vec(),
        hex(&sk[format!("{p}_auth_key")]),
        "{}",
        id(v)
    );
    assert_eq!(
        keys.salt.to_vec(),
        hex(&sk[format!("{p}_salt")]),
        "{}",
        id(v)
    );
}

#[test]
fn srtp_vectors_protect_to_the_published_bytes_and_unprotect_back() {
    let all = vectors();
    let run = in_scope(&all, "srtp", |v| profile(v).is_some());
    assert_eq!(
        run.len(),
        8,
        "validate, mki, _32, four wrap packets, csrc+extension"
    );
    // Packets of one sequence group go through one sender and one receiver in order.
    let mut groups: Vec<(String, SrtpContext, SrtpContext)> = Vec::new();
    for v in run {
        check_session_keys(v, false);
        let key = master_key(v);
        let group = v["sequence_group"].as_str().map(str::to_owned);
        let at = match group
            .as_ref()
            .and_then(|g| groups.iter().position(|(n, ..)| n == g))
        {
            Some(at) => at,
            None => {
                let mut tx = SrtpContext::new(&key).unwrap();
                let mut rx = SrtpContext::new(&key).unwrap();
                let (ssrc, roc) = (
                    v["ssrc"].as_u64().unwrap() as u32,
                    v["roc"].as_u64().unwrap() as u32,
                );
                tx.set_rollover_counter(ssrc, roc).unwrap();
                rx.set_rollover_counter(ssrc, roc).unwrap();
                groups.push((group.unwrap_or_else(|| id(v).to_owned()), tx, rx));
                groups.len() - 1
            }
        };
        let (_, tx, rx) = &mut groups[at];
        let plain = hex(&v["rtp_plaintext"]);
        let wire = hex(&v["srtp"]);

        let mut buf = plain.clone();
        buf.resize(plain.len() + MAX_TRAILER, 0);
        let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
        assert_eq!(buf[..n], wire[..], "protect {}", id(v));
        assert_eq!(
            tx.rollover_counter(v["ssrc"].as_u64().unwrap() as u32),
            Some(v["roc"].as_u64().unwrap() as u32)
        );

        let mut buf = wire.clone();
        let n = rx.unprotect_rtp(&mut buf).unwrap();
        assert_eq!(buf[..n], plain[..], "unprotect {}", id(v));
        assert_eq!(
            rx.rollover_counter(v["ssrc"].as_u64().unwrap() as u32),
            Some(v["roc"].as_u64().unwrap() as u32)
        );
    }
}

#[test]
fn srtcp_vectors_protect_to_the_published_bytes_and_unprotect_back() {
    let all = vectors();
    let run = in_scope(&all, "srtcp", |v| profile(v).is_some());
    assert_eq!(run.len(), 3, "validate, mki, _32");
    for v in run {
        check_session_keys(v, true);
        assert!(v["encrypted"].as_bool().unwrap());
        let key = master_key(v);
        let plain = hex(&v["rtcp_plaintext"]);
        let wire = hex(&v["srtcp"]);
        // Our first SRTCP index is 1, as libsrtp's: the vectors are first packets.
        assert_eq!(v["srtcp_index"], 1);
        let mut tx = SrtpContext::new(&key).unwrap();
        let mut buf = plain.clone();
        buf.resize(plain.len() + MAX_TRAILER, 0);
        let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
        assert_eq!(buf[..n], wire[..], "protect {}", id(v));

        let mut rx = SrtpContext::new(&key).unwrap();
        let mut buf = wire.clone();
        let n = rx.unprotect_rtcp(&mut buf).unwrap();
        assert_eq!(buf[..n], plain[..], "unprotect {}", id(v));
    }
}

#[test]
fn negative_vectors_are_rejected_with_the_expected_kind() {
    let all = vectors();
    let run = in_scope(&all, "negative", |v| profile(v).is_some());
    assert_eq!(run.len(), 13);
    for v in run {
        let mut rx = SrtpContext::new(&master_key(v)).unwrap();
        let packet = hex(&v["packet"]);
        let rtcp = v["packet_kind"] == "rtcp";
        if let Some(roc) = v.get("receiver_roc") {
            let ssrc = u32::from_be_bytes(packet[8..12].try_into().unwrap());
            rx.set_rollover_counter(ssrc, roc.as_u64().unwrap() as u32)
                .unwrap();
        }
        let times = v.get("deliver_times").map_or(1, |t| t.as_u64().unwrap());
        let mut last = Ok(0);
        for i in 0..times {
            let mut buf = packet.clone();
            last = if rtcp {
                rx.unprotect_rtcp(&mut buf)
            } else {
                rx.unprotect_rtp(&mut buf)
            };
            if i + 1 < times {
                assert!(
                    last.is_ok(),
                    "{}: delivery {i} should pass: {last:?}",
                    id(v)
                );
            }
        }
        let err = last.expect_err(id(v));
        let ok = match v["expected"].as_str().unwrap() {
            "auth_fail" | "auth_fail_or_unknown_ssrc" => err == SrtpError::AuthFailed,
            "replay" => matches!(err, SrtpError::Replayed { .. }),
            "reject" => true,
            other => panic!("unknown expectation {other}"),
        };
        assert!(ok, "{}: expected {}, got {err:?}", id(v), v["expected"]);
    }
}

/// TDR-MED-02: from the SDES line of the sample INVITE to session keys to the libsrtp
/// packet: the offered inline key is the RFC 3711 B.3 master key.
#[test]
fn sdes_line_from_sample_invite_unprotects_the_libsrtp_vector() {
    let sip = std::fs::read_to_string("../shared/testdata/sip/invite-srtp-sdes.sip").unwrap();
    let lines: Vec<CryptoAttribute> = sip
        .lines()
        .filter(|l| l.starts_with("a=crypto:"))
        .map(|l| CryptoAttribute::parse(l).unwrap())
        .collect();
    assert!(lines.len() >= 2);
    let chosen = CryptoAttribute::select(&lines).unwrap();
    assert_eq!(chosen.profile(), Some(SrtpProfile::AesCm128HmacSha1_80));
    let key = chosen.master_key().unwrap();
    assert_eq!(key.inline_key(), "4fl6DT4Bi+DWT6MsBt5BOQ7Gda1Jiv7rtpYLOqvm");

    let all = vectors();
    let v = all["srtp"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| id(v) == "libsrtp-validate-aes-cm-128-sha1-80")
        .unwrap();
    let mut rx = SrtpContext::new(key).unwrap();
    let mut buf = hex(&v["srtp"]);
    let n = rx.unprotect_rtp(&mut buf).unwrap();
    assert_eq!(buf[..n], hex(&v["rtp_plaintext"])[..]);
}
