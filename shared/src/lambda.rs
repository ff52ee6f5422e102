//! Lambda start-up, in one place: each function's services built from its
//! environment (`TABLE_NAME` and the settings of [`Function::settings`]),
//! validated before the first event. The domain modules never read the
//! environment for the store: only this module builds a [`DynamoStore`],
//! and only this module fetches a function's secrets ([`crate::secrets`]),
//! once, concurrently with the store's set-up.

use std::sync::Arc;

use lambda_http::Error;

use crate::api::{Function, Services};
use crate::captcha::{CaptchaService, Renderer};
use crate::config::{ConfigError, process_env};
use crate::guard::config::GUARD_ROUTES;
use crate::guard::{Authorizer, Guard, GuardRoutes};
use crate::secrets::{self, SecretSource, Secrets};
use crate::settings::{ConfigPart, Settings};
use crate::store::Store;
use crate::store::dynamo::DynamoStore;
use crate::tencent::{TencentConfig, TicketService};
use crate::wechat::{LoginService, PhoneService, SessionService, WxConfig};

/// The table of every function: `TABLE_NAME` (and `DYNAMODB_ENDPOINT` for
/// DynamoDB Local).
async fn table() -> Result<Arc<dyn Store>, ConfigError> {
    Ok(Arc::new(DynamoStore::from_env().await?))
}

/// The table and `source`'s secrets (from Secrets Manager when its ARN
/// variable is set, else none), set up concurrently.
async fn table_and_secrets(
    source: &SecretSource,
) -> Result<(Arc<dyn Store>, Secrets), ConfigError> {
    let (store, secrets) = tokio::join!(
        table(),
        secrets::load(source, process_env, secrets::sdk_config())
    );
    Ok((store?, secrets?))
}

impl CaptchaService {
    /// create-, refresh- and verify-captcha: `CAPTCHA_CONFIG`,
    /// `CAPTCHA_FONT`, the table.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let (settings, renderer) = (Settings::from_env()?, Renderer::from_env()?);
        Ok(Self::new(
            settings.captcha_settings(),
            renderer,
            table().await?,
        ))
    }
}

impl LoginService {
    /// wx-login: `WX_*` (the AppSecret from `WX_SECRET_ARN` when set),
    /// `SESSION_TTL_SECONDS`, the root `rateLimit` (and nothing else of
    /// `CAPTCHA_CONFIG`), the table.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let settings = Settings::from_env_part(ConfigPart::RateLimit)?;
        let (store, secrets) = table_and_secrets(&secrets::WECHAT).await?;
        let config = WxConfig::from_lookup(secrets.over(process_env))?;
        Ok(Self::new(config, store)?.with_rate_limit(*settings.rate_limits.root()))
    }
}

impl PhoneService {
    /// wx-phone: `WX_*` (the access token needs the AppSecret, from
    /// `WX_SECRET_ARN` when set), the root `rateLimit` (and nothing else of
    /// `CAPTCHA_CONFIG`), the table.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let settings = Settings::from_env_part(ConfigPart::RateLimit)?;
        let (store, secrets) = table_and_secrets(&secrets::WECHAT).await?;
        let config = WxConfig::from_lookup(secrets.over(process_env))?;
        Ok(Self::new(config, store)?.with_rate_limit(*settings.rate_limits.root()))
    }
}

impl SessionService {
    /// session and authorizer: the table alone.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        Ok(Self::new(table().await?))
    }
}

impl TicketService {
    /// verify-ticket: the Tencent credentials and captcha app (the keys from
    /// `TENCENT_SECRET_ARN` when set), the root
    /// `rateLimit` and the scenes' guard settings of `CAPTCHA_CONFIG` (and
    /// nothing else of it), the table.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let settings = Settings::from_env_part(ConfigPart::RateLimitAndGuard)?;
        let (store, secrets) = table_and_secrets(&secrets::TENCENT).await?;
        let config = TencentConfig::from_lookup(secrets.over(process_env))?;
        Ok(Self::new(config, store)?
            .with_rate_limit(*settings.rate_limits.root())
            .with_guard(settings.guard)
            .with_policies(settings.tencent))
    }
}

impl Guard {
    /// guard, and Rust business Lambdas: the scenes' guard settings of
    /// `CAPTCHA_CONFIG` (and nothing else of it), the table.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let settings = Settings::from_env_part(ConfigPart::Guard)?;
        Ok(Self::new(settings.guard, table().await?))
    }
}

impl GuardRoutes {
    /// `GUARD_ROUTES`; unset or empty: no guarded route.
    pub fn from_env() -> Result<Self, ConfigError> {
        match process_env(GUARD_ROUTES) {
            Some(json) if !json.trim().is_empty() => Self::from_json(&json),
            _ => Ok(Self::default()),
        }
    }
}

impl Authorizer {
    /// authorizer: `GUARD_ROUTES`, the scenes' guard settings, the table.
    pub async fn from_lambda_env() -> Result<Self, Error> {
        let settings = Settings::from_env_part(ConfigPart::Guard)?;
        let routes = GuardRoutes::from_env()?;
        let store = table().await?;
        Ok(Self::new(
            SessionService::new(store.clone()),
            Guard::new(settings.guard, store),
            routes,
        ))
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
            Function::Session => {
                services.sessions = Some(Arc::new(SessionService::from_lambda_env().await?));
            }
            Function::Authorizer => {
                services.authorizer = Some(Arc::new(Authorizer::from_lambda_env().await?));
            }
            Function::Guard => {
                services.guard = Some(Arc::new(Guard::from_lambda_env().await?));
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
