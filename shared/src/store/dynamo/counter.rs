//! Counter rows: fixed-window rate-limit counters.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{KeysAndAttributes, ReturnValue};

use super::codec::*;
use super::{DynamoStore, MAX_BATCH_ROUNDS};
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

    async fn counts(&self, names: &[String]) -> Result<Vec<u64>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Item> = names
            .iter()
            .map(|name| HashMap::from([(KEY_ATTRIBUTE.to_owned(), s(counter_key_of(name)))]))
            .collect();
        let mut wanted = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .projection_expression("#pk, #count")
            .expression_attribute_names("#pk", KEY_ATTRIBUTE)
            .expression_attribute_names("#count", "count")
            .build()
            .map_err(|e| StoreError(format!("counts: request not built: {e}")))?;
        let mut found: HashMap<String, u64> = HashMap::new();
        // BatchGetItem may hand keys back unprocessed under load: they are
        // asked again, a bounded number of times.
        for _ in 0..MAX_BATCH_ROUNDS {
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, wanted.clone())
                .send()
                .await
                .map_err(|e| sdk_error("counts", e))?;
            for item in out
                .responses()
                .and_then(|r| r.get(&self.table))
                .into_iter()
                .flatten()
            {
                let key = get_s(item, KEY_ATTRIBUTE)?.to_owned();
                let count = u64::try_from(get_n(item, "count")?)
                    .map_err(|_| corrupt("count", "negative"))?;
                found.insert(key, count);
            }
            match out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => wanted = rest.clone(),
                _ => {
                    return Ok(names
                        .iter()
                        .map(|name| found.get(&counter_key_of(name)).copied().unwrap_or(0))
                        .collect());
                }
            }
        }
        Err(StoreError("counts: keys stayed unprocessed".into()))
    }
}
