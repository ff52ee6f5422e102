//! [`AccessTokens`]: one WeChat access token (`stable_token`) for every
//! Lambda instance, kept in the table.
//!
//! - **Warm**: an instance keeps the token in memory while it has more
//!   than [`REFRESH_MARGIN_MS`] (5 min) to live: no request at all.
//! - **Cold** (or within 5 min of expiry): one strongly consistent read of
//!   the app's row (`wxtoken#<appid>`). A token with more than 5 min left is
//!   used as is.
//! - **Refresh**: within 5 min of expiry (or with no token) one instance
//!   takes a lease, a version-conditional write, and calls `stable_token`
//!   in normal mode; the others keep using the old token, which WeChat keeps
//!   valid until it expires, or, with no valid token at all, re-read the row
//!   until the new one is there. So a burst of cold starts makes one
//!   upstream call.
//! - **Stale** (`40001`/`42001` from an API): if the row already holds
//!   another token, that one is used; else one instance force-refreshes
//!   (`force_refresh: true`) under the lease, no more than
//!   [`FORCE_PER_DAY`] times a China day and [`FORCE_SPACING_MS`] apart
//!   (WeChat's limits, counted in the row), and the call is retried once.
//!
//! The token is a [`Secret`]: never logged, never in a response.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::{TokenCallError, WxClient};
use crate::clock::{Clock, china_day};
use crate::error::ApiError;
use crate::options::ServiceOptions;
use crate::secret::Secret;
use crate::store::{AccessTokenRecord, AccessTokenStore, TokenSwap};

/// A token this close to its expiry is refreshed (WeChat renews tokens 5
/// minutes before they expire and keeps old and new valid meanwhile).
pub const REFRESH_MARGIN_MS: i64 = 5 * 60 * 1000;
/// How long a refresh lease holds: longer than one `stable_token` exchange
/// (5.5 s), so a lease ends only when its holder died.
pub const LEASE_MS: i64 = 8_000;
/// WeChat allows 20 force refreshes a day.
pub const FORCE_PER_DAY: u32 = 20;
/// WeChat refreshes nothing on a force refresh within 30 s of the last one.
pub const FORCE_SPACING_MS: i64 = 30_000;
/// Reads of the row while another instance refreshes a token we cannot do
/// without, [`wait_ms`] apart: about 9 s in all, past one lease.
const MAX_WAITS: u32 = 26;

/// The wait before the `round`th re-read: 20 ms, doubling up to 400 ms.
fn wait_ms(round: u32) -> u64 {
    (20u64 << round.min(5)).min(400)
}

/// The app's access token, shared through the table by every instance.
pub struct AccessTokens {
    appid: String,
    client: WxClient,
    store: Arc<dyn AccessTokenStore>,
    clock: Clock,
    /// This instance's copy: the token and its expiry.
    local: Mutex<Option<(Secret, i64)>>,
    /// One refresh at a time in this instance.
    flight: tokio::sync::Mutex<()>,
}

impl AccessTokens {
    /// The token of `appid`, fetched with `client` at the `options`'
    /// time-out per request and timed by their clock.
    pub fn new(
        appid: &str,
        client: WxClient,
        store: Arc<dyn AccessTokenStore>,
        options: &ServiceOptions,
    ) -> Self {
        Self {
            appid: appid.to_owned(),
            client: client.with_timeout(options.timeout()),
            store,
            clock: options.clock().clone(),
            local: Mutex::new(None),
            flight: tokio::sync::Mutex::new(()),
        }
    }

    pub fn client(&self) -> &WxClient {
        &self.client
    }

    /// Runs `call` with the token; when WeChat calls the token stale,
    /// replaces it (see the module docs) and runs `call` once more.
    pub async fn call<T, F, Fut>(&self, call: F) -> Result<T, ApiError>
    where
        F: Fn(Secret) -> Fut,
        Fut: std::future::Future<Output = Result<T, TokenCallError>>,
    {
        let token = self.get().await?;
        self.call_with(token, call).await
    }

    /// [`AccessTokens::call`] with a token already obtained by
    /// [`AccessTokens::get`].
    pub async fn call_with<T, F, Fut>(&self, token: Secret, call: F) -> Result<T, ApiError>
    where
        F: Fn(Secret) -> Fut,
        Fut: std::future::Future<Output = Result<T, TokenCallError>>,
    {
        match call(token.clone()).await {
            Ok(value) => return Ok(value),
            Err(TokenCallError::Failed(err)) => return Err(err),
            Err(TokenCallError::StaleToken) => {}
        }
        let fresh = self.replace_stale(&token).await?;
        match call(fresh).await {
            Ok(value) => Ok(value),
            Err(TokenCallError::Failed(err)) => Err(err),
            Err(TokenCallError::StaleToken) => {
                tracing::error!("WeChat refused the access token again after a refresh");
                Err(ApiError::WxUpstreamError)
            }
        }
    }

    /// A token fit for use: this instance's copy, else the table's, else a
    /// new one (see the module docs).
    pub async fn get(&self) -> Result<Secret, ApiError> {
        if let Some(token) = self.local_fresh(None) {
            return Ok(token);
        }
        let _flight = self.flight.lock().await;
        if let Some(token) = self.local_fresh(None) {
            return Ok(token);
        }
        self.obtain(None).await
    }

    /// A token other than `stale`, which WeChat refused: another instance's
    /// newer one from the table, or a force refresh.
    pub async fn replace_stale(&self, stale: &Secret) -> Result<Secret, ApiError> {
        let _flight = self.flight.lock().await;
        if let Some(token) = self.local_fresh(Some(stale)) {
            return Ok(token);
        }
        self.obtain(Some(stale)).await
    }

