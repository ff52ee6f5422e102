//! Lambda start-up, in one place: each function's services built from its
//! environment (`TABLE_NAME` and the settings of [`Function::settings`]),
//! validated before the first event. The domain modules never read the
//! environment for the store: only this module builds a [`DynamoStore`].

use std::sync::Arc;

use lambda_http::Error;

use crate::api::{Function, Services};
use crate::captcha::{CaptchaConfig, CaptchaService, Renderer};
use crate::config::ConfigError;
use crate::ratelimit::RateLimitConfig;
use crate::store::Store;
use crate::store::dynamo::DynamoStore;
use crate::tencent::{TencentConfig, TicketService};
use crate::wechat::{LoginService, PhoneService, SessionService, WxConfig};

/// The table of every function: `TABLE_NAME` (and `DYNAMODB_ENDPOINT` for
/// DynamoDB Local).
async fn table() -> Result<Arc<dyn Store>, ConfigError> {
    Ok(Arc::new(DynamoStore::from_env().await?))
}

/// The limits of the root `rateLimit` block of `CAPTCHA_CONFIG`: what
/// wx-login, wx-phone and verify-ticket use (unset or empty: the defaults).
fn root_rate_limit() -> Result<RateLimitConfig, ConfigError> {
    Ok(CaptchaConfig::from_env()?.root().rate_limit)
}

impl CaptchaService {
    /// create-, refresh- and verify-captcha: `CAPTCHA_CONFIG`,
    /// `CAPTCHA_FONT`, the table.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let (config, renderer) = (CaptchaConfig::from_env()?, Renderer::from_env()?);
        Ok(Self::new(config, renderer, table().await?))
    }
}

impl LoginService {
    /// wx-login: `WX_*`, `SESSION_TTL_SECONDS`, the root `rateLimit`, the
    /// table.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let (config, rate_limit) = (WxConfig::from_env()?, root_rate_limit()?);
        Ok(Self::new(config, table().await?)?.with_rate_limit(rate_limit))
    }
}

impl PhoneService {
    /// wx-phone: `WX_*` (the access token needs the AppSecret), the root
    /// `rateLimit`, the table.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let (config, rate_limit) = (WxConfig::from_env()?, root_rate_limit()?);
        Ok(Self::new(config, table().await?)?.with_rate_limit(rate_limit))
    }
}

impl SessionService {
    /// session and authorizer: the table alone.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        Ok(Self::new(table().await?))
    }
}

impl TicketService {
    /// verify-ticket: the Tencent credentials and captcha app, the root
    /// `rateLimit`, the table.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let (config, rate_limit) = (TencentConfig::from_env()?, root_rate_limit()?);
        Ok(Self::new(config, table().await?)?.with_rate_limit(rate_limit))
    }
}

impl Services {
    /// What `function`'s `main` builds, and nothing else.
    pub async fn from_lambda_env(function: Function) -> Result<Self, Error> {
        let mut services = Services::default();
        match function {
            Function::CreateCaptcha | Function::RefreshCaptcha | Function::VerifyCaptcha => {
                services.captcha = Some(Arc::new(CaptchaService::from_lambda_env().await?));
            }
            Function::WxLogin => {
                services.login = Some(Arc::new(LoginService::from_lambda_env().await?));
            }
            Function::Session | Function::Authorizer => {
                services.sessions = Some(Arc::new(SessionService::from_lambda_env().await?));
            }
            Function::VerifyTicket => {
                services.tickets = Some(Arc::new(TicketService::from_lambda_env().await?));
            }
            Function::WxPhone => {
                services.phone = Some(Arc::new(PhoneService::from_lambda_env().await?));
            }
        }
        Ok(services)
    }
}
