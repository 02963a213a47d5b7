//! Load tool: the media plane in-process on loopback, N concurrent sessions at
//! 50 packets/s each way (172-byte RTP, 182-byte SRTP), N raised step by step
//! until loss appears.
//!
//! ```text
//! cargo bench --bench relay_load                      # default ramp, ≤ ~60 s
//! cargo bench --bench relay_load -- --steps 1000,2000 --step-secs 10 --workers 1
//! ```
//!
//! Per step it reports relayed packets/s, loss, CPU per relayed packet of the
//! relay worker threads (from /proc/self/task/*/schedstat: user + kernel time,
//! so the kernel's UDP path is included), and the one-way latency the relay
//! adds: each packet carries its send time (100 ns units) in the RTP timestamp
//! field, which the relay passes unchanged, and the same traffic is also sent
//! peer to peer without the relay (the baseline). The generator is one thread;
//! on a 2-core machine it competes with the relay for CPU, so read the numbers
//! with the "generator CPU" column beside them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use clap::Parser;
use drawbridge::clock;
use drawbridge::media::srtp::{MAX_TRAILER, MasterKey, SrtpContext, SrtpProfile};
use drawbridge::media::{Direction, MediaConfig, MediaPlane, SessionUpdate};

#[derive(Parser, Debug)]
struct Args {
    /// Concurrent sessions per step, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "250,500,1000,1500,2000,2500,3000"
    )]
    steps: Vec<usize>,
    /// Seconds of traffic per step through the relay.
    #[arg(long, default_value_t = 3)]
    step_secs: u64,
    /// Seconds of the same traffic peer to peer (latency baseline).
    #[arg(long, default_value_t = 2)]
    baseline_secs: u64,
    /// Relay worker threads (0 = one per core).
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Stop the ramp when the loss ratio exceeds this.
    #[arg(long, default_value_t = 0.001)]
    max_loss: f64,
    /// Stop starting steps after this many seconds.
    #[arg(long, default_value_t = 60)]
    max_secs: u64,
    /// Skip authenticating the SRTP received on the Teams side (lighter generator).
    #[arg(long)]
    no_verify: bool,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const PACKET_INTERVAL: Duration = Duration::from_millis(20);
const RTP_LEN: usize = 172;
/// Peer sockets per side; sessions are spread over them.
const PEER_SOCKETS: usize = 8;
const TRUNK_SSRC_BIT: u32 = 0x8000_0000;

/// Latency histogram in 100 ns buckets up to 50 ms.
struct Histogram {
    buckets: Vec<u64>,
    count: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: vec![0; 500_001],
            count: 0,
        }
    }
    fn record(&mut self, units_100ns: u32) {
        let i = (units_100ns as usize).min(self.buckets.len() - 1);
        self.buckets[i] += 1;
        self.count += 1;
    }
    /// Quantile in microseconds.
    fn quantile_us(&self, q: f64) -> f64 {
        let target = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= target {
                return i as f64 / 10.0;
            }
        }
        f64::NAN
    }
}

/// The generator's view of one session.
struct Peer {
    sbc_teams: SocketAddr,
    sbc_trunk: SocketAddr,
    /// Protects what "Teams" sends (the SBC's inbound key).
    teams_tx: SrtpContext,
    /// Unprotects what the SBC sends to "Teams".
    teams_rx: SrtpContext,
    seq: u16,
}

struct Sockets {
    teams: Vec<UdpSocket>,
    trunk: Vec<UdpSocket>,
}

fn bind_peers() -> Sockets {
    let mk = || {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        // Large buffers so the generator's own receive queue is not what loses.
        let _ = s.set_recv_buffer_size(4 << 20);
        let _ = s.set_send_buffer_size(4 << 20);
        s.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        s.set_nonblocking(true).unwrap();
        UdpSocket::from(s)
    };
    Sockets {
        teams: (0..PEER_SOCKETS).map(|_| mk()).collect(),
        trunk: (0..PEER_SOCKETS).map(|_| mk()).collect(),
    }
}

