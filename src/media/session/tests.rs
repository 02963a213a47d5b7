use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::*;
use crate::media::srtp::{MAX_TRAILER, MasterKey, SrtpContext, SrtpProfile};

const TEAMS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 50000);
const TRUNK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 60000);
const STRAY: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 1234);

fn key(byte: u8) -> MasterKey {
    MasterKey::new(
        SrtpProfile::AesCm128HmacSha1_80,
        &[byte; 16],
        &[byte ^ 0x5a; 14],
        None,
    )
    .unwrap()
}

/// A session with both remotes and keys set, plus the Teams peer's contexts:
/// one to protect what Teams sends, one to unprotect what it receives.
fn session(mux: bool, timers: SessionTimers, now: Instant) -> (Session, SrtpContext, SrtpContext) {
    let mut s = Session::new(timers, mux, !mux);
    s.apply(
        Changes {
            teams_remote: Some(TEAMS),
            trunk_remote: Some(TRUNK),
            teams_inbound: Some(SrtpContext::new(&key(1)).unwrap()),
            teams_outbound: Some(SrtpContext::new(&key(2)).unwrap()),
            ..Changes::default()
        },
        now,
    )
    .unwrap();
    (
        s,
        SrtpContext::new(&key(1)).unwrap(),
        SrtpContext::new(&key(2)).unwrap(),
    )
}

fn rtp(seq: u16, pt: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt, 0, 0, 0, 0, 0x03, 0x20, 0xde, 0xad, 0xbe, 0xef];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// RTCP receiver report with no blocks (RFC 3550 §6.4.2).
fn rtcp_rr() -> Vec<u8> {
    vec![0x80, 201, 0, 1, 0xde, 0xad, 0xbe, 0xef]
}

/// Runs a packet through the session the way the worker does.
fn relay(
    s: &mut Session,
    port: Port,
    packet: &[u8],
    src: SocketAddr,
    now: Instant,
) -> (Outcome, Vec<u8>) {
    let mut buf = vec![0u8; packet.len() + MAX_TRAILER];
    buf[..packet.len()].copy_from_slice(packet);
    let out = s.handle_packet(port, &mut buf, packet.len(), src, now);
    let bytes = match out {
        Outcome::Forward { len, .. } => buf[..len].to_vec(),
        Outcome::Drop(_) => Vec::new(),
    };
    (out, bytes)
}

fn protect(ctx: &mut SrtpContext, plain: &[u8], rtcp: bool) -> Vec<u8> {
    let mut buf = vec![0u8; plain.len() + MAX_TRAILER];
    buf[..plain.len()].copy_from_slice(plain);
    let n = if rtcp {
        ctx.protect_rtcp(&mut buf, plain.len())
    } else {
        ctx.protect_rtp(&mut buf, plain.len())
    };
    buf.truncate(n.unwrap());
    buf
}

#[test]
fn srtp_from_teams_leaves_as_identical_rtp_to_trunk() {
    let now = crate::clock::now();
    let (mut s, mut teams_tx, _) = session(true, SessionTimers::default(), now);
    let plain = rtp(7, 0, &[0xd5; 160]);
    let (out, bytes) = relay(
        &mut s,
        Port::Teams,
        &protect(&mut teams_tx, &plain, false),
        TEAMS,
        now,
    );
    assert!(matches!(
        out,
        Outcome::Forward {
            via: Port::TrunkRtp,
            to: TRUNK,
            direction: Direction::TeamsToTrunk,
            ..
        }
    ));
    assert_eq!(bytes, plain);
}

#[test]
fn rtp_from_trunk_reaches_teams_as_srtp_that_decrypts_to_the_same_bytes() {
    let now = crate::clock::now();
    let (mut s, _, mut teams_rx) = session(true, SessionTimers::default(), now);
    // RFC 4733 telephone-event with the marker bit set: passed unchanged.
    let plain = rtp(9, 0x80 | 101, &[5, 0x0a, 0x00, 0xa0]);
    let (out, mut bytes) = relay(&mut s, Port::TrunkRtp, &plain, TRUNK, now);
    assert!(matches!(
        out,
        Outcome::Forward {
            via: Port::Teams,
            to: TEAMS,
            ..
        }
    ));
    let n = teams_rx.unprotect_rtp(&mut bytes).unwrap();
    assert_eq!(&bytes[..n], &plain[..]);
}

#[test]
fn teams_rtcp_goes_to_the_trunk_rtcp_port_without_mux() {
    let now = crate::clock::now();
    let (mut s, mut teams_tx, _) = session(false, SessionTimers::default(), now);
    let (out, bytes) = relay(
        &mut s,
        Port::Teams,
        &protect(&mut teams_tx, &rtcp_rr(), true),
        TEAMS,
        now,
    );
    let rtcp_addr = SocketAddr::new(TRUNK.ip(), TRUNK.port() + 1);
    assert!(matches!(out, Outcome::Forward { via: Port::TrunkRtcp, to, .. } if to == rtcp_addr));
    assert_eq!(bytes, rtcp_rr());
}

