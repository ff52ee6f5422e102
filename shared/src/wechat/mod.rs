//! WeChat mini-program login: `jscode2session`, our own session tokens, the
//! user-data checks, and the HTTP API authorizer.
//!
//! - [`WxConfig`] reads `WX_APPID`, `WX_SECRET`, `WX_API_BASE` and
//!   `SESSION_TTL_SECONDS` once, at start-up.
//! - [`client::WxClient`] calls `jscode2session` (5 s time-out, errcode -1
//!   retried at most twice with backoff) and maps every errcode to an
//!   [`ApiError`](crate::ApiError).
//! - [`session::LoginService`] turns a code into a session token and checks or
//!   ends a token; [`session::login`] and [`session::session`] are the route
//!   handlers, [`authorizer::authorize`] the Lambda authorizer.
//!
//! Neither `WX_SECRET` nor a `session_key` is ever logged or sent to a client:
//! both are held in [`Secret`], whose `Debug` and `Display` print `***`.

use std::fmt;
use std::time::Duration;

pub mod authorizer;
pub mod client;
pub mod crypto;
pub mod session;

pub use authorizer::{AuthorizerRequest, AuthorizerResponse, authorize, authorized_identity};
pub use client::{WxClient, WxSession};
pub use session::{LoginService, SessionService, login, session};

/// The public WeChat API.
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";
/// Session lifetime when `SESSION_TTL_SECONDS` is not set: 3 days.
pub const DEFAULT_SESSION_TTL_SECS: u64 = 3 * 24 * 60 * 60;
/// Shortest accepted `SESSION_TTL_SECONDS`.
pub const MIN_SESSION_TTL_SECS: u64 = 60;
/// Longest accepted `SESSION_TTL_SECONDS`: one year.
pub const MAX_SESSION_TTL_SECS: u64 = 365 * 24 * 60 * 60;
/// Time-out of one `jscode2session` request.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// A value that must never reach a log line or a response. `Debug` and
/// `Display` print `***`; [`Secret::expose`] is the only way to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A configuration value that stops the function at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// WeChat login configuration.
#[derive(Debug, Clone)]
pub struct WxConfig {
    /// The mini-program's AppID (`WX_APPID`).
    pub appid: String,
    /// The mini-program's AppSecret (`WX_SECRET`).
    pub secret: Secret,
    /// Base URL of the WeChat API (`WX_API_BASE`), without a trailing slash.
    pub api_base: String,
    /// Session lifetime (`SESSION_TTL_SECONDS`).
    pub session_ttl_secs: u64,
    /// Time-out of one `jscode2session` request; 5 s, settable only in code
    /// (tests shorten it).
    pub upstream_timeout: Duration,
}

impl WxConfig {
    /// A configuration with the default API base, session lifetime and
    /// time-out. Validates like [`WxConfig::from_env`].
    pub fn new(appid: &str, secret: &str) -> Result<Self, ConfigError> {
        Self::from_lookup(|key| match key {
            "WX_APPID" => Some(appid.to_owned()),
            "WX_SECRET" => Some(secret.to_owned()),
            _ => None,
        })
    }

