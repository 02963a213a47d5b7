//! ns per 172-byte RTP packet (12-byte header + 160-byte payload, G.711 20 ms) through
//! SRTP protect and unprotect, replay protection on, ours beside webrtc-srtp; plus the
//! two primitives from RustCrypto (what media::srtp uses) beside aws-lc-rs: how the
//! backend was picked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use drawbridge::media::srtp::{MAX_TRAILER, MasterKey, SrtpContext, SrtpProfile};
use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

const KEY: [u8; 16] = [
    0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39,
];
const SALT: [u8; 14] = [
    0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6,
];
const LEN: usize = 172;
const BUF: usize = LEN + MAX_TRAILER;
/// Packets per timed batch: setup (untimed) makes them, the routine consumes each once.
const BATCH: u64 = 1024;

fn plaintext(seq: u16) -> [u8; BUF] {
    let mut p = [0xd5u8; BUF];
    p[..12].copy_from_slice(&[0x80, 0x00, 0, 0, 0, 0, 0, 0, 0xca, 0xfe, 0xba, 0xbe]);
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p
}

fn ours() -> SrtpContext {
    let key = MasterKey::new(SrtpProfile::AesCm128HmacSha1_80, &KEY, &SALT, None).unwrap();
    SrtpContext::new(&key).unwrap()
}

fn theirs() -> Context {
    Context::new(
        &KEY,
        &SALT,
        ProtectionProfile::Aes128CmHmacSha1_80,
        Some(srtp_replay_protection(64)),
        Some(srtcp_replay_protection(64)),
    )
    .unwrap()
}

fn protect(c: &mut Criterion) {
    let mut g = c.benchmark_group("srtp_protect_172B");
    g.throughput(Throughput::Elements(1));
    let mut seq = 0u16;
    let mut ctx = ours();
    g.bench_function("drawbridge", |b| {
        b.iter_batched_ref(
            || {
                seq = seq.wrapping_add(1);
                plaintext(seq)
            },
            |p| black_box(ctx.protect_rtp(p, LEN).unwrap()),
            BatchSize::NumIterations(BATCH),
        );
    });
    let mut seq = 0u16;
    let mut ctx = theirs();
    g.bench_function("webrtc-srtp", |b| {
        b.iter_batched_ref(
            || {
                seq = seq.wrapping_add(1);
                plaintext(seq)
            },
            |p| black_box(ctx.encrypt_rtp(&p[..LEN]).unwrap()),
            BatchSize::NumIterations(BATCH),
        );
    });
    g.finish();
}

fn unprotect(c: &mut Criterion) {
    let mut g = c.benchmark_group("srtp_unprotect_172B");
    g.throughput(Throughput::Elements(1));
    // The sender runs in the untimed setup; each packet reaches the receiver once, so the
    // replay window accepts it as a real stream would.
    let (mut tx, mut rx, mut seq) = (ours(), ours(), 0u16);
    g.bench_function("drawbridge", |b| {
        b.iter_batched_ref(
            || {
                seq = seq.wrapping_add(1);
                let mut p = plaintext(seq);
                tx.protect_rtp(&mut p, LEN).unwrap();
                p
            },
            |p| black_box(rx.unprotect_rtp(&mut p[..LEN + 10]).unwrap()),
            BatchSize::NumIterations(BATCH),
        );
    });
    let (mut tx, mut rx, mut seq) = (theirs(), theirs(), 0u16);
    g.bench_function("webrtc-srtp", |b| {
        b.iter_batched_ref(
            || {
                seq = seq.wrapping_add(1);
                tx.encrypt_rtp(&plaintext(seq)[..LEN]).unwrap()
            },
            |p| black_box(rx.decrypt_rtp(p).unwrap()),
            BatchSize::NumIterations(BATCH),
        );
    });
    g.finish();
}

/// HMAC-SHA1 over 176 bytes (packet + ROC) from a prepared key, and AES-128-CTR over the
/// 160-byte payload: aws-lc-rs beside RustCrypto.
fn primitives(c: &mut Criterion) {
    use aes::cipher::{InnerIvInit, StreamCipher};
    use hmac::Mac;

    let mut g = c.benchmark_group("srtp_primitives");
    g.throughput(Throughput::Elements(1));
    let data = [0x5au8; 176];
    let auth_key = [7u8; 20];

    let aws_key =
        aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &auth_key);
    g.bench_function("hmac_sha1_176B/aws-lc-rs", |b| {
        b.iter(|| black_box(aws_lc_rs::hmac::sign(&aws_key, black_box(&data))))
    });
    let rc_key = hmac::Hmac::<sha1::Sha1>::new_from_slice(&auth_key).unwrap();
    g.bench_function("hmac_sha1_176B/rustcrypto", |b| {
        b.iter(|| {
            let mut m = rc_key.clone();
            m.update(black_box(&data));
            black_box(m.finalize().into_bytes())
        })
    });

    let mut payload = [0x5au8; 160];
    let iv = [9u8; 16];
    let aws_ctr = aws_lc_rs::cipher::EncryptingKey::ctr(
        aws_lc_rs::cipher::UnboundCipherKey::new(&aws_lc_rs::cipher::AES_128, &KEY).unwrap(),
    )
    .unwrap();
    g.bench_function("aes128_ctr_160B/aws-lc-rs", |b| {
        b.iter(|| {
            let ctx = aws_lc_rs::cipher::EncryptionContext::Iv128(
                aws_lc_rs::iv::FixedLength::from(black_box(iv)),
            );
            black_box(aws_ctr.less_safe_encrypt(&mut payload, ctx).unwrap());
        })
    });
    let rc_aes = {
        use aes::cipher::KeyInit;
        aes::Aes128::new(&KEY.into())
    };
    g.bench_function("aes128_ctr_160B/rustcrypto", |b| {
        b.iter(|| {
            let core = ctr::CtrCore::<aes::Aes128, ctr::flavors::Ctr128BE>::inner_iv_init(
                rc_aes.clone(),
                &black_box(iv).into(),
            );
            let mut c = ctr::Ctr128BE::<aes::Aes128>::from_core(core);
            c.apply_keystream(&mut payload);
            black_box(&payload);
        })
    });
    g.finish();
}

criterion_group!(benches, protect, unprotect, primitives);
criterion_main!(benches);
