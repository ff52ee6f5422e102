//! The access-token row: one per WeChat appid, swapped by version.

use async_trait::async_trait;

use super::{MemoryStore, Row};
use crate::store::*;

#[async_trait]
impl AccessTokenStore for MemoryStore {
    async fn get_access_token(&self, appid: &str) -> Result<Option<AccessTokenRecord>, StoreError> {
        match self.rows().get(&access_token_key_of(appid)) {
            Some(Row::AccessToken(record)) => Ok(Some(record.clone())),
            _ => Ok(None),
        }
    }

    async fn swap_access_token(
        &self,
        appid: &str,
        expected: u64,
        record: &AccessTokenRecord,
    ) -> Result<TokenSwap, StoreError> {
        let mut rows = self.rows();
        let key = access_token_key_of(appid);
        let current = match rows.get(&key) {
            Some(Row::AccessToken(held)) => Some(held.clone()),
            _ => None,
        };
        if current.as_ref().map_or(0, |held| held.version) != expected {
            return Ok(TokenSwap::Lost(current));
        }
        let written = AccessTokenRecord {
            version: expected + 1,
            ..record.clone()
        };
        self.insert(&mut rows, key, Row::AccessToken(written));
        Ok(TokenSwap::Written)
    }
}
