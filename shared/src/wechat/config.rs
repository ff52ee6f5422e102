//! WeChat login configuration: `WX_APPID`, `WX_SECRET`, `WX_API_BASE` and
//! `SESSION_TTL_SECONDS`, read and validated once, at start-up.

use crate::config::{ConfigError, Env, process_env, secure_or_loopback};
use crate::secret::Secret;

/// The public WeChat API.
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";
/// Session lifetime when `SESSION_TTL_SECONDS` is not set: 3 days.
pub const DEFAULT_SESSION_TTL_SECS: u64 = 3 * 24 * 60 * 60;
/// Shortest accepted `SESSION_TTL_SECONDS`.
pub const MIN_SESSION_TTL_SECS: u64 = 60;
/// Longest accepted `SESSION_TTL_SECONDS`: one year.
pub const MAX_SESSION_TTL_SECS: u64 = 365 * 24 * 60 * 60;

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
        Self::from_lookup(process_env)
    }

    /// Reads the keys through `lookup` (for tests and the dev server).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let appid = env.require(
            "WX_APPID",
            "the mini-program's AppID (wx followed by 16 characters)",
        )?;
        if appid.len() > 64 || !appid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(ConfigError::env(
                "WX_APPID",
                &appid,
                "not an AppID: expected 1 to 64 ASCII letters and digits",
            ));
        }
        let secret = env.require("WX_SECRET", "the mini-program's AppSecret")?;
        if secret.len() > 128 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
            // Never echo the value of a secret, not even a wrong one.
            return Err(ConfigError::secret(
                "WX_SECRET",
                "must be 1 to 128 visible ASCII characters",
            ));
        }
        let api_base = env
            .get("WX_API_BASE")
            .unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
        let api_base = api_base.trim_end_matches('/').to_owned();
        // Visible ASCII only: the URL parser would silently drop leading
        // control characters that the stored base still held (found by fuzzing).
        match reqwest::Url::parse(&api_base) {
            Ok(url)
                if api_base.bytes().all(|b| b.is_ascii_graphic())
                    && secure_or_loopback(&url)
                    && url.host().is_some()
                    && url.query().is_none() => {}
            _ => {
                return Err(ConfigError::env(
                    "WX_API_BASE",
                    &api_base,
                    format!(
                        "not an https:// base URL such as {DEFAULT_API_BASE} \
                         (http:// only to localhost, 127.0.0.0/8 or [::1])"
                    ),
                ));
            }
        }
        let session_ttl_secs = match env.get("SESSION_TTL_SECONDS") {
            Some(raw) => match raw.parse::<u64>() {
                Ok(n) if (MIN_SESSION_TTL_SECS..=MAX_SESSION_TTL_SECS).contains(&n) => n,
                _ => {
                    return Err(ConfigError::env(
                        "SESSION_TTL_SECONDS",
                        &raw,
                        format!(
                            "out of range: expected whole seconds from {MIN_SESSION_TTL_SECS} \
                             to {MAX_SESSION_TTL_SECS} (default {DEFAULT_SESSION_TTL_SECS})"
                        ),
                    ));
                }
            },
            None => DEFAULT_SESSION_TTL_SECS,
        };
        Ok(Self {
            appid,
            secret: Secret::new(secret),
            api_base,
            session_ttl_secs,
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

    use crate::config::lookup_in as lookup;

    #[test]
    fn defaults_apply_and_the_secret_never_prints() {
        let config = WxConfig::from_lookup(lookup(&[
            ("WX_APPID", "wx1234567890abcdef"),
            ("WX_SECRET", "s3cr3t-value"),
        ]))
        .unwrap();
        assert_eq!(config.api_base, DEFAULT_API_BASE);
        assert_eq!(config.session_ttl_secs, 259_200);
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
            // The AppSecret travels in the query: never in the clear off
            // this machine.
            (
                with("WX_API_BASE", "http://api.weixin.qq.com"),
                "http:// only to localhost, 127.0.0.0/8 or [::1]",
            ),
            (
                with("WX_API_BASE", "http://192.168.1.5:8001"),
                "WX_API_BASE=\"http://192.168.1.5:8001\"",
            ),
            (
                with("WX_API_BASE", "\0http://127.0.0.1:9"),
                "WX_API_BASE=\"\\0http://127.0.0.1:9\"",
            ),
        ];
        for (vars, want) in cases {
            let err = WxConfig::from_lookup(lookup(&vars))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{err} lacks {want}");
        }
        let err = WxConfig::from_lookup(lookup(&[("WX_APPID", "wxabc"), ("WX_SECRET", "a b")]))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("a b"), "{err}");
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
