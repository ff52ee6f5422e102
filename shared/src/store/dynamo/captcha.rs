//! Captcha rows: create, refresh, issue with counters, verify.
//!
//! **Cost.** A write request unit pays for one item of up to 1 KB written
//! outside a transaction, and a transaction bills two per item. So a
//! rate-limited create or refresh is not one TransactWriteItems (6 units
//! for the captcha and its two counters) but the captcha's PutItem and one
//! conditional UpdateItem per counter, sent at once: one round trip, one
//! unit per item (3). A request a counter refuses makes one more round trip
//! to undo what its other writes did (see [`DynamoStore::issue_captcha`]).
//! A verify, right or wrong, is one UpdateItem (1 unit); the pass a right
//! one earns is a PutItem of its own (`pass.rs`, 1 unit more).
//!
//! **Retries.** The SDK retries a request whose attempt timed out, and the
//! first attempt may have been applied. Every conditional write here carries
//! a request nonce and asks for the old item when its condition fails, so a
//! retry recognises its own earlier write: a verify is never counted twice
//! nor its right answer turned into `verify-fail`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::codec::*;
use super::{DynamoStore, MAX_VERIFY_ROUNDS, join_all};
use crate::domain::{DeviceId, Scene};
use crate::store::*;

/// The attribute of a rate-limited issue's request nonce in the captcha it
/// wrote: what its undo checks, so that it only ever undoes its own write.
const ISSUE_NONCE: &str = "nonce";

/// One write of a refused issue's undo.
type Undo<'a> = std::pin::Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 'a>>;

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

    /// Undoes the captcha write of a refused issue: puts back the captcha it
    /// replaced, or, for a create that replaced none, deletes its own, but
    /// only while the row is still its own untouched captcha (`nonce`,
    /// pending, no attempt), so whatever was written since stays. A retry of
    /// an applied undo fails that condition, which is success. When the
    /// replaced captcha is lost (the put was retried after a lost response
    /// and so replaced its own earlier attempt) a create deletes its own and
    /// a refresh leaves it: the device refreshes, as after any refresh.
    async fn unput_issued(
        &self,
        record: &CaptchaRecord,
        mode: IssueMode,
        replaced: Option<Item>,
        nonce: &str,
    ) -> Result<(), StoreError> {
        const UNTOUCHED: &str = "#nonce = :nonce AND #state = :pending AND #attempts = :zero";
        let replaced = replaced.filter(
            |old| !matches!(old.get(ISSUE_NONCE), Some(v) if v.as_s().is_ok_and(|v| v == nonce)),
        );
        let names = [
            ("#nonce", ISSUE_NONCE),
            ("#state", "state"),
            ("#attempts", "attempts"),
        ];
        let values = [
            (":nonce", s(nonce)),
            (":pending", n(CaptchaState::Pending as i64)),
            (":zero", n(0)),
        ];
        match replaced {
            None if mode == IssueMode::Refresh => {}
            Some(old) => {
                let mut put = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(old))
                    .condition_expression(UNTOUCHED);
                for (k, v) in names {
                    put = put.expression_attribute_names(k, v);
                }
                for (k, v) in values {
                    put = put.expression_attribute_values(k, v);
                }
                if let Err(err) = put.send().await {
                    put_condition_failed(err, "issue_captcha (undo)")?;
                }
            }
            None => {
                let mut delete = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .key(KEY_ATTRIBUTE, s(record.key()))
                    .condition_expression(UNTOUCHED);
                for (k, v) in names {
                    delete = delete.expression_attribute_names(k, v);
                }
                for (k, v) in values {
                    delete = delete.expression_attribute_values(k, v);
                }
                if let Err(err) = delete.send().await {
                    delete_condition_failed(err, "issue_captcha (undo)")?;
                }
            }
        }
        Ok(())
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

/// The outcome of a verify write that went through, from the state it left
/// and the attempt it counted.
fn judged(state: i64, attempt: u32, max_attempts: u32) -> Result<VerifyOutcome, StoreError> {
    match CaptchaState::from_number(state) {
        Some(CaptchaState::Verified) => Ok(VerifyOutcome::Passed),
        Some(CaptchaState::Void) => Ok(VerifyOutcome::Voided),
        Some(CaptchaState::Pending) => Ok(VerifyOutcome::Wrong {
            attempts_left: max_attempts.saturating_sub(attempt),
        }),
        None => Err(corrupt("state", "unknown state")),
    }
}

