//! Port pairs per media address, with quarantine before reuse.
//!
//! A pair is an even RTP port and the odd port above it (RFC 3550 §11). The odd
//! port is reserved even when RTCP is multiplexed (RFC 5761), so a later
//! re-INVITE that drops rtcp-mux still finds RTP port + 1 free, and a port is
//! never half of two calls.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Attempts per allocation before giving up on ports some other process holds.
const BIND_ATTEMPTS: usize = 32;

/// Free and quarantined port pairs of one local address. Pure bookkeeping: the
/// time comes in as an argument.
#[derive(Debug)]
pub(crate) struct PortPool {
    first_rtp_port: u32,
    pair_count: u32,
    /// FIFO: the pair released longest ago goes out first, which spreads reuse
    /// over the whole range on top of the quarantine.
    free: VecDeque<u16>,
    /// Released pairs with the instant they become free again, oldest first
    /// (the quarantine is one constant, so push order is expiry order).
    quarantined: VecDeque<(Instant, u16)>,
    quarantine: Duration,
}

/// One reserved pair, identified by its index in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PairIndex(u16);

impl PortPool {
    pub(crate) fn new(first_rtp_port: u32, pair_count: u32, quarantine: Duration) -> Self {
        let pair_count = pair_count.min(u32::from(u16::MAX) / 2);
        PortPool {
            first_rtp_port,
            pair_count,
            free: (0..pair_count)
                .filter_map(|i| u16::try_from(i).ok())
                .collect(),
            quarantined: VecDeque::new(),
            quarantine,
        }
    }

    /// Takes the next free pair, moving expired quarantine entries back first.
    pub(crate) fn take(&mut self, now: Instant) -> Option<PairIndex> {
        self.reap(now);
        self.free.pop_front().map(PairIndex)
    }

    /// Puts a pair into quarantine until `now + quarantine`.
    pub(crate) fn release(&mut self, pair: PairIndex, now: Instant) {
        self.quarantined.push_back((now + self.quarantine, pair.0));
    }

    /// RTP port of a pair; RTCP is this + 1.
    pub(crate) fn rtp_port(&self, pair: PairIndex) -> u16 {
        u16::try_from(self.first_rtp_port + 2 * u32::from(pair.0)).unwrap_or(0)
    }

    /// Ports reserved (allocated or quarantined) at `now`: two per pair.
    pub(crate) fn ports_in_use(&mut self, now: Instant) -> usize {
        self.reap(now);
        2 * (self.pair_count as usize - self.free.len())
    }

    fn reap(&mut self, now: Instant) {
        while let Some(&(until, pair)) = self.quarantined.front() {
            if until > now {
                break;
            }
            self.quarantined.pop_front();
            self.free.push_back(pair);
        }
    }
}

/// Sockets bound on one reserved pair.
#[derive(Debug)]
pub(crate) struct BoundPair {
    pub(crate) pair: PairIndex,
    /// The RTP port (RTCP, when bound, is the next one); known without asking the socket.
    pub(crate) port: u16,
    pub(crate) rtp: UdpSocket,
    pub(crate) rtcp: Option<UdpSocket>,
}

/// Why no pair could be bound.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Every pair is allocated or in quarantine.
    #[error("no free media port pair on {ip}")]
    Exhausted { ip: IpAddr },
    /// Binding failed for a reason other than the port being taken elsewhere.
    #[error("binding media port {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    /// Too many pairs in a row were held by another process.
    #[error("{attempts} media port pairs on {ip} in a row were in use by another process")]
    TakenElsewhere { ip: IpAddr, attempts: usize },
}

/// Reserves a pair and binds its RTP socket (and the RTCP one when asked),
/// nonblocking. A pair some other process holds goes to quarantine and the next
/// one is tried.
pub(crate) fn bind_pair(
    pool: &mut PortPool,
    ip: IpAddr,
    with_rtcp: bool,
    now: Instant,
) -> Result<BoundPair, PortError> {
    for _ in 0..BIND_ATTEMPTS {
        let pair = pool.take(now).ok_or(PortError::Exhausted { ip })?;
        let port = pool.rtp_port(pair);
        match bind_sockets(ip, port, with_rtcp) {
            Ok((rtp, rtcp)) => {
                return Ok(BoundPair {
                    pair,
                    port,
                    rtp,
                    rtcp,
                });
            }
            Err((_, e)) if e.kind() == io::ErrorKind::AddrInUse => pool.release(pair, now),
            Err((addr, source)) => {
                pool.release(pair, now);
                return Err(PortError::Bind { addr, source });
            }
        }
    }
    Err(PortError::TakenElsewhere {
        ip,
        attempts: BIND_ATTEMPTS,
    })
}

/// One pool per distinct media address: when `teams_ip` and `trunk_ip` are the
/// same, both legs share one range.
#[derive(Debug)]
pub(crate) struct PortPools {
    pools: Vec<(IpAddr, PortPool)>,
}

