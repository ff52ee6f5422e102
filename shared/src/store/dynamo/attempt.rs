//! The one-write verify of a code row, captchas' and SMS codes' alike: one
//! conditional UpdateItem, right answer or wrong, counts the attempt
//! (guarded on the count `seen`, so racing answers each count once, in
//! turn) and sets `state` to `if_not_exists(<the answer's attribute>,
//! <pending or void>)`, which is verified exactly when the answer is right:
//! a row holds an `ok_<hash>` attribute for its right answer alone (see
//! `codec::answer_attribute` and `codec::sms_item`). The answer is thus
//! never judged before it is counted: a store failure hands out no free
//! guess. It writes no pass: a right answer's pass is the caller's next
//! write, a row of its own (`pass.rs`).
//!
//! The request's nonce goes into the attempt's own attribute (`t<n>`), so
//! a retry whose earlier attempt was applied finds it and answers what that
//! attempt came to.

use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::codec::*;
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
}
