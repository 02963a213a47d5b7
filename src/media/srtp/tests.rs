use super::*;

fn key(mki: Option<Mki>) -> MasterKey {
    MasterKey::new(SrtpProfile::AesCm128HmacSha1_80, &[7; 16], &[9; 14], mki).unwrap()
}

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn protect(tx: &mut SrtpContext, plain: &[u8]) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + MAX_TRAILER, 0);
    let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn is_rtcp_follows_rfc5761_second_octet() {
    for pt in [200u8, 201, 202, 203, 204, 205, 206, 207] {
        assert!(is_rtcp(&[0x80, pt, 0, 1]), "{pt}");
    }
    for second in [0u8, 8, 0x80, 0x88, 96, 111, 0x80 | 111, 127] {
        assert!(!is_rtcp(&[0x80, second, 0, 1]), "{second}");
    }
    assert!(!is_rtcp(&[0x80]));
}

#[test]
fn each_ssrc_gets_its_own_state_until_the_table_is_full() {
    let mut tx = SrtpContext::new(&key(None)).unwrap();
    let mut rx = SrtpContext::new(&key(None)).unwrap();
    for ssrc in 0..SSRC_CAPACITY as u32 {
        // The same sequence number on every SSRC is no replay: windows are per SSRC.
        let mut wire = protect(&mut tx, &rtp(7, ssrc, b"hello"));
        assert_eq!(rx.unprotect_rtp(&mut wire).unwrap(), 17);
    }
    let plain = rtp(7, 999, b"hello");
    let mut buf = plain.clone();
    buf.resize(plain.len() + MAX_TRAILER, 0);
    assert_eq!(
        tx.protect_rtp(&mut buf, plain.len()),
        Err(SrtpError::SsrcTableFull {
            capacity: SSRC_CAPACITY
        })
    );
}

#[test]
fn forged_packets_change_no_state() {
    let mut tx = SrtpContext::new(&key(None)).unwrap();
    let mut rx = SrtpContext::new(&key(None)).unwrap();
    let mut wire = protect(&mut tx, &rtp(100, 1, b"first"));
    rx.unprotect_rtp(&mut wire).unwrap();
    // A forged packet whose sequence number would move the ROC back and one from an
    // unseen SSRC: both fail the tag, neither leaves state behind.
    let mut forged = protect(
        &mut SrtpContext::new(&key(None)).unwrap(),
        &rtp(40_000, 1, b"forged"),
    );
    let last = forged.len() - 1;
    forged[last] ^= 1;
    assert_eq!(rx.unprotect_rtp(&mut forged), Err(SrtpError::AuthFailed));
    let mut stranger = protect(&mut SrtpContext::new(&key(None)).unwrap(), &rtp(5, 2, b"x"));
    stranger[12] ^= 1;
    assert_eq!(rx.unprotect_rtp(&mut stranger), Err(SrtpError::AuthFailed));
    assert_eq!(rx.rollover_counter(2), None);
    assert_eq!(rx.rollover_counter(1), Some(0));
    let mut next = protect(&mut tx, &rtp(101, 1, b"second"));
    assert_eq!(rx.unprotect_rtp(&mut next).unwrap(), 18);
}

#[test]
fn packets_behind_the_window_are_too_old_and_repeats_replayed() {
    let mut tx = SrtpContext::new(&key(None)).unwrap();
    let mut rx = SrtpContext::new(&key(None)).unwrap();
    let old = protect(&mut tx, &rtp(1, 1, b"a"));
    let mut recent = protect(&mut tx, &rtp(2, 1, b"b"));
    let mut ahead = protect(&mut tx, &rtp(200, 1, b"c"));
    rx.unprotect_rtp(&mut ahead).unwrap();
    assert!(matches!(
        rx.unprotect_rtp(&mut old.clone()),
        Err(SrtpError::TooOld { index: 1 })
    ));
    let mut late = protect(&mut tx, &rtp(150, 1, b"d"));
    let copy = late.clone();
    rx.unprotect_rtp(&mut late).unwrap();
    assert_eq!(
        rx.unprotect_rtp(&mut copy.clone()),
        Err(SrtpError::Replayed { index: 150 })
    );
    assert_eq!(SrtpError::Replayed { index: 150 }.reason(), "replay");
    assert!(rx.unprotect_rtp(&mut recent).is_err());
}

