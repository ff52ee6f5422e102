//! Session-index rows: one per openid, each session of the user an attribute
//! `s_<token hash>` holding its expiry (top-level attributes, so adding one
//! needs no map to exist first). The whole index is read and replaced (or
//! deleted) in one request, so ending every session misses none that was
//! indexed before it began.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;

use super::DynamoStore;
use super::codec::*;
use crate::store::*;

/// Prefix of the attribute that lists one session.
const ENTRY_PREFIX: &str = "s_";
/// Most entries removed by one UpdateItem (keeps its expression short).
const MAX_REMOVALS_PER_REQUEST: usize = 100;

fn entry_attribute(token_hash: &str) -> String {
    format!("{ENTRY_PREFIX}{token_hash}")
}

/// The entries an index item lists.
fn entries_of(item: Option<&Item>) -> Result<Vec<IndexedSession>, StoreError> {
    let Some(item) = item else {
        return Ok(Vec::new());
    };
    let mut entries: Vec<IndexedSession> = item
        .keys()
        .filter_map(|name| name.strip_prefix(ENTRY_PREFIX).map(|hash| (name, hash)))
        .map(|(name, hash)| {
            Ok(IndexedSession {
                token_hash: hash.to_owned(),
                expires_ms: get_n(item, name)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    entries.sort_by(|a, b| a.token_hash.cmp(&b.token_hash));
    Ok(entries)
}

#[async_trait]
impl SessionIndexStore for DynamoStore {
    async fn index_session(
        &self,
        openid: &str,
        session: &IndexedSession,
        remove: &[String],
        keep_until_ms: i64,
    ) -> Result<Vec<IndexedSession>, StoreError> {
        let remove: Vec<&String> = remove
            .iter()
            .filter(|hash| **hash != session.token_hash)
            .take(MAX_REMOVALS_PER_REQUEST)
            .collect();
        let mut expression =
            "SET #entry = :expires, #openid = :openid, #expired = :keep, #ttl = :ttl".to_owned();
        if !remove.is_empty() {
            let names: Vec<String> = (0..remove.len()).map(|i| format!("#r{i}")).collect();
            expression.push_str(" REMOVE ");
            expression.push_str(&names.join(", "));
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(session_index_key_of(openid)))
            .update_expression(expression)
            .expression_attribute_names("#entry", entry_attribute(&session.token_hash))
            .expression_attribute_names("#openid", "openid")
            .expression_attribute_names("#expired", "expired_date")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":expires", n(session.expires_ms))
            .expression_attribute_values(":openid", s(openid))
            .expression_attribute_values(":keep", n(keep_until_ms))
            .expression_attribute_values(":ttl", n(ttl_seconds(keep_until_ms)))
            .return_values(ReturnValue::AllNew);
        for (i, hash) in remove.iter().enumerate() {
            update = update.expression_attribute_names(format!("#r{i}"), entry_attribute(hash));
        }
        let out = update
            .send()
            .await
            .map_err(|e| sdk_error("index_session", e))?;
        entries_of(out.attributes())
    }

    async fn unindex_sessions(
        &self,
        openid: &str,
        token_hashes: &[String],
    ) -> Result<(), StoreError> {
        for chunk in token_hashes.chunks(MAX_REMOVALS_PER_REQUEST) {
            let names: Vec<String> = (0..chunk.len()).map(|i| format!("#r{i}")).collect();
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key(KEY_ATTRIBUTE, s(session_index_key_of(openid)))
                .update_expression(format!("REMOVE {}", names.join(", ")))
                // Never create an index just to remove from it.
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", KEY_ATTRIBUTE);
            for (i, hash) in chunk.iter().enumerate() {
                update = update.expression_attribute_names(format!("#r{i}"), entry_attribute(hash));
            }
            if let Err(err) = update.send().await {
                update_condition_failed(err, "unindex_sessions")?;
                return Ok(()); // no index: nothing to remove
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
        // Not a PutItem of the fresh index with the old one handed back: a
        // retry after a lost response would hand back the fresh index, and
        // the user's other sessions would live on. Adding the entry and
        // reading the whole index back is the same however often it runs,
        // and so is removing what was read.
        let mut others = self
            .index_session(openid, session, &[], keep_until_ms)
            .await?;
        others.retain(|entry| entry.token_hash != session.token_hash);
        self.unindex_sessions(openid, &hashes(&others)).await?;
        Ok(others)
    }

    async fn take_session_index(&self, openid: &str) -> Result<Vec<IndexedSession>, StoreError> {
        // As in reset_session_index, not a DeleteItem handing back the old
        // item (a retried one hands back nothing): the entries are read by
        // an update that changes nothing, then removed.
        let read = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, s(session_index_key_of(openid)))
            .update_expression("SET #openid = :openid")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", KEY_ATTRIBUTE)
            .expression_attribute_names("#openid", "openid")
            .expression_attribute_values(":openid", s(openid))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let listed = match read {
            Ok(out) => entries_of(out.attributes())?,
            Err(err) => {
                update_condition_failed(err, "take_session_index")?;
                return Ok(Vec::new()); // no index: no sessions listed
            }
        };
        self.unindex_sessions(openid, &hashes(&listed)).await?;
        Ok(listed)
    }
}

/// The token hashes of `entries` (`unindex_sessions` of none sends nothing).
fn hashes(entries: &[IndexedSession]) -> Vec<String> {
    entries.iter().map(|e| e.token_hash.clone()).collect()
}
