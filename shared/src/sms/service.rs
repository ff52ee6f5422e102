//! The send and the verify of an SMS code, once [`super::routes`] has
//! parsed the request.
//!
//! **Send** ([`SmsSender::send`]), in this order:
//!
//! 1. the number's country must be one the scene lists (400, nothing
//!    spent);
//! 2. the door: the scene's guard decides as at any guarded route, through
//!    [`Guard::admit`] in-process: the send is counted as a request of its
//!    scene (velocity), a pass in `X-Gatehouse-Pass` is redeemed when the
//!    level asks for one, the reasons of a level above `none` go into the
//!    events; a refusal is the guard's 403 with its errCode, its level and
//!    reasons ([`SendRefusal`]);
//! 3. one round trip writes the code's row (its keyed hash, never the
//!    code) and counts the IP's, the number's day's and the scene's budget's
//!    counters, all conditional: the number's last code younger than
//!    `resendSeconds` is 429 `sms-send-too-soon` with `Retry-After`, a full
//!    counter its own 429, and then nothing is written or counted;
//! 4. one `SendSms`, never retried. Sent: `{resendAfter, expiresIn}`. Not
//!    sent: the code is voided (no code is left that could be verified)
//!    and Tencent's answer mapped: `LimitExceeded.*` 429,
//!    `IncorrectPhoneNumber` 400, anything else 502 (wherever Tencent says
//!    it: in the number's `Code` or as `Response.Error`).
//!
//! **Verify** ([`SmsVerifier::verify`]): one conditional write checks and
//! spends the code (attempts counted, void at `maxAttempts`), the per-IP
//! counter alongside; a right code earns a pass of kind `sms`, written by
//! that same write; a wrong one counts as a failure of the scene's guard.
//!
//! The code is never logged, answered or stored: only the message carries
//! it. Numbers are logged masked.

use std::sync::Arc;

use serde::Serialize;

use super::client::{SENT, SendStatus, SmsClient};
use super::code::{SmsCode, code_hash, is_code_shaped};
use super::config::{SmsConfig, SmsSettings};
use super::mobile::Mobile;
use crate::clock::{china_day, china_day_end_ms};
use crate::config::ConfigError;
use crate::config::blocks::PerScene;
use crate::domain::Scene;
use crate::error::ApiError;
use crate::guard::challenge::ChallengeJudge;
use crate::guard::config::{Door, GuardConfig, PassRule};
use crate::guard::level::Standing;
use crate::guard::pass::{PassIssued, PassToken, ip_net};
use crate::guard::service::{Client, Guard, Proof, Refusal, count_failure};
use crate::metrics::{Event, Events};
use crate::options::ServiceOptions;
use crate::ratelimit::{RateLimitConfig, Route, counted, rate_limited};
use crate::store::{
    CaptchaState, CounterLimit, PassGrant, PassKind, SmsCodeRecord, SmsIssue, SmsServiceStore,
    VerifyOutcome, sms_locator,
};
use crate::tencent::api::UpstreamError;

/// What the SMS routes read of `CAPTCHA_CONFIG` besides the rate limits
/// (which come with the [`ServiceOptions`]: the root's `smsSendPerIp` and
/// `smsVerifyPerIp`): each scene's `sms` block and the guard's settings
/// (the door's level, a pass's lifetime, failures).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SmsRouteSettings {
    pub sms: PerScene<SmsSettings>,
    pub guard: GuardConfig,
}

/// Who asks for a code, or answers one: the scene and number, the client
/// (IP, device) and, for a send, the pass it brought to the door.
#[derive(Debug, Clone)]
pub struct SmsTarget {
    pub scene: Scene,
    pub mobile: Mobile,
    pub client: Client,
}

/// The success data of a send, in seconds: when the number may ask again,
/// and how long the code lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeSent {
    pub resend_after: u64,
    pub expires_in: u64,
}

/// A refused send: its error and, when the guard refused it at the door,
/// where the client stood (its level and reasons, answered with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRefusal {
    pub error: ApiError,
    pub standing: Option<Standing>,
}

impl From<ApiError> for SendRefusal {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            standing: None,
        }
    }
}

impl From<crate::error::StoreError> for SendRefusal {
    fn from(error: crate::error::StoreError) -> Self {
        ApiError::from(error).into()
    }
}

impl From<Refusal> for SendRefusal {
    fn from(refusal: Refusal) -> Self {
        Self {
            error: refusal.error,
            standing: Some(refusal.standing),
        }
    }
}

/// `POST /sms/send`, built once at start-up.
pub struct SmsSender {
    config: SmsConfig,
    client: SmsClient,
    settings: SmsRouteSettings,
    guard: Guard,
    store: Arc<dyn SmsServiceStore>,
    options: ServiceOptions,
}