    /// This instance's token while it has more than the margin to live
    /// (and is not `stale`).
    fn local_fresh(&self, stale: Option<&Secret>) -> Option<Secret> {
        let local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let (token, expires_ms) = local.as_ref()?;
        let fresh = expires_ms - self.clock.now_ms() > REFRESH_MARGIN_MS;
        (fresh && Some(token) != stale).then(|| token.clone())
    }

    fn keep(&self, token: &Secret, expires_ms: i64) -> Secret {
        *self.local.lock().unwrap_or_else(|p| p.into_inner()) = Some((token.clone(), expires_ms));
        token.clone()
    }

    async fn obtain(&self, stale: Option<&Secret>) -> Result<Secret, ApiError> {
        let mut row = self.store.get_access_token(&self.appid).await?;
        let mut waited = 0;
        loop {
            let now = self.clock.now_ms();
            let record = row.clone().unwrap_or_default();
            // A token we may still use: not the one WeChat refused, not expired.
            let usable = record
                .token
                .as_ref()
                .filter(|token| Some(*token) != stale && record.expires_ms > now);
            if let Some(token) = usable
                && record.expires_ms - now > REFRESH_MARGIN_MS
            {
                return Ok(self.keep(token, record.expires_ms));
            }
            if record.lease_until_ms > now {
                // Another instance is refreshing: use the old token while it
                // lives, else wait for the new one.
                if let Some(token) = usable {
                    return Ok(self.keep(token, record.expires_ms));
                }
                if waited == MAX_WAITS {
                    tracing::error!("gave up waiting for another instance's access token");
                    return Err(ApiError::WxUpstreamError);
                }
                tokio::time::sleep(Duration::from_millis(wait_ms(waited))).await;
                waited += 1;
                row = self.store.get_access_token(&self.appid).await?;
                continue;
            }
            // WeChat refused a token it should still accept: only a force
            // refresh replaces it. An expired one takes a normal refresh.
            let force =
                stale.is_some() && record.token.as_ref() == stale && record.expires_ms > now;
            let mut lease = AccessTokenRecord {
                lease_until_ms: now + LEASE_MS,
                ..record.clone()
            };
            if force {
                let today = china_day(now);
                let used = if record.force_day == today {
                    record.force_count
                } else {
                    0
                };
                if used >= FORCE_PER_DAY {
                    tracing::error!(
                        limit = FORCE_PER_DAY,
                        "access token refused, and today's force refreshes are used up"
                    );
                    return Err(ApiError::WxUpstreamError);
                }
                if record.last_force_ms > 0 && now - record.last_force_ms < FORCE_SPACING_MS {
                    tracing::error!("access token refused again within 30 s of a force refresh");
                    return Err(ApiError::WxUpstreamError);
                }
                lease.force_day = today;
                lease.force_count = used + 1;
                lease.last_force_ms = now;
            }
            match self
                .store
                .swap_access_token(&self.appid, record.version, &lease)
                .await?
            {
                TokenSwap::Lost(current) => row = current,
                TokenSwap::Written => {
                    let fetched = self.fetch(lease, record.version + 1, force).await;
                    return match (fetched, usable) {
                        (Ok(token), _) => Ok(token),
                        // WeChat failed, but the old token still lives: use
                        // it, and let the next request try again.
                        (Err(_), Some(token)) => {
                            tracing::warn!("keeping the old access token after a failed renewal");
                            Ok(self.keep(token, record.expires_ms))
                        }
                        (Err(err), None) => Err(err),
                    };
                }
            }
        }
    }

    /// Holding the lease (the row at `version`): calls `stable_token` and
    /// stores its answer, or gives the lease back when it fails.
    async fn fetch(
        &self,
        lease: AccessTokenRecord,
        version: u64,
        force: bool,
    ) -> Result<Secret, ApiError> {
        tracing::info!(force, "fetching a new WeChat access token");
        let fetched = self.client.stable_token(force).await;
        let now = self.clock.now_ms();
        let (stored, result) = match fetched {
            Ok(answer) => {
                let secs = i64::try_from(answer.expires_in_secs).unwrap_or(0);
                let expires_ms = now.saturating_add(secs.saturating_mul(1000));
                let stored = AccessTokenRecord {
                    token: Some(answer.token.clone()),
                    expires_ms,
                    lease_until_ms: 0,
                    ..lease
                };
                (stored, Ok(self.keep(&answer.token, expires_ms)))
            }
            Err(err) => {
                let released = AccessTokenRecord {
                    lease_until_ms: 0,
                    ..lease
                };
                (released, Err(err))
            }
        };
        match self
            .store
            .swap_access_token(&self.appid, version, &stored)
            .await
        {
            Ok(TokenSwap::Written) => {}
            // The lease ran out and another instance moved on: our token
            // is valid all the same.
            Ok(TokenSwap::Lost(_)) => tracing::warn!("the access-token lease ran out first"),
            Err(err) => tracing::error!(error = %err.0, "storing the access token failed"),
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_400_ms_and_outlast_a_lease() {
        assert_eq!(
            (0..7).map(wait_ms).collect::<Vec<_>>(),
            [20, 40, 80, 160, 320, 400, 400]
        );
        let total: u64 = (0..MAX_WAITS).map(wait_ms).sum();
        assert!(total > LEASE_MS as u64, "{total} ms");
    }
}
