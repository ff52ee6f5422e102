//! The one-write verify of a code row, captchas' and SMS codes' alike: one
//! conditional UpdateItem, right answer or wrong, counts the attempt
//! (guarded on the count `seen`, so racing answers each count once, in
//! turn) and sets `state` to `if_not_exists(<the answer's attribute>,
//! <pending or void>)`, which is verified exactly when the answer is right:
//! a row holds an `ok_<hash>` attribute for its right answer alone (see
//! `codec::answer_attribute` and `codec::sms_item`). The answer is thus
//! never judged before it is counted: a store failure hands out no free
//! guess. It writes no pass (an SMS code's pass is the caller's next write,
//! a row of its own: `pass.rs`).
//!
//! A captcha's verify grants its pass in the same write instead
//! ([`DynamoStore::count_and_judge_granting`]): a right answer is one
//! transaction of the row's update and the pass's put, a wrong one that
//! transaction (cancelled) and one conditional UpdateItem that counts it.
//!
//! The request's nonce goes into the attempt's own attribute (`t<n>`), so
//! a retry whose earlier attempt was applied finds it and answers what that
//! attempt came to.

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};

use super::codec::*;
use super::pass::{GRANTED_BY, pass_item};
use super::{DynamoStore, MAX_VERIFY_ROUNDS};
use crate::store::*;

/// One answer to one row.
pub(super) struct Attempt<'a> {
    pub key: &'a str,
    /// `ok_<hash of the answer>`.
    pub ok_attribute: String,
    pub now_ms: i64,
    pub max_attempts: u32,
    /// The store operation, for errors and logs.
    pub operation: &'static str,
}

/// What an attempt came to, and, when this request's own write went
/// through, what it wrote.
pub(super) struct Judged {
    pub outcome: VerifyOutcome,
    pub written: Option<Written>,
}

/// The write an attempt made: its nonce, its number, the count it found,
/// and the row it left.
pub(super) struct Written {
    pub nonce: String,
    pub attempt: u32,
    pub seen: u32,
    pub item: Item,
}

impl DynamoStore {
    /// Counts and judges `attempt` (see the module).
    pub(super) async fn count_and_judge(
        &self,
        attempt: &Attempt<'_>,
    ) -> Result<Judged, StoreError> {
        let Attempt {
            key,
            ok_attribute,
            now_ms,
            max_attempts,
            operation,
        } = attempt;
        let (now_ms, max_attempts) = (*now_ms, *max_attempts);
        let nonce = request_nonce();
        let mut seen = 0;
        for _ in 0..MAX_VERIFY_ROUNDS {
            let number = seen + 1;
            let fallback = if number >= max_attempts {
                CaptchaState::Void
            } else {
                CaptchaState::Pending
            };
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(KEY_ATTRIBUTE, s(*key))
                .update_expression(
                    "SET #attempts = :attempt, #state = if_not_exists(#ok, :fallback), \
                     #try = :nonce",
                )
                .condition_expression("#state = :pending AND #expired > :now AND #attempts = :seen")
                .expression_attribute_names("#attempts", "attempts")
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#ok", ok_attribute)
                .expression_attribute_names("#try", attempt_nonce_attribute(number))
                .expression_attribute_names("#expired", "expired_date")
                .expression_attribute_values(":attempt", n(number))
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
                    let item = out
                        .attributes
                        .ok_or_else(|| corrupt("state", "not returned"))?;
                    let outcome = judged(get_n(&item, "state")?, number, max_attempts)?;
                    return Ok(Judged {
                        outcome,
                        written: Some(Written {
                            nonce,
                            attempt: number,
                            seen,
                            item,
                        }),
                    });
                }
                Err(err) => update_condition_failed(err, operation)?,
            };
            match classify(old.as_ref(), &nonce, now_ms, max_attempts)? {
                Seen::Final(outcome) => {
                    return Ok(Judged {
                        outcome,
                        written: None,
                    });
                }
                Seen::Counted(attempts) if attempts == seen => {
                    return Err(corrupt("attempts", "condition failed on a matching row"));
                }
                Seen::Counted(attempts) => seen = attempts,
            }
        }
        tracing::error!(
            rounds = MAX_VERIFY_ROUNDS,
            operation,
            "a verify lost every round of its conditional writes"
        );
        Err(StoreError(format!("{operation}: too much contention")))
    }
}

/// The update of a right answer's round in a transaction with its pass:
/// the attempt counted, the row verified, the request's nonce in the
/// attempt's attribute.
const PASS_UPDATE: &str = "SET #attempts = :attempt, #state = :verified, #try = :nonce";
/// The update of a wrong answer's round: the attempt counted, the row left
/// pending or, at the last attempt, voided.
const WRONG_UPDATE: &str = "SET #attempts = :attempt, #state = :fallback, #try = :nonce";
/// What both rounds require of the row: pending, unexpired, and at the
/// attempt count the round was built on (so racing answers each count
/// once, in turn).
const OPEN: &str = "#state = :pending AND #expired > :now AND #attempts = :seen";