    /// Reads and validates the environment once, at start-up.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads the keys through `lookup` (for tests and the dev server).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let appid = lookup("WX_APPID").unwrap_or_default().trim().to_owned();
        if appid.is_empty() {
            return Err(ConfigError(
                "WX_APPID is required: the mini-program's AppID (wx followed by 16 characters)"
                    .into(),
            ));
        }
        if appid.len() > 64 || !appid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ConfigError(format!(
                "WX_APPID={appid:?} is not an AppID: expected 1 to 64 ASCII letters and digits"
            )));
        }
        let secret = lookup("WX_SECRET").unwrap_or_default().trim().to_owned();
        if secret.is_empty() {
            return Err(ConfigError(
                "WX_SECRET is required: the mini-program's AppSecret".into(),
            ));
        }
        if secret.len() > 128 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            // Never echo the value of a secret, not even a wrong one.
            return Err(ConfigError(
                "WX_SECRET (value not shown) must be 1 to 128 visible ASCII characters".into(),
            ));
        }
        let api_base = match lookup("WX_API_BASE").map(|s| s.trim().to_owned()) {
            Some(base) if !base.is_empty() => base,
            _ => DEFAULT_API_BASE.to_owned(),
        };
        let api_base = api_base.trim_end_matches('/').to_owned();
        // Visible ASCII only: the URL parser would silently drop leading
        // control characters that the stored base still held (found by fuzzing).
        match reqwest::Url::parse(&api_base) {
            Ok(url)
                if api_base.bytes().all(|b| b.is_ascii_graphic())
                    && matches!(url.scheme(), "http" | "https")
                    && url.host().is_some()
                    && url.query().is_none() => {}
            _ => {
                return Err(ConfigError(format!(
                    "WX_API_BASE={api_base:?} is not an http(s) base URL such as {DEFAULT_API_BASE}"
                )));
            }
        }
        let session_ttl_secs = match lookup("SESSION_TTL_SECONDS").map(|s| s.trim().to_owned()) {
            Some(raw) if !raw.is_empty() => match raw.parse::<u64>() {
                Ok(n) if (MIN_SESSION_TTL_SECS..=MAX_SESSION_TTL_SECS).contains(&n) => n,
                _ => {
                    return Err(ConfigError(format!(
                        "SESSION_TTL_SECONDS={raw:?} is out of range: expected whole seconds \
                         from {MIN_SESSION_TTL_SECS} to {MAX_SESSION_TTL_SECS} \
                         (default {DEFAULT_SESSION_TTL_SECS})"
                    )));
                }
            },
            _ => DEFAULT_SESSION_TTL_SECS,
        };
        Ok(Self {
            appid,
            secret: Secret::new(secret),
            api_base,
            session_ttl_secs,
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
        })
    }

    /// The same configuration pointed at another API base (an emulator).
    pub fn with_api_base(mut self, api_base: &str) -> Self {
        self.api_base = api_base.trim_end_matches('/').to_owned();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn defaults_apply_and_the_secret_never_prints() {
        let config = WxConfig::from_lookup(lookup(&[
            ("WX_APPID", "wx1234567890abcdef"),
            ("WX_SECRET", "s3cr3t-value"),
        ]))
        .unwrap();
        assert_eq!(config.api_base, DEFAULT_API_BASE);
        assert_eq!(config.session_ttl_secs, 259_200);
        assert_eq!(config.upstream_timeout, Duration::from_secs(5));
        let shown = format!("{config:?} {}", config.secret);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("***"));
        assert_eq!(config.secret.expose(), "s3cr3t-value");
    }

    #[test]
    fn bad_values_are_named_with_their_range() {
        let ok = [("WX_APPID", "wxabc"), ("WX_SECRET", "sec")];
        let with = |k: &'static str, v: &'static str| {
            let mut vars = ok.to_vec();
            vars.push((k, v));
            vars
        };
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (vec![("WX_SECRET", "sec")], "WX_APPID is required"),
            (vec![("WX_APPID", "wxabc")], "WX_SECRET is required"),
            (
                vec![("WX_APPID", "wx-abc"), ("WX_SECRET", "sec")],
                "WX_APPID=\"wx-abc\"",
            ),
            (
                with("SESSION_TTL_SECONDS", "10"),
                "SESSION_TTL_SECONDS=\"10\"",
            ),
            (with("SESSION_TTL_SECONDS", "3d"), "from 60 to 31536000"),
            (with("WX_API_BASE", "ftp://x"), "WX_API_BASE=\"ftp://x\""),
            (
                with("WX_API_BASE", "\0http://127.0.0.1:9"),
                "WX_API_BASE=\"\\0http://127.0.0.1:9\"",
            ),
        ];
        for (vars, want) in cases {
            let err = WxConfig::from_lookup(lookup(&vars)).unwrap_err();
            assert!(err.0.contains(want), "{err} lacks {want}");
        }
        let err = WxConfig::from_lookup(lookup(&[("WX_APPID", "wxabc"), ("WX_SECRET", "a b")]))
            .unwrap_err();
        assert!(!err.0.contains("a b"), "{err}");
    }

    #[test]
    fn api_base_and_ttl_are_read() {
        let config = WxConfig::from_lookup(lookup(&[
            ("WX_APPID", "wxabc"),
            ("WX_SECRET", "sec"),
            ("WX_API_BASE", "http://127.0.0.1:9000/"),
            ("SESSION_TTL_SECONDS", "3600"),
        ]))
        .unwrap();
        assert_eq!(config.api_base, "http://127.0.0.1:9000");
        assert_eq!(config.session_ttl_secs, 3600);
    }
}