/// Where a verify stands, judged from the item a failed condition returned.
#[derive(Debug)]
enum Seen {
    Final(VerifyOutcome),
    /// Pending and unexpired, with this many attempts counted by others:
    /// count this one after them.
    Counted(u32),
}

fn classify(
    old: Option<&Item>,
    nonce: &str,
    now_ms: i64,
    max_attempts: u32,
) -> Result<Seen, StoreError> {
    let Some(item) = old else {
        return Ok(Seen::Final(VerifyOutcome::NotFound));
    };
    let attempts =
        u32::try_from(get_n(item, "attempts")?).map_err(|_| corrupt("attempts", "out of range"))?;
    let state = get_n(item, "state")?;
    // This request's own write, made by an attempt whose response was lost.
    let own = (1..=attempts).find(|&k| {
        matches!(item.get(&attempt_nonce_attribute(k)), Some(v) if v.as_s().is_ok_and(|v| v == nonce))
    });
    if let Some(attempt) = own {
        // Answers counted after it show that it was a wrong one.
        let outcome = if attempt == attempts {
            judged(state, attempt, max_attempts)?
        } else {
            VerifyOutcome::Wrong {
                attempts_left: max_attempts.saturating_sub(attempt),
            }
        };
        return Ok(Seen::Final(outcome));
    }
    if CaptchaState::from_number(state) != Some(CaptchaState::Pending) {
        return Ok(Seen::Final(VerifyOutcome::NotPending));
    }
    if now_ms >= get_n(item, "expired_date")? {
        return Ok(Seen::Final(VerifyOutcome::Expired));
    }
    Ok(Seen::Counted(attempts))
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
        let nonce = request_nonce();
        let counting = join_all(
            limits
                .iter()
                .map(|limit| self.count_within(limit, &nonce))
                .collect(),
        );
        let (put, counted) = tokio::join!(self.put_issued(record, mode, &nonce), counting);
        if matches!(put, Ok(Put::Written(_))) && counted.iter().all(|c| matches!(c, Ok(true))) {
            return Ok(IssueOutcome::Written);
        }

        // Refused or failed: undo what went through, then answer with the
        // first counter that was full, else the first failure, else
        // not-found.
        let full = limits
            .iter()
            .zip(&counted)
            .find(|(_, c)| matches!(c, Ok(false)))
            .map(|(limit, _)| limit.window_end_ms);
        let mut undo = Vec::new();
        for (limit, c) in limits.iter().zip(&counted) {
            if matches!(c, Ok(true)) {
                undo.push(Box::pin(self.uncount(&limit.name, &nonce)) as Undo<'_>);
            }
        }
        let (put, replaced) = match put {
            Ok(Put::Written(old)) => (Ok(Put::Written(None)), Some(old)),
            other => (other, None),
        };
        if let Some(old) = replaced {
            undo.push(Box::pin(self.unput_issued(record, mode, old, &nonce)));
        }
        for failed in join_all(undo).await.into_iter().filter_map(Result::err) {
            tracing::warn!(error = %failed, "issue_captcha: a refused request's write stays");
        }
        if let Some(window_end_ms) = full {
            return Ok(IssueOutcome::RateLimited { window_end_ms });
        }
        for c in counted {
            c?;
        }
        match put? {
            Put::NotFound => Ok(IssueOutcome::NotFound),
            Put::Written(_) => unreachable!("a write with every counter counted returned above"),
        }
    }

    /// One conditional UpdateItem, right answer or wrong: it counts the
    /// attempt (guarded on the count `seen`, so racing answers each count
    /// once, in turn) and sets `state` to
    /// `if_not_exists(<the answer's attribute>, <pending or void>)`, which
    /// is verified exactly when the answer is right (see
    /// [`answer_attribute`]). The answer is thus never judged before it is
    /// counted: a store failure hands out no free guess. It writes no pass
    /// (that is [`PassStore::grant_pass`], in a row of its own) and leaves
    /// the row's TTL, the captcha's, alone.
    ///
    /// The request's nonce goes into the attempt's own attribute (`t<n>`),
    /// so a retry whose earlier attempt was applied finds it and answers
    /// what that attempt came to.
    async fn verify_captcha(
        &self,
        scene: &Scene,
        device: &DeviceId,
        answer: &str,
        now_ms: i64,
        max_attempts: u32,
    ) -> Result<VerifyOutcome, StoreError> {
        let key = captcha_key(scene, device);
        let nonce = request_nonce();
        let mut seen = 0;
        for _ in 0..MAX_VERIFY_ROUNDS {
            let attempt = seen + 1;
            let fallback = if attempt >= max_attempts {
                CaptchaState::Void
            } else {
                CaptchaState::Pending
            };
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(KEY_ATTRIBUTE, s(&key))
                .update_expression(
                    "SET #attempts = :attempt, #state = if_not_exists(#ok, :fallback), \
                     #try = :nonce",
                )
                .condition_expression("#state = :pending AND #expired > :now AND #attempts = :seen")
                .expression_attribute_names("#attempts", "attempts")
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#ok", answer_attribute(answer))
                .expression_attribute_names("#try", attempt_nonce_attribute(attempt))
                .expression_attribute_names("#expired", "expired_date")
                .expression_attribute_values(":attempt", n(attempt))
                .expression_attribute_values(":seen", n(seen))
                .expression_attribute_values(":fallback", n(fallback as i64))
                .expression_attribute_values(":pending", n(CaptchaState::Pending as i64))
                .expression_attribute_values(":nonce", s(&nonce))
                .expression_attribute_values(":now", n(now_ms))
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            let old = match result {
                Ok(out) => {
                    let new = out
                        .attributes()
                        .ok_or_else(|| corrupt("state", "not returned"))?;
                    let outcome = judged(get_n(new, "state")?, attempt, max_attempts)?;
                    if outcome != VerifyOutcome::Passed && is_legacy_right_answer(new, answer) {
                        return self.pass_legacy(&key, &nonce, attempt, seen).await;
                    }
                    return Ok(outcome);
                }
                Err(err) => update_condition_failed(err, "verify_captcha")?,
            };
            match classify(old.as_ref(), &nonce, now_ms, max_attempts)? {
                Seen::Final(outcome) => return Ok(outcome),
                Seen::Counted(attempts) if attempts == seen => {
                    return Err(corrupt("attempts", "condition failed on a matching row"));
                }
                Seen::Counted(attempts) => seen = attempts,
            }
        }
        tracing::error!(
            rounds = MAX_VERIFY_ROUNDS,
            "verify_captcha lost every round of its conditional writes"
        );
        Err(StoreError("verify_captcha: too much contention".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(state: CaptchaState, attempts: u32) -> Item {
        captcha_item(&CaptchaRecord {
            device_uuid: DeviceId::parse("d").unwrap(),
            scene: Scene::parse("s").unwrap(),
            code: "abcd".into(),
            state,
            ip: String::new(),
            created_date: 0,
            expired_date: 1000,
            attempts,
        })
    }

    #[test]
    fn classify_follows_the_memory_store_order() {
        let pending = item(CaptchaState::Pending, 2);
        assert!(matches!(
            classify(None, "n", 0, 3),
            Ok(Seen::Final(VerifyOutcome::NotFound))
        ));
        assert!(matches!(
            classify(Some(&pending), "n", 10, 3),
            Ok(Seen::Counted(2))
        ));
        assert!(matches!(
            classify(Some(&pending), "n", 1000, 3),
            Ok(Seen::Final(VerifyOutcome::Expired))
        ));
        assert!(matches!(
            classify(Some(&item(CaptchaState::Verified, 1)), "n", 1000, 3),
            Ok(Seen::Final(VerifyOutcome::NotPending))
        ));
        let mut broken = pending.clone();
        broken.remove("attempts");
        assert!(classify(Some(&broken), "n", 10, 3).is_err());
    }

    #[test]
    fn classify_recognises_its_own_applied_write() {
        // Attempt 2 was this request's (nonce "mine"): whatever happened
        // since, the outcome is what attempt 2 came to.
        let mut passed = item(CaptchaState::Verified, 2);
        passed.insert("t1".into(), s("other"));
        passed.insert("t2".into(), s("mine"));
        assert!(matches!(
            classify(Some(&passed), "mine", 5000, 3),
            Ok(Seen::Final(VerifyOutcome::Passed))
        ));
        let mut wrong = item(CaptchaState::Pending, 2);
        wrong.insert("t1".into(), s("mine"));
        wrong.insert("t2".into(), s("other"));
        assert!(matches!(
            classify(Some(&wrong), "mine", 10, 3),
            Ok(Seen::Final(VerifyOutcome::Wrong { attempts_left: 2 }))
        ));
        let void = item(CaptchaState::Void, 1);
        let mut void = void;
        void.insert("t1".into(), s("mine"));
        assert!(matches!(
            classify(Some(&void), "mine", 10, 1),
            Ok(Seen::Final(VerifyOutcome::Voided))
        ));
    }
}
