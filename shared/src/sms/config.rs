//! The SMS domain's configuration, validated once at start-up:
//!
//! - [`SmsConfig`], the environment of `send-sms`: the Tencent API key
//!   (`TENCENT_SECRET_ID`, `TENCENT_SECRET_KEY`, the key from
//!   `TENCENT_SECRET_ARN` in Lambda), `SMS_SDK_APP_ID`, `SMS_SIGN_NAME`,
//!   `SMS_TEMPLATE_ID`, `SMS_REGION` (default `ap-guangzhou`) and
//!   `TENCENT_SMS_ENDPOINT` (`http://` only to loopback).
//! - [`SmsSettings`], one scene's `sms` block of `CAPTCHA_CONFIG`
//!   (`expiresSeconds`, `resendSeconds`, `maxAttempts`, `perMobilePerDay`,
//!   `dailyBudget`, `countries`), merged key by key like every scene key.

use std::ops::RangeInclusive;

use super::mobile::{MAINLAND, is_country_code};
use crate::config::blocks::{Part, PerScene};
use crate::config::{CAPTCHA_CONFIG, ConfigError, Entry, Env};
use crate::secret::Secret;
use crate::tencent::api::{Endpoint, EndpointVar};
use crate::tencent::config::read_credentials;

/// Where the SMS API lives unless `TENCENT_SMS_ENDPOINT` says otherwise.
pub const DEFAULT_ENDPOINT: &str = "https://sms.tencentcloudapi.com";
/// The variable that names the endpoint.
pub const ENDPOINT_VAR: &str = "TENCENT_SMS_ENDPOINT";
const ENDPOINT: EndpointVar = EndpointVar {
    var: ENDPOINT_VAR,
    default: DEFAULT_ENDPOINT,
};
/// The region unless `SMS_REGION` says otherwise (the API needs one:
/// `ap-guangzhou`, `ap-beijing` or `ap-nanjing` for mainland messages).
pub const DEFAULT_REGION: &str = "ap-guangzhou";
/// Longest signature accepted (Tencent's are 2 to 12 characters; a little
/// room for international ones).
pub const MAX_SIGN_NAME_CHARS: usize = 32;
/// Longest `SMS_SDK_APP_ID` and `SMS_TEMPLATE_ID` (digits).
pub const MAX_ID_DIGITS: usize = 20;

/// The account, app, signature and template of every `SendSms`. `Debug`
/// hides the key.
#[derive(Clone, Debug)]
pub struct SmsConfig {
    pub secret_id: String,
    pub secret_key: Secret,
    /// `SMS_SDK_APP_ID`, sent as the string it is (`1400006666`).
    pub sdk_app_id: String,
    /// `SMS_SIGN_NAME`: the signature's text (`腾讯云`), not its id.
    pub sign_name: String,
    /// `SMS_TEMPLATE_ID`: a template of two parameters, the code and its
    /// lifetime in minutes (`您的验证码为{1}，{2}分钟内有效`).
    pub template_id: String,
    /// `SMS_REGION`, sent as `X-TC-Region`.
    pub region: String,
    /// `TENCENT_SMS_ENDPOINT`.
    pub endpoint: String,
}

