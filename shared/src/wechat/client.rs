//! The `jscode2session` client.
//!
//! `GET {WX_API_BASE}/sns/jscode2session?appid&secret&js_code&grant_type=authorization_code`
//! with a 5 s time-out per request and 5.5 s for the whole exchange. Only
//! errcode -1 ("system busy") is retried, at most
//! twice, after 100 ms and 200 ms (plus up to 50 ms of jitter). The body is
//! parsed as JSON whatever its `Content-Type` (WeChat answers `text/plain`)
//! and read no further than [`MAX_UPSTREAM_BODY_BYTES`].
//!
//! | WeChat | errCode |
//! |---|---|
//! | 40029 invalid code, 40163 code been used | `wx-code-invalid` |
//! | 40226 blocked user | `wx-user-blocked` |
//! | 45011 minute quota | `wx-rate-limited` |
//! | -1 after two retries, time-out, non-JSON, 40013, 40125, any other | `wx-upstream-error` |
//!
//! The request URL carries the AppSecret, so it is never logged: reqwest
//! errors are stripped of it with [`reqwest::Error::without_url`].

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use serde::Deserialize;

use super::config::WxConfig;
use crate::config::ConfigError;
use crate::error::ApiError;
use crate::secret::Secret;

/// The furthest a `jscode2session` answer is read; WeChat's are under 300 bytes.
pub const MAX_UPSTREAM_BODY_BYTES: usize = 64 * 1024;
/// Retries of errcode -1 after the first attempt.
pub const MAX_RETRIES: usize = 2;
/// Wait before each retry (plus jitter).
pub const RETRY_BACKOFF: [Duration; MAX_RETRIES] =
    [Duration::from_millis(100), Duration::from_millis(200)];
/// Upper bound of the random jitter added to each backoff.
pub const RETRY_JITTER_MS: u64 = 50;
/// The whole exchange, retries included, ends within the time-out of one
/// request plus this (5.5 s with the default 5 s time-out).
pub const RETRY_BUDGET_SLACK: Duration = Duration::from_millis(500);
/// Time-out of one `jscode2session` request unless
/// [`WxClient::with_timeout`] says otherwise.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest code sent to WeChat; a real `wx.login` code is 32 characters.
pub const MAX_CODE_CHARS: usize = 128;

/// What `jscode2session` gives for a valid code. `session_key` is a
/// [`Secret`]: it stays on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WxSession {
    pub openid: String,
    pub unionid: Option<String>,
    pub session_key: Secret,
}

/// The `jscode2session` client; build it once and share it.
#[derive(Debug, Clone)]
pub struct WxClient {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    appid: String,
    secret: Secret,
    timeout: Duration,
}

#[derive(Deserialize)]
struct RawAnswer {
    #[serde(default)]
    errcode: Option<i64>,
    #[serde(default)]
    errmsg: Option<String>,
    #[serde(default)]
    openid: Option<String>,
    #[serde(default)]
    unionid: Option<String>,
    #[serde(default)]
    session_key: Option<String>,
}

/// One attempt's outcome: done (either way), or errcode -1 worth a retry.
enum Attempt {
    Done(Result<WxSession, ApiError>),
    Busy,
}

impl WxClient {
    pub fn new(config: &WxConfig) -> Result<Self, ConfigError> {
        let endpoint = reqwest::Url::parse(&format!("{}/sns/jscode2session", config.api_base))
            .map_err(|_| ConfigError::env("WX_API_BASE", &config.api_base, "not a base URL"))?;
        // The time-out is set per request (see `attempt`), so it can be
        // changed after the client is built.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| ConfigError::Client {
                upstream: "WeChat",
                reason: err.without_url().to_string(),
            })?;
        Ok(Self {
            http,
            endpoint,
            appid: config.appid.clone(),
            secret: config.secret.clone(),
            timeout: DEFAULT_UPSTREAM_TIMEOUT,
        })
    }

    /// The same client with another time-out per request (the whole
    /// exchange gets [`RETRY_BUDGET_SLACK`] more).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Exchanges a `wx.login` code for the user's openid, unionid and
    /// session_key, mapping every failure as in the module table.
    pub async fn code_to_session(&self, code: &str) -> Result<WxSession, ApiError> {
        let code = code.trim();
        if code.is_empty() {
            return Err(ApiError::WxCodeRequired);
        }
        if code.len() > MAX_CODE_CHARS || !code.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::WxCodeInvalid);
        }
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("appid", &self.appid)
            .append_pair("secret", self.secret.expose())
            .append_pair("js_code", code)
            .append_pair("grant_type", "authorization_code");
        // However the attempts go (a slow -1 retried twice), the whole
        // exchange ends within one time-out plus RETRY_BUDGET_SLACK.
        let deadline = self.timeout + RETRY_BUDGET_SLACK;
        match tokio::time::timeout(deadline, self.attempts(url)).await {
            Ok(result) => result,
            Err(_) => {
                tracing::error!(?deadline, "jscode2session retries ran out of time");
                Err(ApiError::WxUpstreamError)
            }
        }
    }

    async fn attempts(&self, url: reqwest::Url) -> Result<WxSession, ApiError> {
        for attempt in 0..=MAX_RETRIES {
            if attempt > 0 {
                let jitter = rand::rng().random_range(0..=RETRY_JITTER_MS);
                tokio::time::sleep(RETRY_BACKOFF[attempt - 1] + Duration::from_millis(jitter))
                    .await;
            }
            match self.attempt(url.clone()).await {
                Attempt::Done(result) => return result,
                Attempt::Busy => {
                    tracing::warn!(attempt = attempt + 1, "jscode2session errcode -1");
                }
            }
        }
        tracing::error!(
            attempts = MAX_RETRIES + 1,
            "jscode2session kept answering errcode -1"
        );
        Err(ApiError::WxUpstreamError)
    }

    async fn attempt(&self, url: reqwest::Url) -> Attempt {
        let upstream = |what: &str, detail: &dyn std::fmt::Display| {
            tracing::error!(error = %detail, "jscode2session {what}");
            Attempt::Done(Err(ApiError::WxUpstreamError))
        };
        let mut response = match self.http.get(url).timeout(self.timeout).send().await {
            Ok(response) => response,
            Err(err) => {
                let what = if err.is_timeout() {
                    "timed out"
                } else {
                    "request failed"
                };
                return upstream(what, &err.without_url());
            }
        };
        let status = response.status();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_UPSTREAM_BODY_BYTES {
                        return upstream(
                            "body too large",
                            &format!("over {MAX_UPSTREAM_BODY_BYTES} bytes"),
                        );
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(err) => {
                    let what = if err.is_timeout() {
                        "timed out"
                    } else {
                        "body read failed"
                    };
                    return upstream(what, &err.without_url());
                }
            }
        }
        let Ok(answer) = serde_json::from_slice::<RawAnswer>(&body) else {
            return upstream(
                "answered something other than JSON",
                &format!("HTTP {status}, {} bytes", body.len()),
            );
        };
        interpret(answer, status)
    }
}

