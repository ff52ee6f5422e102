//! The Tencent Cloud Captcha API client: configuration, one signed
//! `DescribeCaptchaResult` / `DescribeCaptchaMiniResult` call, and the
//! answer read with a size cap.

use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::config::TencentConfig;
use super::tc3;
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
}
/// The request and body time-out of every call, unless
/// [`CaptchaClient::with_timeout`] says otherwise (the service's
/// [`ServiceOptions`](crate::options::ServiceOptions) do).
pub const DEFAULT_TIMEOUT: Duration = crate::options::DEFAULT_UPSTREAM_TIMEOUT;
/// The body of an answer is read at most this far; a longer one is an
/// upstream error.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The content type sent and signed.
pub const CONTENT_TYPE_JSON: &str = "application/json; charset=utf-8";

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
    /// A client for `config`'s endpoint with the [`DEFAULT_TIMEOUT`] for the
    /// whole call (connect, send, read).
    pub fn new(config: &TencentConfig) -> Result<Self, ConfigError> {
        let (url, host) = config.endpoint_parts()?;
        // The time-out is set per request (see `describe`), so it can be
        // changed after the client is built.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| ConfigError::Client {
                upstream: "Tencent Cloud",
                reason: err.to_string(),
            })?;
        Ok(Self {
            http,
            url,
            host,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client with another time-out for the whole call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
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
        let action = action.as_str();
        let payload = serde_json::to_vec(&DescribeRequest {
            captcha_type: CAPTCHA_TYPE,
            ticket,
            user_ip,
            randstr,
            captcha_app_id: config.captcha_app_id,
            app_secret_key: config.app_secret_key.expose(),
        })
        .expect("a struct of strings and integers serialises");
        let signed_headers = [
            (CONTENT_TYPE.as_str(), CONTENT_TYPE_JSON),
            (HOST.as_str(), self.host.as_str()),
            ("x-tc-action", action),
        ];
        let signed = tc3::sign(
            config.secret_key.expose(),
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
            .timeout(self.timeout)
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
