//! SMS code rows: a send (the row's conditional write and its counters at
//! once, see `issue.rs`), the void of a code Tencent did not send, and a
//! verify (one write, see `attempt.rs`).
//!
//! **Cost.** A send within its limits is the row's PutItem and one
//! UpdateItem per counter, sent at once: one round trip, one write unit
//! each. A refused send (too soon, or a full counter) takes one more round
//! trip to undo what went through. A verify, right or wrong, is one
//! UpdateItem (1 unit); a failed SendSms's void one more.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::attempt::Attempt;
use super::codec::*;
use super::issue::ISSUE_NONCE;
use super::{DynamoStore, run_undo};
use crate::domain::Scene;
use crate::sms::mobile::Mobile;
use crate::store::*;

/// What the row's write of a send came to.
enum Put {
    /// Written; the item it replaced, if any.
    Written(Option<Item>),
    /// The number's code is younger than its resend window: nothing
    /// written. The window's end.
    TooSoon(i64),
}

impl DynamoStore {
    /// The row's write of a send: `record`, unless the row holds a code
    /// whose `resend_after` is still ahead of `now_ms`; asking for the item
    /// it replaces (to put it back should a counter refuse the send) or the
    /// one that refused it. A retry after a lost response finds its own
    /// `send_id` in the row: written.
    async fn put_sms_code(&self, record: &SmsCodeRecord, now_ms: i64) -> Result<Put, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(sms_item(record)))
            .condition_expression("attribute_not_exists(#pk) OR #resend <= :now")
            .expression_attribute_names("#pk", KEY_ATTRIBUTE)
            .expression_attribute_names("#resend", "resend_after")
            .expression_attribute_values(":now", n(now_ms))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let old = match result {
            Ok(out) => return Ok(Put::Written(out.attributes)),
            Err(err) => put_condition_failed_item(err, "issue_sms_code")?
                .ok_or_else(|| corrupt("resend_after", "condition failed without a row"))?,
        };
        if matches!(old.get(ISSUE_NONCE), Some(v) if v.as_s().is_ok_and(|v| *v == record.send_id)) {
            return Ok(Put::Written(None));
        }
        Ok(Put::TooSoon(get_n(&old, "resend_after")?))
    }
}

#[async_trait]
impl SmsCodeStore for DynamoStore {
    /// The send id is the request's nonce, in the row and in the counters'
    /// slots alike.
    async fn issue_sms_code(
        &self,
        record: &SmsCodeRecord,
        limits: &[CounterLimit],
        now_ms: i64,
    ) -> Result<SmsIssue, StoreError> {
        let (nonce, key) = (record.send_id.as_str(), record.key());
        let (put, counts) = self
            .count_alongside(limits, nonce, self.put_sms_code(record, now_ms))
            .await;
        if matches!(put, Ok(Put::Written(_))) && counts.all_counted() {
            return Ok(SmsIssue::Written);
        }
        // Refused or failed: undo what went through, then answer too soon,
        // else the first counter that was full, else the first failure.
        let full = counts.first_full(limits);
        let mut undo = self.uncount_all(limits, &counts, nonce);
        let too_soon = match put {
            Ok(Put::Written(replaced)) => {
                undo.push(Box::pin(self.restore_row(
                    &key,
                    replaced,
                    nonce,
                    true,
                    "issue_sms_code (undo)",
                )));
                Ok(None)
            }
            Ok(Put::TooSoon(resend_after_ms)) => Ok(Some(resend_after_ms)),
            Err(err) => Err(err),
        };
        run_undo(undo, "issue_sms_code").await;
        if let Ok(Some(resend_after_ms)) = too_soon {
            return Ok(SmsIssue::TooSoon { resend_after_ms });
        }
        if let Some((index, window_end_ms)) = full {
            return Ok(SmsIssue::Limited {
                index,
                window_end_ms,
            });
        }
        counts.result()?;
        too_soon?;
        unreachable!("a write with every counter counted returned above")
    }

    /// One conditional UpdateItem on the send's own row (`send_id`, still
    /// pending): a newer send's code, or one answered since, stays.
    async fn void_sms_code(&self, record: &SmsCodeRecord) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(record.key()))
            .update_expression("SET #state = :void")
            .condition_expression("#nonce = :id AND #state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#nonce", ISSUE_NONCE)
            .expression_attribute_values(":void", n(CaptchaState::Void as i64))
            .expression_attribute_values(":pending", n(CaptchaState::Pending as i64))
            .expression_attribute_values(":id", s(&record.send_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => update_condition_failed(err, "void_sms_code").map(drop),
        }
    }

    async fn verify_sms_code(
        &self,
        scene: &Scene,
        mobile: &Mobile,
        answer_hash: &str,
        now_ms: i64,
        max_attempts: u32,
    ) -> Result<VerifyOutcome, StoreError> {
        let key = sms_key_of(&sms_locator(scene, mobile));
        let attempt = Attempt {
            key: &key,
            ok_attribute: sms_answer_attribute(answer_hash),
            now_ms,
            max_attempts,
            operation: "verify_sms_code",
        };
        Ok(self.count_and_judge(&attempt).await?.outcome)
    }
}