impl SmsConfig {
    /// Reads and validates the configuration from any key → value source.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(get);
        let (secret_id, secret_key) = read_credentials(
            &env,
            "the API key id of a CAM user allowed to call the SMS API (sms:SendSms)",
        )?;
        let digits = |key: &'static str, what: &'static str| {
            let value = env.require(key, what)?;
            let valid = (1..=MAX_ID_DIGITS).contains(&value.len())
                && value.bytes().all(|b| b.is_ascii_digit());
            if !valid {
                return Err(ConfigError::env(
                    key,
                    &value,
                    format!("1 to {MAX_ID_DIGITS} digits ({what})"),
                ));
            }
            Ok(value)
        };
        let sdk_app_id = digits(
            "SMS_SDK_APP_ID",
            "the SdkAppId of the SMS console's application, e.g. 1400006666",
        )?;
        let template_id = digits(
            "SMS_TEMPLATE_ID",
            "the id of an approved template whose parameters are the code and its minutes",
        )?;
        let sign_name = env.require(
            "SMS_SIGN_NAME",
            "the text of an approved SMS signature (not its id), e.g. 腾讯云",
        )?;
        let chars = sign_name.chars().count();
        if chars > MAX_SIGN_NAME_CHARS || sign_name.chars().any(char::is_control) {
            return Err(ConfigError::env(
                "SMS_SIGN_NAME",
                &sign_name,
                format!("at most {MAX_SIGN_NAME_CHARS} characters, none a control character"),
            ));
        }
        let region = env
            .get("SMS_REGION")
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let valid_region = (1..=32).contains(&region.len())
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_region {
            return Err(ConfigError::env(
                "SMS_REGION",
                &region,
                "a region of the SMS API: ap-guangzhou, ap-beijing or ap-nanjing",
            ));
        }
        Ok(Self {
            secret_id,
            secret_key,
            sdk_app_id,
            sign_name,
            template_id,
            region,
            endpoint: ENDPOINT.read(&env)?,
        })
    }

    /// The configured endpoint.
    pub fn endpoint(&self) -> Endpoint<'_> {
        ENDPOINT.at(&self.endpoint)
    }
}

/// Keys of an `sms` block.
pub const SMS_KEYS: &[&str] = &[
    "expiresSeconds",
    "resendSeconds",
    "maxAttempts",
    "perMobilePerDay",
    "dailyBudget",
    "countries",
];
/// How long a code may live (`expiresSeconds`).
pub const EXPIRES_RANGE: RangeInclusive<u64> = 60..=3600;
/// How long a number waits between two sends (`resendSeconds`).
pub const RESEND_RANGE: RangeInclusive<u64> = 10..=3600;
/// Wrong codes a code takes before it is void (`maxAttempts`; a DynamoDB
/// row keeps one attribute per attempt, so at most 10).
pub const MAX_ATTEMPTS_RANGE: RangeInclusive<u32> = 1..=10;
/// Sends per number and China day (`perMobilePerDay`; 0: no limit).
pub const PER_MOBILE_RANGE: RangeInclusive<u64> = 0..=1000;
/// Messages per China day of a scene (`dailyBudget`): the bill's bound,
/// always on.
pub const BUDGET_RANGE: RangeInclusive<u64> = 1..=100_000_000;
/// Most country codes a scene lists.
pub const MAX_COUNTRIES: usize = 50;

/// The SMS settings of one scene.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsSettings {
    pub expires_seconds: u64,
    pub resend_seconds: u64,
    pub max_attempts: u32,
    pub per_mobile_per_day: u64,
    pub daily_budget: u64,
    /// Country calling codes a number may have (digits, `"86"`).
    pub countries: Vec<String>,
}

impl Default for SmsSettings {
    /// A code lives 5 minutes, a number waits a minute between sends and
    /// gets at most 10 a day, 5 wrong codes void one, 10,000 messages a
    /// day in all (about ¥450 at Tencent's list price), mainland numbers
    /// only.
    fn default() -> Self {
        Self {
            expires_seconds: 300,
            resend_seconds: 60,
            max_attempts: 5,
            per_mobile_per_day: 10,
            daily_budget: 10_000,
            countries: vec![MAINLAND.to_owned()],
        }
    }
}

impl SmsSettings {
    /// The code's lifetime in whole minutes, rounded up: the template's
    /// second parameter.
    pub fn minutes(&self) -> u64 {
        self.expires_seconds.div_ceil(60)
    }
}

