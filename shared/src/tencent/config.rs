//! Tencent Cloud credentials and the captcha app: `TENCENT_SECRET_ID`,
//! `TENCENT_SECRET_KEY`, `CAPTCHA_APP_ID`, `CAPTCHA_APP_SECRET_KEY`,
//! `TENCENT_CAPTCHA_ENDPOINT` and `TENCENT_REGION`, read and validated once;
//! and each scene's ticket policy, the `tencent` block of `CAPTCHA_CONFIG`
//! ([`TencentSettings`]).

use super::api::{Endpoint, EndpointVar};
use crate::config::blocks::Part;
use crate::config::{CAPTCHA_CONFIG, ConfigError, Entry, Env};
use crate::secret::Secret;

/// Where the API lives unless `TENCENT_CAPTCHA_ENDPOINT` says otherwise.
pub const DEFAULT_ENDPOINT: &str = "https://captcha.tencentcloudapi.com";
/// The variable of the Captcha API's endpoint.
const ENDPOINT: EndpointVar = EndpointVar {
    var: "TENCENT_CAPTCHA_ENDPOINT",
    default: DEFAULT_ENDPOINT,
};

/// Longest secret or id accepted from the environment.
const MAX_CONFIG_VALUE_CHARS: usize = 256;

/// Credentials and captcha app of the Tencent calls. `Debug` hides secrets.
#[derive(Clone, Debug)]
pub struct TencentConfig {
    /// `TENCENT_SECRET_ID` (an API key id of a CAM user).
    pub secret_id: String,
    /// `TENCENT_SECRET_KEY`.
    pub secret_key: Secret,
    /// `CAPTCHA_APP_ID`.
    pub captcha_app_id: u64,
    /// `CAPTCHA_APP_SECRET_KEY`.
    pub app_secret_key: Secret,
    /// `TENCENT_CAPTCHA_ENDPOINT`, default [`DEFAULT_ENDPOINT`]; `http` only
    /// for loopback tests and the emulator.
    pub endpoint: String,
    /// `TENCENT_REGION`: sent as `X-TC-Region` when set (the Captcha API
    /// does not need it).
    pub region: Option<String>,
}

impl TencentConfig {
    /// Reads and validates the configuration from any key → value source.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(get);
        let (secret_id, secret_key) = read_credentials(
            &env,
            "the API key id of a CAM user allowed to call the Captcha API",
        )?;
        let app_secret_key = required_token(
            &env,
            "CAPTCHA_APP_SECRET_KEY",
            "the AppSecretKey of the captcha app",
            true,
        )?;
        let app_id_text = required_token(
            &env,
            "CAPTCHA_APP_ID",
            "the CaptchaAppId of the Captcha console",
            false,
        )?;
        let captcha_app_id = app_id_text
            .parse::<u64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| {
                ConfigError::env(
                    "CAPTCHA_APP_ID",
                    &app_id_text,
                    "a positive integer (the CaptchaAppId of the Captcha console)",
                )
            })?;
        let region = env.get("TENCENT_REGION");
        if let Some(region) = &region {
            check_token("TENCENT_REGION", region, false)?;
        }
        Ok(Self {
            secret_id,
            secret_key,
            captcha_app_id,
            app_secret_key: Secret::new(app_secret_key),
            endpoint: ENDPOINT.read(&env)?,
            region,
        })
    }

    /// The configured endpoint.
    pub fn endpoint(&self) -> Endpoint<'_> {
        ENDPOINT.at(&self.endpoint)
    }
}

/// `TENCENT_SECRET_ID` (`id_what` says whose key it is, for a message) and
/// `TENCENT_SECRET_KEY`, checked.
pub fn read_credentials(
    env: &Env<impl Fn(&str) -> Option<String>>,
    id_what: &'static str,
) -> Result<(String, Secret), ConfigError> {
    let secret_id = required_token(env, "TENCENT_SECRET_ID", id_what, false)?;
    let secret_key = required_token(env, "TENCENT_SECRET_KEY", "the API key secret", true)?;
    Ok((secret_id, Secret::new(secret_key)))
}

/// A required variable of visible ASCII (a secret's value never shown).
fn required_token(
    env: &Env<impl Fn(&str) -> Option<String>>,
    key: &'static str,
    what: &'static str,
    secret: bool,
) -> Result<String, ConfigError> {
    let value = env.require(key, what)?;
    check_token(key, &value, secret)?;
    Ok(value)
}

/// Keys of a `tencent` block.
pub const TENCENT_KEYS: &[&str] = &[
    "enabled",
    "acceptEvil",
    "disasterTicket",
    "code21",
    "code26",
    "unreachable",
];

/// What a ticket Tencent could not vouch for comes to: refused (the
/// default), or admitted with a pass marked degraded, for the business
/// route to decide on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Degrade {
    #[default]
    Reject,
    Admit,
}

impl Degrade {
    fn parse(key: &Entry) -> Result<Self, ConfigError> {
        Ok(match key.one_of(&["reject", "admit"])? {
            "admit" => Degrade::Admit,
            _ => Degrade::Reject,
        })
    }
}

