//! The embedded store of the dev server: the same rows as the DynamoDB table,
//! in one in-process map behind a mutex, so every operation is atomic just as
//! DynamoDB's conditional writes are.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::*;

/// Rows kept before expired ones are swept out, the way DynamoDB's TTL
/// deletion would eventually remove them. After a sweep the next waits until
/// the rows have doubled, so that live rows past the threshold cost each
/// insert O(1) amortised, not a scan of them all.
const SWEEP_THRESHOLD: usize = 50_000;

#[derive(Debug, Clone)]
enum Row {
    /// A captcha, and the pass a right answer earned with it.
    Captcha(CaptchaRecord, Option<StoredPass>),
    Session {
        record: SessionRecord,
        session_key: Option<Secret>,
    },
    /// A user's session index: token hash → expiry.
    SessionIndex {
        entries: BTreeMap<String, i64>,
        keep_until_ms: i64,
    },
    AccessToken(AccessTokenRecord),
    /// A presented ticket (kept until `expires_ms`), and the pass it earned.
    Ticket {
        expires_ms: i64,
        pass: Option<(StoredPass, TicketPass)>,
    },
    Counter {
        count: u64,
        expires_ms: i64,
    },
}

/// A pass as a row holds it.
#[derive(Debug, Clone)]
struct StoredPass {
    secret_hash: String,
    created_ms: i64,
    expires_ms: i64,
    redeemed: bool,
}

impl StoredPass {
    fn new(pass: &NewPass, now_ms: i64) -> Self {
        Self {
            secret_hash: pass.secret_hash.clone(),
            created_ms: now_ms,
            expires_ms: pass.expires_ms,
            redeemed: false,
        }
    }

    /// Redeems this pass for `claim` when it may be: the refusal otherwise.
    /// The order of checks is the DynamoDB store's (see its `classify_pass`).
    fn redeem(
        &mut self,
        scene: &Scene,
        device: Option<&DeviceId>,
        claim: &PassClaim,
    ) -> Result<(), Redemption> {
        if self.secret_hash != claim.secret_hash {
            return Err(Redemption::Unknown);
        }
        if self.redeemed {
            return Err(Redemption::Used);
        }
        if claim.now_ms >= self.expires_ms {
            return Err(Redemption::Expired);
        }
        if scene != claim.scene {
            return Err(Redemption::OtherScene);
        }
        if let (Some(held), Some(asking)) = (device, claim.device)
            && held != asking
        {
            return Err(Redemption::OtherDevice);
        }
        self.redeemed = true;
        Ok(())
    }
}

impl Row {
    fn expires_ms(&self) -> i64 {
        match self {
            Row::Captcha(c, pass) => pass.as_ref().map_or(c.expired_date, |p| p.expires_ms),
            Row::Session { record, .. } => record.expires_ms,
            Row::SessionIndex { keep_until_ms, .. } => *keep_until_ms,
            Row::AccessToken(t) => t.expires_ms.saturating_add(ACCESS_TOKEN_ROW_SLACK_MS),
            Row::Ticket { expires_ms, .. } | Row::Counter { expires_ms, .. } => *expires_ms,
        }
    }
}

