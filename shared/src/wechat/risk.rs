//! [`RiskRanks`]: a user's WeChat risk rank (`getuserriskrank`, see
//! [`super::risk_rank`]) at the cost of one WeChat call per user and
//! window, whatever the number of instances.
//!
//! - **Cached in the table**, shared by every instance: a rank for the
//!   reader's `cacheSeconds`, a failure for [`FAILURE_CACHE_MS`] (an
//!   outage then adds no latency to every request). The rank also depends
//!   on the IP and phone number sent with the first call of a window;
//!   later calls in it reuse that answer.
//! - **In the guard's counter row of the user** ([`RankHome::Cell`],
//!   `rate#guard|oid|<scene>|<openid>`, see `store::dynamo::risk_rank`),
//!   per guard scene and WeChat scene: the request that counts the row
//!   (an UpdateItem answering it whole) or reads it (the BatchGetItem of a
//!   scene that counts no request, `GET /guard/status`) reads the rank
//!   too, and the guard hands it to [`RiskRanks::rank_from`]: a hit adds
//!   no request. Two guard scenes of one WeChat scene ask WeChat each.
//! - **Alone** ([`RankHome::Own`]): [`RiskRanks::rank`], for callers that
//!   read no counter, has one row per user and WeChat scene
//!   (`wxrisk#<0|1>#<openid>`): one GetItem, and on a miss one PutItem.
//! - **A miss** costs one WeChat call and one write (an UpdateItem of the
//!   counter row, or the PutItem; one write unit). Two instances that
//!   miss at the same moment may each call; the later write wins.
//! - **A short budget**: token, call and (on 40001/42001) the token's
//!   refresh and the second call all end within [`DEFAULT_BUDGET`] (800
//!   ms), or the outcome is [`RiskFailure::TimedOut`]. A token refresh cut
//!   short leaves its lease to run out (8 s), as a crashed holder's would.
//! - **Never an error**: a failure is an answer without a rank, and the
//!   guard's counters decide alone. Each lookup is a
//!   [`metrics::Event`](crate::metrics::Event); 48001 (the mini-program has
//!   not been granted the API) is logged once per instance, as the
//!   configuration error it is.
//!
//! No openid, phone number or token is logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::client::WxClient;
use super::config::WxConfig;
use super::risk_rank::{RiskFailure, RiskRankRequest};
use super::token::AccessTokens;
use crate::clock::Clock;
use crate::config::ConfigError;
use crate::metrics::{Event, Events};
use crate::options::ServiceOptions;
use crate::store::{RankCell, RiskAnswer, RiskRankRecord, RiskRanksStore};

/// The time budget of one lookup's WeChat part, unless
/// [`RiskRanks::with_budget`] says otherwise: short, since it is spent
/// inside a door's request.
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(800);
/// How long a failure is cached (never longer than the reader's
/// `cacheSeconds`).
pub const FAILURE_CACHE_MS: i64 = 60_000;

/// A lookup's outcome: the rank, or why there is none, and whether it came
/// from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RiskLookup {
    pub answer: Result<u8, RiskFailure>,
    pub cached: bool,
}

impl RiskLookup {
    /// The rank, when WeChat gave one.
    pub fn rank(&self) -> Option<u8> {
        self.answer.ok()
    }

    /// The lookup as a metrics event.
    pub fn event(&self) -> Event {
        match self.answer {
            Ok(rank) => Event::WxRiskRank {
                rank,
                cached: self.cached,
            },
            Err(failure) => Event::WxRiskFailed {
                failure: failure.as_str(),
                cached: self.cached,
            },
        }
    }
}

/// Where a rank asked of WeChat is cached: where the cached one is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RankHome<'a> {
    /// Its row of its own, `wxrisk#<0|1>#<openid>` ([`RiskRanks::rank`]).
    Own,
    /// The user's guard counter row (see
    /// [`crate::store::RiskRankStore::put_guard_rank`]), kept until
    /// `keep_until_ms` at least.
    Cell {
        cell: RankCell<'a>,
        keep_until_ms: i64,
    },
}