/// The counters of one send, and what each refuses with.
struct SendLimits {
    limits: Vec<CounterLimit>,
    kinds: Vec<LimitKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LimitKind {
    Ip,
    NumberDay,
    Budget,
}

impl SmsSender {
    /// The service, its guard over the same store and its one HTTP client
    /// (the `options`' time-out of its Tencent call); the root's rate
    /// limits are the `options`'.
    pub fn new(
        config: SmsConfig,
        settings: SmsRouteSettings,
        store: Arc<dyn SmsServiceStore>,
        options: &ServiceOptions,
    ) -> Result<Self, ConfigError> {
        let client = SmsClient::new(&config, options.timeout())?;
        let guard = Guard::new(settings.guard.clone(), store.clone(), options);
        Ok(Self {
            config,
            client,
            settings,
            guard,
            store,
            options: options.clone(),
        })
    }

    pub fn config(&self) -> &SmsConfig {
        &self.config
    }

    /// The same service whose door also takes the challenge itself in
    /// place of a pass (SPEC §13: an answer, a ticket), judged by `judge`
    /// (`crate::door::judge`).
    pub fn with_judge(mut self, judge: Arc<dyn ChallengeJudge>) -> Self {
        self.guard = self.guard.with_judge(judge);
        self
    }

    /// Sends a fresh code to `target`'s number (see the module), the door
    /// opened by `proof` (a pass, or the challenge itself) when the scene's
    /// level asks for one. What Tencent
    /// said, a spent budget and the guard's reasons go into `events` (for
    /// the metrics).
    pub async fn send(
        &self,
        target: &SmsTarget,
        proof: Option<Proof<'_>>,
        events: &mut Events,
    ) -> Result<CodeSent, SendRefusal> {
        let SmsTarget {
            scene,
            mobile,
            client,
        } = target;
        let settings = self.settings.sms.scene(scene);
        if !mobile.in_countries(&settings.countries) {
            return Err(ApiError::SmsCountryNotAllowed.into());
        }
        let door = Door::new(scene.clone(), PassRule::Auto);
        self.guard.admit(&door, proof, None, client, events).await?;
        let now_ms = self.options.clock().now_ms();
        let code = SmsCode::draw();
        let record = SmsCodeRecord {
            mobile: mobile.clone(),
            scene: scene.clone(),
            code_hash: code_hash(&sms_locator(scene, mobile), code.expose()),
            state: CaptchaState::Pending,
            ip: client.ip.clone().unwrap_or_default(),
            device: client.device.clone(),
            created_date: now_ms,
            expired_date: now_ms + seconds_ms(settings.expires_seconds),
            resend_after: now_ms + seconds_ms(settings.resend_seconds),
            attempts: 0,
            send_id: hex::encode(rand::random::<[u8; 8]>()),
        };
        let SendLimits { limits, kinds } = self.limits(target, settings, now_ms);
        match self.store.issue_sms_code(&record, &limits, now_ms).await? {
            SmsIssue::Written => {}
            SmsIssue::TooSoon { resend_after_ms } => {
                return Err(ApiError::SmsSendTooSoon {
                    retry_after_secs: whole_seconds(resend_after_ms - now_ms),
                }
                .into());
            }
            SmsIssue::Limited {
                index,
                window_end_ms,
            } => {
                let kind = kinds[index];
                tracing::warn!(scene = %scene, mobile = %mobile.masked(), ?kind, "SMS limit hit");
                let retry_after_secs = whole_seconds(window_end_ms - now_ms);
                return Err(SendRefusal::from(match kind {
                    LimitKind::Ip => rate_limited(window_end_ms, now_ms),
                    LimitKind::NumberDay => ApiError::SmsDailyLimit { retry_after_secs },
                    LimitKind::Budget => {
                        events.push(Event::SmsBudgetExhausted);
                        ApiError::SmsBudgetExhausted { retry_after_secs }
                    }
                }));
            }
        }
        let answer = self
            .client
            .send(
                &self.config,
                mobile,
                code.expose(),
                settings.minutes(),
                now_ms.div_euclid(1000),
            )
            .await;
        let (status, refusal) = judge(&answer);
        let billed = answer.as_ref().map_or(0, |s| s.fee);
        events.push(Event::SmsStatus { status, billed });
        match &answer {
            Ok(sent) => tracing::info!(scene = %scene, mobile = %mobile.masked(),
                code = %sent.code, request_id = %sent.request_id, fee = sent.fee, "SendSms answered"),
            Err(err) => tracing::error!(scene = %scene, mobile = %mobile.masked(),
                error = %err, "SendSms failed"),
        }
        if let Some(refusal) = refusal {
            // Not sent (or not known to be): no code may stay verifiable.
            // The resend window stays, so an impatient retry cannot send
            // twice what may yet arrive.
            if let Err(err) = self.store.void_sms_code(&record).await {
                tracing::error!(error = %err.0, "the unsent code could not be voided");
            }
            return Err(refusal.into());
        }
        Ok(CodeSent {
            resend_after: settings.resend_seconds,
            expires_in: settings.expires_seconds,
        })
    }

