//! Wall-clock time, injectable so that expiry can be tested without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Epoch milliseconds, from the system clock or from a test's hand.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands at `start_ms` until moved with [`Clock::advance`].
    pub fn manual(start_ms: i64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(start_ms))),
        }
    }

    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(ms) => ms.load(Ordering::SeqCst),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        }
    }

    /// Moves a manual clock forward; a system clock ignores it.
    pub fn advance(&self, ms: i64) {
        if let Some(now) = &self.manual {
            now.fetch_add(ms, Ordering::SeqCst);
        }
    }
}

/// China time (UTC+8), in which WeChat's quotas and Tencent's daily limits
/// count their days.
const CHINA_OFFSET_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// The day of `ms` in China time, as days since the epoch.
pub fn china_day(ms: i64) -> i64 {
    (ms + CHINA_OFFSET_MS).div_euclid(DAY_MS)
}

/// Epoch milliseconds at which China day `day` ends (midnight in Beijing).
pub fn china_day_end_ms(day: i64) -> i64 {
    (day + 1) * DAY_MS - CHINA_OFFSET_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn china_days_turn_at_midnight_beijing_time() {
        // 2024-01-01T16:00:00Z is 2024-01-02T00:00 in Beijing.
        let midnight_beijing = 1_704_124_800_000;
        let day = china_day(midnight_beijing);
        assert_eq!(day - china_day(midnight_beijing - 1), 1);
        assert_eq!(day, china_day(midnight_beijing + 86_399_999));
        assert_eq!(china_day_end_ms(day - 1), midnight_beijing);
        assert_eq!(china_day_end_ms(day), midnight_beijing + 86_400_000);
    }
}
