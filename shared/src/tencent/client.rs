//! The Tencent Cloud Captcha API client: configuration, one signed
//! `DescribeCaptchaResult` / `DescribeCaptchaMiniResult` call, and the
//! answer read with a size cap.

use std::fmt;
use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::tc3;

/// Where the API lives unless `TENCENT_CAPTCHA_ENDPOINT` says otherwise.
pub const DEFAULT_ENDPOINT: &str = "https://captcha.tencentcloudapi.com";
/// The product name in the credential scope.
pub const SERVICE: &str = "captcha";
/// The API version of the Captcha product.
pub const API_VERSION: &str = "2019-07-22";
/// `CaptchaType` is fixed at 9.
pub const CAPTCHA_TYPE: u64 = 9;
/// Web and app tickets (with `randstr`).
pub const ACTION_RESULT: &str = "DescribeCaptchaResult";
/// Mini-program tickets (no `randstr`).
pub const ACTION_MINI_RESULT: &str = "DescribeCaptchaMiniResult";
/// The request and body time-out of every call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The body of an answer is read at most this far; a longer one is an
/// upstream error.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The content type sent and signed.
pub const CONTENT_TYPE_JSON: &str = "application/json; charset=utf-8";

/// Longest secret or id accepted from the environment.
const MAX_CONFIG_VALUE_CHARS: usize = 256;

/// Credentials and captcha app of the Tencent calls. `Debug` hides secrets.
#[derive(Clone)]
pub struct TencentConfig {
    /// `TENCENT_SECRET_ID` (an API key id of a CAM user).
    pub secret_id: String,
    /// `TENCENT_SECRET_KEY`. Secret.
    pub secret_key: String,
    /// `CAPTCHA_APP_ID`.
    pub captcha_app_id: u64,
    /// `CAPTCHA_APP_SECRET_KEY`. Secret.
    pub app_secret_key: String,
    /// `TENCENT_CAPTCHA_ENDPOINT`, default [`DEFAULT_ENDPOINT`]; `http` only
    /// for loopback tests and the emulator.
    pub endpoint: String,
    /// `TENCENT_REGION`: sent as `X-TC-Region` when set (the Captcha API
    /// does not need it).
    pub region: Option<String>,
}

impl fmt::Debug for TencentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TencentConfig")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"<redacted>")
            .field("captcha_app_id", &self.captcha_app_id)
            .field("app_secret_key", &"<redacted>")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish()
    }
}

/// A configuration value that is missing or out of range. Names the key;
/// shows the value only for keys that are not secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TencentConfigError {
    #[error("{key} is not set")]
    Missing { key: &'static str },
    #[error("{key} = {shown:?} is invalid: {expected}")]
    Invalid {
        key: &'static str,
        /// The value, or `<redacted>` for a secret.
        shown: String,
        expected: &'static str,
    },
    #[error("the HTTP client could not be built: {0}")]
    Client(String),
}

impl TencentConfig {
    /// Reads and validates the configuration from the process environment.
    pub fn from_env() -> Result<Self, TencentConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads and validates the configuration from any key → value source.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, TencentConfigError> {
        let required = |key: &'static str, secret: bool| -> Result<String, TencentConfigError> {
            let value = get(key)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or(TencentConfigError::Missing { key })?;
            check_token(key, &value, secret)?;
            Ok(value)
        };
        let secret_id = required("TENCENT_SECRET_ID", false)?;
        let secret_key = required("TENCENT_SECRET_KEY", true)?;
        let app_secret_key = required("CAPTCHA_APP_SECRET_KEY", true)?;
        let app_id_text = required("CAPTCHA_APP_ID", false)?;
        let captcha_app_id = app_id_text.parse::<u64>().ok().filter(|id| *id > 0).ok_or(
            TencentConfigError::Invalid {
                key: "CAPTCHA_APP_ID",
                shown: app_id_text,
                expected: "a positive integer (the CaptchaAppId of the Captcha console)",
            },
        )?;
        let endpoint = get("TENCENT_CAPTCHA_ENDPOINT")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let region = get("TENCENT_REGION")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        if let Some(region) = &region {
            check_token("TENCENT_REGION", region, false)?;
        }
        let config = Self {
            secret_id,
            secret_key,
            captcha_app_id,
            app_secret_key,
            endpoint,
            region,
        };
        config.endpoint_parts()?;
        Ok(config)
    }

    /// The endpoint URL and the `Host` header value that goes with it.
    pub fn endpoint_parts(&self) -> Result<(Url, String), TencentConfigError> {
        let invalid = || TencentConfigError::Invalid {
            key: "TENCENT_CAPTCHA_ENDPOINT",
            shown: self.endpoint.clone(),
            expected: "an http(s) URL with a host and no query, e.g. https://captcha.tencentcloudapi.com",
        };
        let url = Url::parse(&self.endpoint).map_err(|_| invalid())?;
        if !matches!(url.scheme(), "http" | "https")
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(invalid());
        }
        let host = url.host_str().ok_or_else(invalid)?;
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok((url, host))
    }
}

