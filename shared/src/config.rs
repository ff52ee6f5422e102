//! Configuration, parsed and validated once at start-up: one error type for
//! every setting, the reading of environment variables, and one toolkit for
//! the JSON blocks (`CAPTCHA_CONFIG` and its `scene`, `rateLimit` … blocks);
//! [`blocks`] reads `CAPTCHA_CONFIG` once and hands each domain its part.
//!
//! Every refusal names the setting (with its path inside a JSON block, such
//! as `scene.login.size`), the value (never a secret's) and what is allowed,
//! so a deployment that cannot work stops before its first request.

use std::fmt::Display;
use std::ops::RangeInclusive;

use serde_json::{Map, Value};

pub mod blocks;

/// The captcha configuration (uni-captcha's `config.json`, with the
/// `rateLimit` blocks): inline JSON or a path.
pub const CAPTCHA_CONFIG: &str = "CAPTCHA_CONFIG";

/// Largest JSON configuration read, inline or from a file.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// A value shown in a message is cut to this many characters.
const SHOWN_CHARS: usize = 80;

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required environment variable is unset or blank.
    #[error("{key} is required: {what}")]
    Missing {
        key: &'static str,
        what: &'static str,
    },
    /// An environment variable's value is unusable. `shown` is the value in
    /// quotes, or `(value not shown)` for a secret.
    #[error("{key}={shown} is invalid: {allowed}")]
    Env {
        key: &'static str,
        shown: String,
        allowed: String,
    },
    /// The file a variable names cannot be read.
    #[error("{setting}: cannot read {path}: {reason}")]
    Read {
        setting: &'static str,
        path: String,
        reason: String,
    },
    /// A JSON configuration does not parse, or is not an object.
    #[error("{setting}: not valid JSON: {reason}")]
    Json {
        setting: &'static str,
        reason: String,
    },
    /// A key of a JSON configuration holds a value out of range.
    #[error("{setting}: {key} = {value}: {allowed}")]
    Invalid {
        setting: &'static str,
        key: String,
        value: String,
        allowed: String,
    },
    /// A JSON configuration holds a key nobody reads (a typo must not pass).
    #[error("{setting}: unknown key {key} (allowed: {allowed})")]
    UnknownKey {
        setting: &'static str,
        key: String,
        allowed: String,
    },
    /// `CAPTCHA_FONT` cannot be used.
    #[error("CAPTCHA_FONT: {0}")]
    Font(String),
    /// The Secrets Manager secret a variable names cannot be used (see
    /// [`crate::secrets`]): the reason names the JSON key, never a value.
    #[error("{key}={arn}: {reason}")]
    Secret {
        key: &'static str,
        arn: String,
        reason: String,
    },
    /// An HTTP client could not be built (no TLS roots, say).
    #[error("the HTTP client for {upstream} could not be built: {reason}")]
    Client {
        upstream: &'static str,
        reason: String,
    },
}

impl ConfigError {
    /// An environment variable that is not a secret, shown in quotes.
    pub fn env(key: &'static str, value: &str, allowed: impl Into<String>) -> Self {
        Self::Env {
            key,
            shown: format!("{:?}", shorten(value)),
            allowed: allowed.into(),
        }
    }

    /// A secret environment variable: its value is never shown.
    pub fn secret(key: &'static str, allowed: impl Into<String>) -> Self {
        Self::Env {
            key,
            shown: "(value not shown)".into(),
            allowed: allowed.into(),
        }
    }
}

/// Reads settings through a lookup (the process environment, or a map in
/// tests and the dev server). Values are trimmed; blank counts as unset.
pub struct Env<F>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn get(&self, key: &str) -> Option<String> {
        (self.0)(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// The value of `key`, or [`ConfigError::Missing`] saying `what` it is.
    pub fn require(&self, key: &'static str, what: &'static str) -> Result<String, ConfigError> {
        self.get(key).ok_or(ConfigError::Missing { key, what })
    }
}

/// For tests of a configuration read by `read` from the variables `good`:
/// without any one of them, the error is [`ConfigError::Missing`] naming it.
#[cfg(test)]
pub fn assert_each_is_required<T: std::fmt::Debug>(
    good: &[(&str, &str)],
    read: impl Fn(&[(&str, &str)]) -> Result<T, ConfigError>,
) {
    for (missing, _) in good {
        let pairs: Vec<_> = good.iter().copied().filter(|(k, _)| k != missing).collect();
        let err = read(&pairs).unwrap_err();
        assert!(
            matches!(err, ConfigError::Missing { key, .. } if key == *missing),
            "{err}"
        );
        assert!(err.to_string().contains(missing), "{err}");
    }
}

/// A lookup over fixed pairs, as tests and the dev server hand settings in.
pub fn lookup_in<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |key| {
        pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
    }
}

