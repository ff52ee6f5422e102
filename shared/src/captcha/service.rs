//! Create, refresh and verify over the store, rate limits included: what the
//! three captcha routes do once [`super::routes`] has parsed the request.

use std::sync::Arc;

use serde::Serialize;

use super::code::new_challenge;
use super::config::CaptchaConfig;
use super::render::{Renderer, png_data_url};
use crate::clock::Clock;
use crate::config::blocks::PerScene;
use crate::domain::{DeviceId, Scene};
use crate::error::ApiError;
use crate::guard::config::GuardConfig;
use crate::guard::pass::{PassIssued, PassToken, ip_net};
use crate::guard::service::{Client, count_failure};
use crate::options::ServiceOptions;
use crate::ratelimit::{RateLimitConfig, Route, counted, rate_limited};
use crate::store::{
    CaptchaRecord, CaptchaServiceStore, CaptchaState, IssueMode, IssueOutcome, PassGrant, PassKind,
    VerifyOutcome,
};

/// What the captcha routes read of `CAPTCHA_CONFIG` besides the rate limits
/// (which come with the [`ServiceOptions`]), per scene: the captcha keys and
/// the guard's settings (pass lifetime, failure counting), each parsed by
/// the domain that owns it (see
/// [`crate::settings::Settings::captcha_settings`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaptchaSettings {
    pub captcha: CaptchaConfig,
    pub guard: GuardConfig,
}

/// Everything the captcha routes need, built once at start-up: the
/// [`CaptchaVerifier`] and the renderer that draws what it will judge.
pub struct CaptchaService {
    verifier: Arc<CaptchaVerifier>,
    renderer: Renderer,
}

/// What judges answers (verify, and a door's answer in place of a pass),
/// without the renderer: the door functions (the authorizer, the guard,
/// send-sms) build this alone, so they neither load a font nor link the
/// drawing (see `crate::lambda`).
pub struct CaptchaVerifier {
    settings: CaptchaSettings,
    store: Arc<dyn CaptchaServiceStore>,
    rate_limits: PerScene<RateLimitConfig>,
    clock: Clock,
}

/// Who a captcha is for: a scene and a device, from a client IP.
#[derive(Debug, Clone)]
pub struct CaptchaTarget {
    pub scene: Scene,
    pub device: DeviceId,
    /// `requestContext.http.sourceIp`, when the request carries one.
    pub ip: Option<String>,
}

/// The image a client asked for: its own width and height (already inside
/// [`super::WIDTH_RANGE`] and [`super::HEIGHT_RANGE`]), else the scene's.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImageSize {
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// The success data of create and refresh.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaptchaImage {
    pub captcha_base64: String,
}

impl CaptchaService {
    /// The service; the scenes' rate limits are the `options`'.
    pub fn new(
        settings: CaptchaSettings,
        renderer: Renderer,
        store: Arc<dyn CaptchaServiceStore>,
        options: &ServiceOptions,
    ) -> Self {
        Self {
            verifier: Arc::new(CaptchaVerifier::new(settings, store, options)),
            renderer,
        }
    }

    pub fn settings(&self) -> &CaptchaSettings {
        &self.verifier.settings
    }

    /// The service's answers' judge (the one a door on the same store uses).
    pub fn verifier(&self) -> &Arc<CaptchaVerifier> {
        &self.verifier
    }

    /// A new captcha for `target`: written (counters included) before it is
    /// drawn, so a refused request costs no rendering.
    pub async fn issue(
        &self,
        mode: IssueMode,
        target: CaptchaTarget,
        size: ImageSize,
    ) -> Result<CaptchaImage, ApiError> {
        let CaptchaTarget { scene, device, ip } = target;
        let cfg = self.verifier.settings.captcha.scene(scene.as_str());
        if !cfg.client_size && (size.width.is_some() || size.height.is_some()) {
            // Refused before anything is counted or written: the client
            // asked for what this scene never serves.
            return Err(ApiError::SizeNotAllowed);
        }
        let challenge = new_challenge(cfg.code());
        let now = self.verifier.clock.now_ms();
        let route = match mode {
            IssueMode::Create => Route::Create,
            IssueMode::Refresh => Route::Refresh,
        };
        // The counters go alongside the captcha's own write: one round trip,
        // and over a limit nothing is counted or written in the end.
        let rate_limits = &self.verifier.rate_limits;
        let limits = rate_limits.scene(&scene).counters(
            route,
            rate_limits.scene_bucket(scene.as_str()),
            ip.as_deref(),
            Some(device.as_str()),
            now,
        );
        let record = CaptchaRecord {
            device_uuid: device,
            scene,
            code: challenge.answer.clone(),
            state: CaptchaState::Pending,
            ip: ip.unwrap_or_default(),
            created_date: now,
            expired_date: now.saturating_add((cfg.expires_date as i64).saturating_mul(1000)),
            attempts: 0,
        };
        match self
            .verifier
            .store
            .issue_captcha(&record, mode, &limits)
            .await?
        {
            IssueOutcome::Written => {}
            IssueOutcome::NotFound => return Err(ApiError::RefreshFail),
            IssueOutcome::RateLimited { window_end_ms } => {
                tracing::warn!(route = route.as_str(), scene = %record.scene, "rate limit hit");
                return Err(rate_limited(window_end_ms, now));
            }
        }
        // A rendering failure leaves a captcha nobody can see; the client's
        // retry replaces it.
        let width = size.width.unwrap_or(cfg.width);
        let height = size.height.unwrap_or(cfg.height);
        let png = self
            .renderer
            .render_png(cfg, &challenge, width, height)
            .map_err(|err| {
                tracing::error!(error = %err, scene = %record.scene, "captcha rendering failed");
                ApiError::CreateFail
            })?;
        Ok(CaptchaImage {
            captcha_base64: png_data_url(&png),
        })
    }