impl Part for SmsSettings {
    const KEYS: &'static [&'static str] = &["sms"];

    fn apply(&mut self, entry: &Entry) -> Result<(), ConfigError> {
        let (block, path) = entry.block(SMS_KEYS)?;
        for (key, value) in block {
            let key = Entry::new(CAPTCHA_CONFIG, &path, key, value);
            match key.name() {
                "expiresSeconds" => self.expires_seconds = key.int_in(EXPIRES_RANGE)?,
                "resendSeconds" => self.resend_seconds = key.int_in(RESEND_RANGE)?,
                "maxAttempts" => self.max_attempts = key.int_in(MAX_ATTEMPTS_RANGE)?,
                "perMobilePerDay" => self.per_mobile_per_day = key.int_in(PER_MOBILE_RANGE)?,
                "dailyBudget" => self.daily_budget = key.int_in(BUDGET_RANGE)?,
                "countries" => self.countries = countries(&key)?,
                _ => return Err(key.unknown(SMS_KEYS)),
            }
        }
        Ok(())
    }

    fn check(&self, path: &str) -> Result<(), ConfigError> {
        if self.resend_seconds > self.expires_seconds {
            return Err(ConfigError::Invalid {
                setting: CAPTCHA_CONFIG,
                key: format!("{path}sms.resendSeconds"),
                value: self.resend_seconds.to_string(),
                allowed: format!(
                    "must be <= {path}sms.expiresSeconds ({})",
                    self.expires_seconds
                ),
            });
        }
        Ok(())
    }
}

/// A `countries` list: 1 to [`MAX_COUNTRIES`] country calling codes, none
/// the beginning of another (so a number's country is never ambiguous).
fn countries(key: &Entry) -> Result<Vec<String>, ConfigError> {
    let allowed = "a list of 1 to 50 country calling codes as strings of digits, \
                   e.g. [\"86\", \"852\"], none the beginning of another";
    let items = key
        .value()
        .as_array()
        .filter(|items| (1..=MAX_COUNTRIES).contains(&items.len()))
        .ok_or_else(|| key.invalid(allowed))?;
    let mut codes: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let code = item
            .as_str()
            .filter(|code| is_country_code(code))
            .ok_or_else(|| key.invalid(allowed))?;
        if codes
            .iter()
            .any(|c| c.starts_with(code) || code.starts_with(c.as_str()))
        {
            return Err(key.invalid(allowed));
        }
        codes.push(code.to_owned());
    }
    Ok(codes)
}

