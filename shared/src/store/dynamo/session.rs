//! Session rows. Every read projects the attributes of
//! [`SESSION_ATTRIBUTES`], and no write asks for old values back, so only
//! [`SessionStore::session_key`] ever reads a `session_key`.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, DeleteRequest, Put, TransactWriteItem, WriteRequest};

use super::codec::*;
use super::{DynamoStore, INITIAL_BACKOFF, MAX_ATTEMPTS, MAX_CONFLICT_ROUNDS};
use crate::secret::Secret;
use crate::store::*;

/// Most items of one BatchWriteItem.
const BATCH_SIZE: usize = 25;
/// Rounds of a batch delete whose items DynamoDB left unprocessed
/// (throttling); each waits twice as long as the one before.
const MAX_BATCH_ROUNDS: u32 = 5;

/// The condition of a write on a live session.
const LIVE: &str = "attribute_exists(#pk) AND #expired > :now";

/// Every attribute `set_session_phone` writes or conditions on: what IAM
/// lets `wx-phone` write on `session#` rows (see `codec::phone_attributes`).
pub const PHONE_ATTRIBUTES: &[&str] = &[
    KEY_ATTRIBUTE,
    "phone_number",
    "pure_phone_number",
    "country_code",
];

/// What the conditional delete of a live session came to.
enum LiveDelete {
    Deleted,
    /// Refused: the row is gone or expired. `maybe_ours` when an earlier
    /// attempt of this very request failed in a way that may have deleted
    /// it (time-out, lost response, server error).
    Refused {
        maybe_ours: bool,
    },
}

impl DynamoStore {
    /// The conditional delete of a live session. The SDK's own retries are
    /// off for it: its retry of an applied delete finds no row, which by
    /// itself reads as "never there" (`session-invalid` for a logout that
    /// worked). So the store makes the attempts itself (as many as the SDK
    /// would, with its back-off) and remembers whether one may have gone
    /// through. A failed condition asks for no old item (that would read
    /// `session_key`).
    async fn delete_live_session(&self, key: &str, now_ms: i64) -> Result<LiveDelete, StoreError> {
        let no_retries = aws_sdk_dynamodb::config::Builder::default()
            .retry_config(aws_config::retry::RetryConfig::disabled());
        let mut maybe_ours = false;
        for attempt in 1..=MAX_ATTEMPTS {
            let result = self
                .client
                .delete_item()
                .table_name(&self.table)
                .key(KEY_ATTRIBUTE, s(key))
                .condition_expression(LIVE)
                .expression_attribute_names("#pk", KEY_ATTRIBUTE)
                .expression_attribute_names("#expired", "expired_date")
                .expression_attribute_values(":now", n(now_ms))
                .customize()
                .config_override(no_retries.clone())
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(LiveDelete::Deleted),
                Err(SdkError::ServiceError(ctx))
                    if ctx.err().is_conditional_check_failed_exception() =>
                {
                    return Ok(LiveDelete::Refused { maybe_ours });
                }
                Err(err) => err,
            };
            let (retry, applied) = match &err {
                SdkError::TimeoutError(_) | SdkError::ResponseError(_) => (true, true),
                SdkError::DispatchFailure(failure) => (true, !failure.is_user()),
                SdkError::ServiceError(ctx) => {
                    let server = ctx.raw().status().is_server_error();
                    let throttled = ctx
                        .err()
                        .meta()
                        .code()
                        .is_some_and(|c| c.contains("Throttl") || c.contains("LimitExceeded"));
                    (server || throttled, server)
                }
                _ => (false, false),
            };
            if !retry || attempt == MAX_ATTEMPTS {
                return Err(sdk_error("delete_session", err));
            }
            maybe_ours |= applied;
            let backoff = INITIAL_BACKOFF * 2u32.pow(attempt - 1);
            tokio::time::sleep(backoff.mul_f64(rand::random_range(0.5..=1.0))).await;
        }
        unreachable!("the last attempt returns")
    }

    /// Deletes one batch of session keys, retrying what DynamoDB left
    /// unprocessed.
    async fn delete_batch(&self, keys: &[String]) -> Result<(), StoreError> {
        let mut pending: Vec<WriteRequest> = keys
            .iter()
            .map(|key| {
                let delete = DeleteRequest::builder()
                    .key(KEY_ATTRIBUTE, s(key))
                    .build()
                    .map_err(|e| StoreError(format!("delete_sessions: {e}")))?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<_, StoreError>>()?;
        for round in 0..MAX_BATCH_ROUNDS {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(25 << round)).await;
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(|e| sdk_error("delete_sessions", e))?;
            pending = out
                .unprocessed_items()
                .and_then(|items| items.get(&self.table))
                .cloned()
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(());
            }
        }
        tracing::error!(
            left = pending.len(),
            "delete_sessions: DynamoDB kept items unprocessed"
        );
        Err(StoreError(format!(
            "delete_sessions: {} items left unprocessed",
            pending.len()
        )))
    }
}

