//! Call detail records and per-tenant call metrics.
//!
//! The B2BUA builds one [`CallRecord`] when a call ends and hands it to a
//! [`CdrWriter`], which appends it as one JSON line on its own thread: the call
//! task never waits for the disk. [`CallMetrics`] counts attempts, answers,
//! failures and setup times per tenant, with every series built at start from
//! the configured tenants.

mod call_metrics;
mod numbers;
pub(crate) mod time;
mod writer;

use std::time::{Instant, SystemTime};

use serde::Serialize;

pub use call_metrics::CallMetrics;
pub use writer::{CdrError, CdrWriter};

/// Which side sent the initial INVITE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallDirection {
    TeamsToTrunk,
    TrunkToTeams,
}

impl CallDirection {
    /// Label value in metrics, spelled like the media plane's `direction` label.
    pub fn metric_label(self) -> &'static str {
        match self {
            CallDirection::TeamsToTrunk => "teams_to_trunk",
            CallDirection::TrunkToTeams => "trunk_to_teams",
        }
    }
}

/// Who ended the call: a BYE or CANCEL from one side, or the SBC itself
/// (timeouts, failover exhausted, shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndedBy {
    Teams,
    Trunk,
    Sbc,
}

/// The side that asked for a transfer (sent the REFER).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferredBy {
    Teams,
    Trunk,
}

impl TransferredBy {
    /// Label value in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            TransferredBy::Teams => "teams",
            TransferredBy::Trunk => "trunk",
        }
    }
}

/// One transfer asked for during a call (REFER, TDR-XFR-02 and TDR-XFR-04), in a call's
/// record: billing sees who the call went on with, and matching Microsoft's records needs the
/// Call-ID of each Teams dialog the call had.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransferRecord {
    /// When its outcome was known.
    #[serde(serialize_with = "time::serialize")]
    pub time: SystemTime,
    pub requested_by: TransferredBy,
    /// The number (user part) the Refer-To named; written as `[cdr] numbers` allows.
    pub target: Option<String>,
    /// The new party's final answer (0 when none came).
    pub status: u16,
    /// Whether the call went on with the new party.
    pub completed: bool,
    /// SIP Call-ID of the dialog the new one replaced (the referrer's), when completed.
    pub replaced_call_id: Option<String>,
    /// SIP Call-ID of the new party's dialog, when completed.
    pub new_call_id: Option<String>,
}

/// One finished call, as written to the CDR file.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    /// The SBC's own call id (hex).
    pub call_id: String,
    pub tenant: String,
    pub trunk: String,
    pub direction: CallDirection,
    /// Calling number; written as `[cdr] numbers` allows.
    pub from: Option<String>,
    /// Called number; written as `[cdr] numbers` allows.
    pub to: Option<String>,
    /// SIP Call-ID of the Teams leg.
    pub teams_call_id: Option<String>,
    /// SIP Call-ID of the trunk leg.
    pub trunk_call_id: Option<String>,
    /// Initial INVITE received.
    #[serde(serialize_with = "time::serialize")]
    pub setup_time: SystemTime,
    /// 200 OK to the INVITE relayed; `None` when never answered.
    #[serde(serialize_with = "time::serialize_opt")]
    pub answer_time: Option<SystemTime>,
    #[serde(serialize_with = "time::serialize")]
    pub end_time: SystemTime,
    /// Answer to end, seconds (0 when not answered); written to the millisecond.
    #[serde(serialize_with = "serialize_seconds")]
    pub duration_s: f64,
    /// Final status of the call setup (200, 486, 487, 503 ...).
    pub status: u16,
    /// Short and machine-friendly: "bye", "cancel", "rejected", "media-timeout",
    /// "session-expired", "failover-exhausted", "shutdown" ...
    pub end_reason: String,
    pub ended_by: EndedBy,
    /// Media plane figures; `None` when no media session was set up.
    pub media: Option<MediaRecord>,
    /// Transfers asked for during the call, in order; left out when there were none. After
    /// a completed one, `teams_call_id` or `trunk_call_id` is the new party's dialog.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transfers: Vec<TransferRecord>,
}

/// Packet, byte and loss counts of a call's media session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MediaRecord {
    /// Packets received from Teams (authenticated SRTP).
    pub packets_teams_to_trunk: u64,
    /// Bytes of those packets as received.
    pub bytes_teams_to_trunk: u64,
    /// RTP sequence numbers missing in the Teams stream.
    pub lost_teams_to_trunk: u64,
    /// Packets received from the trunk.
    pub packets_trunk_to_teams: u64,
    pub bytes_trunk_to_teams: u64,
    /// RTP sequence numbers missing in the trunk stream.
    pub lost_trunk_to_teams: u64,
}

impl MediaRecord {
    /// Counts as received on each leg: losses are measured there, and what the
    /// SBC then failed to relay shows in its drop metrics, not in one call.
    pub fn from_stats(s: &crate::media::SessionStats) -> MediaRecord {
        MediaRecord {
            packets_teams_to_trunk: s.teams_to_trunk.packets_in,
            bytes_teams_to_trunk: s.teams_to_trunk.bytes_in,
            lost_teams_to_trunk: s.teams_to_trunk.lost,
            packets_trunk_to_teams: s.trunk_to_teams.packets_in,
            bytes_trunk_to_teams: s.trunk_to_teams.bytes_in,
            lost_trunk_to_teams: s.trunk_to_teams.lost,
        }
    }
}

impl CallRecord {
    /// Seconds from answer to end, 0 when not answered (or when the clock
    /// stepped back in between).
    pub fn talk_seconds(answer_time: Option<SystemTime>, end_time: SystemTime) -> f64 {
        answer_time
            .and_then(|a| end_time.duration_since(a).ok())
            .map_or(0.0, |d| d.as_secs_f64())
    }
}

/// Maps the monotonic instants a call core keeps to wall-clock times for its
/// record: one reading of both clocks, taken when the record is built.
/// Converting from one anchor keeps setup, answer and end consistent with the
/// monotonic durations even if the wall clock steps during the call.
#[derive(Debug, Clone, Copy)]
pub struct WallAnchor {
    instant: Instant,
    system: SystemTime,
}

impl WallAnchor {
    /// Reads both clocks now (the monotonic one through `crate::clock`).
    pub fn now() -> WallAnchor {
        WallAnchor {
            instant: crate::clock::now(),
            system: SystemTime::now(),
        }
    }

    /// An anchor from given readings (tests, or a caller holding both).
    pub fn new(instant: Instant, system: SystemTime) -> WallAnchor {
        WallAnchor { instant, system }
    }

    /// The wall-clock time of `at`.
    pub fn system_time(&self, at: Instant) -> SystemTime {
        if at <= self.instant {
            self.system
                .checked_sub(self.instant - at)
                .unwrap_or(self.system)
        } else {
            self.system
                .checked_add(at - self.instant)
                .unwrap_or(self.system)
        }
    }
}

fn serialize_seconds<S: serde::Serializer>(secs: &f64, s: S) -> Result<S::Ok, S::Error> {
    let ms = (secs * 1000.0).round();
    // A NaN or negative duration is a caller bug; 0 keeps the line parseable.
    if ms.is_finite() && ms > 0.0 {
        s.serialize_f64(ms / 1000.0)
    } else {
        s.serialize_f64(0.0)
    }
}

#[cfg(test)]
mod tests;
