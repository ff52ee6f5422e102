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
//!
//! The row of an openid also holds the user's cached WeChat risk rank,
//! per WeChat scene `<n>` (0 or 1): `wx<n>_rank` (0-4) or `wx<n>_failure`
//! (its name), `wx<n>_checked` and `wx<n>_expired` (epoch ms; see
//! `risk_rank.rs`), about 50 bytes more: the counting UpdateItem answers
//! it and the BatchGetItem projects it, so a cached rank costs no request.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::codec::*;
use super::counter::{holds, slot_of};
use super::{BatchGetError, DynamoStore, join_all};
use crate::store::*;

/// A count read out of `item` (0 when absent).
fn count_in(item: &Item, attribute: Option<&str>) -> Result<u64, StoreError> {
    match attribute {
        Some(attribute) if item.contains_key(attribute) => {
            u64::try_from(get_n(item, attribute)?).map_err(|_| corrupt(attribute, "negative"))
        }
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

pub(super) fn tally_of(item: &Item, windows: &GuardWindows) -> Result<GuardTally, StoreError> {
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
        match self.count_guard_item(name, windows, event).await? {
            Some(item) => tally_of(&item, windows),
            None => Ok(GuardTally::Throttled),
        }
    }

    /// Counts `event` in row `name` and answers the whole row (`None`:
    /// throttled, nothing counted).
    pub(super) async fn count_guard_item(
        &self,
        name: &str,
        windows: &GuardWindows,
        event: GuardEvent,
    ) -> Result<Option<Item>, StoreError> {
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
                tracing::warn!(
                    counter = name,
                    "guard counter throttled: past its thresholds"
                );
                return Ok(None);
            }
            // Only an earlier attempt of this very request fails the
            // condition: the row it left is this request's answer.
            Err(err) => update_condition_failed(err, "count_guard")?
                .filter(|old| holds(old, &slot, &nonce))
                .ok_or_else(|| corrupt("count_guard", "condition failed without the nonce"))?,
        };
        Ok(Some(item))
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
        let keys: Vec<String> = names.iter().map(|name| counter_key_of(name)).collect();
        let wanted = guard_attributes(windows);
        let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
        match self.batch_get("read_guard", &keys, &wanted).await {
            Ok(found) => tallies_of(&keys, &found, windows),
            Err(BatchGetError::Throttled) => {
                tracing::warn!("guard counters' read throttled: past their thresholds");
                Ok(vec![GuardTally::Throttled; names.len()])
            }
            Err(BatchGetError::Store(err)) => Err(err),
        }
    }
}

/// The attributes a read of guard counter rows in `windows` asks for.
pub(super) fn guard_attributes(windows: &GuardWindows) -> Vec<String> {
    let (requests, failures) = attributes(windows);
    requests.into_iter().chain([failures]).collect()
}

/// The tallies of the guard counter rows at `keys` among `found` (a row
/// not found: nothing counted yet).
pub(super) fn tallies_of(
    keys: &[String],
    found: &HashMap<String, Item>,
    windows: &GuardWindows,
) -> Result<Vec<GuardTally>, StoreError> {
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