fn entries_of(entries: &BTreeMap<String, i64>) -> Vec<IndexedSession> {
    entries
        .iter()
        .map(|(hash, expires)| IndexedSession {
            token_hash: hash.clone(),
            expires_ms: *expires,
        })
        .collect()
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    rows: Mutex<HashMap<String, Row>>,
    /// Rows at which the next sweep runs (0: [`SWEEP_THRESHOLD`]); read and
    /// written only under the `rows` lock.
    sweep_at: AtomicUsize,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn rows(&self) -> MutexGuard<'_, HashMap<String, Row>> {
        // A panic while holding the lock cannot leave a row half-written
        // (each operation replaces whole rows), so a poisoned map is still sound.
        self.rows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn insert(&self, rows: &mut HashMap<String, Row>, key: String, row: Row) {
        let sweep_at = self.sweep_at.load(Ordering::Relaxed).max(SWEEP_THRESHOLD);
        if rows.len() >= sweep_at {
            let now_ms = crate::clock::Clock::system().now_ms();
            rows.retain(|_, row| ttl_seconds(row.expires_ms()) * 1000 > now_ms);
            self.sweep_at.store(rows.len() * 2, Ordering::Relaxed);
        }
        rows.insert(key, row);
    }

    /// Adds one to counter `name`, creating it to expire at `window_end_ms`.
    fn count(&self, rows: &mut HashMap<String, Row>, name: &str, window_end_ms: i64) -> u64 {
        let key = counter_key_of(name);
        if let Some(Row::Counter { count, .. }) = rows.get_mut(&key) {
            *count += 1;
            return *count;
        }
        self.insert(
            rows,
            key,
            Row::Counter {
                count: 1,
                expires_ms: window_end_ms,
            },
        );
        1
    }

    /// The count of counter `name` (for tests).
    pub fn counter(&self, name: &str) -> Option<u64> {
        match self.rows().get(&counter_key_of(name)) {
            Some(Row::Counter { count, .. }) => Some(*count),
            _ => None,
        }
    }

    /// The number of rows held, expired ones included (for tests).
    pub fn len(&self) -> usize {
        self.rows().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of session rows held, expired ones included (for tests:
    /// a login also writes its user's session index).
    pub fn session_count(&self) -> usize {
        self.rows()
            .values()
            .filter(|row| matches!(row, Row::Session { .. }))
            .count()
    }

    /// The captcha row for a device and scene (for tests and the demo's
    /// browser test, which must learn the answer without an HTTP route).
    pub fn captcha(&self, scene: &str, device: &str) -> Option<CaptchaRecord> {
        let key = captcha_key(&Scene::parse(scene).ok()?, &DeviceId::parse(device).ok()?);
        match self.rows().get(&key) {
            Some(Row::Captcha(c, _)) => Some(c.clone()),
            _ => None,
        }
    }
}

#[async_trait]
impl CaptchaStore for MemoryStore {
    async fn create_captcha(&self, record: &CaptchaRecord) -> Result<(), StoreError> {
        let mut rows = self.rows();
        self.insert(&mut rows, record.key(), Row::Captcha(record.clone(), None));
        Ok(())
    }

    async fn refresh_captcha(&self, record: &CaptchaRecord) -> Result<bool, StoreError> {
        let mut rows = self.rows();
        match rows.get_mut(&record.key()) {
            Some(row @ Row::Captcha(..)) => {
                *row = Row::Captcha(record.clone(), None);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn issue_captcha(
        &self,
        record: &CaptchaRecord,
        mode: IssueMode,
        limits: &[CounterLimit],
    ) -> Result<IssueOutcome, StoreError> {
        let mut rows = self.rows();
        for limit in limits {
            if let Some(Row::Counter { count, .. }) = rows.get(&counter_key_of(&limit.name))
                && *count >= limit.limit
            {
                return Ok(IssueOutcome::RateLimited {
                    window_end_ms: limit.window_end_ms,
                });
            }
        }
        if mode == IssueMode::Refresh && !matches!(rows.get(&record.key()), Some(Row::Captcha(..)))
        {
            return Ok(IssueOutcome::NotFound);
        }
        for limit in limits {
            self.count(&mut rows, &limit.name, limit.window_end_ms);
        }
        self.insert(&mut rows, record.key(), Row::Captcha(record.clone(), None));
        Ok(IssueOutcome::Written)
    }

    async fn verify_captcha(
        &self,
        scene: &Scene,
        device: &DeviceId,
        answer: &str,
        now_ms: i64,
        max_attempts: u32,
        pass: &NewPass,
    ) -> Result<VerifyOutcome, StoreError> {
        let mut rows = self.rows();
        let Some(Row::Captcha(captcha, held)) = rows.get_mut(&captcha_key(scene, device)) else {
            return Ok(VerifyOutcome::NotFound);
        };
        if captcha.state != CaptchaState::Pending {
            return Ok(VerifyOutcome::NotPending);
        }
        if now_ms >= captcha.expired_date {
            return Ok(VerifyOutcome::Expired);
        }
        if !answer.is_empty() && captcha.code == answer {
            captcha.state = CaptchaState::Verified;
            *held = Some(StoredPass::new(pass, now_ms));
            return Ok(VerifyOutcome::Passed);
        }
        captcha.attempts += 1;
        if captcha.attempts >= max_attempts {
            captcha.state = CaptchaState::Void;
            Ok(VerifyOutcome::Voided)
        } else {
            Ok(VerifyOutcome::Wrong {
                attempts_left: max_attempts - captcha.attempts,
            })
        }
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn put_session(
        &self,
        session: &SessionRecord,
        session_key: Option<&Secret>,
    ) -> Result<(), StoreError> {
        let mut rows = self.rows();
        let key = session_key_of(&session.token_hash);
        let row = Row::Session {
            record: session.clone(),
            session_key: session_key.cloned(),
        };
        self.insert(&mut rows, key, row);
        Ok(())
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        match self.rows().get(&session_key_of(token_hash)) {
            Some(Row::Session { record, .. }) => Ok(Some(record.clone())),
            _ => Ok(None),
        }
    }

    async fn session_key(&self, token_hash: &str) -> Result<Option<Secret>, StoreError> {
        match self.rows().get(&session_key_of(token_hash)) {
            Some(Row::Session { session_key, .. }) => Ok(session_key.clone()),
            _ => Ok(None),
        }
    }

    async fn delete_session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<SessionEnd, StoreError> {
        let mut rows = self.rows();
        let key = session_key_of(token_hash);
        let live = match rows.get(&key) {
            Some(Row::Session { record, .. }) => record.expires_ms > now_ms,
            _ => return Ok(SessionEnd::NotFound),
        };
        rows.remove(&key);
        Ok(if live {
            SessionEnd::Ended
        } else {
            SessionEnd::Expired
        })
    }

    async fn delete_sessions(&self, token_hashes: &[String]) -> Result<(), StoreError> {
        let mut rows = self.rows();
        for hash in token_hashes {
            let key = session_key_of(hash);
            if matches!(rows.get(&key), Some(Row::Session { .. })) {
                rows.remove(&key);
            }
        }
        Ok(())
    }

    async fn set_session_phone(
        &self,
        token_hash: &str,
        phone: &PhoneNumber,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        match self.rows().get_mut(&session_key_of(token_hash)) {
            Some(Row::Session { record, .. }) if record.expires_ms > now_ms => {
                record.phone = Some(phone.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn replace_session(
        &self,
        old_hash: &str,
        new: &SessionRecord,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut rows = self.rows();
        let old_key = session_key_of(old_hash);
        match rows.get(&old_key) {
            Some(Row::Session { record, .. }) if record.expires_ms > now_ms => {}
            _ => return Ok(false),
        }
        rows.remove(&old_key);
        let row = Row::Session {
            record: new.clone(),
            session_key: None,
        };
        self.insert(&mut rows, session_key_of(&new.token_hash), row);
        Ok(true)
    }
}

#[async_trait]
impl SessionIndexStore for MemoryStore {
    async fn index_session(
        &self,
        openid: &str,
        session: &IndexedSession,
        remove: &[String],
        keep_until_ms: i64,
    ) -> Result<Vec<IndexedSession>, StoreError> {
        let mut rows = self.rows();
        let key = session_index_key_of(openid);
        if !matches!(rows.get(&key), Some(Row::SessionIndex { .. })) {
            let empty = Row::SessionIndex {
                entries: BTreeMap::new(),
                keep_until_ms,
            };
            self.insert(&mut rows, key.clone(), empty);
        }
        let Some(Row::SessionIndex {
            entries,
            keep_until_ms: keep,
        }) = rows.get_mut(&key)
        else {
            unreachable!("the index row was just made");
        };
        for hash in remove {
            entries.remove(hash);
        }
        entries.insert(session.token_hash.clone(), session.expires_ms);
        *keep = keep_until_ms;
        Ok(entries_of(entries))
    }

    async fn unindex_sessions(
        &self,
        openid: &str,
        token_hashes: &[String],
    ) -> Result<(), StoreError> {
        if let Some(Row::SessionIndex { entries, .. }) =
            self.rows().get_mut(&session_index_key_of(openid))
        {
            for hash in token_hashes {
                entries.remove(hash);
            }
        }
        Ok(())
    }

    async fn reset_session_index(
        &self,
        openid: &str,
        session: &IndexedSession,
        keep_until_ms: i64,
    ) -> Result<Vec<IndexedSession>, StoreError> {
        let mut rows = self.rows();
        let row = Row::SessionIndex {
            entries: BTreeMap::from([(session.token_hash.clone(), session.expires_ms)]),
            keep_until_ms,
        };
        let key = session_index_key_of(openid);
        let before = match rows.remove(&key) {
            Some(Row::SessionIndex { entries, .. }) => entries_of(&entries),
            _ => Vec::new(),
        };
        self.insert(&mut rows, key, row);
        Ok(before)
    }

    async fn take_session_index(&self, openid: &str) -> Result<Vec<IndexedSession>, StoreError> {
        let mut rows = self.rows();
        let key = session_index_key_of(openid);
        match rows.get(&key) {
            Some(Row::SessionIndex { .. }) => match rows.remove(&key) {
                Some(Row::SessionIndex { entries, .. }) => Ok(entries_of(&entries)),
                _ => Ok(Vec::new()),
            },
            _ => Ok(Vec::new()),
        }
    }
}

#[async_trait]
impl AccessTokenStore for MemoryStore {
    async fn get_access_token(&self, appid: &str) -> Result<Option<AccessTokenRecord>, StoreError> {
        match self.rows().get(&access_token_key_of(appid)) {
            Some(Row::AccessToken(record)) => Ok(Some(record.clone())),
            _ => Ok(None),
        }
    }

    async fn swap_access_token(
        &self,
        appid: &str,
        expected: u64,
        record: &AccessTokenRecord,
    ) -> Result<TokenSwap, StoreError> {
        let mut rows = self.rows();
        let key = access_token_key_of(appid);
        let current = match rows.get(&key) {
            Some(Row::AccessToken(held)) => Some(held.clone()),
            _ => None,
        };
        if current.as_ref().map_or(0, |held| held.version) != expected {
            return Ok(TokenSwap::Lost(current));
        }
        let written = AccessTokenRecord {
            version: expected + 1,
            ..record.clone()
        };
        self.insert(&mut rows, key, Row::AccessToken(written));
        Ok(TokenSwap::Written)
    }
}

#[async_trait]
impl TicketStore for MemoryStore {
    async fn claim_ticket(
        &self,
        ticket_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut rows = self.rows();
        let key = ticket_key_of(ticket_hash);
        if let Some(Row::Ticket {
            expires_ms: held, ..
        }) = rows.get(&key)
            && *held > now_ms
        {
            return Ok(false);
        }
        let row = Row::Ticket {
            expires_ms,
            pass: None,
        };
        self.insert(&mut rows, key, row);
        Ok(true)
    }

    async fn grant_ticket_pass(
        &self,
        ticket_hash: &str,
        pass: &TicketPass,
        now_ms: i64,
        keep_until_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut rows = self.rows();
        match rows.get_mut(&ticket_key_of(ticket_hash)) {
            Some(Row::Ticket {
                expires_ms,
                pass: held,
            }) => {
                *expires_ms = keep_until_ms;
                *held = Some((StoredPass::new(&pass.pass, now_ms), pass.clone()));
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[async_trait]
impl PassStore for MemoryStore {
    async fn redeem_pass(&self, claim: &PassClaim<'_>) -> Result<Redemption, StoreError> {
        let mut rows = self.rows();
        let key = match claim.kind {
            PassKind::Captcha => captcha_key_of(claim.locator),
            PassKind::Ticket => ticket_key_of(&hex::encode(claim.locator)),
        };
        let (stored, redeemed) = match (claim.kind, rows.get_mut(&key)) {
            (PassKind::Captcha, Some(Row::Captcha(captcha, Some(stored)))) => {
                let redeemed = RedeemedPass {
                    kind: PassKind::Captcha,
                    scene: captcha.scene.clone(),
                    device: Some(captcha.device_uuid.clone()),
                    ip: captcha.ip.clone(),
                    evil_level: None,
                    degraded: false,
                    created_ms: stored.created_ms,
                };
                (stored, redeemed)
            }
            (
                PassKind::Ticket,
                Some(Row::Ticket {
                    pass: Some((stored, ticket)),
                    ..
                }),
            ) => {
                let redeemed = RedeemedPass {
                    kind: PassKind::Ticket,
                    scene: ticket.scene.clone(),
                    device: ticket.device.clone(),
                    ip: ticket.ip.clone(),
                    evil_level: ticket.evil_level,
                    degraded: ticket.degraded,
                    created_ms: stored.created_ms,
                };
                (stored, redeemed)
            }
            _ => return Ok(Redemption::Unknown),
        };
        Ok(
            match stored.redeem(&redeemed.scene, redeemed.device.as_ref(), claim) {
                Ok(()) => Redemption::Redeemed(redeemed),
                Err(refusal) => refusal,
            },
        )
    }
}

#[async_trait]
impl CounterStore for MemoryStore {
    async fn increment_counter(&self, name: &str, window_end_ms: i64) -> Result<u64, StoreError> {
        let mut rows = self.rows();
        Ok(self.count(&mut rows, name, window_end_ms))
    }

    async fn counts(&self, names: &[String]) -> Result<Vec<u64>, StoreError> {
        let rows = self.rows();
        Ok(names
            .iter()
            .map(|name| match rows.get(&counter_key_of(name)) {
                Some(Row::Counter { count, .. }) => *count,
                _ => 0,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(expires_ms: i64) -> Row {
        Row::Counter {
            count: 1,
            expires_ms,
        }
    }

    #[test]
    fn sweeps_expired_rows_and_waits_for_live_ones_to_double() {
        let now_ms = crate::clock::Clock::system().now_ms();
        let (past, future) = (now_ms - 3_600_000, now_ms + 3_600_000);
        let store = MemoryStore::new();
        let mut rows = store.rows();
        for i in 0..SWEEP_THRESHOLD {
            store.insert(&mut rows, format!("old{i}"), counter(past));
        }
        store.insert(&mut rows, "live".into(), counter(future));
        assert_eq!(rows.len(), 1, "the expired rows were swept");

        // Live rows past the threshold: one sweep, then none until they
        // have doubled (an expired row stays until then).
        for i in 0..SWEEP_THRESHOLD {
            store.insert(&mut rows, format!("new{i}"), counter(future));
        }
        store.insert(&mut rows, "stale".into(), counter(past));
        assert_eq!(
            store.sweep_at.load(Ordering::Relaxed),
            2 * SWEEP_THRESHOLD,
            "swept at the threshold, found every row live"
        );
        assert!(
            rows.contains_key("stale"),
            "no sweep before the rows double"
        );
    }
}
