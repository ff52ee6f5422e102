//! Session-index rows: one per openid, token hash → expiry of each of the
//! user's sessions.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{MemoryStore, Row};
use crate::store::*;

fn entries_of(entries: &BTreeMap<String, i64>) -> Vec<IndexedSession> {
    entries
        .iter()
        .map(|(hash, expires)| IndexedSession {
            token_hash: hash.clone(),
            expires_ms: *expires,
        })
        .collect()
}

#[async_trait]
impl SessionIndexStore for MemoryStore {
    async fn index_session(
        &self,
        openid: &str,
        session: &IndexedSession,
        remove: &[String],
        keep_until_ms: i64,
    ) -> Result<Vec<IndexedSession>, StoreError> {
        let mut rows = self.rows();
        let key = session_index_key_of(openid);
        if !matches!(rows.get(&key), Some(Row::SessionIndex { .. })) {
            let empty = Row::SessionIndex {
                entries: BTreeMap::new(),
                keep_until_ms,
            };
            self.insert(&mut rows, key.clone(), empty);
        }
        let Some(Row::SessionIndex {
            entries,
            keep_until_ms: keep,
        }) = rows.get_mut(&key)
        else {
            unreachable!("the index row was just made");
        };
        for hash in remove {
            entries.remove(hash);
        }
        entries.insert(session.token_hash.clone(), session.expires_ms);
        *keep = keep_until_ms;
        Ok(entries_of(entries))
    }

    async fn unindex_sessions(
        &self,
        openid: &str,
        token_hashes: &[String],
    ) -> Result<(), StoreError> {
        if let Some(Row::SessionIndex { entries, .. }) =
            self.rows().get_mut(&session_index_key_of(openid))
        {
            for hash in token_hashes {
                entries.remove(hash);
            }
        }
        Ok(())
    }

    async fn reset_session_index(
        &self,
        openid: &str,
        session: &IndexedSession,
        keep_until_ms: i64,
    ) -> Result<Vec<IndexedSession>, StoreError> {
        let mut rows = self.rows();
        let row = Row::SessionIndex {
            entries: BTreeMap::from([(session.token_hash.clone(), session.expires_ms)]),
            keep_until_ms,
        };
        let key = session_index_key_of(openid);
        let before = match rows.remove(&key) {
            Some(Row::SessionIndex { entries, .. }) => entries_of(&entries),
            _ => Vec::new(),
        };
        self.insert(&mut rows, key, row);
        Ok(before)
    }

    async fn take_session_index(&self, openid: &str) -> Result<Vec<IndexedSession>, StoreError> {
        let mut rows = self.rows();
        let key = session_index_key_of(openid);
        match rows.get(&key) {
            Some(Row::SessionIndex { .. }) => match rows.remove(&key) {
                Some(Row::SessionIndex { entries, .. }) => Ok(entries_of(&entries)),
                _ => Ok(Vec::new()),
            },
            _ => Ok(Vec::new()),
        }
    }
}