/// The answer to each way Tencent can fail to vouch for a ticket (the
/// `tencent` keys `disasterTicket`, `code21`, `code26`, `unreachable`;
/// Tencent's own advice is in `docs/tencent.md`, "When Tencent cannot vouch
/// for a ticket: the policy").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TencentPolicy {
    /// A disaster-recovery ticket (`trerror_…`, or the older `terror_…`),
    /// made by Tencent's front end when its script or service failed: not
    /// sent to Tencent, which cannot verify it.
    pub disaster_ticket: Degrade,
    /// `CaptchaCode` 21 for any other ticket (Tencent's risk control
    /// flagged the request).
    pub code21: Degrade,
    /// `CaptchaCode` 26 (Tencent's internal error).
    pub code26: Degrade,
    /// No verdict: a time-out, no connection, HTTP 5xx, or
    /// `Response.Error` `InternalError…`.
    pub unreachable: Degrade,
}

/// The ticket policy of one scene: its `tencent` block, merged key by key
/// like every scene key. `tencent.enabled` is the guard's
/// ([`crate::guard::config::GuardSettings`]); it is checked here with the
/// rest of the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TencentSettings {
    /// Whether a ticket with `EvilLevel` 100 still earns a pass
    /// (`tencent.acceptEvil`).
    pub accept_evil: bool,
    /// What a ticket Tencent could not vouch for comes to.
    pub policy: TencentPolicy,
}

impl Part for TencentSettings {
    const KEYS: &'static [&'static str] = &["tencent"];

    fn apply(&mut self, entry: &Entry) -> Result<(), ConfigError> {
        let (block, path) = entry.block(TENCENT_KEYS)?;
        for (key, value) in block {
            let key = Entry::new(CAPTCHA_CONFIG, &path, key, value);
            match key.name() {
                "enabled" => {
                    key.bool()?;
                }
                "acceptEvil" => self.accept_evil = key.bool()?,
                "disasterTicket" => self.policy.disaster_ticket = Degrade::parse(&key)?,
                "code21" => self.policy.code21 = Degrade::parse(&key)?,
                "code26" => self.policy.code26 = Degrade::parse(&key)?,
                "unreachable" => self.policy.unreachable = Degrade::parse(&key)?,
                _ => return Err(key.unknown(TENCENT_KEYS)),
            }
        }
        Ok(())
    }
}

fn check_token(key: &'static str, value: &str, secret: bool) -> Result<(), ConfigError> {
    if value.len() <= MAX_CONFIG_VALUE_CHARS && value.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    let allowed = "visible ASCII characters only, at most 256";
    Err(if secret {
        ConfigError::secret(key, allowed)
    } else {
        ConfigError::env(key, value, allowed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{assert_each_is_required, lookup_in as env};

    const GOOD: [(&str, &str); 4] = [
        ("TENCENT_SECRET_ID", "AKIDtest"),
        ("TENCENT_SECRET_KEY", "secret-key-value"),
        ("CAPTCHA_APP_ID", "190000000"),
        ("CAPTCHA_APP_SECRET_KEY", "app-secret-value"),
    ];

    #[test]
    fn config_reads_defaults_and_hides_secrets() {
        let config = TencentConfig::from_lookup(env(&GOOD)).unwrap();
        assert_eq!(config.captcha_app_id, 190_000_000);
        assert_eq!(config.endpoint, DEFAULT_ENDPOINT);
        assert_eq!(config.region, None);
        let (_, host) = config.endpoint().parts().unwrap();
        assert_eq!(host, "captcha.tencentcloudapi.com");
        let debug = format!("{config:?}");
        assert!(!debug.contains("secret-key-value"), "{debug}");
        assert!(!debug.contains("app-secret-value"), "{debug}");
        assert!(debug.contains("AKIDtest"));

        let mut with_endpoint = GOOD.to_vec();
        with_endpoint.push(("TENCENT_CAPTCHA_ENDPOINT", "http://127.0.0.1:9000"));
        let config = TencentConfig::from_lookup(env(&with_endpoint)).unwrap();
        assert_eq!(config.endpoint().parts().unwrap().1, "127.0.0.1:9000");
    }

    #[test]
    fn config_errors_name_the_key_and_never_a_secret() {
        assert_each_is_required(&GOOD, |pairs| TencentConfig::from_lookup(env(pairs)));
        let cases = [
            ("CAPTCHA_APP_ID", "abc", "CAPTCHA_APP_ID"),
            ("CAPTCHA_APP_ID", "0", "CAPTCHA_APP_ID"),
            ("CAPTCHA_APP_ID", "-5", "CAPTCHA_APP_ID"),
            (
                "TENCENT_CAPTCHA_ENDPOINT",
                "ftp://x",
                "TENCENT_CAPTCHA_ENDPOINT",
            ),
            (
                "TENCENT_CAPTCHA_ENDPOINT",
                "http://captcha.tencentcloudapi.com",
                "http:// only to localhost",
            ),
            (
                "TENCENT_CAPTCHA_ENDPOINT",
                "not a url",
                "TENCENT_CAPTCHA_ENDPOINT",
            ),
            (
                "TENCENT_CAPTCHA_ENDPOINT",
                "https://h/?a=1",
                "TENCENT_CAPTCHA_ENDPOINT",
            ),
            (
                "TENCENT_SECRET_KEY",
                "has space inside",
                "TENCENT_SECRET_KEY",
            ),
        ];
        for (key, value, named) in cases {
            let mut pairs: Vec<_> = GOOD.iter().copied().filter(|(k, _)| *k != key).collect();
            pairs.push((key, value));
            let err = TencentConfig::from_lookup(env(&pairs)).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(named), "{text}");
            if key == "TENCENT_SECRET_KEY" {
                assert!(!text.contains(value), "{text}");
            } else {
                assert!(text.contains(value), "{text}");
            }
        }
    }
}
