//! Tencent Cloud API 3.0 over HTTPS, product by product: one signed `POST /`
//! of an action (TC3-HMAC-SHA256, [`super::tc3`]) and its answer read with
//! a size cap. The Captcha client ([`super::client`]) and the SMS client
//! (`crate::sms::client`) each build their own body and read their own
//! answer; the envelope, the headers and the transport are this one.
//!
//! The common headers, as Tencent's "公共参数" page lists them for the TC3
//! signature: `Host`, `Content-Type: application/json; charset=utf-8`,
//! `X-TC-Action`, `X-TC-Version`, `X-TC-Timestamp`, `X-TC-Region` (where the
//! product needs it), `Authorization`. `content-type`, `host` and
//! `x-tc-action` are signed.
//!
//! A call is never retried here: a retried `SendSms` could send twice.

use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::tc3;
use crate::config::{ConfigError, Env, secure_or_loopback};
use crate::secret::Secret;

/// The request and body time-out of every call, unless the client's
/// `with_timeout` says otherwise (the service's
/// [`ServiceOptions`](crate::options::ServiceOptions) do).
pub const DEFAULT_TIMEOUT: Duration = crate::options::DEFAULT_UPSTREAM_TIMEOUT;
/// The body of an answer is read at most this far; a longer one is an
/// upstream error.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The content type sent and signed.
pub const CONTENT_TYPE_JSON: &str = "application/json; charset=utf-8";

/// Why a call gave no answer to read. Carries only what may be logged.
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

/// The API key of a CAM user: the id plain, the key a [`Secret`].
#[derive(Clone, Debug)]
pub struct Credentials<'a> {
    pub secret_id: &'a str,
    pub secret_key: &'a Secret,
}

impl<'a> Credentials<'a> {
    pub fn new(secret_id: &'a str, secret_key: &'a Secret) -> Self {
        Self {
            secret_id,
            secret_key,
        }
    }
}

/// One action of one product.
#[derive(Debug, Clone, Copy)]
pub struct Action<'a> {
    /// The product in the credential scope (`captcha`, `sms`).
    pub service: &'a str,
    /// `X-TC-Version` (`2019-07-22`, `2021-01-11`).
    pub version: &'a str,
    /// `X-TC-Action` (`DescribeCaptchaResult`, `SendSms`).
    pub name: &'a str,
    /// `X-TC-Region`, for the products that need one.
    pub region: Option<&'a str>,
}

impl<'a> Action<'a> {
    /// The same action sent to `region`.
    pub const fn in_region(self, region: Option<&'a str>) -> Self {
        Self { region, ..self }
    }
}

/// The HTTP client of one product's endpoint, built once.
#[derive(Clone, Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    url: Url,
    host: String,
    timeout: Duration,
}

impl ApiClient {
    /// A client for `endpoint` (see [`Endpoint::parts`]) with the
    /// [`DEFAULT_TIMEOUT`] for the whole call (connect, send, read).
    pub fn new(endpoint: &Endpoint) -> Result<Self, ConfigError> {
        let (url, host) = endpoint.parts()?;
        // The time-out is set per request (see `call`), so it can be
        // changed after the client is built. No redirect is followed.
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

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `request`, the action's body, as JSON (see [`Self::call`])
    /// and reads the answer with `parse`.
    pub async fn send<T>(
        &self,
        credentials: &Credentials<'_>,
        action: &Action<'_>,
        request: &impl Serialize,
        timestamp: i64,
        parse: fn(&[u8]) -> Result<T, UpstreamError>,
    ) -> Result<T, UpstreamError> {
        let payload = serde_json::to_vec(request).expect("an action's body serialises");
        parse(&self.call(credentials, action, payload, timestamp).await?)
    }

    /// Sends `payload` (the action's JSON body) as `action`, signed with
    /// `credentials` at `timestamp` (epoch seconds), and returns the body
    /// of a 2xx answer. Not retried.
    pub async fn call(
        &self,
        credentials: &Credentials<'_>,
        action: &Action<'_>,
        payload: Vec<u8>,
        timestamp: i64,
    ) -> Result<Vec<u8>, UpstreamError> {
        let signed_headers = [
            (CONTENT_TYPE.as_str(), CONTENT_TYPE_JSON),
            (HOST.as_str(), self.host.as_str()),
            ("x-tc-action", action.name),
        ];
        let signed = tc3::sign(
            credentials.secret_key.expose(),
            &tc3::SignInput {
                method: "POST",
                uri: "/",
                query: "",
                headers: &signed_headers,
                payload: &payload,
                service: action.service,
                timestamp,
            },
        );
        let mut request = self
            .http
            .post(self.url.clone())
            .timeout(self.timeout)
            .header(HOST, &self.host)
            .header(CONTENT_TYPE, CONTENT_TYPE_JSON)
            .header("X-TC-Action", action.name)
            .header("X-TC-Version", action.version)
            .header("X-TC-Timestamp", timestamp.to_string())
            .header(
                AUTHORIZATION,
                signed.authorization(credentials.secret_id, action.service),
            );
        if let Some(region) = action.region {
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
        Ok(body)
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

/// The `Response` envelope of every answer: `{"Response": {"Error": {"Code",
/// "Message"}, "RequestId"}}` for a request-level error, else the action's
/// own fields beside `RequestId`.
#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(rename = "Response")]
    response: Answer<T>,
}

#[derive(Deserialize)]
struct Answer<T> {
    #[serde(rename = "Error")]
    error: Option<ErrorBody>,
    #[serde(rename = "RequestId")]
    request_id: Option<String>,
    #[serde(flatten)]
    fields: T,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(rename = "Code")]
    code: String,
}

/// Reads an answer: the action's fields `T` and the `RequestId`, or the
/// `Response.Error` it carries ([`UpstreamError::Api`]); anything else is
/// [`UpstreamError::NotJson`].
pub fn read_answer<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<(T, String), UpstreamError> {
    let envelope: Envelope<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(body).map_err(|_| UpstreamError::NotJson)?;
    let answer = envelope.response;
    let request_id = answer.request_id.unwrap_or_default();
    if let Some(error) = answer.error {
        return Err(UpstreamError::Api {
            code: error.code,
            request_id,
        });
    }
    let fields = serde_json::from_value(serde_json::Value::Object(answer.fields))
        .map_err(|_| UpstreamError::NotJson)?;
    Ok((fields, request_id))
}

/// Where a product's endpoint is configured: the variable, and the
/// product's own endpoint when the variable is not set.
#[derive(Debug, Clone, Copy)]
pub struct EndpointVar {
    /// `TENCENT_CAPTCHA_ENDPOINT`, `TENCENT_SMS_ENDPOINT`.
    pub var: &'static str,
    pub default: &'static str,
}

impl EndpointVar {
    /// `url` as this variable's value.
    pub fn at<'a>(&self, url: &'a str) -> Endpoint<'a> {
        Endpoint {
            var: self.var,
            url,
            default: self.default,
        }
    }

