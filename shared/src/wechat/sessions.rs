//! [`SessionService`]: checking, ending, refreshing and opening sessions,
//! and each user's session index that lets `DELETE /wx/sessions` and
//! `"single": true` end every session of a user.
//!
//! Needs only the store, and never reads a `session_key`: the `session` and
//! `authorizer` functions hold no WeChat secret.
//!
//! The index rules, which make "end every session" complete
//! (`docs/wechat.md`, "Sessions a user can end"):
//! 1. A session row is written *before* its index entry, so a session is
//!    never left unlisted: whoever takes the index next finds it.
//! 2. An entry leaves the index only with its session row (ending them
//!    all, `single`, refresh, the per-user cap) or after it expired.
//! 3. Ending every session takes the whole index in one strongly consistent
//!    request (DeleteItem returning the old item), then deletes each listed
//!    row: a session whose login finished before the request began is
//!    listed, so it ends.

use std::sync::Arc;

use serde::Serialize;

use super::config::MAX_SESSION_TTL_SECS;
use super::crypto;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::options::ServiceOptions;
use crate::secret::Secret;
use crate::store::{IndexedSession, SessionEnd, SessionRecord, SessionServiceStore};

/// Most live sessions one user keeps; a login beyond it ends the sessions
/// that expire first (a bound on the index row, and on stolen sessions).
pub const MAX_SESSIONS_PER_USER: usize = 50;
/// Expired entries an index may hold before a login prunes them (one
/// request every few logins rather than one per login).
pub const PRUNE_AT_EXPIRED: usize = 4;

/// Checking, ending and opening sessions needs only the sessions and
/// their index.
#[derive(Clone)]
pub struct SessionService {
    store: Arc<dyn SessionServiceStore>,
    clock: Clock,
}

/// A new token: what `POST /wx/login` and `POST /wx/session/refresh`
/// answer (the login adds `userInfo`).
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TokenData {
    pub token: String,
    /// Epoch milliseconds.
    pub token_expired: i64,
}

/// `GET /wx/session` success data.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SessionData {
    pub openid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unionid: Option<String>,
    /// Epoch milliseconds.
    pub token_expired: i64,
}

fn index_entry(record: &SessionRecord) -> IndexedSession {
    IndexedSession {
        token_hash: record.token_hash.clone(),
        expires_ms: record.expires_ms,
    }
}

impl SessionService {
    /// The service; of the `options` it reads the clock (no session route
    /// is rate-limited).
    pub fn new(store: Arc<dyn SessionServiceStore>, options: &ServiceOptions) -> Self {
        Self {
            store,
            clock: options.clock().clone(),
        }
    }

    pub(super) fn store(&self) -> &Arc<dyn SessionServiceStore> {
        &self.store
    }

    pub(super) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The live session behind `token`: `session-invalid` when unknown or
    /// malformed, `session-expired` past its expiry even while its row exists.
    /// One store request (none for a malformed token).
    pub async fn check(&self, token: &str) -> Result<SessionRecord, ApiError> {
        if !crypto::token_looks_valid(token) {
            return Err(ApiError::SessionInvalid);
        }
        let record = self
            .store
            .get_session(&crypto::token_hash(token))
            .await?
            .ok_or(ApiError::SessionInvalid)?;
        if record.expires_ms <= self.clock.now_ms() {
            return Err(ApiError::SessionExpired);
        }
        Ok(record)
    }

    /// Ends the session behind `token`. An unknown token is
    /// `session-invalid`; an expired one is deleted all the same and answered
    /// with `session-expired`.
    pub async fn end(&self, token: &str) -> Result<(), ApiError> {
        if !crypto::token_looks_valid(token) {
            return Err(ApiError::SessionInvalid);
        }
        let now_ms = self.clock.now_ms();
        match self
            .store
            .delete_session(&crypto::token_hash(token), now_ms)
            .await?
        {
            SessionEnd::Ended => {
                tracing::info!("wx session ended");
                Ok(())
            }
            SessionEnd::Expired => Err(ApiError::SessionExpired),
            SessionEnd::NotFound => Err(ApiError::SessionInvalid),
        }
    }

    /// Ends every session of the user behind the live session `token`
    /// (`DELETE /wx/sessions`): takes the user's index and deletes every
    /// session it lists, and this one. Three requests for up to 25 sessions.
    pub async fn end_all(&self, token: &str) -> Result<(), ApiError> {
        let record = self.check(token).await?;
        let listed = self.store.take_session_index(&record.openid).await?;
        let mut hashes: Vec<String> = listed.into_iter().map(|e| e.token_hash).collect();
        // A session made before the index existed is not listed.
        if !hashes.contains(&record.token_hash) {
            hashes.push(record.token_hash);
        }
        self.store.delete_sessions(&hashes).await?;
        tracing::info!(sessions = hashes.len(), "every wx session of a user ended");
        Ok(())
    }

    /// A new token for the live session `token`, which ends
    /// (`POST /wx/session/refresh`). The new session keeps the user, the
    /// phone number and the lifetime of the old one, but no `session_key`
    /// (this service never reads one). Of racing refreshes of one token,
    /// one wins; the others are `session-invalid`.
    pub async fn refresh(&self, token: &str) -> Result<TokenData, ApiError> {
        let old = self.check(token).await?;
        let now_ms = self.clock.now_ms();
        let lifetime = old.expires_ms.saturating_sub(old.created_ms).max(0);
        let new_token = crypto::new_token();
        let record = SessionRecord {
            token_hash: crypto::token_hash(&new_token),
            created_ms: now_ms,
            expires_ms: now_ms.saturating_add(lifetime),
            ..old.clone()
        };
        if !self
            .store
            .replace_session(&old.token_hash, &record, now_ms)
            .await?
        {
            return Err(ApiError::SessionInvalid);
        }
        self.index(&record, std::slice::from_ref(&old.token_hash))
            .await?;
        tracing::info!("wx session refreshed");
        Ok(TokenData {
            token: new_token,
            token_expired: record.expires_ms,
        })
    }