#[test]
fn forged_and_replayed_srtp_are_dropped() {
    let now = crate::clock::now();
    let (mut s, mut teams_tx, _) = session(true, SessionTimers::default(), now);
    let good = protect(&mut teams_tx, &rtp(1, 0, &[1; 40]), false);
    let mut forged = good.clone();
    forged[20] ^= 1;
    assert_eq!(
        relay(&mut s, Port::Teams, &forged, TEAMS, now).0,
        Outcome::Drop(DropReason::Auth)
    );
    assert!(matches!(
        relay(&mut s, Port::Teams, &good, TEAMS, now).0,
        Outcome::Forward { .. }
    ));
    assert_eq!(
        relay(&mut s, Port::Teams, &good, TEAMS, now).0,
        Outcome::Drop(DropReason::Replay)
    );
}

#[test]
fn srtp_without_inbound_key_is_dropped() {
    let now = crate::clock::now();
    let mut s = Session::new(SessionTimers::default(), true, false);
    let mut tx = SrtpContext::new(&key(1)).unwrap();
    let p = protect(&mut tx, &rtp(1, 0, &[0; 20]), false);
    assert_eq!(
        relay(&mut s, Port::Teams, &p, TEAMS, now).0,
        Outcome::Drop(DropReason::NoKey)
    );
}

#[test]
fn first_authenticated_source_latches_and_others_are_reported_once() {
    let now = crate::clock::now();
    let (mut s, mut teams_tx, _) = session(true, SessionTimers::default(), now);
    // Teams sends from an address other than its SDP one (NAT): it latches.
    let nat = SocketAddr::new(TEAMS.ip(), 50100);
    let p1 = protect(&mut teams_tx, &rtp(1, 0, &[0; 20]), false);
    assert!(matches!(
        relay(&mut s, Port::Teams, &p1, nat, now).0,
        Outcome::Forward { .. }
    ));
    assert_eq!(s.remote(Leg::Teams), Some(nat));
    for seq in 2..5 {
        let p = protect(&mut teams_tx, &rtp(seq, 0, &[0; 20]), false);
        assert_eq!(
            relay(&mut s, Port::Teams, &p, STRAY, now).0,
            Outcome::Drop(DropReason::WrongSource)
        );
    }
    assert_eq!(
        s.poll_event(),
        Some(LegEvent::UnexpectedSource {
            leg: Leg::Teams,
            addr: STRAY
        })
    );
    assert_eq!(s.poll_event(), None);
}

#[test]
fn trunk_rtp_only_from_the_signaled_address() {
    let now = crate::clock::now();
    let (mut s, _, _) = session(true, SessionTimers::default(), now);
    let (out, _) = relay(&mut s, Port::TrunkRtp, &rtp(1, 0, &[0; 20]), STRAY, now);
    assert_eq!(out, Outcome::Drop(DropReason::WrongSource));
    assert!(matches!(
        relay(&mut s, Port::TrunkRtp, &rtp(2, 0, &[0; 20]), TRUNK, now).0,
        Outcome::Forward { .. }
    ));
}

#[test]
fn silent_teams_source_may_be_replaced_after_relatch_time() {
    let t0 = crate::clock::now();
    let timers = SessionTimers {
        timeout: None,
        relatch_after: Some(Duration::from_millis(500)),
    };
    let (mut s, mut teams_tx, _) = session(true, timers, t0);
    let p1 = protect(&mut teams_tx, &rtp(1, 0, &[0; 20]), false);
    relay(&mut s, Port::Teams, &p1, TEAMS, t0);
    let p2 = protect(&mut teams_tx, &rtp(2, 0, &[0; 20]), false);
    let early = relay(
        &mut s,
        Port::Teams,
        &p2,
        STRAY,
        t0 + Duration::from_millis(100),
    )
    .0;
    assert_eq!(early, Outcome::Drop(DropReason::WrongSource));
    // A forged packet from the new source must not move the latch.
    let mut forged = protect(&mut teams_tx, &rtp(3, 0, &[0; 20]), false);
    let later = t0 + Duration::from_millis(600);
    forged[15] ^= 0xff;
    assert_eq!(
        relay(&mut s, Port::Teams, &forged, STRAY, later).0,
        Outcome::Drop(DropReason::Auth)
    );
    assert_eq!(s.remote(Leg::Teams), Some(TEAMS));
    let p4 = protect(&mut teams_tx, &rtp(4, 0, &[0; 20]), false);
    assert!(matches!(
        relay(&mut s, Port::Teams, &p4, STRAY, later).0,
        Outcome::Forward { .. }
    ));
    assert_eq!(s.remote(Leg::Teams), Some(STRAY));
}

