//! Session rows.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use super::DynamoStore;
use super::codec::*;
use crate::store::*;

#[async_trait]
impl SessionStore for DynamoStore {
    async fn put_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        let item = session_item(session);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| sdk_error("put_session", e))?;
        Ok(())
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(session_key_of(token_hash)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("get_session", e))?;
        out.item().map(session_from_item).transpose()
    }

    async fn delete_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(session_key_of(token_hash)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| sdk_error("delete_session", e))?;
        out.attributes().map(session_from_item).transpose()
    }
}
