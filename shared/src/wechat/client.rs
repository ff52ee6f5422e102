//! The WeChat API client: `jscode2session`, `stable_token`,
//! `getuserphonenumber` and `getuserriskrank`, over one HTTP client.
//!
//! Every exchange has a 5 s time-out per request and 5.5 s in all. Only
//! errcode -1 ("system busy") is retried, at most twice, after 100 ms and
//! 200 ms (plus up to 50 ms of jitter). A body is parsed as JSON whatever
//! its `Content-Type` (WeChat answers `text/plain`) and read no further than
//! [`MAX_UPSTREAM_BODY_BYTES`].
//!
//! | WeChat | errCode |
//! |---|---|
//! | jscode2session 40029 invalid code, 40163 code been used | `wx-code-invalid` |
//! | jscode2session 40226 blocked user | `wx-user-blocked` |
//! | getuserphonenumber 40029 invalid code | `wx-phone-code-invalid` |
//! | getuserphonenumber 40001 / 42001 (stale access token) | [`TokenCallError::StaleToken`]: the caller refreshes the token and retries once |
//! | 45011 minute quota | `wx-rate-limited` |
//! | -1 after two retries, time-out, non-JSON, 40013, 40125, 40164, 45009, any other | `wx-upstream-error` |
//!
//! `getuserriskrank` is the exception: one attempt within the caller's
//! budget, its outcomes read in [`super::risk_rank`].
//!
//! Request URLs carry the AppSecret (jscode2session) or the access token
//! (getuserphonenumber), so none is ever logged: reqwest errors are
//! stripped of it with [`reqwest::Error::without_url`]. Tokens are held in
//! [`Secret`].

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::Rng;
use serde::Deserialize;
use serde_json::Value;

use super::config::WxConfig;
use super::risk_rank::{self, RiskFailure, RiskRankRequest};
use crate::config::ConfigError;
use crate::error::ApiError;
use crate::secret::Secret;
use crate::store::PhoneNumber;

/// The furthest a WeChat answer is read; WeChat's are under 1 KiB.
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
/// Time-out of one request unless [`WxClient::with_timeout`] says otherwise
/// (the service's [`ServiceOptions`](crate::options::ServiceOptions) do).
pub use crate::options::DEFAULT_UPSTREAM_TIMEOUT;
/// Longest code sent to WeChat (`wx.login` codes are 32 characters, phone
/// codes 64).
pub const MAX_CODE_CHARS: usize = 128;
/// Longest access token accepted; WeChat asks for at least 512 characters
/// of room.
pub const MAX_ACCESS_TOKEN_CHARS: usize = 2048;
/// Longest `phoneNumber` accepted from WeChat.
pub const MAX_PHONE_CHARS: usize = 32;

/// What `jscode2session` gives for a valid code. `session_key` is a
/// [`Secret`]: it stays on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WxSession {
    pub openid: String,
    pub unionid: Option<String>,
    pub session_key: Secret,
}

/// What `stable_token` gives: the token and how long it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_in_secs: u64,
}

/// Why a call made with an access token failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCallError {
    /// WeChat answered 40001 (invalid credential) or 42001 (expired): the
    /// token must be refreshed before the call is worth repeating.
    StaleToken,
    /// Any other failure, as the client sees it.
    Failed(ApiError),
}

impl From<ApiError> for TokenCallError {
    fn from(err: ApiError) -> Self {
        TokenCallError::Failed(err)
    }
}

/// The WeChat client; build it once and share it.
#[derive(Debug, Clone)]
pub struct WxClient {
    http: reqwest::Client,
    jscode2session: reqwest::Url,
    stable_token: reqwest::Url,
    phone_number: reqwest::Url,
    risk_rank: reqwest::Url,
    appid: String,
    secret: Secret,
    timeout: Duration,
}

/// One attempt's outcome: done (either way), or errcode -1 worth a retry.
enum Attempt<R> {
    Done(R),
    Busy,
}

/// Whether `code` may be sent to WeChat as a code: `Ok` with it trimmed,
/// `missing` when blank, `invalid` when too long or not visible ASCII.
pub fn checked_code(code: &str, missing: ApiError, invalid: ApiError) -> Result<&str, ApiError> {
    let code = code.trim();
    if code.is_empty() {
        return Err(missing);
    }
    if code.len() > MAX_CODE_CHARS || !code.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid);
    }
    Ok(code)
}