    /// The counters of a send: per IP (the root's `smsSendPerIp`, per
    /// window), per number and China day (`perMobilePerDay`, when on) and
    /// the scene's budget of the day (`dailyBudget`). A scene without an
    /// `sms` block counts the day and the budget in the root's bucket, so
    /// that inventing scene names multiplies neither.
    fn limits(&self, target: &SmsTarget, settings: &SmsSettings, now_ms: i64) -> SendLimits {
        let mut out = SendLimits {
            limits: Vec::with_capacity(3),
            kinds: Vec::with_capacity(3),
        };
        if let Some(ip) = rate_limit(&self.options)
            .counters(
                Route::SmsSend,
                "*",
                target.client.ip.as_deref(),
                None,
                now_ms,
            )
            .pop()
        {
            out.limits.push(ip);
            out.kinds.push(LimitKind::Ip);
        }
        let bucket = self.settings.sms.scene_bucket(target.scene.as_str());
        let day = china_day(now_ms);
        let window_end_ms = china_day_end_ms(day);
        if settings.per_mobile_per_day > 0 {
            out.limits.push(CounterLimit {
                name: format!("smsday|{bucket}|{day}|{}", target.mobile),
                limit: settings.per_mobile_per_day,
                window_end_ms,
            });
            out.kinds.push(LimitKind::NumberDay);
        }
        out.limits.push(CounterLimit {
            name: format!("smsbudget|{bucket}|{day}"),
            limit: settings.daily_budget,
            window_end_ms,
        });
        out.kinds.push(LimitKind::Budget);
        out
    }
}

/// Tencent's answer as a metric's status, and as the refusal it is when the
/// message was not sent (see the module).
fn judge(answer: &Result<SendStatus, UpstreamError>) -> (&'static str, Option<ApiError>) {
    let code = match answer {
        Ok(status) if status.code == SENT => return ("Ok", None),
        Ok(status) => status.code.as_str(),
        Err(UpstreamError::Api { code, .. }) => code.as_str(),
        Err(UpstreamError::Timeout(_) | UpstreamError::Connect(_) | UpstreamError::Status(_)) => {
            return ("Unreachable", Some(ApiError::SmsUpstreamError));
        }
        Err(UpstreamError::NotJson | UpstreamError::TooLarge) => {
            return ("NotJson", Some(ApiError::SmsUpstreamError));
        }
    };
    if code.starts_with("LimitExceeded.") {
        return ("LimitExceeded", Some(ApiError::SmsUpstreamLimited));
    }
    match code {
        "InvalidParameterValue.IncorrectPhoneNumber" => {
            ("IncorrectPhoneNumber", Some(ApiError::SmsMobileInvalid))
        }
        "FailedOperation.InsufficientBalanceInSmsPackage" => {
            ("InsufficientBalance", Some(ApiError::SmsUpstreamError))
        }
        _ => ("Failed", Some(ApiError::SmsUpstreamError)),
    }
}

/// SMS routes count at the root's limits, whatever the scene.
fn rate_limit(options: &ServiceOptions) -> &RateLimitConfig {
    options.rate_limits().root()
}

fn seconds_ms(seconds: u64) -> i64 {
    i64::try_from(seconds).map_or(i64::MAX, |s| s.saturating_mul(1000))
}

/// Whole seconds in `ms`, rounded up, at least 1 (a `Retry-After`).
fn whole_seconds(ms: i64) -> u64 {
    (ms.max(1).saturating_add(999) / 1000) as u64
}

/// `POST /sms/verify`, built once at start-up: the table alone (no Tencent
/// call, no secret).
pub struct SmsVerifier {
    settings: SmsRouteSettings,
    store: Arc<dyn SmsServiceStore>,
    options: ServiceOptions,
}

impl SmsVerifier {
    /// The service; the root's rate limits and the clock are the
    /// `options`'.
    pub fn new(
        settings: SmsRouteSettings,
        store: Arc<dyn SmsServiceStore>,
        options: &ServiceOptions,
    ) -> Self {
        Self {
            settings,
            store,
            options: options.clone(),
        }
    }

