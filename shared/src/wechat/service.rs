//! [`LoginService`] turns a `wx.login` code into a session token of our
//! own (rate limit included); [`SessionService`] (in
//! [`super::sessions`]) checks, ends and refreshes tokens, needing only the
//! store.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use super::client::WxClient;
use super::config::WxConfig;
use super::crypto;
use crate::config::ConfigError;
use crate::error::ApiError;
use crate::options::ServiceOptions;
use crate::ratelimit::{RateLimitConfig, Route, counted};
use crate::store::{CounterStore, LoginServiceStore, SessionRecord};

pub use super::sessions::{SessionData, SessionService, TokenData};

/// `POST /wx/login`: one WeChat client, and the sessions it opens.
pub struct LoginService {
    config: WxConfig,
    client: WxClient,
    sessions: SessionService,
    counters: Arc<dyn CounterStore>,
    rate_limit: RateLimitConfig,
}

/// A login, parsed and checked for shape (see [`super::routes::login`]) so
/// that a malformed request never uses up its code at WeChat.
#[derive(Debug, Clone)]
pub struct Login {
    pub code: String,
    pub encrypted: Option<EncryptedUserData>,
    pub signed: Option<SignedUserData>,
    /// `"single": true`: end the user's other sessions.
    pub single: bool,
}

/// `encryptedData` and `iv` of `wx.getUserInfo`.
#[derive(Debug, Clone)]
pub struct EncryptedUserData {
    pub data: String,
    pub iv: String,
}

/// `rawData` (and the object it holds) and `signature` of `wx.getUserInfo`.
#[derive(Debug, Clone)]
pub struct SignedUserData {
    pub raw_data: String,
    pub user_info: Map<String, Value>,
    pub signature: String,
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

impl LoginService {
    /// Builds the service (and its one HTTP client, with the `options`'
    /// `jscode2session` time-out) from a validated config; it counts at the
    /// root's rate limits of the `options`.
    pub fn new(
        config: WxConfig,
        store: Arc<dyn LoginServiceStore>,
        options: &ServiceOptions,
    ) -> Result<Self, ConfigError> {
        let client = WxClient::new(&config)?.with_timeout(options.timeout());
        Ok(Self {
            config,
            client,
            sessions: SessionService::new(store.clone(), options),
            counters: store,
            rate_limit: *options.rate_limits().root(),
        })
    }

    pub fn config(&self) -> &WxConfig {
        &self.config
    }

    /// The sessions this service opens, for checking and ending them.
    pub fn sessions(&self) -> &SessionService {
        &self.sessions
    }

    /// Exchanges the code, checks any user data, stores a new session and
    /// returns its token. The per-IP counter runs alongside; over the limit
    /// the login is refused, usually before WeChat is called.
    pub async fn login(&self, login: Login, ip: Option<&str>) -> Result<LoginData, ApiError> {
        let now_ms = self.sessions.clock().now_ms();
        let counter = self
            .rate_limit
            .counters(Route::WxLogin, "*", ip, None, now_ms)
            .pop();
        counted(
            self.counters.as_ref(),
            counter.as_ref(),
            now_ms,
            self.open_session(login),
        )
        .await
    }

    async fn open_session(&self, login: Login) -> Result<LoginData, ApiError> {
        let wx = self.client.code_to_session(&login.code).await?;
        let session_key = wx.session_key.expose();

        if let Some(signed) = &login.signed
            && !crypto::signature_matches(&signed.raw_data, session_key, &signed.signature)
        {
            tracing::warn!("wx rawData signature mismatch");
            return Err(ApiError::WxSignatureMismatch);
        }
        let user_info = match &login.encrypted {
            Some(encrypted) => Some(crypto::decrypt_user_data(
                session_key,
                &encrypted.data,
                &encrypted.iv,
                &self.config.appid,
                &wx.openid,
            )?),
            None => login.signed.map(|signed| signed.user_info).map(|mut map| {
                map.remove("openId");
                map.remove("unionId");
                map.remove("watermark");
                map
            }),
        };

        let token = crypto::new_token();
        let now = self.sessions.clock().now_ms();
        let ttl_ms = i64::try_from(self.config.session_ttl_secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        let record = SessionRecord {
            token_hash: crypto::token_hash(&token),
            openid: wx.openid,
            unionid: wx.unionid,
            phone: None,
            created_ms: now,
            expires_ms: now.saturating_add(ttl_ms),
        };
        self.sessions
            .open(&record, &wx.session_key, login.single)
            .await?;
        tracing::info!(single = login.single, "wx session created");
        Ok(LoginData {
            token,
            token_expired: record.expires_ms,
            user_info,
        })
    }
}