#[async_trait]
impl SessionStore for DynamoStore {
    async fn put_session(
        &self,
        session: &SessionRecord,
        session_key: Option<&Secret>,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(session_item(session, session_key)))
            .send()
            .await
            .map_err(|e| sdk_error("put_session", e))?;
        Ok(())
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let (projection, names) = session_projection();
        let out = self
            .get_row(session_key_of(token_hash))
            .projection_expression(projection)
            .set_expression_attribute_names(Some(names))
            .send()
            .await
            .map_err(|e| sdk_error("get_session", e))?;
        out.item().map(session_from_item).transpose()
    }

    async fn session_key(&self, token_hash: &str) -> Result<Option<Secret>, StoreError> {
        let out = self
            .get_row(session_key_of(token_hash))
            .projection_expression("#key")
            .expression_attribute_names("#key", "session_key")
            .send()
            .await
            .map_err(|e| sdk_error("session_key", e))?;
        match out.item() {
            Some(item) if item.contains_key("session_key") => {
                Ok(Some(Secret::new(get_s(item, "session_key")?)))
            }
            _ => Ok(None),
        }
    }

    async fn delete_session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<SessionEnd, StoreError> {
        let key = session_key_of(token_hash);
        let maybe_ours = match self.delete_live_session(&key, now_ms).await? {
            LiveDelete::Deleted => return Ok(SessionEnd::Ended),
            LiveDelete::Refused { maybe_ours } => maybe_ours,
        };
        // Not live: unknown, or expired with its row still there (TTL lags).
        let out = self
            .get_row(&key)
            .projection_expression("#expired")
            .expression_attribute_names("#expired", "expired_date")
            .send()
            .await
            .map_err(|e| sdk_error("delete_session", e))?;
        if out.item().is_none() {
            // Gone after an attempt that may have deleted it: this request
            // ended it (or a racing end did; either way it is over).
            return Ok(if maybe_ours {
                SessionEnd::Ended
            } else {
                SessionEnd::NotFound
            });
        }
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(&key))
            .send()
            .await
            .map_err(|e| sdk_error("delete_session", e))?;
        Ok(SessionEnd::Expired)
    }

    async fn delete_sessions(&self, token_hashes: &[String]) -> Result<(), StoreError> {
        let mut keys: Vec<String> = token_hashes.iter().map(|h| session_key_of(h)).collect();
        // BatchWriteItem refuses two requests on one key.
        keys.sort_unstable();
        keys.dedup();
        for batch in keys.chunks(BATCH_SIZE) {
            self.delete_batch(batch).await?;
        }
        Ok(())
    }

    async fn set_session_phone(
        &self,
        session: &SessionRecord,
        phone: &PhoneNumber,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if session.expires_ms <= now_ms {
            return Ok(false);
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(session_key_of(&session.token_hash)))
            .update_expression("SET #p0 = :p0, #p1 = :p1, #p2 = :p2")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", KEY_ATTRIBUTE);
        for (i, (name, value)) in phone_attributes(phone).into_iter().enumerate() {
            update = update
                .expression_attribute_names(format!("#p{i}"), name)
                .expression_attribute_values(format!(":p{i}"), value);
        }
        match update.send().await {
            Ok(_) => Ok(true),
            Err(err) => update_condition_failed(err, "set_session_phone").map(|_| false),
        }
    }

    async fn replace_session(
        &self,
        old_hash: &str,
        new: &SessionRecord,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let build =
            |e: aws_sdk_dynamodb::error::BuildError| StoreError(format!("replace_session: {e}"));
        let delete = Delete::builder()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(session_key_of(old_hash)))
            .condition_expression(LIVE)
            .expression_attribute_names("#pk", KEY_ATTRIBUTE)
            .expression_attribute_names("#expired", "expired_date")
            .expression_attribute_values(":now", n(now_ms))
            .build()
            .map_err(build)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(session_item(new, None)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", KEY_ATTRIBUTE)
            .build()
            .map_err(build)?;
        for round in 1..=MAX_CONFLICT_ROUNDS {
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().delete(delete.clone()).build())
                .transact_items(TransactWriteItem::builder().put(put.clone()).build())
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(true),
                Err(err) => err,
            };
            let reasons: Vec<Option<String>> = match &err {
                SdkError::ServiceError(ctx) => match ctx.err() {
                    TransactWriteItemsError::TransactionCanceledException(cancelled) => cancelled
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().map(str::to_owned))
                        .collect(),
                    _ => return Err(sdk_error("replace_session", err)),
                },
                _ => return Err(sdk_error("replace_session", err)),
            };
            let failed = |code: &str| reasons.iter().any(|r| r.as_deref() == Some(code));
            if failed("ConditionalCheckFailed") {
                return Ok(false);
            }
            // Another transaction (a racing refresh of the same token) held
            // the old row: try again; the loser then sees it gone.
            if !failed("TransactionConflict") || round == MAX_CONFLICT_ROUNDS {
                return Err(sdk_error("replace_session", err));
            }
            let jitter = rand::random_range(0..=20u64);
            tokio::time::sleep(Duration::from_millis(10 * u64::from(round) + jitter)).await;
        }
        unreachable!("the last round returns")
    }
}
