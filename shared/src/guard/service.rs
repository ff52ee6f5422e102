//! The guard's decisions: which level a client must pass in a scene and
//! why, the redemption of its pass, and the requests and failures that
//! raise the level. The authorizer, `POST /guard/check` and Rust business
//! Lambdas all decide through [`Guard::admit`] (or [`Guard::check`], the
//! same with a plain error).

use std::sync::Arc;

use super::config::{GuardConfig, GuardMode, GuardSettings, Level, PassRule, StoreErrorPolicy};
pub use super::counters::{Observed, count_failure};
use super::counters::{RankRow, Whose, count_request, read};
use super::level::{Reason, Reasons, Standing};
use super::pass::PassToken;
use super::wx_risk::RankDecision;
use crate::clock::Clock;
use crate::domain::{DeviceId, Scene};
use crate::error::ApiError;
use crate::metrics::{Event, Events};
use crate::options::ServiceOptions;
use crate::store::{GuardStore, PassClaim, PassKind, RedeemedPass, Redemption};
use crate::wechat::risk::RiskRanks;
use crate::wechat::risk_rank::RiskRankRequest;

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
        }
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
        scene: &Scene,
        rule: PassRule,
        token: Option<&str>,
        client: &Client,
        events: &mut Events,
    ) -> Result<Admission, Refusal> {
        let observed = self.count(scene, client, events).await;
        self.decide(scene, rule, token, client, observed, events)
            .await
    }

    /// [`Guard::admit`] with a plain error, for callers that need no
    /// standing with a refusal and no metrics.
    pub async fn check(
        &self,
        scene: &Scene,
        rule: PassRule,
        token: Option<&str>,
        client: &Client,
    ) -> Result<Admission, ApiError> {
        self.admit(scene, rule, token, client, &mut Events::default())
            .await
            .map_err(|refusal| refusal.error)
    }

    /// Decides a request `observed` so at a door of `scene` that asks for
    /// a pass as `rule` says ([`Guard::judge`]): admitted with no pass when
    /// none is needed (a pass sent anyway is left unspent), else only by
    /// redeeming `token` (at most once, however many requests race). The
    /// reasons of a level above `none` are told in `events`. A store
    /// failure refuses the request, or admits it `degraded` where the
    /// scene says `onStoreError: "admit"`.
    pub async fn decide(
        &self,
        scene: &Scene,
        rule: PassRule,
        token: Option<&str>,
        client: &Client,
        observed: Result<Observed, ApiError>,
        events: &mut Events,
    ) -> Result<Admission, Refusal> {
        let settings = self.config.scene(scene);
        let judged = match observed {
            Ok(observed) => self.judge(settings, rule, client, observed, events).await,
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
        match self.redeem(scene, standing.level, token, client).await {
            Ok(pass) => Ok(Admission {
                level: standing.level,
                reasons: standing.reasons,
                pass,
                degraded: false,
            }),
            Err(error) => store_failed(settings, error, standing, events),
        }
    }

    /// Redeems `token` where `level` asks for a pass (none where it does
    /// not); a refusal is `guard-captcha-required`, `guard-tencent-required`
    /// or `guard-pass-invalid`.
    async fn redeem(
        &self,
        scene: &Scene,
        level: Level,
        token: Option<&str>,
        client: &Client,
    ) -> Result<Option<RedeemedPass>, ApiError> {
        if level == Level::None {
            return Ok(None);
        }
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(required(level));
        };
        let Some(token) = PassToken::parse(token) else {
            tracing::info!(scene = %scene, "pass refused: not a pass token");
            return Err(ApiError::GuardPassInvalid);
        };
        if level == Level::Tencent && token.kind() == PassKind::Captcha {
            // Left unspent: a captcha pass cannot open a door that wants a
            // ticket, and the client may still use it elsewhere.
            tracing::info!(scene = %scene, "pass refused: a ticket pass is required");
            return Err(ApiError::GuardPassInvalid);
        }
        let secret_hash = token.secret_hash();
        let claim = PassClaim {
            kind: token.kind(),
            locator: token.locator(),
            secret_hash: &secret_hash,
            scene,
            device: client.device.as_ref(),
            now_ms: self.clock.now_ms(),
        };
        match self.store.redeem_pass(&claim).await? {
            Redemption::Redeemed(pass) => Ok(Some(pass)),
            refusal => {
                tracing::info!(scene = %scene, ?refusal, "pass refused");
                Err(ApiError::GuardPassInvalid)
            }
        }
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