fn check_token(key: &'static str, value: &str, secret: bool) -> Result<(), TencentConfigError> {
    if value.len() <= MAX_CONFIG_VALUE_CHARS && value.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    Err(TencentConfigError::Invalid {
        key,
        shown: if secret {
            "<redacted>".to_owned()
        } else {
            value.chars().take(64).collect()
        },
        expected: "visible ASCII characters only, at most 256",
    })
}

/// The request body of both actions. `Randstr` only for `DescribeCaptchaResult`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeRequest<'a> {
    captcha_type: u64,
    ticket: &'a str,
    user_ip: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    randstr: Option<&'a str>,
    captcha_app_id: u64,
    app_secret_key: &'a str,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: ResponseBody,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ResponseBody {
    error: Option<ApiErrorBody>,
    captcha_code: Option<i64>,
    captcha_msg: Option<String>,
    evil_level: Option<i64>,
    request_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApiErrorBody {
    code: String,
}

/// Tencent's verdict on a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptchaVerdict {
    pub captcha_code: i64,
    pub captcha_msg: String,
    pub evil_level: Option<i64>,
    pub request_id: String,
}

/// Why a call gave no verdict. Carries only what may be logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("time-out after {0:?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("answer larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("answer is not the expected JSON")]
    NotJson,
    #[error("Tencent error {code} (RequestId {request_id})")]
    Api { code: String, request_id: String },
}

/// The HTTP client of the Captcha API, built once.
#[derive(Clone)]
pub struct CaptchaClient {
    http: reqwest::Client,
    url: Url,
    host: String,
    timeout: Duration,
}

impl CaptchaClient {
    /// A client for `config`'s endpoint with the given time-out for the whole
    /// call (connect, send, read).
    pub fn new(config: &TencentConfig, timeout: Duration) -> Result<Self, TencentConfigError> {
        let (url, host) = config.endpoint_parts()?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| TencentConfigError::Client(err.to_string()))?;
        Ok(Self {
            http,
            url,
            host,
            timeout,
        })
    }

    /// Asks Tencent about `ticket`: `DescribeCaptchaResult` when `randstr`
    /// is given, `DescribeCaptchaMiniResult` when not. `timestamp` is epoch
    /// seconds.
    pub async fn describe(
        &self,
        config: &TencentConfig,
        ticket: &str,
        randstr: Option<&str>,
        user_ip: &str,
        timestamp: i64,
    ) -> Result<CaptchaVerdict, UpstreamError> {
        let action = if randstr.is_some() {
            ACTION_RESULT
        } else {
            ACTION_MINI_RESULT
        };
        let payload = serde_json::to_vec(&DescribeRequest {
            captcha_type: CAPTCHA_TYPE,
            ticket,
            user_ip,
            randstr,
            captcha_app_id: config.captcha_app_id,
            app_secret_key: &config.app_secret_key,
        })
        .expect("a struct of strings and integers serialises");
        let signed_headers = [
            (CONTENT_TYPE.as_str(), CONTENT_TYPE_JSON),
            (HOST.as_str(), self.host.as_str()),
            ("x-tc-action", action),
        ];
        let signed = tc3::sign(
            &config.secret_key,
            &tc3::SignInput {
                method: "POST",
                uri: "/",
                query: "",
                headers: &signed_headers,
                payload: &payload,
                service: SERVICE,
                timestamp,
            },
        );
        let mut request = self
            .http
            .post(self.url.clone())
            .header(HOST, &self.host)
            .header(CONTENT_TYPE, CONTENT_TYPE_JSON)
            .header("X-TC-Action", action)
            .header("X-TC-Version", API_VERSION)
            .header("X-TC-Timestamp", timestamp.to_string())
            .header(
                AUTHORIZATION,
                signed.authorization(&config.secret_id, SERVICE),
            );
        if let Some(region) = &config.region {
            request = request.header("X-TC-Region", region);
        }
        let mut response = request
            .body(payload)
            .send()
            .await
            .map_err(|err| self.transport_error(&err))?;
        let status = response.status();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Err(UpstreamError::TooLarge);
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(err) => return Err(self.transport_error(&err)),
            }
        }
        if !status.is_success() {
            return Err(UpstreamError::Status(status.as_u16()));
        }
        parse_answer(&body)
    }

    fn transport_error(&self, err: &reqwest::Error) -> UpstreamError {
        if err.is_timeout() {
            UpstreamError::Timeout(self.timeout)
        } else {
            // reqwest's message names the URL (no secret: the endpoint has no
            // credentials, they travel in headers) and the cause.
            UpstreamError::Connect(error_chain(err))
        }
    }
}