/// Users' WeChat risk ranks, cached in the table; build it once per
/// instance.
pub struct RiskRanks {
    tokens: AccessTokens,
    store: Arc<dyn RiskRanksStore>,
    clock: Clock,
    budget: Duration,
    /// Whether this instance has logged 48001 yet.
    no_permission_logged: AtomicBool,
}

impl RiskRanks {
    /// Builds the component (and its WeChat client) from a validated
    /// config; the access token is the one every function shares, fetched
    /// at the `options`' time-out per request, and the `options`' clock
    /// times the cache and the token.
    pub fn new(
        config: &WxConfig,
        store: Arc<dyn RiskRanksStore>,
        options: &ServiceOptions,
    ) -> Result<Self, ConfigError> {
        let client = WxClient::new(config)?;
        Ok(Self {
            tokens: AccessTokens::new(&config.appid, client, store.clone(), options),
            store,
            clock: options.clock().clone(),
            budget: DEFAULT_BUDGET,
            no_permission_logged: AtomicBool::new(false),
        })
    }

    /// The same component with another budget for a lookup's WeChat part
    /// (default [`DEFAULT_BUDGET`]).
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// The rank of `user` (in WeChat's test mode when `user.is_test`): the
    /// cached one when younger than `cache_seconds` (one read of its row of
    /// its own, [`RankHome::Own`]), else WeChat's (one call, one write).
    pub async fn rank(
        &self,
        user: &RiskRankRequest<'_>,
        cache_seconds: u64,
        events: &mut Events,
    ) -> RiskLookup {
        let scene = user.scene.number();
        // A failed read is logged by the store, and WeChat may still answer.
        let cached = self
            .store
            .get_risk_rank(scene, user.openid)
            .await
            .ok()
            .flatten();
        self.rank_from(user, cache_seconds, cached, RankHome::Own, events)
            .await
    }

    /// [`RiskRanks::rank`] with the cached rank already read from `home`
    /// (by the guard, with its counters): `cached` when it is fresh, else
    /// WeChat's answer, written back to `home`.
    pub async fn rank_from(
        &self,
        user: &RiskRankRequest<'_>,
        cache_seconds: u64,
        cached: Option<RiskRankRecord>,
        home: RankHome<'_>,
        events: &mut Events,
    ) -> RiskLookup {
        let cache_ms = i64::try_from(cache_seconds)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        let now = self.clock.now_ms();
        let lookup = match cached.and_then(|row| fresh(&row, now, cache_ms)) {
            Some(answer) => RiskLookup {
                answer,
                cached: true,
            },
            None => {
                let answer = self.ask(user).await;
                self.keep(user, answer, cache_ms, home).await;
                RiskLookup {
                    answer,
                    cached: false,
                }
            }
        };
        events.push(lookup.event());
        lookup
    }

    /// WeChat's answer for `user`, within the budget.
    async fn ask(&self, user: &RiskRankRequest<'_>) -> Result<u8, RiskFailure> {
        let deadline = tokio::time::Instant::now() + self.budget;
        let client = self.tokens.client();
        let call = self.tokens.call(|token| async move {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            client.risk_rank(&token, user, left).await
        });
        let answer = match tokio::time::timeout_at(deadline, call).await {
            Ok(Ok(answer)) => answer,
            // Logged where the token failed.
            Ok(Err(_)) => Err(RiskFailure::NoAccessToken),
            Err(_) => {
                tracing::warn!(budget = ?self.budget, "getuserriskrank ran out of time");
                Err(RiskFailure::TimedOut)
            }
        };
        if answer == Err(RiskFailure::NoPermission)
            && !self.no_permission_logged.swap(true, Ordering::Relaxed)
        {
            tracing::error!(
                errcode = 48001,
                "getuserriskrank: this mini-program has not been granted the API; apply for it \
                 under 开发管理 → 安全中心 → 用户风控 → 安全风控接口 (the guard decides by its \
                 counters alone meanwhile)"
            );
        }
        answer
    }

