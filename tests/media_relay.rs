//! The media plane on real loopback sockets: a Teams peer speaking SRTP made by
//! an independent implementation (webrtc-srtp) and a trunk peer speaking RTP,
//! with drawbridge's workers in between.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use drawbridge::media::srtp::{MasterKey, SrtpProfile};
use drawbridge::media::{
    Direction, DropReason, Leg, MediaConfig, MediaError, MediaEvent, MediaPlane, PortError,
    SessionUpdate,
};
use rand::RngCore;
use webrtc_srtp::context::Context;
use webrtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use webrtc_srtp::protection_profile::ProtectionProfile;

const WAIT: Duration = Duration::from_secs(3);

/// Each test owns a port range below the ephemeral range, so tests running in
/// parallel (and peers bound to port 0) never collide with it.
fn config(port_min: u16, port_max: u16) -> MediaConfig {
    MediaConfig {
        port_min,
        port_max,
        workers: 2,
        ..MediaConfig::default()
    }
}

fn peer() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// A session update that only starts or stops the ringback (TDR-XFR-03).
fn ringback(update: drawbridge::media::tone::RingbackUpdate) -> SessionUpdate {
    SessionUpdate {
        ringback: Some(update),
        ..SessionUpdate::default()
    }
}

fn recv(s: &UdpSocket) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let (n, _) = s.recv_from(&mut buf).expect("datagram within the timeout");
    buf[..n].to_vec()
}

fn nothing_arrives(s: &UdpSocket) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let got = s.recv_from(&mut buf).is_err();
    s.set_read_timeout(Some(WAIT)).unwrap();
    got
}