    /// Checks and spends `code` for `target`'s number (see the module): a
    /// pass of kind `sms`, or `sms-code-invalid` / `sms-code-expired`. A
    /// code that is not six digits cannot be right and counts no attempt.
    pub async fn verify(&self, target: &SmsTarget, code: &str) -> Result<PassIssued, ApiError> {
        if code.is_empty() {
            return Err(ApiError::SmsCodeRequired);
        }
        if !is_code_shaped(code) {
            return Err(ApiError::SmsCodeInvalid);
        }
        let (scene, mobile, client) = (&target.scene, &target.mobile, &target.client);
        let settings = self.settings.sms.scene(scene);
        let guard = self.settings.guard.scene(scene);
        let now_ms = self.options.clock().now_ms();
        let locator = sms_locator(scene, mobile);
        let counter = rate_limit(&self.options)
            .counters(Route::SmsVerify, "*", client.ip.as_deref(), None, now_ms)
            .pop();
        let answer_hash = code_hash(&locator, code);
        let outcome = counted(self.store.as_ref(), counter.as_ref(), now_ms, async {
            Ok(self
                .store
                .verify_sms_code(scene, mobile, &answer_hash, now_ms, settings.max_attempts)
                .await?)
        })
        .await?;
        match outcome {
            VerifyOutcome::Passed => {
                // The pass is a row of its own, written after the code was
                // judged right (only this function may write an sms pass,
                // and the number in it).
                let token = PassToken::issue(PassKind::Sms);
                let pass_expired = now_ms.saturating_add(seconds_ms(guard.pass_ttl_seconds));
                let grant = PassGrant {
                    kind: PassKind::Sms,
                    secret_hash: token.secret_hash(),
                    scene: scene.clone(),
                    device: client.device.clone(),
                    ip: client.ip.clone(),
                    ip_net: ip_net(client.ip.as_deref()),
                    evil_level: None,
                    degraded: false,
                    mobile: Some(mobile.clone()),
                    created_ms: now_ms,
                    expires_ms: pass_expired,
                };
                self.store.grant_pass(&grant).await?;
                Ok(PassIssued {
                    pass_token: token.encode(),
                    pass_expired,
                })
            }
            VerifyOutcome::Expired => Err(ApiError::SmsCodeExpired),
            VerifyOutcome::Wrong { .. } | VerifyOutcome::Voided => {
                count_failure(self.store.as_ref(), guard, scene, client, now_ms).await?;
                Err(ApiError::SmsCodeInvalid)
            }
            VerifyOutcome::NotFound | VerifyOutcome::NotPending => Err(ApiError::SmsCodeInvalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: &str) -> Result<SendStatus, UpstreamError> {
        Ok(SendStatus {
            code: code.into(),
            message: String::new(),
            fee: u64::from(code == SENT),
            request_id: "r".into(),
        })
    }

    fn api(code: &str) -> Result<SendStatus, UpstreamError> {
        Err(UpstreamError::Api {
            code: code.into(),
            request_id: "r".into(),
        })
    }

    #[test]
    fn every_upstream_answer_maps_to_its_status_and_refusal() {
        use ApiError::*;
        let cases = [
            (status("Ok"), "Ok", None),
            (
                status("LimitExceeded.PhoneNumberThirtySecondLimit"),
                "LimitExceeded",
                Some(SmsUpstreamLimited),
            ),
            (
                status("LimitExceeded.PhoneNumberOneHourLimit"),
                "LimitExceeded",
                Some(SmsUpstreamLimited),
            ),
            (
                status("LimitExceeded.PhoneNumberDailyLimit"),
                "LimitExceeded",
                Some(SmsUpstreamLimited),
            ),
            (
                status("InvalidParameterValue.IncorrectPhoneNumber"),
                "IncorrectPhoneNumber",
                Some(SmsMobileInvalid),
            ),
            (
                status("FailedOperation.InsufficientBalanceInSmsPackage"),
                "InsufficientBalance",
                Some(SmsUpstreamError),
            ),
            (
                status("FailedOperation.SignatureIncorrectOrUnapproved"),
                "Failed",
                Some(SmsUpstreamError),
            ),
            (status("ok"), "Failed", Some(SmsUpstreamError)),
            (api("InternalError"), "Failed", Some(SmsUpstreamError)),
            (
                api("AuthFailure.SignatureFailure"),
                "Failed",
                Some(SmsUpstreamError),
            ),
            (
                api("LimitExceeded.DeliveryFrequencyLimit"),
                "LimitExceeded",
                Some(SmsUpstreamLimited),
            ),
            (
                Err(UpstreamError::Timeout(std::time::Duration::from_secs(5))),
                "Unreachable",
                Some(SmsUpstreamError),
            ),
            (
                Err(UpstreamError::Status(500)),
                "Unreachable",
                Some(SmsUpstreamError),
            ),
            (
                Err(UpstreamError::NotJson),
                "NotJson",
                Some(SmsUpstreamError),
            ),
        ];
        for (answer, want_status, want_refusal) in cases {
            assert_eq!(judge(&answer), (want_status, want_refusal), "{answer:?}");
        }
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(whole_seconds(60_000), 60);
        assert_eq!(whole_seconds(59_001), 60);
        assert_eq!(whole_seconds(0), 1);
        assert_eq!(whole_seconds(-5), 1);
    }
}
