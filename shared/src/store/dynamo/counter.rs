//! Counter rows: fixed-window rate-limit counters.
//!
//! Every write to a counter carries its request's nonce in one of eight slot
//! attributes (`w0` … `w7`, picked by the nonce) and is conditional on the
//! slot not holding it already. The SDK retries an attempt that timed out,
//! which may have been applied: the retry then fails that condition, finds
//! its nonce in the old item, and takes the earlier write for its own
//! instead of counting the request twice. (Only a write of another request
//! whose nonce picked the same slot, landing between the two attempts,
//! could hide it: then the request counts twice, never more, and a limited
//! counter still never passes its limit.) Eight slots of 16 characters keep
//! a counter row well under the 1 KB of one write unit.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::DynamoStore;
use super::codec::*;
use crate::store::*;

/// The slot attribute a request's nonce is kept in on a counter row.
pub(super) fn slot_of(nonce: &str) -> String {
    let digit = nonce
        .bytes()
        .next()
        .and_then(|b| (b as char).to_digit(16))
        .unwrap_or(0);
    format!("w{}", digit % 8)
}

/// Whether `item` holds `nonce` in its slot: the write was this request's.
pub(super) fn holds(item: &Item, slot: &str, nonce: &str) -> bool {
    matches!(item.get(slot), Some(v) if v.as_s().is_ok_and(|v| v == nonce))
}

impl DynamoStore {
    /// Adds one to `limit`'s counter while it is below its limit: `true`
    /// when counted (by this call or by an earlier attempt of it), `false`
    /// when the counter is full. One conditional UpdateItem.
    pub(super) async fn count_within(
        &self,
        limit: &CounterLimit,
        nonce: &str,
    ) -> Result<bool, StoreError> {
        let slot = slot_of(nonce);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(counter_key_of(&limit.name)))
            .update_expression(
                "ADD #count :one SET #ttl = if_not_exists(#ttl, :ttl), \
                 #expired = if_not_exists(#expired, :expired), #slot = :nonce",
            )
            .condition_expression(
                "(attribute_not_exists(#pk) OR #count < :limit) \
                 AND (attribute_not_exists(#slot) OR #slot <> :nonce)",
            )
            .expression_attribute_names("#pk", KEY_ATTRIBUTE)
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_names("#expired", "expired_date")
            .expression_attribute_names("#slot", &slot)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(limit.limit))
            .expression_attribute_values(":ttl", n(ttl_seconds(limit.window_end_ms)))
            .expression_attribute_values(":expired", n(limit.window_end_ms))
            .expression_attribute_values(":nonce", s(nonce))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => {
                let old = update_condition_failed(err, "count_within")?;
                Ok(old.is_some_and(|item| holds(&item, &slot, nonce)))
            }
        }
    }

    /// Takes back the one that `nonce`'s request added to counter `name`,
    /// while its slot still holds the nonce (so a retry, or a slot another
    /// request took since, undoes nothing: the count then errs high). One
    /// conditional UpdateItem.
    pub(super) async fn uncount(&self, name: &str, nonce: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(counter_key_of(name)))
            .update_expression("ADD #count :minus_one REMOVE #slot")
            .condition_expression("#slot = :nonce")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#slot", slot_of(nonce))
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":nonce", s(nonce))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => update_condition_failed(err, "uncount").map(drop),
        }
    }
}

#[async_trait]
impl CounterStore for DynamoStore {
    async fn increment_counter(&self, name: &str, window_end_ms: i64) -> Result<u64, StoreError> {
        let nonce = request_nonce();
        let slot = slot_of(&nonce);
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(counter_key_of(name)))
            .update_expression(
                "ADD #count :one SET #ttl = if_not_exists(#ttl, :ttl), \
                 #expired = if_not_exists(#expired, :expired), #slot = :nonce",
            )
            .condition_expression("attribute_not_exists(#slot) OR #slot <> :nonce")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_names("#expired", "expired_date")
            .expression_attribute_names("#slot", &slot)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(ttl_seconds(window_end_ms)))
            .expression_attribute_values(":expired", n(window_end_ms))
            .expression_attribute_values(":nonce", s(&nonce))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let item = match result {
            Ok(out) => out
                .attributes
                .ok_or_else(|| corrupt("count", "not returned"))?,
            // Only an earlier attempt of this very request fails the
            // condition: its count is the one to answer.
            Err(err) => update_condition_failed(err, "increment_counter")?
                .filter(|old| holds(old, &slot, &nonce))
                .ok_or_else(|| corrupt("count", "condition failed without the nonce"))?,
        };
        u64::try_from(get_n(&item, "count")?).map_err(|_| corrupt("count", "negative"))
    }

    async fn count_guard(
        &self,
        names: &[String],
        windows: &GuardWindows,
        event: GuardEvent,
    ) -> Result<Vec<GuardTally>, StoreError> {
        self.count_guard_rows(names, windows, event).await
    }

    async fn read_guard(
        &self,
        names: &[String],
        windows: &GuardWindows,
    ) -> Result<Vec<GuardTally>, StoreError> {
        self.read_guard_rows(names, windows).await
    }
}
