//! The access-token row of an app: the shared WeChat access token, its
//! refresh lease and the force-refresh counters, written only by
//! version-conditional PutItems (optimistic locking), so that of any number
//! of racing instances exactly one wins each change.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::DynamoStore;
use super::codec::*;
use crate::secret::Secret;
use crate::store::*;

fn token_item(appid: &str, record: &AccessTokenRecord, version: u64) -> Item {
    let keep_until = record.expires_ms.saturating_add(ACCESS_TOKEN_ROW_SLACK_MS);
    let mut item = HashMap::from([
        (KEY_ATTRIBUTE.to_owned(), s(access_token_key_of(appid))),
        ("expired_date".to_owned(), n(record.expires_ms)),
        ("lease_until".to_owned(), n(record.lease_until_ms)),
        ("force_day".to_owned(), n(record.force_day)),
        ("force_count".to_owned(), n(record.force_count)),
        ("last_force".to_owned(), n(record.last_force_ms)),
        ("version".to_owned(), n(version)),
        (TTL_ATTRIBUTE.to_owned(), n(ttl_seconds(keep_until))),
    ]);
    if let Some(token) = &record.token {
        item.insert("access_token".to_owned(), s(token.expose()));
    }
    item
}

fn token_from_item(item: &Item) -> Result<AccessTokenRecord, StoreError> {
    let token = match item.get("access_token") {
        None => None,
        Some(_) => Some(Secret::new(get_s(item, "access_token")?)),
    };
    let unsigned = |attribute: &str| {
        u64::try_from(get_n(item, attribute)?).map_err(|_| corrupt(attribute, "negative"))
    };
    Ok(AccessTokenRecord {
        token,
        expires_ms: get_n(item, "expired_date")?,
        lease_until_ms: get_n(item, "lease_until")?,
        force_day: get_n(item, "force_day")?,
        force_count: u32::try_from(unsigned("force_count")?)
            .map_err(|_| corrupt("force_count", "too large"))?,
        last_force_ms: get_n(item, "last_force")?,
        version: unsigned("version")?,
    })
}

#[async_trait]
impl AccessTokenStore for DynamoStore {
    async fn get_access_token(&self, appid: &str) -> Result<Option<AccessTokenRecord>, StoreError> {
        let out = self
            .get_row(access_token_key_of(appid))
            .send()
            .await
            .map_err(|e| sdk_error("get_access_token", e))?;
        out.item().map(token_from_item).transpose()
    }

    async fn swap_access_token(
        &self,
        appid: &str,
        expected: u64,
        record: &AccessTokenRecord,
    ) -> Result<TokenSwap, StoreError> {
        // The writer's nonce: a retry of a swap whose response was lost
        // finds it in the row its condition refused, and knows it won.
        let nonce = request_nonce();
        let mut item = token_item(appid, record, expected + 1);
        item.insert("written_by".to_owned(), s(&nonce));
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        put = if expected == 0 {
            put.condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", KEY_ATTRIBUTE)
        } else {
            put.condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", n(expected))
        };
        match put.send().await {
            Ok(_) => Ok(TokenSwap::Written),
            Err(SdkError::ServiceError(ctx))
                if matches!(ctx.err(), PutItemError::ConditionalCheckFailedException(_)) =>
            {
                let PutItemError::ConditionalCheckFailedException(failed) = ctx.err() else {
                    unreachable!("matched above");
                };
                let own = failed.item().and_then(|i| i.get("written_by"));
                if own.is_some_and(|v| v.as_s().is_ok_and(|v| *v == nonce)) {
                    return Ok(TokenSwap::Written);
                }
                let current = failed.item().map(token_from_item).transpose()?;
                Ok(TokenSwap::Lost(current))
            }
            Err(err) => Err(sdk_error("swap_access_token", err)),
        }
    }
}
