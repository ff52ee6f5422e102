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
//! update and its pass's conditional put (`pass.rs`): 2 items, 4 units, one
//! request, so that no right answer is judged without its pass written.
//! A wrong answer cancels that transaction (no write, and AWS reports no
//! capacity for it) and is counted by one conditional UpdateItem (1 unit):
//! two requests (see [`CaptchaStore::verify_captcha_granting`]).
//!
//! **Retries.** The SDK retries a request whose attempt timed out, and the
//! first attempt may have been applied. Every conditional write here carries
//! a request nonce and asks for the old item when its condition fails, so a
//! retry recognises its own earlier write: a verify is never counted twice
//! nor its right answer turned into `verify-fail`.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put as TransactPut, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::codec::*;
use super::pass::{GRANTED_BY, pass_item};
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

/// The update of a right answer's round: the attempt counted, the captcha
/// verified, the request's nonce in the attempt's attribute.
const PASS_UPDATE: &str = "SET #attempts = :attempt, #state = :verified, #try = :nonce";
/// The update of a wrong answer's round: the attempt counted, the captcha
/// left pending or, at the last attempt, voided.
const WRONG_UPDATE: &str = "SET #attempts = :attempt, #state = :fallback, #try = :nonce";
/// What both rounds require of the captcha row: pending, unexpired, and at
/// the attempt count the round was built on (so racing answers each count
/// once, in turn).
const OPEN: &str = "#state = :pending AND #expired > :now AND #attempts = :seen";

/// What one round of a verify came to.
enum Round {
    /// Applied.
    Done(VerifyOutcome),
    /// Refused by the captcha row's condition: the row as it was (`None`:
    /// no row).
    Refused(Option<Item>),
    /// Another transaction held the captcha row (`TransactionConflict`):
    /// the round is tried again.
    Conflict,
}

/// Expression attribute names or values, by placeholder.
type Placeholders<T> = Vec<(&'static str, T)>;

/// One round's attempt at the captcha row: which attempt it counts, on top
/// of how many, with which request nonce.
struct Attempt<'a> {
    key: &'a str,
    answer: &'a str,
    nonce: &'a str,
    attempt: u32,
    seen: u32,
    now_ms: i64,
}

impl Attempt<'_> {
    /// The names and values every round's expressions use.
    fn placeholders(&self) -> (Placeholders<String>, Placeholders<AttributeValue>) {
        let names = vec![
            ("#attempts", "attempts".to_owned()),
            ("#state", "state".to_owned()),
            ("#try", attempt_nonce_attribute(self.attempt)),
            ("#expired", "expired_date".to_owned()),
            ("#code", "code".to_owned()),
        ];
        let values = vec![
            (":attempt", n(self.attempt)),
            (":seen", n(self.seen)),
            (":pending", n(CaptchaState::Pending as i64)),
            (":nonce", s(self.nonce)),
            (":now", n(self.now_ms)),
            (":answer", s(self.answer)),
        ];
        (names, values)
    }
}

