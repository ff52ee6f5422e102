//! [`PhoneService`]: `POST /wx/phone`, the user's phone number from the code
//! of `<button open-type="getPhoneNumber">`, kept with the session.
//!
//! Per request: the session read and (cold) the access-token read run side
//! by side, the per-IP counter runs alongside both and the WeChat call, and
//! the number is written to the session row with a conditional update. Warm, that is
//! two DynamoDB requests and one WeChat call (three requests with the rate
//! limit on); see `docs/wechat.md` for the measured figures.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::client::{RETRY_BUDGET_SLACK, WxClient};
use super::config::WxConfig;
use super::sessions::SessionService;
use super::token::AccessTokens;
use crate::config::ConfigError;
use crate::error::ApiError;
use crate::options::ServiceOptions;
use crate::ratelimit::{RateLimitConfig, Route, counted};
use crate::store::{CounterStore, PhoneNumber, PhoneServiceStore};

/// `POST /wx/phone` success data, with WeChat's field names.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PhoneData {
    pub phone_number: String,
    pub pure_phone_number: String,
    pub country_code: String,
}

impl From<PhoneNumber> for PhoneData {
    fn from(phone: PhoneNumber) -> Self {
        Self {
            phone_number: phone.phone_number,
            pure_phone_number: phone.pure_phone_number,
            country_code: phone.country_code,
        }
    }
}

/// The phone number of a session's user: the shared access token, the
/// WeChat client, the sessions.
pub struct PhoneService {
    config: WxConfig,
    tokens: AccessTokens,
    sessions: SessionService,
    counters: Arc<dyn CounterStore>,
    rate_limit: RateLimitConfig,
}

impl PhoneService {
    /// Builds the service (and its one HTTP client, with the `options`'
    /// WeChat time-out per request) from a validated config; it counts at
    /// the root's rate limits of the `options`.
    pub fn new(
        config: WxConfig,
        store: Arc<dyn PhoneServiceStore>,
        options: &ServiceOptions,
    ) -> Result<Self, ConfigError> {
        let client = WxClient::new(&config)?;
        Ok(Self {
            tokens: AccessTokens::new(&config.appid, client, store.clone(), options),
            sessions: SessionService::new(store.clone(), options),
            counters: store,
            rate_limit: *options.rate_limits().root(),
            config,
        })
    }

    pub fn config(&self) -> &WxConfig {
        &self.config
    }

    /// The shared access token, for calling other WeChat APIs with it.
    pub fn tokens(&self) -> &AccessTokens {
        &self.tokens
    }

    /// The longest the WeChat part of one request may take: two exchanges
    /// and a second (12 s with the default 5 s time-out). A stale token's
    /// refresh and retry must fit in it too; past it the answer is 502.
    fn upstream_budget(&self) -> Duration {
        (self.tokens.client().timeout() + RETRY_BUDGET_SLACK) * 2 + Duration::from_secs(1)
    }

    /// Exchanges `code` (checked for shape) for the phone number of the
    /// user of the live session `token`, and keeps it with the session.
    pub async fn phone(
        &self,
        token: &str,
        code: &str,
        ip: Option<&str>,
    ) -> Result<PhoneData, ApiError> {
        let deadline = tokio::time::Instant::now() + self.upstream_budget();
        let out_of_time = |_| {
            tracing::error!("the WeChat part of POST /wx/phone ran out of time");
            ApiError::WxUpstreamError
        };
        let now_ms = self.sessions.clock().now_ms();
        let counter = self
            .rate_limit
            .counters(Route::WxPhone, "*", ip, None, now_ms)
            .pop();
        let step = async {
            // The session decides; a cold instance reads the token meanwhile.
            let (session, access_token) = tokio::join!(
                self.sessions.check(token),
                tokio::time::timeout_at(deadline, self.tokens.get())
            );
            let session = session?;
            let access_token = access_token.map_err(out_of_time)??;
            let client = self.tokens.client();
            let call = self
                .tokens
                .call_with(access_token, |access_token| async move {
                    client.phone_number(&access_token, code).await
                });
            let phone = tokio::time::timeout_at(deadline, call)
                .await
                .map_err(out_of_time)??;
            Ok((session, phone))
        };
        // The per-IP counter runs alongside all of it.
        let (session, phone) =
            counted(self.counters.as_ref(), counter.as_ref(), now_ms, step).await?;
        let kept = self
            .sessions
            .store()
            .set_session_phone(&session, &phone, self.sessions.clock().now_ms())
            .await?;
        if !kept {
            // Ended (or expired) while WeChat answered.
            return Err(ApiError::SessionInvalid);
        }
        tracing::info!("wx phone number kept with the session");
        Ok(phone.into())
    }
}
