//! Captcha rows: create, refresh, issue with counters, verify.
//!
//! **Cost.** A write request unit pays for one item of up to 1 KB written
//! outside a transaction, and a transaction bills two per item. So a
//! rate-limited create or refresh is not one TransactWriteItems (6 units
//! for the captcha and its two counters) but the captcha's PutItem and one
//! conditional UpdateItem per counter, sent at once: one round trip, one
//! unit per item (3). A request a counter refuses makes one more round trip
//! to undo what its other writes did (see [`DynamoStore::issue_captcha`]).
//! A right answer is one TransactWriteItems of the captcha's conditional
//! update and its pass's conditional put (`attempt.rs`, `pass.rs`): 2
//! items, 4 units, one request, so that no right answer is judged without
//! its pass written. A wrong answer cancels that transaction (no write,
//! and DynamoDB reports no capacity for it) and is counted by one
//! conditional UpdateItem (1 unit): two requests.
//!
//! **Retries.** The SDK retries a request whose attempt timed out, and the
//! first attempt may have been applied. Every conditional write here carries
//! a request nonce and asks for the old item when its condition fails, so a
//! retry recognises its own earlier write: a verify is never counted twice
//! nor its right answer turned into `verify-fail`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::attempt::{Attempt, Granting};
use super::codec::*;
use super::issue::ISSUE_NONCE;
use super::{DynamoStore, run_undo};
use crate::domain::{DeviceId, Scene};
use crate::store::*;

/// What the captcha write of an issue came to.
enum Put {
    /// Written; the item it replaced, if any.
    Written(Option<Item>),
    /// Refresh without a captcha to replace: nothing written.
    NotFound,
}

impl DynamoStore {
    /// The captcha write of a rate-limited issue: `record` with the request
    /// nonce, asking for the item it replaces (to put it back should a
    /// counter refuse the request). A retry of an applied refresh still
    /// finds a row, and a create is unconditional: both stay `Written`.
    async fn put_issued(
        &self,
        record: &CaptchaRecord,
        mode: IssueMode,
        nonce: &str,
    ) -> Result<Put, StoreError> {
        let mut item = captcha_item(record);
        item.insert(ISSUE_NONCE.to_owned(), s(nonce));
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_values(ReturnValue::AllOld);
        if mode == IssueMode::Refresh {
            put = put
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", KEY_ATTRIBUTE);
        }
        match put.send().await {
            Ok(out) => Ok(Put::Written(out.attributes)),
            Err(err) => {
                put_condition_failed(err, "issue_captcha")?;
                Ok(Put::NotFound)
            }
        }
    }
}

/// Whether `item` is a captcha written before rows carried their right
/// answer's attribute (by a gatehouse older than the one-write verify) and
/// `answer` is its code: such a row judges every answer wrong.
fn is_legacy_right_answer(item: &Item, answer: &str) -> bool {
    !answer.is_empty()
        && !item.keys().any(|k| k.starts_with("ok_"))
        && matches!(item.get("code"), Some(v) if v.as_s().is_ok_and(|code| code == answer))
}

impl DynamoStore {
    /// Passes a legacy captcha (see [`is_legacy_right_answer`]) whose right
    /// answer the verify write just counted as wrong: one more conditional
    /// write, while the row is still as that write left it (its nonce, its
    /// count), that sets it verified and takes the attempt back. Only
    /// captchas in flight while an older gatehouse is replaced take it.
    async fn pass_legacy(
        &self,
        key: &str,
        nonce: &str,
        attempt: u32,
        seen: u32,
    ) -> Result<VerifyOutcome, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(key))
            .update_expression("SET #state = :verified, #attempts = :seen")
            .condition_expression("#try = :nonce AND #attempts = :attempt")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#attempts", "attempts")
            .expression_attribute_names("#try", attempt_nonce_attribute(attempt))
            .expression_attribute_values(":verified", n(CaptchaState::Verified as i64))
            .expression_attribute_values(":seen", n(seen))
            .expression_attribute_values(":nonce", s(nonce))
            .expression_attribute_values(":attempt", n(attempt))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let old = match result {
            Ok(_) => return Ok(VerifyOutcome::Passed),
            Err(err) => update_condition_failed(err, "verify_captcha (legacy row)")?,
        };
        // Its own write (a retry after a lost response) passed; else another
        // answer came in between, and this one no longer decides.
        let own = old.as_ref().is_some_and(|item| {
            get_n(item, "state").ok() == Some(CaptchaState::Verified as i64)
                && matches!(item.get(&attempt_nonce_attribute(attempt)), Some(v) if v.as_s().is_ok_and(|v| v == nonce))
        });
        Ok(if own {
            VerifyOutcome::Passed
        } else {
            VerifyOutcome::NotPending
        })
    }
}

