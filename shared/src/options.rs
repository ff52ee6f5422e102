//! [`ServiceOptions`]: what every service takes besides its own settings and
//! store, so that no service can be built half-configured.
//!
//! The rate limits are [`ServiceOptions::new`]'s one argument (there is no
//! other way to build options, so they cannot be left out by accident); the
//! clock and the upstream time-out have defaults a builder replaces:
//!
//! ```
//! # use gatehouse::{clock::Clock, options::ServiceOptions, ratelimit::RateLimitConfig};
//! let options = ServiceOptions::new(RateLimitConfig::disabled()).with_clock(Clock::manual(0));
//! ```
//!
//! A service reads what applies to it: the captcha routes the scene's rate
//! limits, wx-login, wx-phone and ticket verify the root's, the session
//! service and the guard the clock alone (they count nothing of their own).

use std::time::Duration;

use crate::clock::Clock;
use crate::config::blocks::PerScene;
use crate::ratelimit::RateLimitConfig;

/// Time-out of one upstream request (WeChat, Tencent) unless
/// [`ServiceOptions::with_timeout`] says otherwise.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// The clock, the rate limits and the upstream time-out of a service.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    rate_limits: PerScene<RateLimitConfig>,
    clock: Clock,
    timeout: Duration,
}

impl ServiceOptions {
    /// Options with these rate limits (one [`RateLimitConfig`] for every
    /// scene, or per scene as `CAPTCHA_CONFIG` gives them), the system
    /// clock and the [`DEFAULT_UPSTREAM_TIMEOUT`].
    pub fn new(rate_limits: impl Into<PerScene<RateLimitConfig>>) -> Self {
        Self {
            rate_limits: rate_limits.into(),
            clock: Clock::system(),
            timeout: DEFAULT_UPSTREAM_TIMEOUT,
        }
    }

    /// The same options reading time from `clock` (tests move a manual one).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same options with another time-out of each upstream request.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn rate_limits(&self) -> &PerScene<RateLimitConfig> {
        &self.rate_limits
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}
