//! Rate limits on gatehouse's own routes: fixed windows counted in the store.
//!
//! Each limited request adds one to a counter named after the route, what is
//! counted (client IP or device), the scene bucket, the window's start and
//! the key itself. One row per counter and window, its TTL at the window's
//! end (see [`crate::store::CounterStore::increment_counter`] and
//! [`crate::store::CaptchaStore::issue_captcha`]).
//!
//! - create and refresh count per IP and per device with conditional
//!   updates (`count < limit`, so no counter passes its limit) sent together
//!   with the captcha's write: one round trip and one write unit per item
//!   (a transaction would bill two). Over the limit, the request undoes its
//!   other writes, so in the end nothing is counted and nothing is written.
//! - verify, wx-login, wx-phone and ticket verify count per IP, concurrently with the
//!   route's own first step, so a request within its limit waits no longer.
//! - an SMS send counts per IP the way create does (beside the number's
//!   day and the scene's budget, see `crate::sms::service`); an SMS verify
//!   per IP the way verify does.
//!
//! A client is counted by its IP, except that an IPv6 client is counted by
//! its /64: one subscriber, one LAN, usually gets a whole /64 (RFC 6177),
//! so counting each address would hand a script 2^64 allowances. An
//! IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) counts as its IPv4 address.
//! See [`ip_key`]; the guard's failure counters key clients the same way.
//!
//! Scenes with their own block in the configuration have their own counters;
//! every other scene shares one bucket (`*`), so inventing scene names does
//! not multiply a client's allowance.
//!
//! The configuration is the `rateLimit` block of `CAPTCHA_CONFIG` (root, and
//! for the captcha routes `scene.<name>.rateLimit`): [`RateLimitConfig`] is
//! its [`Part`], read through [`crate::config::blocks`].

use crate::config::blocks::Part;
use crate::config::{CAPTCHA_CONFIG, ConfigError, Entry};
use crate::error::ApiError;
use crate::store::{CounterLimit, CounterStore};

/// Allowed window length in seconds (`rateLimit.windowSeconds`).
pub const WINDOW_SECONDS_RANGE: std::ops::RangeInclusive<u64> = 1..=86_400;
/// Allowed value of every per-window limit; 0 switches that one limit off.
pub const LIMIT_RANGE: std::ops::RangeInclusive<u64> = 0..=1_000_000;
/// The IP key of a request that carries no `requestContext.http.sourceIp`.
pub const UNKNOWN_IP: &str = "unknown";

/// Keys of a `rateLimit` block.
pub const RATE_LIMIT_KEYS: &[&str] = &[
    "enabled",
    "windowSeconds",
    "createPerIp",
    "createPerDevice",
    "refreshPerIp",
    "refreshPerDevice",
    "verifyPerIp",
    "wxLoginPerIp",
    "ticketPerIp",
    "wxPhonePerIp",
    "smsSendPerIp",
    "smsVerifyPerIp",
];

/// The limits of one scene (or of the root), per window. A limit of 0 is off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub window_seconds: u64,
    pub create_per_ip: u64,
    pub create_per_device: u64,
    pub refresh_per_ip: u64,
    pub refresh_per_device: u64,
    pub verify_per_ip: u64,
    pub wx_login_per_ip: u64,
    pub ticket_per_ip: u64,
    pub wx_phone_per_ip: u64,
    pub sms_send_per_ip: u64,
    pub sms_verify_per_ip: u64,
}

impl Default for RateLimitConfig {
    /// Generous for people (a NAT may hide many behind one IP), tight for
    /// scripts: per minute, 60 creates per IP and 20 per device, 120 and 30
    /// refreshes, 120 verifies, 30 logins, 60 tickets, 30 phone-number
    /// requests, 20 SMS sends and 60 SMS verifies per IP.
    fn default() -> Self {
        Self {
            enabled: true,
            window_seconds: 60,
            create_per_ip: 60,
            create_per_device: 20,
            refresh_per_ip: 120,
            refresh_per_device: 30,
            verify_per_ip: 120,
            wx_login_per_ip: 30,
            ticket_per_ip: 60,
            wx_phone_per_ip: 30,
            sms_send_per_ip: 20,
            sms_verify_per_ip: 60,
        }
    }
}

impl RateLimitConfig {
    /// No limit at all.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// The fixed window that holds `now_ms`: `(start_ms, end_ms)`.
    pub fn window(&self, now_ms: i64) -> (i64, i64) {
        let len = (self.window_seconds.max(1) as i64).saturating_mul(1000);
        let start = now_ms.saturating_sub(now_ms.rem_euclid(len));
        (start, start.saturating_add(len))
    }