/// Expression attribute names or values, by placeholder.
type Placeholders<T> = Vec<(&'static str, T)>;

/// A right answer's pass, granted in the write that judges the answer.
pub(super) struct Granting<'a> {
    pub pass: &'a PassGrant,
    /// A captcha row written before rows carried their right answer's
    /// attribute holds the answer in `code` alone: the answer (not empty)
    /// to compare it with. `None` for rows that always carry the attribute.
    pub legacy_code: Option<&'a str>,
}

/// What one round of a granting verify came to.
enum Round {
    /// Applied.
    Done(VerifyOutcome),
    /// Refused by the row's condition: the row as it was (`None`: no row).
    Refused(Option<Item>),
    /// Another transaction held the row (`TransactionConflict`): the round
    /// is tried again.
    Conflict,
}

/// One round's write: which attempt it counts, on top of how many, with
/// which request nonce.
struct RoundOf<'a> {
    attempt: &'a Attempt<'a>,
    legacy_code: Option<&'a str>,
    nonce: &'a str,
    number: u32,
    seen: u32,
}

impl RoundOf<'_> {
    /// The names and values both rounds' expressions use.
    fn placeholders(&self) -> (Placeholders<String>, Placeholders<AttributeValue>) {
        let mut names = vec![
            ("#attempts", "attempts".to_owned()),
            ("#state", "state".to_owned()),
            ("#try", attempt_nonce_attribute(self.number)),
            ("#expired", "expired_date".to_owned()),
            ("#ok", self.attempt.ok_attribute.clone()),
        ];
        let mut values = vec![
            (":attempt", n(self.number)),
            (":seen", n(self.seen)),
            (":pending", n(CaptchaState::Pending as i64)),
            (":nonce", s(self.nonce)),
            (":now", n(self.attempt.now_ms)),
        ];
        if let Some(code) = self.legacy_code {
            names.push(("#code", "code".to_owned()));
            values.push((":code", s(code)));
        }
        (names, values)
    }

    /// Whether the answer is right by the row as a refused round returned it.
    fn right_by(&self, item: &Item) -> bool {
        item.contains_key(&self.attempt.ok_attribute)
            || self
                .legacy_code
                .is_some_and(|code| holds(item, "code", code))
    }
}

impl DynamoStore {
    /// Counts and judges `attempt` as [`DynamoStore::count_and_judge`]
    /// does, and grants `granting.pass` in the very write that passes it,
    /// all or nothing, so that no answer that did not pass leaves a pass
    /// and no answer passes without one.
    ///
    /// The first round takes the answer for right: one `TransactWriteItems`
    /// of the row's update ([`PASS_UPDATE`]) on [`OPEN`] and the answer's
    /// attribute existing (or, a legacy captcha, its `code` being the
    /// answer), and the pass's Put on `attribute_not_exists(pk)`. A wrong
    /// answer cancels it, and the cancellation reasons carry the row as it
    /// was (`ReturnValuesOnConditionCheckFailure = ALL_OLD`): when that row
    /// is still open at the count the round was built on, only the answer
    /// can have refused it, and the next round counts the wrong answer with
    /// one conditional UpdateItem ([`WRONG_UPDATE`]) whose condition is
    /// that the answer's attribute is absent (and the code another), so
    /// that it never counts a right answer as wrong. A cancelled
    /// transaction writes nothing, so a wrong answer cannot be counted by
    /// it: two requests. A round refused by another answer's count is
    /// built again on the count the row shows (each answer counted once,
    /// in turn); a round that met another transaction is tried again.
    ///
    /// Retries: the transaction carries a `ClientRequestToken` (the nonce
    /// and the round), so the SDK's retry of an applied one answers success
    /// without writing again; past that, the nonce in the attempt's
    /// attribute (`t<n>`) and the pass's `granted_by` recognise the
    /// request's own write. The pass is the caller's, whatever the round.
    pub(super) async fn count_and_judge_granting(
        &self,
        attempt: &Attempt<'_>,
        granting: &Granting<'_>,
    ) -> Result<VerifyOutcome, StoreError> {
        let nonce = request_nonce();
        let mut seen = 0;
        let mut right = true;
        for round in 0..MAX_VERIFY_ROUNDS {
            let at = RoundOf {
                attempt,
                legacy_code: granting.legacy_code,
                nonce: &nonce,
                number: seen + 1,
                seen,
            };
            let done = if right {
                self.pass_round(&at, round, granting.pass).await?
            } else {
                self.wrong_round(&at).await?
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
            match classify(old.as_ref(), &nonce, attempt.now_ms, attempt.max_attempts)? {
                Seen::Final(outcome) => return Ok(outcome),
                Seen::Counted(attempts) => {
                    let is_right = old.as_ref().is_some_and(|item| at.right_by(item));
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
            operation = attempt.operation,
            "a verify lost every round of its conditional writes"
        );
        Err(StoreError(format!(
            "{}: too much contention",
            attempt.operation
        )))
    }

    /// A right answer's round: the row's update and the pass's put, one
    /// transaction (see [`DynamoStore::count_and_judge_granting`]).
    async fn pass_round(
        &self,
        at: &RoundOf<'_>,
        round: usize,
        pass: &PassGrant,
    ) -> Result<Round, StoreError> {
        let operation = at.attempt.operation;
        let condition = match at.legacy_code {
            Some(_) => format!("{OPEN} AND (attribute_exists(#ok) OR #code = :code)"),
            None => format!("{OPEN} AND attribute_exists(#ok)"),
        };
        let build = |e: aws_sdk_dynamodb::error::BuildError| {
            StoreError(format!("{operation}: request not built: {e}"))
        };
        let (names, values) = at.placeholders();
        let mut update = Update::builder()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(at.attempt.key))
            .update_expression(PASS_UPDATE)
            .condition_expression(condition)
            .expression_attribute_values(":verified", n(CaptchaState::Verified as i64))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (k, v) in names {
            update = update.expression_attribute_names(k, v);
        }
        for (k, v) in values {
            update = update.expression_attribute_values(k, v);
        }
        let put = Put::builder()
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
                _ => return Err(sdk_error(operation, err)),
            },
            _ => return Err(sdk_error(operation, err)),
        };
        cancelled_round(&reasons, at.nonce).map_err(|what| {
            tracing::error!(operation, what, "a verify's transaction was cancelled");
            sdk_error(operation, err)
        })
    }

