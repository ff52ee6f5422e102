//! `POST /wx/login`, `GET /wx/session` and `DELETE /wx/session`.

use std::sync::Arc;

use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::client::WxClient;
use super::crypto;
use super::{ConfigError, WxConfig};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::http::{Lang, NoData, bearer_token, error_response, json_body, respond, source_ip};
use crate::ratelimit::{RateLimitConfig, Route, counted};
use crate::store::dynamo::DynamoStore;
use crate::store::{SessionRecord, Store};

/// Longest `rawData` accepted (it is signed, then echoed as `userInfo`).
pub const MAX_RAW_DATA_CHARS: usize = 4 * 1024;

/// `POST /wx/login`: one WeChat client, and the sessions it opens.
pub struct LoginService {
    config: WxConfig,
    client: WxClient,
    sessions: SessionService,
    rate_limit: RateLimitConfig,
}

/// Checking and ending sessions needs only the store: the `session` and
/// `authorizer` functions get no WeChat secret.
pub struct SessionService {
    store: Arc<dyn Store>,
    clock: Clock,
}

/// `POST /wx/login` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoginRequest {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub encrypted_data: Option<String>,
    #[serde(default)]
    pub iv: Option<String>,
    #[serde(default)]
    pub raw_data: Option<String>,
    #[serde(default)]
    pub signature: Option<String>,
}

/// `POST /wx/login` success data: the token and nothing that identifies the
/// user beyond the optional `userInfo`.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LoginData {
    pub token: String,
    /// Epoch milliseconds.
    pub token_expired: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_info: Option<Map<String, Value>>,
}

/// `GET /wx/session` success data.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SessionData {
    pub openid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    /// Epoch milliseconds.
    pub token_expired: i64,
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

impl LoginService {
    /// Builds the service (and its one HTTP client) from a validated config.
    pub fn new(config: WxConfig, store: Arc<dyn Store>, clock: Clock) -> Result<Self, ConfigError> {
        let client = WxClient::new(&config)?;
        Ok(Self {
            config,
            client,
            sessions: SessionService::new(store, clock),
            rate_limit: RateLimitConfig::default(),
        })
    }

    /// The same service with other limits (default: [`RateLimitConfig::default`]).
    pub fn with_rate_limit(mut self, rate_limit: RateLimitConfig) -> Self {
        self.rate_limit = rate_limit;
        self
    }

    /// The Lambda set-up: `WX_*` and `SESSION_TTL_SECONDS`, the `rateLimit`
    /// block of `CAPTCHA_CONFIG`, then DynamoDB from `TABLE_NAME`, all
    /// validated before the first event.
    pub async fn from_lambda_env() -> Result<Self, lambda_http::Error> {
        let config = WxConfig::from_env()?;
        let rate_limit = RateLimitConfig::from_env()?;
        let store = DynamoStore::from_env().await?;
        Ok(Self::new(config, Arc::new(store), Clock::system())?.with_rate_limit(rate_limit))
    }

    pub fn config(&self) -> &WxConfig {
        &self.config
    }

    /// The sessions this service opens, for checking and ending them.
    pub fn sessions(&self) -> &SessionService {
        &self.sessions
    }

    /// Exchanges the code, checks any user data, stores a new session and
    /// returns its token. User data is checked for shape before WeChat is
    /// called, so a malformed request does not use up the code.
    pub async fn login(&self, req: LoginRequest) -> Result<LoginData, ApiError> {
        let code = non_empty(req.code).ok_or(ApiError::WxCodeRequired)?;
        let encrypted = match (non_empty(req.encrypted_data), non_empty(req.iv)) {
            (Some(data), Some(iv)) => Some((data, iv)),
            (None, None) => None,
            _ => {
                return Err(ApiError::InvalidRequest(
                    "encryptedData and iv go together".into(),
                ));
            }
        };
        let signed = match (req.raw_data, non_empty(req.signature)) {
            (Some(raw), Some(sig)) if !raw.is_empty() => Some((raw, sig)),
            (None, None) => None,
            _ => {
                return Err(ApiError::InvalidRequest(
                    "rawData and signature go together".into(),
                ));
            }
        };
        let raw_info = match &signed {
            Some((raw, _)) => {
                if raw.len() > MAX_RAW_DATA_CHARS {
                    return Err(ApiError::InvalidRequest(format!(
                        "rawData is longer than {MAX_RAW_DATA_CHARS} characters"
                    )));
                }
                match serde_json::from_str::<Value>(raw) {
                    Ok(Value::Object(map)) => Some(map),
                    _ => {
                        return Err(ApiError::InvalidRequest(
                            "rawData is not a JSON object".into(),
                        ));
                    }
                }
            }
            None => None,
        };
        if let Some((data, _)) = &encrypted
            && data.len() > crypto::MAX_ENCRYPTED_DATA_CHARS
        {
            return Err(ApiError::InvalidRequest(format!(
                "encryptedData is longer than {} characters",
                crypto::MAX_ENCRYPTED_DATA_CHARS
            )));
        }

        let wx = self.client.code_to_session(&code).await?;
        let session_key = wx.session_key.expose();

        if let Some((raw, sig)) = &signed
            && !crypto::signature_matches(raw, session_key, sig)
        {
            tracing::warn!("wx rawData signature mismatch");
            return Err(ApiError::WxSignatureMismatch);
        }
        let user_info = match &encrypted {
            Some((data, iv)) => Some(crypto::decrypt_user_data(
                session_key,
                data,
                iv,
                &self.config.appid,
                &wx.openid,
            )?),
            None => raw_info.map(|mut map| {
                map.remove("openId");
                map.remove("unionId");
                map.remove("watermark");
                map
            }),
        };

        let token = crypto::new_token();
        let now = self.sessions.clock.now_ms();
        let ttl_ms = i64::try_from(self.config.session_ttl_secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        let record = SessionRecord {
            token_hash: crypto::token_hash(&token),
            openid: wx.openid,
            unionid: wx.unionid,
            session_key: session_key.to_owned(),
            created_ms: now,
            expires_ms: now.saturating_add(ttl_ms),
        };
        self.sessions.store.put_session(&record).await?;
        tracing::info!("wx session created");
        Ok(LoginData {
            token,
            token_expired: record.expires_ms,
            user_info,
        })
    }
}

impl SessionService {
    pub fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
        Self { store, clock }
    }

