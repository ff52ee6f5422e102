//! The guard's decisions: which level a client must pass in a scene and
//! why, the redemption of its pass, and the requests and failures that
//! raise the level. The authorizer, `POST /guard/check` and Rust business
//! Lambdas all decide through [`Guard::admit`] (or [`Guard::check`], the
//! same with a plain error). A door takes a pass or, in its place, the
//! challenge itself (SPEC §13), judged by a [`ChallengeJudge`].

use std::sync::Arc;

use super::challenge::{Challenge, ChallengeJudge};
use super::config::{
    Door, GuardConfig, GuardMode, GuardSettings, Level, PassRule, StoreErrorPolicy,
};
pub use super::counters::{Observed, count_failure};
use super::counters::{RankRow, Whose, count_request, read};
use super::level::{Reason, Reasons, Standing};
use super::pass::{PassToken, ip_net};
use super::wx_risk::RankDecision;
use crate::clock::Clock;
use crate::domain::{DeviceId, Scene};
use crate::error::ApiError;
use crate::metrics::{Event, Events};
use crate::options::ServiceOptions;
use crate::store::{GuardStore, PassClaim, PassKind, RedeemedPass, Redemption};
use crate::wechat::risk::RiskRanks;
use crate::wechat::risk_rank::RiskRankRequest;

/// What a request brings to a door: a pass token, or the challenge itself
/// (SPEC §13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof<'a> {
    Pass(&'a str),
    Challenge(&'a Challenge),
}

impl<'a> Proof<'a> {
    /// The pass token sent, as [`Guard::check`] takes one.
    pub fn pass(token: Option<&'a str>) -> Option<Self> {
        token.map(Proof::Pass)
    }
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

/// Who is asking: the client IP, its device, and the openid of its session
/// (with the phone number `POST /wx/phone` kept with it), when known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    pub ip: Option<String>,
    pub device: Option<DeviceId>,
    pub openid: Option<String>,
    /// Sent to WeChat's risk check as `mobile_no` (never logged).
    pub phone_number: Option<String>,
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

/// An admitted request: the level that applied and why, and the pass that
/// was redeemed when it asked for one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub level: Level,
    pub reasons: Reasons,
    pub pass: Option<RedeemedPass>,
    /// Admitted without the store's word, as the scene's `onStoreError:
    /// "admit"` says (no pass was checked).
    pub degraded: bool,
}

/// A refused request: why (`guard-captcha-required`,
/// `guard-tencent-required`, `guard-pass-invalid`, `store-unavailable` …)
/// and where the client stood (level `none` when the store failed before
/// it was known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: ApiError,
    pub standing: Standing,
}

/// The guard over one store, built once at start-up.
#[derive(Clone)]
pub struct Guard {
    config: GuardConfig,
    store: Arc<dyn GuardStore>,
    clock: Clock,
    /// WeChat's risk ranks, where a scene's `guard.wxRisk` asks for them.
    ranks: Option<Arc<RiskRanks>>,
    /// Judges a challenge brought in place of a pass; without one, a
    /// challenge is refused as no pass.
    judge: Option<Arc<dyn ChallengeJudge>>,
}

impl Guard {
    /// The guard of the scenes `config` sets up; of the `options` it reads
    /// the clock (it counts requests and failures, not rate limits).
    pub fn new(config: GuardConfig, store: Arc<dyn GuardStore>, options: &ServiceOptions) -> Self {
        Self {
            config,
            store,
            clock: options.clock().clone(),
            ranks: None,
            judge: None,
        }
    }

    /// The guard whose doors also take the challenge itself (see
    /// [`super::challenge`]); `crate::door::judge` makes the judge.
    pub fn with_judge(mut self, judge: Arc<dyn ChallengeJudge>) -> Self {
        self.judge = Some(judge);
        self
    }

