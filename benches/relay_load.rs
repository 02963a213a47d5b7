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
//!
//! `--floor` relays with a bare forwarder instead of the media plane (same
//! sockets, polling and system calls, no SRTP and no session logic): what the
//! kernel's path costs by itself under the same load; `--floor-uring` the
//! same forwarding on io_uring (tokio-uring). `--pin` pins the relay workers
//! and the generator to separate cores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use drawbridge::clock;
use drawbridge::media::srtp::{MasterKey, SrtpContext, SrtpProfile};
use drawbridge::media::{Direction, MediaConfig, MediaPlane, SessionUpdate};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};
use nix::unistd::Pid;
use rustix::buffer::spare_capacity;
use rustix::event::{Timespec, epoll};

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
    /// Pin the relay workers to the first cores and the generator to the last.
    /// Off by default, as the daemon does not pin: on the 2-core VM pinning
    /// raised the relay's p99 latency (542–702 µs against 199 µs at 500 calls),
    /// as a woken thread could no longer take whichever core was idle.
    #[arg(long)]
    pin: bool,
    /// Relay with a bare forwarder in place of the media plane: the same
    /// sockets, epoll and recvmmsg, no SRTP and no session logic. Its CPU per
    /// packet is the floor that the kernel and the polling leave.
    #[arg(long)]
    floor: bool,
    /// The bare forwarder on io_uring (tokio-uring: one recv_from/send_to
    /// loop per socket, submitted and reaped in batches) instead of epoll and
    /// system calls per packet.
    #[arg(long)]
    floor_uring: bool,
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

/// Pins thread `tid` (0: the calling thread) to core `cpu`.
fn pin(tid: i32, cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu).unwrap();
    sched_setaffinity(Pid::from_raw(tid), &set).unwrap();
}

/// Pins the relay workers to the first cores and the generator (the calling
/// thread) to the last one, so the two never share a core or migrate.
fn pin_threads(cores: usize) {
    for (k, task) in threads_named("media-").iter().enumerate() {
        let tid = task.file_name().unwrap().to_string_lossy().parse().unwrap();
        pin(tid, k % (cores - 1));
    }
    pin(0, cores - 1);
}

