//! Counter rows: fixed-window rate-limit counters.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use super::DynamoStore;
use super::codec::*;
use crate::store::*;

#[async_trait]
impl CounterStore for DynamoStore {
    async fn increment_counter(&self, name: &str, window_end_ms: i64) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(counter_key_of(name)))
            .update_expression(
                "ADD #count :one SET #ttl = if_not_exists(#ttl, :ttl), \
                 #expired = if_not_exists(#expired, :expired)",
            )
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_names("#expired", "expired_date")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(ttl_seconds(window_end_ms)))
            .expression_attribute_values(":expired", n(window_end_ms))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| sdk_error("increment_counter", e))?;
        let attrs = out
            .attributes()
            .ok_or_else(|| corrupt("count", "not returned"))?;
        u64::try_from(get_n(attrs, "count")?).map_err(|_| corrupt("count", "negative"))
    }
}