    /// The same guard asking WeChat for a signed-in user's risk rank where
    /// a scene's `guard.wxRisk` says so (`None`: the counters alone
    /// decide, as where no scene does).
    pub fn with_risk_ranks(mut self, ranks: Option<RiskRanks>) -> Self {
        self.ranks = ranks.map(Arc::new);
        self
    }

    pub fn config(&self) -> &GuardConfig {
        &self.config
    }

    /// Where `client` stands in `scene` for its next request at an `auto`
    /// door, counting nothing (`GET /guard/status`): one request (its rows
    /// read at once, with its user's cached risk rank), none when the
    /// scene's guard is off; a user WeChat's rank refuses is
    /// `guard-refused`.
    pub async fn standing(&self, scene: &Scene, client: &Client) -> Result<Standing, Refusal> {
        let settings = self.config.scene(scene);
        let rank = self.rank_row(settings, client.openid.as_deref());
        let now_ms = self.clock.now_ms();
        let mut events = Events::default();
        let store = self.store.as_ref();
        let observed = read(
            store,
            settings,
            scene,
            Whose::Client(client),
            rank,
            now_ms,
            &mut events,
        )
        .await
        .map_err(|error| Refusal {
            error,
            standing: Standing::NONE,
        })?;
        let next = Observed {
            counts: observed.counts.next(),
            ..observed
        };
        self.judge(settings, PassRule::Auto, client, next, &mut events)
            .await
    }

    /// The level of [`Guard::standing`].
    pub async fn level(&self, scene: &Scene, client: &Client) -> Result<Level, ApiError> {
        Ok(self
            .standing(scene, client)
            .await
            .map_err(|refusal| refusal.error)?
            .level)
    }

    /// Counts one request of `client` at a door of `scene`, in the row of
    /// each subject it names, and answers what it is judged by
    /// ([`Guard::decide`]): one write per row, all at once, with its
    /// user's cached risk rank read beside them where the scene asks
    /// WeChat (a read where the scene counts no request; nothing where its
    /// guard is off). A door that learns the openid late (a session door)
    /// counts its row by itself ([`Guard::count_openid`]) and merges
    /// ([`Observed::merge`]).
    pub async fn count(
        &self,
        scene: &Scene,
        client: &Client,
        events: &mut Events,
    ) -> Result<Observed, ApiError> {
        let openid = client.openid.as_deref();
        self.count_whose(scene, Whose::Client(client), openid, events)
            .await
    }

    /// [`Guard::count`] for the row of `openid` alone (and its rank).
    pub async fn count_openid(
        &self,
        scene: &Scene,
        openid: &str,
        events: &mut Events,
    ) -> Result<Observed, ApiError> {
        self.count_whose(scene, Whose::Openid(openid), Some(openid), events)
            .await
    }

    async fn count_whose(
        &self,
        scene: &Scene,
        whose: Whose<'_>,
        openid: Option<&str>,
        events: &mut Events,
    ) -> Result<Observed, ApiError> {
        let settings = self.config.scene(scene);
        let rank = self.rank_row(settings, openid);
        let now_ms = self.clock.now_ms();
        let store = self.store.as_ref();
        count_request(store, settings, scene, whose, rank, now_ms, events).await
    }