#[test]
fn mki_is_sent_checked_and_stripped() {
    let mki = Mki::new(1, 1).unwrap();
    let mut tx = SrtpContext::new(&key(Some(mki))).unwrap();
    let plain = rtp(1, 1, b"payload");
    let wire = protect(&mut tx, &plain);
    assert_eq!(wire.len(), plain.len() + 1 + 10);
    assert_eq!(wire[plain.len()], 1);
    let mut rx = SrtpContext::new(&key(Some(mki))).unwrap();
    let n = rx.unprotect_rtp(&mut wire.clone()).unwrap();
    assert_eq!(n, plain.len());
    let mut other = SrtpContext::new(&key(Some(Mki::new(2, 1).unwrap()))).unwrap();
    assert_eq!(
        other.unprotect_rtp(&mut wire.clone()),
        Err(SrtpError::MkiMismatch)
    );
}

#[test]
fn padding_stays_in_the_payload() {
    let mut plain = rtp(1, 1, b"audio\0\0\x03");
    plain[0] |= 0x20;
    let mut tx = SrtpContext::new(&key(None)).unwrap();
    let mut rx = SrtpContext::new(&key(None)).unwrap();
    let mut wire = protect(&mut tx, &plain);
    let n = rx.unprotect_rtp(&mut wire).unwrap();
    assert_eq!(wire[..n], plain[..]);
}

#[test]
fn short_buffers_and_bad_headers_are_errors() {
    let mut tx = SrtpContext::new(&key(None)).unwrap();
    let plain = rtp(1, 1, b"abc");
    let mut tight = plain.clone();
    tight.resize(plain.len() + 9, 0);
    assert!(matches!(
        tx.protect_rtp(&mut tight, plain.len()),
        Err(SrtpError::NoTailRoom { .. })
    ));
    // Extension header claiming more words than the packet has.
    let mut ext = rtp(1, 1, &[0xbe, 0xde, 0, 9, 1, 2, 3, 4]);
    ext[0] |= 0x10;
    let len = ext.len();
    ext.resize(len + MAX_TRAILER, 0);
    assert!(matches!(
        tx.protect_rtp(&mut ext, len),
        Err(SrtpError::TooShort { .. })
    ));
    let mut rx = SrtpContext::new(&key(None)).unwrap();
    for n in 0..30 {
        let _ = rx.unprotect_rtp(&mut vec![0x80; n]);
        let _ = rx.unprotect_rtcp(&mut vec![0x80; n]);
    }
    let mut v1 = protect(&mut tx, &rtp(2, 1, b"abc"));
    v1[0] = 0x40;
    assert_eq!(
        rx.unprotect_rtp(&mut v1),
        Err(SrtpError::BadVersion { version: 1 })
    );
}

#[test]
fn srtcp_index_counts_per_ssrc_and_replays_are_refused() {
    let mut tx = SrtpContext::new(&key(None)).unwrap();
    let mut rx = SrtpContext::new(&key(None)).unwrap();
    for round in 1..=3u32 {
        for ssrc in [10u32, 20] {
            let mut p = vec![0x80, 201, 0, 1];
            p.extend_from_slice(&ssrc.to_be_bytes());
            let len = p.len();
            p.resize(len + MAX_TRAILER, 0);
            let n = tx.protect_rtcp(&mut p, len).unwrap();
            assert_eq!(
                u32::from_be_bytes(p[len..len + 4].try_into().unwrap()),
                0x8000_0000 | round
            );
            let copy = p[..n].to_vec();
            assert_eq!(rx.unprotect_rtcp(&mut p[..n]).unwrap(), len);
            assert!(matches!(
                rx.unprotect_rtcp(&mut copy.clone()),
                Err(SrtpError::Replayed { .. })
            ));
        }
    }
}

#[test]
fn master_key_debug_is_redacted_and_lengths_checked() {
    assert_eq!(format!("{:?}", key(None)), "MasterKey(<redacted>)");
    assert_eq!(
        MasterKey::new(SrtpProfile::AesCm128HmacSha1_80, &[0; 15], &[0; 14], None),
        Err(SrtpError::BadKeyLength {
            expected: 16,
            got: 15
        })
    );
    assert!(Mki::new(256, 1).is_err());
    assert!(Mki::new(0, 9).is_err());
    assert_eq!(Mki::new(0x0102, 2).unwrap().as_bytes(), [1, 2]);
    let a = MasterKey::generate(SrtpProfile::AesCm128HmacSha1_32).unwrap();
    let b = MasterKey::generate(SrtpProfile::AesCm128HmacSha1_32).unwrap();
    assert_ne!(a.inline_key(), b.inline_key());
}