impl DynamoStore {
    /// A right answer's round: the captcha row's update ([`PASS_UPDATE`])
    /// on [`OPEN`] and its code being `answer` (`code`, which every captcha
    /// row holds, rows of older gatehouses included) and, with `pass`, the
    /// pass's Put (never over a row) in the same `TransactWriteItems`, all
    /// or nothing. `ClientRequestToken` (the nonce and the round) makes the
    /// SDK's retry of an applied transaction answer success without writing
    /// again; the nonces in both items let a retry past that recognise its
    /// own write.
    async fn pass_round(
        &self,
        at: &Attempt<'_>,
        round: usize,
        pass: Option<&PassGrant>,
    ) -> Result<Round, StoreError> {
        let condition = format!("{OPEN} AND #code = :answer");
        let (names, values) = at.placeholders();
        let values = values
            .into_iter()
            .chain([(":verified", n(CaptchaState::Verified as i64))]);
        let Some(pass) = pass else {
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(KEY_ATTRIBUTE, s(at.key))
                .update_expression(PASS_UPDATE)
                .condition_expression(condition)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            for (k, v) in names {
                update = update.expression_attribute_names(k, v);
            }
            for (k, v) in values {
                update = update.expression_attribute_values(k, v);
            }
            return match update.send().await {
                Ok(_) => Ok(Round::Done(VerifyOutcome::Passed)),
                Err(err) if update_conflict(&err) => Ok(Round::Conflict),
                Err(err) => Ok(Round::Refused(update_condition_failed(
                    err,
                    "verify_captcha",
                )?)),
            };
        };
        let build = |e: aws_sdk_dynamodb::error::BuildError| {
            StoreError(format!("verify_captcha: request not built: {e}"))
        };
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(at.key))
            .update_expression(PASS_UPDATE)
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (k, v) in names {
            update = update.expression_attribute_names(k, v);
        }
        for (k, v) in values {
            update = update.expression_attribute_values(k, v);
        }
        let put = TransactPut::builder()
            .table_name(&self.table)
            .set_item(Some(pass_item(pass, at.nonce)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", KEY_ATTRIBUTE)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(build)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(
                TransactWriteItem::builder()
                    .update(update.build().map_err(build)?)
                    .build(),
            )
            .transact_items(TransactWriteItem::builder().put(put).build())
            .client_request_token(format!("{}-{round}", at.nonce))
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Round::Done(VerifyOutcome::Passed)),
            Err(err) => err,
        };
        let reasons = match &err {
            SdkError::ServiceError(ctx) => match ctx.err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    cancelled.cancellation_reasons().to_vec()
                }
                _ => return Err(sdk_error("verify_captcha", err)),
            },
            _ => return Err(sdk_error("verify_captcha", err)),
        };
        cancelled_round(&reasons, at.nonce).map_err(|what| {
            tracing::error!(what, "verify_captcha: transaction cancelled");
            sdk_error("verify_captcha", err)
        })
    }

    /// A wrong answer's round: one UpdateItem ([`WRONG_UPDATE`]) on
    /// [`OPEN`] and the row's code being another than `answer` (an empty
    /// answer is wrong whatever the code), so that it never passes a
    /// captcha (that takes its pass along: [`DynamoStore::pass_round`]).
    async fn wrong_round(&self, at: &Attempt<'_>, max_attempts: u32) -> Result<Round, StoreError> {
        let fallback = if at.attempt >= max_attempts {
            CaptchaState::Void
        } else {
            CaptchaState::Pending
        };
        let (names, values) = at.placeholders();
        let (condition, names, values): (String, Vec<_>, Vec<_>) = if at.answer.is_empty() {
            (
                OPEN.to_owned(),
                names.into_iter().filter(|(k, _)| *k != "#code").collect(),
                values
                    .into_iter()
                    .filter(|(k, _)| *k != ":answer")
                    .collect(),
            )
        } else {
            (format!("{OPEN} AND #code <> :answer"), names, values)
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(at.key))
            .update_expression(WRONG_UPDATE)
            .condition_expression(condition)
            .expression_attribute_values(":fallback", n(fallback as i64))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (k, v) in names {
            update = update.expression_attribute_names(k, v);
        }
        for (k, v) in values {
            update = update.expression_attribute_values(k, v);
        }
        match update.send().await {
            Ok(out) => {
                let new = out
                    .attributes()
                    .ok_or_else(|| corrupt("state", "not returned"))?;
                Ok(Round::Done(judged(
                    get_n(new, "state")?,
                    at.attempt,
                    max_attempts,
                )?))
            }
            Err(err) if update_conflict(&err) => Ok(Round::Conflict),
            Err(err) => Ok(Round::Refused(update_condition_failed(
                err,
                "verify_captcha",
            )?)),
        }
    }
}

