//! Captcha rows: create, refresh, issue with counters, verify.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use super::codec::*;
use super::{DynamoStore, MAX_CONFLICT_ROUNDS, MAX_VERIFY_ROUNDS};
use crate::domain::{DeviceId, Scene};
use crate::store::*;

impl DynamoStore {
    /// One conditional UpdateItem that counts a wrong answer, guarded on the
    /// attempt count `seen` (so racing wrong answers each count once) and on
    /// the answer still being wrong. `Ok(Err(old))` when the guard failed.
    async fn count_attempt(
        &self,
        key: &str,
        answer: &str,
        now_ms: i64,
        seen: u32,
        max_attempts: u32,
    ) -> Result<Result<VerifyOutcome, Option<Item>>, StoreError> {
        let attempts = seen.saturating_add(1);
        let voided = attempts >= max_attempts;
        let new_state = if voided {
            CaptchaState::Void
        } else {
            CaptchaState::Pending
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(key))
            .update_expression("SET #attempts = :attempts, #state = :new_state")
            .condition_expression(
                "#state = :pending AND #attempts = :seen \
                 AND (#code <> :answer OR size(#code) = :zero) AND #expired > :now",
            )
            .expression_attribute_names("#attempts", "attempts")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#code", "code")
            .expression_attribute_names("#expired", "expired_date")
            .expression_attribute_values(":attempts", n(attempts))
            .expression_attribute_values(":new_state", n(new_state as i64))
            .expression_attribute_values(":pending", n(CaptchaState::Pending as i64))
            .expression_attribute_values(":seen", n(seen))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":answer", s(answer))
            .expression_attribute_values(":now", n(now_ms))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) if voided => Ok(Ok(VerifyOutcome::Voided)),
            Ok(_) => Ok(Ok(VerifyOutcome::Wrong {
                attempts_left: max_attempts - attempts,
            })),
            Err(err) => Ok(Err(update_condition_failed(
                err,
                "verify_captcha (count attempt)",
            )?)),
        }
    }
}

/// Where a verify stands, judged from the item a failed condition returned.
enum Seen {
    Final(VerifyOutcome),
    /// Pending, unexpired, and the answer matches: try to pass again.
    Matches,
    /// Pending, unexpired, wrong answer, with this many attempts counted.
    Wrong(u32),
}

