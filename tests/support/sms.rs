//! SMS fixtures: a code row as a send leaves it, and the SMS emulator with
//! a configuration that points at it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use gatehouse::clock::Clock;
use gatehouse::options::ServiceOptions;
use gatehouse::settings::Settings;
use gatehouse::sms::code::code_hash;
use gatehouse::sms::{Mobile, SmsConfig, SmsSender, SmsVerifier};
use gatehouse::store::{CaptchaState, SmsCodeRecord, Store, sms_locator};
use gatehouse_local::sms_emulator::{SmsEmulator, SmsEmulatorConfig};

use crate::fixtures::scene;

/// The test account of the SMS emulator.
pub const SECRET_ID: &str = "AKIDsmstest";
pub const SECRET_KEY: &str = "sms-test-key";
pub const SDK_APP_ID: &str = "1400000009";
pub const SIGN_NAME: &str = "网关测试";
pub const TEMPLATE_ID: &str = "1000009";

/// The pending code `code` of `mobile` in `scene_name`, sent at `now_ms`
/// with the default lifetime (5 minutes) and resend window (1 minute).
pub fn sms_record(scene_name: &str, mobile: &str, code: &str, now_ms: i64) -> SmsCodeRecord {
    let scene = scene(scene_name);
    let mobile = Mobile::parse(mobile).expect("a fixture number");
    SmsCodeRecord {
        code_hash: code_hash(&sms_locator(&scene, &mobile), code),
        mobile,
        scene,
        state: CaptchaState::Pending,
        ip: "203.0.113.7".into(),
        device: None,
        created_date: now_ms,
        expired_date: now_ms + 300_000,
        resend_after: now_ms + 60_000,
        attempts: 0,
        send_id: fresh_send_id(now_ms),
    }
}

/// A send id no other fixture shares (the DynamoDB store takes one for its
/// own earlier write), of 16 hex digits as a send's.
fn fresh_send_id(now_ms: i64) -> String {
    static SENDS: AtomicU64 = AtomicU64::new(1);
    let n = SENDS.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:016x}",
        n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ now_ms as u64
    )
}

/// The SMS emulator on loopback, with the test account.
pub struct SmsRig {
    pub emulator: SmsEmulator,
}

impl SmsRig {
    /// The emulator on the system clock.
    pub async fn start() -> Self {
        Self::with_clock(Clock::system()).await
    }

    /// The emulator on `clock` (its timestamp window follows it).
    pub async fn with_clock(clock: Clock) -> Self {
        let emulator = SmsEmulator::start(SmsEmulatorConfig {
            secret_id: SECRET_ID.into(),
            secret_key: SECRET_KEY.into(),
            sdk_app_id: SDK_APP_ID.into(),
            sign_name: SIGN_NAME.into(),
            template_id: TEMPLATE_ID.into(),
            clock,
        })
        .await
        .expect("the SMS emulator starts");
        Self { emulator }
    }

    /// `send-sms` and `verify-sms` on `store`, as `settings` configure
    /// them, sending to the emulator.
    pub fn services(
        &self,
        settings: &Settings,
        store: &Arc<dyn Store>,
        options: &ServiceOptions,
    ) -> (SmsSender, SmsVerifier) {
        let sender = SmsSender::new(
            self.config(),
            settings.sms_settings(),
            store.clone(),
            options,
        )
        .expect("the SMS services build");
        let verifier = SmsVerifier::new(settings.sms_settings(), store.clone(), options);
        (sender, verifier)
    }

    /// `send-sms`'s configuration for the emulator.
    pub fn config(&self) -> SmsConfig {
        self.config_with(&[])
    }

    /// The configuration with some variables changed (`("SMS_SIGN_NAME",
    /// "other")` …).
    pub fn config_with(&self, changed: &[(&str, &str)]) -> SmsConfig {
        let endpoint = self.emulator.base_url();
        SmsConfig::from_lookup(|key| {
            if let Some((_, value)) = changed.iter().find(|(k, _)| *k == key) {
                return Some((*value).to_owned());
            }
            Some(match key {
                "TENCENT_SECRET_ID" => SECRET_ID.into(),
                "TENCENT_SECRET_KEY" => SECRET_KEY.into(),
                "SMS_SDK_APP_ID" => SDK_APP_ID.into(),
                "SMS_SIGN_NAME" => SIGN_NAME.into(),
                "SMS_TEMPLATE_ID" => TEMPLATE_ID.into(),
                "TENCENT_SMS_ENDPOINT" => endpoint.clone(),
                _ => return None,
            })
        })
        .expect("the test configuration is valid")
    }
}