fn key() -> MasterKey {
    MasterKey::generate(SrtpProfile::AesCm128HmacSha1_80).unwrap()
}

/// Resident set size in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 4096
}

/// CPU nanoseconds of this process's threads whose name starts with `prefix`.
fn thread_cpu_ns(prefix: &str) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end().starts_with(prefix) {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            total += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// CPU nanoseconds of the calling thread.
fn own_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    stat.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn rtp_into(buf: &mut [u8], seq: u16, ts: u32, ssrc: u32) -> usize {
    buf[0] = 0x80;
    buf[1] = 0;
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[4..8].copy_from_slice(&ts.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[12..RTP_LEN].fill(0xd5);
    RTP_LEN
}

#[derive(Default)]
struct Outcome {
    sent: u64,
    received: u64,
    auth_failed: u64,
    gen_cpu_ns: u64,
    elapsed: Duration,
}

/// Sends N sessions' traffic for `secs`, then drains. `relay` = through the
/// SBC (SRTP on the Teams side), else peer to peer in plain RTP.
fn run_traffic(
    peers: &mut [Peer],
    socks: &Sockets,
    relay: bool,
    secs: u64,
    verify: bool,
    hist: &mut Histogram,
) -> Outcome {
    let n = peers.len();
    let mut out = Outcome::default();
    let mut buf = vec![0u8; 2048 + MAX_TRAILER];
    let spacing = PACKET_INTERVAL / n as u32;
    let epoch = clock::now();
    let units = |now: Instant| (now.duration_since(epoch).as_nanos() / 100) as u32;
    let end = epoch + Duration::from_secs(secs);
    let cpu0 = own_cpu_ns();
    let mut due_index: u64 = 0;
    let mut drain_until: Option<Instant> = None;
    let mut poll = mio::Poll::new().unwrap();
    let mut events = mio::Events::with_capacity(64);
    let mut mio_socks: Vec<mio::net::UdpSocket> = socks
        .teams
        .iter()
        .chain(&socks.trunk)
        .map(|s| mio::net::UdpSocket::from_std(s.try_clone().unwrap()))
        .collect();
    for (i, s) in mio_socks.iter_mut().enumerate() {
        poll.registry()
            .register(s, mio::Token(i), mio::Interest::READABLE)
            .unwrap();
    }
    loop {
        let now = clock::now();
        if drain_until.is_none() && now >= end {
            drain_until = Some(now + Duration::from_millis(300));
        }
        if let Some(d) = drain_until {
            if now >= d {
                break;
            }
        } else {
            // Every session sends once per 20 ms each way, spread evenly.
            let target = (now.duration_since(epoch).as_nanos() / spacing.as_nanos().max(1)) as u64;
            let mut burst = 0;
            while due_index < target && burst < 64 {
                let i = (due_index % n as u64) as usize;
                let p = &mut peers[i];
                p.seq = p.seq.wrapping_add(1);
                let ts = units(clock::now());
                let (teams_sock, trunk_sock) = (
                    &socks.teams[i % PEER_SOCKETS],
                    &socks.trunk[i % PEER_SOCKETS],
                );
                let len = rtp_into(&mut buf, p.seq, ts, i as u32);
                if relay {
                    let len = p.teams_tx.protect_rtp(&mut buf, len).unwrap();
                    let _ = teams_sock.send_to(&buf[..len], p.sbc_teams);
                } else {
                    let _ = teams_sock.send_to(&buf[..len], trunk_sock.local_addr().unwrap());
                }
                let len = rtp_into(&mut buf, p.seq, ts, i as u32 | TRUNK_SSRC_BIT);
                let to = if relay {
                    p.sbc_trunk
                } else {
                    teams_sock.local_addr().unwrap()
                };
                let _ = trunk_sock.send_to(&buf[..len], to);
                out.sent += 2;
                due_index += 1;
                burst += 1;
            }
        }
        // Receive everything waiting.
        let mut got_any = true;
        while got_any {
            got_any = false;
            for (side, list) in [(0, &socks.teams), (1, &socks.trunk)] {
                for s in list {
                    loop {
                        let len = match s.recv(&mut buf) {
                            Ok(len) => len,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                            Err(_) => continue,
                        };
                        got_any = true;
                        let now = units(clock::now());
                        if len < 12 {
                            continue;
                        }
                        let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
                        if side == 0 && relay && verify {
                            let idx = (ssrc & !TRUNK_SSRC_BIT) as usize;
                            let Some(p) = peers.get_mut(idx) else {
                                continue;
                            };
                            if p.teams_rx.unprotect_rtp(&mut buf[..len]).is_err() {
                                out.auth_failed += 1;
                                continue;
                            }
                        }
                        out.received += 1;
                        hist.record(now.wrapping_sub(ts));
                    }
                }
            }
        }
        // Sleep until the next packet is due (or data arrives).
        // Packet `due_index` goes out once `now / spacing` exceeds it, i.e. at
        // (due_index + 1) * spacing: waiting for `due_index * spacing`, already past,
        // made the generator spin and take a core from the relay.
        let next_due = epoch + spacing * ((due_index + 1).min(u32::MAX as u64) as u32);
        let wait = if drain_until.is_some() {
            Duration::from_millis(5)
        } else {
            next_due.saturating_duration_since(clock::now())
        };
        if !wait.is_zero() {
            let _ = poll.poll(&mut events, Some(wait));
        }
    }
    out.gen_cpu_ns = own_cpu_ns() - cpu0;
    out.elapsed = clock::now().duration_since(epoch);
    out
}

fn main() {
    let args = Args::parse();
    let started = clock::now();
    let cfg = MediaConfig {
        port_min: 22000,
        port_max: 31999,
        teams_ip: "127.0.0.1".parse().unwrap(),
        trunk_ip: "127.0.0.2".parse().unwrap(),
        workers: args.workers,
        quarantine_s: 0,
        timeout_s: 0,
        ..MediaConfig::default()
    };
    let (plane, _events) = MediaPlane::start(&cfg).unwrap();
    let socks = bind_peers();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "relay_load: {cores} cores, {} relay worker(s), 1 generator thread, {PEER_SOCKETS} peer sockets per side, \
         172-byte RTP / 182-byte SRTP, 50 pps per direction per session",
        if args.workers == 0 {
            cores
        } else {
            args.workers
        }
    );
    println!(
        "{:>6} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "calls",
        "target/s",
        "sent/s",
        "relayed/s",
        "loss%",
        "cpu_us/p",
        "relay%",
        "gen%",
        "p50_us",
        "p99_us",
        "base_p50",
        "base_p99",
        "B/session"
    );
    let mut next_id = 1u64;
    let mut best_lossless = 0;
    for &n in &args.steps {
        if clock::now().duration_since(started)
            + Duration::from_secs(args.step_secs + args.baseline_secs + 2)
            > Duration::from_secs(args.max_secs)
        {
            println!(
                "(time budget of {} s reached; --max-secs to extend)",
                args.max_secs
            );
            break;
        }
        let row = run_step(&plane, &socks, n, &mut next_id, &args);
        if row.loss > args.max_loss || row.auth_failed > 0 {
            println!(
                "loss above {:.2}% at {n} calls: ramp stops",
                args.max_loss * 100.0
            );
            break;
        }
        best_lossless = n;
        if row.behind {
            println!(
                "generator below 95% of the target rate at {n} calls: ramp stops (CPU-bound box)"
            );
            break;
        }
    }
    if best_lossless > 0
        && clock::now().duration_since(started) < Duration::from_secs(args.max_secs)
    {
        let half = best_lossless / 2;
        println!("half of the highest loss-free step ({best_lossless} calls):");
        run_step(&plane, &socks, half.max(1), &mut next_id, &args);
    }
    println!(
        "session struct: {} bytes",
        size_of::<drawbridge::media::session::Session>()
    );
    plane.shutdown();
}

struct Row {
    loss: f64,
    auth_failed: u64,
    /// The generator sent less than 95 % of the target rate.
    behind: bool,
}

fn run_step(plane: &MediaPlane, socks: &Sockets, n: usize, next_id: &mut u64, args: &Args) -> Row {
    // Generator state first, so the RSS delta below is the plane's alone.
    let keys: Vec<(MasterKey, MasterKey)> = (0..n).map(|_| (key(), key())).collect();
    let mut peers: Vec<Peer> = keys
        .iter()
        .map(|(inb, outb)| Peer {
            sbc_teams: "127.0.0.1:9".parse().unwrap(),
            sbc_trunk: "127.0.0.1:9".parse().unwrap(),
            teams_tx: SrtpContext::new(inb).unwrap(),
            teams_rx: SrtpContext::new(outb).unwrap(),
            seq: 0,
        })
        .collect();
    let rss0 = rss();
    let first_id = *next_id;
    for (i, (inb, outb)) in keys.into_iter().enumerate() {
        let id = *next_id;
        *next_id += 1;
        let alloc = plane.create_session(id, true).unwrap();
        let update = SessionUpdate {
            teams_remote: Some(socks.teams[i % PEER_SOCKETS].local_addr().unwrap()),
            trunk_remote: Some(socks.trunk[i % PEER_SOCKETS].local_addr().unwrap()),
            teams_inbound_key: Some(inb),
            teams_outbound_key: Some(outb),
            ..SessionUpdate::default()
        };
        plane.update_session(id, update).unwrap();
        peers[i].sbc_teams = alloc.teams;
        peers[i].sbc_trunk = alloc.trunk;
    }
    // Wait until the workers own them all.
    while plane.counters().sessions_active < n as u64 {
        std::thread::yield_now();
    }
    let per_session = rss().saturating_sub(rss0) / n as u64;

    let c0 = plane.counters();
    let cpu0 = thread_cpu_ns("media-");
    let mut hist = Histogram::new();
    let o = run_traffic(
        &mut peers,
        socks,
        true,
        args.step_secs,
        !args.no_verify,
        &mut hist,
    );
    let relay_cpu = thread_cpu_ns("media-") - cpu0;
    let c1 = plane.counters();
    let relayed = Direction::ALL
        .iter()
        .map(|&d| c1.relayed_packets(d) - c0.relayed_packets(d))
        .sum::<u64>();
    let mut base = Histogram::new();
    let b = run_traffic(
        &mut peers,
        socks,
        false,
        args.baseline_secs,
        false,
        &mut base,
    );
    let loss = 1.0 - o.received as f64 / o.sent.max(1) as f64;
    let secs = o.elapsed.as_secs_f64();
    println!(
        "{:>6} {:>9.0} {:>9.0} {:>9.0} {:>8.3} {:>8.2} {:>7.1} {:>7.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>9}{}",
        n,
        n as f64 * 100.0,
        o.sent as f64 / (secs - 0.3),
        relayed as f64 / (secs - 0.3),
        loss * 100.0,
        relay_cpu as f64 / 1000.0 / relayed.max(1) as f64,
        relay_cpu as f64 / 1e9 / secs * 100.0,
        o.gen_cpu_ns as f64 / 1e9 / secs * 100.0,
        hist.quantile_us(0.5),
        hist.quantile_us(0.99),
        base.quantile_us(0.5),
        base.quantile_us(0.99),
        per_session,
        if o.auth_failed > 0 {
            format!("  AUTH FAILED {}", o.auth_failed)
        } else {
            String::new()
        },
    );
    let _ = b;
    let behind = (o.sent as f64 / (secs - 0.3)) < 0.95 * n as f64 * 100.0;
    for id in first_id..*next_id {
        let _ = plane.destroy_session(id);
    }
    while plane.counters().sessions_active > 0 {
        std::thread::yield_now();
    }
    Row {
        loss,
        auth_failed: o.auth_failed,
        behind,
    }
}