    /// The Lambda set-up: DynamoDB from `TABLE_NAME`.
    pub async fn from_lambda_env() -> Result<Self, lambda_http::Error> {
        let store = DynamoStore::from_env().await?;
        Ok(Self::new(Arc::new(store), Clock::system()))
    }

    /// The live session behind `token`: `session-invalid` when unknown or
    /// malformed, `session-expired` past its expiry even while its row exists.
    pub async fn check(&self, token: &str) -> Result<SessionRecord, ApiError> {
        if !crypto::token_looks_valid(token) {
            return Err(ApiError::SessionInvalid);
        }
        let record = self
            .store
            .get_session(&crypto::token_hash(token))
            .await?
            .ok_or(ApiError::SessionInvalid)?;
        if record.expires_ms <= self.clock.now_ms() {
            return Err(ApiError::SessionExpired);
        }
        Ok(record)
    }

    /// Ends the session behind `token`. An unknown token is
    /// `session-invalid`; an expired one is deleted all the same and answered
    /// with `session-expired`.
    pub async fn end(&self, token: &str) -> Result<(), ApiError> {
        if !crypto::token_looks_valid(token) {
            return Err(ApiError::SessionInvalid);
        }
        let record = self
            .store
            .delete_session(&crypto::token_hash(token))
            .await?
            .ok_or(ApiError::SessionInvalid)?;
        if record.expires_ms <= self.clock.now_ms() {
            return Err(ApiError::SessionExpired);
        }
        tracing::info!("wx session ended");
        Ok(())
    }
}

/// `POST /wx/login`.
pub async fn login(svc: &LoginService, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let result = match json_body::<LoginRequest>(&req) {
        Ok(body) => {
            let now_ms = svc.sessions.clock.now_ms();
            let counter = svc
                .rate_limit
                .counters(Route::WxLogin, "*", source_ip(&req), None, now_ms)
                .pop();
            counted(
                svc.sessions.store.as_ref(),
                counter.as_ref(),
                now_ms,
                svc.login(body),
            )
            .await
        }
        Err(err) => Err(err),
    };
    respond(lang, result)
}