    /// Stores a new session with its `session_key` and lists it in the
    /// user's index; with `single`, the user's other sessions end. Two
    /// requests (three when `single` finds other sessions, and one more
    /// every few logins to prune expired entries).
    pub(super) async fn open(
        &self,
        record: &SessionRecord,
        session_key: &Secret,
        single: bool,
    ) -> Result<(), ApiError> {
        self.store.put_session(record, Some(session_key)).await?;
        if !single {
            return self.index(record, &[]).await;
        }
        let before = self
            .store
            .reset_session_index(
                &record.openid,
                &index_entry(record),
                self.keep_index_until(),
            )
            .await?;
        let others: Vec<String> = before
            .into_iter()
            .map(|e| e.token_hash)
            .filter(|hash| *hash != record.token_hash)
            .collect();
        if !others.is_empty() {
            self.store.delete_sessions(&others).await?;
            tracing::info!(
                sessions = others.len(),
                "single login ended other wx sessions"
            );
        }
        Ok(())
    }

    /// No session outlives [`MAX_SESSION_TTL_SECS`], so neither need its index.
    fn keep_index_until(&self) -> i64 {
        let max_ttl_ms = i64::try_from(MAX_SESSION_TTL_SECS).unwrap_or(i64::MAX / 1000) * 1000;
        self.clock.now_ms().saturating_add(max_ttl_ms)
    }

    /// Lists `record` in its user's index (removing `remove`), then prunes
    /// expired entries once there are [`PRUNE_AT_EXPIRED`] and ends the
    /// sessions beyond [`MAX_SESSIONS_PER_USER`] (rows first, entries after).
    async fn index(&self, record: &SessionRecord, remove: &[String]) -> Result<(), ApiError> {
        let entries = self
            .store
            .index_session(
                &record.openid,
                &index_entry(record),
                remove,
                self.keep_index_until(),
            )
            .await?;
        let now_ms = self.clock.now_ms();
        let (expired, mut live): (Vec<_>, Vec<_>) =
            entries.into_iter().partition(|e| e.expires_ms <= now_ms);
        let mut drop: Vec<String> = Vec::new();
        if expired.len() >= PRUNE_AT_EXPIRED {
            drop.extend(expired.into_iter().map(|e| e.token_hash));
        }
        live.retain(|e| e.token_hash != record.token_hash);
        if live.len() >= MAX_SESSIONS_PER_USER {
            live.sort_by_key(|e| e.expires_ms);
            let excess: Vec<String> = live
                .drain(..=live.len() - MAX_SESSIONS_PER_USER)
                .map(|e| e.token_hash)
                .collect();
            self.store.delete_sessions(&excess).await?;
            tracing::info!(
                sessions = excess.len(),
                "a login beyond the per-user cap ended the oldest wx sessions"
            );
            drop.extend(excess);
        }
        if !drop.is_empty() {
            self.store.unindex_sessions(&record.openid, &drop).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::RateLimitConfig;
    use crate::store::memory::MemoryStore;
    use crate::store::{SessionIndexStore, SessionStore};

    fn record(hash: &str, now_ms: i64, lifetime_ms: i64) -> SessionRecord {
        SessionRecord {
            token_hash: hash.to_owned(),
            openid: "o-prune".into(),
            unionid: None,
            phone: None,
            created_ms: now_ms,
            expires_ms: now_ms + lifetime_ms,
        }
    }

    #[tokio::test]
    async fn expired_entries_are_pruned_once_there_are_enough() {
        let clock = Clock::manual(1_000_000);
        let store = Arc::new(MemoryStore::new());
        let options = ServiceOptions::new(RateLimitConfig::disabled()).with_clock(clock.clone());
        let svc = SessionService::new(store.clone(), &options);
        let key = Secret::new("HyVFkGl5F5OQWJZZaNzBBg==");
        for i in 0..PRUNE_AT_EXPIRED - 1 {
            svc.open(
                &record(&format!("old-{i}"), clock.now_ms(), 1_000),
                &key,
                false,
            )
            .await
            .unwrap();
        }
        clock.advance(1_000);
        svc.open(&record("a", clock.now_ms(), 60_000), &key, false)
            .await
            .unwrap();
        let listed = store.take_session_index("o-prune").await.unwrap();
        assert_eq!(
            listed.len(),
            PRUNE_AT_EXPIRED,
            "three expired: not yet pruned"
        );
        for entry in &listed {
            store
                .index_session("o-prune", entry, &[], clock.now_ms() + 86_400_000)
                .await
                .unwrap();
        }
        svc.open(&record("old-x", clock.now_ms() - 1_000, 1_000), &key, false)
            .await
            .unwrap();
        svc.open(&record("b", clock.now_ms(), 60_000), &key, false)
            .await
            .unwrap();
        let mut left: Vec<String> = store
            .take_session_index("o-prune")
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.token_hash)
            .collect();
        left.sort();
        assert_eq!(left, ["a", "b"], "four expired entries pruned at once");
        assert!(store.get_session("a").await.unwrap().is_some());
    }
}
