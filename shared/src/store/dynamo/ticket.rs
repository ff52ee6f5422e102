//! Ticket rows: a presented Tencent ticket's hash, kept until it expires.

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

    async fn grant_ticket_pass(
        &self,
        ticket_hash: &str,
        pass: &TicketPass,
        now_ms: i64,
        keep_until_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut sets = vec![
            "pass_hash = :pass_hash",
            "pass_created = :now",
            "pass_expired = :pass_expired",
            "#scene = :scene",
            "ip = :ip",
            "#expired = :keep",
            "#ttl = :ttl",
        ];
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(ticket_key_of(ticket_hash)))
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", KEY_ATTRIBUTE)
            .expression_attribute_names("#scene", "scene")
            .expression_attribute_names("#expired", "expired_date")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":pass_hash", s(&pass.pass.secret_hash))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":pass_expired", n(pass.pass.expires_ms))
            .expression_attribute_values(":scene", s(pass.scene.as_str()))
            .expression_attribute_values(":ip", s(&pass.ip))
            .expression_attribute_values(":keep", n(keep_until_ms))
            .expression_attribute_values(":ttl", n(ttl_seconds(keep_until_ms)));
        if let Some(device) = &pass.device {
            sets.push("device_uuid = :device");
            update = update.expression_attribute_values(":device", s(device.as_str()));
        }
        if let Some(evil_level) = pass.evil_level {
            sets.push("evil_level = :evil");
            update = update.expression_attribute_values(":evil", n(evil_level));
        }
        if pass.degraded {
            sets.push("degraded = :degraded");
            update = update.expression_attribute_values(
                ":degraded",
                aws_sdk_dynamodb::types::AttributeValue::Bool(true),
            );
        }
        let result = update
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) => {
                update_condition_failed(err, "grant_ticket_pass")?;
                Ok(false)
            }
        }
    }
}