    /// [`CaptchaVerifier::verify`].
    pub async fn verify(
        &self,
        target: &CaptchaTarget,
        answer: &str,
    ) -> Result<PassIssued, ApiError> {
        self.verifier.verify(target, answer).await
    }

    /// [`CaptchaVerifier::judge`].
    pub async fn judge(&self, target: &CaptchaTarget, answer: &str) -> Result<(), ApiError> {
        self.verifier.judge(target, answer).await
    }
}

impl CaptchaVerifier {
    /// The judge; the scenes' rate limits are the `options'`.
    pub fn new(
        settings: CaptchaSettings,
        store: Arc<dyn CaptchaServiceStore>,
        options: &ServiceOptions,
    ) -> Self {
        Self {
            settings,
            store,
            rate_limits: options.rate_limits().clone(),
            clock: options.clock().clone(),
        }
    }

    pub fn settings(&self) -> &CaptchaSettings {
        &self.settings
    }

    /// Checks `answer` (normalised, not empty) for `target`'s captcha,
    /// passing at most once; a pass earns a pass token, its own row written
    /// in the same atomic write that judges the answer (one request for a
    /// right answer on DynamoDB: see
    /// [`crate::store::CaptchaStore::verify_captcha_granting`]). The per-IP counter is counted
    /// alongside; over the limit the answer is `rate-limited` whatever the
    /// verify came to, so a brute force learns nothing from the requests
    /// past the limit. A wrong answer counts as a failure for the scene's
    /// guard.
    pub async fn verify(
        &self,
        target: &CaptchaTarget,
        answer: &str,
    ) -> Result<PassIssued, ApiError> {
        let now_ms = self.clock.now_ms();
        let guard = self.settings.guard.scene(target.scene.as_str());
        // The pass a right answer earns, drawn before the verify so that
        // the one write that judges the answer grants it (a row of its own,
        // which nothing done to the captcha row touches), and so that a
        // retry of that write after a lost response answers this same pass.
        let token = PassToken::issue(PassKind::Captcha);
        let pass_expired =
            now_ms.saturating_add((guard.pass_ttl_seconds as i64).saturating_mul(1000));
        let grant = PassGrant {
            kind: PassKind::Captcha,
            secret_hash: token.secret_hash(),
            scene: target.scene.clone(),
            device: Some(target.device.clone()),
            ip: target.ip.clone(),
            ip_net: ip_net(target.ip.as_deref()),
            evil_level: None,
            degraded: false,
            mobile: None,
            created_ms: now_ms,
            expires_ms: pass_expired,
        };
        self.judge_as(Some(Route::Verify), target, answer, Some(&grant), now_ms)
            .await?;
        Ok(PassIssued {
            pass_token: token.encode(),
            pass_expired,
        })
    }

    /// [`Self::verify`] without the pass: what a door does with an answer
    /// brought in place of one. The answer is judged in the captcha's one
    /// conditional write, a wrong one counted as a failure, with no per-IP
    /// counter of its own: every answer needs a captcha, which only a
    /// rate-limited create makes, and a captcha takes `maxAttempts` answers
    /// (so a right answer at the door is one write unit: create 3, door 1).
    pub async fn judge(&self, target: &CaptchaTarget, answer: &str) -> Result<(), ApiError> {
        let now_ms = self.clock.now_ms();
        self.judge_as(None, target, answer, None, now_ms).await
    }

    /// Judges `answer`, granting `pass` in the same write when it is right,
    /// and counting `route`'s per-IP counter alongside, if any.
    async fn judge_as(
        &self,
        route: Option<Route>,
        target: &CaptchaTarget,
        answer: &str,
        pass: Option<&PassGrant>,
        now_ms: i64,
    ) -> Result<(), ApiError> {
        let scene = target.scene.as_str();
        let cfg = self.settings.captcha.scene(scene);
        let guard = self.settings.guard.scene(scene);
        let rate_limits = &self.rate_limits;
        let counter = route.and_then(|route| {
            rate_limits
                .scene(scene)
                .counters(
                    route,
                    rate_limits.scene_bucket(scene),
                    target.ip.as_deref(),
                    None,
                    now_ms,
                )
                .pop()
        });
        let outcome = counted(self.store.as_ref(), counter.as_ref(), now_ms, async {
            Ok(self
                .store
                .verify_captcha_granting(
                    &target.scene,
                    &target.device,
                    answer,
                    now_ms,
                    cfg.max_attempts,
                    pass,
                )
                .await?)
        })
        .await?;
        match outcome {
            VerifyOutcome::Passed => Ok(()),
            VerifyOutcome::Expired => Err(ApiError::VerifyOverdue),
            VerifyOutcome::Wrong { .. } | VerifyOutcome::Voided => {
                let client = Client {
                    ip: target.ip.clone(),
                    device: Some(target.device.clone()),
                    openid: None,
                    phone_number: None,
                };
                count_failure(self.store.as_ref(), guard, &target.scene, &client, now_ms).await?;
                Err(ApiError::VerifyFail)
            }
            VerifyOutcome::NotFound | VerifyOutcome::NotPending => Err(ApiError::VerifyFail),
        }
    }
}