/// The SMS settings of every scene: a scene without a block gets the
/// root's, and counts in the root's bucket.
pub type SmsScenes = PerScene<SmsSettings>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::blocks::SceneBlocks;
    use crate::config::{assert_each_is_required, lookup_in as env};

    const GOOD: [(&str, &str); 5] = [
        ("TENCENT_SECRET_ID", "AKIDtest"),
        ("TENCENT_SECRET_KEY", "secret-key-value"),
        ("SMS_SDK_APP_ID", "1400006666"),
        ("SMS_SIGN_NAME", "腾讯云"),
        ("SMS_TEMPLATE_ID", "1110"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Result<SmsConfig, ConfigError> {
        let mut pairs: Vec<_> = GOOD
            .iter()
            .copied()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e == k))
            .collect();
        pairs.extend_from_slice(extra);
        SmsConfig::from_lookup(env(&pairs))
    }

    #[test]
    fn config_reads_defaults_and_hides_the_key() {
        let config = with(&[]).unwrap();
        assert_eq!(config.region, DEFAULT_REGION);
        assert_eq!(
            config.endpoint().parts().unwrap().1,
            "sms.tencentcloudapi.com"
        );
        assert_eq!(config.sign_name, "腾讯云");
        let debug = format!("{config:?}");
        assert!(!debug.contains("secret-key-value") && debug.contains("AKIDtest"));
        let local = with(&[
            (ENDPOINT_VAR, "http://127.0.0.1:9100"),
            ("SMS_REGION", "ap-beijing"),
        ])
        .unwrap();
        assert_eq!(local.endpoint().parts().unwrap().1, "127.0.0.1:9100");
        assert_eq!(local.region, "ap-beijing");
    }

    #[test]
    fn config_errors_name_key_and_value() {
        assert_each_is_required(&GOOD, |pairs| SmsConfig::from_lookup(env(pairs)));
        for (key, value) in [
            ("SMS_SDK_APP_ID", "14000x"),
            ("SMS_SDK_APP_ID", "123456789012345678901"),
            ("SMS_TEMPLATE_ID", "t-1"),
            ("SMS_SIGN_NAME", "签\t名"),
            (
                "SMS_SIGN_NAME",
                "一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三",
            ),
            ("SMS_REGION", "AP_GUANGZHOU"),
            (ENDPOINT_VAR, "http://sms.tencentcloudapi.com"),
        ] {
            let text = with(&[(key, value)]).unwrap_err().to_string();
            assert!(
                text.starts_with(&format!("{key}=")),
                "{key}={value}: {text}"
            );
        }
        let text = with(&[("TENCENT_SECRET_KEY", "has space")])
            .unwrap_err()
            .to_string();
        assert!(!text.contains("has space"), "{text}");
    }

    fn scenes(json: &str) -> Result<SmsScenes, ConfigError> {
        SceneBlocks::from_json(json).unwrap().per_scene()
    }

    #[test]
    fn settings_default_and_merge_key_by_key() {
        let root = scenes("{}").unwrap();
        assert_eq!(*root.root(), SmsSettings::default());
        assert_eq!(root.root().minutes(), 5);
        let parsed = scenes(
            r#"{"sms": {"dailyBudget": 500, "countries": ["86", "852"]},
                "scene": {"login": {"sms": {"expiresSeconds": 90, "resendSeconds": 30}}}}"#,
        )
        .unwrap();
        let login = parsed.scene("login");
        assert_eq!((login.expires_seconds, login.resend_seconds), (90, 30));
        assert_eq!(login.minutes(), 2, "90 s is shown as 2 minutes");
        assert_eq!(login.daily_budget, 500, "inherited from root");
        assert_eq!(login.countries, ["86", "852"]);
        assert_eq!(parsed.scene("other").expires_seconds, 300);
    }

    #[test]
    fn bad_settings_name_key_value_and_range() {
        for (json, key) in [
            (r#"{"sms": 1}"#, "sms"),
            (r#"{"sms": {"expiresSeconds": 59}}"#, "sms.expiresSeconds"),
            (r#"{"sms": {"resendSeconds": 5}}"#, "sms.resendSeconds"),
            (r#"{"sms": {"maxAttempts": 0}}"#, "sms.maxAttempts"),
            (r#"{"sms": {"maxAttempts": 11}}"#, "sms.maxAttempts"),
            (r#"{"sms": {"perMobilePerDay": -1}}"#, "sms.perMobilePerDay"),
            (r#"{"sms": {"dailyBudget": 0}}"#, "sms.dailyBudget"),
            (r#"{"sms": {"countries": []}}"#, "sms.countries"),
            (r#"{"sms": {"countries": "86"}}"#, "sms.countries"),
            (r#"{"sms": {"countries": [86]}}"#, "sms.countries"),
            (r#"{"sms": {"countries": ["+86"]}}"#, "sms.countries"),
            (r#"{"sms": {"countries": ["1", "12"]}}"#, "sms.countries"),
            (r#"{"sms": {"countries": ["86", "86"]}}"#, "sms.countries"),
            (r#"{"sms": {"budget": 5}}"#, "sms.budget"),
            (
                r#"{"scene": {"pay": {"sms": {"resendSeconds": 600}}}}"#,
                "scene.pay.sms.resendSeconds",
            ),
        ] {
            let text = scenes(json).unwrap_err().to_string();
            assert!(
                text.starts_with("CAPTCHA_CONFIG: ") && text.contains(key),
                "{json}: {text}"
            );
        }
    }
}
