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