fn classify(old: Option<&Item>, answer: &str, now_ms: i64) -> Result<Seen, StoreError> {
    let Some(item) = old else {
        return Ok(Seen::Final(VerifyOutcome::NotFound));
    };
    let state = get_n(item, "state")?;
    if CaptchaState::from_number(state) != Some(CaptchaState::Pending) {
        return Ok(Seen::Final(VerifyOutcome::NotPending));
    }
    if now_ms >= get_n(item, "expired_date")? {
        return Ok(Seen::Final(VerifyOutcome::Expired));
    }
    let code = get_s(item, "code")?;
    if !answer.is_empty() && code == answer {
        return Ok(Seen::Matches);
    }
    let attempts =
        u32::try_from(get_n(item, "attempts")?).map_err(|_| corrupt("attempts", "out of range"))?;
    Ok(Seen::Wrong(attempts))
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
        let built = |e: aws_sdk_dynamodb::error::BuildError| {
            StoreError(format!("issue_captcha: request not built: {e}"))
        };
        let mut items = Vec::with_capacity(limits.len() + 1);
        for limit in limits {
            let update = Update::builder()
                .table_name(&self.table)
                .key(KEY_ATTRIBUTE, s(counter_key_of(&limit.name)))
                .update_expression(
                    "ADD #count :one SET #ttl = if_not_exists(#ttl, :ttl), \
                     #expired = if_not_exists(#expired, :expired)",
                )
                .condition_expression("attribute_not_exists(#pk) OR #count < :limit")
                .expression_attribute_names("#pk", KEY_ATTRIBUTE)
                .expression_attribute_names("#count", "count")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_names("#expired", "expired_date")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":limit", n(limit.limit))
                .expression_attribute_values(":ttl", n(ttl_seconds(limit.window_end_ms)))
                .expression_attribute_values(":expired", n(limit.window_end_ms))
                .build()
                .map_err(built)?;
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(captcha_item(record)));
        if mode == IssueMode::Refresh {
            put = put
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", KEY_ATTRIBUTE);
        }
        items.push(
            TransactWriteItem::builder()
                .put(put.build().map_err(built)?)
                .build(),
        );

        for round in 1..=MAX_CONFLICT_ROUNDS {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(IssueOutcome::Written),
                Err(err) => err,
            };
            let reasons: Vec<Option<String>> = match &err {
                SdkError::ServiceError(ctx) => match ctx.err() {
                    TransactWriteItemsError::TransactionCanceledException(cancelled) => cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().map(str::to_owned))
                        .collect(),
                    _ => return Err(sdk_error("issue_captcha", err)),
                },
                _ => return Err(sdk_error("issue_captcha", err)),
            };
            let failed =
                |i: usize, code: &str| reasons.get(i).and_then(Option::as_deref) == Some(code);
            if let Some(i) = (0..limits.len()).find(|&i| failed(i, "ConditionalCheckFailed")) {
                return Ok(IssueOutcome::RateLimited {
                    window_end_ms: limits[i].window_end_ms,
                });
            }
            if failed(limits.len(), "ConditionalCheckFailed") {
                return Ok(IssueOutcome::NotFound);
            }
            let conflict = (0..=limits.len()).any(|i| failed(i, "TransactionConflict"));
            if !conflict {
                return Err(sdk_error("issue_captcha", err));
            }
            if round == MAX_CONFLICT_ROUNDS {
                tracing::warn!(
                    rounds = round,
                    "issue_captcha kept conflicting on its counters"
                );
                return Ok(IssueOutcome::RateLimited {
                    window_end_ms: limits[0].window_end_ms,
                });
            }
            let jitter = rand::random_range(0..=20u64);
            tokio::time::sleep(Duration::from_millis(10 * u64::from(round) + jitter)).await;
        }
        unreachable!("the last round returns")
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
        let key = captcha_key(scene, device);
        let mut try_pass = true;
        let mut seen_attempts = 0;
        for _ in 0..MAX_VERIFY_ROUNDS {
            let old = if try_pass {
                // The pass: one conditional write that also stores the pass
                // the right answer earns (the row now lives as long as the
                // pass: nothing else needs a verified captcha).
                // `size(#code) > 0` keeps an empty answer from ever matching,
                // whatever a row holds.
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key(KEY_ATTRIBUTE, s(&key))
                    .update_expression(
                        "SET #state = :verified, pass_hash = :pass_hash, \
                         pass_created = :now, pass_expired = :pass_expired, #ttl = :ttl",
                    )
                    .condition_expression(
                        "#state = :pending AND #code = :answer AND size(#code) > :zero \
                         AND #expired > :now",
                    )
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_names("#code", "code")
                    .expression_attribute_names("#expired", "expired_date")
                    .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                    .expression_attribute_values(":pass_hash", s(&pass.secret_hash))
                    .expression_attribute_values(":pass_expired", n(pass.expires_ms))
                    .expression_attribute_values(":ttl", n(ttl_seconds(pass.expires_ms)))
                    .expression_attribute_values(":verified", n(CaptchaState::Verified as i64))
                    .expression_attribute_values(":pending", n(CaptchaState::Pending as i64))
                    .expression_attribute_values(":answer", s(answer))
                    .expression_attribute_values(":zero", n(0))
                    .expression_attribute_values(":now", n(now_ms))
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .send()
                    .await;
                match result {
                    Ok(_) => return Ok(VerifyOutcome::Passed),
                    Err(err) => update_condition_failed(err, "verify_captcha")?,
                }
            } else {
                match self
                    .count_attempt(&key, answer, now_ms, seen_attempts, max_attempts)
                    .await?
                {
                    Ok(outcome) => return Ok(outcome),
                    Err(old) => old,
                }
            };
            match classify(old.as_ref(), answer, now_ms)? {
                Seen::Final(outcome) => return Ok(outcome),
                Seen::Matches => try_pass = true,
                Seen::Wrong(attempts) => {
                    try_pass = false;
                    seen_attempts = attempts;
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

    #[test]
    fn classify_follows_the_memory_store_order() {
        let mut item = captcha_item(&CaptchaRecord {
            device_uuid: DeviceId::parse("d").unwrap(),
            scene: Scene::parse("s").unwrap(),
            code: "abcd".into(),
            state: CaptchaState::Pending,
            ip: String::new(),
            created_date: 0,
            expired_date: 1000,
            attempts: 2,
        });
        assert!(matches!(
            classify(None, "abcd", 0),
            Ok(Seen::Final(VerifyOutcome::NotFound))
        ));
        assert!(matches!(
            classify(Some(&item), "abcd", 10),
            Ok(Seen::Matches)
        ));
        assert!(matches!(classify(Some(&item), "", 10), Ok(Seen::Wrong(2))));
        assert!(matches!(
            classify(Some(&item), "abcd", 1000),
            Ok(Seen::Final(VerifyOutcome::Expired))
        ));
        item.insert("state".into(), n(1));
        assert!(matches!(
            classify(Some(&item), "abcd", 1000),
            Ok(Seen::Final(VerifyOutcome::NotPending))
        ));
        item.remove("code");
        item.insert("state".into(), n(0));
        assert!(classify(Some(&item), "abcd", 10).is_err());
    }
}