    /// The variable's value (else the default), checked ([`Endpoint::parts`]).
    pub fn read(&self, env: &Env<impl Fn(&str) -> Option<String>>) -> Result<String, ConfigError> {
        let url = env.get(self.var).unwrap_or_else(|| self.default.to_owned());
        self.at(&url).parts()?;
        Ok(url)
    }
}

/// An endpoint as configured: the variable that set it (for messages) and
/// its value.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint<'a> {
    /// `TENCENT_CAPTCHA_ENDPOINT`, `TENCENT_SMS_ENDPOINT`.
    pub var: &'static str,
    pub url: &'a str,
    /// The product's own endpoint, shown as the example in a refusal.
    pub default: &'static str,
}

impl Endpoint<'_> {
    /// The endpoint URL and the `Host` header value that goes with it: an
    /// `https://` URL with a host and no query, fragment or credentials
    /// (`http://` only to loopback, for tests and the emulators).
    pub fn parts(&self) -> Result<(Url, String), ConfigError> {
        let invalid = || {
            ConfigError::env(
                self.var,
                self.url,
                format!(
                    "an https:// URL with a host and no query, e.g. {} \
                     (http:// only to localhost, 127.0.0.0/8 or [::1])",
                    self.default
                ),
            )
        };
        let url = Url::parse(self.url).map_err(|_| invalid())?;
        if !secure_or_loopback(&url)
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

/// For a product's tests: `parse` reads a `Response.Error` as
/// [`UpstreamError::Api`] with its code and `RequestId`.
#[cfg(test)]
pub(crate) fn assert_reads_request_errors<T: std::fmt::Debug>(
    parse: fn(&[u8]) -> Result<T, UpstreamError>,
) {
    let error = br#"{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"m"},"RequestId":"r3"}}"#;
    assert_eq!(
        parse(error).unwrap_err(),
        UpstreamError::Api {
            code: "AuthFailure.SignatureFailure".into(),
            request_id: "r3".into()
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Fields {
        #[serde(rename = "Value")]
        value: i64,
    }

    #[test]
    fn answers_are_fields_or_errors() {
        let ok = br#"{"Response":{"Value":3,"RequestId":"r1"}}"#;
        assert_eq!(
            read_answer::<Fields>(ok).unwrap(),
            (Fields { value: 3 }, "r1".into())
        );
        assert_reads_request_errors(read_answer::<Fields>);
        for bad in [
            &b"<html>"[..],
            b"{}",
            b"{\"Response\":{}}",
            b"",
            b"{\"Response\":{\"Value\":\"3\"}}",
        ] {
            assert_eq!(
                read_answer::<Fields>(bad).unwrap_err(),
                UpstreamError::NotJson
            );
        }
    }

    #[test]
    fn endpoints_are_https_or_loopback_without_query() {
        let endpoint = |url| Endpoint {
            var: "TENCENT_SMS_ENDPOINT",
            url,
            default: "https://sms.tencentcloudapi.com",
        };
        assert_eq!(
            endpoint("https://sms.tencentcloudapi.com")
                .parts()
                .unwrap()
                .1,
            "sms.tencentcloudapi.com"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:9000").parts().unwrap().1,
            "127.0.0.1:9000"
        );
        for bad in [
            "ftp://x",
            "http://sms.tencentcloudapi.com",
            "not a url",
            "https://h/?a=1",
            "https://u:p@h/",
        ] {
            let err = endpoint(bad).parts().unwrap_err().to_string();
            assert!(
                err.starts_with("TENCENT_SMS_ENDPOINT=") && err.contains("sms.tencentcloudapi"),
                "{bad}: {err}"
            );
        }
    }
}
