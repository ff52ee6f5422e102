//! Ticket rows: a presented Tencent ticket's hash, kept until it expires,
//! and the pass it earned.

use async_trait::async_trait;

use super::pass::StoredPass;
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
        let row = Row::Ticket {
            expires_ms,
            pass: None,
        };
        self.insert(&mut rows, key, row);
        Ok(true)
    }

    async fn grant_ticket_pass(
        &self,
        ticket_hash: &str,
        pass: &TicketPass,
        now_ms: i64,
        keep_until_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut rows = self.rows();
        match rows.get_mut(&ticket_key_of(ticket_hash)) {
            Some(Row::Ticket {
                expires_ms,
                pass: held,
            }) => {
                *expires_ms = keep_until_ms;
                *held = Some((StoredPass::new(&pass.pass, now_ms), pass.clone()));
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