impl WxClient {
    pub fn new(config: &WxConfig) -> Result<Self, ConfigError> {
        let url = |path: &str| {
            reqwest::Url::parse(&format!("{}{path}", config.api_base))
                .map_err(|_| ConfigError::env("WX_API_BASE", &config.api_base, "not a base URL"))
        };
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
            jscode2session: url("/sns/jscode2session")?,
            stable_token: url("/cgi-bin/stable_token")?,
            phone_number: url("/wxa/business/getuserphonenumber")?,
            risk_rank: url("/wxa/getuserriskrank")?,
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

    /// The time-out of one request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Exchanges a `wx.login` code for the user's openid, unionid and
    /// session_key, mapping every failure as in the module table.
    pub async fn code_to_session(&self, code: &str) -> Result<WxSession, ApiError> {
        let code = checked_code(code, ApiError::WxCodeRequired, ApiError::WxCodeInvalid)?;
        let mut url = self.jscode2session.clone();
        url.query_pairs_mut()
            .append_pair("appid", &self.appid)
            .append_pair("secret", self.secret.expose())
            .append_pair("js_code", code)
            .append_pair("grant_type", "authorization_code");
        self.exchange(
            "jscode2session",
            || self.http.get(url.clone()),
            interpret_session,
            || Err(ApiError::WxUpstreamError),
        )
        .await
    }

    /// `POST /cgi-bin/stable_token`, in normal mode or, with `force`, in
    /// force-refresh mode (which invalidates the previous token; WeChat
    /// allows 20 a day, 30 s apart, which the caller keeps to).
    pub async fn stable_token(&self, force: bool) -> Result<AccessToken, ApiError> {
        let body = serde_json::json!({
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self.secret.expose(),
            "force_refresh": force,
        });
        self.exchange(
            "stable_token",
            || self.http.post(self.stable_token.clone()).json(&body),
            interpret_token,
            || Err(ApiError::WxUpstreamError),
        )
        .await
    }

    /// `POST /wxa/business/getuserphonenumber` with the code of
    /// `<button open-type="getPhoneNumber">` (already checked with
    /// [`checked_code`]). The answer's watermark must name our AppID.
    pub async fn phone_number(
        &self,
        access_token: &Secret,
        code: &str,
    ) -> Result<PhoneNumber, TokenCallError> {
        let mut url = self.phone_number.clone();
        url.query_pairs_mut()
            .append_pair("access_token", access_token.expose());
        let body = serde_json::json!({ "code": code });
        self.exchange(
            "getuserphonenumber",
            || self.http.post(url.clone()).json(&body),
            |answer, status| interpret_phone(answer, status, &self.appid),
            || Err(TokenCallError::Failed(ApiError::WxUpstreamError)),
        )
        .await
    }

    /// `POST /wxa/getuserriskrank`: `request`'s user's rank, or why there
    /// is none (see [`super::risk_rank`]); one attempt within `timeout`,
    /// -1 not retried.
    pub async fn risk_rank(
        &self,
        access_token: &Secret,
        request: &RiskRankRequest<'_>,
        timeout: Duration,
    ) -> Result<Result<u8, RiskFailure>, TokenCallError> {
        let mut url = self.risk_rank.clone();
        url.query_pairs_mut()
            .append_pair("access_token", access_token.expose());
        let post = self.http.post(url).json(&request.body(&self.appid));
        match self.attempt("getuserriskrank", post, timeout).await {
            Ok((answer, status)) => risk_rank::interpret(&answer, status),
            Err(unanswered) => Ok(Err(unanswered.into())),
        }
    }

    /// One exchange: attempts until one is done, errcode -1 retried at most
    /// [`MAX_RETRIES`] times, all within one time-out plus
    /// [`RETRY_BUDGET_SLACK`]; `upstream_error` is the answer when it fails.
    async fn exchange<R>(
        &self,
        what: &'static str,
        request: impl Fn() -> reqwest::RequestBuilder,
        interpret: impl Fn(Value, reqwest::StatusCode) -> Attempt<R>,
        upstream_error: impl Fn() -> R,
    ) -> R {
        let attempts = async {
            for attempt in 0..=MAX_RETRIES {
                if attempt > 0 {
                    let jitter = rand::rng().random_range(0..=RETRY_JITTER_MS);
                    tokio::time::sleep(RETRY_BACKOFF[attempt - 1] + Duration::from_millis(jitter))
                        .await;
                }
                let outcome = match self.attempt(what, request(), self.timeout).await {
                    Ok((answer, status)) => interpret(answer, status),
                    Err(_) => return upstream_error(),
                };
                match outcome {
                    Attempt::Done(result) => return result,
                    Attempt::Busy => {
                        tracing::warn!(attempt = attempt + 1, "{what} errcode -1");
                    }
                }
            }
            tracing::error!(
                attempts = MAX_RETRIES + 1,
                "{what} kept answering errcode -1"
            );
            upstream_error()
        };
        // However the attempts go (a slow -1 retried twice), the whole
        // exchange ends within one time-out plus RETRY_BUDGET_SLACK.
        let deadline = self.timeout + RETRY_BUDGET_SLACK;
        match tokio::time::timeout(deadline, attempts).await {
            Ok(result) => result,
            Err(_) => {
                tracing::error!(?deadline, "{what} retries ran out of time");
                upstream_error()
            }
        }
    }

    /// One request with time-out `timeout`: the answer parsed as JSON, or
    /// why there is none (logged).
    pub(super) async fn attempt(
        &self,
        what: &'static str,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<(Value, reqwest::StatusCode), Unanswered> {
        let upstream = |failure: Unanswered, detail: &dyn std::fmt::Display| {
            tracing::error!(error = %detail, "{what} {}", failure.as_str());
            Err(failure)
        };
        let mut response = match request.timeout(timeout).send().await {
            Ok(response) => response,
            Err(err) if err.is_timeout() => {
                return upstream(Unanswered::TimedOut, &err.without_url());
            }
            Err(err) => return upstream(Unanswered::Unreachable, &err.without_url()),
        };
        let status = response.status();
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_UPSTREAM_BODY_BYTES {
                        return upstream(
                            Unanswered::NotJson { status },
                            &format!("body over {MAX_UPSTREAM_BODY_BYTES} bytes"),
                        );
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(err) if err.is_timeout() => {
                    return upstream(Unanswered::TimedOut, &err.without_url());
                }
                Err(err) => return upstream(Unanswered::Unreachable, &err.without_url()),
            }
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(answer @ Value::Object(_)) => Ok((answer, status)),
            _ => upstream(
                Unanswered::NotJson { status },
                &format!("HTTP {status}, {} bytes", body.len()),
            ),
        }
    }
}

