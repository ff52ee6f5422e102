//! Ticket rows: a presented Tencent ticket's hash, kept until it expires.

use async_trait::async_trait;

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
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY_ATTRIBUTE, s(ticket_key_of(ticket_hash)))
            .item("expired_date", n(expires_ms))
            .item(TTL_ATTRIBUTE, n(ttl_seconds(expires_ms)))
            .condition_expression("attribute_not_exists(#pk) OR #expired <= :now")
            .expression_attribute_names("#pk", KEY_ATTRIBUTE)
            .expression_attribute_names("#expired", "expired_date")
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => {
                put_condition_failed(err, "claim_ticket")?;
                Ok(false)
            }
        }
    }
}
