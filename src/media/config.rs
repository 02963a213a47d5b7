//! The `[media]` table: port range, advertised addresses, workers, timers.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::tone::RingbackTone;

/// Media plane settings, embedded by the lead config as the `[media]` table.
///
/// ```toml
/// [media]
/// port_min = 30000
/// port_max = 49999
/// teams_ip = "192.0.2.10"
/// teams_public_ip = "198.51.100.10"
/// trunk_ip = "10.0.0.10"
/// workers = 0
/// timeout_s = 60
/// quarantine_s = 5
/// relatch_after_ms = 2000
/// ringback = "eu"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// Lowest UDP port of the media range (inclusive). Rounded up to even: RTP
    /// takes the even port of a pair, RTCP the odd one above it (RFC 3550 §11).
    #[serde(default = "default_port_min")]
    pub port_min: u16,
    /// Highest UDP port of the media range (inclusive).
    #[serde(default = "default_port_max")]
    pub port_max: u16,
    /// Local address the Teams-facing (SRTP) sockets bind to.
    #[serde(default = "default_ip")]
    pub teams_ip: IpAddr,
    /// Address written into SDP toward Teams when the SBC is behind 1:1 NAT;
    /// `teams_ip` when absent.
    #[serde(default)]
    pub teams_public_ip: Option<IpAddr>,
    /// Local address the trunk-facing (RTP) sockets bind to.
    #[serde(default = "default_ip")]
    pub trunk_ip: IpAddr,
    /// Address written into SDP toward the trunk when behind NAT; `trunk_ip`
    /// when absent.
    #[serde(default)]
    pub trunk_public_ip: Option<IpAddr>,
    /// Number of relay worker threads; 0 = one per available core.
    #[serde(default)]
    pub workers: usize,
    /// A leg that received nothing for this many seconds raises
    /// `MediaEvent::Timeout` (once per silence). 0 disables the check.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u64,
    /// Seconds a released port pair waits before it may be handed out again, so
    /// late packets of an ended call never reach a new one.
    #[serde(default = "default_quarantine_s")]
    pub quarantine_s: u64,
    /// A latched leg silent for this many milliseconds may latch onto a new
    /// source (an SRTP source must still authenticate). 0 = never re-latch.
    #[serde(default = "default_relatch_after_ms")]
    pub relatch_after_ms: u64,
    /// Capacity of the event channel to the signaling plane; when full, events
    /// are counted and dropped instead of blocking a worker.
    #[serde(default = "default_event_capacity")]
    pub event_capacity: usize,
    /// Ringing tone played to the trunk while Teams transfers the call
    /// (TDR-XFR-03): "eu" (425 Hz, 1 s on, 4 s off), "na" (440 + 480 Hz,
    /// 2 s on, 4 s off) or "off".
    #[serde(default)]
    pub ringback: RingbackTone,
}

fn default_port_min() -> u16 {
    30000
}
fn default_port_max() -> u16 {
    49999
}
fn default_ip() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}
fn default_timeout_s() -> u64 {
    60
}
fn default_quarantine_s() -> u64 {
    5
}
fn default_relatch_after_ms() -> u64 {
    2000
}
fn default_event_capacity() -> usize {
    4096
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            port_min: default_port_min(),
            port_max: default_port_max(),
            teams_ip: default_ip(),
            teams_public_ip: None,
            trunk_ip: default_ip(),
            trunk_public_ip: None,
            workers: 0,
            timeout_s: default_timeout_s(),
            quarantine_s: default_quarantine_s(),
            relatch_after_ms: default_relatch_after_ms(),
            event_capacity: default_event_capacity(),
            ringback: RingbackTone::default(),
        }
    }
}

/// Why a `[media]` table was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MediaConfigError {
    /// `port_min` above `port_max`.
    #[error("media.port_min {min} is above media.port_max {max}")]
    InvertedRange { min: u16, max: u16 },
    /// The range holds no even/odd pair (after rounding `port_min` up to even).
    #[error("media port range {min}..={max} holds no RTP/RTCP port pair")]
    NoPortPair { min: u16, max: u16 },
    /// Port 0 would ask the kernel for any port, outside our bookkeeping.
    #[error("media.port_min must be at least 1024, got {min}")]
    PrivilegedPort { min: u16 },
    /// `teams_ip` and `trunk_ip` of different families (IPv4 vs IPv6) are fine,
    /// but an unspecified public address would be advertised literally.
    #[error("media.{key} must not be the unspecified address {ip}")]
    UnspecifiedPublic { key: &'static str, ip: IpAddr },
    /// Event channel capacity 0 would drop every event.
    #[error("media.event_capacity must be at least 1")]
    NoEventCapacity,
}