    /// A wrong answer's round: one conditional UpdateItem (see
    /// [`DynamoStore::count_and_judge_granting`]).
    async fn wrong_round(&self, at: &RoundOf<'_>) -> Result<Round, StoreError> {
        let max_attempts = at.attempt.max_attempts;
        let fallback = if at.number >= max_attempts {
            CaptchaState::Void
        } else {
            CaptchaState::Pending
        };
        let condition = match at.legacy_code {
            Some(_) => format!("{OPEN} AND attribute_not_exists(#ok) AND NOT (#code = :code)"),
            None => format!("{OPEN} AND attribute_not_exists(#ok)"),
        };
        let (names, values) = at.placeholders();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(at.attempt.key))
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
                    at.number,
                    max_attempts,
                )?))
            }
            Err(err) if update_conflict(&err) => Ok(Round::Conflict),
            Err(err) => Ok(Round::Refused(update_condition_failed(
                err,
                at.attempt.operation,
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
/// reasons (the row's update first, the pass's put second): the row as its
/// refused condition saw it, a conflict to try again, or (`Err`, what else)
/// a cancellation no round explains.
fn cancelled_round(reasons: &[CancellationReason], nonce: &str) -> Result<Round, &'static str> {
    let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
    match (code(0), code(1)) {
        ("ConditionalCheckFailed", _) => Ok(Round::Refused(reasons[0].item().cloned())),
        ("TransactionConflict", _) | (_, "TransactionConflict") => Ok(Round::Conflict),
        // A pass row already under the key: 256 random bits make that a
        // store fault, even this very request's (whose row update then
        // failed its condition too, handled above).
        (_, "ConditionalCheckFailed")
            if reasons[1]
                .item()
                .is_some_and(|item| holds(item, GRANTED_BY, nonce)) =>
        {
            Err("the pass row is this request's but its row update is not")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeviceId, Scene};

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

    /// A refused round tells a right answer by the row's answer attribute,
    /// or, a legacy captcha's, by its code.
    #[test]
    fn a_refused_round_tells_the_answer_by_the_row() {
        let attempt = Attempt {
            key: "k",
            ok_attribute: answer_attribute("abcd"),
            now_ms: 0,
            max_attempts: 3,
            operation: "test",
        };
        let round = |legacy_code| RoundOf {
            attempt: &attempt,
            legacy_code,
            nonce: "n",
            number: 1,
            seen: 0,
        };
        let row = item(CaptchaState::Pending, 0);
        assert!(round(None).right_by(&row));
        let mut legacy = row.clone();
        legacy.remove(&answer_attribute("abcd"));
        assert!(!round(None).right_by(&legacy));
        assert!(round(Some("abcd")).right_by(&legacy));
        assert!(!round(Some("zzzz")).right_by(&legacy));
    }
}
