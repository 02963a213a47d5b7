//! Interoperability with webrtc-srtp, an independent RFC 3711 implementation: what one
//! protects the other unprotects to the same bytes, both ways, RTP and RTCP, across a
//! sequence number wrap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use drawbridge::media::srtp::{MAX_TRAILER, MasterKey, SrtpContext, SrtpProfile};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

const SSRC: u32 = 0x1234_5678;

fn keys(profile: SrtpProfile, rng: &mut StdRng) -> (MasterKey, Context) {
    let mut key = [0u8; 16];
    let mut salt = [0u8; 14];
    rng.fill_bytes(&mut key);
    rng.fill_bytes(&mut salt);
    let theirs = match profile {
        SrtpProfile::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
    };
    let ctx = Context::new(
        &key,
        &salt,
        theirs,
        Some(srtp_replay_protection(64)),
        Some(srtcp_replay_protection(64)),
    )
    .unwrap();
    (MasterKey::new(profile, &key, &salt, None).unwrap(), ctx)
}

/// An RTP packet with a random payload; every fifth has CSRCs and an RFC 8285
/// one-byte header extension.
fn rtp_packet(seq: u16, ts: u32, rng: &mut StdRng) -> Vec<u8> {
    let fancy = seq.is_multiple_of(5);
    let mut p = vec![if fancy { 0x92 } else { 0x80 }, 0, 0, 0];
    p[1] = if seq.is_multiple_of(50) { 0x80 | 8 } else { 8 };
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    if fancy {
        p.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0x80, 0, 0]);
    }
    let len = rng.random_range(1..=200);
    p.extend((0..len).map(|_| rng.random::<u8>()));
    p
}

fn rtcp_packet(rng: &mut StdRng) -> Vec<u8> {
    // A sender report: 28 octets of header and sender info, as RFC 3550 §6.4.1 lays out.
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend((0..20).map(|_| rng.random::<u8>()));
    p
}

fn wrap_sequence() -> impl Iterator<Item = u16> {
    // 70,000 packets starting 35,000 before the wrap: ROC goes 0 → 1.
    (0u32..70_000).map(|i| (65_536 - 35_000 + i) as u16)
}

fn webrtc_protects_we_unprotect(profile: SrtpProfile) {
    let mut rng = StdRng::seed_from_u64(1);
    let (key, mut theirs) = keys(profile, &mut rng);
    let mut ours = SrtpContext::new(&key).unwrap();
    let mut ts = 0u32;
    for seq in wrap_sequence() {
        ts = ts.wrapping_add(160);
        let plain = rtp_packet(seq, ts, &mut rng);
        let wire = theirs.encrypt_rtp(&plain).unwrap();
        assert_eq!(wire.len(), plain.len() + profile.rtp_tag_len());
        let mut buf = wire.to_vec();
        let n = ours
            .unprotect_rtp(&mut buf)
            .unwrap_or_else(|e| panic!("seq {seq}: {e}"));
        assert_eq!(buf[..n], plain[..], "seq {seq}");
    }
    assert_eq!(ours.rollover_counter(SSRC), Some(1));
}

fn we_protect_webrtc_unprotects(profile: SrtpProfile) {
    let mut rng = StdRng::seed_from_u64(2);
    let (key, mut theirs) = keys(profile, &mut rng);
    let mut ours = SrtpContext::new(&key).unwrap();
    let mut ts = 0u32;
    for seq in wrap_sequence() {
        ts = ts.wrapping_add(160);
        let plain = rtp_packet(seq, ts, &mut rng);
        let mut buf = plain.clone();
        buf.resize(plain.len() + MAX_TRAILER, 0);
        let n = ours.protect_rtp(&mut buf, plain.len()).unwrap();
        let back = theirs
            .decrypt_rtp(&buf[..n])
            .unwrap_or_else(|e| panic!("seq {seq}: {e}"));
        assert_eq!(back[..], plain[..], "seq {seq}");
    }
    assert_eq!(ours.rollover_counter(SSRC), Some(1));
}

#[test]
fn webrtc_srtp_protects_we_unprotect_80_across_sequence_wrap() {
    webrtc_protects_we_unprotect(SrtpProfile::AesCm128HmacSha1_80);
}

#[test]
fn webrtc_srtp_protects_we_unprotect_32_across_sequence_wrap() {
    webrtc_protects_we_unprotect(SrtpProfile::AesCm128HmacSha1_32);
}

#[test]
fn we_protect_webrtc_srtp_unprotects_80_across_sequence_wrap() {
    we_protect_webrtc_unprotects(SrtpProfile::AesCm128HmacSha1_80);
}

#[test]
fn we_protect_webrtc_srtp_unprotects_32_across_sequence_wrap() {
    we_protect_webrtc_unprotects(SrtpProfile::AesCm128HmacSha1_32);
}

/// Packets reordered around the wrap (a late seq 65535 after seq 0) still get the
/// right ROC guess (RFC 3711 §3.3.1).
#[test]
fn reordered_packets_across_wrap_unprotect() {
    let mut rng = StdRng::seed_from_u64(3);
    let (key, mut theirs) = keys(SrtpProfile::AesCm128HmacSha1_80, &mut rng);
    let mut ours = SrtpContext::new(&key).unwrap();
    let mut sent: Vec<(Vec<u8>, Vec<u8>)> = (0u32..400)
        .map(|i| {
            let plain = rtp_packet((65_336 + i) as u16, i * 160, &mut rng);
            let wire = theirs.encrypt_rtp(&plain).unwrap().to_vec();
            (plain, wire)
        })
        .collect();
    for pair in sent.chunks_mut(2).step_by(3) {
        pair.swap(0, 1);
    }
    for (plain, wire) in sent {
        let mut buf = wire;
        let n = ours.unprotect_rtp(&mut buf).unwrap();
        assert_eq!(buf[..n], plain[..]);
    }
    assert_eq!(ours.rollover_counter(SSRC), Some(1));
}

#[test]
fn rtcp_interoperates_with_webrtc_srtp_both_ways() {
    for profile in [
        SrtpProfile::AesCm128HmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32,
    ] {
        let mut rng = StdRng::seed_from_u64(4);
        let (key, mut theirs_tx) = keys(profile, &mut rng);
        let (_, mut theirs_rx) = {
            // Same key for webrtc-srtp's receiving side.
            let mut r = StdRng::seed_from_u64(4);
            keys(profile, &mut r)
        };
        let mut ours_rx = SrtpContext::new(&key).unwrap();
        let mut ours_tx = SrtpContext::new(&key).unwrap();
        for _ in 0..500 {
            let plain = rtcp_packet(&mut rng);
            let wire = theirs_tx.encrypt_rtcp(&plain).unwrap();
            assert_eq!(wire.len(), plain.len() + 4 + 10);
            let mut buf = wire.to_vec();
            let n = ours_rx.unprotect_rtcp(&mut buf).unwrap();
            assert_eq!(buf[..n], plain[..]);

            let mut buf = plain.clone();
            buf.resize(plain.len() + MAX_TRAILER, 0);
            let n = ours_tx.protect_rtcp(&mut buf, plain.len()).unwrap();
            assert_eq!(n, plain.len() + 4 + 10);
            let back = theirs_rx.decrypt_rtcp(&buf[..n]).unwrap();
            assert_eq!(back[..], plain[..]);
        }
    }
}