impl MediaConfig {
    /// Checks what serde cannot: the port range and the advertised addresses.
    pub fn validate(&self) -> Result<(), MediaConfigError> {
        let (min, max) = (self.port_min, self.port_max);
        if min > max {
            return Err(MediaConfigError::InvertedRange { min, max });
        }
        if min < 1024 {
            return Err(MediaConfigError::PrivilegedPort { min });
        }
        if self.pair_count() == 0 {
            return Err(MediaConfigError::NoPortPair { min, max });
        }
        for (key, ip) in [
            ("teams_public_ip", self.teams_public_ip),
            ("trunk_public_ip", self.trunk_public_ip),
        ] {
            if let Some(ip) = ip.filter(IpAddr::is_unspecified) {
                return Err(MediaConfigError::UnspecifiedPublic { key, ip });
            }
        }
        if self.event_capacity == 0 {
            return Err(MediaConfigError::NoEventCapacity);
        }
        Ok(())
    }

    /// First even port of the range.
    pub(crate) fn first_rtp_port(&self) -> u32 {
        u32::from(self.port_min).next_multiple_of(2)
    }

    /// Number of (even, odd) pairs inside the range.
    pub(crate) fn pair_count(&self) -> u32 {
        let first = self.first_rtp_port();
        let last = u32::from(self.port_max);
        if last < first + 1 {
            0
        } else {
            (last - first).div_ceil(2)
        }
    }

    /// Address advertised in SDP toward Teams.
    pub fn teams_advertised_ip(&self) -> IpAddr {
        self.teams_public_ip.unwrap_or(self.teams_ip)
    }

    /// Address advertised in SDP toward the trunk.
    pub fn trunk_advertised_ip(&self) -> IpAddr {
        self.trunk_public_ip.unwrap_or(self.trunk_ip)
    }

    pub(crate) fn timeout(&self) -> Option<Duration> {
        (self.timeout_s > 0).then(|| Duration::from_secs(self.timeout_s))
    }

    pub(crate) fn quarantine(&self) -> Duration {
        Duration::from_secs(self.quarantine_s)
    }

    pub(crate) fn relatch_after(&self) -> Option<Duration> {
        (self.relatch_after_ms > 0).then(|| Duration::from_millis(self.relatch_after_ms))
    }

    /// Worker count with 0 resolved to the number of cores.
    pub(crate) fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(1, usize::from)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_table_takes_documented_defaults() {
        let cfg: MediaConfig = toml::from_str("").unwrap();
        assert_eq!(cfg, MediaConfig::default());
        assert_eq!(cfg.validate(), Ok(()));
        assert_eq!(cfg.pair_count(), 10000);
    }

    #[test]
    fn unknown_key_is_rejected() {
        let err = toml::from_str::<MediaConfig>("port_mim = 4000").unwrap_err();
        assert!(err.to_string().contains("port_mim"), "{err}");
    }

    #[test]
    fn inverted_range_is_rejected() {
        let cfg = MediaConfig {
            port_min: 40000,
            port_max: 30000,
            ..MediaConfig::default()
        };
        assert_eq!(
            cfg.validate(),
            Err(MediaConfigError::InvertedRange {
                min: 40000,
                max: 30000
            })
        );
    }

    #[test]
    fn range_without_a_pair_is_rejected() {
        // 30001 rounds up to 30002, which has no odd partner below 30002.
        let cfg = MediaConfig {
            port_min: 30001,
            port_max: 30002,
            ..MediaConfig::default()
        };
        assert_eq!(
            cfg.validate(),
            Err(MediaConfigError::NoPortPair {
                min: 30001,
                max: 30002
            })
        );
        let one = MediaConfig {
            port_min: 30001,
            port_max: 30003,
            ..MediaConfig::default()
        };
        assert_eq!(one.validate(), Ok(()));
        assert_eq!(one.pair_count(), 1);
    }

    #[test]
    fn unspecified_public_address_is_rejected() {
        let cfg: MediaConfig = toml::from_str("trunk_public_ip = \"0.0.0.0\"").unwrap();
        assert!(matches!(
            cfg.validate(),
            Err(MediaConfigError::UnspecifiedPublic {
                key: "trunk_public_ip",
                ..
            })
        ));
    }

    #[test]
    fn public_address_is_advertised_instead_of_bind_address() {
        let cfg: MediaConfig =
            toml::from_str("teams_ip = \"10.0.0.1\"\nteams_public_ip = \"198.51.100.7\"").unwrap();
        assert_eq!(cfg.teams_advertised_ip(), IpAddr::from([198, 51, 100, 7]));
        assert_eq!(cfg.trunk_advertised_ip(), IpAddr::from([127, 0, 0, 1]));
    }
}
