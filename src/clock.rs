//! The one place that reads the time.
//!
//! Everything else takes `now: Instant` as an argument (sans-I/O cores) or calls
//! this function; it reads tokio's clock so `tokio::time::pause()` drives it in
//! tests. Outside a runtime (media workers, benches) tokio falls back to the
//! system monotonic clock.

use std::time::Instant;

/// Current monotonic time, from tokio's clock.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// An `Instant` written as wall-clock time, microseconds since the Unix epoch, for state
/// another process may read back (a call snapshot): a monotonic instant means nothing outside
/// the process that took it. Use with `#[serde(with = "crate::clock::as_wall_clock")]`.
pub mod as_wall_clock {
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(at: &Instant, s: S) -> Result<S::Ok, S::Error> {
        to_unix_micros(*at).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Instant, D::Error> {
        Ok(from_unix_micros(i64::deserialize(d)?))
    }

    /// The same for `Option<Instant>`.
    pub mod option {
        use std::time::Instant;

        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        pub fn serialize<S: Serializer>(at: &Option<Instant>, s: S) -> Result<S::Ok, S::Error> {
            at.map(super::to_unix_micros).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Instant>, D::Error> {
            Ok(Option::<i64>::deserialize(d)?.map(super::from_unix_micros))
        }
    }

    fn micros(d: Duration) -> i64 {
        i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
    }

    fn wall_now() -> i64 {
        // A clock set before 1970 reads as the epoch; nothing here is worth failing over it.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(micros)
            .unwrap_or(0)
    }

    pub(crate) fn to_unix_micros(at: Instant) -> i64 {
        let now = super::now();
        let wall = wall_now();
        if at >= now {
            wall.saturating_add(micros(at - now))
        } else {
            wall.saturating_sub(micros(now - at))
        }
    }

    /// The instant a wall-clock time stands for on this host.
    pub(crate) fn instant_of(wall: SystemTime) -> Instant {
        from_unix_micros(wall.duration_since(UNIX_EPOCH).map(micros).unwrap_or(0))
    }

    pub(crate) fn from_unix_micros(us: i64) -> Instant {
        let now = super::now();
        let delta = us.saturating_sub(wall_now());
        let offset = Duration::from_micros(delta.unsigned_abs());
        if delta >= 0 {
            now.checked_add(offset).unwrap_or(now)
        } else {
            // An instant older than this host's monotonic clock (a call set up elsewhere before
            // this host booted) cannot be represented: it becomes the oldest we can say, now
            // minus as much as the clock allows, so durations come out short rather than wrong
            // the other way.
            now.checked_sub(offset)
                .unwrap_or_else(|| oldest_before(now, offset))
        }
    }

    /// Halves the step until `now - step` exists; bounded by the 64 halvings of a Duration.
    fn oldest_before(now: Instant, mut offset: Duration) -> Instant {
        let mut at = now;
        for _ in 0..64 {
            offset /= 2;
            if let Some(t) = at.checked_sub(offset) {
                at = t;
            }
            if offset.is_zero() {
                break;
            }
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::as_wall_clock::{from_unix_micros, to_unix_micros};
    use super::now;

    #[test]
    fn instants_past_and_future_come_back_from_wall_clock_time() {
        let base = now();
        for at in [
            base + Duration::from_secs(900),
            base,
            base - Duration::from_millis(1500),
        ] {
            let back = from_unix_micros(to_unix_micros(at));
            let diff = back.max(at) - back.min(at);
            assert!(diff < Duration::from_millis(2), "{diff:?}");
        }
    }

    #[test]
    fn a_time_before_the_monotonic_clock_began_reads_back_as_an_instant_in_the_past() {
        // 1970: older than any monotonic clock's start.
        let back = from_unix_micros(0);
        assert!(back <= now());
        let far_future = from_unix_micros(i64::MAX);
        assert!(far_future >= now());
    }
}