impl PortPools {
    pub(crate) fn new(
        ips: &[IpAddr],
        first_rtp_port: u32,
        pair_count: u32,
        quarantine: Duration,
    ) -> Self {
        let mut pools: Vec<(IpAddr, PortPool)> = Vec::with_capacity(ips.len());
        for &ip in ips {
            if !pools.iter().any(|(have, _)| *have == ip) {
                pools.push((ip, PortPool::new(first_rtp_port, pair_count, quarantine)));
            }
        }
        PortPools { pools }
    }

    pub(crate) fn bind(
        &mut self,
        ip: IpAddr,
        with_rtcp: bool,
        now: Instant,
    ) -> Result<BoundPair, PortError> {
        match self.pools.iter_mut().find(|(have, _)| *have == ip) {
            Some((_, pool)) => bind_pair(pool, ip, with_rtcp, now),
            None => Err(PortError::Exhausted { ip }),
        }
    }

    pub(crate) fn release(&mut self, ip: IpAddr, pair: PairIndex, now: Instant) {
        if let Some((_, pool)) = self.pools.iter_mut().find(|(have, _)| *have == ip) {
            pool.release(pair, now);
        }
    }

    pub(crate) fn ports_in_use(&mut self, now: Instant) -> usize {
        self.pools
            .iter_mut()
            .map(|(_, p)| p.ports_in_use(now))
            .sum()
    }
}

type BindResult = Result<(UdpSocket, Option<UdpSocket>), (SocketAddr, io::Error)>;

fn bind_sockets(ip: IpAddr, port: u16, with_rtcp: bool) -> BindResult {
    let rtp = bind_one(SocketAddr::new(ip, port))?;
    let rtcp = if with_rtcp {
        Some(bind_one(SocketAddr::new(ip, port.wrapping_add(1)))?)
    } else {
        None
    };
    Ok((rtp, rtcp))
}

/// A non-blocking socket bound to `addr`: mio opens it with `SOCK_NONBLOCK`, two system
/// calls where `std` plus `set_nonblocking` takes three (a call binds up to three sockets).
fn bind_one(addr: SocketAddr) -> Result<UdpSocket, (SocketAddr, io::Error)> {
    mio::net::UdpSocket::bind(addr)
        .map(UdpSocket::from)
        .map_err(|e| (addr, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(pairs: u32, quarantine_ms: u64) -> PortPool {
        PortPool::new(40000, pairs, Duration::from_millis(quarantine_ms))
    }

    #[test]
    fn pairs_are_even_rtp_ports_inside_the_range() {
        let now = crate::clock::now();
        let mut p = pool(3, 0);
        let pairs: Vec<PairIndex> = std::iter::from_fn(|| p.take(now)).collect();
        let ports: Vec<u16> = pairs.into_iter().map(|pair| p.rtp_port(pair)).collect();
        assert_eq!(ports, [40000, 40002, 40004]);
        assert_eq!(p.ports_in_use(now), 6);
    }

    #[test]
    fn released_pair_stays_out_until_quarantine_ends() {
        let t0 = crate::clock::now();
        let mut p = pool(1, 5000);
        let pair = p.take(t0).unwrap();
        p.release(pair, t0);
        assert_eq!(p.take(t0 + Duration::from_millis(4999)), None);
        assert_eq!(p.ports_in_use(t0 + Duration::from_millis(4999)), 2);
        assert_eq!(p.ports_in_use(t0 + Duration::from_millis(5000)), 0);
        assert_eq!(p.take(t0 + Duration::from_millis(5000)), Some(pair));
    }

    #[test]
    fn reuse_goes_round_the_range_first() {
        let now = crate::clock::now();
        let mut p = pool(3, 0);
        let a = p.take(now).unwrap();
        p.release(a, now);
        // The two never-used pairs come before the one just released.
        assert_ne!(p.take(now), Some(a));
        assert_ne!(p.take(now), Some(a));
        assert_eq!(p.take(now), Some(a));
    }

    #[test]
    fn bind_skips_a_port_held_by_another_socket() {
        let now = crate::clock::now();
        let ip = IpAddr::from([127, 0, 0, 1]);
        // Find a free even port by asking the kernel, then occupy its RTCP twin.
        let probe = UdpSocket::bind((ip, 0)).unwrap();
        let base = u32::from(probe.local_addr().unwrap().port() & !1);
        drop(probe);
        let Ok(blocker) = UdpSocket::bind((ip, u16::try_from(base + 1).unwrap())) else {
            return; // raced with another process; nothing to prove this time
        };
        let mut p = PortPool::new(base, 4, Duration::from_secs(60));
        let bound = bind_pair(&mut p, ip, true, now).unwrap();
        let port = u32::from(bound.rtp.local_addr().unwrap().port());
        assert!(port > base, "pair with a taken RTCP port must be skipped");
        assert_eq!(port % 2, 0);
        assert_eq!(
            u32::from(bound.rtcp.unwrap().local_addr().unwrap().port()),
            port + 1
        );
        drop(blocker);
    }

    #[test]
    fn exhausted_pool_is_an_error() {
        let now = crate::clock::now();
        let mut p = pool(0, 0);
        assert!(matches!(
            bind_pair(&mut p, IpAddr::from([127, 0, 0, 1]), false, now),
            Err(PortError::Exhausted { .. })
        ));
    }
}
