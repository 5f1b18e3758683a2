//! The simulator's clock (real time plus an offset tests can advance) and the fixed-window counters the rate
//! limits are built from.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The most the clock can be advanced in all (about 34,000 years).
const MAX_OFFSET: u64 = 1 << 40;

/// Sim now = real unix time + an offset that only grows.
#[derive(Default)]
pub(crate) struct Clock {
    offset: AtomicU64,
}

impl Clock {
    pub(crate) fn now(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        real.saturating_add(self.offset.load(Ordering::Relaxed))
    }

    pub(crate) fn advance(&self, secs: u64) -> u64 {
        // fetch_update never fails with a closure that always returns Some. The cap keeps every
        // `now + lifetime` far from overflow.
        let _ = self
            .offset
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
                Some(o.saturating_add(secs).min(MAX_OFFSET))
            });
        self.now()
    }
}

pub(crate) fn minute(now: u64) -> u64 {
    now / 60
}

/// Daily quotas reset at midnight Beijing time (UTC+8).
// Guess: WeChat's daily quotas reset at 00:00 China time; the simulator counts days from that boundary.
pub(crate) fn day(now: u64) -> u64 {
    (now + 8 * 3600) / 86_400
}

/// A counter for one fixed window, lock-free: the high 32 bits hold the window number, the low 32 the count.
#[derive(Default)]
pub(crate) struct FixedWindow {
    state: AtomicU64,
}

impl FixedWindow {
    /// Counts one call in `window` and says whether it is within `limit`. A refused call is not counted.
    pub(crate) fn hit(&self, window: u64, limit: u32) -> bool {
        // Truncating the window number is fine: only equality with the stored one matters.
        let tag = (window & 0xffff_ffff) << 32;
        let mut current = self.state.load(Ordering::Relaxed);
        loop {
            let next = if current & !0xffff_ffff == tag {
                let count = current & 0xffff_ffff;
                if count >= u64::from(limit) {
                    return false;
                }
                current + 1
            } else if limit == 0 {
                return false;
            } else {
                tag | 1
            };
            match self.state.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_and_resets() {
        let w = FixedWindow::default();
        assert!(w.hit(5, 2));
        assert!(w.hit(5, 2));
        assert!(!w.hit(5, 2));
        assert!(w.hit(6, 2));
        assert!(!w.hit(7, 0));
    }

    #[test]
    fn clock_advances() {
        let c = Clock::default();
        let before = c.now();
        assert!(c.advance(301) >= before + 301);
    }

    #[test]
    fn days_start_at_beijing_midnight() {
        // 2024-01-01T16:00:00Z is midnight in Beijing.
        let midnight_cn = 1_704_124_800;
        assert_eq!(day(midnight_cn - 1) + 1, day(midnight_cn));
    }
}