/// The bare forwarder of `--floor`: one thread, N socket pairs, each datagram
/// sent on unchanged from the pair's other socket to a fixed peer.
struct Floor {
    addrs: Vec<(SocketAddr, SocketAddr)>,
    relayed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// One pair per session: the "Teams" socket, the "trunk" socket.
type Pairs = Vec<[UdpSocket; 2]>;

impl Floor {
    /// Pair i forwards what reaches its first socket to `peers[i].1` and what
    /// reaches its second to `peers[i].0`: on epoll, as the relay workers do.
    fn start(peers: Vec<(SocketAddr, SocketAddr)>, cpu: Option<usize>) -> Floor {
        Floor::spawn("media-floor", peers, cpu, |pairs, peers, relayed, stop| {
            let mut pairs: Vec<[mio::net::UdpSocket; 2]> = pairs
                .into_iter()
                .map(|pair| {
                    pair.map(|s| {
                        s.set_nonblocking(true).unwrap();
                        mio::net::UdpSocket::from_std(s)
                    })
                })
                .collect();
            let mut poll = mio::Poll::new().unwrap();
            for (i, pair) in pairs.iter_mut().enumerate() {
                for (side, sock) in pair.iter_mut().enumerate() {
                    poll.registry()
                        .register(sock, mio::Token(i * 2 + side), mio::Interest::READABLE)
                        .unwrap();
                }
            }
            let mut events = mio::Events::with_capacity(1024);
            let mut bufs = [[0u8; 2048]; 4];
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(4, None);
            let mut ready = std::collections::VecDeque::new();
            while !stop.load(Ordering::Relaxed) {
                let timeout = if ready.is_empty() { 50 } else { 0 };
                let _ = poll.poll(&mut events, Some(Duration::from_millis(timeout)));
                ready.extend(events.iter().map(|e| e.token().0));
                for _ in 0..ready.len() {
                    let Some(t) = ready.pop_front() else { break };
                    let (i, side) = (t / 2, t % 2);
                    let mut lens = [0usize; 4];
                    let n = match recv_batch(&pairs[i][side], &mut bufs, &mut headers, &mut lens) {
                        Ok(n) => n,
                        Err(nix::errno::Errno::EAGAIN) => 0,
                        // An ICMP error, reported once: read on at the next turn.
                        Err(_) => {
                            ready.push_back(t);
                            0
                        }
                    };
                    let to = if side == 0 { peers[i].1 } else { peers[i].0 };
                    for (b, &l) in bufs.iter().zip(&lens[..n]) {
                        if pairs[i][1 - side].send_to(&b[..l], to).is_ok() {
                            relayed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if n == 4 {
                        ready.push_back(t);
                    }
                }
            }
        })
    }

    /// The same forwarding on io_uring: per socket a task that waits for a
    /// datagram and sends it on from the pair's other socket.
    fn start_uring(peers: Vec<(SocketAddr, SocketAddr)>, cpu: Option<usize>) -> Floor {
        use std::rc::Rc;
        Floor::spawn(
            "media-floor-uring",
            peers,
            cpu,
            |pairs, peers, relayed, stop| {
                tokio_uring::start(async move {
                    for ([a, b], (to_a, to_b)) in pairs.into_iter().zip(peers) {
                        let a = Rc::new(tokio_uring::net::UdpSocket::from_std(a));
                        let b = Rc::new(tokio_uring::net::UdpSocket::from_std(b));
                        for (from, via, to) in [(a.clone(), b.clone(), to_b), (b, a, to_a)] {
                            let relayed = relayed.clone();
                            tokio_uring::spawn(async move {
                                let mut buf = Vec::with_capacity(2048);
                                loop {
                                    buf.clear();
                                    let (got, b) = from.recv_from(buf).await;
                                    buf = b;
                                    if got.is_err() {
                                        continue;
                                    }
                                    let (sent, b) = via.send_to(buf, to).await;
                                    buf = b;
                                    if sent.is_ok() {
                                        relayed.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            });
                        }
                    }
                    while !stop.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                });
            },
        )
    }

    /// Binds a socket pair per peer pair and runs `forward` on a thread named
    /// `name` (pinned to `cpu` if given) until the floor is dropped.
    fn spawn(
        name: &str,
        peers: Vec<(SocketAddr, SocketAddr)>,
        cpu: Option<usize>,
        forward: impl FnOnce(Pairs, Vec<(SocketAddr, SocketAddr)>, Arc<AtomicU64>, Arc<AtomicBool>)
        + Send
        + 'static,
    ) -> Floor {
        let pairs: Pairs = peers
            .iter()
            .map(|_| {
                [
                    UdpSocket::bind("127.0.0.1:0").unwrap(),
                    UdpSocket::bind("127.0.0.2:0").unwrap(),
                ]
            })
            .collect();
        let addrs = pairs
            .iter()
            .map(|[a, b]| (a.local_addr().unwrap(), b.local_addr().unwrap()))
            .collect();
        let relayed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, st) = (relayed.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                if let Some(cpu) = cpu {
                    pin(0, cpu);
                }
                forward(pairs, peers, r, st);
            })
            .unwrap();
        Floor {
            addrs,
            relayed,
            stop,
            thread: Some(thread),
        }
    }

    fn relayed(&self) -> u64 {
        self.relayed.load(Ordering::Relaxed)
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// This process's threads whose name starts with `prefix` (their
/// `/proc/self/task` entries).
fn threads_named(prefix: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .map(|task| task.path())
        .filter(|path| {
            std::fs::read_to_string(path.join("comm"))
                .unwrap_or_default()
                .starts_with(prefix)
        })
        .collect()
}

/// CPU nanoseconds of this process's threads whose name starts with `prefix`.
fn thread_cpu_ns(prefix: &str) -> u64 {
    threads_named(prefix).iter().map(|t| cpu_ns(t)).sum()
}

/// CPU nanoseconds of the calling thread.
fn own_cpu_ns() -> u64 {
    cpu_ns(std::path::Path::new("/proc/thread-self"))
}

/// User + kernel time of the thread at `task` (a /proc task directory): the first field
/// of its `schedstat`.
fn cpu_ns(task: &std::path::Path) -> u64 {
    std::fs::read_to_string(task.join("schedstat"))
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Sessions are spread over the peer sockets in blocks, so a burst of
/// consecutive sessions leaves from one socket in one `sendmmsg`.
fn peer_socket(i: usize, n: usize) -> usize {
    i * PEER_SOCKETS / n.max(1)
}

/// Up to `GEN_BATCH` datagrams from one socket, sent with one `sendmmsg`.
struct SendBatch {
    bufs: Vec<[u8; 256]>,
    lens: Vec<usize>,
    addrs: Vec<Option<SockaddrStorage>>,
    headers: MultiHeaders<SockaddrStorage>,
    sock: Option<usize>,
}

/// Datagrams per `sendmmsg`/`recvmmsg`. Small for sending: a packet's send
/// time is taken when it is built, so the ones behind it in one call carry
/// that call's duration as latency.
const GEN_BATCH: usize = 8;

impl SendBatch {
    fn new() -> Self {
        SendBatch {
            bufs: vec![[0u8; 256]; GEN_BATCH],
            lens: Vec::with_capacity(GEN_BATCH),
            addrs: Vec::with_capacity(GEN_BATCH),
            headers: MultiHeaders::preallocate(GEN_BATCH, None),
            sock: None,
        }
    }

    /// The buffer for the next datagram from `sock`; sends what is queued
    /// first when it is for another socket or the batch is full.
    fn next(&mut self, socks: &[UdpSocket], sock: usize) -> &mut [u8; 256] {
        if self.sock != Some(sock) || self.lens.len() == GEN_BATCH {
            self.flush(socks);
            self.sock = Some(sock);
        }
        &mut self.bufs[self.lens.len()]
    }

    fn push(&mut self, len: usize, to: SocketAddr) {
        self.lens.push(len);
        self.addrs.push(Some(SockaddrStorage::from(to)));
    }

    fn flush(&mut self, socks: &[UdpSocket]) {
        if let Some(sock) = self.sock
            && !self.lens.is_empty()
        {
            let slices: Vec<[IoSlice; 1]> = self
                .bufs
                .iter()
                .zip(&self.lens)
                .map(|(b, &l)| [IoSlice::new(&b[..l])])
                .collect();
            // A full send buffer loses the rest of the batch, which shows as loss.
            let _ = sendmmsg(
                socks[sock].as_raw_fd(),
                &mut self.headers,
                &slices,
                &self.addrs,
                [] as [ControlMessage; 0],
                MsgFlags::MSG_DONTWAIT,
            );
        }
        self.lens.clear();
        self.addrs.clear();
    }
}

/// One `recvmmsg` into `bufs` without waiting: how many datagrams came, their
/// lengths in `lens`.
fn recv_batch(
    sock: &impl AsRawFd,
    bufs: &mut [[u8; 2048]],
    headers: &mut MultiHeaders<SockaddrStorage>,
    lens: &mut [usize],
) -> nix::Result<usize> {
    let mut slices: Vec<[IoSliceMut; 1]> = bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
    let msgs = recvmmsg(
        sock.as_raw_fd(),
        headers,
        slices.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    )?;
    let mut n = 0;
    for (l, m) in lens.iter_mut().zip(msgs) {
        *l = m.bytes;
        n += 1;
    }
    Ok(n)
}

/// Everything queued on `sock` (edge-triggered polling needs it emptied),
/// `GEN_BATCH` datagrams per `recvmmsg`; `each` gets every datagram.
fn recv_all(
    sock: &UdpSocket,
    bufs: &mut [[u8; 2048]],
    headers: &mut MultiHeaders<SockaddrStorage>,
    mut each: impl FnMut(&mut [u8]),
) {
    // An ICMP error queued on the socket comes back once, by itself.
    let mut errors = 0;
    while errors < 16 {
        let mut lens = [0usize; GEN_BATCH];
        let n = match recv_batch(sock, bufs, headers, &mut lens) {
            Ok(n) => n,
            Err(nix::errno::Errno::EAGAIN) => return,
            Err(_) => {
                errors += 1;
                continue;
            }
        };
        for (b, &l) in bufs.iter_mut().zip(&lens[..n]) {
            each(&mut b[..l]);
        }
        if n < GEN_BATCH {
            return;
        }
    }
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
    let mut teams_out = SendBatch::new();
    let mut trunk_out = SendBatch::new();
    let mut rbufs = vec![[0u8; 2048]; GEN_BATCH];
    let mut rheaders = MultiHeaders::<SockaddrStorage>::preallocate(GEN_BATCH, None);
    let teams_addrs: Vec<SocketAddr> = socks
        .teams
        .iter()
        .map(|s| s.local_addr().unwrap())
        .collect();
    let trunk_addrs: Vec<SocketAddr> = socks
        .trunk
        .iter()
        .map(|s| s.local_addr().unwrap())
        .collect();
    let spacing = PACKET_INTERVAL / n as u32;
    let epoch = clock::now();
    let units = |now: Instant| (now.duration_since(epoch).as_nanos() / 100) as u32;
    let end = epoch + Duration::from_secs(secs);
    let cpu0 = own_cpu_ns();
    let mut due_index: u64 = 0;
    let mut drain_until: Option<Instant> = None;
    // rustix's epoll (epoll_pwait2) rather than mio's: mio rounds a timeout up to a
    // millisecond, and the sends then left in bursts of a millisecond's worth,
    // which queue in the relay and show as its latency.
    let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    for (i, s) in socks.teams.iter().chain(&socks.trunk).enumerate() {
        epoll::add(
            &epoll,
            s,
            epoll::EventData::new_u64(i as u64),
            epoll::EventFlags::IN | epoll::EventFlags::ET,
        )
        .unwrap();
    }
    let mut events: Vec<epoll::Event> = Vec::with_capacity(2 * PEER_SOCKETS);
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
                let s = peer_socket(i, n);
                let buf = teams_out.next(&socks.teams, s);
                let len = rtp_into(buf, p.seq, ts, i as u32);
                if relay {
                    let len = p.teams_tx.protect_rtp(buf, len).unwrap();
                    teams_out.push(len, p.sbc_teams);
                } else {
                    teams_out.push(len, trunk_addrs[s]);
                }
                let buf = trunk_out.next(&socks.trunk, s);
                let len = rtp_into(buf, p.seq, ts, i as u32 | TRUNK_SSRC_BIT);
                trunk_out.push(len, if relay { p.sbc_trunk } else { teams_addrs[s] });
                out.sent += 2;
                due_index += 1;
                burst += 1;
            }
            teams_out.flush(&socks.teams);
            trunk_out.flush(&socks.trunk);
        }
        // Sleep until the next packet is due or data arrives. Packet
        // `due_index` goes out once `now / spacing` exceeds it, i.e. at
        // (due_index + 1) * spacing.
        let next_due = epoch + spacing * ((due_index + 1).min(u32::MAX as u64) as u32);
        let wait = if drain_until.is_some() {
            Duration::from_millis(5)
        } else {
            next_due.saturating_duration_since(clock::now())
        };
        events.clear();
        let timeout = Timespec {
            tv_sec: wait.as_secs() as _,
            tv_nsec: wait.subsec_nanos() as _,
        };
        let _ = epoll::wait(&epoll, spare_capacity(&mut events), Some(&timeout));
        // Edge-triggered: each ready socket is read until empty.
        for ev in &events {
            let i = ev.data.u64() as usize;
            let (side, s) = if i < PEER_SOCKETS {
                (0, &socks.teams[i])
            } else {
                (1, &socks.trunk[i - PEER_SOCKETS])
            };
            recv_all(s, &mut rbufs, &mut rheaders, |pkt| {
                let now = units(clock::now());
                if pkt.len() < 12 {
                    return;
                }
                let ts = u32::from_be_bytes([pkt[4], pkt[5], pkt[6], pkt[7]]);
                let ssrc = u32::from_be_bytes([pkt[8], pkt[9], pkt[10], pkt[11]]);
                if side == 0 && relay && verify {
                    let idx = (ssrc & !TRUNK_SSRC_BIT) as usize;
                    let Some(p) = peers.get_mut(idx) else {
                        return;
                    };
                    if p.teams_rx.unprotect_rtp(pkt).is_err() {
                        out.auth_failed += 1;
                        return;
                    }
                }
                out.received += 1;
                hist.record(now.wrapping_sub(ts));
            });
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
    let pinned = args.pin && cores >= 2;
    if pinned {
        pin_threads(cores);
    }
    println!(
        "relay_load: {cores} cores, {} relay worker(s){}, 1 generator thread{}, {PEER_SOCKETS} peer sockets per side, \
         172-byte RTP / 182-byte SRTP, 50 pps per direction per session",
        if args.workers == 0 {
            cores
        } else {
            args.workers
        },
        if args.floor_uring {
            " (bare forwarder on io_uring: --floor-uring)"
        } else if args.floor {
            " (bare forwarder: --floor)"
        } else {
            ""
        },
        if pinned {
            " (pinned: workers on the first cores, generator on the last)"
        } else {
            ""
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
    let floor = (args.floor || args.floor_uring).then(|| {
        let to: Vec<(SocketAddr, SocketAddr)> = (0..n)
            .map(|i| {
                let s = peer_socket(i, n);
                (
                    socks.teams[s].local_addr().unwrap(),
                    socks.trunk[s].local_addr().unwrap(),
                )
            })
            .collect();
        let f = if args.floor_uring {
            Floor::start_uring(to, args.pin.then_some(0))
        } else {
            Floor::start(to, args.pin.then_some(0))
        };
        for (p, &(teams, trunk)) in peers.iter_mut().zip(&f.addrs) {
            p.sbc_teams = teams;
            p.sbc_trunk = trunk;
        }
        f
    });
    for (i, (inb, outb)) in keys.into_iter().enumerate() {
        if floor.is_some() {
            break;
        }
        let id = *next_id;
        *next_id += 1;
        let alloc = plane.create_session(id, true).unwrap();
        let update = SessionUpdate {
            teams_remote: Some(socks.teams[peer_socket(i, n)].local_addr().unwrap()),
            trunk_remote: Some(socks.trunk[peer_socket(i, n)].local_addr().unwrap()),
            teams_inbound_key: Some(inb),
            teams_outbound_key: Some(outb),
            ..SessionUpdate::default()
        };
        plane.update_session(id, update).unwrap();
        peers[i].sbc_teams = alloc.teams;
        peers[i].sbc_trunk = alloc.trunk;
    }
    // Wait until the workers own them all.
    while floor.is_none() && plane.counters().sessions_active < n as u64 {
        std::thread::yield_now();
    }
    let per_session = rss().saturating_sub(rss0) / n as u64;

    let c0 = plane.counters();
    let floor0 = floor.as_ref().map_or(0, Floor::relayed);
    // io_uring's kernel workers (iou-wrk-*) are threads of this process; any
    // work punted to them is the relay's too.
    let relay_threads_cpu = || thread_cpu_ns("media-") + thread_cpu_ns("iou-");
    let cpu0 = relay_threads_cpu();
    let mut hist = Histogram::new();
    let o = run_traffic(
        &mut peers,
        socks,
        true,
        args.step_secs,
        // The floor forwards the trunk's plain RTP to "Teams".
        !args.no_verify && floor.is_none(),
        &mut hist,
    );
    let relay_cpu = relay_threads_cpu() - cpu0;
    let c1 = plane.counters();
    let relayed = match &floor {
        Some(f) => f.relayed() - floor0,
        None => Direction::ALL
            .iter()
            .map(|&d| c1.relayed_packets(d) - c0.relayed_packets(d))
            .sum::<u64>(),
    };
    drop(floor);
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