/// `GET /wx/session` (check) and `DELETE /wx/session` (log out); any other
/// method is `invalid-request` with HTTP 405 and an `Allow` header.
pub async fn session(svc: &SessionService, req: Request) -> Response<Body> {
    let lang = Lang::from_request(&req);
    let method = req.method().clone();
    if method != http::Method::GET && method != http::Method::DELETE {
        let mut response = error_response(
            lang,
            &ApiError::InvalidRequest(format!("method {method} not allowed, use GET or DELETE")),
        );
        *response.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
        response.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, DELETE"),
        );
        return response;
    }
    let Some(token) = bearer_token(&req) else {
        return respond::<NoData>(lang, Err(ApiError::SessionRequired));
    };
    if method == http::Method::GET {
        let result = svc.check(token).await.map(|record| SessionData {
            openid: record.openid,
            unionid: record.unionid,
            token_expired: record.expires_ms,
        });
        respond(lang, result)
    } else {
        respond(lang, svc.end(token).await.map(|()| NoData {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn service(clock: Clock) -> (LoginService, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        // Port 9 (discard) on loopback: these tests never reach WeChat.
        let config = WxConfig::new("wxtest", "secret")
            .unwrap()
            .with_api_base("http://127.0.0.1:9");
        let svc = LoginService::new(config, store.clone(), clock).unwrap();
        (svc, store)
    }

    fn request(method: &str, auth: Option<&str>, body: &str) -> Request {
        let mut builder = http::Request::builder().method(method).uri("/wx/session");
        if let Some(auth) = auth {
            builder = builder.header("authorization", auth);
        }
        builder.body(Body::Text(body.to_owned())).unwrap()
    }

    fn body_of(resp: &Response<Body>) -> Value {
        match resp.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    async fn seed(store: &MemoryStore, token: &str, expires_ms: i64) {
        store
            .put_session(&SessionRecord {
                token_hash: crypto::token_hash(token),
                openid: "o-alice".into(),
                unionid: Some("u-alice".into()),
                session_key: "HyVFkGl5F5OQWJZZaNzBBg==".into(),
                created_ms: 0,
                expires_ms,
            })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn session_get_checks_expiry_even_while_the_row_exists() {
        let clock = Clock::manual(1_000_000);
        let (svc, store) = service(clock.clone());
        let token = crypto::new_token();
        seed(&store, &token, 1_000_000 + 60_000).await;
        let auth = format!("Bearer {token}");

        let ok = session(svc.sessions(), request("GET", Some(&auth), "")).await;
        assert_eq!(ok.status(), 200);
        let v = body_of(&ok);
        assert_eq!(v["openid"], "o-alice");
        assert_eq!(v["unionid"], "u-alice");
        assert_eq!(v["tokenExpired"], 1_060_000);
        assert!(!v.to_string().contains("HyVF"));

        clock.advance(60_000);
        let expired = session(svc.sessions(), request("GET", Some(&auth), "")).await;
        assert_eq!(expired.status(), 401);
        assert_eq!(body_of(&expired)["errCode"], "session-expired");
        assert_eq!(store.len(), 1, "the row is still there");
    }

    #[tokio::test]
    async fn session_errors_and_delete() {
        let clock = Clock::manual(5_000);
        let (svc, store) = service(clock.clone());
        let token = crypto::new_token();
        seed(&store, &token, 50_000).await;
        let auth = format!("Bearer {token}");

        let cases = [
            (None, "session-required"),
            (Some("Basic abc"), "session-required"),
            (Some("Bearer short"), "session-invalid"),
            (
                Some("Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                "session-invalid",
            ),
        ];
        for (header, want) in cases {
            for method in ["GET", "DELETE"] {
                let resp = session(svc.sessions(), request(method, header, "")).await;
                assert_eq!(resp.status(), 401, "{header:?}");
                assert_eq!(body_of(&resp)["errCode"], want, "{method} {header:?}");
            }
        }
        let put = session(svc.sessions(), request("PUT", Some(&auth), "")).await;
        assert_eq!(put.status(), 405);
        assert_eq!(put.headers()["allow"], "GET, DELETE");
        assert_eq!(body_of(&put)["errCode"], "invalid-request");

        let del = session(svc.sessions(), request("DELETE", Some(&auth), "")).await;
        assert_eq!(del.status(), 200);
        assert_eq!(body_of(&del)["errCode"], 0);
        assert!(store.is_empty());
        let again = session(svc.sessions(), request("GET", Some(&auth), "")).await;
        assert_eq!(body_of(&again)["errCode"], "session-invalid");

        let old = crypto::new_token();
        seed(&store, &old, 5_000).await;
        let del = session(
            svc.sessions(),
            request("DELETE", Some(&format!("Bearer {old}")), ""),
        )
        .await;
        assert_eq!(body_of(&del)["errCode"], "session-expired");
        assert!(store.is_empty(), "an expired session is deleted too");
    }

    #[tokio::test]
    async fn login_validates_before_calling_wechat() {
        let (svc, _) = service(Clock::manual(0));
        let cases = [
            ("", "wx-code-required"),
            (r#"{"code":"  "}"#, "wx-code-required"),
            (r#"{"code":"c","extra":1}"#, "invalid-request"),
            (r#"{"code":"c","iv":"x"}"#, "invalid-request"),
            (r#"{"code":"c","encryptedData":"x"}"#, "invalid-request"),
            (r#"{"code":"c","rawData":"{}"}"#, "invalid-request"),
            (r#"{"code":"c","signature":"ab"}"#, "invalid-request"),
            (
                r#"{"code":"c","rawData":"[1]","signature":"ab"}"#,
                "invalid-request",
            ),
            (r#"{"code":"with space"}"#, "wx-code-invalid"),
            ("{", "invalid-request"),
        ];
        for (body, want) in cases {
            let resp = login(&svc, request("POST", None, body)).await;
            assert_eq!(body_of(&resp)["errCode"], want, "{body}");
        }
    }
}
