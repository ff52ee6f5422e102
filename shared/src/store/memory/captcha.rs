//! Captcha rows: one per device and scene.

use async_trait::async_trait;

use super::{MemoryStore, Row};
use crate::store::*;

impl MemoryStore {
    /// The captcha row for a device and scene (for tests and the demo's
    /// browser test, which must learn the answer without an HTTP route).
    pub fn captcha(&self, scene: &str, device: &str) -> Option<CaptchaRecord> {
        let key = captcha_key(&Scene::parse(scene).ok()?, &DeviceId::parse(device).ok()?);
        match self.rows().get(&key) {
            Some(Row::Captcha(c)) => Some(c.clone()),
            _ => None,
        }
    }
}

#[async_trait]
impl CaptchaStore for MemoryStore {
    async fn create_captcha(&self, record: &CaptchaRecord) -> Result<(), StoreError> {
        let mut rows = self.rows();
        self.insert(&mut rows, record.key(), Row::Captcha(record.clone()));
        Ok(())
    }

    async fn refresh_captcha(&self, record: &CaptchaRecord) -> Result<bool, StoreError> {
        let mut rows = self.rows();
        match rows.get_mut(&record.key()) {
            Some(row @ Row::Captcha(_)) => {
                *row = Row::Captcha(record.clone());
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
        if mode == IssueMode::Refresh && !matches!(rows.get(&record.key()), Some(Row::Captcha(_))) {
            return Ok(IssueOutcome::NotFound);
        }
        for limit in limits {
            self.count(&mut rows, &limit.name, limit.window_end_ms);
        }
        self.insert(&mut rows, record.key(), Row::Captcha(record.clone()));
        Ok(IssueOutcome::Written)
    }

    /// Judged, counted and (right) granted under the one lock: atomic, as
    /// the DynamoDB store's transaction.
    async fn verify_captcha_granting(
        &self,
        scene: &Scene,
        device: &DeviceId,
        answer: &str,
        now_ms: i64,
        max_attempts: u32,
        pass: Option<&PassGrant>,
    ) -> Result<VerifyOutcome, StoreError> {
        let mut rows = self.rows();
        let key = captcha_key(scene, device);
        let Some(Row::Captcha(captcha)) = rows.get(&key) else {
            return Ok(VerifyOutcome::NotFound);
        };
        if captcha.state != CaptchaState::Pending {
            return Ok(VerifyOutcome::NotPending);
        }
        if now_ms >= captcha.expired_date {
            return Ok(VerifyOutcome::Expired);
        }
        if !answer.is_empty() && captcha.code == answer {
            // The pass first: a row already under its key fails the whole
            // verify, the captcha untouched.
            if let Some(pass) = pass {
                self.insert_pass(&mut rows, pass)?;
            }
            if let Some(Row::Captcha(captcha)) = rows.get_mut(&key) {
                captcha.state = CaptchaState::Verified;
            }
            return Ok(VerifyOutcome::Passed);
        }
        let Some(Row::Captcha(captcha)) = rows.get_mut(&key) else {
            unreachable!("the captcha row was read under the same lock");
        };
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
