//! Per-direction packet, byte and loss figures of one session (for call
//! records), kept without allocation on the packet path.

use serde::Serialize;

/// Figures of one direction of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DirectionStats {
    /// Packets accepted on the receiving leg (authenticated, for SRTP).
    pub packets_in: u64,
    /// Bytes of those packets as received.
    pub bytes_in: u64,
    /// Packets sent out of the other leg.
    pub packets_out: u64,
    /// Bytes sent out of the other leg.
    pub bytes_out: u64,
    /// RTP packets missing by sequence number (RFC 3550 A.3: expected minus
    /// received, summed over SSRC changes; duplicates can hide losses).
    pub lost: u64,
}

/// Figures of a whole session, returned when it is destroyed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SessionStats {
    /// SRTP from Teams relayed as RTP to the trunk.
    pub teams_to_trunk: DirectionStats,
    /// RTP from the trunk relayed as SRTP to Teams.
    pub trunk_to_teams: DirectionStats,
}

/// Extended highest sequence number per RFC 3550 A.1, simplified: no probation,
/// a new SSRC restarts the count and keeps the losses seen so far.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SeqTracker {
    started: bool,
    ssrc: u32,
    base_ext: u64,
    max_ext: u64,
    received: u64,
    lost_before: u64,
}

impl SeqTracker {
    pub(crate) fn on_rtp(&mut self, ssrc: u32, seq: u16) {
        if !self.started || ssrc != self.ssrc {
            self.lost_before = self.lost();
            self.started = true;
            self.ssrc = ssrc;
            self.base_ext = u64::from(seq);
            self.max_ext = u64::from(seq);
            self.received = 1;
            return;
        }
        self.received += 1;
        let max16 = self.max_ext as u16;
        let delta = seq.wrapping_sub(max16);
        // A.1: a forward step of less than half the space is in order (with a
        // wrap when seq < max); anything else is late or a duplicate.
        if delta != 0 && delta < 0x8000 {
            self.max_ext += u64::from(delta);
        }
    }

    pub(crate) fn lost(&self) -> u64 {
        let current = if self.started {
            (self.max_ext - self.base_ext + 1).saturating_sub(self.received)
        } else {
            0
        };
        self.lost_before + current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_count_as_losses_across_a_wrap() {
        let mut t = SeqTracker::default();
        for seq in [65533u16, 65534, 0, 1, 4] {
            t.on_rtp(7, seq);
        }
        // 65533..=4 is 8 numbers; 65535, 2 and 3 are missing.
        assert_eq!(t.lost(), 3);
    }

    #[test]
    fn late_packet_fills_its_gap() {
        let mut t = SeqTracker::default();
        for seq in [10u16, 12, 11] {
            t.on_rtp(7, seq);
        }
        assert_eq!(t.lost(), 0);
    }

    #[test]
    fn new_ssrc_keeps_earlier_losses() {
        let mut t = SeqTracker::default();
        t.on_rtp(1, 100);
        t.on_rtp(1, 102);
        t.on_rtp(2, 5000);
        t.on_rtp(2, 5001);
        assert_eq!(t.lost(), 1);
    }
}