/// The process environment as a lookup.
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// The text of a JSON configuration given as inline JSON (starting with `{`)
/// or as a path to a file; at most [`MAX_CONFIG_BYTES`].
pub fn read_json_source(source: &'static str, value: &str) -> Result<String, ConfigError> {
    let trimmed = value.trim_start();
    if trimmed.starts_with('{') {
        if trimmed.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::Json {
                setting: source,
                reason: format!("inline {source} is larger than {MAX_CONFIG_BYTES} bytes"),
            });
        }
        return Ok(trimmed.to_owned());
    }
    let read_err = |reason: String| ConfigError::Read {
        setting: source,
        path: value.to_owned(),
        reason,
    };
    let file = std::fs::File::open(value).map_err(|e| read_err(e.to_string()))?;
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(file, MAX_CONFIG_BYTES + 1),
        &mut text,
    )
    .map_err(|e| read_err(e.to_string()))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(read_err(format!("larger than {MAX_CONFIG_BYTES} bytes")));
    }
    Ok(text)
}

/// Parses `json` as the top-level object of configuration `source`.
pub fn parse_object(source: &'static str, json: &str) -> Result<Map<String, Value>, ConfigError> {
    match serde_json::from_str(json) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ConfigError::Json {
            setting: source,
            reason: "the top level must be an object".into(),
        }),
        Err(e) => Err(ConfigError::Json {
            setting: source,
            reason: e.to_string(),
        }),
    }
}

/// One key of a JSON configuration, with its full path for messages.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    source: &'static str,
    /// The path of the block holding it: `""`, `scene.login.`, `rateLimit.` …
    path: &'a str,
    key: &'a str,
    value: &'a Value,
}

impl<'a> Entry<'a> {
    /// `key` with `value` in block `path` of configuration `source`.
    pub fn new(source: &'static str, path: &'a str, key: &'a str, value: &'a Value) -> Self {
        Self {
            source,
            path,
            key,
            value,
        }
    }

    /// The key's own name (`size`).
    pub fn name(&self) -> &'a str {
        self.key
    }

    /// The key's full path (`scene.login.size`).
    pub fn path(&self) -> String {
        format!("{}{}", self.path, self.key)
    }

    pub fn value(&self) -> &'a Value {
        self.value
    }

    /// The refusal of this key's value, saying what is `allowed`.
    pub fn invalid(&self, allowed: impl Display) -> ConfigError {
        ConfigError::Invalid {
            setting: self.source,
            key: self.path(),
            value: show(self.value),
            allowed: allowed.to_string(),
        }
    }

    /// The refusal of this key itself: nothing reads it.
    pub fn unknown(&self, allowed: &[&str]) -> ConfigError {
        ConfigError::UnknownKey {
            setting: self.source,
            key: self.path(),
            allowed: allowed.join(", "),
        }
    }

    /// A whole number inside `range` (`5` or `5.0`, not `"5"` or `5.5`).
    pub fn int_in<T>(&self, range: RangeInclusive<T>) -> Result<T, ConfigError>
    where
        T: TryFrom<i64> + Copy + PartialOrd + Display,
    {
        let allowed = format!("an integer from {} to {}", range.start(), range.end());
        self.value
            .as_i64()
            .or_else(|| {
                self.value
                    .as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                    .map(|f| f as i64)
            })
            .and_then(|n| T::try_from(n).ok())
            .filter(|n| range.contains(n))
            .ok_or_else(|| self.invalid(allowed))
    }

    /// Any number inside `range`.
    pub fn number_in(&self, range: RangeInclusive<f32>) -> Result<f32, ConfigError> {
        self.value
            .as_f64()
            .map(|f| f as f32)
            .filter(|f| range.contains(f))
            .ok_or_else(|| {
                self.invalid(format!(
                    "a number from {} to {}",
                    range.start(),
                    range.end()
                ))
            })
    }

    pub fn bool(&self) -> Result<bool, ConfigError> {
        self.value
            .as_bool()
            .ok_or_else(|| self.invalid("true or false"))
    }

    /// A string of at most `max_chars` characters.
    pub fn string(&self, max_chars: usize) -> Result<&'a str, ConfigError> {
        self.value
            .as_str()
            .filter(|s| s.chars().count() <= max_chars)
            .ok_or_else(|| self.invalid(format!("a string of at most {max_chars} characters")))
    }

    /// One of the strings `options` (the message lists them).
    pub fn one_of(&self, options: &[&str]) -> Result<&'a str, ConfigError> {
        self.value
            .as_str()
            .filter(|s| options.contains(s))
            .ok_or_else(|| {
                let quoted: Vec<String> = options.iter().map(|o| format!("{o:?}")).collect();
                self.invalid(format!("one of {}", quoted.join(", ")))
            })
    }

    /// This key's value as a nested block whose keys are `keys`; the
    /// returned path is the prefix of its own keys (`rateLimit.`).
    pub fn block(&self, keys: &[&str]) -> Result<(&'a Map<String, Value>, String), ConfigError> {
        match self.value {
            Value::Object(map) => Ok((map, format!("{}.", self.path()))),
            _ => Err(self.invalid(format!("an object with keys {}", keys.join(", ")))),
        }
    }
}

