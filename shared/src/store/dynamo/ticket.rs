//! Ticket rows: a presented Tencent ticket's hash, kept until it expires
//! (the pass it earns is a row of its own, `pass.rs`).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

use super::DynamoStore;
use super::codec::*;
use crate::store::*;

#[async_trait]
impl TicketStore for DynamoStore {
    async fn claim_ticket(
        &self,
        ticket_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<bool, StoreError> {
        // The claim keeps its request nonce: when the SDK retries a claim
        // whose first response was lost, the retry finds its own nonce in
        // the row its condition refused, and the first presentation of a
        // ticket is never answered `ticket-reused`.
        let nonce = request_nonce();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY_ATTRIBUTE, s(ticket_key_of(ticket_hash)))
            .item("expired_date", n(expires_ms))
            .item(TTL_ATTRIBUTE, n(ttl_seconds(expires_ms)))
            .item("claimed_by", s(&nonce))
            .condition_expression("attribute_not_exists(#pk) OR #expired <= :now")
            .expression_attribute_names("#pk", KEY_ATTRIBUTE)
            .expression_attribute_names("#expired", "expired_date")
            .expression_attribute_values(":now", n(now_ms))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => Ok(put_condition_failed_item(err, "claim_ticket")?.is_some_and(
                |old| matches!(old.get("claimed_by"), Some(v) if v.as_s().is_ok_and(|v| v == &nonce)),
            )),
        }
    }
}