    /// The counters of one request of `route`: one [`CounterLimit`] per key
    /// whose limit is on, none when limits are switched off.
    pub fn counters(
        &self,
        route: Route,
        scene_bucket: &str,
        ip: Option<&str>,
        device: Option<&str>,
        now_ms: i64,
    ) -> Vec<CounterLimit> {
        if !self.enabled {
            return Vec::new();
        }
        let (start, end) = self.window(now_ms);
        let (per_ip, per_device) = match route {
            Route::Create => (self.create_per_ip, self.create_per_device),
            Route::Refresh => (self.refresh_per_ip, self.refresh_per_device),
            Route::Verify => (self.verify_per_ip, 0),
            Route::WxLogin => (self.wx_login_per_ip, 0),
            Route::Ticket => (self.ticket_per_ip, 0),
            Route::WxPhone => (self.wx_phone_per_ip, 0),
            Route::SmsSend => (self.sms_send_per_ip, 0),
            Route::SmsVerify => (self.sms_verify_per_ip, 0),
        };
        let ip = ip_key(ip);
        let mut out = Vec::with_capacity(2);
        // Every part before the last holds no `|` (route and dimension are
        // fixed words, scenes are [A-Za-z0-9_-], the window is digits), so a
        // name is unambiguous whatever the key holds.
        let name = |dim: &str, key: &str| {
            format!(
                "{}|{dim}|{scene_bucket}|{}|{key}",
                route.as_str(),
                start.div_euclid(1000)
            )
        };
        if per_ip > 0 {
            out.push(CounterLimit {
                name: name("ip", &ip),
                limit: per_ip,
                window_end_ms: end,
            });
        }
        if let Some(device) = device
            && per_device > 0
        {
            out.push(CounterLimit {
                name: name("dev", device),
                limit: per_device,
                window_end_ms: end,
            });
        }
        out
    }
}

impl Part for RateLimitConfig {
    const KEYS: &'static [&'static str] = &["rateLimit"];

    /// Applies the `rateLimit` block `entry` on top of `self` (messages
    /// name `rateLimit.<key>` or `scene.<name>.rateLimit.<key>`).
    fn apply(&mut self, entry: &Entry) -> Result<(), ConfigError> {
        let (block, path) = entry.block(RATE_LIMIT_KEYS)?;
        for (key, value) in block {
            let key = Entry::new(CAPTCHA_CONFIG, &path, key, value);
            match key.name() {
                "enabled" => self.enabled = key.bool()?,
                "windowSeconds" => self.window_seconds = key.int_in(WINDOW_SECONDS_RANGE)?,
                "createPerIp" => self.create_per_ip = key.int_in(LIMIT_RANGE)?,
                "createPerDevice" => self.create_per_device = key.int_in(LIMIT_RANGE)?,
                "refreshPerIp" => self.refresh_per_ip = key.int_in(LIMIT_RANGE)?,
                "refreshPerDevice" => self.refresh_per_device = key.int_in(LIMIT_RANGE)?,
                "verifyPerIp" => self.verify_per_ip = key.int_in(LIMIT_RANGE)?,
                "wxLoginPerIp" => self.wx_login_per_ip = key.int_in(LIMIT_RANGE)?,
                "ticketPerIp" => self.ticket_per_ip = key.int_in(LIMIT_RANGE)?,
                "wxPhonePerIp" => self.wx_phone_per_ip = key.int_in(LIMIT_RANGE)?,
                "smsSendPerIp" => self.sms_send_per_ip = key.int_in(LIMIT_RANGE)?,
                "smsVerifyPerIp" => self.sms_verify_per_ip = key.int_in(LIMIT_RANGE)?,
                _ => return Err(key.unknown(RATE_LIMIT_KEYS)),
            }
        }
        Ok(())
    }
}

/// The key a client IP is counted under: an IPv4 address whole, an IPv6
/// address by its /64 (`2001:db8:1:2::/64`), an IPv4-mapped IPv6 address
/// as its IPv4 address, [`UNKNOWN_IP`] when there is none. Anything that
/// does not parse as an address (API Gateway always sends one) is kept as
/// it came.
pub fn ip_key(ip: Option<&str>) -> String {
    use std::net::{IpAddr, Ipv6Addr};
    let Some(ip) = ip.map(str::trim).filter(|ip| !ip.is_empty()) else {
        return UNKNOWN_IP.to_owned();
    };
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{net}/64")
            }
        },
        Err(_) => ip.to_owned(),
    }
}

/// The routes that are limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Create,
    Refresh,
    Verify,
    WxLogin,
    Ticket,
    WxPhone,
    SmsSend,
    SmsVerify,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Create => "create",
            Route::Refresh => "refresh",
            Route::Verify => "verify",
            Route::WxLogin => "wxlogin",
            Route::Ticket => "ticket",
            Route::WxPhone => "wxphone",
            Route::SmsSend => "smssend",
            Route::SmsVerify => "smsverify",
        }
    }
}

