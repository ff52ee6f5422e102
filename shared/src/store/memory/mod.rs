//! The embedded store of the dev server: the same rows as the DynamoDB table,
//! in one in-process map behind a mutex, so every operation is atomic just as
//! DynamoDB's conditional writes are.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use self::pass::StoredPass;
use super::*;

mod access_token;
mod captcha;
mod counter;
mod guard_counter;
mod pass;
mod risk_rank;
mod session;
mod session_index;
mod sms;
mod ticket;

/// Rows kept before expired ones are swept out, the way DynamoDB's TTL
/// deletion would eventually remove them. After a sweep the next waits until
/// the rows have doubled, so that live rows past the threshold cost each
/// insert O(1) amortised, not a scan of them all.
const SWEEP_THRESHOLD: usize = 50_000;

#[derive(Debug, Clone)]
enum Row {
    Captcha(CaptchaRecord),
    /// An SMS code.
    Sms(SmsCodeRecord),
    Pass(StoredPass),
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
    /// A presented ticket, kept until `expires_ms`.
    Ticket {
        expires_ms: i64,
    },
    Counter {
        count: u64,
        expires_ms: i64,
    },
    /// The guard's counts of one subject in one scene: each with the start
    /// of the window it counts in (see `crate::store::guard_counts`).
    /// Where the guard keeps the user's cached risk rank (`ranks`, by
    /// WeChat scene; see [`crate::store::RankCell`]), in the row of an
    /// openid.
    GuardCounter {
        requests: Option<(i64, u64)>,
        failures: Option<(i64, u64)>,
        ranks: BTreeMap<u8, RiskRankRecord>,
        expires_ms: i64,
    },
    /// A user's WeChat risk rank in one WeChat scene, cached alone.
    RiskRank(RiskRankRecord),
}

impl Row {
    fn expires_ms(&self) -> i64 {
        match self {
            Row::Captcha(c) => c.expired_date,
            Row::Sms(c) => c.expired_date.max(c.resend_after),
            Row::Pass(pass) => pass.grant.expires_ms,
            Row::Session { record, .. } => record.expires_ms,
            Row::SessionIndex { keep_until_ms, .. } => *keep_until_ms,
            Row::AccessToken(t) => t.expires_ms.saturating_add(ACCESS_TOKEN_ROW_SLACK_MS),
            Row::Ticket { expires_ms, .. }
            | Row::Counter { expires_ms, .. }
            | Row::GuardCounter { expires_ms, .. } => *expires_ms,
            Row::RiskRank(rank) => rank.expires_ms,
        }
    }
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

    /// The number of rows held, expired ones included (for tests).
    pub fn len(&self) -> usize {
        self.rows().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
