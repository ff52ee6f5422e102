//! The guard's counter rows (see `crate::store::guard_counts`): one per
//! scene and subject, `rate#guard|<ip|dev|oid>|<scene>|<subject>`, holding
//! `r<start>` (requests of the request window starting then), `f<start>`
//! (failures of the failure window), `ttl` and the nonce slots `w0` … `w7`
//! of `counter.rs`.
//!
//! Counting is one UpdateItem per row: `ADD` the window's attribute,
//! `REMOVE` the previous windows', `SET` the TTL and the request's nonce,
//! returning the whole new row (`ALL_NEW`), so the same request that counts
//! reads the row's other count. About 100 bytes (at most some 350 with a
//! 128-character device id and every nonce slot taken): one write unit.
//! Reading (`GET /guard/status`) is one BatchGetItem projecting the current
//! windows' attributes.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::codec::*;
use super::counter::{holds, slot_of};
use super::{DynamoStore, join_all};
use crate::store::*;

/// The error codes with which DynamoDB throttles a request: a hot item or
/// partition, or the account's request rate.
const THROTTLED: [&str; 3] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
];

fn throttled<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(err, SdkError::ServiceError(ctx) if THROTTLED.contains(&ctx.err().code().unwrap_or("")))
}

/// A count read out of `item` (0 when absent).
fn count_in(item: &Item, attribute: Option<&str>) -> Result<u64, StoreError> {
    match attribute {
        Some(attribute) if item.contains_key(attribute) => u64::try_from(get_n(item, attribute)?)
            .map_err(|_| corrupt(attribute, "negative")),
        _ => Ok(0),
    }
}

/// The attribute names of `windows`: the requests' (when counted) and the
/// failures'.
fn attributes(windows: &GuardWindows) -> (Option<String>, String) {
    (
        windows.requests.as_ref().map(request_attribute),
        failure_attribute(&windows.failures),
    )
}

fn tally_of(item: &Item, windows: &GuardWindows) -> Result<GuardTally, StoreError> {
    let (requests, failures) = attributes(windows);
    Ok(GuardTally::Counted {
        requests: count_in(item, requests.as_deref())?,
        failures: count_in(item, Some(&failures))?,
    })
}

impl DynamoStore {
    /// Counts `event` in row `name` and answers its counts (see
    /// [`CounterStore::count_guard`]).
    async fn count_guard_row(
        &self,
        name: &str,
        windows: &GuardWindows,
        event: GuardEvent,
    ) -> Result<GuardTally, StoreError> {
        let (requests, failures) = attributes(windows);
        let counted = match event {
            GuardEvent::Request => requests
                .clone()
                .ok_or_else(|| StoreError("count_guard: a request without its window".into()))?,
            GuardEvent::Failure => failures.clone(),
        };
        // The previous windows' attributes go as this one's is counted.
        let mut stale = vec![failure_attribute(&windows.failures.previous())];
        stale.extend(windows.requests.map(|w| request_attribute(&w.previous())));
        let nonce = request_nonce();
        let slot = slot_of(&nonce);
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(counter_key_of(name)))
            .condition_expression("attribute_not_exists(#slot) OR #slot <> :nonce")
            .expression_attribute_names("#counted", &counted)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_names("#slot", &slot)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(ttl_seconds(windows.keep_until_ms)))
            .expression_attribute_values(":nonce", s(&nonce))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        for (i, attribute) in stale.iter().enumerate() {
            update = update.expression_attribute_names(format!("#stale{i}"), attribute);
        }
        let removed: Vec<String> = (0..stale.len()).map(|i| format!("#stale{i}")).collect();
        let result = update
            .update_expression(format!(
                "ADD #counted :one SET #ttl = :ttl, #slot = :nonce REMOVE {}",
                removed.join(", ")
            ))
            .send()
            .await;
        let item = match result {
            Ok(out) => out
                .attributes
                .ok_or_else(|| corrupt("count_guard", "row not returned"))?,
            Err(err) if throttled(&err) => {
                tracing::warn!(counter = name, "guard counter throttled: past its thresholds");
                return Ok(GuardTally::Throttled);
            }
            // Only an earlier attempt of this very request fails the
            // condition: the row it left is this request's answer.
            Err(err) => update_condition_failed(err, "count_guard")?
                .filter(|old| holds(old, &slot, &nonce))
                .ok_or_else(|| corrupt("count_guard", "condition failed without the nonce"))?,
        };
        tally_of(&item, windows)
    }

    /// See [`CounterStore::count_guard`].
    pub(super) async fn count_guard_rows(
        &self,
        names: &[String],
        windows: &GuardWindows,
        event: GuardEvent,
    ) -> Result<Vec<GuardTally>, StoreError> {
        let counted = join_all(
            names
                .iter()
                .map(|name| self.count_guard_row(name, windows, event))
                .collect(),
        )
        .await;
        counted.into_iter().collect()
    }

    /// See [`CounterStore::read_guard`].
    pub(super) async fn read_guard_rows(
        &self,
        names: &[String],
        windows: &GuardWindows,
    ) -> Result<Vec<GuardTally>, StoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = names.iter().map(|name| counter_key_of(name)).collect();
        let (requests, failures) = attributes(windows);
        let wanted: Vec<&str> = requests.as_deref().into_iter().chain([&*failures]).collect();
        let found = match self.batch_get("read_guard", &keys, &wanted).await {
            Ok(found) => found,
            Err(BatchGetError::Throttled) => {
                tracing::warn!("guard counters' read throttled: past their thresholds");
                return Ok(vec![GuardTally::Throttled; names.len()]);
            }
            Err(BatchGetError::Store(err)) => return Err(err),
        };
        keys.iter()
            .map(|key| match found.get(key) {
                Some(item) => tally_of(item, windows),
                None => Ok(GuardTally::Counted {
                    requests: 0,
                    failures: 0,
                }),
            })
            .collect()
    }
}

