//! Zero heap allocations per relayed packet in steady state: the per-packet
//! transform the worker runs ([`Session::handle_packet`]) and the whole relay on
//! real sockets, counted by a `GlobalAlloc` wrapper.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The only unsafe in the project: a GlobalAlloc must be an `unsafe impl`. It
// forwards to `System` unchanged and bumps counters.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use drawbridge::media::session::{Changes, Outcome, Port, Session, SessionTimers};
use drawbridge::media::srtp::{MAX_TRAILER, MasterKey, SrtpContext, SrtpProfile};
use drawbridge::media::{Direction, MediaConfig, MediaPlane, RECV_MAX, SessionUpdate};

struct Counting;

/// Allocations by threads that set `COUNT_THIS_THREAD`, or by any thread while
/// `COUNT_ALL` is on.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static COUNT_ALL: AtomicBool = AtomicBool::new(false);
thread_local! {
    static COUNT_THIS_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if COUNT_ALL.load(Relaxed) || COUNT_THIS_THREAD.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The tests count globally in turns.
static SERIAL: Mutex<()> = Mutex::new(());

const TEAMS: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 50000);
const TRUNK: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 60000);

fn key(byte: u8) -> MasterKey {
    MasterKey::new(
        SrtpProfile::AesCm128HmacSha1_80,
        &[byte; 16],
        &[byte; 14],
        None,
    )
    .unwrap()
}

fn rtp_into(buf: &mut [u8], seq: u16, ssrc: u32) -> usize {
    buf[..12].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[12..172].fill(0xd5);
    172
}

#[test]
fn per_packet_transform_allocates_nothing() {
    let _turn = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = drawbridge::clock::now();
    let mut session = Session::new(SessionTimers::default(), true, false);
    let changes = Changes {
        teams_remote: Some(TEAMS),
        trunk_remote: Some(TRUNK),
        teams_inbound: Some(SrtpContext::new(&key(1)).unwrap()),
        teams_outbound: Some(SrtpContext::new(&key(2)).unwrap()),
        ..Changes::default()
    };
    session.apply(changes, now).unwrap();
    let mut teams_peer = SrtpContext::new(&key(1)).unwrap();
    let mut buf = vec![0u8; RECV_MAX + MAX_TRAILER];

    let mut relay = |seq: u16, count: bool| {
        COUNT_THIS_THREAD.with(|c| c.set(count));
        // Teams -> trunk: SRTP in, RTP out.
        let len = rtp_into(&mut buf, seq, 0x1111);
        let len = teams_peer.protect_rtp(&mut buf, len).unwrap();
        let out = session.handle_packet(Port::Teams, &mut buf, len, TEAMS, now);
        assert!(matches!(
            out,
            Outcome::Forward {
                direction: Direction::TeamsToTrunk,
                len: 172,
                ..
            }
        ));
        // Trunk -> Teams: RTP in, SRTP out.
        let len = rtp_into(&mut buf, seq, 0x2222);
        let out = session.handle_packet(Port::TrunkRtp, &mut buf, len, TRUNK, now);
        assert!(matches!(
            out,
            Outcome::Forward {
                direction: Direction::TrunkToTeams,
                len: 182,
                ..
            }
        ));
        COUNT_THIS_THREAD.with(|c| c.set(false));
    };
    // Warm-up: the first packet of an SSRC may set up per-stream state.
    for seq in 0..10 {
        relay(seq, false);
    }
    let before = ALLOCATIONS.load(Relaxed);
    for seq in 10..10_010 {
        relay(seq, true);
    }
    assert_eq!(
        ALLOCATIONS.load(Relaxed) - before,
        0,
        "allocations over 20,000 relayed packets"
    );
}

#[test]
fn relay_workers_allocate_nothing_per_packet() {
    let _turn = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let cfg = MediaConfig {
        port_min: 21600,
        port_max: 21699,
        workers: 1,
        ..MediaConfig::default()
    };
    let (plane, _events) = MediaPlane::start(&cfg).unwrap();
    let alloc = plane.create_session(1, true).unwrap();
    let teams = UdpSocket::bind("127.0.0.1:0").unwrap();
    let trunk = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&teams, &trunk] {
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    }
    let update = SessionUpdate {
        teams_remote: Some(teams.local_addr().unwrap()),
        trunk_remote: Some(trunk.local_addr().unwrap()),
        teams_inbound_key: Some(key(1)),
        teams_outbound_key: Some(key(2)),
        ..SessionUpdate::default()
    };
    plane.update_session(1, update).unwrap();
    // Packets made up front so the measured window holds only the relay.
    let mut peer = SrtpContext::new(&key(1)).unwrap();
    let packets: Vec<Vec<u8>> = (0..2010u16)
        .map(|seq| {
            let mut b = vec![0u8; 172 + MAX_TRAILER];
            let len = rtp_into(&mut b, seq, 0x1111);
            let len = peer.protect_rtp(&mut b, len).unwrap();
            b.truncate(len);
            b
        })
        .collect();
    let mut plain = vec![0u8; 172];
    let mut rx = vec![0u8; 2048];

    let mut exchange = |i: usize| {
        teams.send_to(&packets[i], alloc.teams).unwrap();
        assert_eq!(trunk.recv(&mut rx).unwrap(), 172);
        rtp_into(&mut plain, i as u16, 0x2222);
        trunk.send_to(&plain, alloc.trunk).unwrap();
        assert_eq!(teams.recv(&mut rx).unwrap(), 182);
    };
    for i in 0..10 {
        exchange(i);
    }
    let before = ALLOCATIONS.load(Relaxed);
    COUNT_ALL.store(true, Relaxed);
    for i in 10..2010 {
        exchange(i);
    }
    COUNT_ALL.store(false, Relaxed);
    let during = ALLOCATIONS.load(Relaxed) - before;
    assert_eq!(
        during, 0,
        "allocations in the process over 4,000 relayed packets"
    );
    plane.shutdown();
}
