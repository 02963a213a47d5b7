//! Per-worker counters, summed on scrape.
//!
//! Each worker is the only writer of its `WorkerCounters`, so a bump is a
//! relaxed load and store (plain `mov`/`add`/`mov` on x86 and ARM), not a
//! locked read-modify-write; readers on other threads see a value at most one
//! bump old. Padding keeps two workers' counters off one cache line.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::media::session::{Direction, DropReason};

const DIRECTIONS: usize = Direction::ALL.len();
const REASONS: usize = DropReason::ALL.len();

/// Counters of one worker thread.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct WorkerCounters {
    received_packets: [AtomicU64; DIRECTIONS],
    received_bytes: [AtomicU64; DIRECTIONS],
    sent_packets: [AtomicU64; DIRECTIONS],
    sent_bytes: [AtomicU64; DIRECTIONS],
    drops: [AtomicU64; REASONS],
    sessions: AtomicU64,
    events_dropped: AtomicU64,
    ringback_packets: AtomicU64,
}

/// Adds `n` to a counter this thread alone writes.
#[inline]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

impl WorkerCounters {
    #[inline]
    pub(crate) fn received(&self, d: Direction, bytes: usize) {
        bump(&self.received_packets[d as usize], 1);
        bump(&self.received_bytes[d as usize], bytes as u64);
    }

    #[inline]
    pub(crate) fn sent(&self, d: Direction, bytes: usize) {
        bump(&self.sent_packets[d as usize], 1);
        bump(&self.sent_bytes[d as usize], bytes as u64);
    }

    #[inline]
    pub(crate) fn dropped(&self, reason: DropReason) {
        bump(&self.drops[reason as usize], 1);
    }

    pub(crate) fn set_sessions(&self, n: usize) {
        self.sessions.store(n as u64, Relaxed);
    }

    pub(crate) fn event_dropped(&self) {
        bump(&self.events_dropped, 1);
    }

    pub(crate) fn ringback_sent(&self) {
        bump(&self.ringback_packets, 1);
    }
}

/// Sum over all workers at one moment (each worker's figures may be one packet
/// apart from each other).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaCounters {
    received_packets: [u64; DIRECTIONS],
    received_bytes: [u64; DIRECTIONS],
    sent_packets: [u64; DIRECTIONS],
    sent_bytes: [u64; DIRECTIONS],
    drops: [u64; REASONS],
    /// Sessions owned by workers.
    pub sessions_active: u64,
    /// Ports allocated or in quarantine.
    pub ports_in_use: u64,
    /// Events lost because the channel to the signaling plane was full.
    pub events_dropped: u64,
    /// Ringback packets the SBC made and sent to trunks (TDR-XFR-03).
    pub ringback_packets: u64,
}

impl MediaCounters {
    pub(crate) fn sum<'a>(
        workers: impl IntoIterator<Item = &'a WorkerCounters>,
        ports_in_use: usize,
    ) -> Self {
        let mut m = MediaCounters {
            ports_in_use: ports_in_use as u64,
            ..Self::default()
        };
        let add = |dst: &mut [u64], src: &[AtomicU64]| {
            for (d, s) in dst.iter_mut().zip(src) {
                *d += s.load(Relaxed);
            }
        };
        for w in workers {
            add(&mut m.received_packets, &w.received_packets);
            add(&mut m.received_bytes, &w.received_bytes);
            add(&mut m.sent_packets, &w.sent_packets);
            add(&mut m.sent_bytes, &w.sent_bytes);
            add(&mut m.drops, &w.drops);
            m.sessions_active += w.sessions.load(Relaxed);
            m.events_dropped += w.events_dropped.load(Relaxed);
            m.ringback_packets += w.ringback_packets.load(Relaxed);
        }
        m
    }

    /// Datagrams received on the leg a direction starts from.
    pub fn received_packets(&self, d: Direction) -> u64 {
        self.received_packets[d as usize]
    }

    /// Bytes of those datagrams.
    pub fn received_bytes(&self, d: Direction) -> u64 {
        self.received_bytes[d as usize]
    }

    /// Datagrams relayed (sent out of the other leg).
    pub fn relayed_packets(&self, d: Direction) -> u64 {
        self.sent_packets[d as usize]
    }

    /// Bytes relayed, as sent.
    pub fn relayed_bytes(&self, d: Direction) -> u64 {
        self.sent_bytes[d as usize]
    }

    /// Datagrams dropped for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// Writes the sums into the `metrics` recorder. Counters are set with
    /// `absolute` since the workers own the running totals.
    pub(crate) fn publish(&self) {
        for d in Direction::ALL {
            let label = d.label();
            let i = d as usize;
            metrics::counter!("drawbridge_media_packets_total", "direction" => label)
                .absolute(self.sent_packets[i]);
            metrics::counter!("drawbridge_media_bytes_total", "direction" => label)
                .absolute(self.sent_bytes[i]);
            metrics::counter!("drawbridge_media_received_packets_total", "direction" => label)
                .absolute(self.received_packets[i]);
            metrics::counter!("drawbridge_media_received_bytes_total", "direction" => label)
                .absolute(self.received_bytes[i]);
        }
        for r in DropReason::ALL {
            metrics::counter!("drawbridge_media_drops_total", "reason" => r.label())
                .absolute(self.drops[r as usize]);
        }
        metrics::counter!("drawbridge_media_events_dropped_total").absolute(self.events_dropped);
        metrics::counter!("drawbridge_media_ringback_packets_total")
            .absolute(self.ringback_packets);
        metrics::gauge!("drawbridge_media_sessions_active").set(self.sessions_active as f64);
        metrics::gauge!("drawbridge_media_ports_in_use").set(self.ports_in_use as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_cover_every_worker() {
        let a = WorkerCounters::default();
        let b = WorkerCounters::default();
        a.sent(Direction::TeamsToTrunk, 172);
        b.sent(Direction::TeamsToTrunk, 160);
        b.received(Direction::TrunkToTeams, 172);
        a.dropped(DropReason::Replay);
        b.dropped(DropReason::Replay);
        a.set_sessions(3);
        b.set_sessions(4);
        let m = MediaCounters::sum([&a, &b], 12);
        assert_eq!(m.relayed_packets(Direction::TeamsToTrunk), 2);
        assert_eq!(m.relayed_bytes(Direction::TeamsToTrunk), 332);
        assert_eq!(m.received_packets(Direction::TrunkToTeams), 1);
        assert_eq!(m.drops(DropReason::Replay), 2);
        assert_eq!(m.drops(DropReason::Auth), 0);
        assert_eq!(m.sessions_active, 7);
        assert_eq!(m.ports_in_use, 12);
    }

    #[test]
    fn drop_reason_index_matches_its_position() {
        for (i, r) in DropReason::ALL.into_iter().enumerate() {
            assert_eq!(r as usize, i, "{}", r.label());
        }
    }
}