/// Why [`DynamoStore::batch_get`] found nothing.
pub(super) enum BatchGetError {
    Throttled,
    Store(StoreError),
}

impl DynamoStore {
    /// The items at `keys` (at most 100), strongly consistent, each with
    /// its key and `attributes` alone: one BatchGetItem, asked again for
    /// the keys DynamoDB hands back unprocessed under load (a bounded
    /// number of times). Keys without an item are absent from the answer.
    pub(super) async fn batch_get(
        &self,
        operation: &'static str,
        keys: &[String],
        attributes: &[&str],
    ) -> Result<HashMap<String, Item>, BatchGetError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut found = HashMap::new();
        let items: Vec<Item> = keys
            .iter()
            .map(|key| HashMap::from([(KEY_ATTRIBUTE.to_owned(), s(key))]))
            .collect();
        // `#a0, #a1 …`: no attribute name can clash with a reserved word.
        let projection = std::iter::once("#pk".to_owned())
            .chain((0..attributes.len()).map(|i| format!("#a{i}")))
            .collect::<Vec<_>>()
            .join(", ");
        let mut wanted = KeysAndAttributes::builder()
            .set_keys(Some(items))
            .consistent_read(true)
            .projection_expression(projection)
            .expression_attribute_names("#pk", KEY_ATTRIBUTE);
        for (i, attribute) in attributes.iter().enumerate() {
            wanted = wanted.expression_attribute_names(format!("#a{i}"), *attribute);
        }
        let mut wanted = wanted.build().map_err(|e| {
            BatchGetError::Store(StoreError(format!("{operation}: request not built: {e}")))
        })?;
        for _ in 0..super::MAX_BATCH_ROUNDS {
            let out = match self
                .client
                .batch_get_item()
                .request_items(&self.table, wanted.clone())
                .send()
                .await
            {
                Ok(out) => out,
                Err(err) if throttled(&err) => return Err(BatchGetError::Throttled),
                Err(err) => return Err(BatchGetError::Store(sdk_error(operation, err))),
            };
            for item in out
                .responses()
                .and_then(|r| r.get(&self.table))
                .into_iter()
                .flatten()
            {
                let key = get_s(item, KEY_ATTRIBUTE).map_err(BatchGetError::Store)?;
                found.insert(key.to_owned(), item.clone());
            }
            match out.unprocessed_keys().and_then(|u| u.get(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => wanted = rest.clone(),
                _ => return Ok(found),
            }
        }
        // Keys DynamoDB keeps handing back under load: throttled.
        Err(BatchGetError::Throttled)
    }
}