    /// Caches `answer` for every instance: a rank for `cache_ms`, a failure
    /// for [`FAILURE_CACHE_MS`] at most. A failed write is logged, and the
    /// answer still serves this request.
    async fn keep(
        &self,
        user: &RiskRankRequest<'_>,
        answer: Result<u8, RiskFailure>,
        cache_ms: i64,
        home: RankHome<'_>,
    ) {
        let now = self.clock.now_ms();
        let (answer, lifetime) = match answer {
            Ok(rank) => (RiskAnswer::Rank(rank), cache_ms),
            Err(failure) => (
                RiskAnswer::Failed(failure.as_str().to_owned()),
                FAILURE_CACHE_MS.min(cache_ms),
            ),
        };
        let record = RiskRankRecord {
            answer,
            checked_ms: now,
            expires_ms: now.saturating_add(lifetime),
        };
        let kept = match home {
            RankHome::Own => {
                let scene = user.scene.number();
                self.store.put_risk_rank(scene, user.openid, &record).await
            }
            RankHome::Cell {
                cell,
                keep_until_ms,
            } => {
                let keep_until_ms = keep_until_ms.max(record.expires_ms);
                self.store
                    .put_guard_rank(cell, &record, keep_until_ms)
                    .await
            }
        };
        if kept.is_err() {
            tracing::warn!("the risk rank was not cached: the next request asks WeChat again");
        }
    }
}

/// The answer `row` holds while fresh at `now` for a reader caching for
/// `cache_ms`: before its expiry and within `cache_ms` of WeChat's answer.
/// A failure this version does not know is taken for a miss.
fn fresh(row: &RiskRankRecord, now: i64, cache_ms: i64) -> Option<Result<u8, RiskFailure>> {
    if now >= row.expires_ms || now.saturating_sub(row.checked_ms) >= cache_ms {
        return None;
    }
    match &row.answer {
        RiskAnswer::Rank(rank) => Some(Ok(*rank)),
        RiskAnswer::Failed(name) => RiskFailure::from_name(name).map(Err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(answer: RiskAnswer, checked_ms: i64, expires_ms: i64) -> RiskRankRecord {
        RiskRankRecord {
            answer,
            checked_ms,
            expires_ms,
        }
    }

    #[test]
    fn a_row_is_fresh_before_its_expiry_and_within_the_readers_cache_time() {
        let rank = row(RiskAnswer::Rank(3), 1_000, 601_000);
        assert_eq!(fresh(&rank, 1_000, 600_000), Some(Ok(3)));
        assert_eq!(fresh(&rank, 600_999, 600_000), Some(Ok(3)));
        assert_eq!(fresh(&rank, 601_000, 600_000), None, "expired");
        // A scene that caches for a minute reads the same row for a minute.
        assert_eq!(fresh(&rank, 60_999, 60_000), Some(Ok(3)));
        assert_eq!(fresh(&rank, 61_000, 60_000), None);
        let busy = row(RiskAnswer::Failed("Busy".into()), 1_000, 61_000);
        assert_eq!(fresh(&busy, 30_000, 600_000), Some(Err(RiskFailure::Busy)));
        assert_eq!(fresh(&busy, 61_000, 600_000), None);
        let unknown = row(RiskAnswer::Failed("FromTheFuture".into()), 1_000, 61_000);
        assert_eq!(fresh(&unknown, 2_000, 600_000), None, "asked again");
    }

    #[test]
    fn lookups_are_events_by_rank_or_failure_and_source() {
        let hit = RiskLookup {
            answer: Ok(2),
            cached: true,
        };
        assert_eq!(hit.rank(), Some(2));
        assert_eq!(
            hit.event(),
            Event::WxRiskRank {
                rank: 2,
                cached: true
            }
        );
        let timed_out = RiskLookup {
            answer: Err(RiskFailure::TimedOut),
            cached: false,
        };
        assert_eq!(timed_out.rank(), None);
        assert_eq!(
            timed_out.event(),
            Event::WxRiskFailed {
                failure: "TimedOut",
                cached: false
            }
        );
    }
}