    /// The risk rank row to read for `openid` in a scene of `settings`:
    /// where the scene asks WeChat and its guard is on.
    fn rank_row<'a>(
        &self,
        settings: &GuardSettings,
        openid: Option<&'a str>,
    ) -> Option<RankRow<'a>> {
        let wx = settings.wx_risk.as_ref()?;
        (self.ranks.is_some() && settings.mode != GuardMode::Off).then_some(())?;
        Some(RankRow {
            scene: wx.scene.number(),
            openid: openid?,
        })
    }

    /// Where a client `observed` so stands at a door with `rule`: the level
    /// of its counters and the door, raised by WeChat's rank of its user
    /// where the scene asks (`wxRisk`: the cached rank, or one WeChat call
    /// and one write); refused (`guard-refused`) from `refuseFromRank`.
    /// WeChat failing leaves the counters to decide.
    async fn judge(
        &self,
        settings: &GuardSettings,
        rule: PassRule,
        client: &Client,
        observed: Observed,
        events: &mut Events,
    ) -> Result<Standing, Refusal> {
        let standing = settings.standing(rule, &observed.counts);
        let asked = (rule != PassRule::Never && settings.mode != GuardMode::Off)
            .then_some(())
            .and(self.ranks.as_ref().zip(settings.wx_risk.as_ref()));
        let (Some((ranks, wx)), Some(openid), Some(ip)) =
            (asked, client.openid.as_deref(), client.ip.as_deref())
        else {
            return Ok(standing);
        };
        let user = RiskRankRequest {
            openid,
            scene: wx.scene,
            client_ip: ip,
            mobile_no: client.phone_number.as_deref(),
            is_test: false,
        };
        let lookup = ranks
            .rank_from(&user, wx.cache_seconds, observed.rank_row, events)
            .await;
        match lookup
            .rank()
            .map(|rank| wx.decision(rank, settings.tencent_enabled))
        {
            None => Ok(standing),
            Some(RankDecision::Level(level)) => Ok(standing.with(level, Reason::WxRisk)),
            Some(RankDecision::Refuse) => Err(Refusal {
                error: ApiError::GuardRefused,
                standing: standing.with(settings.capped(Level::Tencent), Reason::WxRisk),
            }),
        }
    }

    /// Counts the request ([`Guard::count`]) and decides it
    /// ([`Guard::decide`]).
    pub async fn admit(
        &self,
        door: &Door,
        proof: Option<Proof<'_>>,
        idempotency_key: Option<&IdempotencyKey>,
        client: &Client,
        events: &mut Events,
    ) -> Result<Admission, Refusal> {
        let observed = self.count(&door.scene, client, events).await;
        self.decide(door, proof, idempotency_key, client, observed, events)
            .await
    }

    /// [`Guard::admit`] with a pass token (or none) and a plain error, for
    /// callers that need no standing with a refusal and no metrics.
    pub async fn check(
        &self,
        door: &Door,
        token: Option<&str>,
        idempotency_key: Option<&IdempotencyKey>,
        client: &Client,
    ) -> Result<Admission, ApiError> {
        let mut events = Events::default();
        let proof = Proof::pass(token);
        self.admit(door, proof, idempotency_key, client, &mut events)
            .await
            .map_err(|refusal| refusal.error)
    }

    /// [`Guard::check`] with the challenge itself in place of a pass.
    pub async fn check_challenge(
        &self,
        door: &Door,
        challenge: &Challenge,
        client: &Client,
    ) -> Result<Admission, ApiError> {
        let mut events = Events::default();
        let proof = Some(Proof::Challenge(challenge));
        self.admit(door, proof, None, client, &mut events)
            .await
            .map_err(|refusal| refusal.error)
    }

    /// Decides a request `observed` so at `door` ([`Guard::judge`]):
    /// admitted with no pass when none is needed (a pass or a challenge
    /// sent anyway is left unspent), else only by redeeming the pass token
    /// (at most once, however many requests race; again only under the
    /// same `idempotency_key`, within the pass's lifetime) or by judging
    /// the challenge brought in its place ([`Guard::spend_challenge`]). The
    /// reasons of a level above `none` are told in `events`. A refused pass
    /// (unknown, used, expired, of another scene, device or IP) stays
    /// unspent and counts as a failure of the door's scene, as a wrong
    /// answer does. A store failure refuses the request, or admits it
    /// `degraded` where the scene says `onStoreError: "admit"`.
    pub async fn decide(
        &self,
        door: &Door,
        proof: Option<Proof<'_>>,
        idempotency_key: Option<&IdempotencyKey>,
        client: &Client,
        observed: Result<Observed, ApiError>,
        events: &mut Events,
    ) -> Result<Admission, Refusal> {
        let settings = self.config.scene(&door.scene);
        let judged = match observed {
            Ok(observed) => {
                self.judge(settings, door.pass, client, observed, events)
                    .await
            }
            Err(error) => return store_failed(settings, error, Standing::NONE, events),
        };
        let standing = match &judged {
            Ok(standing) => *standing,
            Err(refusal) => refusal.standing,
        };
        for reason in standing.reasons.iter() {
            events.push(Event::GuardReason {
                reason: reason.as_str(),
            });
        }
        judged?;
        let redeemed = match proof {
            Some(Proof::Challenge(challenge)) => {
                self.spend_challenge(door, standing.level, challenge, client)
                    .await
            }
            Some(Proof::Pass(token)) => {
                self.redeem(door, standing.level, Some(token), idempotency_key, client)
                    .await
            }
            None => {
                self.redeem(door, standing.level, None, idempotency_key, client)
                    .await
            }
        };
        match redeemed {
            Ok(pass) => Ok(Admission {
                level: standing.level,
                reasons: standing.reasons,
                pass,
                degraded: false,
            }),
            Err(error) => store_failed(settings, error, standing, events),
        }
    }

    /// Redeems `token` where `level` asks for a pass at `door` (none where
    /// it does not); a refusal is `guard-captcha-required`,
    /// `guard-tencent-required` or `guard-pass-invalid`.
    async fn redeem(
        &self,
        door: &Door,
        level: Level,
        token: Option<&str>,
        idempotency_key: Option<&IdempotencyKey>,
        client: &Client,
    ) -> Result<Option<RedeemedPass>, ApiError> {
        let scene = &door.scene;
        // Something that is no pass token at all (an empty one included) is
        // refused at any level.
        let token = match token.map(PassToken::parse) {
            Some(None) => return Err(self.refused(scene, client, "not a pass token").await),
            Some(Some(token)) => Some(token),
            None => None,
        };
        if level == Level::None {
            return Ok(None);
        }
        let Some(token) = token else {
            return Err(required(level));
        };
        // A captcha or SMS pass cannot open a door that wants a ticket:
        // left unspent (the client may still use it elsewhere), unless this
        // is the retry of a check that redeemed it under the same key.
        let wrong_kind = level == Level::Tencent && token.kind() != PassKind::Ticket;
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
            Redemption::Redeemed(pass) => Ok(Some(pass)),
            _ if wrong_kind => {
                tracing::info!(scene = %scene, "pass refused: a ticket pass is required");
                Err(ApiError::GuardPassInvalid)
            }
            refusal => Err(self.refused(scene, client, refusal.reason()).await),
        }
    }

    /// Judges `challenge`, brought to `door` in place of a pass (SPEC §13),
    /// where `level` asks for a pass, spending it: none needed, it is left
    /// unspent; an answer where only a ticket will do is
    /// `guard-pass-invalid`, left unspent. An answer needs the device its
    /// captcha was made for (`uni-captcha-deviceId-required`). A wrong
    /// answer or a rejected ticket is verify's or ticket verify's error,
    /// counted as a failure as those count it. The pass it answers is the
    /// challenge, as the context tells it (`passKind`, `evilLevel`,
    /// `degraded`).
    async fn spend_challenge(
        &self,
        door: &Door,
        level: Level,
        challenge: &Challenge,
        client: &Client,
    ) -> Result<Option<RedeemedPass>, ApiError> {
        if level == Level::None {
            return Ok(None);
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
        Ok(Some(RedeemedPass {
            kind: challenge.kind(),
            scene: door.scene.clone(),
            device: client.device.clone(),
            ip: client.ip.clone().unwrap_or_default(),
            evil_level: judged.evil_level,
            degraded: judged.degraded,
            mobile: None,
            created_ms: self.clock.now_ms(),
        }))
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
    /// and returns the level it now stands at by its failures. Nothing
    /// lowers a count but the end of its window.
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

/// `error` as a door of `settings` answers it: a store failure admits
/// `degraded` where the scene says `onStoreError: "admit"` (and is told in
/// `events`); anything else refuses.
fn store_failed(
    settings: &GuardSettings,
    error: ApiError,
    standing: Standing,
    events: &mut Events,
) -> Result<Admission, Refusal> {
    if error == ApiError::StoreUnavailable && settings.on_store_error == StoreErrorPolicy::Admit {
        tracing::warn!("the store failed a guarded request: admitted, degraded (onStoreError)");
        events.push(Event::GuardDegraded);
        return Ok(Admission {
            level: standing.level,
            reasons: standing.reasons,
            pass: None,
            degraded: true,
        });
    }
    Err(Refusal { error, standing })
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::config::blocks::SceneBlocks;
    use crate::guard::challenge::Judged;
    use crate::ratelimit::RateLimitConfig;
    use crate::store::memory::MemoryStore;

    /// A judge whose store fails (or that counts a wrong answer).
    struct Failing(ApiError);

    #[async_trait]
    impl ChallengeJudge for Failing {
        async fn judge(&self, _: &Scene, _: &Challenge, _: &Client) -> Result<Judged, ApiError> {
            Err(self.0.clone())
        }
    }

    fn guard(policy: &str, judge: ApiError) -> Guard {
        let config = format!(
            r#"{{"scene": {{"signup": {{"guard": {{"mode": "always", "onStoreError": "{policy}"}}}}}}}}"#
        );
        let scenes = SceneBlocks::from_json(&config)
            .unwrap()
            .per_scene()
            .unwrap();
        let options = ServiceOptions::new(RateLimitConfig::disabled());
        Guard::new(scenes, Arc::new(MemoryStore::new()), &options)
            .with_judge(Arc::new(Failing(judge)))
    }

    /// A store failure while the challenge is judged (the counters were
    /// fine) is the scene's `onStoreError`: denied `store-unavailable`, or
    /// admitted `degraded` with nothing spent; any other error refuses,
    /// with the level and reasons.
    #[tokio::test]
    async fn a_store_failure_judging_a_challenge_follows_on_store_error() {
        let door = Door::new(Scene::parse("signup").unwrap(), PassRule::Auto);
        let answer = Challenge::Answer("abcd".into());
        let client = Client {
            ip: Some("203.0.113.9".into()),
            device: Some(DeviceId::parse("d-1").unwrap()),
            ..Client::default()
        };
        let admit = |guard: Guard| {
            let (door, answer, client) = (door.clone(), answer.clone(), client.clone());
            async move {
                let mut events = Events::default();
                let proof = Some(Proof::Challenge(&answer));
                let got = guard.admit(&door, proof, None, &client, &mut events).await;
                (got, events.iter().cloned().collect::<Vec<_>>())
            }
        };

        let (refused, _) = admit(guard("deny", ApiError::StoreUnavailable)).await;
        let refusal = refused.unwrap_err();
        assert_eq!(refusal.error, ApiError::StoreUnavailable);
        assert_eq!(refusal.standing.level, Level::Image);

        let (admitted, events) = admit(guard("admit", ApiError::StoreUnavailable)).await;
        let admission = admitted.unwrap();
        assert!(admission.degraded);
        assert_eq!(admission.pass, None, "nothing spent, nothing claimed");
        assert!(events.contains(&Event::GuardDegraded), "{events:?}");

        let (wrong, _) = admit(guard("admit", ApiError::VerifyFail)).await;
        let refusal = wrong.unwrap_err();
        assert_eq!(refusal.error, ApiError::VerifyFail);
        assert_eq!(
            refusal
                .standing
                .reasons
                .iter()
                .map(Reason::as_str)
                .collect::<Vec<_>>(),
            ["always"]
        );
    }
}
