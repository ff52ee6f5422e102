//! Secrets out of the environment: in AWS, the WeChat AppSecret and the
//! Tencent keys live in AWS Secrets Manager as one JSON secret per upstream
//! (`{"WX_SECRET": "…"}`, `{"TENCENT_SECRET_KEY": "…",
//! "CAPTCHA_APP_SECRET_KEY": "…"}`), and the function's environment holds
//! only the secret's ARN (`WX_SECRET_ARN`, `TENCENT_SECRET_ARN`). Anyone
//! allowed `lambda:GetFunctionConfiguration` reads the environment; only the
//! function's role may read the secret.
//!
//! A function fetches its secret once, at start-up (one `GetSecretValue`,
//! concurrently with the DynamoDB client's set-up), and its configuration
//! then reads the secret's keys as if they were variables. With no ARN set
//! (local runs, the dev server, the tests) the plain variables are read as
//! before. Setting both is refused, so that no one wonders which one won.
//!
//! The SDK reads the usual AWS settings, including
//! `AWS_ENDPOINT_URL_SECRETS_MANAGER` (the cold-start harness points it at a
//! loopback fake).

use std::collections::HashMap;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use crate::config::{ConfigError, Env};
use crate::secret::Secret;

/// One attempt, and the whole fetch with its retries: Secrets Manager
/// answers in milliseconds, and a function that cannot read its secret
/// cannot start anyway.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_ATTEMPTS: u32 = 3;
/// Longest ARN accepted.
const MAX_ARN_CHARS: usize = 2048;

/// Where one upstream's secrets live: the variable naming the secret's ARN,
/// and the keys of its JSON (each also the plain variable read when no ARN
/// is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretSource {
    pub arn_var: &'static str,
    pub keys: &'static [&'static str],
}

/// wx-login's: the AppSecret.
pub const WECHAT: SecretSource = SecretSource {
    arn_var: "WX_SECRET_ARN",
    keys: &["WX_SECRET"],
};

/// verify-ticket's: the API key secret and the captcha app's key.
pub const TENCENT: SecretSource = SecretSource {
    arn_var: "TENCENT_SECRET_ARN",
    keys: &["TENCENT_SECRET_KEY", "CAPTCHA_APP_SECRET_KEY"],
};

/// send-sms's: the API key secret of the same secret (its captcha app key
/// is not read).
pub const TENCENT_SMS: SecretSource = SecretSource {
    arn_var: "TENCENT_SECRET_ARN",
    keys: &["TENCENT_SECRET_KEY"],
};

/// The secrets of one source, fetched at start-up, or none (plain
/// variables).
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    values: Option<HashMap<&'static str, Secret>>,
}

impl Secrets {
    /// Secrets given directly (tests).
    pub fn from_values(values: HashMap<&'static str, Secret>) -> Self {
        Self {
            values: Some(values),
        }
    }

    /// Whether they came from Secrets Manager.
    pub fn fetched(&self) -> bool {
        self.values.is_some()
    }

    /// A lookup that answers the secret's keys from the fetched secret and
    /// every other key from `base` (what the configurations read through).
    pub fn over<'a>(
        &'a self,
        base: impl Fn(&str) -> Option<String> + 'a,
    ) -> impl Fn(&str) -> Option<String> + 'a {
        move |key| match &self.values {
            Some(values) => match values.get(key) {
                Some(secret) => Some(secret.expose().to_owned()),
                None => base(key),
            },
            None => base(key),
        }
    }
}

/// The ARN of `source`'s secret when its variable is set, checked: `None`
/// means plain variables. Refuses an ARN set together with any of the
/// plain variables it replaces.
pub fn secret_arn(
    source: &SecretSource,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, ConfigError> {
    let env = Env(lookup);
    let Some(arn) = env.get(source.arn_var) else {
        return Ok(None);
    };
    let valid = arn.len() <= MAX_ARN_CHARS
        && arn.bytes().all(|b| b.is_ascii_graphic())
        && arn.starts_with("arn:aws")
        && arn.split(':').nth(2) == Some("secretsmanager")
        && arn.split(':').nth(5) == Some("secret")
        && arn.split(':').count() >= 7;
    if !valid {
        return Err(ConfigError::env(
            source.arn_var,
            &arn,
            "not a Secrets Manager secret ARN \
             (arn:aws:secretsmanager:<region>:<account>:secret:<name>)",
        ));
    }
    if let Some(plain) = source.keys.iter().find(|key| env.get(key).is_some()) {
        return Err(ConfigError::env(
            source.arn_var,
            &arn,
            format!(
                "set either {} or {plain} (and the other keys of the secret), not both",
                source.arn_var
            ),
        ));
    }
    Ok(Some(arn))
}

/// The SDK configuration of the fetch: the default chain (region,
/// credentials, `AWS_ENDPOINT_URL_SECRETS_MANAGER`) with short time-outs.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .load()
        .await
}