fn interpret(answer: RawAnswer, status: reqwest::StatusCode) -> Attempt {
    let errmsg = answer.errmsg.as_deref().unwrap_or("");
    match answer.errcode {
        Some(0) | None => {}
        Some(-1) => {
            tracing::warn!(errcode = -1, errmsg, "jscode2session system busy");
            return Attempt::Busy;
        }
        Some(errcode) => {
            let err = match errcode {
                40029 | 40163 => ApiError::WxCodeInvalid,
                40226 => ApiError::WxUserBlocked,
                45011 => ApiError::WxRateLimited,
                _ => ApiError::WxUpstreamError,
            };
            if err == ApiError::WxUpstreamError {
                // 40013 (appid) and 40125 (secret) are our configuration.
                tracing::error!(errcode, errmsg, "jscode2session refused");
            } else {
                tracing::info!(errcode, errmsg, "jscode2session refused the code");
            }
            return Attempt::Done(Err(err));
        }
    }
    if !status.is_success() {
        tracing::error!(%status, "jscode2session answered an HTTP error without errcode");
        return Attempt::Done(Err(ApiError::WxUpstreamError));
    }
    let openid = answer.openid.unwrap_or_default();
    let session_key = answer.session_key.unwrap_or_default();
    let key_ok = STANDARD
        .decode(&session_key)
        .is_ok_and(|bytes| bytes.len() == 16);
    if openid.is_empty() || openid.len() > 128 || !key_ok {
        tracing::error!(
            has_openid = !openid.is_empty(),
            session_key_ok = key_ok,
            "jscode2session success answer is malformed"
        );
        return Attempt::Done(Err(ApiError::WxUpstreamError));
    }
    Attempt::Done(Ok(WxSession {
        openid,
        unionid: answer.unionid.filter(|u| !u.is_empty()),
        session_key: Secret::new(session_key),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<WxSession, ApiError> {
        let answer: RawAnswer = serde_json::from_str(body).unwrap();
        match interpret(answer, reqwest::StatusCode::OK) {
            Attempt::Done(result) => result,
            Attempt::Busy => Err(ApiError::Internal),
        }
    }

    #[test]
    fn errcodes_map_as_in_the_spec() {
        let cases = [
            (40029, ApiError::WxCodeInvalid),
            (40163, ApiError::WxCodeInvalid),
            (40226, ApiError::WxUserBlocked),
            (45011, ApiError::WxRateLimited),
            (40013, ApiError::WxUpstreamError),
            (40125, ApiError::WxUpstreamError),
            (12345, ApiError::WxUpstreamError),
        ];
        for (errcode, want) in cases {
            let body = format!(r#"{{"errcode":{errcode},"errmsg":"x, rid: 1"}}"#);
            assert_eq!(parse(&body), Err(want), "{errcode}");
        }
        let busy: RawAnswer = serde_json::from_str(r#"{"errcode":-1,"errmsg":"busy"}"#).unwrap();
        assert!(matches!(
            interpret(busy, reqwest::StatusCode::OK),
            Attempt::Busy
        ));
    }

    #[test]
    fn success_needs_openid_and_a_16_byte_key() {
        let ok = parse(
            r#"{"session_key":"HyVFkGl5F5OQWJZZaNzBBg==","openid":"o1","unionid":"u1","errcode":0}"#,
        )
        .unwrap();
        assert_eq!(ok.openid, "o1");
        assert_eq!(ok.unionid.as_deref(), Some("u1"));
        assert_eq!(ok.session_key.expose(), "HyVFkGl5F5OQWJZZaNzBBg==");
        assert!(!format!("{ok:?}").contains("HyVF"));
        let no_union = parse(r#"{"session_key":"HyVFkGl5F5OQWJZZaNzBBg==","openid":"o1"}"#);
        assert_eq!(no_union.unwrap().unionid, None);
        for bad in [
            r#"{"session_key":"HyVFkGl5F5OQWJZZaNzBBg=="}"#,
            r#"{"session_key":"c2hvcnQ=","openid":"o1"}"#,
            r#"{"openid":"o1"}"#,
            r#"{}"#,
        ] {
            assert_eq!(parse(bad), Err(ApiError::WxUpstreamError), "{bad}");
        }
    }
}