/// A random master key as ours and as webrtc-srtp's context.
fn key_pair(profile: SrtpProfile) -> (MasterKey, Context) {
    let mut key = [0u8; 16];
    let mut salt = [0u8; 14];
    rand::rng().fill_bytes(&mut key);
    rand::rng().fill_bytes(&mut salt);
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

fn rtp(seq: u16, ts: u32, ssrc: u32, marker_pt: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, marker_pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A G.711 call's worth of packet kinds: audio, RFC 4733 telephone-event
/// (marker on the first, end bit on the last) and RFC 3389 comfort noise.
fn call_packets(ssrc: u32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for i in 0..20u16 {
        let ts = u32::from(i) * 160;
        let p = match i {
            5 => rtp(i, ts, ssrc, 0x80 | 101, &[1, 0x0a, 0x00, 0xa0]),
            6 => rtp(i, ts, ssrc, 101, &[1, 0x0a, 0x01, 0x40]),
            7 => rtp(i, ts, ssrc, 101, &[1, 0x8a, 0x01, 0xe0]),
            10 => rtp(i, ts, ssrc, 13, &[0x40]),
            _ => rtp(i, ts, ssrc, 0, &[i as u8; 160]),
        };
        out.push(p);
    }
    out
}

fn sender_report(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[7u8; 20]);
    p
}

/// A running plane, one session with both peers and keys in place.
struct Call {
    plane: MediaPlane,
    events: tokio::sync::mpsc::Receiver<MediaEvent>,
    rt: tokio::runtime::Runtime,
    teams: UdpSocket,
    trunk: UdpSocket,
    trunk_rtcp: UdpSocket,
    /// Teams side: protects what Teams sends.
    teams_tx: Context,
    /// Teams side: unprotects what the SBC sends to Teams.
    teams_rx: Context,
    sbc_teams: SocketAddr,
    sbc_trunk: SocketAddr,
    sbc_trunk_rtcp: Option<SocketAddr>,
}

impl Call {
    fn new(cfg: &MediaConfig, profile: SrtpProfile, trunk_rtcp_mux: bool) -> Self {
        let (plane, events) = MediaPlane::start(cfg).unwrap();
        let alloc = plane.create_session(1, trunk_rtcp_mux).unwrap();
        assert_eq!(alloc.trunk_rtcp.is_some(), !trunk_rtcp_mux);
        let (teams, trunk, trunk_rtcp) = (peer(), peer(), peer());
        let (inbound, teams_tx) = key_pair(profile);
        let (outbound, teams_rx) = key_pair(profile);
        plane
            .update_session(
                1,
                SessionUpdate {
                    teams_remote: Some(teams.local_addr().unwrap()),
                    trunk_remote: Some(trunk.local_addr().unwrap()),
                    trunk_remote_rtcp: Some(trunk_rtcp.local_addr().unwrap()),
                    teams_inbound_key: Some(inbound),
                    teams_outbound_key: Some(outbound),
                    ..SessionUpdate::default()
                },
            )
            .unwrap();
        Call {
            plane,
            events,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            teams,
            trunk,
            trunk_rtcp,
            teams_tx,
            teams_rx,
            sbc_teams: alloc.teams,
            sbc_trunk: alloc.trunk,
            sbc_trunk_rtcp: alloc.trunk_rtcp,
        }
    }

    fn teams_sends_rtp(&mut self, plain: &[u8]) -> Vec<u8> {
        let srtp = self.teams_tx.encrypt_rtp(plain).unwrap().to_vec();
        self.teams.send_to(&srtp, self.sbc_teams).unwrap();
        srtp
    }

    fn next_event(&mut self, within: Duration) -> Option<MediaEvent> {
        self.rt.block_on(async {
            tokio::time::timeout(within, self.events.recv())
                .await
                .ok()
                .flatten()
        })
    }

    /// Counters are published by another thread: wait until `check` holds.
    fn wait_counters(&self, what: &str, check: impl Fn(&drawbridge::media::MediaCounters) -> bool) {
        let deadline = std::time::SystemTime::now() + WAIT;
        while !check(&self.plane.counters()) {
            assert!(
                std::time::SystemTime::now() < deadline,
                "{what}: {:?}",
                self.plane.counters()
            );
            std::thread::yield_now();
        }
    }
}

fn relays_both_ways_byte_for_byte(profile: SrtpProfile, trunk_rtcp_mux: bool, ports: (u16, u16)) {
    let mut call = Call::new(&config(ports.0, ports.1), profile, trunk_rtcp_mux);
    // TDR-MED-06/-07: SRTP -> RTP output equals the original RTP, header and
    // payload, including telephone-event and comfort noise.
    for plain in call_packets(0x1111_2222) {
        call.teams_sends_rtp(&plain);
        assert_eq!(recv(&call.trunk), plain);
    }
    for plain in call_packets(0x3333_4444) {
        call.trunk.send_to(&plain, call.sbc_trunk).unwrap();
        let srtp = recv(&call.teams);
        assert_ne!(srtp, plain, "toward Teams the payload is encrypted");
        assert_eq!(call.teams_rx.decrypt_rtp(&srtp).unwrap().to_vec(), plain);
    }
    // RTCP: muxed on the Teams leg; on the trunk leg muxed or on its own port.
    let sr = sender_report(0x1111_2222);
    let srtcp = call.teams_tx.encrypt_rtcp(&sr).unwrap().to_vec();
    call.teams.send_to(&srtcp, call.sbc_teams).unwrap();
    let trunk_rtcp_peer = if trunk_rtcp_mux {
        &call.trunk
    } else {
        &call.trunk_rtcp
    };
    assert_eq!(recv(trunk_rtcp_peer), sr);
    let sr = sender_report(0x3333_4444);
    match call.sbc_trunk_rtcp {
        Some(sbc_rtcp) => call.trunk_rtcp.send_to(&sr, sbc_rtcp).unwrap(),
        None => call.trunk.send_to(&sr, call.sbc_trunk).unwrap(),
    };
    let srtcp = recv(&call.teams);
    assert_eq!(call.teams_rx.decrypt_rtcp(&srtcp).unwrap().to_vec(), sr);

    // The worker counts a packet just after sending it.
    call.wait_counters("21 relayed each way", |c| {
        c.relayed_packets(Direction::TeamsToTrunk) == 21
            && c.relayed_packets(Direction::TrunkToTeams) == 21
    });
    let c = call.plane.counters();
    assert_eq!(c.received_packets(Direction::TeamsToTrunk), 21);
    assert_eq!(c.sessions_active, 1);
    assert_eq!(c.ports_in_use, 4, "an RTP/RTCP pair per leg");
    let stats = call
        .plane
        .destroy_session(1)
        .unwrap()
        .blocking_recv()
        .unwrap();
    assert_eq!(stats.teams_to_trunk.packets_out, 21);
    assert_eq!(stats.trunk_to_teams.packets_in, 21);
    assert_eq!(stats.teams_to_trunk.lost, 0);
    call.plane.shutdown();
}

#[test]
fn srtp_80_relays_both_ways_byte_for_byte_with_trunk_rtcp_mux() {
    relays_both_ways_byte_for_byte(SrtpProfile::AesCm128HmacSha1_80, true, (21000, 21099));
}

#[test]
fn srtp_80_relays_both_ways_byte_for_byte_with_trunk_rtcp_port() {
    relays_both_ways_byte_for_byte(SrtpProfile::AesCm128HmacSha1_80, false, (21100, 21199));
}

#[test]
fn srtp_32_relays_both_ways_byte_for_byte() {
    relays_both_ways_byte_for_byte(SrtpProfile::AesCm128HmacSha1_32, false, (21200, 21299));
}

#[test]
fn forged_replayed_and_foreign_packets_are_dropped_and_counted() {
    let mut call = Call::new(
        &config(21300, 21399),
        SrtpProfile::AesCm128HmacSha1_80,
        true,
    );
    let first = rtp(1, 0, 5, 0, &[1; 160]);
    let srtp = call.teams_sends_rtp(&first);
    assert_eq!(recv(&call.trunk), first, "latches on the Teams peer");

    let mut forged = call
        .teams_tx
        .encrypt_rtp(&rtp(2, 160, 5, 0, &[2; 160]))
        .unwrap()
        .to_vec();
    forged[40] ^= 0x01;
    call.teams.send_to(&forged, call.sbc_teams).unwrap();
    call.teams.send_to(&srtp, call.sbc_teams).unwrap();
    let stray = peer();
    let valid_from_stray = call
        .teams_tx
        .encrypt_rtp(&rtp(3, 320, 5, 0, &[3; 160]))
        .unwrap()
        .to_vec();
    stray.send_to(&valid_from_stray, call.sbc_teams).unwrap();
    stray.send_to(&valid_from_stray, call.sbc_teams).unwrap();
    // The trunk leg, whose address was signaled, refuses other sources too.
    stray
        .send_to(&rtp(1, 0, 9, 0, &[0; 160]), call.sbc_trunk)
        .unwrap();

    call.wait_counters("drops", |c| {
        c.drops(DropReason::Auth) == 1
            && c.drops(DropReason::Replay) == 1
            && c.drops(DropReason::WrongSource) == 3
    });
    let ev1 = call.next_event(WAIT).unwrap();
    let ev2 = call.next_event(WAIT).unwrap();
    let stray_addr = stray.local_addr().unwrap();
    let mut legs = [ev1, ev2].map(|ev| match ev {
        MediaEvent::UnexpectedSource { id: 1, leg, addr } if addr == stray_addr => leg,
        other => panic!("unexpected {other:?}"),
    });
    legs.sort_by_key(|l| *l == Leg::Trunk);
    assert_eq!(
        legs,
        [Leg::Teams, Leg::Trunk],
        "one event per leg, not per packet"
    );
    assert!(
        nothing_arrives(&call.trunk),
        "no dropped packet may reach the trunk"
    );
    assert!(nothing_arrives(&call.teams));
    let c = call.plane.counters();
    assert_eq!(c.relayed_packets(Direction::TeamsToTrunk), 1);
    assert_eq!(c.received_packets(Direction::TeamsToTrunk), 5);
    call.plane.shutdown();
}

#[test]
fn key_change_on_reinvite_takes_effect() {
    let mut call = Call::new(
        &config(21400, 21499),
        SrtpProfile::AesCm128HmacSha1_80,
        true,
    );
    let p1 = rtp(1, 0, 5, 0, &[1; 160]);
    call.teams_sends_rtp(&p1);
    assert_eq!(recv(&call.trunk), p1);
    let (new_key, new_ctx) = key_pair(SrtpProfile::AesCm128HmacSha1_80);
    let update = SessionUpdate {
        teams_inbound_key: Some(new_key),
        ..SessionUpdate::default()
    };
    call.plane.update_session(1, update).unwrap();
    // The update is asynchronous: old-key packets fail once it has landed.
    let old = call
        .teams_tx
        .encrypt_rtp(&rtp(2, 160, 5, 0, &[2; 160]))
        .unwrap()
        .to_vec();
    call.teams.send_to(&old, call.sbc_teams).unwrap();
    call.wait_counters("old key refused", |c| c.drops(DropReason::Auth) == 1);
    call.teams_tx = new_ctx;
    let p3 = rtp(3, 320, 5, 0, &[3; 160]);
    call.teams_sends_rtp(&p3);
    assert_eq!(recv(&call.trunk), p3);
    call.plane.shutdown();
}

/// Updates reach the worker without waking it; one queued while it is busy
/// reading a burst must still apply to the next datagram sent after it.
#[test]
fn key_change_applies_to_a_packet_sent_during_a_burst() {
    let mut call = Call::new(
        &config(21600, 21699),
        SrtpProfile::AesCm128HmacSha1_80,
        true,
    );
    // Small enough that the SBC's and the trunk peer's default receive buffers
    // (~208 KB, ~1 KB of kernel memory per datagram) hold all of it even when
    // the worker is slow (a debug build under a loaded test run lost the tail
    // of a 300-packet burst in the kernel).
    let burst: Vec<Vec<u8>> = (0..100u16)
        .map(|i| {
            let p = rtp(100 + i, u32::from(i) * 160, 5, 0, &[4; 160]);
            call.teams_tx.encrypt_rtp(&p).unwrap().to_vec()
        })
        .collect();
    let sender = call.teams.try_clone().unwrap();
    let to = call.sbc_teams;
    let flood = std::thread::spawn(move || {
        for p in &burst {
            sender.send_to(p, to).unwrap();
        }
    });
    // The worker is relaying the burst once its first packet is through.
    assert_eq!(recv(&call.trunk)[12..], [4; 160]);
    let (new_key, new_ctx) = key_pair(SrtpProfile::AesCm128HmacSha1_80);
    call.plane
        .update_session(
            1,
            SessionUpdate {
                teams_inbound_key: Some(new_key),
                ..SessionUpdate::default()
            },
        )
        .unwrap();
    call.teams_tx = new_ctx;
    let marked = rtp(1000, 0, 5, 0, &[9; 160]);
    call.teams_sends_rtp(&marked);
    flood.join().unwrap();
    // Burst packets relayed before the update come first; a bounded read.
    let mut found = false;
    for _ in 0..=100 {
        let got = recv(&call.trunk);
        if got == marked {
            found = true;
            break;
        }
        assert_eq!(got[12..], [4; 160], "only burst packets before it");
    }
    assert!(found, "the packet under the new key was relayed");
    call.plane.shutdown();
}

#[test]
fn silent_stream_raises_timeout_event() {
    let cfg = MediaConfig {
        timeout_s: 1,
        ..config(21500, 21599)
    };
    let mut call = Call::new(&cfg, SrtpProfile::AesCm128HmacSha1_80, true);
    let p = rtp(1, 0, 5, 0, &[1; 160]);
    call.trunk.send_to(&p, call.sbc_trunk).unwrap();
    recv(&call.teams);
    let mut legs = Vec::new();
    for _ in 0..2 {
        match call.next_event(Duration::from_secs(4)) {
            Some(MediaEvent::Timeout {
                id: 1,
                leg,
                silent_for,
            }) => {
                assert!(silent_for >= Duration::from_secs(1));
                legs.push(leg);
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
    }
    legs.sort_by_key(|l| *l == Leg::Trunk);
    assert_eq!(legs, [Leg::Teams, Leg::Trunk]);
    assert_eq!(
        call.next_event(Duration::from_millis(1500)),
        None,
        "once per silence"
    );
    call.plane.shutdown();
}

/// Resident set size in bytes (second field of /proc/self/statm, in pages).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn ten_thousand_sessions_leave_no_port_and_no_memory_behind() {
    let cfg = MediaConfig {
        port_min: 22000,
        port_max: 29999,
        teams_ip: "127.0.0.1".parse().unwrap(),
        trunk_ip: "127.0.0.2".parse().unwrap(),
        quarantine_s: 1,
        ..config(0, 0)
    };
    let (plane, _events) = MediaPlane::start(&cfg).unwrap();
    let (teams_key, _) = key_pair(SrtpProfile::AesCm128HmacSha1_80);
    let mut id = 0u64;
    let mut rss_after_warmup = 0;
    for round in 0..20 {
        let mut pending = Vec::new();
        for _ in 0..500 {
            id += 1;
            let give_up = std::time::SystemTime::now() + Duration::from_secs(5);
            let alloc = loop {
                assert!(
                    std::time::SystemTime::now() < give_up,
                    "ports never came back"
                );
                match plane.create_session(id, id.is_multiple_of(2)) {
                    Ok(a) => break a,
                    // The range is smaller than 10,000 calls: wait for quarantine.
                    Err(MediaError::Ports(PortError::Exhausted { .. })) => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => panic!("{e}"),
                }
            };
            assert_eq!(alloc.trunk.ip(), cfg.trunk_ip);
            let update = SessionUpdate {
                teams_remote: Some("127.0.0.1:9".parse().unwrap()),
                teams_inbound_key: Some(teams_key.clone()),
                teams_outbound_key: Some(teams_key.clone()),
                ..SessionUpdate::default()
            };
            plane.update_session(id, update).unwrap();
            pending.push(id);
        }
        // Removal does not wake the worker: it lands at the next sweep, so
        // the whole round is handed over before any figures are awaited.
        let stats: Vec<_> = pending
            .into_iter()
            .map(|id| plane.destroy_session(id).unwrap())
            .collect();
        for s in stats {
            s.blocking_recv().unwrap();
        }
        if round == 1 {
            rss_after_warmup = rss_bytes();
        }
    }
    assert_eq!(plane.counters().sessions_active, 0);
    let deadline = std::time::SystemTime::now() + Duration::from_secs(5);
    while plane.counters().ports_in_use > 0 {
        assert!(
            std::time::SystemTime::now() < deadline,
            "ports still in use after quarantine"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let growth = rss_bytes().saturating_sub(rss_after_warmup);
    // 9,000 sessions after warm-up: even 512 bytes leaked each would be 4.6 MB.
    assert!(
        growth < 4 << 20,
        "RSS grew {growth} bytes over 9,000 sessions"
    );
    plane.shutdown();
}

/// TDR-XFR-03: while Teams transfers the call, the trunk hears ringback made by the SBC: a
/// G.711 stream of its own (new SSRC, marker on the first packet) every 20 ms, which stops
/// when the transfer is answered.
#[test]
fn ringback_reaches_the_trunk_while_a_transfer_rings_and_stops_after() {
    use drawbridge::media::tone::{G711, RingbackUpdate};
    let call = Call::new(
        &config(21700, 21799),
        SrtpProfile::AesCm128HmacSha1_80,
        true,
    );
    call.plane
        .update_session(1, ringback(RingbackUpdate::Start(G711::Ulaw)))
        .unwrap();
    // 25 packets are half a second of tone: with 20 ms pacing they cannot come faster
    // than ~480 ms, and the first is due at the worker's next turn (a quarter second at most).
    let started = drawbridge::clock::now();
    let packets: Vec<Vec<u8>> = (0..25).map(|_| recv(&call.trunk)).collect();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "paced, not a burst: {took:?}"
    );
    let first = &packets[0];
    assert_eq!(first.len(), 12 + 160);
    assert_eq!(first[1], 0x80, "PCMU with the marker on the first packet");
    let ssrc = &first[8..12];
    for (i, p) in packets.iter().enumerate().skip(1) {
        assert_eq!(p[1], 0, "PCMU");
        assert_eq!(&p[8..12], ssrc, "one stream");
        let seq = |p: &[u8]| u16::from_be_bytes([p[2], p[3]]);
        assert_eq!(seq(p), seq(&packets[i - 1]).wrapping_add(1));
        let ts = |p: &[u8]| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
        assert_eq!(ts(p), ts(&packets[i - 1]).wrapping_add(160));
    }
    assert!(
        packets.iter().all(|p| p[12..].iter().any(|&b| b != 0xff)),
        "the first second is tone, not μ-law silence"
    );

    call.plane
        .update_session(1, ringback(RingbackUpdate::Stop))
        .unwrap();
    // Packets already on their way are read off; then the stream must end.
    let mut ended = false;
    for _ in 0..30 {
        if nothing_arrives(&call.trunk) {
            ended = true;
            break;
        }
    }
    assert!(ended, "ringback stops after the transfer is answered");
    assert!(call.plane.counters().ringback_packets >= 25);
    call.plane.shutdown();
}

/// TDR-XFR-04: while the party a trunk's REFER named rings, the Teams caller hears ringback as
/// SRTP under the call's key toward Teams (an independent SRTP implementation decrypts it to a
/// paced PCMU stream), and nothing of the trunk's old party is mixed in; once stopped, the
/// trunk's media flows to Teams again.
#[test]
fn ringback_reaches_teams_as_srtp_while_a_trunk_transfer_rings() {
    use drawbridge::media::tone::{G711, RingbackUpdate};
    let mut call = Call::new(
        &config(21800, 21899),
        SrtpProfile::AesCm128HmacSha1_80,
        true,
    );
    call.plane
        .update_session(1, ringback(RingbackUpdate::StartTowardTeams(G711::Ulaw)))
        .unwrap();
    let mut packets = Vec::new();
    for _ in 0..10 {
        let srtp = recv(&call.teams);
        assert_eq!(srtp.len(), 12 + 160 + 10, "PCMU with an 80-bit tag");
        let plain = call
            .teams_rx
            .decrypt_rtp(&srtp)
            .unwrap_or_else(|e| panic!("ringback toward Teams does not unprotect: {e}"))
            .to_vec();
        packets.push(plain);
    }
    assert_eq!(
        packets[0][1], 0x80,
        "PCMU with the marker on the first packet"
    );
    for (i, p) in packets.iter().enumerate().skip(1) {
        assert_eq!(p[1], 0, "PCMU");
        assert_eq!(&p[8..12], &packets[0][8..12], "one stream");
        let seq = |p: &[u8]| u16::from_be_bytes([p[2], p[3]]);
        assert_eq!(seq(p), seq(&packets[i - 1]).wrapping_add(1));
    }
    assert!(packets.iter().all(|p| p[12..].iter().any(|&b| b != 0xff)));
    // The agent's hold music is not mixed into the tone.
    let from_agent = rtp(7000, 0, 0xabcd_0001, 0, &[0x55; 160]);
    call.trunk.send_to(&from_agent, call.sbc_trunk).unwrap();
    let mut mixed = false;
    for _ in 0..10 {
        let srtp = recv(&call.teams);
        let plain = call.teams_rx.decrypt_rtp(&srtp).unwrap().to_vec();
        mixed |= plain[8..12] == from_agent[8..12];
    }
    assert!(!mixed, "the trunk's packet reached Teams during ringback");

    call.plane
        .update_session(1, ringback(RingbackUpdate::Stop))
        .unwrap();
    let mut ended = false;
    for _ in 0..30 {
        if nothing_arrives(&call.teams) {
            ended = true;
            break;
        }
    }
    assert!(ended, "ringback toward Teams stops");
    let after = rtp(7001, 160, 0xabcd_0001, 0, &[0x56; 160]);
    call.trunk.send_to(&after, call.sbc_trunk).unwrap();
    let srtp = recv(&call.teams);
    assert_eq!(call.teams_rx.decrypt_rtp(&srtp).unwrap().to_vec(), after);
    call.wait_counters("ringback counted", |c| c.ringback_packets >= 10);
    call.plane.shutdown();
}
