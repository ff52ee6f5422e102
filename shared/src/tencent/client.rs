//! The Tencent Cloud Captcha API client: one signed
//! `DescribeCaptchaResult` / `DescribeCaptchaMiniResult` call (over
//! [`super::api`]) and its verdict.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::api::{self, ApiClient, Credentials};
pub use super::api::{CONTENT_TYPE_JSON, DEFAULT_TIMEOUT, MAX_RESPONSE_BYTES, UpstreamError};
use super::config::TencentConfig;
use crate::config::ConfigError;

/// The product name in the credential scope.
pub const SERVICE: &str = "captcha";
/// The API version of the Captcha product.
pub const API_VERSION: &str = "2019-07-22";
/// `CaptchaType` is fixed at 9.
pub const CAPTCHA_TYPE: u64 = 9;
/// The API action of a ticket: web and app tickets come with a `randstr`,
/// mini-program tickets without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `DescribeCaptchaResult` (web and app).
    Result,
    /// `DescribeCaptchaMiniResult` (the captcha mini-program).
    MiniResult,
}

impl Action {
    /// The action for a ticket with or without its `randstr`.
    pub fn for_randstr(randstr: Option<&str>) -> Self {
        if randstr.is_some() {
            Self::Result
        } else {
            Self::MiniResult
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Result => "DescribeCaptchaResult",
            Self::MiniResult => "DescribeCaptchaMiniResult",
        }
    }

    /// The action as the API names it (no region: the configuration's).
    const fn api(self) -> api::Action<'static> {
        api::Action {
            service: SERVICE,
            version: API_VERSION,
            name: self.as_str(),
            region: None,
        }
    }
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

/// The fields of an answer (beside `RequestId`, see [`api::read_answer`]).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Verdict {
    captcha_code: i64,
    captcha_msg: Option<String>,
    evil_level: Option<i64>,
}

/// Tencent's verdict on a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptchaVerdict {
    pub captcha_code: i64,
    pub captcha_msg: String,
    pub evil_level: Option<i64>,
    pub request_id: String,
}

/// The HTTP client of the Captcha API, built once.
#[derive(Clone)]
pub struct CaptchaClient {
    api: ApiClient,
}

impl CaptchaClient {
    /// A client for `config`'s endpoint with `timeout` for the whole call
    /// (connect, send, read; [`DEFAULT_TIMEOUT`] unless the service's
    /// options say otherwise).
    pub fn new(config: &TencentConfig, timeout: Duration) -> Result<Self, ConfigError> {
        let api = ApiClient::new(&config.endpoint())?.with_timeout(timeout);
        Ok(Self { api })
    }

    /// Asks Tencent about `ticket` with `action` (see [`Action::for_randstr`]).
    /// `timestamp` is epoch seconds.
    pub async fn describe(
        &self,
        config: &TencentConfig,
        action: Action,
        ticket: &str,
        randstr: Option<&str>,
        user_ip: &str,
        timestamp: i64,
    ) -> Result<CaptchaVerdict, UpstreamError> {
        let request = DescribeRequest {
            captcha_type: CAPTCHA_TYPE,
            ticket,
            user_ip,
            randstr,
            captcha_app_id: config.captcha_app_id,
            app_secret_key: config.app_secret_key.expose(),
        };
        let credentials = Credentials::new(&config.secret_id, &config.secret_key);
        let action = action.api().in_region(config.region.as_deref());
        (self.api)
            .send(&credentials, &action, &request, timestamp, parse_answer)
            .await
    }
}

/// Reads Tencent's answer: a verdict, or the `Response.Error` it carries.
pub(crate) fn parse_answer(body: &[u8]) -> Result<CaptchaVerdict, UpstreamError> {
    let (verdict, request_id) = api::read_answer::<Verdict>(body)?;
    Ok(CaptchaVerdict {
        captcha_code: verdict.captcha_code,
        captcha_msg: verdict.captcha_msg.unwrap_or_default(),
        evil_level: verdict.evil_level,
        request_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        api::assert_reads_request_errors(parse_answer);
        for bad in [&b"<html>"[..], b"{}", b"{\"Response\":{}}", b""] {
            assert_eq!(parse_answer(bad).unwrap_err(), UpstreamError::NotJson);
        }
    }
}