/// Whether `url` may carry secrets or signed requests: `https://`, or
/// `http://` to this machine only (`localhost`, 127.0.0.0/8, `[::1]`: the
/// emulators and the tests). A plain-HTTP upstream anywhere else would send
/// an AppSecret or a signature across the network in the clear.
pub fn secure_or_loopback(url: &reqwest::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => {
            let host = url.host_str().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

/// A value as shown in a message: its JSON, cut to a readable length.
fn show(value: &Value) -> String {
    shorten(&value.to_string())
}

fn shorten(text: &str) -> String {
    if text.chars().count() > SHOWN_CHARS {
        format!("{}…", text.chars().take(SHOWN_CHARS).collect::<String>())
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry_of(value: &Value) -> Entry<'_> {
        Entry::new("TEST", "scene.a.", "k", value)
    }

    #[test]
    fn integers_are_whole_and_in_range() {
        let ok = Value::from(5.0);
        assert_eq!(entry_of(&ok).int_in(1u32..=9), Ok(5));
        for bad in [
            Value::from(5.5),
            Value::from(-1),
            Value::from("5"),
            Value::from(10),
        ] {
            let err = entry_of(&bad).int_in(0u32..=9).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("TEST: scene.a.k") && text.contains("from 0 to 9"),
                "{text}"
            );
        }
    }

    #[test]
    fn long_values_are_shortened_and_secrets_never_shown() {
        let long = Value::from("x".repeat(500));
        let text = entry_of(&long).bool().unwrap_err().to_string();
        assert!(text.len() < 200 && text.contains('…'), "{text}");
        let secret = ConfigError::secret("WX_SECRET", "visible ASCII").to_string();
        assert_eq!(
            secret,
            "WX_SECRET=(value not shown) is invalid: visible ASCII"
        );
        let shown = ConfigError::env("PORT", "x y", "a port").to_string();
        assert_eq!(shown, "PORT=\"x y\" is invalid: a port");
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        let ok = |u: &str| secure_or_loopback(&reqwest::Url::parse(u).unwrap());
        for good in [
            "https://api.weixin.qq.com",
            "https://10.0.0.1",
            "http://127.0.0.1:8001",
            "http://127.8.9.10",
            "http://localhost:3000",
            "http://LOCALHOST",
            "http://[::1]:8002",
        ] {
            assert!(ok(good), "{good}");
        }
        for bad in [
            "http://api.weixin.qq.com",
            "http://10.0.0.1",
            "http://[::2]",
            "http://localhost.example.com",
            "http://127.0.0.1.nip.io",
            "ftp://127.0.0.1",
        ] {
            assert!(!ok(bad), "{bad}");
        }
    }

    #[test]
    fn env_values_are_trimmed_and_blank_is_unset() {
        let env = Env(|key: &str| match key {
            "A" => Some("  a ".to_owned()),
            "B" => Some("   ".to_owned()),
            _ => None,
        });
        assert_eq!(env.get("A").as_deref(), Some("a"));
        assert_eq!(env.get("B"), None);
        let err = env.require("B", "the b").unwrap_err();
        assert_eq!(err.to_string(), "B is required: the b");
    }
}
