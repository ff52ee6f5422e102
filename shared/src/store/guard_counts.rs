//! The guard's counter rows: one per scene and *subject* (a client IP or
//! IPv6 /64, a device, an openid), holding both counts a level is made of,
//! each in its own fixed window: the requests the scene's doors saw of the
//! subject, and its failures.
//!
//! The windows are in the attribute names (`r<start>` for requests, `f<start>`
//! for failures, the window's start in epoch seconds), not in the row key,
//! so that one write both counts and reads: counting a request adds one to
//! its window's attribute, removes the previous window's and answers the
//! whole row, failures included. An attribute of an older window than the
//! previous one is never read (and costs bytes only: it is left when a
//! subject skipped a whole window, until a write of its window's
//! successor or the row's TTL).

/// A fixed window of a guard counter: `length_s` seconds from `start_s`
/// (epoch seconds, a multiple of `length_s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterWindow {
    pub start_s: i64,
    pub length_s: i64,
}

impl CounterWindow {
    /// The window of `length_s` seconds (at least 1) that holds `now_ms`.
    pub fn holding(now_ms: i64, length_s: u64) -> Self {
        let length_s = i64::try_from(length_s.max(1)).unwrap_or(i64::MAX);
        let now_s = now_ms.div_euclid(1000);
        Self {
            start_s: now_s.saturating_sub(now_s.rem_euclid(length_s)),
            length_s,
        }
    }

    /// Epoch milliseconds at which the window ends.
    pub fn end_ms(&self) -> i64 {
        self.start_s
            .saturating_add(self.length_s)
            .saturating_mul(1000)
    }

    /// The window just before this one.
    pub fn previous(&self) -> Self {
        Self {
            start_s: self.start_s.saturating_sub(self.length_s),
            length_s: self.length_s,
        }
    }
}

/// The windows a guard counter row is counted and read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardWindows {
    /// The requests' window; `None` where requests are not counted (the
    /// scene's velocity is off), so a row's request count reads 0.
    pub requests: Option<CounterWindow>,
    pub failures: CounterWindow,
    /// Epoch milliseconds until which a written row is kept: the end of the
    /// later window.
    pub keep_until_ms: i64,
}

impl GuardWindows {
    /// The windows of `now_ms` for the given lengths in seconds.
    pub fn at(now_ms: i64, request_window_s: Option<u64>, failure_window_s: u64) -> Self {
        let requests = request_window_s.map(|length| CounterWindow::holding(now_ms, length));
        let failures = CounterWindow::holding(now_ms, failure_window_s);
        let keep_until_ms = requests.map_or(0, |w| w.end_ms()).max(failures.end_ms());
        Self {
            requests,
            failures,
            keep_until_ms,
        }
    }
}

/// What a guard counter row is counted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardEvent {
    /// A request a door saw (in [`GuardWindows::requests`], which must be
    /// set).
    Request,
    /// A failure: a wrong answer, a rejected ticket or pass, a reported one.
    Failure,
}

/// One guard counter row as a count or read found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardTally {
    /// The row's counts in the current windows (0 for a window without
    /// one), this request or failure included when one was counted.
    Counted { requests: u64, failures: u64 },
    /// DynamoDB throttled the row (a subject past a thousand writes a
    /// second): nothing was counted or read. The guard takes it for a
    /// subject past every threshold, never for an error.
    Throttled,
}

/// The name of the attribute that holds a row's requests in `window`.
pub fn request_attribute(window: &CounterWindow) -> String {
    format!("r{}", window.start_s)
}

/// The name of the attribute that holds a row's failures in `window`.
pub fn failure_attribute(window: &CounterWindow) -> String {
    format!("f{}", window.start_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_aligned_on_their_length_and_name_their_attributes() {
        let window = CounterWindow::holding(61_500, 60);
        assert_eq!(
            window,
            CounterWindow {
                start_s: 60,
                length_s: 60
            }
        );
        assert_eq!(window.end_ms(), 120_000);
        assert_eq!(window.previous().start_s, 0);
        assert_eq!(request_attribute(&window), "r60");
        assert_eq!(failure_attribute(&window.previous()), "f0");
        let windows = GuardWindows::at(61_500, Some(60), 900);
        assert_eq!(windows.failures.start_s, 0);
        assert_eq!(windows.keep_until_ms, 900_000, "the later window's end");
        assert_eq!(GuardWindows::at(61_500, None, 30).keep_until_ms, 90_000);
    }
}
