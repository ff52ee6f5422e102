//! Ticket rows: a presented Tencent ticket's hash, kept until it expires.

use async_trait::async_trait;

use super::{MemoryStore, Row};
use crate::store::*;

#[async_trait]
impl TicketStore for MemoryStore {
    async fn claim_ticket(
        &self,
        ticket_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut rows = self.rows();
        let key = ticket_key_of(ticket_hash);
        if let Some(Row::Ticket {
            expires_ms: held, ..
        }) = rows.get(&key)
            && *held > now_ms
        {
            return Ok(false);
        }
        let row = Row::Ticket { expires_ms };
        self.insert(&mut rows, key, row);
        Ok(true)
    }
}
