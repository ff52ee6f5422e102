//! The back ends the functions reach under
//! `cargo lambda watch --env-file events/watch.env`, started where that file
//! points and with its credentials: DynamoDB Local with the table of
//! `template.yaml`, the WeChat emulator, the Tencent captcha emulator and
//! the Tencent SMS emulator.
//! `cargo run -p gatehouse-e2e --bin watch-backends` runs them for the
//! local replays (`docs/deploy-and-operations.md`); `tests/watch.rs` runs their invoke lines
//! against them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use gatehouse::clock::Clock;
use gatehouse::store::{IndexedSession, SessionIndexStore, SessionStore};
use gatehouse_local::sms_emulator::{SmsEmulator, SmsEmulatorConfig};
use gatehouse_local::tencent_emulator::{EmulatorConfig, TencentEmulator};
use gatehouse_local::wechat_emulator::WechatEmulator;

use crate::dynamodb_local::{DynamoLocal, tests_dir};
use crate::{live_session, seed_session_key};

/// The bearer token of `events/session-get.json`, `session-delete.json`,
/// `authorizer-request.json` and `wx-phone.json`; seeded as a live session so
/// those events replay as written.
pub const EVENT_SESSION_TOKEN: &str = "REPLACE_WITH_TOKEN_FROM_WX_LOGIN_xxxxxxxxxx";
/// The bearer token of `events/session-refresh.json`, which ends it: a
/// session of its own, so the other events keep theirs.
pub const EVENT_REFRESH_TOKEN: &str = "REPLACE_WITH_TOKEN_FROM_WX_LOGIN_refresh_xx";
/// The bearer token of `events/sessions-delete.json`, which ends every
/// session of the user: invoked last.
pub const EVENT_EVERYWHERE_TOKEN: &str = "REPLACE_WITH_TOKEN_FROM_WX_LOGIN_everywhere";
/// Every token the events carry, each seeded as a session of
/// [`EVENT_SESSION_OPENID`].
pub const EVENT_TOKENS: [&str; 3] = [
    EVENT_SESSION_TOKEN,
    EVENT_REFRESH_TOKEN,
    EVENT_EVERYWHERE_TOKEN,
];
/// The openid of that seeded session.
pub const EVENT_SESSION_OPENID: &str = "o-watch-demo";
/// How long the seeded session lives.
const EVENT_SESSION_LIFE_MS: i64 = 24 * 3_600_000;

/// `events/watch.env`, the env file of `cargo lambda watch`.
pub fn watch_env_path() -> PathBuf {
    tests_dir().join("..").join("events").join("watch.env")
}

/// The `KEY=VALUE` lines of an env file (blank lines and `#` comments
/// skipped), as `cargo lambda watch --env-file` reads them.
pub fn parse_env_file(text: &str) -> Result<BTreeMap<String, String>, String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            line.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| format!("not a KEY=VALUE line: {line:?}"))
        })
        .collect()
}

/// The running back ends; they stop when this is dropped (DynamoDB Local
/// with the process).
pub struct WatchBackends {
    pub dynamo: DynamoLocal,
    pub wechat: WechatEmulator,
    pub tencent: TencentEmulator,
    pub sms: SmsEmulator,
}

impl WatchBackends {
    /// Starts every back end where `env` (the contents of `watch.env`)
    /// points: `DYNAMODB_ENDPOINT` with table `TABLE_NAME` and the event
    /// session seeded, `WX_API_BASE` for `WX_APPID`/`WX_SECRET`, and
    /// `TENCENT_CAPTCHA_ENDPOINT` for the `TENCENT_*`/`CAPTCHA_APP_*` keys,
    /// and `TENCENT_SMS_ENDPOINT` for the `TENCENT_*`/`SMS_*` keys.
    pub async fn start(env: &BTreeMap<String, String>) -> Result<Self, String> {
        let var = |key: &str| {
            env.get(key)
                .cloned()
                .ok_or_else(|| format!("{key} is missing from watch.env"))
        };
        let dynamo_addr = loopback_addr("DYNAMODB_ENDPOINT", &var("DYNAMODB_ENDPOINT")?)?;
        let dynamo =
            tokio::task::spawn_blocking(move || DynamoLocal::start_on(Some(dynamo_addr.port())))
                .await
                .map_err(|e| e.to_string())??;
        let table = var("TABLE_NAME")?;
        let client = dynamo.client();
        dynamo.create_table(&client, &table).await?;
        let store = gatehouse::store::dynamo::DynamoStore::new(client, table);
        for token in EVENT_TOKENS {
            let session = live_session(token, EVENT_SESSION_OPENID, EVENT_SESSION_LIFE_MS);
            store
                .put_session(&session, Some(&seed_session_key()))
                .await
                .map_err(|e| format!("seeding the event sessions: {e}"))?;
            store
                .index_session(
                    EVENT_SESSION_OPENID,
                    &IndexedSession {
                        token_hash: session.token_hash.clone(),
                        expires_ms: session.expires_ms,
                    },
                    &[],
                    session.expires_ms,
                )
                .await
                .map_err(|e| format!("indexing the event sessions: {e}"))?;
        }

        let wechat = WechatEmulator::start_with(
            loopback_addr("WX_API_BASE", &var("WX_API_BASE")?)?,
            &var("WX_APPID")?,
            &var("WX_SECRET")?,
            Clock::system(),
        )
        .await
        .map_err(|e| format!("starting the WeChat emulator: {e}"))?;
        let app_id = var("CAPTCHA_APP_ID")?;
        let tencent = TencentEmulator::start_with(
            loopback_addr(
                "TENCENT_CAPTCHA_ENDPOINT",
                &var("TENCENT_CAPTCHA_ENDPOINT")?,
            )?,
            EmulatorConfig {
                secret_id: var("TENCENT_SECRET_ID")?,
                secret_key: var("TENCENT_SECRET_KEY")?,
                captcha_app_id: app_id
                    .parse()
                    .map_err(|_| format!("CAPTCHA_APP_ID={app_id:?} is not a number"))?,
                app_secret_key: var("CAPTCHA_APP_SECRET_KEY")?,
                clock: Clock::system(),
            },
        )
        .await
        .map_err(|e| format!("starting the Tencent emulator: {e}"))?;
        let sms = SmsEmulator::start_with(
            loopback_addr("TENCENT_SMS_ENDPOINT", &var("TENCENT_SMS_ENDPOINT")?)?,
            SmsEmulatorConfig {
                secret_id: var("TENCENT_SECRET_ID")?,
                secret_key: var("TENCENT_SECRET_KEY")?,
                sdk_app_id: var("SMS_SDK_APP_ID")?,
                sign_name: var("SMS_SIGN_NAME")?,
                template_id: var("SMS_TEMPLATE_ID")?,
                clock: Clock::system(),
            },
        )
        .await
        .map_err(|e| format!("starting the SMS emulator: {e}"))?;
        Ok(Self {
            dynamo,
            wechat,
            tencent,
            sms,
        })
    }
}

/// The loopback address of an `http://127.0.0.1:<port>` URL.
fn loopback_addr(key: &str, url: &str) -> Result<SocketAddr, String> {
    url.strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .and_then(|host_port| host_port.parse::<SocketAddr>().ok())
        .filter(|addr| addr.ip().is_loopback())
        .ok_or_else(|| format!("{key}={url:?}: expected http://127.0.0.1:<port>"))
}
