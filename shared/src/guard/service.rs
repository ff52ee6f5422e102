//! The guard's decisions: which level a client must pass in a scene, the
//! redemption of its pass, and the failures that raise the level. The
//! authorizer, `POST /guard/check` and Rust business Lambdas all decide
//! through [`Guard::check`].

use std::sync::Arc;

use super::challenge::{Challenge, ChallengeJudge};
use super::config::{Door, GuardConfig, GuardSettings, Level, PassRule};
use super::pass::{PassToken, ip_net};
use crate::clock::Clock;
use crate::domain::{DeviceId, Scene};
use crate::error::ApiError;
use crate::options::ServiceOptions;
use crate::ratelimit::ip_key;
use crate::store::{CounterStore, GuardStore, PassClaim, PassKind, RedeemedPass, Redemption};

/// What a request brings to a door: a pass token, or the challenge itself
/// (SPEC §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof<'a> {
    Pass(&'a str),
    Challenge(&'a Challenge),
}

/// An idempotency key of `POST /guard/check`: 1 to 64 of `[A-Za-z0-9_-]`.
/// The same key and pass again, within the pass's lifetime, answer the
/// same admission; the pass under another key is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

/// Longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 64;

impl IdempotencyKey {
    /// `key` if it is one, else `invalid-request`.
    pub fn parse(key: &str) -> Result<Self, ApiError> {
        let valid = (1..=MAX_IDEMPOTENCY_KEY_CHARS).contains(&key.len())
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(ApiError::InvalidRequest(format!(
                "idempotencyKey must be 1-{MAX_IDEMPOTENCY_KEY_CHARS} of A-Z a-z 0-9 _ -"
            )));
        }
        Ok(Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who is asking: the client IP and device, when known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    pub ip: Option<String>,
    pub device: Option<DeviceId>,
}

/// The device a request to the guard names: `named` (its body's or
/// query's `deviceId`), else the `X-Device-Id` header; `None` when neither
/// is there. Strict: a value that is no device id (empty, too long, not
/// visible ASCII) is `guard-invalid-device`, never taken for no device, or
/// a pass earned on one device would open a door for any other. A header
/// that is sent is checked even when `named` wins.
pub fn named_device(
    named: Option<&str>,
    headers: &http::HeaderMap,
) -> Result<Option<DeviceId>, ApiError> {
    let parse = |text: &str| DeviceId::parse(text.trim()).map_err(|_| ApiError::GuardInvalidDevice);
    let from_header = match headers.get("x-device-id") {
        Some(header) => Some(parse(
            header.to_str().map_err(|_| ApiError::GuardInvalidDevice)?,
        )?),
        None => None,
    };
    match named {
        Some(named) => parse(named).map(Some),
        None => Ok(from_header),
    }
}

/// An admitted request: the level that applied and, when it asked for one,
/// the pass that was redeemed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub level: Level,
    pub pass: Option<RedeemedPass>,
}

/// The guard over one store, built once at start-up.
#[derive(Clone)]
pub struct Guard {
    config: GuardConfig,
    store: Arc<dyn GuardStore>,
    clock: Clock,
    /// Judges a challenge brought in place of a pass; without one, a
    /// challenge is refused as no pass.
    judge: Option<Arc<dyn ChallengeJudge>>,
}

impl Guard {
    /// The guard of the scenes `config` sets up; of the `options` it reads
    /// the clock (it counts failures, not requests).
    pub fn new(config: GuardConfig, store: Arc<dyn GuardStore>, options: &ServiceOptions) -> Self {
        Self {
            config,
            store,
            clock: options.clock().clone(),
            judge: None,
        }
    }

    /// The guard whose doors also take the challenge itself (see
    /// [`super::challenge`]); `crate::door::judge` makes the judge.
    pub fn with_judge(self, judge: Arc<dyn ChallengeJudge>) -> Self {
        Self {
            judge: Some(judge),
            ..self
        }
    }

    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// The level `client` must pass in `scene` now: one request (both of
    /// its failure counters in one read), none when the scene's guard is
    /// off.
    pub async fn level(&self, scene: &Scene, client: &Client) -> Result<Level, ApiError> {
        let settings = self.config.scene(scene);
        if settings.mode == super::config::GuardMode::Off {
            return Ok(Level::None);
        }
        let counters = FailureCounters::of(settings, scene, client, self.clock.now_ms());
        let counts = self.store.counts(&counters.names()).await?;
        Ok(settings.level(counts.into_iter().max().unwrap_or(0)))
    }

    /// Admits `client` to `door`: with no pass when none is needed (a pass
    /// sent anyway is left unspent; something that is no pass token at all
    /// is refused), else only by redeeming `token` (at
    /// most once, however many requests race; again only under the same
    /// `idempotency_key`, within the pass's lifetime). A refusal is
    /// `guard-captcha-required`, `guard-tencent-required` or
    /// `guard-pass-invalid`; a refused pass (unknown, used, expired, of
    /// another scene, device or IP) stays unspent and counts as a failure
    /// of the door's scene, as a wrong answer does.
    pub async fn check(
        &self,
        door: &Door,
        token: Option<&str>,
        idempotency_key: Option<&IdempotencyKey>,
        client: &Client,
    ) -> Result<Admission, ApiError> {
        let scene = &door.scene;
        let level = self.door_level(door, client).await?;
        // Something that is no pass token at all (an empty one included) is
        // refused at any level.
        let token = match token.map(PassToken::parse) {
            Some(None) => return Err(self.refused(scene, client, "not a pass token").await),
            Some(Some(token)) => Some(token),
            None => None,
        };
        if level == Level::None {
            return Ok(Admission { level, pass: None });
        }
        let Some(token) = token else {
            return Err(required(level));
        };
        // A captcha pass cannot open a door that wants a ticket: left
        // unspent (the client may still use it elsewhere), unless this is
        // the retry of a check that redeemed it under the same key.
        let wrong_kind = level == Level::Tencent && token.kind() == PassKind::Captcha;
        if wrong_kind && idempotency_key.is_none() {
            tracing::info!(scene = %scene, "pass refused: a ticket pass is required");
            return Err(ApiError::GuardPassInvalid);
        }
        let ip_net = ip_net(client.ip.as_deref());
        if door.bind_ip && ip_net.is_none() {
            return Err(self.refused(scene, client, "no IP to bind").await);
        }
        let secret_hash = token.secret_hash();
        let claim = PassClaim {
            kind: token.kind(),
            secret_hash: &secret_hash,
            scene,
            device: client.device.as_ref(),
            bind_device: door.bind_device,
            bind_ip_net: ip_net.as_deref().filter(|_| door.bind_ip),
            idempotency_key: idempotency_key.map(IdempotencyKey::as_str),
            replay_only: wrong_kind,
            now_ms: self.clock.now_ms(),
        };
        match self.store.redeem_pass(&claim).await? {
            Redemption::Redeemed(pass) => Ok(Admission {
                level,
                pass: Some(pass),
            }),
            _ if wrong_kind => {
                tracing::info!(scene = %scene, "pass refused: a ticket pass is required");
                Err(ApiError::GuardPassInvalid)
            }
            refusal => Err(self.refused(scene, client, refusal.reason()).await),
        }
    }

    /// Admits `client` to `door` with what it brought: a pass ([`Self::check`])
    /// or the challenge itself ([`Self::check_challenge`]); nothing is a
    /// pass not sent.
    pub async fn admit(
        &self,
        door: &Door,
        proof: Option<Proof<'_>>,
        idempotency_key: Option<&IdempotencyKey>,
        client: &Client,
    ) -> Result<Admission, ApiError> {
        match proof {
            Some(Proof::Challenge(challenge)) => {
                self.check_challenge(door, challenge, client).await
            }
            Some(Proof::Pass(token)) => {
                self.check(door, Some(token), idempotency_key, client).await
            }
            None => self.check(door, None, idempotency_key, client).await,
        }
    }

    /// Admits `client` to `door` by judging the challenge it brought in
    /// place of a pass (SPEC §13), spending it, with the answers a pass
    /// would get where the level decides: none needed, it is left unspent;
    /// an answer where only a ticket will do is `guard-pass-invalid`, left
    /// unspent. An answer needs the device its captcha was made for
    /// (`uni-captcha-deviceId-required`). A wrong answer or a rejected
    /// ticket is verify's or ticket verify's error, counted as a failure
    /// as those count it. The admission's pass is the challenge, as the
    /// context tells it (`passKind`, `evilLevel`, `degraded`).
    pub async fn check_challenge(
        &self,
        door: &Door,
        challenge: &Challenge,
        client: &Client,
    ) -> Result<Admission, ApiError> {
        let level = self.door_level(door, client).await?;
        if level == Level::None {
            return Ok(Admission { level, pass: None });
        }
        let Some(judge) = &self.judge else {
            tracing::info!(scene = %door.scene, "no judge of challenges here: refused as no pass");
            return Err(required(level));
        };
        if level == Level::Tencent && challenge.kind() == PassKind::Captcha {
            tracing::info!(scene = %door.scene, "answer refused: a ticket is required");
            return Err(ApiError::GuardPassInvalid);
        }
        if matches!(challenge, Challenge::Answer(_)) && client.device.is_none() {
            return Err(ApiError::DeviceIdRequired);
        }
        let judged = judge.judge(&door.scene, challenge, client).await?;
        Ok(Admission {
            level,
            pass: Some(RedeemedPass {
                kind: challenge.kind(),
                scene: door.scene.clone(),
                device: client.device.clone(),
                ip: client.ip.clone().unwrap_or_default(),
                evil_level: judged.evil_level,
                degraded: judged.degraded,
                created_ms: self.clock.now_ms(),
            }),
        })
    }

    /// The level `door` asks of `client` now, by its pass rule.
    async fn door_level(&self, door: &Door, client: &Client) -> Result<Level, ApiError> {
        Ok(match door.pass {
            PassRule::Never => Level::None,
            PassRule::Auto => self.level(&door.scene, client).await?,
            PassRule::Always => self.level(&door.scene, client).await?.max(Level::Image),
        })
    }

    /// Counts a refused pass as a failure of `scene` (a store failure of
    /// the count is logged: the refusal stands) and answers
    /// `guard-pass-invalid`.
    async fn refused(&self, scene: &Scene, client: &Client, reason: &'static str) -> ApiError {
        tracing::info!(scene = %scene, reason, "pass refused");
        let settings = self.config.scene(scene);
        let now_ms = self.clock.now_ms();
        if let Err(err) = count_failure(self.store.as_ref(), settings, scene, client, now_ms).await
        {
            tracing::warn!(error = %err, "a refused pass was not counted");
        }
        ApiError::GuardPassInvalid
    }

    /// Counts one failure of `client` in `scene` (a wrong password, say)
    /// and returns the level it now stands at. Nothing lowers a count but
    /// the end of its window.
    pub async fn report(&self, scene: &Scene, client: &Client) -> Result<Level, ApiError> {
        let settings = self.config.scene(scene);
        let worst = count_failure(
            self.store.as_ref(),
            settings,
            scene,
            client,
            self.clock.now_ms(),
        )
        .await?;
        Ok(settings.level(worst))
    }
}

/// The refusal of a request that brought no pass.
fn required(level: Level) -> ApiError {
    match level {
        Level::Tencent => ApiError::GuardTencentRequired,
        _ => ApiError::GuardCaptchaRequired,
    }
}

/// The failure counters of `client` in `scene` for the window holding
/// `now_ms`: per IP (requests without one share a bucket) and per device
/// when known, all ending with the window.
#[derive(Debug, PartialEq, Eq)]
struct FailureCounters {
    ip: String,
    device: Option<String>,
    window_end_ms: i64,
}

impl FailureCounters {
    fn of(settings: &GuardSettings, scene: &Scene, client: &Client, now_ms: i64) -> Self {
        let len = (settings.failure_window_seconds.max(1) as i64).saturating_mul(1000);
        let start = now_ms.saturating_sub(now_ms.rem_euclid(len));
        let window = start.div_euclid(1000);
        // An IPv6 client counts by its /64, as for the rate limits.
        let ip = ip_key(client.ip.as_deref());
        Self {
            ip: format!("guard|ip|{scene}|{window}|{ip}"),
            device: client
                .device
                .as_ref()
                .map(|device| format!("guard|dev|{scene}|{window}|{device}")),
            window_end_ms: start.saturating_add(len),
        }
    }

    fn names(&self) -> Vec<String> {
        std::iter::once(self.ip.clone())
            .chain(self.device.clone())
            .collect()
    }
}

/// Counts one failure of `client` in `scene` (both counters at once) when
/// the scene's guard is on; returns the larger count. Used by the captcha
/// and ticket routes for wrong answers and rejected tickets, and by
/// [`Guard::report`].
pub async fn count_failure(
    store: &dyn CounterStore,
    settings: &GuardSettings,
    scene: &Scene,
    client: &Client,
    now_ms: i64,
) -> Result<u64, ApiError> {
    if settings.mode == super::config::GuardMode::Off {
        return Ok(0);
    }
    let counters = FailureCounters::of(settings, scene, client, now_ms);
    let end = counters.window_end_ms;
    let Some(device) = &counters.device else {
        return Ok(store.increment_counter(&counters.ip, end).await?);
    };
    let (by_ip, by_device) = tokio::join!(
        store.increment_counter(&counters.ip, end),
        store.increment_counter(device, end)
    );
    Ok(by_ip?.max(by_device?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::config::GuardMode;

    #[test]
    fn failure_counters_are_per_scene_window_ip_and_device() {
        let settings = GuardSettings {
            mode: GuardMode::Adaptive,
            failure_window_seconds: 60,
            ..GuardSettings::default()
        };
        let scene = Scene::parse("login").unwrap();
        let client = Client {
            ip: Some("203.0.113.9".into()),
            device: Some(DeviceId::parse("d|1").unwrap()),
        };
        assert_eq!(
            FailureCounters::of(&settings, &scene, &client, 61_500),
            FailureCounters {
                ip: "guard|ip|login|60|203.0.113.9".into(),
                device: Some("guard|dev|login|60|d|1".into()),
                window_end_ms: 120_000,
            }
        );
        let v6 = Client {
            ip: Some("2001:db8:5:6:1:2:3:4".into()),
            device: None,
        };
        assert_eq!(
            FailureCounters::of(&settings, &scene, &v6, 0).names(),
            vec!["guard|ip|login|0|2001:db8:5:6::/64".to_owned()]
        );
        let anonymous = FailureCounters::of(&settings, &scene, &Client::default(), 0);
        assert_eq!(
            anonymous.names(),
            vec!["guard|ip|login|0|unknown".to_owned()]
        );
    }
}