/// `source`'s secrets for a Lambda: fetched once through `sdk` when its ARN
/// variable is set (through `lookup`), else none.
pub async fn load(
    source: &SecretSource,
    lookup: impl Fn(&str) -> Option<String>,
    sdk: impl std::future::Future<Output = SdkConfig>,
) -> Result<Secrets, ConfigError> {
    let Some(arn) = secret_arn(source, lookup)? else {
        return Ok(Secrets::default());
    };
    let client = aws_sdk_secretsmanager::Client::new(&sdk.await);
    fetch(source, &arn, &client).await
}

/// One `GetSecretValue` of `arn`, its JSON read for `source`'s keys. Errors
/// name the variable, the ARN and the key, never a value.
pub async fn fetch(
    source: &SecretSource,
    arn: &str,
    client: &aws_sdk_secretsmanager::Client,
) -> Result<Secrets, ConfigError> {
    let refused = |reason: String| ConfigError::Secret {
        key: source.arn_var,
        arn: arn.to_owned(),
        reason,
    };
    let output = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
            let service = e.as_service_error();
            let code = service.and_then(|s| s.code()).unwrap_or("no answer");
            let message = service.and_then(|s| s.message()).unwrap_or_default();
            refused(format!("GetSecretValue failed: {code} {message}"))
        })?;
    let Some(text) = output.secret_string() else {
        return Err(refused(
            "the secret holds binary data, not a JSON string".into(),
        ));
    };
    let expected = || {
        let keys: Vec<String> = source
            .keys
            .iter()
            .map(|k| format!("{k:?}: \"…\""))
            .collect();
        format!("expected a JSON object {{{}}}", keys.join(", "))
    };
    // Never echo the text: it is the secret.
    let Ok(serde_json::Value::Object(json)) = serde_json::from_str(text) else {
        return Err(refused(format!("the secret is not JSON: {}", expected())));
    };
    let mut values = HashMap::new();
    for key in source.keys {
        match json.get(*key).and_then(|v| v.as_str()) {
            Some(value) if !value.trim().is_empty() => {
                values.insert(*key, Secret::new(value.trim()));
            }
            _ => {
                return Err(refused(format!(
                    "the secret has no non-empty string {key:?}: {}",
                    expected()
                )));
            }
        }
    }
    Ok(Secrets::from_values(values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup_in as lookup;

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gatehouse/wx-AbCdEf";

    #[test]
    fn no_arn_means_plain_variables() {
        assert_eq!(secret_arn(&WECHAT, lookup(&[("WX_SECRET", "s")])), Ok(None));
        let secrets = Secrets::default();
        let read = secrets.over(lookup(&[("WX_SECRET", "plain")]));
        assert_eq!(read("WX_SECRET").as_deref(), Some("plain"));
        assert!(!secrets.fetched());
    }

    #[test]
    fn fetched_keys_win_and_the_rest_passes_through() {
        let secrets = Secrets::from_values(HashMap::from([("WX_SECRET", Secret::new("from-sm"))]));
        let read = secrets.over(lookup(&[("WX_APPID", "wxabc")]));
        assert_eq!(read("WX_SECRET").as_deref(), Some("from-sm"));
        assert_eq!(read("WX_APPID").as_deref(), Some("wxabc"));
        assert!(!format!("{secrets:?}").contains("from-sm"));
    }

    #[test]
    fn the_arn_is_checked_and_never_set_with_the_plain_variable() {
        assert_eq!(
            secret_arn(&WECHAT, lookup(&[("WX_SECRET_ARN", ARN)])),
            Ok(Some(ARN.to_owned()))
        );
        let both = secret_arn(
            &TENCENT,
            lookup(&[
                ("TENCENT_SECRET_ARN", ARN),
                ("CAPTCHA_APP_SECRET_KEY", "leaked-value"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            both.contains("TENCENT_SECRET_ARN") && both.contains("CAPTCHA_APP_SECRET_KEY"),
            "{both}"
        );
        assert!(!both.contains("leaked-value"), "{both}");
        for bad in [
            "gatehouse/wx",
            "arn:aws:s3:::bucket",
            "arn:aws:secretsmanager:us-east-1:1:parameter:x",
            "arn:aws:secretsmanager:us-east-1 :1:secret:x",
        ] {
            let err = secret_arn(&WECHAT, lookup(&[("WX_SECRET_ARN", bad)]))
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("WX_SECRET_ARN=") && err.contains("secret ARN"),
                "{err}"
            );
        }
    }
}