/// An error and its causes on one line, for the log.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Reads Tencent's answer: a verdict, or the `Response.Error` it carries.
pub(crate) fn parse_answer(body: &[u8]) -> Result<CaptchaVerdict, UpstreamError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|_| UpstreamError::NotJson)?;
    let answer = envelope.response;
    let request_id = answer.request_id.unwrap_or_default();
    if let Some(error) = answer.error {
        return Err(UpstreamError::Api {
            code: error.code,
            request_id,
        });
    }
    let captcha_code = answer.captcha_code.ok_or(UpstreamError::NotJson)?;
    Ok(CaptchaVerdict {
        captcha_code,
        captcha_msg: answer.captcha_msg.unwrap_or_default(),
        evil_level: answer.evil_level,
        request_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |key| map.get(key).cloned()
    }

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
        let (_, host) = config.endpoint_parts().unwrap();
        assert_eq!(host, "captcha.tencentcloudapi.com");
        let debug = format!("{config:?}");
        assert!(!debug.contains("secret-key-value"), "{debug}");
        assert!(!debug.contains("app-secret-value"), "{debug}");
        assert!(debug.contains("AKIDtest"));

        let mut with_endpoint = GOOD.to_vec();
        with_endpoint.push(("TENCENT_CAPTCHA_ENDPOINT", "http://127.0.0.1:9000"));
        let config = TencentConfig::from_lookup(env(&with_endpoint)).unwrap();
        assert_eq!(config.endpoint_parts().unwrap().1, "127.0.0.1:9000");
    }

    #[test]
    fn config_errors_name_the_key_and_never_a_secret() {
        for missing in GOOD.map(|(k, _)| k) {
            let pairs: Vec<_> = GOOD
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = TencentConfig::from_lookup(env(&pairs)).unwrap_err();
            assert_eq!(err, TencentConfigError::Missing { key: missing });
            assert!(err.to_string().contains(missing));
        }
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

    #[test]
    fn request_body_has_integer_ids_and_randstr_only_when_given() {
        let body = serde_json::to_value(DescribeRequest {
            captcha_type: CAPTCHA_TYPE,
            ticket: "t",
            user_ip: "1.2.3.4",
            randstr: None,
            captcha_app_id: 7,
            app_secret_key: "k",
        })
        .unwrap();
        assert_eq!(
            body,
            serde_json::json!({"CaptchaType": 9, "Ticket": "t", "UserIp": "1.2.3.4",
                               "CaptchaAppId": 7, "AppSecretKey": "k"})
        );
    }

    #[test]
    fn answers_parse_into_verdicts_or_errors() {
        let ok = br#"{"Response":{"CaptchaCode":1,"CaptchaMsg":"OK","EvilLevel":0,"GetCaptchaTime":1,"RequestId":"r1"}}"#;
        assert_eq!(
            parse_answer(ok).unwrap(),
            CaptchaVerdict {
                captcha_code: 1,
                captcha_msg: "OK".into(),
                evil_level: Some(0),
                request_id: "r1".into()
            }
        );
        let mini = br#"{"Response":{"CaptchaCode":7,"CaptchaMsg":"x","RequestId":"r2"}}"#;
        assert_eq!(parse_answer(mini).unwrap().evil_level, None);
        let err = br#"{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"m"},"RequestId":"r3"}}"#;
        assert_eq!(
            parse_answer(err).unwrap_err(),
            UpstreamError::Api {
                code: "AuthFailure.SignatureFailure".into(),
                request_id: "r3".into()
            }
        );
        for bad in [&b"<html>"[..], b"{}", b"{\"Response\":{}}", b""] {
            assert_eq!(parse_answer(bad).unwrap_err(), UpstreamError::NotJson);
        }
    }
}
