//! The per-packet transform of the relay worker, without sockets: what our own
//! code costs per packet on top of the kernel's ~2.9 µs loopback UDP path.
//! Beside it, the naive baseline: webrtc-srtp, which returns a new `Bytes` per
//! packet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::SocketAddr;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use drawbridge::media::session::{Changes, Outcome, Port, Session, SessionTimers};
use drawbridge::media::srtp::{MasterKey, SrtpContext, SrtpProfile};
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

const TEAMS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 50000);
const TRUNK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 60000);
/// A 20 ms G.711 frame: 12-byte header and 160 bytes of payload.
const RTP_LEN: usize = 172;

fn key(byte: u8) -> MasterKey {
    MasterKey::new(
        SrtpProfile::AesCm128HmacSha1_80,
        &[byte; 16],
        &[byte; 14],
        None,
    )
    .unwrap()
}

fn rtp_into(buf: &mut [u8], seq: u16) -> usize {
    buf[..12].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]);
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    buf[12..RTP_LEN].fill(0xd5);
    RTP_LEN
}

fn session() -> Session {
    let mut s = Session::new(SessionTimers::default(), true, false);
    let changes = Changes {
        teams_remote: Some(TEAMS),
        trunk_remote: Some(TRUNK),
        teams_inbound: Some(SrtpContext::new(&key(1)).unwrap()),
        teams_outbound: Some(SrtpContext::new(&key(2)).unwrap()),
        ..Changes::default()
    };
    s.apply(changes, drawbridge::clock::now()).unwrap();
    s
}

fn transform(c: &mut Criterion) {
    let mut g = c.benchmark_group("relay_transform");
    g.throughput(Throughput::Elements(1));
    let now = drawbridge::clock::now();

    // SRTP from Teams: authenticate, replay-check, decrypt, latch, route. Each
    // packet must be fresh (the replay window refuses repeats), so the
    // protection by the "Teams" peer is done in the untimed setup.
    let mut s = session();
    let mut peer = SrtpContext::new(&key(1)).unwrap();
    let mut seq = 0u16;
    g.bench_function("teams_to_trunk_srtp_in_rtp_out", |b| {
        b.iter_batched_ref(
            || {
                let mut buf = [0u8; 2048];
                seq = seq.wrapping_add(1);
                let len = rtp_into(&mut buf, seq);
                let len = peer.protect_rtp(&mut buf, len).unwrap();
                (buf, len)
            },
            |(buf, len)| {
                let out = s.handle_packet(Port::Teams, buf, *len, TEAMS, now);
                debug_assert!(matches!(out, Outcome::Forward { .. }));
                black_box(out)
            },
            BatchSize::SmallInput,
        );
    });

    let mut s = session();
    let mut seq = 0u16;
    g.bench_function("trunk_to_teams_rtp_in_srtp_out", |b| {
        b.iter_batched_ref(
            || {
                let mut buf = [0u8; 2048];
                seq = seq.wrapping_add(1);
                let len = rtp_into(&mut buf, seq);
                (buf, len)
            },
            |(buf, len)| {
                let out = s.handle_packet(Port::TrunkRtp, buf, *len, TRUNK, now);
                debug_assert!(matches!(out, Outcome::Forward { .. }));
                black_box(out)
            },
            BatchSize::SmallInput,
        );
    });

    // Naive baseline: webrtc-srtp, one allocation per packet.
    let mut theirs = Context::new(
        &[2; 16],
        &[2; 14],
        ProtectionProfile::Aes128CmHmacSha1_80,
        None,
        None,
    )
    .unwrap();
    let mut plain = [0u8; RTP_LEN];
    rtp_into(&mut plain, 1);
    g.bench_function("baseline_webrtc_srtp_encrypt_rtp", |b| {
        b.iter(|| black_box(theirs.encrypt_rtp(black_box(&plain)).unwrap()));
    });
    g.finish();
}

criterion_group!(benches, transform);
criterion_main!(benches);
