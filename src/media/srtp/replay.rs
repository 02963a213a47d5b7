//! RFC 3711 §3.3.2 replay list as a sliding window over the highest index seen.

use super::SrtpError;

/// Packets this far behind the highest index are still accepted once. libsrtp keeps 128
/// too; RFC 3711 asks for at least 64.
pub(crate) const WINDOW: u64 = 128;

/// Bit `i` of the mask records index `max - i`. An empty mask means nothing was received.
/// The 128-bit mask is kept as two words: a `u128` field aligns the window to 16 bytes,
/// which padded every SSRC slot (eight per context) from 32 to 48 bytes.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct ReplayWindow {
    max: u64,
    mask: [u64; 2],
}

impl ReplayWindow {
    fn mask(&self) -> u128 {
        (u128::from(self.mask[1]) << 64) | u128::from(self.mask[0])
    }

    fn set_mask(&mut self, mask: u128) {
        self.mask = [mask as u64, (mask >> 64) as u64];
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.mask == [0, 0]
    }

    /// The highest index received, if any.
    pub(crate) fn max(&self) -> Option<u64> {
        (!self.is_empty()).then_some(self.max)
    }

    /// Whether `index` may still be accepted. Does not record it: the caller records only
    /// after the tag verifies (§3.3: state follows authentication).
    pub(crate) fn check(&self, index: u64) -> Result<(), SrtpError> {
        if self.is_empty() || index > self.max {
            return Ok(());
        }
        let behind = self.max - index;
        if behind >= WINDOW {
            return Err(SrtpError::TooOld { index });
        }
        if self.mask() & (1u128 << behind) != 0 {
            return Err(SrtpError::Replayed { index });
        }
        Ok(())
    }

    pub(crate) fn record(&mut self, index: u64) {
        if self.is_empty() {
            self.max = index;
            self.set_mask(1);
        } else if index > self.max {
            let ahead = index - self.max;
            self.set_mask(if ahead >= WINDOW {
                1
            } else {
                (self.mask() << ahead) | 1
            });
            self.max = index;
        } else {
            let behind = self.max - index;
            if behind < WINDOW {
                self.set_mask(self.mask() | (1u128 << behind));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_window_accepts_each_index_once_and_reorders_within_window() {
        let mut w = ReplayWindow::default();
        for i in [10u64, 12, 11, 200, 100] {
            assert!(w.check(i).is_ok(), "{i}");
            w.record(i);
        }
        assert_eq!(w.check(12), Err(SrtpError::TooOld { index: 12 }));
        assert_eq!(w.check(100), Err(SrtpError::Replayed { index: 100 }));
        assert_eq!(w.check(200), Err(SrtpError::Replayed { index: 200 }));
        assert!(w.check(199).is_ok());
        assert!(w.check(73).is_ok());
        assert_eq!(w.check(72), Err(SrtpError::TooOld { index: 72 }));
        assert!(w.check(201).is_ok());
    }
}