#[test]
fn hold_stops_rtp_but_not_rtcp() {
    let now = crate::clock::now();
    let (mut s, mut teams_tx, _) = session(true, SessionTimers::default(), now);
    let hold = Forwarding {
        teams_to_trunk: false,
        trunk_to_teams: false,
    };
    s.apply(
        Changes {
            forwarding: Some(hold),
            ..Changes::default()
        },
        now,
    )
    .unwrap();
    let p = protect(&mut teams_tx, &rtp(1, 0, &[0; 20]), false);
    assert_eq!(
        relay(&mut s, Port::Teams, &p, TEAMS, now).0,
        Outcome::Drop(DropReason::OnHold)
    );
    let r = protect(&mut teams_tx, &rtcp_rr(), true);
    assert!(matches!(
        relay(&mut s, Port::Teams, &r, TEAMS, now).0,
        Outcome::Forward { .. }
    ));
    assert_eq!(
        relay(&mut s, Port::TrunkRtp, &rtp(1, 0, &[0; 20]), TRUNK, now).0,
        Outcome::Drop(DropReason::OnHold)
    );
}

#[test]
fn silent_leg_times_out_once_until_media_resumes() {
    let t0 = crate::clock::now();
    let timers = SessionTimers {
        timeout: Some(Duration::from_secs(10)),
        relatch_after: None,
    };
    let (mut s, _, _) = session(true, timers, t0);
    relay(
        &mut s,
        Port::TrunkRtp,
        &rtp(1, 0, &[0; 20]),
        TRUNK,
        t0 + Duration::from_secs(5),
    );
    s.handle_timeout(t0 + Duration::from_secs(10));
    let ev = s.poll_event();
    assert_eq!(
        ev,
        Some(LegEvent::Timeout {
            leg: Leg::Teams,
            silent_for: Duration::from_secs(10)
        })
    );
    assert_eq!(s.poll_event(), None, "trunk leg heard 5 s ago");
    s.handle_timeout(t0 + Duration::from_secs(11));
    assert_eq!(s.poll_event(), None, "one event per silence");
    s.handle_timeout(t0 + Duration::from_secs(15));
    assert!(matches!(
        s.poll_event(),
        Some(LegEvent::Timeout {
            leg: Leg::Trunk,
            ..
        })
    ));
}

#[test]
fn unanswered_leg_is_not_watched() {
    let t0 = crate::clock::now();
    let timers = SessionTimers {
        timeout: Some(Duration::from_secs(1)),
        relatch_after: None,
    };
    let mut s = Session::new(timers, true, false);
    s.handle_timeout(t0 + Duration::from_secs(100));
    assert_eq!(s.poll_event(), None);
}

#[test]
fn stats_count_both_directions_and_losses() {
    let now = crate::clock::now();
    let (mut s, mut teams_tx, _) = session(true, SessionTimers::default(), now);
    for seq in [1u16, 2, 4] {
        let p = protect(&mut teams_tx, &rtp(seq, 0, &[0; 160]), false);
        relay(&mut s, Port::Teams, &p, TEAMS, now);
    }
    relay(&mut s, Port::TrunkRtp, &rtp(1, 0, &[0; 160]), TRUNK, now);
    let st = s.stats();
    assert_eq!(st.teams_to_trunk.packets_in, 3);
    assert_eq!(st.teams_to_trunk.bytes_in, 3 * (172 + 10));
    assert_eq!(st.teams_to_trunk.bytes_out, 3 * 172);
    assert_eq!(st.teams_to_trunk.lost, 1);
    assert_eq!(st.trunk_to_teams.packets_out, 1);
    assert_eq!(st.trunk_to_teams.bytes_out, 172 + 10);
}

#[test]
fn garbage_is_dropped_without_panic() {
    let now = crate::clock::now();
    let (mut s, _, _) = session(true, SessionTimers::default(), now);
    assert_eq!(
        relay(&mut s, Port::Teams, &[0x80, 0], TEAMS, now).0,
        Outcome::Drop(DropReason::TooShort)
    );
    // A STUN binding request starts with two zero bits.
    assert_eq!(
        relay(&mut s, Port::Teams, &[0u8; 20], TEAMS, now).0,
        Outcome::Drop(DropReason::NotRtp)
    );
    assert_eq!(
        relay(
            &mut s,
            Port::TrunkRtp,
            &[0x80, 0, 0, 1, 0, 0, 0, 0, 0],
            TRUNK,
            now
        )
        .0,
        Outcome::Drop(DropReason::TooShort)
    );
}