/// Why an attempt brought no JSON answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// No answer within the time-out.
    TimedOut,
    /// No connection, or it broke.
    Unreachable,
    /// An answer that is not a JSON object (or is too large), with its
    /// HTTP status.
    NotJson { status: reqwest::StatusCode },
}

impl Unanswered {
    fn as_str(self) -> &'static str {
        match self {
            Unanswered::TimedOut => "timed out",
            Unanswered::Unreachable => "request failed",
            Unanswered::NotJson { .. } => "answered something other than a JSON object",
        }
    }
}

/// The errcode and errmsg every WeChat answer may carry.
#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    errcode: Option<i64>,
    #[serde(default)]
    errmsg: Option<String>,
}

/// `Some(errcode)` when the answer is an error (errcode present, not 0).
fn errcode_of(answer: &Value) -> (Option<i64>, String) {
    let status: Status = serde_json::from_value(answer.clone()).unwrap_or(Status {
        errcode: None,
        errmsg: None,
    });
    (
        status.errcode.filter(|&code| code != 0),
        status.errmsg.unwrap_or_default(),
    )
}

#[derive(Deserialize)]
struct RawSession {
    #[serde(default)]
    openid: Option<String>,
    #[serde(default)]
    unionid: Option<String>,
    #[serde(default)]
    session_key: Option<String>,
}