#[async_trait]
impl CaptchaStore for DynamoStore {
    async fn create_captcha(&self, record: &CaptchaRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(captcha_item(record)))
            .send()
            .await
            .map_err(|e| sdk_error("create_captcha", e))?;
        Ok(())
    }

    async fn refresh_captcha(&self, record: &CaptchaRecord) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(captcha_item(record)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", KEY_ATTRIBUTE)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => {
                put_condition_failed(err, "refresh_captcha")?;
                Ok(false)
            }
        }
    }

    /// With counters: the captcha's PutItem and one conditional UpdateItem
    /// per counter (`count < limit`), all sent at once, so a request within
    /// its limits takes one round trip and bills one write unit per item. A
    /// counter never passes its limit: its own condition holds it.
    ///
    /// What the concurrency costs: the captcha is written before the
    /// counters have answered. A request a counter refuses (or a refresh
    /// that found no captcha, or a store failure) then undoes, in one more
    /// round trip, what its other writes did: it puts back the captcha it
    /// replaced (or deletes its own) and takes its one back from each
    /// counter that counted it, both only while untouched by anyone since
    /// (the nonce says so), so an undo never removes another request's
    /// write; when one cannot be undone it stays counted (a limit then
    /// errs on the strict side). For that one round trip the device's
    /// earlier captcha is replaced by one nobody was shown: a verify of the
    /// earlier captcha in those milliseconds fails (and, answered, keeps
    /// the unseen one, which a refresh replaces).
    async fn issue_captcha(
        &self,
        record: &CaptchaRecord,
        mode: IssueMode,
        limits: &[CounterLimit],
    ) -> Result<IssueOutcome, StoreError> {
        if limits.is_empty() {
            return Ok(match mode {
                IssueMode::Create => {
                    self.create_captcha(record).await?;
                    IssueOutcome::Written
                }
                IssueMode::Refresh if self.refresh_captcha(record).await? => IssueOutcome::Written,
                IssueMode::Refresh => IssueOutcome::NotFound,
            });
        }
        let (nonce, key) = (request_nonce(), record.key());
        let (put, counts) = self
            .count_alongside(limits, &nonce, self.put_issued(record, mode, &nonce))
            .await;
        if matches!(put, Ok(Put::Written(_))) && counts.all_counted() {
            return Ok(IssueOutcome::Written);
        }

        // Refused or failed: undo what went through, then answer with the
        // first counter that was full, else the first failure, else
        // not-found. When the replaced captcha is lost (the put was retried
        // after a lost response and so replaced its own earlier attempt) a
        // create deletes its own and a refresh leaves it: the device
        // refreshes, as after any refresh.
        let full = counts.first_full(limits);
        let mut undo = self.uncount_all(limits, &counts, &nonce);
        let put = match put {
            Ok(Put::Written(replaced)) => {
                undo.push(Box::pin(self.restore_row(
                    &key,
                    replaced,
                    &nonce,
                    mode == IssueMode::Create,
                    "issue_captcha (undo)",
                )));
                Ok(Put::Written(None))
            }
            other => other,
        };
        run_undo(undo, "issue_captcha").await;
        if let Some((_, window_end_ms)) = full {
            return Ok(IssueOutcome::RateLimited { window_end_ms });
        }
        counts.result()?;
        match put? {
            Put::NotFound => Ok(IssueOutcome::NotFound),
            Put::Written(_) => unreachable!("a write with every counter counted returned above"),
        }
    }

    /// With a pass: a right answer is one transaction of the captcha's
    /// update and the pass's put, a wrong one that transaction (cancelled)
    /// and one conditional UpdateItem (see
    /// `attempt.rs`, `count_and_judge_granting`); a captcha of an older
    /// gatehouse (no answer attribute) is judged by its `code` in the same
    /// conditions. Without one, one conditional UpdateItem, right answer or
    /// wrong (see `attempt.rs`), and a legacy captcha's right answer one
    /// more. Either leaves the row's TTL, the captcha's, alone.
    async fn verify_captcha_granting(
        &self,
        scene: &Scene,
        device: &DeviceId,
        answer: &str,
        now_ms: i64,
        max_attempts: u32,
        pass: Option<&PassGrant>,
    ) -> Result<VerifyOutcome, StoreError> {
        let key = captcha_key(scene, device);
        let attempt = Attempt {
            key: &key,
            ok_attribute: answer_attribute(answer),
            now_ms,
            max_attempts,
            operation: "verify_captcha",
        };
        if let Some(pass) = pass {
            let granting = Granting {
                pass,
                // An empty answer never passes.
                legacy_code: (!answer.is_empty()).then_some(answer),
            };
            return self.count_and_judge_granting(&attempt, &granting).await;
        }
        let judged = self.count_and_judge(&attempt).await?;
        if let Some(written) = judged.written
            && judged.outcome != VerifyOutcome::Passed
            && is_legacy_right_answer(&written.item, answer)
        {
            return self
                .pass_legacy(&key, &written.nonce, written.attempt, written.seen)
                .await;
        }
        Ok(judged.outcome)
    }
}