/// `rate-limited`, with `Retry-After` = whole seconds to the window's end
/// (at least 1).
pub fn rate_limited(window_end_ms: i64, now_ms: i64) -> ApiError {
    let ms = window_end_ms.saturating_sub(now_ms).max(1);
    ApiError::RateLimited {
        retry_after_secs: (ms.saturating_add(999) / 1000) as u64,
    }
}

/// Counts one request against `counter` concurrently with `step` (the
/// route's own store or upstream work). Over the limit: `rate-limited`,
/// whatever `step` came to, and when the counter answers first `step` is
/// dropped then and there (so a login over its limit usually never reaches
/// WeChat: the counter's round trip is far shorter than WeChat's). A store
/// failure of the counter is `store-unavailable`: the route cannot keep its
/// limits without it.
pub async fn counted<T, F>(
    store: &dyn CounterStore,
    counter: Option<&CounterLimit>,
    now_ms: i64,
    step: F,
) -> Result<T, ApiError>
where
    F: std::future::Future<Output = Result<T, ApiError>>,
{
    let Some(counter) = counter else {
        return step.await;
    };
    let over = |count: u64| {
        if count > counter.limit {
            tracing::warn!(
                counter = %counter.name.split('|').take(3).collect::<Vec<_>>().join("|"),
                limit = counter.limit,
                "rate limit hit"
            );
            Err(rate_limited(counter.window_end_ms, now_ms))
        } else {
            Ok(())
        }
    };
    let count = store.increment_counter(&counter.name, counter.window_end_ms);
    tokio::pin!(count, step);
    tokio::select! {
        biased;
        count = &mut count => {
            over(count?)?;
            step.await
        }
        result = &mut step => {
            over(count.await?)?;
            result
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_fixed_and_retry_after_counts_to_their_end() {
        let cfg = RateLimitConfig::default();
        assert_eq!(
            cfg.window(1_700_000_000_123),
            (1_699_999_980_000, 1_700_000_040_000)
        );
        assert_eq!(
            rate_limited(1_700_000_040_000, 1_700_000_000_123),
            ApiError::RateLimited {
                retry_after_secs: 40
            }
        );
        assert_eq!(
            rate_limited(1000, 1000),
            ApiError::RateLimited {
                retry_after_secs: 1
            }
        );
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_ipv4_whole() {
        assert_eq!(ip_key(Some("203.0.113.9")), "203.0.113.9");
        assert_eq!(ip_key(Some("::ffff:203.0.113.9")), "203.0.113.9");
        assert_eq!(
            ip_key(Some("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            "2001:db8:1:2::/64"
        );
        // Every address of one /64 shares a key, however it is written.
        assert_eq!(
            ip_key(Some("2001:0DB8:0001:0002::1")),
            ip_key(Some("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            ip_key(Some("2001:db8:1:2::1")),
            ip_key(Some("2001:db8:1:3::1"))
        );
        assert_eq!(ip_key(Some("::1")), "::/64");
        assert_eq!(ip_key(None), UNKNOWN_IP);
        assert_eq!(ip_key(Some("")), UNKNOWN_IP);
        assert_eq!(ip_key(Some("not-an-ip")), "not-an-ip");
        let cfg = RateLimitConfig::default();
        let c = cfg.counters(Route::Verify, "*", Some("2001:db8::7"), None, 0);
        assert_eq!(c[0].name, "verify|ip|*|0|2001:db8::/64");
    }

    #[test]
    fn counters_follow_route_and_switches() {
        let cfg = RateLimitConfig::default();
        let c = cfg.counters(Route::Create, "*", Some("203.0.113.9"), Some("d|1"), 61_000);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].name, "create|ip|*|60|203.0.113.9");
        assert_eq!(c[0].limit, 60);
        assert_eq!(c[0].window_end_ms, 120_000);
        assert_eq!(c[1].name, "create|dev|*|60|d|1");
        let v = cfg.counters(Route::Verify, "login", None, Some("d"), 0);
        assert_eq!(v.len(), 1, "verify counts per IP only");
        assert_eq!(v[0].name, "verify|ip|login|0|unknown");
        let off = RateLimitConfig {
            create_per_device: 0,
            ..cfg
        };
        assert_eq!(
            off.counters(Route::Create, "*", None, Some("d"), 0).len(),
            1
        );
        assert!(
            RateLimitConfig::disabled()
                .counters(Route::Create, "*", None, Some("d"), 0)
                .is_empty()
        );
    }
}