/// Whether an UpdateItem was refused because a transaction held its item.
fn update_conflict(
    err: &SdkError<UpdateItemError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> bool {
    matches!(err, SdkError::ServiceError(ctx) if ctx.err().is_transaction_conflict_exception())
}

/// What a cancelled right answer's transaction says, from its cancellation
/// reasons (the captcha's update first, the pass's Put second): the captcha
/// row as its refused condition saw it, a conflict to try again, or (`Err`,
/// what else) a cancellation no round explains.
fn cancelled_round(reasons: &[CancellationReason], nonce: &str) -> Result<Round, &'static str> {
    let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
    match (code(0), code(1)) {
        ("ConditionalCheckFailed", _) => Ok(Round::Refused(reasons[0].item().cloned())),
        ("TransactionConflict", _) | (_, "TransactionConflict") => Ok(Round::Conflict),
        // A pass row already under the key: 256 random bits make that a
        // store fault, unless it is this very request's (whose captcha
        // update then also failed its condition, handled above).
        (_, "ConditionalCheckFailed")
            if reasons[1]
                .item()
                .is_some_and(|item| holds(item, GRANTED_BY, nonce)) =>
        {
            Err("the pass row is this request's but its captcha update is not")
        }
        (_, "ConditionalCheckFailed") => Err("a pass row is already there"),
        _ => Err("cancelled for another reason"),
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
    /// Pending and unexpired, with this many attempts counted by others
    /// (count this one after them), and whether its code is the answer.
    Counted {
        attempts: u32,
        right: bool,
    },
}

fn classify(
    old: Option<&Item>,
    nonce: &str,
    answer: &str,
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
    // Every captcha row holds its code (an empty answer is never right).
    let right = !answer.is_empty() && get_s(item, "code")? == answer;
    Ok(Seen::Counted { attempts, right })
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

    /// Judged and counted in one write, a right answer's pass with it. The
    /// first round takes the answer for right: one transaction of the
    /// captcha row's conditional update (see [`DynamoStore::pass_round`])
    /// and the pass's conditional Put. A wrong answer cancels it, and the
    /// cancellation carries the captcha row as it was
    /// (`ReturnValuesOnConditionCheckFailure = ALL_OLD`); when that row is
    /// still open at the count the round was built on, only the code can
    /// have refused it, and the next round counts the wrong answer with one
    /// conditional UpdateItem whose condition is that the code is another
    /// (see [`DynamoStore::wrong_round`]). A cancelled transaction writes
    /// nothing, so a wrong answer cannot be counted by it: two requests.
    ///
    /// Every round is conditioned on the attempt count it saw, and one
    /// refused by another answer's count is built again on the new count
    /// (each answer counted once, in turn); a round that met another
    /// transaction is tried again. The request's nonce goes into the
    /// attempt's own attribute (`t<n>`) and the pass's `granted_by`, so a
    /// retry whose earlier attempt was applied finds it and answers what
    /// that attempt came to.
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
        let nonce = request_nonce();
        let mut seen = 0;
        // An empty answer never passes.
        let mut right = !answer.is_empty();
        for round in 0..MAX_VERIFY_ROUNDS {
            let at = Attempt {
                key: &key,
                answer,
                nonce: &nonce,
                attempt: seen + 1,
                seen,
                now_ms,
            };
            let done = if right {
                self.pass_round(&at, round, pass).await?
            } else {
                self.wrong_round(&at, max_attempts).await?
            };
            let old = match done {
                Round::Done(outcome) => return Ok(outcome),
                Round::Conflict => {
                    let jitter = rand::random_range(0..=10u64);
                    tokio::time::sleep(Duration::from_millis(5 + jitter)).await;
                    continue;
                }
                Round::Refused(old) => old,
            };
            match classify(old.as_ref(), &nonce, answer, now_ms, max_attempts)? {
                Seen::Final(outcome) => return Ok(outcome),
                Seen::Counted {
                    attempts,
                    right: is_right,
                } => {
                    if attempts == seen && is_right == right {
                        return Err(corrupt("attempts", "condition failed on a matching row"));
                    }
                    seen = attempts;
                    right = is_right;
                }
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
            classify(None, "n", "abcd", 0, 3),
            Ok(Seen::Final(VerifyOutcome::NotFound))
        ));
        assert!(matches!(
            classify(Some(&pending), "n", "abcd", 10, 3),
            Ok(Seen::Counted {
                attempts: 2,
                right: true
            })
        ));
        assert!(matches!(
            classify(Some(&pending), "n", "zzzz", 10, 3),
            Ok(Seen::Counted {
                attempts: 2,
                right: false
            })
        ));
        assert!(matches!(
            classify(Some(&item(CaptchaState::Pending, 0)), "n", "", 10, 3),
            Ok(Seen::Counted {
                attempts: 0,
                right: false
            })
        ));
        assert!(matches!(
            classify(Some(&pending), "n", "abcd", 1000, 3),
            Ok(Seen::Final(VerifyOutcome::Expired))
        ));
        assert!(matches!(
            classify(Some(&item(CaptchaState::Verified, 1)), "n", "abcd", 1000, 3),
            Ok(Seen::Final(VerifyOutcome::NotPending))
        ));
        let mut broken = pending.clone();
        broken.remove("attempts");
        assert!(classify(Some(&broken), "n", "abcd", 10, 3).is_err());
    }

    #[test]
    fn classify_recognises_its_own_applied_write() {
        // Attempt 2 was this request's (nonce "mine"): whatever happened
        // since, the outcome is what attempt 2 came to.
        let mut passed = item(CaptchaState::Verified, 2);
        passed.insert("t1".into(), s("other"));
        passed.insert("t2".into(), s("mine"));
        assert!(matches!(
            classify(Some(&passed), "mine", "abcd", 5000, 3),
            Ok(Seen::Final(VerifyOutcome::Passed))
        ));
        let mut wrong = item(CaptchaState::Pending, 2);
        wrong.insert("t1".into(), s("mine"));
        wrong.insert("t2".into(), s("other"));
        assert!(matches!(
            classify(Some(&wrong), "mine", "abcd", 10, 3),
            Ok(Seen::Final(VerifyOutcome::Wrong { attempts_left: 2 }))
        ));
        let void = item(CaptchaState::Void, 1);
        let mut void = void;
        void.insert("t1".into(), s("mine"));
        assert!(matches!(
            classify(Some(&void), "mine", "abcd", 10, 1),
            Ok(Seen::Final(VerifyOutcome::Voided))
        ));
    }

    #[test]
    fn a_cancelled_transaction_is_told_by_its_reasons() {
        let reason = |code: &str, item: Option<Item>| {
            CancellationReason::builder()
                .code(code)
                .set_item(item)
                .build()
        };
        let row = item(CaptchaState::Pending, 1);
        let refused = [
            reason("ConditionalCheckFailed", Some(row.clone())),
            reason("None", None),
        ];
        assert!(matches!(
            cancelled_round(&refused, "n"),
            Ok(Round::Refused(Some(old))) if old == row
        ));
        for reasons in [
            [reason("TransactionConflict", None), reason("None", None)],
            [reason("None", None), reason("TransactionConflict", None)],
        ] {
            assert!(matches!(
                cancelled_round(&reasons, "n"),
                Ok(Round::Conflict)
            ));
        }
        // A pass row in the way is a fault, whoever's it is.
        let pass = Item::from([(GRANTED_BY.to_owned(), s("n"))]);
        for nonce in ["n", "other"] {
            let reasons = [
                reason("None", None),
                reason("ConditionalCheckFailed", Some(pass.clone())),
            ];
            assert!(cancelled_round(&reasons, nonce).is_err());
        }
        assert!(cancelled_round(&[reason("ValidationError", None)], "n").is_err());
        assert!(cancelled_round(&[], "n").is_err());
    }
}
