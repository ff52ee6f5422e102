//! Session rows: one per token hash, with the `session_key` WeChat gave the
//! login.

use async_trait::async_trait;

use super::{MemoryStore, Row};
use crate::store::*;

impl MemoryStore {
    /// The number of session rows held, expired ones included (for tests:
    /// a login also writes its user's session index).
    pub fn session_count(&self) -> usize {
        self.rows()
            .values()
            .filter(|row| matches!(row, Row::Session { .. }))
            .count()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn put_session(
        &self,
        session: &SessionRecord,
        session_key: Option<&Secret>,
    ) -> Result<(), StoreError> {
        let mut rows = self.rows();
        let key = session_key_of(&session.token_hash);
        let row = Row::Session {
            record: session.clone(),
            session_key: session_key.cloned(),
        };
        self.insert(&mut rows, key, row);
        Ok(())
    }

    async fn get_session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        match self.rows().get(&session_key_of(token_hash)) {
            Some(Row::Session { record, .. }) => Ok(Some(record.clone())),
            _ => Ok(None),
        }
    }

    async fn session_key(&self, token_hash: &str) -> Result<Option<Secret>, StoreError> {
        match self.rows().get(&session_key_of(token_hash)) {
            Some(Row::Session { session_key, .. }) => Ok(session_key.clone()),
            _ => Ok(None),
        }
    }

    async fn delete_session(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<SessionEnd, StoreError> {
        let mut rows = self.rows();
        let key = session_key_of(token_hash);
        let live = match rows.get(&key) {
            Some(Row::Session { record, .. }) => record.expires_ms > now_ms,
            _ => return Ok(SessionEnd::NotFound),
        };
        rows.remove(&key);
        Ok(if live {
            SessionEnd::Ended
        } else {
            SessionEnd::Expired
        })
    }

    async fn delete_sessions(&self, token_hashes: &[String]) -> Result<(), StoreError> {
        let mut rows = self.rows();
        for hash in token_hashes {
            let key = session_key_of(hash);
            if matches!(rows.get(&key), Some(Row::Session { .. })) {
                rows.remove(&key);
            }
        }
        Ok(())
    }

    async fn set_session_phone(
        &self,
        session: &SessionRecord,
        phone: &PhoneNumber,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        if session.expires_ms <= now_ms {
            return Ok(false);
        }
        match self.rows().get_mut(&session_key_of(&session.token_hash)) {
            Some(Row::Session { record, .. }) => {
                record.phone = Some(phone.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn replace_session(
        &self,
        old_hash: &str,
        new: &SessionRecord,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut rows = self.rows();
        let old_key = session_key_of(old_hash);
        match rows.get(&old_key) {
            Some(Row::Session { record, .. }) if record.expires_ms > now_ms => {}
            _ => return Ok(false),
        }
        rows.remove(&old_key);
        let row = Row::Session {
            record: new.clone(),
            session_key: None,
        };
        self.insert(&mut rows, session_key_of(&new.token_hash), row);
        Ok(true)
    }
}