fn interpret_session(
    answer: Value,
    status: reqwest::StatusCode,
) -> Attempt<Result<WxSession, ApiError>> {
    match errcode_of(&answer) {
        (Some(-1), errmsg) => {
            tracing::warn!(errcode = -1, errmsg, "jscode2session system busy");
            return Attempt::Busy;
        }
        (Some(errcode), errmsg) => {
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
        (None, _) => {}
    }
    if !status.is_success() {
        tracing::error!(%status, "jscode2session answered an HTTP error without errcode");
        return Attempt::Done(Err(ApiError::WxUpstreamError));
    }
    let answer: RawSession = serde_json::from_value(answer).unwrap_or(RawSession {
        openid: None,
        unionid: None,
        session_key: None,
    });
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

fn interpret_token(
    answer: Value,
    status: reqwest::StatusCode,
) -> Attempt<Result<AccessToken, ApiError>> {
    match errcode_of(&answer) {
        (Some(-1), errmsg) => {
            tracing::warn!(errcode = -1, errmsg, "stable_token system busy");
            return Attempt::Busy;
        }
        (Some(errcode), errmsg) => {
            let hint = match errcode {
                40013 => "WX_APPID is not a valid AppID",
                40125 => "WX_SECRET is not the AppSecret of WX_APPID",
                40164 => "this caller's IP is not in the app's API IP allowlist",
                45009 => "the daily limit of stable_token calls is reached",
                45011 => "stable_token is called too often",
                _ => "stable_token refused",
            };
            tracing::error!(errcode, errmsg, hint, "stable_token refused");
            return Attempt::Done(Err(ApiError::WxUpstreamError));
        }
        (None, _) => {}
    }
    let token = answer["access_token"].as_str().unwrap_or_default();
    let expires_in = answer["expires_in"].as_u64().unwrap_or(0);
    let token_ok = !token.is_empty()
        && token.len() <= MAX_ACCESS_TOKEN_CHARS
        && token.bytes().all(|b| b.is_ascii_graphic());
    if !status.is_success() || !token_ok || !(1..=86_400).contains(&expires_in) {
        tracing::error!(
            %status,
            token_ok,
            expires_in,
            "stable_token success answer is malformed"
        );
        return Attempt::Done(Err(ApiError::WxUpstreamError));
    }
    Attempt::Done(Ok(AccessToken {
        token: Secret::new(token),
        expires_in_secs: expires_in,
    }))
}

/// A country code as WeChat sends it: a string or a number of digits.
fn country_code(value: &Value) -> Option<String> {
    let code = match value {
        Value::String(code) => code.trim_start_matches('+').to_owned(),
        Value::Number(n) => n.as_u64()?.to_string(),
        _ => return None,
    };
    ((1..=4).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

fn interpret_phone(
    answer: Value,
    status: reqwest::StatusCode,
    appid: &str,
) -> Attempt<Result<PhoneNumber, TokenCallError>> {
    let failed = |err: ApiError| Attempt::Done(Err(TokenCallError::Failed(err)));
    match errcode_of(&answer) {
        (Some(-1), errmsg) => {
            tracing::warn!(errcode = -1, errmsg, "getuserphonenumber system busy");
            return Attempt::Busy;
        }
        (Some(errcode @ (40001 | 42001)), errmsg) => {
            tracing::warn!(errcode, errmsg, "getuserphonenumber: stale access token");
            return Attempt::Done(Err(TokenCallError::StaleToken));
        }
        (Some(errcode), errmsg) => {
            let err = match errcode {
                40029 => ApiError::WxPhoneCodeInvalid,
                45011 => ApiError::WxRateLimited,
                _ => ApiError::WxUpstreamError,
            };
            if err == ApiError::WxUpstreamError {
                tracing::error!(errcode, errmsg, "getuserphonenumber refused");
            } else {
                tracing::info!(errcode, errmsg, "getuserphonenumber refused the code");
            }
            return failed(err);
        }
        (None, _) => {}
    }
    let info = &answer["phone_info"];
    let phone_number = info["phoneNumber"].as_str().unwrap_or_default();
    let pure = info["purePhoneNumber"].as_str().unwrap_or_default();
    let country = country_code(&info["countryCode"]);
    let shape_ok = !phone_number.is_empty()
        && phone_number.len() <= MAX_PHONE_CHARS
        && phone_number
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b' '))
        && (1..=20).contains(&pure.len())
        && pure.bytes().all(|b| b.is_ascii_digit());
    if !status.is_success() || !shape_ok || country.is_none() {
        tracing::error!(%status, "getuserphonenumber success answer is malformed");
        return failed(ApiError::WxUpstreamError);
    }
    let watermark = info["watermark"]["appid"].as_str().unwrap_or_default();
    if watermark != appid {
        tracing::error!(
            watermark_appid = watermark,
            "getuserphonenumber: the watermark names another app"
        );
        return failed(ApiError::WxUpstreamError);
    }
    Attempt::Done(Ok(PhoneNumber {
        phone_number: phone_number.to_owned(),
        pure_phone_number: pure.to_owned(),
        country_code: country.unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<WxSession, ApiError> {
        match interpret_session(serde_json::from_str(body).unwrap(), reqwest::StatusCode::OK) {
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
        let busy = serde_json::json!({"errcode": -1, "errmsg": "busy"});
        assert!(matches!(
            interpret_session(busy, reqwest::StatusCode::OK),
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

    fn token(body: Value) -> Option<Result<AccessToken, ApiError>> {
        match interpret_token(body, reqwest::StatusCode::OK) {
            Attempt::Done(result) => Some(result),
            Attempt::Busy => None,
        }
    }

    #[test]
    fn stable_token_answers_are_checked() {
        let long = "t".repeat(600);
        let ok = token(serde_json::json!({"access_token": long, "expires_in": 7200}))
            .unwrap()
            .unwrap();
        assert_eq!(
            ok.token.expose().len(),
            600,
            "512 characters of room, and more"
        );
        assert_eq!(ok.expires_in_secs, 7200);
        assert!(!format!("{ok:?}").contains("ttt"), "the token never prints");
        assert!(token(serde_json::json!({"errcode": -1, "errmsg": "busy"})).is_none());
        for errcode in [40013, 40125, 40164, 45009, 45011, 99999] {
            let answer = token(serde_json::json!({"errcode": errcode, "errmsg": "x"}));
            assert_eq!(answer, Some(Err(ApiError::WxUpstreamError)), "{errcode}");
        }
        for bad in [
            serde_json::json!({"access_token": "", "expires_in": 7200}),
            serde_json::json!({"access_token": "a b", "expires_in": 7200}),
            serde_json::json!({"access_token": "t".repeat(MAX_ACCESS_TOKEN_CHARS + 1), "expires_in": 7200}),
            serde_json::json!({"access_token": "t", "expires_in": 0}),
            serde_json::json!({"access_token": "t"}),
        ] {
            assert_eq!(
                token(bad.clone()),
                Some(Err(ApiError::WxUpstreamError)),
                "{bad}"
            );
        }
    }

    fn phone(body: Value) -> Option<Result<PhoneNumber, TokenCallError>> {
        match interpret_phone(body, reqwest::StatusCode::OK, "wxapp") {
            Attempt::Done(result) => Some(result),
            Attempt::Busy => None,
        }
    }

    fn phone_answer(country: Value, appid: &str) -> Value {
        serde_json::json!({"errcode": 0, "errmsg": "ok", "phone_info": {
            "phoneNumber": "13800138000", "purePhoneNumber": "13800138000",
            "countryCode": country, "watermark": {"timestamp": 1, "appid": appid}}})
    }

    #[test]
    fn phone_answers_map_and_check_the_watermark() {
        let want = PhoneNumber {
            phone_number: "13800138000".into(),
            pure_phone_number: "13800138000".into(),
            country_code: "86".into(),
        };
        assert_eq!(
            phone(phone_answer("86".into(), "wxapp")),
            Some(Ok(want.clone()))
        );
        assert_eq!(
            phone(phone_answer(86.into(), "wxapp")),
            Some(Ok(want)),
            "a numeric countryCode (as in WeChat's own example) reads the same"
        );
        let upstream = Some(Err(TokenCallError::Failed(ApiError::WxUpstreamError)));
        assert_eq!(phone(phone_answer("86".into(), "wxother")), upstream);
        assert_eq!(phone(phone_answer("86a".into(), "wxapp")), upstream);
        let cases = [
            (40029, TokenCallError::Failed(ApiError::WxPhoneCodeInvalid)),
            (45011, TokenCallError::Failed(ApiError::WxRateLimited)),
            (40013, TokenCallError::Failed(ApiError::WxUpstreamError)),
            (40001, TokenCallError::StaleToken),
            (42001, TokenCallError::StaleToken),
            (12345, TokenCallError::Failed(ApiError::WxUpstreamError)),
        ];
        for (errcode, want) in cases {
            let answer = phone(serde_json::json!({"errcode": errcode, "errmsg": "x"}));
            assert_eq!(answer, Some(Err(want)), "{errcode}");
        }
        assert!(phone(serde_json::json!({"errcode": -1, "errmsg": "busy"})).is_none());
        assert!(format!("{:?}", phone(phone_answer("86".into(), "wxapp"))).contains("***8000"));
        assert!(!format!("{:?}", phone(phone_answer("86".into(), "wxapp"))).contains("138001"));
    }

    #[test]
    fn codes_are_checked_before_any_call() {
        let check = |code| checked_code(code, ApiError::WxCodeRequired, ApiError::WxCodeInvalid);
        assert_eq!(check("  abc "), Ok("abc"));
        assert_eq!(check("  "), Err(ApiError::WxCodeRequired));
        assert_eq!(check("a b"), Err(ApiError::WxCodeInvalid));
        assert_eq!(check(&"c".repeat(129)), Err(ApiError::WxCodeInvalid));
    }
}
