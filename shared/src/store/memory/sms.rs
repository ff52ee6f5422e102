//! SMS code rows: one per scene and number, holding the pass a right code
//! earned with it.

use async_trait::async_trait;

use super::{MemoryStore, Row};
use crate::domain::Scene;
use crate::sms::mobile::Mobile;
use crate::store::*;

impl MemoryStore {
    /// The code row of a number in a scene (for tests: what the table
    /// holds of a code).
    pub fn sms_code(&self, scene: &Scene, mobile: &Mobile) -> Option<SmsCodeRecord> {
        match self.rows().get(&sms_key_of(&sms_locator(scene, mobile))) {
            Some(Row::Sms(code)) => Some(code.clone()),
            _ => None,
        }
    }
}

#[async_trait]
impl SmsCodeStore for MemoryStore {
    async fn issue_sms_code(
        &self,
        record: &SmsCodeRecord,
        limits: &[CounterLimit],
        now_ms: i64,
    ) -> Result<SmsIssue, StoreError> {
        let mut rows = self.rows();
        if let Some(Row::Sms(held)) = rows.get(&record.key())
            && held.resend_after > now_ms
        {
            return Ok(SmsIssue::TooSoon {
                resend_after_ms: held.resend_after,
            });
        }
        for (index, limit) in limits.iter().enumerate() {
            if let Some(Row::Counter { count, .. }) = rows.get(&counter_key_of(&limit.name))
                && *count >= limit.limit
            {
                return Ok(SmsIssue::Limited {
                    index,
                    window_end_ms: limit.window_end_ms,
                });
            }
        }
        for limit in limits {
            self.count(&mut rows, &limit.name, limit.window_end_ms);
        }
        self.insert(&mut rows, record.key(), Row::Sms(record.clone()));
        Ok(SmsIssue::Written)
    }

    async fn void_sms_code(&self, record: &SmsCodeRecord) -> Result<(), StoreError> {
        if let Some(Row::Sms(held)) = self.rows().get_mut(&record.key())
            && held.send_id == record.send_id
        {
            held.state = CaptchaState::Void;
        }
        Ok(())
    }

    async fn verify_sms_code(
        &self,
        scene: &Scene,
        mobile: &Mobile,
        answer_hash: &str,
        now_ms: i64,
        max_attempts: u32,
    ) -> Result<VerifyOutcome, StoreError> {
        let mut rows = self.rows();
        let key = sms_key_of(&sms_locator(scene, mobile));
        let Some(Row::Sms(code)) = rows.get_mut(&key) else {
            return Ok(VerifyOutcome::NotFound);
        };
        if code.state != CaptchaState::Pending {
            return Ok(VerifyOutcome::NotPending);
        }
        if now_ms >= code.expired_date {
            return Ok(VerifyOutcome::Expired);
        }
        if code.code_hash == answer_hash {
            code.state = CaptchaState::Verified;
            return Ok(VerifyOutcome::Passed);
        }
        code.attempts += 1;
        if code.attempts >= max_attempts {
            code.state = CaptchaState::Void;
            Ok(VerifyOutcome::Voided)
        } else {
            Ok(VerifyOutcome::Wrong {
                attempts_left: max_attempts - code.attempts,
            })
        }
    }
}
